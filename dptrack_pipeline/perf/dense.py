"""How dense rows could be stored: bytes, write and read time of each encoding and filter.

The measurement behind ``schemas/dense.v2.json`` (``benchmarks/bench_dense.py``). Rows come from a
real dense file (decoded by :class:`~dptrack_pipeline.shards.reader.DenseReader`, so a v1 or a v2
file gives the same arrays); each option writes them to a fresh HDF5 file, one row per chunk
as the pipeline does, and reads them back one row at a time:

* crops: as they are, or as row deltas (:func:`~dptrack_pipeline.shards.dense_codec.encode_crop`);
* flows: float16 (version 1), or fixed-point int16 with invalid pixels zeroed (version 2), with
  and without byte shuffle;
* validity: one byte per pixel, or packed bits;
* filters: gzip 1/4/6 (readable by every HDF5 build) through h5py; gzip 1 as dptrack writes and
  reads it (libdeflate on packed chunks, libdeflate inflate in
  :class:`~dptrack_pipeline.shards.reader.RowReader`);
  and, when ``hdf5plugin`` is importable, its Zstd and Blosc (readable only where that plugin is
  installed).

Times include the encoding and its decoding (row deltas' cumulative sum, fixed point's scale,
unpacking bits): the cost a writer and a reader pay.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

from dptrack_pipeline.perf.timing import markdown_table
from dptrack_pipeline.shards.dense_codec import (
    decode_crop,
    decode_flow,
    decode_valid,
    encode_crop,
    encode_flow,
    encode_valid,
)
from dptrack_pipeline.shards.hdf5_writer import filter_chunk
from dptrack_pipeline.shards.reader import DenseReader, RowReader


def sample_rows(folder: str, dense_file: str, count: int) -> dict[str, list[np.ndarray]]:
    """``count`` crops and ``count`` (flow, valid) rows spread evenly over ``dense_file``."""
    with h5py.File(os.path.join(folder, dense_file), "r") as fh:
        crops, flows = fh["crops"].shape[0], fh["flows"].shape[0]
    out: dict[str, list[Any]] = {"crops": [], "flows": [], "valid": []}
    with DenseReader(folder) as dense:
        for i in np.linspace(0, crops - 1, min(count, crops)).astype(int):
            out["crops"].append(dense.crop(dense_file, int(i)))
        for i in np.linspace(0, flows - 1, min(count, flows)).astype(int):
            flow, valid = dense.flow(dense_file, int(i))
            out["flows"].append(flow)
            out["valid"].append(valid)
    return out


def _filters() -> dict[str, dict[str, Any]]:
    found = {
        f"gzip {level}": {"compression": "gzip", "compression_opts": level} for level in (1, 4, 6)
    }
    found["gzip 1, dptrack (libdeflate write and read)"] = {
        "compression": "gzip",
        "compression_opts": 1,
        OWN_PATH: True,
    }
    try:  # optional, not a dependency: only where the user installed it
        hdf5plugin = importlib.import_module("hdf5plugin")
    except ImportError:
        return found
    found["zstd 3 (plugin)"] = dict(hdf5plugin.Zstd(clevel=3))
    found["blosc-zstd 5 (plugin)"] = dict(
        hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
    )
    return found


OWN_PATH = "dptrack"
"""Marks the filter option that packs chunks as dptrack's writer does and reads them with
dptrack's reader (libdeflate both ways)."""


def _trial(
    rows: list[np.ndarray],
    encode: Callable[[np.ndarray], np.ndarray],
    decode: Callable[[np.ndarray], np.ndarray],
    shuffle: bool,
    filters: dict[str, Any],
) -> tuple[float, float, float]:
    """``(bytes per row, write ms per row, read ms per row)``."""
    handle, path = tempfile.mkstemp(suffix=".h5")
    os.close(handle)
    try:
        filters = dict(filters)
        own = filters.pop(OWN_PATH, False)
        t0 = time.perf_counter()
        with h5py.File(path, "w") as fh:
            first = encode(rows[0])
            shuffled = shuffle and first.itemsize > 1
            ds = fh.create_dataset(
                "x", shape=(len(rows), *first.shape), dtype=first.dtype,
                chunks=(1, *first.shape), shuffle=shuffled, fletcher32=True, **filters,
            )  # fmt: skip
            zeros = (0,) * first.ndim
            for i, row in enumerate(rows):
                if own:  # what dptrack's writer does: filter here, store the chunk as it is
                    ds.id.write_direct_chunk(
                        (i, *zeros), filter_chunk(encode(row), shuffled, 1, True)
                    )
                else:
                    ds[i] = encode(row)
        write = time.perf_counter() - t0
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        with h5py.File(path, "r") as fh:
            rows_of = RowReader(fh["x"])
            for i in range(len(rows)):
                decode(rows_of.read(i) if own else fh["x"][i])
        read = time.perf_counter() - t0
    finally:
        os.remove(path)
    n = len(rows)
    return size / n, write / n * 1e3, read / n * 1e3


def measure(rows: dict[str, list[np.ndarray]]) -> list[dict[str, Any]]:
    """One result per (dataset, encoding, filter)."""
    size = rows["crops"][0].shape[0]
    pairs = list(zip(rows["flows"], rows["valid"], strict=True))
    options = [
        ("crops", "as is (v1)", rows["crops"], lambda c: c, lambda s: s, False),
        ("crops", "row deltas (v2)", rows["crops"], lambda c: encode_crop(c, 2),
         lambda s: decode_crop(s, 2), False),
        ("flows", "float16 + shuffle (v1)", pairs, lambda p: encode_flow(p[0], p[1], 1),
         lambda s: decode_flow(s, 1), True),
        ("flows", "int16 1/16 px, invalid 0, no shuffle", pairs,
         lambda p: encode_flow(p[0], p[1], 2), lambda s: decode_flow(s, 2), False),
        ("flows", "int16 1/16 px, invalid 0 + shuffle (v2)", pairs,
         lambda p: encode_flow(p[0], p[1], 2), lambda s: decode_flow(s, 2), True),
        ("valid", "one byte per pixel (v1)", rows["valid"], lambda v: encode_valid(v, 1),
         lambda s: decode_valid(s, 1, size), False),
        ("valid", "packed bits (v2)", rows["valid"], lambda v: encode_valid(v, 2),
         lambda s: decode_valid(s, 2, size), False),
    ]  # fmt: skip
    results = []
    for dataset, encoding, items, encode, decode, shuffle in options:
        for name, filters in _filters().items():
            per_row, write, read = _trial(items, encode, decode, shuffle, filters)
            results.append({
                "dataset": dataset, "encoding": encoding, "filter": name,
                "kB_per_row": per_row / 1e3, "write_ms": write, "read_ms": read,
            })  # fmt: skip
    return results


def report_table(results: list[dict[str, Any]]) -> str:
    rows = [
        [r["dataset"], r["encoding"], r["filter"], f"{r['kB_per_row']:.1f}",
         f"{r['write_ms']:.2f}", f"{r['read_ms']:.2f}"]
        for r in results
    ]  # fmt: skip
    return markdown_table(
        ["dataset", "encoding", "filter", "kB/row", "write ms/row", "read ms/row"], rows
    )
