"""``dptrack-build export``: a ``run`` folder's labels as a DensePose-COCO or DensePose-PoseTrack
JSON file that other trainers read. :func:`export`.

**What is exported.** Every instance row of the folder (the file list is ``dataset_info.json``'s,
sizes checked, Parquet page CRCs verified as rows are read), except rows left out by the filters
(``include_sources``, :class:`~dptrack_pipeline.train.filters.LabelFilter`: ``|offset|``,
quality thresholds, ``min_points``) and rows **refused**, with a reason counted in
:class:`~.annotations.ExportCounts`:

* ``frame_not_in_inputs``: the row's frame is not in the ``images`` of the run's input files
  (they are read again for ``width``, ``height`` and the PoseTrack fields);
* ``frame_in_video_file``: the frame exists only inside a video file and ``--write-frames`` was
  not given (other trainers read image files);
* ``frame_unreadable`` / ``frame_size_mismatch``: the frame cannot be read, or its real size is
  not the one the inputs say (detectron2 refuses such an image; the run checked it, so the
  frames changed since).

``rows_in = rows_exported + rows_filtered + refused`` always holds.

**Formats.** ``densepose-coco``: ``images`` are the frames with an exported annotation, with
``id``, ``file_name`` (relative to the frames root), ``width``, ``height``, ``vid_id``,
``frame_id``, ``nframes``, ``is_labeled``; ``annotations`` as in :mod:`.annotations`;
``categories`` the COCO person with its 17 keypoints and skeleton; ``info`` says where the file
came from and what was counted. ``densepose-posetrack``: the DensePose-PoseTrack layout, every
frame of each exported video listed (so a frame's position in its video, hence T ± k, is the same
as in the input; use it to propagate an export again) with ``has_no_densepose`` true where no
DensePose annotation was exported and ``ignore_regions_x``/``_y`` carried over; in one file, or
one file per video (``per_video``, a folder ``<video_id>.json``).

**Streaming.** Rows are read a record batch at a time and annotations written as they are made,
so memory does not grow with the number of instances (only the set of referenced frames is
kept). Two passes: the first decides which frames are referenced and extracts those that live in
video files (``--write-frames``); the second writes. The file is written atomically; annotation
ids are 1, 2, ... in shard and row order, so the same folder exports to the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from dptrack_pipeline.export.annotations import ExportCounts, Fixes, coco_annotation
from dptrack_pipeline.export.config import (
    FORMAT_COCO,
    FORMAT_POSETRACK,
    ExportConfig,
    prepare_out,
)
from dptrack_pipeline.export.images import (
    IMAGE_FIELDS,
    FrameSizes,
    SourceImage,
    check_write_frames,
    extract_frames,
    extracted_name,
    locate,
    source_images,
)
from dptrack_pipeline.export.writer import JsonOutputs
from dptrack_pipeline.frames import FrameLocation
from dptrack_pipeline.shards import naming, read_dataset_info
from dptrack_pipeline.shards.manifest import folder_kind
from dptrack_pipeline.shards.reader import CorruptShardError
from dptrack_pipeline.train.filters import FilterStats
from dptrack_pipeline.train.shard_index import list_shard_files, require_columns

ROW_COLUMNS = (
    "video_id", "frame_id", "frame_index", "image_file", "track_id", "annotation_id",
    "source_frame_id", "offset", "bbox", "keypoints", "dp_x", "dp_y", "dp_I", "dp_U", "dp_V",
    "dp_masks", "estimator",
)  # fmt: skip
OPTIONAL_COLUMNS = ("fb_error_median", "photo_median", "kept_fraction", "pckh", "dp_fb_error",
                    "dp_photo", "dp_chain_error", "dp_source_index")  # fmt: skip
BATCH_ROWS = 1024


@dataclass
class ExportResult:
    """What an export wrote and counted."""

    paths: list[str]
    counts: ExportCounts
    fixes: Fixes
    filtered: FilterStats

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts.__dict__,
            "fixes": self.fixes.as_dict(),
            "filter": self.filtered.as_dict(),
        }


class _Plan:
    """The inputs an export resolves once: shard files, input frames, frame root, checks."""

    def __init__(self, config: ExportConfig) -> None:
        try:
            info = read_dataset_info(config.shards)
        except FileNotFoundError as err:
            raise ValueError(
                f"{config.shards} is not a finished dptrack-build run folder ({err})"
            ) from err
        if folder_kind(info) != "run":
            raise ValueError(f"{config.shards} is a pairs folder: it holds no labels to export")
        recorded = info.get("config", {})
        self.files = list_shard_files([config.shards], naming.PREFIX_INSTANCES)
        require_columns(self.files, config.label_filter.required_columns())
        sources = config.annotations or (
            recorded.get("annotations"),
            *recorded.get("posetrack", []),
        )
        for path in sources:
            if not path or not os.path.isfile(path):
                raise ValueError(
                    f"the run's input annotation file {path!r} is not here (paths in "
                    "dataset_info.json are as the run was given them); pass --annotations"
                )
        self.frames_root = config.frames_root or recorded.get("frames_root")
        if not self.frames_root or not os.path.isdir(self.frames_root):
            raise ValueError(
                f"frames root {self.frames_root!r} is not a folder here; pass --frames-root"
            )
        self.follow = bool(recorded.get("follow_symlinks", False))
        self.videos = source_images(list(sources))
        self.by_key = {(v, int(im.record["frame_id"])): im for v, ims in self.videos.items()
                       for im in ims}  # fmt: skip
        self.write_rel = (
            check_write_frames(self.frames_root, config.write_frames)
            if config.write_frames
            else None
        )
        self.sizes = FrameSizes()
        self.source_files = list(sources)
        self.info = info

    def file_name(self, image: SourceImage) -> tuple[str | None, bool]:
        """``(file_name, lives in a video file)`` of a listed frame."""
        location = locate(self.frames_root, image, self.follow)
        in_video = location.video_index is not None
        if in_video and self.write_rel is not None:
            return extracted_name(self.write_rel, image.video_id, image.index), True
        return str(image.record["file_name"]), in_video


def _rows(plan: _Plan) -> Iterator[dict[str, Any]]:
    """The folder's rows, one row group at a time (``iter_batches`` keeps the decoded pages of a
    whole file alive: measured, peak memory grew with the shard's size)."""
    for shard in plan.files:
        path = os.path.join(shard.folder, shard.name)
        try:
            handle = pq.ParquetFile(path, page_checksum_verification=True, pre_buffer=False)
            present = set(handle.schema_arrow.names)
            columns = [c for c in (*ROW_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
            for group in range(handle.num_row_groups):
                table = handle.read_row_group(group, columns=columns, use_threads=False)
                for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                    yield from batch.to_pylist()
        except OSError as err:
            raise CorruptShardError(f"{path} cannot be read ({err})") from err


def _decide(
    row: dict[str, Any], config: ExportConfig, plan: _Plan, stats: FilterStats
) -> tuple[str, Any]:
    """``("filtered", None)``, ``("refused", reason)`` or ``("export", (row, image))``."""
    if not config.include_sources and int(row["offset"]) == 0:
        return "filtered", None
    kept = config.label_filter.apply(row, stats)
    if kept is None:
        return "filtered", None
    image = plan.by_key.get((row["video_id"], int(row["frame_id"])))
    if image is None:
        return "refused", "frame_not_in_inputs"
    _, in_video = plan.file_name(image)
    if in_video and plan.write_rel is None:
        return "refused", "frame_in_video_file"
    return "export", (kept, image)


def _image_record(
    image: SourceImage, file_name: str, size: tuple[int, int], fmt: str, has_dp: bool
) -> dict[str, Any]:
    record = image.record
    out = {
        "id": int(record["id"]),
        "file_name": file_name,
        "width": int(size[0]),
        "height": int(size[1]),
        "vid_id": record["vid_id"],
        "frame_id": int(record["frame_id"]),
    }
    for name in IMAGE_FIELDS[:2]:
        if name in record:
            out[name] = record[name]
    if fmt == FORMAT_POSETRACK:
        out["has_no_densepose"] = not has_dp
        for name in IMAGE_FIELDS[3:]:
            out[name] = record.get(name, [])
    return out


def export_folder(
    config: ExportConfig, progress: Callable[[int], None] | None = None
) -> ExportResult:
    """Write the export (module docstring); ``progress(rows)`` is called as rows are read.

    Raises:
        ValueError: a pairs folder, inputs not found, a filter the folder's schema cannot
            apply, ``write_frames`` outside the frames root.
        FileNotFoundError / CorruptShardError: the folder is not finished or not intact.
    """
    plan = _Plan(config)
    prepare_out(config)
    counts, fixes = ExportCounts(), Fixes()
    # pass 1: which frames are referenced; extract those that live in video files
    referenced: set[tuple[str, int]] = set()
    for row in _rows(plan):
        verdict, payload = _decide(row, config, plan, FilterStats())
        if verdict == "export":
            referenced.add((payload[1].video_id, int(payload[1].record["frame_id"])))
    listed = _listed_frames(plan, referenced, config.format)
    failed = _extract(plan, listed) if plan.write_rel is not None else {}
    counts.frames_extracted = sum(1 for k in listed if plan.file_name(plan.by_key[k])[1]) - len(
        failed
    )
    sizes: dict[tuple[str, int], tuple[int, int] | str] = {}
    for key in listed:
        sizes[key] = _real_size(plan, plan.by_key[key], failed)
    # pass 2: write
    stats = FilterStats()
    with_dp: set[tuple[str, int]] = set()
    writers = JsonOutputs(
        config.out,
        config.per_video,
        lambda video: _images(plan, listed, sizes, with_dp, config.format, video),
        lambda video: _info(config, plan, None if video else (counts, fixes, stats)),
    )
    try:
        _write_rows(config, plan, writers, counts, fixes, stats, sizes, with_dp, progress)
        if not writers.paths and writers.is_idle() and not config.per_video:
            writers.open_empty()
        writers.close()
    except BaseException:
        writers.abort()
        raise
    counts.images_written = sum(1 for k in listed if not isinstance(sizes.get(k), str))
    return ExportResult(writers.paths, counts, fixes, stats)


def _write_rows(
    config: ExportConfig,
    plan: _Plan,
    writers: JsonOutputs,
    counts: ExportCounts,
    fixes: Fixes,
    stats: FilterStats,
    sizes: dict[tuple[str, int], tuple[int, int] | str],
    with_dp: set[tuple[str, int]],
    progress: Callable[[int], None] | None,
) -> None:
    next_id = 1
    for row in _rows(plan):
        counts.rows_in += 1
        if progress is not None:
            progress(1)
        verdict, payload = _decide(row, config, plan, stats)
        if verdict == "filtered":
            counts.rows_filtered += 1
            continue
        if verdict == "refused":
            counts.refuse(payload)
            continue
        kept, image = payload
        key = (image.video_id, int(image.record["frame_id"]))
        if isinstance(sizes[key], str):
            counts.refuse(sizes[key])
            continue
        ann = coco_annotation(kept, next_id, int(image.record["id"]), fixes)
        next_id += 1
        if "dp_masks" in ann:
            with_dp.add(key)
        writers.write(image.video_id, ann)
        counts.rows_exported += 1


def _listed_frames(
    plan: _Plan, referenced: set[tuple[str, int]], fmt: str
) -> list[tuple[str, int]]:
    if fmt == FORMAT_COCO:
        return sorted(referenced)
    videos = sorted({v for v, _ in referenced})
    return [(v, int(im.record["frame_id"])) for v in videos for im in plan.videos[v]]


def _extract(plan: _Plan, listed: list[tuple[str, int]]) -> dict[str, str]:
    todo = []
    for key in listed:
        image = plan.by_key[key]
        name, in_video = plan.file_name(image)
        if in_video and name is not None:
            todo.append((locate(plan.frames_root, image, plan.follow), name))
    return extract_frames(todo, plan.frames_root)


def _real_size(plan: _Plan, image: SourceImage, failed: dict[str, str]) -> tuple[int, int] | str:
    """The frame's real size, or the reason its instances are refused."""
    name, in_video = plan.file_name(image)
    if name in failed:
        return "frame_unreadable"
    if in_video:  # extracted: the JPEG written under the frames root
        location = FrameLocation(os.path.join(plan.frames_root, str(name)))
    else:
        location = locate(plan.frames_root, image, plan.follow)
    size = plan.sizes(location)
    if size is None:
        return "frame_unreadable"
    expected = (image.record.get("width"), image.record.get("height"))
    if all(isinstance(v, int) and v > 0 for v in expected) and tuple(expected) != size:
        return "frame_size_mismatch"
    return size


def _images(
    plan: _Plan,
    listed: list[tuple[str, int]],
    sizes: dict[tuple[str, int], tuple[int, int] | str],
    with_dp: set[tuple[str, int]],
    fmt: str,
    video: str | None,
) -> list[dict[str, Any]]:
    """The ``images`` records of the listed frames (of one video, or all)."""
    out = []
    for key in listed:
        if video is not None and key[0] != video:
            continue
        image = plan.by_key[key]
        size = sizes.get(key)
        if isinstance(size, str):
            continue  # its instances were refused; a posetrack listing keeps the frame
        if size is None:
            size = (int(image.record.get("width") or 0), int(image.record.get("height") or 0))
        name, _ = plan.file_name(image)
        out.append(_image_record(image, str(name), size, fmt, key in with_dp))
    return out


def _info(
    config: ExportConfig, plan: _Plan, totals: tuple[ExportCounts, Fixes, FilterStats] | None
) -> dict[str, Any]:
    """The file's ``info``: provenance, and (single file only: known once all rows are read)
    the export's counts."""
    info = {
        "description": "DensePose labels propagated along optical flow by dptrack",
        "version": str(plan.info.get("code_version", "")),
        "dptrack": {
            "format": config.format,
            "shards": os.path.basename(os.path.normpath(config.shards)),
            "estimator": plan.info.get("estimator"),
            "checks": plan.info.get("checks"),
            "filter": config.label_filter.describe(),
            "include_sources": config.include_sources,
        },
    }
    if totals is not None:
        counts, fixes, stats = totals
        info["dptrack"]["counts"] = {
            **counts.__dict__,
            "fixes": fixes.as_dict(),
            "filter": stats.as_dict(),
        }
    return info
