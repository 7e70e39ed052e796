"""Shard writers: round trip, empty shards, determinism, checks at the boundary."""

from __future__ import annotations

import dataclasses
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from dptrack_pipeline.shards import (
    DenseReader,
    ShardRecord,
    load_parquet_schema,
    read_instances,
    read_rejects,
    write_instance_shard,
    write_rejects_shard,
)
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.parquet_writer import (
    DP_QUALITY_COLUMNS,
    RECORD_SORT_KEY,
    record_sort_key,
)
from dptrack_pipeline.structures import Reject

S = 16


def _write(out: Path, records, index=0, num=1):
    out.mkdir(parents=True, exist_ok=True)
    return write_instance_shard(str(out), index, num, records, S)


def test_round_trip(tmp_path, make_records):
    records = make_records(0)
    infos = _write(tmp_path / "o", records)
    assert [i["file"] for i in infos] == [
        "dense-00000-of-00001.h5",
        "instances-00000-of-00001.parquet",
    ]
    assert [i["kind"] for i in infos] == ["dense", "instances"]
    assert all(i["rows"] == len(records) for i in infos)
    for info in infos:
        assert (info["sha256"], info["bytes"]) == file_digest(str(tmp_path / "o" / info["file"]))

    table = read_instances(str(tmp_path / "o"))
    rows = table.to_pylist()
    assert len(rows) == len(records)
    # Sorted by the documented key; crop_index = position; flow_index counts rows with a flow.
    keys = [tuple(r[c] for c in RECORD_SORT_KEY) for r in rows]
    assert keys == sorted(keys)
    assert [r["crop_index"] for r in rows] == list(range(len(rows)))
    flow_rows = [r for r in rows if r["offset"] != 0]
    assert [r["flow_index"] for r in flow_rows] == list(range(len(flow_rows)))
    assert all(r["flow_index"] == -1 for r in rows if r["offset"] == 0)

    by_key = {record_sort_key(r.row): r for r in records}
    with DenseReader(str(tmp_path / "o")) as dense:
        for row in rows:
            rec = by_key[tuple(row[c] for c in RECORD_SORT_KEY)]
            src = rec.row
            assert row["dense_file"] == "dense-00000-of-00001.h5"
            np.testing.assert_array_equal(row["bbox"], np.float32(src["bbox"]))
            np.testing.assert_array_equal(row["keypoints"], np.ravel(src["keypoints"]))
            for col in ("dp_x", "dp_y", "dp_U", "dp_V", "dp_I", "dp_source_index"):
                np.testing.assert_array_equal(row[col], src[col])
            assert row["dp_masks"] == list(src["dp_masks"])
            assert row["crop_box"] == pytest.approx(src["crop_box"])
            np.testing.assert_array_equal(
                dense.crop(row["dense_file"], row["crop_index"]), rec.crop
            )
            if rec.flow is None:
                assert math.isnan(row["flow_valid_fraction"])
                with pytest.raises(ValueError, match="no flow"):
                    dense.flow(row["dense_file"], row["flow_index"])
            else:
                flow, valid = dense.flow(row["dense_file"], row["flow_index"])
                # Stored as fixed point: 1/16 px rounding where valid, 0 where not.
                expected = np.where(rec.valid[..., None], np.rint(rec.flow * 16) / 16, 0)
                np.testing.assert_array_equal(flow, expected.astype(np.float32))
                assert np.abs(flow - rec.flow)[rec.valid].max() <= 1 / 32
                np.testing.assert_array_equal(valid, rec.valid)
                assert valid.dtype == bool and flow.dtype == np.float32
        with pytest.raises(IndexError):
            dense.crop("dense-00000-of-00001.h5", len(rows))


def test_hdf5_layout_follows_schema(tmp_path, make_records):
    records = make_records(3, 2, offsets=(0, 1))
    _write(tmp_path / "o", records, 1, 4)
    with h5py.File(tmp_path / "o" / "dense-00001-of-00004.h5", "r") as fh:
        assert fh["crops"].shape == (4, S, S, 3) and fh["crops"].dtype == np.uint8
        assert fh["flows"].shape == (2, S, S, 2) and fh["flows"].dtype == np.int16
        assert fh["valid"].shape == (2, S, (S + 7) // 8) and fh["valid"].dtype == np.uint8
        assert fh["crops"].chunks == (1, S, S, 3)
        assert fh["flows"].compression == "gzip" and fh["flows"].compression_opts == 1
        assert fh["flows"].shuffle and not fh["crops"].shuffle
        assert dict(fh.attrs) == {
            "schema_name": "dense", "schema_version": 2, "crop_size": S, "flow_scale": 16,
            "num_crops": 4,
            "num_flows": 2, "shard_index": 1, "num_shards": 4,
        }  # fmt: skip


def test_parquet_file_options(tmp_path, make_records):
    _write(tmp_path / "o", make_records(0))
    meta = pq.read_metadata(tmp_path / "o" / "instances-00000-of-00001.parquet")
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert b"pandas" not in meta.metadata
    schema = pq.read_schema(tmp_path / "o" / "instances-00000-of-00001.parquet")
    assert schema.metadata[b"dptrack.schema"] == b"instances"
    assert schema.field("dp_x").metadata[b"description"]


def test_empty_shard_writes_valid_files(tmp_path):
    infos = _write(tmp_path / "o", [], 2, 3)
    assert [i["rows"] for i in infos] == [0, 0]
    table = read_instances(str(tmp_path / "o"))
    assert table.num_rows == 0
    assert table.schema.names == load_parquet_schema("instances").names
    with h5py.File(tmp_path / "o" / "dense-00002-of-00003.h5", "r") as fh:
        assert fh["crops"].shape == (0, S, S, 3) and fh["flows"].shape == (0, S, S, 2)


def test_records_without_flow_only(tmp_path, make_records):
    records = make_records(5, 3, offsets=(0,))
    _write(tmp_path / "o", records)
    table = read_instances(str(tmp_path / "o"), columns=["flow_index", "offset"])
    assert table.column_names == ["flow_index", "offset"]
    assert set(table.column("flow_index").to_pylist()) == {-1}
    with h5py.File(tmp_path / "o" / "dense-00000-of-00001.h5", "r") as fh:
        assert fh["flows"].shape[0] == 0 and fh["crops"].shape[0] == 3


def test_byte_identical_for_any_input_order(tmp_path, make_records):
    records = make_records(7)
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    assert shuffled != records
    a = _write(tmp_path / "a", records)
    b = _write(tmp_path / "b", shuffled)
    assert a == b
    for info in a:
        assert (tmp_path / "a" / info["file"]).read_bytes() == (
            tmp_path / "b" / info["file"]
        ).read_bytes()


def test_byte_identical_in_another_process(tmp_path, make_records):
    """No timestamps or process state (e.g. uninitialised HDF5 buffers) reach the bytes."""
    infos = _write(tmp_path / "a", make_records(11, 2))
    time.sleep(1.05)  # HDF5 timestamps have 1 s resolution: make sure a stored time would differ
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import random_records
from dptrack_pipeline.shards import write_instance_shard
write_instance_shard({str(tmp_path / "b")!r}, 0, 1, random_records(11, 2)[::-1], {S})
"""
    (tmp_path / "b").mkdir()
    subprocess.run(
        [sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONHASHSEED="7")
    )
    for info in infos:
        assert (tmp_path / "a" / info["file"]).read_bytes() == (
            tmp_path / "b" / info["file"]
        ).read_bytes()


def test_rejects_round_trip_sorted(tmp_path):
    rejects = [
        Reject("flow_failed", "no flow", "propagate", 5, "3418", 2, 1, 2),
        {"reason": "bad_box", "detail": "w=0", "stage": "validate", "annotation_id": 9,
         "video_id": "3418", "frame_id": 1, "track_id": -1, "offset": 0},
        Reject("decode_error", "missing frame", "decode", -1, "12834", 7, -1, 0),
    ]  # fmt: skip
    info = write_rejects_shard(str(tmp_path), 0, 2, rejects)
    assert info["file"] == "rejects-00000-of-00002.parquet" and info["kind"] == "rejects"
    assert info["rows"] == 3
    write_rejects_shard(str(tmp_path), 1, 2, [])
    table = read_rejects(str(tmp_path))
    assert table.column("video_id").to_pylist() == ["12834", "3418", "3418"]
    assert table.column("frame_id").to_pylist() == [7, 1, 2]
    assert table.column("reason").to_pylist()[2] == "flow_failed"
    again = write_rejects_shard(str(tmp_path), 0, 2, rejects[::-1])
    assert again == info
    with pytest.raises(ValueError, match="missing columns \\['stage'\\]"):
        write_rejects_shard(
            str(tmp_path), 0, 2, [{k: v for k, v in rejects[1].items() if k != "stage"}]
        )


def _replace_row(record: ShardRecord, **changes) -> ShardRecord:
    return dataclasses.replace(record, row={**record.row, **changes})


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(offset=2), "offset 2 != frame_index"),
        (dict(box_source="guess"), "box_source must be one of"),
        (dict(keypoints=np.zeros(50)), "51 values"),
        (dict(dp_U=np.zeros(1)), "DensePose point columns differ in length"),
        (dict(dp_masks=["PPP2"] * 3), "0 or 14 RLEs"),
        (dict(crop_box=[0, 0, 0, 5]), "crop_box must be"),
        (dict(frame_id=1.5), "column 'frame_id': expected integers"),
        (dict(points_in=2**40), "column 'points_in': values outside"),
        (dict(video_id=3418), "column 'video_id': expected str"),
        (dict(flow_valid_fraction=0.3), "must be NaN for a source"),
        (dict(image_file=None), "not nullable"),
    ],
)
def test_bad_rows_are_refused_before_writing(tmp_path, record_factory, change, message):
    record = _replace_row(record_factory(offset=0, num_points=5), **change)
    if "offset" in change:
        record = _replace_row(record, dp_I=np.ones(5))
    with pytest.raises(ValueError, match=message):
        _write(tmp_path / "o", [record_factory(offset=0, annotation_id=2), record])
    assert os.listdir(tmp_path / "o") == []


def test_bad_records_are_refused(tmp_path, record_factory):
    source = record_factory(offset=0)
    moved = record_factory(offset=1)
    cases = [
        (
            dataclasses.replace(source, crop=source.crop[:-1]),
            "crop: expected a \\(16, 16, 3\\) uint8",
        ),
        (dataclasses.replace(source, crop=source.crop.astype(np.float32)), "uint8"),
        (dataclasses.replace(moved, flow=None, valid=None), "has a flow iff it is propagated"),
        (dataclasses.replace(source, flow=moved.flow, valid=moved.valid), "flow iff"),
        (dataclasses.replace(moved, valid=None), "both be given or both be None"),
        (dataclasses.replace(moved, flow=moved.flow[..., :1]), "flow: expected a \\(16, 16, 2\\)"),
        (dataclasses.replace(moved, valid=moved.valid.astype(np.int32) * 2), "only 0 and 1"),
        (_replace_row(source, dp_I=np.full(np.size(source.row["dp_x"]), 30)), "dp_I values"),
        (_replace_row(source, extra_column=1), "unexpected columns \\['extra_column'\\]"),
        ({"row": source.row}, "expected ShardRecord"),
    ]
    for record, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            _write(tmp_path / "o", [record])
    with pytest.raises(ValueError, match="share the sort key"):
        _write(tmp_path / "o", [source, dataclasses.replace(source)])
    assert os.listdir(tmp_path / "o") == []


def test_mask_dicts_and_empty_parts_are_normalised(tmp_path, record_factory):
    record = record_factory(offset=0)
    masks = [{"size": [256, 256], "counts": b"PPP2"}, None, {}] + ["PPP2"] * 11
    _write(tmp_path / "o", [_replace_row(record, dp_masks=masks)])
    row = read_instances(str(tmp_path / "o"), columns=["dp_masks"]).to_pylist()[0]
    assert row["dp_masks"] == ["PPP2"] * 14


def test_empty_mask_constant_matches_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    from dptrack_pipeline.shards.parquet_writer import EMPTY_MASK_COUNTS

    rle = mask_utils.encode(np.zeros((256, 256), np.uint8, order="F"))
    assert rle["counts"].decode() == EMPTY_MASK_COUNTS


@pytest.mark.shared_data
def test_real_densepose_annotation_round_trip(shared_data, tmp_path, record_factory):
    """The real DensePose-COCO demo annotation (125 points, its crop) survives a shard exactly."""
    import pickle

    path = shared_data / "densepose/DensePoseData/demo_data/demo_dp_single_ann.pkl"
    with open(path, "rb") as f:
        ann = pickle.load(f, encoding="latin1")
    crop_h, crop_w = ann["ICrop"].shape[:2]
    # Points are in crop pixels; the crop is the box, so box-relative = pixels / size * 256.
    dp_x = (np.asarray(ann["x"], np.float64) / crop_w * 256).astype(np.float32)
    dp_y = (np.asarray(ann["y"], np.float64) / crop_h * 256).astype(np.float32)
    base = record_factory(offset=0, num_points=0)
    crop = np.ascontiguousarray(ann["ICrop"][:S, :S, ::-1])  # top-left SxS, BGR -> RGB
    row = {
        **base.row,
        "bbox": [10.0, 20.0, float(crop_w), float(crop_h)],
        "dp_x": dp_x,
        "dp_y": dp_y,
        "dp_I": np.asarray(ann["I"]),  # float in the pickle, integral 1..24
        "dp_U": np.asarray(ann["U"]),
        "dp_V": np.asarray(ann["V"]),
        "dp_source_index": np.arange(len(dp_x)),
        "points_in": len(dp_x),
        **{c: np.full(len(dp_x), np.nan, np.float32) for c in DP_QUALITY_COLUMNS},
    }
    _write(tmp_path / "o", [ShardRecord(row=row, crop=crop)])
    out = read_instances(str(tmp_path / "o")).to_pylist()[0]
    assert len(out["dp_x"]) == 125
    np.testing.assert_array_equal(out["dp_x"], dp_x)
    np.testing.assert_array_equal(out["dp_I"], np.asarray(ann["I"]).astype(np.uint8))
    np.testing.assert_array_equal(out["dp_U"], np.asarray(ann["U"], np.float32))
    assert set(out["dp_I"]) <= set(range(1, 25))
    with DenseReader(str(tmp_path / "o")) as dense:
        np.testing.assert_array_equal(dense.crop(out["dense_file"], out["crop_index"]), crop)


def test_packed_records_store_the_same_chunks(tmp_path, make_records):
    from dptrack_pipeline.shards import pack_record

    records = make_records(5, 3, offsets=(0, 1, -2))
    _write(tmp_path / "plain", records, 0, 1)
    _write(tmp_path / "packed", [pack_record(r, S) for r in records], 0, 1)
    _write(tmp_path / "packed2", [pack_record(r, S) for r in records[::-1]], 0, 1)
    name = "dense-00000-of-00001.h5"
    # Packing is deterministic (any input order gives the same bytes) ...
    assert (tmp_path / "packed" / name).read_bytes() == (tmp_path / "packed2" / name).read_bytes()
    # ... and stores exactly the chunks h5py's own filters store (the file layout differs only
    # in where HDF5 allocates them).
    with h5py.File(tmp_path / "plain" / name) as plain, h5py.File(tmp_path / "packed" / name) as pk:
        for dataset in ("crops", "flows", "valid"):
            a, b = plain[dataset], pk[dataset]
            assert a.shape == b.shape and a.dtype == b.dtype
            assert a.compression == b.compression and a.shuffle == b.shuffle
            for i in range(a.shape[0]):
                offset = (i,) + (0,) * (a.ndim - 1)
                assert a.id.read_direct_chunk(offset) == b.id.read_direct_chunk(offset)
            np.testing.assert_array_equal(a[...], b[...])
    assert (tmp_path / "plain" / "instances-00000-of-00001.parquet").read_bytes() == (
        tmp_path / "packed" / "instances-00000-of-00001.parquet"
    ).read_bytes()


def test_chunk_filter_is_standard_deflate_and_deterministic(tmp_path):
    """The chunk filter's deflate (libdeflate) is a standard zlib stream, so HDF5's own filter and
    Python's zlib inflate it, and its bytes depend on the input only: not on what this process
    compressed before (a reused compressor's state) and not on the process (ISA-L, tried before,
    failed exactly this in the reliability tests)."""
    import zlib

    from dptrack_pipeline.shards.hdf5_writer import filter_chunk

    rng = np.random.default_rng(3)
    smooth = np.cumsum(rng.integers(-3, 4, (64, 64, 2)), axis=1).astype(np.int16)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    first = filter_chunk(smooth, True, 1, True)
    filter_chunk(noise, False, 1, True)  # other data in between
    assert filter_chunk(smooth, True, 1, True) == first
    shuffled = smooth.view(np.uint8).reshape(-1, 2).T.tobytes()
    assert zlib.decompress(first[:-4]) == shuffled
    code = """
import sys, numpy as np
from dptrack_pipeline.shards.hdf5_writer import filter_chunk
rng = np.random.default_rng(3)
smooth = np.cumsum(rng.integers(-3, 4, (64, 64, 2)), axis=1).astype(np.int16)
sys.stdout.buffer.write(filter_chunk(smooth, True, 1, True))
"""
    other = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True).stdout
    assert other == first
