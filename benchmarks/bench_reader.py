"""Samples/s of :class:`~dptrack_pipeline.train.dataset.ShardDataset` against JPEG + JSON loading.

Issue 5 asks the shard dataset to stream training samples at least 3x faster than a loader that
reads the same samples from JPEG frames and a JSON label file. This script measures that, on real
720p video, in one process and one run (compare ratios; absolute numbers depend on the machine).

**Data.** ``../shared/data/video/street_people_720p.avi`` (1280x720). The labels are made up with
:func:`bench_pipeline.make_annotations` (every 8th frame "labelled" with ``--people`` boxes of 100
DensePose points each) and wrapped here: the first ``--frames`` frames are cut into videos of
``--segment`` frames (``file_name`` ``street_people_720p.avi#<n>``, so each video names its frames
of the one file), because shards are keyed by video and one video would fill one shard; and every
annotation gets 14 part masks (a drawn body, jittered), so both loaders decode masks. Then the
real pipeline, ``dptrack-build run --runner FnApiRunner`` (OpenCV DIS, K = 3, 5 px check,
``--crop-size 256``, ``--num-shards 4``), writes annotated + propagated instances with their
crops and crop flows.

**The baseline, "the same samples".** The frames the instances live on are written as JPEG
(``cv2.imwrite``, quality 95, 1280x720) and the instance rows of the shards (read with
:func:`dptrack_pipeline.shards.read_instances`) as one JSON file (image path, bbox, crop_box,
dp_x/dp_y/dp_I/dp_U/dp_V, dp_masks counts, offset, source annotation and its crop box).
:class:`JpegJsonDataset` (map-style) decodes the row's JPEG, crops ``crop_box`` to 256 px with
:func:`dptrack_pipeline.crops.crop_image` (as the pipeline does), computes the crop-pixel
points and the part mask with the dataset's own functions and, for propagated rows, decodes the
source frame's JPEG and crops the source crop (the partner image). It **cannot produce the stored
crop flows** (a JPEG + JSON loader would have to recompute them: a forward and a backward 720p
flow per propagated sample): it returns zero flows marked invalid, so the comparison favours the
baseline. It returns the keys and dtypes of ``ShardDataset`` samples, so the same ``collate``
batches both.

**Measured.** For each loader and each ``--workers`` value: a ``DataLoader`` (batch
``--batch-size``, shuffled with a fixed seed, ``collate``, persistent workers with one OpenCV thread
each, the default start method), a warm-up of ``--warmup-batches`` batches, then one full pass timed
from the first request to the last batch: samples/s. Also both loaders without the partner image
(``with_flow_source=False``) at the first worker count. Both data sets were written (or read) just
before, so both come from the page cache. The ratio (shards / JPEG, same workers and same partner
setting) is compared with the goal of 3x. With workers, ``ShardDataset`` splits whole files between
them (``split="auto"`` with more files than workers), so unequal shards (the rows per shard are
printed) leave one worker idle at the end of the pass; the map-style baseline is balanced by
batches. Last, a check that both loaders yield the same samples: for a few rows, exactly equal
points, parts, U, V and masks, and the mean absolute difference of the uint8 crops (the shard crop
comes from the decoded video frame, the JPEG one from a re-encoded JPEG, so a small difference is
expected).

    python benchmarks/bench_reader.py [--frames 128] [--people 4] [--workers 0 2]
        [--batch-size 16] [--work DIR] [--json OUT.json]

``--work DIR`` keeps the shards, the JPEGs and the JSON there and reuses them when their settings
match. The default run takes about 1.5 minutes on 2 cores, 40 s of it building the shards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import make_annotations  # noqa: E402

from dptrack_pipeline.crops import crop_image  # noqa: E402
from dptrack_pipeline.formats.rle import MASK_PART_NAMES, decode_part_masks  # noqa: E402
from dptrack_pipeline.frames import iter_video_frames  # noqa: E402
from dptrack_pipeline.shards import read_instances  # noqa: E402
from dptrack_pipeline.structures import DP_GRID  # noqa: E402
from dptrack_pipeline.train.dataset import (  # noqa: E402
    ShardDataset,
    collate,
    crop_coordinates,
    list_shard_files,
    mask_on_crop,
)

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "street_people_720p.avi"
SCHEMA = "bench_reader/1"
GOAL = 3.0
JPEG_QUALITY = 95
CROP_SIZE = 256
NUM_SHARDS = 4
MAX_CROP_DIFF = 4.0
"""Largest mean absolute difference (uint8 levels) between a shard crop and the JPEG crop of the
same row that still counts as "the same sample" (JPEG quality 95 loses about 1 level)."""

INDEX_FILE = "instances.json"
FRAMES_DIR = "frames"
SHARDS_DIR = "shards"
SETTINGS_FILE = "settings.json"
INDEX_COLUMNS = (
    "video_id",
    "frame_index",
    "source_frame_index",
    "offset",
    "annotation_id",
    "track_id",
    "image_file",
    "bbox",
    "crop_box",
    "dp_x",
    "dp_y",
    "dp_I",
    "dp_U",
    "dp_V",
    "dp_masks",
)


# --------------------------------------------------------------------------- data


def _part(name: str) -> int:
    return MASK_PART_NAMES.index(name) + 1


def body_part_labels(rng: np.random.Generator) -> np.ndarray:
    """A drawn standing body on the 256 box grid: ``(256, 256)`` uint8 coarse parts 0..14.

    Shifted by a few cells at random so that the masks of different annotations differ; the
    labels only need to cost what real masks cost to decode and resample.
    """
    labels = np.zeros((DP_GRID, DP_GRID), np.uint8)
    dx, dy = (int(v) for v in rng.integers(-8, 9, 2))

    def rect(name: str, x0: int, y0: int, x1: int, y1: int) -> None:
        cv2.rectangle(labels, (x0 + dx, y0 + dy), (x1 + dx, y1 + dy), _part(name), -1)

    def blob(name: str, cx: int, cy: int, ax: int, ay: int) -> None:
        cv2.ellipse(labels, (cx + dx, cy + dy), (ax, ay), 0, 0, 360, _part(name), -1)

    blob("Head", 128, 30, 20, 24)
    rect("Torso", 96, 54, 160, 130)
    rect("Upper Arm Right", 78, 56, 95, 100)
    rect("Upper Arm Left", 161, 56, 178, 100)
    rect("Lower Arm Right", 78, 101, 94, 140)
    rect("Lower Arm Left", 162, 101, 178, 140)
    blob("Right Hand", 86, 150, 9, 11)
    blob("Left Hand", 170, 150, 9, 11)
    rect("Upper Leg Right", 98, 131, 126, 190)
    rect("Upper Leg Left", 130, 131, 158, 190)
    rect("Lower Leg Right", 100, 191, 124, 236)
    rect("Lower Leg Left", 132, 191, 156, 236)
    rect("Right Foot", 94, 237, 124, 250)
    rect("Left Foot", 132, 237, 162, 250)
    return labels


def make_reader_annotations(
    path: Path, video: Path, frames: int, people: int, segment: int, seed: int = 0
) -> list[int]:
    """:func:`bench_pipeline.make_annotations`, cut into videos of ``segment`` frames, with masks.

    Video ``s`` (``vid_id`` ``s + 1``) holds frames ``s * segment ..`` of ``video``, each named
    ``<video name>#<frame>`` (rule 2 of ``resolve_frame``: that frame of that file). Every
    annotation gets 14 compressed-RLE ``dp_masks`` of :func:`body_part_labels`.

    Returns:
        The labelled frame positions in ``video``.
    """
    from dptrack_pipeline.formats.rle import encode_part_masks

    labelled = make_annotations(path, video, frames, people, seed)
    data = json.loads(path.read_text())
    for i, image in enumerate(data["images"]):
        first = i - i % segment
        image["vid_id"] = 1 + i // segment
        image["file_name"] = f"{video.name}#{i}"
        image["nframes"] = min(segment, frames - first)
    rng = np.random.default_rng(seed + 1)
    for annotation in data["annotations"]:
        annotation["dp_masks"] = list(encode_part_masks(body_part_labels(rng)))
    path.write_text(json.dumps(data))
    return labelled


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


def video_frame(image_file: str) -> int:
    """Frame number of ``<video>#<n>`` (the ``file_name`` form written here)."""
    return int(image_file.rsplit("#", 1)[1])


def export_jpeg_json(shards: Path, video: Path, out: Path) -> Path:
    """Write the frames of every instance row as JPEG and the rows as one JSON file.

    Each JSON entry: ``image`` (JPEG path relative to ``out``), the row's ``bbox``, ``crop_box``,
    ``dp_*`` lists and ``dp_masks`` counts, ``offset`` and provenance, its place in the shards
    (``shard``, ``row``), and ``source``: the ``image`` and ``crop_box`` of the annotated row it
    was propagated from in the same shard (``None`` for annotated rows, or when that row is not
    in the shard, as :class:`ShardDataset` has no partner image then either).

    Returns:
        The JSON path.
    """
    table = read_instances(str(shards), columns=list(INDEX_COLUMNS))
    rows = table.to_pylist()
    files = list_shard_files([str(shards)])
    if sum(f.num_rows for f in files) != len(rows):
        raise RuntimeError("shard row counts do not add up to read_instances' rows")
    places = [(f.name, r) for f in files for r in range(f.num_rows)]
    needed = sorted({video_frame(r["image_file"]) for r in rows})
    (out / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    wanted = set(needed)
    for index, rgb in iter_video_frames(str(video), 0, needed[-1] + 1):
        if index in wanted:
            path = out / FRAMES_DIR / f"{index:06d}.jpg"
            if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
                raise RuntimeError(f"cannot write {path}")
    sources = {
        (shard, r["annotation_id"]): r
        for (shard, _), r in zip(places, rows, strict=True)
        if r["offset"] == 0
    }
    entries = []
    for (shard, row), r in zip(places, rows, strict=True):
        entry = {key: r[key] for key in INDEX_COLUMNS if key != "image_file"}
        entry["image"] = f"{FRAMES_DIR}/{video_frame(r['image_file']):06d}.jpg"
        entry["shard"], entry["row"] = shard, row
        source = sources.get((shard, r["annotation_id"])) if r["offset"] != 0 else None
        entry["source"] = (
            None
            if source is None
            else {
                "image": f"{FRAMES_DIR}/{video_frame(source['image_file']):06d}.jpg",
                "crop_box": source["crop_box"],
            }
        )
        entries.append(entry)
    path = out / INDEX_FILE
    path.write_text(json.dumps({"crop_size": CROP_SIZE, "instances": entries}))
    return path


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
    export_jpeg_json(shards, video, work)
    settings_path.write_text(json.dumps(settings))
    return {"shards": shards, "index": index, "reused": False, "build_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- the baseline


def _read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class JpegJsonDataset(Dataset):
    """The JPEG + JSON loader: samples with :class:`ShardDataset`'s keys, from frames and labels.

    Args:
        index: the JSON written by :func:`export_jpeg_json` (image paths relative to its folder).
        with_flow_source: decode the source frame of propagated rows and crop the partner image.

    A sample holds ``image`` ``(3, S, S)`` uint8, ``points`` ``(P, 2)`` float32 crop pixels,
    ``point_I`` ``(P,)`` int64, ``point_U``/``point_V`` float32, ``part_mask`` ``(S, S)`` int64
    (``-1`` without masks), ``has_flow`` (propagated row with its source) and then
    ``flow_source_image`` ``(3, S, S)`` uint8 and ``flow`` ``(S, S, 2)`` float32 **zeros** with
    ``flow_valid`` all ``False``: the stored crop flows do not exist in this format.
    """

    def __init__(self, index: Path | str, *, with_flow_source: bool = True) -> None:
        index = Path(index)
        data = json.loads(index.read_text())
        self.root = str(index.parent)
        self.crop_size = int(data["crop_size"])
        self.entries: list[dict[str, Any]] = data["instances"]
        self.with_flow_source = with_flow_source

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict[str, Any]:
        entry, size = self.entries[i], self.crop_size
        image = _read_rgb(os.path.join(self.root, entry["image"]))
        bbox, crop_box = entry["bbox"], entry["crop_box"]
        bx, by, bw, bh = (float(v) for v in bbox)
        dp_x = np.asarray(entry["dp_x"], dtype=np.float32)
        dp_y = np.asarray(entry["dp_y"], dtype=np.float32)
        frame_xy = np.stack([bx + dp_x / DP_GRID * bw, by + dp_y / DP_GRID * bh], axis=1)
        sample: dict[str, Any] = {
            "image": _chw(crop_image(image, crop_box, size)),
            "points": torch.from_numpy(crop_coordinates(frame_xy, crop_box, size)),
            "point_I": torch.as_tensor(np.asarray(entry["dp_I"], dtype=np.int64)),
            "point_U": torch.as_tensor(np.asarray(entry["dp_U"], dtype=np.float32)),
            "point_V": torch.as_tensor(np.asarray(entry["dp_V"], dtype=np.float32)),
        }
        masks = entry["dp_masks"]
        if masks:
            rles = [{"size": [DP_GRID, DP_GRID], "counts": c} if c else None for c in masks]
            labels = decode_part_masks(rles)
            sample["part_mask"] = torch.from_numpy(mask_on_crop(labels, bbox, crop_box, size))
        else:
            sample["part_mask"] = torch.full((size, size), -1, dtype=torch.int64)
        source = entry["source"]
        sample["has_flow"] = source is not None
        if source is not None:
            sample["flow"] = torch.zeros(size, size, 2)
            sample["flow_valid"] = torch.zeros(size, size, dtype=torch.bool)
            if self.with_flow_source:
                partner = _read_rgb(os.path.join(self.root, source["image"]))
                sample["flow_source_image"] = _chw(crop_image(partner, source["crop_box"], size))
        sample["meta"] = {
            key: entry[key]
            for key in (
                "video_id",
                "frame_index",
                "source_frame_index",
                "offset",
                "annotation_id",
                "track_id",
            )
        }
        sample["meta"].update(
            estimator="", folder=self.root, shard=entry["shard"], row=entry["row"]
        )
        return sample


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


def time_pass(loader: DataLoader, warmup_batches: int) -> dict[str, float]:
    """Warm up on ``warmup_batches`` batches, then time one full pass of ``loader``.

    Returns:
        ``{"samples", "batches", "seconds", "samples_per_s"}``.
    """
    for i, _ in enumerate(loader):
        if i + 1 >= warmup_batches:
            break
    samples = batches = 0
    t0 = time.perf_counter()
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


def measure(
    shards: Path,
    index: Path,
    loader_name: str,
    workers: int,
    with_flow_source: bool,
    batch_size: int,
    seed: int,
    warmup_batches: int,
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
        result = time_pass(loader, warmup_batches)
        del loader  # stops persistent workers
    return {
        "loader": loader_name,
        "workers": workers,
        "with_flow_source": with_flow_source,
        **result,
    }


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
        exact = ("points", "point_I", "point_U", "point_V", "part_mask")
        for key in exact:
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


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a Markdown table, one row per loader run."""
    lines = [
        "| loader | partner image | workers | samples/s | ratio vs JPEG+JSON (same workers) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        ratio = "-" if r["ratio_vs_jpeg"] is None else f"{r['ratio_vs_jpeg']:.2f}x"
        partner = "yes" if r["with_flow_source"] else "no"
        lines.append(
            f"| {r['loader']} | {partner} | {r['workers']} | {r['samples_per_s']:.1f} | {ratio} |"
        )
    return "\n".join(lines)


def plan_runs(workers_list: Sequence[int]) -> list[tuple[str, int, bool]]:
    """``(loader, workers, with_flow_source)`` runs: both loaders with the partner image at each
    worker count, then both without it at the first worker count."""
    runs = [(name, w, True) for w in workers_list for name in ("shards", "jpeg+json")]
    runs += [(name, workers_list[0], False) for name in ("shards", "jpeg+json")]
    return runs


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=128, help="first frames of the video used")
    parser.add_argument("--people", type=int, default=4, help="labelled people per frame")
    parser.add_argument("--segment", type=int, default=16, help="frames per made-up video")
    parser.add_argument(
        "--workers", "--workers-list", dest="workers_list", type=int, nargs="+", default=[0, 2]
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup-batches", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-rows", type=int, default=8, help="rows compared across loaders")
    parser.add_argument("--work", type=Path, default=None, help="keep (and reuse) the data here")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if not args.video.exists():
        sys.exit(f"{args.video} not found: this benchmark reads ../shared/data")
    if args.frames < 8 or args.segment < 8:
        sys.exit("--frames and --segment must be >= 8 (one labelled frame every 8)")
    work = args.work or Path(tempfile.mkdtemp(prefix="dptrack_bench_reader_"))
    work.mkdir(parents=True, exist_ok=True)

    data = prepare_data(work, args.video, args.frames, args.people, args.segment)
    shards, index = data["shards"], data["index"]
    summary = data_summary(shards, index)
    env = environment()
    print(
        f"machine: {env['cores']} cores ({env['processor']}), torch {env['torch']}, "
        f"OpenCV {env['opencv']}"
    )
    built = "reused" if data["reused"] else f"built in {data['build_s']:.0f} s"
    print(
        f"data ({built}, {work}): {args.video.name} 1280x720, {args.frames} frames, "
        f"{summary['rows']} instances ({summary['annotated_rows']} annotated, "
        f"{summary['propagated_rows']} propagated), {CROP_SIZE}-px crops, rows per shard "
        f"{summary['rows_per_shard']}; shards {summary['shard_mb']:.1f} MB, "
        f"{summary['jpeg_frames']} JPEGs + JSON {summary['jpeg_json_mb']:.1f} MB",
        flush=True,
    )
    results = []
    for name, workers, with_source in plan_runs(args.workers_list):
        result = measure(
            shards, index, name, workers, with_source, args.batch_size, args.seed,
            args.warmup_batches,
        )  # fmt: skip
        results.append(result)
        print(
            f"  {name:9s} workers {workers} partner {with_source!s:5s}: "
            f"{result['samples_per_s']:8.1f} samples/s ({result['samples']} in "
            f"{result['seconds']:.2f} s)",
            flush=True,
        )
    add_ratios(results)
    check = compare_samples(shards, index, args.check_rows)

    print()
    print(markdown_table(results))
    print()
    goal = {}
    for w in args.workers_list:
        ratio = next(
            r["ratio_vs_jpeg"]
            for r in results
            if r["loader"] == "shards" and r["workers"] == w and r["with_flow_source"]
        )
        goal[str(w)] = {"ratio": ratio, "met": ratio >= GOAL}
        print(
            f"ratio with {w} workers: {ratio:.2f}x (goal >= {GOAL:.0f}x: "
            f"{'met' if ratio >= GOAL else 'NOT met'})"
        )
    print(
        "The JPEG+JSON loader returns zero flows: it cannot produce the stored crop flows "
        "(recomputing them would cost a flow estimate per propagated sample), so the comparison "
        "favours it."
    )
    partner = check["partner_mean_abs_diff"]
    print(
        f"same samples: {check['rows_compared']} rows, points/parts/UV/masks "
        f"{'exactly equal' if not check['exact_mismatches'] else check['exact_mismatches']}; "
        f"crop mean |diff| {check['crop_mean_abs_diff']:.2f}"
        + (f", partner crops {partner:.2f}" if partner is not None else "")
        + f" uint8 levels (JPEG q{JPEG_QUALITY}); "
        + ("passed" if check["passed"] else "FAILED")
    )
    report = {
        "schema": SCHEMA,
        "environment": env,
        "settings": {
            "video": str(args.video),
            "frames": args.frames,
            "people": args.people,
            "segment": args.segment,
            "crop_size": CROP_SIZE,
            "num_shards": NUM_SHARDS,
            "jpeg_quality": JPEG_QUALITY,
            "batch_size": args.batch_size,
            "workers_list": list(args.workers_list),
            "warmup_batches": args.warmup_batches,
            "seed": args.seed,
            "work": str(work),
        },
        "data": {**summary, "reused": data["reused"], "build_s": data["build_s"]},
        "results": results,
        "goal": {"ratio": GOAL, "by_workers": goal},
        "same_samples": check,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
