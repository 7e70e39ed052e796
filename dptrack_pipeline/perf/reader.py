"""Samples/s of :class:`~dptrack_pipeline.train.dataset.ShardDataset` against JPEG + JSON loading.

Issue 5 asks the shard dataset to stream training samples at least 3x (:data:`GOAL`) faster
than a loader that reads the same samples from JPEG frames and a JSON label file
(:mod:`.jpeg_json`). Measured on real 720p video, in one process and one run: compare ratios;
absolute numbers depend on the machine.

**Data** (:func:`prepare_data`). Made-up labels on the video (:mod:`.annotations`: every 8th
frame, ``people`` boxes, 14 part masks each; videos of ``segment`` frames), then the real
pipeline, ``dptrack-build run --runner FnApiRunner`` (OpenCV DIS, K = 3, 5 px check,
``--crop-size 256``, ``--num-shards 4``), writes annotated + propagated instances with their
crops and crop flows; then the JPEG + JSON copy of the same rows. A work folder whose
``settings.json`` matches is reused.

**Measured** (:func:`measure`). For each loader and each worker count: a ``DataLoader`` (batch
``batch_size``, shuffled with a fixed seed, ``collate``, persistent workers with one OpenCV
thread each, the default start method), a warm-up of ``warmup_batches`` batches, then
``passes`` full passes (epochs, as training makes them) timed from the first request to the last
batch: samples/s. One pass of the default data is about a second with workers, which the
machine's noise and each epoch's restart of the workers' iterators swing by 20%; three passes
hold the ratio steadier. Also both loaders without the
partner image (``with_flow_source=False``) at the first worker count (:func:`plan_runs`). Both
data sets were written (or read) just before, so both come from the page cache. The ratio
(shards / JPEG, same workers and same partner setting) is compared with the goal. With workers,
``ShardDataset`` splits whole files between them (``split="auto"`` with more files than
workers), dealt by row count so that the workers' shares are even (unequal shards dealt in
turn left one worker idle for 40% of the pass); the map-style baseline is balanced by batches.

**The same samples** (:func:`compare_samples`). For a few rows, exactly equal points, parts, U,
V and masks, and the mean absolute difference of the uint8 crops: the shard crop comes from the
decoded video frame, the JPEG one from a re-encoded JPEG, so a small difference is expected.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dptrack_pipeline.perf.annotations import make_reader_annotations
from dptrack_pipeline.perf.jpeg_json import (
    FRAMES_DIR,
    INDEX_FILE,
    JPEG_QUALITY,
    JpegJsonDataset,
    export_jpeg_json,
)
from dptrack_pipeline.perf.timing import markdown_table
from dptrack_pipeline.train.dataset import ShardDataset
from dptrack_pipeline.train.samples import collate
from dptrack_pipeline.train.shard_index import list_shard_files

SCHEMA = "bench_reader/1"
GOAL = 3.0
CROP_SIZE = 256
NUM_SHARDS = 4
MAX_CROP_DIFF = 4.0
"""Largest mean absolute difference (uint8 levels) between a shard crop and the JPEG crop of the
same row that still counts as "the same sample" (JPEG quality 95 loses about 1 level)."""
LOADERS = ("shards", "jpeg+json")
SHARDS_DIR = "shards"
SETTINGS_FILE = "settings.json"


# --------------------------------------------------------------------------- data


def build_shards(work: Path, video: Path, frames: int, people: int, segment: int) -> Path:
    """Annotations + ``dptrack-build run`` into ``work/shards``; returns that folder."""
    from click.testing import CliRunner

    from dptrack_pipeline.cli import main as build

    annotations = work / "annotations.json"
    make_reader_annotations(annotations, video, frames, people, segment)
    shards = work / SHARDS_DIR
    args = [
        "run", "--annotations", str(annotations), "--frames-root", str(video.parent),
        "--out", str(shards), "--crop-size", str(CROP_SIZE), "--num-shards", str(NUM_SHARDS),
        "--no-progress", "--overwrite", "--runner", "FnApiRunner",
    ]  # fmt: skip
    result = CliRunner().invoke(build, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"dptrack-build run failed:\n{result.output}")
    return shards


def prepare_data(work: Path, video: Path, frames: int, people: int, segment: int) -> dict:
    """Build (or reuse, when ``work/settings.json`` matches) the shards and the JPEG + JSON copy.

    Returns:
        ``{"shards": Path, "index": Path, "reused": bool, "build_s": float}``.
    """
    settings = {
        "video": str(video),
        "frames": frames,
        "people": people,
        "segment": segment,
        "crop_size": CROP_SIZE,
        "num_shards": NUM_SHARDS,
        "jpeg_quality": JPEG_QUALITY,
    }
    shards, index = work / SHARDS_DIR, work / INDEX_FILE
    settings_path = work / SETTINGS_FILE
    if (
        settings_path.exists()
        and json.loads(settings_path.read_text()) == settings
        and (shards / "dataset_info.json").exists()
        and index.exists()
    ):
        return {"shards": shards, "index": index, "reused": True, "build_s": 0.0}
    settings_path.unlink(missing_ok=True)
    shutil.rmtree(work / FRAMES_DIR, ignore_errors=True)
    t0 = time.perf_counter()
    build_shards(work, video, frames, people, segment)
    export_jpeg_json(shards, video, work, CROP_SIZE)
    settings_path.write_text(json.dumps(settings))
    return {"shards": shards, "index": index, "reused": False, "build_s": time.perf_counter() - t0}


def data_summary(shards: Path, index: Path) -> dict[str, Any]:
    """Row counts per shard and bytes on disk of both formats."""
    entries = json.loads(index.read_text())["instances"]
    files = list_shard_files([str(shards)])
    shard_bytes = sum(p.stat().st_size for p in shards.glob("*") if p.suffix in (".parquet", ".h5"))
    jpegs = list((index.parent / FRAMES_DIR).glob("*.jpg"))
    return {
        "rows": len(entries),
        "annotated_rows": sum(e["offset"] == 0 for e in entries),
        "propagated_rows": sum(e["offset"] != 0 for e in entries),
        "rows_per_shard": [f.num_rows for f in files],
        "shard_mb": shard_bytes / 1e6,
        "jpeg_frames": len(jpegs),
        "jpeg_json_mb": (sum(p.stat().st_size for p in jpegs) + index.stat().st_size) / 1e6,
    }


def environment() -> dict[str, Any]:
    """The machine: cores this process may use, CPU, library versions."""
    return {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
    }


# --------------------------------------------------------------------------- measuring


@contextmanager
def opencv_threads(threads: int | None) -> Iterator[None]:
    """Set OpenCV's thread count for the block (``None``: leave it), then restore it.

    Set in the parent, before the ``DataLoader`` forks: calling ``cv2.setNumThreads`` inside a
    forked worker tears down the thread pool it inherited in a locked state and hangs.
    """
    if threads is None:
        yield
        return
    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def make_loader(dataset: Dataset, workers: int, batch_size: int, seed: int) -> DataLoader:
    """A shuffled ``DataLoader`` with ``collate`` (the map-style one shuffles with ``seed``)."""
    iterable = isinstance(dataset, ShardDataset)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=not iterable,
        generator=None if iterable else torch.Generator().manual_seed(seed),
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
    )


def time_pass(loader: DataLoader, warmup_batches: int, passes: int = 1) -> dict[str, float]:
    """Warm up on ``warmup_batches`` batches, then time ``passes`` full passes of ``loader``.

    Returns:
        ``{"samples", "batches", "seconds", "samples_per_s"}``.
    """
    for i, _ in enumerate(loader):
        if i + 1 >= warmup_batches:
            break
    samples = batches = 0
    t0 = time.perf_counter()
    for _ in range(passes):
        for batch in loader:
            samples += batch["image"].shape[0]
            batches += 1
    seconds = time.perf_counter() - t0
    return {
        "samples": samples,
        "batches": batches,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
    }


def plan_runs(workers_list: Sequence[int]) -> list[tuple[str, int, bool]]:
    """``(loader, workers, with_flow_source)`` runs: both loaders with the partner image at each
    worker count, then both without it at the first worker count."""
    runs = [(name, w, True) for w in workers_list for name in LOADERS]
    runs += [(name, workers_list[0], False) for name in LOADERS]
    return runs


def measure(
    shards: Path,
    index: Path,
    loader_name: str,
    workers: int,
    with_flow_source: bool,
    batch_size: int,
    seed: int,
    warmup_batches: int,
    passes: int = 1,
) -> dict[str, Any]:
    """One row of the table: ``loader_name`` (``shards`` or ``jpeg+json``) with ``workers``."""
    if loader_name == "shards":
        dataset: Dataset = ShardDataset(
            str(shards), shuffle=True, seed=seed, with_flow_source=with_flow_source
        )
    else:
        dataset = JpegJsonDataset(index, with_flow_source=with_flow_source)
    # Worker processes get one OpenCV thread each (as torch gives them one thread each).
    with opencv_threads(1 if workers > 0 else None):
        loader = make_loader(dataset, workers, batch_size, seed)
        result = time_pass(loader, warmup_batches, passes)
        del loader  # stops persistent workers
    return {
        "loader": loader_name,
        "workers": workers,
        "with_flow_source": with_flow_source,
        **result,
    }


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Set ``ratio_vs_jpeg`` on each row: its samples/s over JPEG's, same workers and partner."""
    jpeg = {
        (r["workers"], r["with_flow_source"]): r["samples_per_s"]
        for r in results
        if r["loader"] == "jpeg+json"
    }
    for r in results:
        base = jpeg.get((r["workers"], r["with_flow_source"]))
        r["ratio_vs_jpeg"] = r["samples_per_s"] / base if base else None


def goal_by_workers(results: Sequence[dict[str, Any]], workers_list: Sequence[int]) -> dict:
    """``{str(workers): {"ratio", "met"}}`` of the shard loader with the partner image."""
    goal = {}
    for w in workers_list:
        ratio = next(
            r["ratio_vs_jpeg"]
            for r in results
            if r["loader"] == "shards" and r["workers"] == w and r["with_flow_source"]
        )
        goal[str(w)] = {"ratio": ratio, "met": ratio >= GOAL}
    return goal


def compare_samples(shards: Path, index: Path, count: int) -> dict[str, Any]:
    """Check both loaders yield the same samples on ``count`` rows spread over the shards.

    Points, parts, U, V, masks and ``has_flow`` must be exactly equal; crops (and partner crops)
    may differ by the JPEG re-encoding: their mean absolute uint8 difference is reported and must
    stay under :data:`MAX_CROP_DIFF`.
    """
    shard_samples = {
        (s["meta"]["shard"], s["meta"]["row"]): s for s in ShardDataset(str(shards), shuffle=False)
    }
    jpeg = JpegJsonDataset(index)
    picks = np.unique(np.linspace(0, len(jpeg) - 1, count).round().astype(int))
    crop_diffs, partner_diffs, mismatches = [], [], []
    for i in picks:
        b = jpeg[int(i)]
        a = shard_samples[(b["meta"]["shard"], b["meta"]["row"])]
        for key in ("points", "point_I", "point_U", "point_V", "part_mask"):
            if not torch.equal(a[key], b[key]):
                mismatches.append(f"row {int(i)}: {key}")
        if a["has_flow"] != b["has_flow"]:
            mismatches.append(f"row {int(i)}: has_flow")
        crop_diffs.append((a["image"].float() - b["image"].float()).abs().mean().item())
        if "flow_source_image" in a and "flow_source_image" in b:
            diff = (a["flow_source_image"].float() - b["flow_source_image"].float()).abs()
            partner_diffs.append(diff.mean().item())
    worst = max(crop_diffs + partner_diffs)
    return {
        "rows_compared": len(picks),
        "partners_compared": len(partner_diffs),
        "exact_mismatches": mismatches,
        "crop_mean_abs_diff": float(np.mean(crop_diffs)),
        "partner_mean_abs_diff": float(np.mean(partner_diffs)) if partner_diffs else None,
        "worst_mean_abs_diff": worst,
        "max_allowed_mean_abs_diff": MAX_CROP_DIFF,
        "passed": not mismatches and worst <= MAX_CROP_DIFF,
    }


# --------------------------------------------------------------------------- reporting


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a Markdown table, one row per loader run."""
    header = (
        "loader",
        "partner image",
        "workers",
        "samples/s",
        "ratio vs JPEG+JSON (same workers)",
    )
    rows = [
        (
            r["loader"],
            "yes" if r["with_flow_source"] else "no",
            str(r["workers"]),
            f"{r['samples_per_s']:.1f}",
            "-" if r["ratio_vs_jpeg"] is None else f"{r['ratio_vs_jpeg']:.2f}x",
        )
        for r in results
    ]
    return markdown_table(header, rows)


def run_line(result: dict[str, Any]) -> str:
    """One loader run as a progress line."""
    return (
        f"  {result['loader']:9s} workers {result['workers']} partner "
        f"{result['with_flow_source']!s:5s}: {result['samples_per_s']:8.1f} samples/s "
        f"({result['samples']} in {result['seconds']:.2f} s)"
    )


def goal_lines(goal: dict[str, dict[str, Any]]) -> list[str]:
    """The ratio and verdict per worker count."""
    return [
        f"ratio with {w} workers: {g['ratio']:.2f}x (goal >= {GOAL:.0f}x: "
        f"{'met' if g['met'] else 'NOT met'})"
        for w, g in goal.items()
    ]


FAVOURS_BASELINE = (
    "The JPEG+JSON loader returns zero flows: it cannot produce the stored crop flows "
    "(recomputing them would cost a flow estimate per propagated sample), so the comparison "
    "favours it."
)


def same_samples_line(check: dict[str, Any]) -> str:
    """The result of :func:`compare_samples` in one line."""
    partner = check["partner_mean_abs_diff"]
    mismatches = check["exact_mismatches"]
    return (
        f"same samples: {check['rows_compared']} rows, points/parts/UV/masks "
        f"{'exactly equal' if not mismatches else mismatches}; "
        f"crop mean |diff| {check['crop_mean_abs_diff']:.2f}"
        + (f", partner crops {partner:.2f}" if partner is not None else "")
        + f" uint8 levels (JPEG q{JPEG_QUALITY}); "
        + ("passed" if check["passed"] else "FAILED")
    )
