"""Dense rows as stored, version 1 and 2: encodings round-trip, and v1 files stay readable."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from dptrack_pipeline.shards import DenseReader
from dptrack_pipeline.shards.dense_codec import (
    decode_crop,
    decode_flow,
    decode_valid,
    encode_crop,
    encode_flow,
    encode_valid,
    packed_width,
)
from dptrack_pipeline.shards.hdf5_writer import write_dense_file
from dptrack_pipeline.shards.reader import CorruptShardError, RowReader
from dptrack_pipeline.shards.schema import load_hdf5_schema, resolve_shape

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("size", [8, 13, 256])
def test_v2_round_trips(size: int) -> None:
    crop = RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)
    crop[:, : size // 2] = 255  # wrap-around deltas
    stored = encode_crop(crop, 2)
    assert stored.dtype == np.uint8 and not np.array_equal(stored, crop)
    np.testing.assert_array_equal(decode_crop(stored, 2), crop)  # lossless

    flow = RNG.normal(0, 30, (size, size, 2)).astype(np.float32)
    flow[0, 0] = (5000.0, -5000.0)  # beyond the int16 range at 1/16 px: clipped
    valid = RNG.random((size, size)) > 0.3
    back = decode_flow(encode_flow(flow, valid, 2), 2)
    assert back.dtype == np.float32
    inside = valid & (np.abs(flow).max(axis=-1) < 2000)
    assert np.abs(back - flow)[inside].max() <= 1 / 32
    assert np.all(back[~valid] == 0)
    if valid[0, 0]:
        assert tuple(back[0, 0]) == (32767 / 16, -2048.0)

    packed = encode_valid(valid, 2)
    assert packed.shape == (size, packed_width(size)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(decode_valid(packed, 2, size), valid)


def test_v1_encodings_are_the_arrays_as_they_are() -> None:
    crop = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    flow = RNG.normal(0, 3, (8, 8, 2)).astype(np.float32)
    valid = RNG.random((8, 8)) > 0.5
    assert encode_crop(crop, 1) is crop and decode_crop(crop, 1) is crop
    assert encode_flow(flow, valid, 1).dtype == np.float16
    np.testing.assert_array_equal(decode_valid(encode_valid(valid, 1), 1, 8), valid)


def _write_v1(path: Path, crops: np.ndarray, flows: np.ndarray, valid: np.ndarray) -> None:
    """A file exactly as dptrack wrote dense.v1 (float16 flows, plain crops and masks)."""
    doc = load_hdf5_schema("dense", 1)
    size = crops.shape[1]
    data = {"crops": crops, "flows": flows.astype(np.float16), "valid": valid.astype(np.uint8)}
    dims = {"N": len(crops), "M": len(flows), "S": size}
    with h5py.File(path, "w") as fh:
        for spec in doc["datasets"]:
            fh.create_dataset(
                spec["name"], data=data[spec["name"]], chunks=resolve_shape(spec["chunks"], dims),
                compression="gzip", compression_opts=1, shuffle=spec["shuffle"], fletcher32=True,
            )  # fmt: skip
        attrs = {"schema_name": "dense", "schema_version": 1, "crop_size": size,
                 "num_crops": len(crops), "num_flows": len(flows), "shard_index": 0,
                 "num_shards": 1}  # fmt: skip
        for key, value in attrs.items():
            fh.attrs[key] = value


def _write_v1_and_v2(
    tmp_path: Path, crops: np.ndarray, flows: np.ndarray, valid: np.ndarray
) -> str:
    """The same arrays as a v1 file in ``tmp_path/v1`` and a v2 file in ``tmp_path/v2``;
    returns the file name."""
    name = "dense-00000-of-00001.h5"
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    _write_v1(tmp_path / "v1" / name, crops, flows, valid)
    write_dense_file(
        str(tmp_path / "v2" / name), list(crops), list(flows), list(valid),
        crop_size=crops.shape[1], shard_index=0, num_shards=1,
    )  # fmt: skip
    return name


def test_version_1_files_stay_readable_and_v2_reads_the_same(tmp_path: Path) -> None:
    size = 16
    crops = RNG.integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    flows = (np.rint(RNG.normal(0, 4, (2, size, size, 2)) * 16) / 16).astype(np.float32)
    valid = RNG.random((2, size, size)) > 0.4
    flows[~valid] = 0  # as pairs and v2 store them
    name = _write_v1_and_v2(tmp_path, crops, flows, valid)
    with DenseReader(str(tmp_path / "v1")) as v1, DenseReader(str(tmp_path / "v2")) as v2:
        for i in range(3):
            np.testing.assert_array_equal(v1.crop(name, i), crops[i])
            np.testing.assert_array_equal(v2.crop(name, i), crops[i])
            for reader in (v1, v2):  # a tensor's layout, decoded straight into it
                chw = reader.crop(name, i, channels_first=True)
                assert chw.flags.c_contiguous and chw.shape == (3, size, size)
                np.testing.assert_array_equal(chw, crops[i].transpose(2, 0, 1))
        for i in range(2):
            for reader in (v1, v2):
                flow, mask = reader.flow(name, i)
                np.testing.assert_array_equal(flow, flows[i])
                np.testing.assert_array_equal(mask, valid[i])
    assert (tmp_path / "v2" / name).stat().st_size < (tmp_path / "v1" / name).stat().st_size


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    name = "dense-00000-of-00001.h5"
    crops = np.zeros((1, 8, 8, 3), np.uint8)
    _write_v1(tmp_path / name, crops, np.zeros((1, 8, 8, 2), np.float32), np.zeros((1, 8, 8)))
    with h5py.File(tmp_path / name, "a") as fh:
        fh.attrs["schema_version"] = 9
    with DenseReader(str(tmp_path)) as dense, pytest.raises(ValueError, match="version 9"):
        dense.crop(name, 0)


def _damage_chunk(path: Path, name: str, row: int, byte: int) -> None:
    """Flip one byte inside the stored chunk of ``name`` row ``row`` (in place); a negative
    ``byte`` counts from the chunk's end."""
    with h5py.File(path, "r") as fh:
        dset = fh[name]
        offset = dset.id.get_chunk_info(row).byte_offset
        size = dset.id.get_chunk_info(row).size
    position = offset + (byte if byte >= 0 else size + byte)
    with open(path, "r+b") as stream:
        stream.seek(position)
        value = stream.read(1)[0]
        stream.seek(position)
        stream.write(bytes([value ^ 0x41]))


def test_rows_read_from_their_chunks_equal_hdf5s_reading(tmp_path: Path) -> None:
    """The reader unfilters chunks itself (libdeflate inflate, unshuffle): the same arrays as h5py's
    own ``dataset[i]``, for v2 files and for v1 files (float16 flows, shuffled)."""
    size = 32
    crops = RNG.integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    flows = (np.rint(RNG.normal(0, 9, (3, size, size, 2)) * 16) / 16).astype(np.float32)
    valid = RNG.random((3, size, size)) > 0.3
    flows[~valid] = 0
    name = _write_v1_and_v2(tmp_path, crops, flows, valid)

    for version in ("v1", "v2"):
        with h5py.File(tmp_path / version / name, "r") as fh:
            for dataset in ("crops", "flows", "valid"):
                rows = RowReader(fh[dataset])
                assert rows._direct  # the fast path is taken for files dptrack writes
                for i in range(fh[dataset].shape[0]):
                    got = rows.read(i)
                    assert got.dtype == fh[dataset].dtype
                    np.testing.assert_array_equal(got, fh[dataset][i])


@pytest.mark.parametrize("byte", [0, 7, 500, -5])
def test_a_damaged_chunk_is_refused_wherever_the_byte_is(tmp_path: Path, byte: int) -> None:
    """Deflated chunks are checked by their Adler-32 when inflated; a flipped byte anywhere in a
    crop or flow chunk's deflate stream (its header, its middle, its Adler-32 at -5) fails the
    read. (The last 4 bytes, HDF5's Fletcher-32 of those bytes, are not read: damage there leaves
    the data intact, and ``verify``'s SHA-256 still reports it.)"""
    size = 32
    crops = RNG.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    flows = RNG.normal(0, 3, (2, size, size, 2)).astype(np.float32)
    valid = np.ones((2, size, size), bool)
    name = "dense-00000-of-00001.h5"
    path = tmp_path / name
    write_dense_file(
        str(path), list(crops), list(flows), list(valid), crop_size=size, shard_index=0,
        num_shards=1,
    )  # fmt: skip
    _damage_chunk(path, "crops", 1, byte)
    _damage_chunk(path, "flows", 0, byte)
    with DenseReader(str(tmp_path)) as reader:
        np.testing.assert_array_equal(reader.crop(name, 0), crops[0])
        with pytest.raises(CorruptShardError, match="crop 1 is damaged"):
            reader.crop(name, 1)
        with pytest.raises(CorruptShardError, match="flow 0 is damaged"):
            reader.flow(name, 0)
