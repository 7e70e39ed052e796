"""How are a shard's dense arrays (crops, flows, validity masks) laid out in HDF5?

One HDF5 file per shard, ``dense-SSSSS-of-NNNNN.h5``, with the three datasets of
``schemas/dense.v2.json``: ``crops`` ``(N, S, S, 3)`` uint8 (RGB as row deltas), ``flows``
``(M, S, S, 2)`` int16 (fixed point, 1/16 crop px) and ``valid`` ``(M, S, B)`` uint8 (packed
bits). Each row is encoded by :mod:`~dptrack_pipeline.shards.dense_codec` and then filtered; the
datasets are created **from the schema document** (dtype, shape, chunks, filters), so the JSON
stays the single source of truth. Version 1 files (float16 flows, plain crops and masks) stay
readable (:class:`~dptrack_pipeline.shards.reader.DenseReader`).

Why HDF5 and not Parquet for these: they are fixed-shape dense tensors read one instance at a
time by the training loader; HDF5 gives N-d chunked random access without decoding a row group,
and every language with an HDF5 binding reads them.

Layout choices (measured on the 537 instances of ``benchmarks/bench_pipeline.py``: 720p street
video, DIS crop flows at 256 px; table in the README, "Dense shards, version 2"):

* **One chunk per row** (``(1, S, S, C)``): a random read decompresses exactly one row.
* **gzip level 1**: deflate is the one compression filter built into every HDF5 distribution (lzf
  is h5py-only; Blosc and Zstd need ``hdf5plugin`` in every reader). Level 4 or 6 saves 5-15% more
  at 1.3-2x the write time; Zstd (level 3) was no smaller on the encoded rows, Blosc-Zstd 19%
  smaller on flows but slower to write than gzip 1. Writing competes with the flow estimator for
  the same cores, so the fast level wins.
* **Deflated by libdeflate** (the ``deflate`` package, pinned), not zlib or ISA-L. It writes the
  standard zlib stream HDF5's deflate filter reads, 2x faster than zlib at level 1 and 10% smaller
  (0.63 against 1.21 ms a chunk, 36.8 against 40.8 kB, on the 1,455 rows of
  ``benchmarks/bench_pipeline.py``), and it inflates faster still (0.16 ms; zlib 0.48). Its
  output is deterministic for a given libdeflate version (its author: "no version of libdeflate
  has ever been non-deterministic"), hence the exact pin: another version may pack the same rows
  into other bytes. ISA-L (0.28 ms) is not: in one run of the reliability tests one 4-kB chunk
  came out one byte shorter than the same input did in another process, and zlib-ng at level 1
  is 30% larger. Every chunk goes through :func:`pack_chunk`, so a file's bytes do not depend on
  whether its rows arrived packed.
* **Encodings before the filters** (version 2): crops as row deltas (97 -> 68 kB a crop), flows
  as fixed-point int16 with invalid pixels zeroed (189 -> 60 kB a flow, and deflate 1.7x faster
  than on float16), validity as packed bits (1.7 -> 0.9 kB).
* **Byte shuffle on ``flows`` only**: it groups the high bytes of the int16 values (60 against
  67 kB); on 1-byte types it is the identity, so ``crops`` and ``valid`` do not carry it.
* **Fletcher-32 on every chunk**: HDF5 verifies it on each read, so a damaged chunk fails its
  read (``OSError``) instead of reaching training; 4 bytes per chunk
  (:mod:`dptrack_pipeline.shards.fletcher32` computes it for packed chunks).

Determinism: two writes of the same arrays give the same bytes. HDF5 stores object modification
times unless told not to (``track_times=False``), its on-disk format depends on the library unless
pinned (``libver`` fixed to :data:`HDF5_LIBVER`), and creation order is not tracked. Datasets and
attributes are written in schema order, rows in index order.

**Packing where the data is made.** :func:`pack_chunk` encodes one row and applies the schema's
filters (dtype, byte shuffle, deflate, Fletcher-32) to it and returns the bytes HDF5 would store for
its chunk; :func:`write_dense_file` writes such :class:`PackedChunk` s with ``write_direct_chunk``,
without filtering again, and packs unpacked rows the same way. The pipeline packs in its parallel
window stage, so the records that cross the shuffle are about half the size and the one-per-shard
writer only copies bytes. Packed and unpacked inputs give byte-identical files (tested).

This module writes to the path it is given; callers wrap it in
:func:`~dptrack_pipeline.shards.atomic.atomic_write`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import deflate
import h5py
import numpy as np

from dptrack_pipeline.shards.dense_codec import (
    FLOW_SCALE,
    encode_crop,
    encode_flow,
    encode_valid,
    packed_width,
)
from dptrack_pipeline.shards.fletcher32 import with_fletcher32
from dptrack_pipeline.shards.schema import current_version, load_hdf5_schema, resolve_shape

HDF5_LIBVER = ("v110", "v110")
"""Pinned HDF5 file-format bounds (readable by HDF5 >= 1.10, i.e. since 2016)."""

DENSE_SCHEMA_NAME = "dense"
CROPS, FLOWS, VALID = "crops", "flows", "valid"


def check_crop(crop: np.ndarray, crop_size: int, what: str = "crop") -> np.ndarray:
    """Check an RGB crop: ``(S, S, 3)`` uint8. Returns it as a C-contiguous array."""
    arr = np.asarray(crop)
    if arr.shape != (crop_size, crop_size, 3) or arr.dtype != np.uint8:
        raise ValueError(
            f"{what}: expected a ({crop_size}, {crop_size}, 3) uint8 RGB crop, "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


def check_flow(flow: np.ndarray, crop_size: int, what: str = "flow") -> np.ndarray:
    """Check a crop flow: ``(S, S, 2)`` floating, channel 0 = x. Returns it as float32 (the
    writer narrows to the schema's dtype when storing)."""
    arr = np.asarray(flow)
    if arr.shape != (crop_size, crop_size, 2) or arr.dtype.kind != "f":
        raise ValueError(
            f"{what}: expected a ({crop_size}, {crop_size}, 2) float flow (channel 0 = x), "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def check_valid(valid: np.ndarray, crop_size: int, what: str = "valid") -> np.ndarray:
    """Check a validity mask: ``(S, S)`` bool (or integers 0/1). Returns it as uint8 0/1."""
    arr = np.asarray(valid)
    if arr.shape != (crop_size, crop_size) or arr.dtype.kind not in "biu":
        raise ValueError(
            f"{what}: expected a ({crop_size}, {crop_size}) bool mask, "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.dtype.kind != "b" and arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{what}: an integer validity mask must hold only 0 and 1")
    return np.ascontiguousarray(arr, dtype=np.uint8)


@dataclasses.dataclass(frozen=True)
class PackedChunk:
    """One instance's row of dense dataset ``dataset``, already checked, converted to the schema
    dtype and filtered (byte shuffle, deflate) as the schema says: the bytes of its HDF5 chunk."""

    dataset: str
    data: bytes


def _dataset_spec(name: str) -> dict:
    doc = load_hdf5_schema(DENSE_SCHEMA_NAME)
    for spec in doc["datasets"]:
        if spec["name"] == name:
            return spec
    raise ValueError(f"no dataset {name!r} in the dense schema")


_CHECKERS = {CROPS: check_crop, FLOWS: check_flow, VALID: check_valid}


def _stored(
    name: str, array: np.ndarray, crop_size: int, valid: np.ndarray | None, what: str
) -> np.ndarray:
    """Check ``array`` as a row of dataset ``name`` and encode it as the current version
    stores it (:mod:`~dptrack_pipeline.shards.dense_codec`)."""
    version = current_version(DENSE_SCHEMA_NAME)
    checked = _CHECKERS[name](array, crop_size, what=what)
    if name == CROPS:
        return encode_crop(checked, version)
    if name == VALID:
        return encode_valid(checked, version)
    if valid is None:
        raise ValueError(f"{what}: a flow is stored with its validity mask (valid=...)")
    return encode_flow(checked, check_valid(valid, crop_size, what=f"{what} valid"), version)


def filter_chunk(
    array: np.ndarray, shuffle: bool, deflate_level: int | None, fletcher: bool
) -> bytes:
    """The bytes HDF5 stores for a chunk holding ``array``, with its filters in HDF5's order:
    byte shuffle, deflate (a zlib stream from libdeflate at ``deflate_level``; ``None`` = no
    deflate), then Fletcher-32 over the result."""
    arr = np.ascontiguousarray(array)
    data = arr.tobytes()
    if shuffle and arr.itemsize > 1:
        data = np.frombuffer(data, np.uint8).reshape(-1, arr.itemsize).T.tobytes()
    if deflate_level is not None:
        # HDF5's deflate filter stores its output even when it is larger than the input (seen
        # with h5py 3.16 / HDF5 1.14 on random crops), so the chunk is always the deflated bytes.
        data = bytes(deflate.zlib_compress(data, deflate_level))
    return with_fletcher32(data) if fletcher else data


def pack_chunk(
    name: str, array: np.ndarray, crop_size: int, valid: np.ndarray | None = None
) -> PackedChunk:
    """Check and encode ``array`` as a row of dataset ``name`` and filter it into its stored
    chunk bytes.

    Args:
        name: ``"crops"``, ``"flows"`` or ``"valid"``.
        array: one row's ``(S, S, 3)`` crop, ``(S, S, 2)`` flow or ``(S, S)`` mask.
        crop_size: S.
        valid: for a flow, its ``(S, S)`` validity mask (invalid pixels are stored as 0).
    """
    spec = _dataset_spec(name)
    arr = np.ascontiguousarray(
        _stored(name, array, crop_size, valid, name), dtype=np.dtype(spec["dtype"])
    )
    compression = spec.get("compression")
    if compression not in (None, "gzip"):
        raise ValueError(f"cannot pack chunks with compression {compression!r}")
    level = int(spec.get("compression_opts") or 1) if compression == "gzip" else None
    data = filter_chunk(arr, bool(spec.get("shuffle")), level, bool(spec.get("fletcher32")))
    return PackedChunk(name, data)


def write_dense_file(
    path: str,
    crops: Sequence[np.ndarray],
    flows: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    *,
    crop_size: int,
    shard_index: int,
    num_shards: int,
) -> None:
    """Write one dense HDF5 file (overwrites ``path``).

    Args:
        path: local file path (normally a temporary path from ``atomic_write``).
        crops: N arrays ``(S, S, 3)`` uint8, RGB; row ``i`` becomes ``crops[i]``. Any entry of
            ``crops``, ``flows`` or ``valids`` may instead be a :class:`PackedChunk`.
        flows: M arrays ``(S, S, 2)`` float, source crop to target crop in target-crop pixels,
            channel 0 = x (see ``schemas/dense.v2.json``).
        valids: M arrays ``(S, S)`` bool, aligned with ``flows``.
        crop_size: S.
        shard_index, num_shards: stored as attributes.

    Raises:
        ValueError: on a shape or dtype mismatch, or ``len(flows) != len(valids)``.
    """
    if isinstance(crop_size, bool) or int(crop_size) < 1:
        raise ValueError(f"crop_size must be a positive int, got {crop_size!r}")
    crop_size = int(crop_size)
    if len(flows) != len(valids):
        raise ValueError(f"got {len(flows)} flows but {len(valids)} validity masks")
    checkers = _CHECKERS
    arrays = {CROPS: crops, FLOWS: flows, VALID: valids}
    # Check everything before creating the file, so a bad input leaves nothing behind.
    for name, items in arrays.items():
        for i, item in enumerate(items):
            if isinstance(item, PackedChunk):
                if item.dataset != name:
                    raise ValueError(f"{name}[{i}] is a packed chunk of {item.dataset!r}")
            else:
                checkers[name](item, crop_size, what=f"{name}[{i}]")
                if name == FLOWS and isinstance(valids[i], PackedChunk):
                    raise ValueError(f"flows[{i}] is unpacked but its valid mask is packed")

    doc = load_hdf5_schema(DENSE_SCHEMA_NAME)
    dims = {"N": len(crops), "M": len(flows), "S": crop_size, "B": packed_width(crop_size)}
    attrs = {
        "schema_name": DENSE_SCHEMA_NAME,
        "schema_version": current_version(DENSE_SCHEMA_NAME),
        "crop_size": crop_size,
        "flow_scale": FLOW_SCALE,
        "num_crops": len(crops),
        "num_flows": len(flows),
        "shard_index": int(shard_index),
        "num_shards": int(num_shards),
    }
    with h5py.File(path, "w", libver=HDF5_LIBVER, track_order=False) as fh:
        for spec in doc["datasets"]:
            name = spec["name"]
            dset = fh.create_dataset(
                name,
                shape=resolve_shape(spec["shape"], dims),
                maxshape=resolve_shape(spec.get("maxshape", spec["shape"]), dims),
                chunks=resolve_shape(spec["chunks"], dims),
                dtype=np.dtype(spec["dtype"]),
                compression=spec.get("compression"),
                compression_opts=spec.get("compression_opts"),
                shuffle=bool(spec.get("shuffle", False)),
                fletcher32=bool(spec.get("fletcher32", False)),
                track_times=False,
            )
            zeros = (0,) * (dset.ndim - 1)
            for i, item in enumerate(arrays[name]):
                if not isinstance(item, PackedChunk):
                    valid = valids[i] if name == FLOWS else None
                    item = pack_chunk(name, item, crop_size, valid)
                dset.id.write_direct_chunk((i, *zeros), item.data)
        for spec in doc["attrs"]:
            value = attrs[spec["name"]]
            fh.attrs[spec["name"]] = (
                value if spec["dtype"] == "string" else np.dtype(spec["dtype"]).type(value)
            )
