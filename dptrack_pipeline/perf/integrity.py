"""What integrity costs: the readers' checksums, and the writer's crash-safety bookkeeping.

Issue 14 asks the shard readers to detect damage as they read "at little cost", with the formats'
own checksums, and to measure that cost; and the jobs to survive a kill, which costs work parts,
receipts, a marker and a lock on the way. Measured on real shards (the reader benchmark's: real
720p video through ``dptrack-build run``, 256-px crops, :func:`~.reader.build_shards`), in one
process and one run, so that ratios are comparable:

* **HDF5** (:func:`time_dense`): every crop, flow and validity row of every dense file read one
  at a time, as :class:`~dptrack_pipeline.shards.reader.DenseReader` does for training, from the
  files as written (Fletcher-32 on every chunk) and from copies whose datasets are the same but
  without the filter (:func:`strip_fletcher32`). Both from the page cache (each is read once
  untimed first); best of ``repeats`` alternating passes.
* **Parquet** (:func:`time_parquet`): each index file read with the training columns, with and
  without ``page_checksum_verification`` (the files carry CRCs either way).
* **SHA-256** (:func:`time_sha256`): ``verify=True``'s cost, every file of the folder hashed
  once, against one pass of the reads above.

* **Bookkeeping** (:func:`time_bookkeeping`): the same ``run`` (``FnApiRunner``) through the
  command line, which takes the lock, writes the marker, a work part per window and a receipt per
  shard, and through :func:`pipelines.propagate.run` without them; alternating, best of
  ``repeats``; the two folders' shard files must be identical.

The bytes Fletcher-32 adds (4 per chunk, one chunk per row) are reported as a share of the files.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import pyarrow.parquet as pq

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.reader import list_shards
from dptrack_pipeline.train.shard_index import COLUMNS

DATASETS = ("crops", "flows", "valid")


def strip_fletcher32(source: Path, target: Path) -> None:
    """Copy a dense file with the same datasets, chunks, deflate and shuffle, but no Fletcher-32."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        for name in DATASETS:
            ds = src[name]
            dst.create_dataset(
                name,
                data=ds[()],
                maxshape=ds.maxshape,
                chunks=ds.chunks,
                compression=ds.compression,
                compression_opts=ds.compression_opts,
                shuffle=ds.shuffle,
                fletcher32=False,
            )


def _read_rows(path: Path) -> int:
    rows = 0
    with h5py.File(path, "r") as fh:
        for name in DATASETS:
            ds = fh[name]
            for i in range(ds.shape[0]):
                ds[i]
                rows += 1
    return rows


def _best(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_dense(shards: Path, work: Path, repeats: int = 3) -> dict[str, Any]:
    """Reading every dense row with and without Fletcher-32 (see the module docstring)."""
    files = [Path(p) for p in list_shards(str(shards), naming.PREFIX_DENSE)]
    plain_dir = work / "no_fletcher32"
    plain_dir.mkdir(parents=True, exist_ok=True)
    plain = []
    for f in files:
        target = plain_dir / f.name
        strip_fletcher32(f, target)
        plain.append(target)
    rows = sum(_read_rows(f) for f in files)  # warm the page cache, count rows
    sum(_read_rows(f) for f in plain)
    with_sum, without = float("inf"), float("inf")
    for _ in range(repeats):
        with_sum = min(with_sum, _best(lambda: [_read_rows(f) for f in files], 1))
        without = min(without, _best(lambda: [_read_rows(f) for f in plain], 1))
    return {
        "rows": rows,
        "ms_per_row_fletcher32": 1000 * with_sum / rows,
        "ms_per_row_plain": 1000 * without / rows,
        "ratio": with_sum / without,
        "bytes": sum(f.stat().st_size for f in files),
        "bytes_added": 4 * rows,  # one checksum per chunk, one chunk per row
    }


def time_parquet(shards: Path, repeats: int = 15) -> dict[str, Any]:
    """Reading every index file (training columns) with and without page CRC verification."""
    files = list_shards(str(shards), naming.PREFIX_INSTANCES)
    columns = list(COLUMNS)

    def read(verify: bool) -> None:
        for f in files:
            pq.read_table(f, columns=columns, page_checksum_verification=verify)

    read(True)
    checked, unchecked = float("inf"), float("inf")
    for _ in range(repeats):
        checked = min(checked, _best(lambda: read(True), 1))
        unchecked = min(unchecked, _best(lambda: read(False), 1))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return {
        "rows": rows,
        "ms_verified": 1000 * checked,
        "ms_unverified": 1000 * unchecked,
        "ratio": checked / unchecked,
    }


def time_sha256(shards: Path, read_s: float) -> dict[str, Any]:
    """Hashing every file of the folder once (``verify=True``), against ``read_s`` of reads."""
    paths = [shards / n for n in os.listdir(shards) if naming.is_shard_filename(n)]
    start = time.perf_counter()
    nbytes = sum(file_digest(str(p))[1] for p in paths)
    seconds = time.perf_counter() - start
    return {"bytes": nbytes, "ms": 1000 * seconds, "ratio_to_one_read_pass": seconds / read_s}


def time_bookkeeping(
    annotations: Path, frames_root: Path, work: Path, crop_size: int, shards: int, repeats: int = 3
) -> dict[str, Any]:
    """One ``run`` with and without the crash-safety bookkeeping (see the module docstring)."""
    from click.testing import CliRunner

    from dptrack_pipeline.cli import main
    from dptrack_pipeline.propagate.config import PropagateConfig
    from dptrack_pipeline.propagate.launch import prepare
    from pipelines.propagate import run

    beam = ["--runner", "FnApiRunner"]
    with_out, without_out = work / "with_bookkeeping", work / "without_bookkeeping"

    def cli() -> None:
        args = ["run", "--annotations", str(annotations), "--frames-root", str(frames_root),
                "--out", str(with_out), "--crop-size", str(crop_size), "--num-shards",
                str(shards), "--no-progress", "--overwrite", *beam]  # fmt: skip
        result = CliRunner().invoke(main, args)
        if result.exit_code != 0:
            raise RuntimeError(result.output)

    def library() -> None:
        shutil.rmtree(without_out, ignore_errors=True)
        without_out.mkdir(parents=True)
        config = PropagateConfig(
            annotations=str(annotations),
            frames_root=str(frames_root),
            out=str(without_out),
            crop_size=crop_size,
            num_shards=shards,
        )
        run(config, beam, prepare(config))

    best = {"with": float("inf"), "without": float("inf")}
    for _ in range(repeats):
        for name, fn in (("with", cli), ("without", library)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    same = all(
        (with_out / n).read_bytes() == (without_out / n).read_bytes()
        for n in os.listdir(without_out)
    )
    return {"s_with": best["with"], "s_without": best["without"],
            "ratio": best["with"] / best["without"], "identical_files": same}  # fmt: skip


def report_table(dense: dict[str, Any], parquet: dict[str, Any], sha: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    size = dense["bytes_added"] / dense["bytes"]
    return "\n".join(
        [
            "| check | without | with | ratio |",
            "|---|---|---|---|",
            f"| HDF5 Fletcher-32, per dense row read ({dense['rows']} rows) | "
            f"{dense['ms_per_row_plain']:.3f} ms | {dense['ms_per_row_fletcher32']:.3f} ms | "
            f"{dense['ratio']:.3f} (+4 B per chunk, {100 * size:.3f}% of the files) |",
            f"| Parquet page CRCs, all index files ({parquet['rows']} rows) | "
            f"{parquet['ms_unverified']:.1f} ms | {parquet['ms_verified']:.1f} ms | "
            f"{parquet['ratio']:.3f} |",
            f"| SHA-256 of every file (verify=True), once | - | {sha['ms']:.0f} ms for "
            f"{sha['bytes'] / 1e6:.1f} MB | {sha['ratio_to_one_read_pass']:.2f}x one read pass |",
        ]
    )
