"""Process one planning window: decode its frames, compute its flows, propagate its labels.

This is the unit of work of the ``run`` pipeline (one Beam element). It is a plain generator so it
can be tested without Beam; :mod:`dptrack_pipeline.beam.propagate` wraps it. It holds no maths of
its own: decoding and flows are the shared engine (:func:`dptrack_pipeline.schedule.walk_schedule`
over :func:`~dptrack_pipeline.propagate.plan.schedule_window`: every frame of the window decoded
once, every directed flow computed once, released as soon as no later source needs them), moving
labels is :mod:`dptrack_pipeline.propagate.labels`, crops are :mod:`dptrack_pipeline.crops`.

Every instance that enters (a source annotation, or a source moved to one target frame) leaves as
exactly one :class:`InstanceOutput` or one :class:`RejectOutput`; nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.crops import crop_flow, crop_image
from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.formats.rle import decode_part_masks, encode_part_masks
from dptrack_pipeline.frames import FrameDecodeError, VideoReaders, resolve_frame
from dptrack_pipeline.propagate.labels import propagate_person
from dptrack_pipeline.propagate.plan import WindowTask, schedule_window
from dptrack_pipeline.rejects import (
    FRAME_SIZE_MISMATCH,
    STAGE_DECODE,
    STAGE_PROPAGATE,
    reject_row,
)
from dptrack_pipeline.schedule import Held, target_indices, walk_schedule
from dptrack_pipeline.shards import ShardRecord
from dptrack_pipeline.structures import Box, FrameRef, PersonInstance


@dataclass(frozen=True)
class InstanceOutput:
    video_id: str
    record: ShardRecord


@dataclass(frozen=True)
class RejectOutput:
    video_id: str
    row: dict


@dataclass
class WindowSettings:
    """The parts of the run configuration a window needs."""

    frames_root: str
    max_offset: int
    fb_threshold: float
    crop_size: int
    estimator: str


def _row(
    person: PersonInstance,
    frame: FrameRef,
    source_frame: FrameRef,
    settings: WindowSettings,
    *,
    bbox: Box,
    box_source: str,
    keypoints: np.ndarray,
    dp: tuple[np.ndarray, ...],
    dp_source_index: np.ndarray,
    masks: tuple[str, ...],
    valid_fraction: float,
    counts: tuple[int, int, int],
) -> dict:
    dp_x, dp_y, dp_I, dp_U, dp_V = dp
    return {
        "video_id": person.video_id,
        "frame_id": int(frame.frame_id),
        "frame_index": int(frame.index),
        "image_file": frame.image_file,
        "image_id": int(frame.image_id),
        "track_id": int(person.track_id),
        "annotation_id": int(person.annotation_id),
        "source_frame_id": int(source_frame.frame_id),
        "source_frame_index": int(source_frame.index),
        "offset": int(frame.index - source_frame.index),
        "bbox": [float(v) for v in bbox],
        "box_source": box_source,
        "keypoints": np.asarray(keypoints, np.float32).reshape(-1).tolist(),
        "dp_x": np.asarray(dp_x, np.float32).tolist(),
        "dp_y": np.asarray(dp_y, np.float32).tolist(),
        "dp_I": np.asarray(dp_I).astype(np.uint8).tolist(),
        "dp_U": np.asarray(dp_U, np.float32).tolist(),
        "dp_V": np.asarray(dp_V, np.float32).tolist(),
        "dp_source_index": np.asarray(dp_source_index, np.int32).tolist(),
        "dp_masks": list(masks),
        "crop_box": [float(v) for v in bbox],
        "flow_valid_fraction": float(valid_fraction),
        "estimator": settings.estimator,
        "fb_threshold": float(settings.fb_threshold),
        "points_in": int(counts[0]),
        "points_dropped_fb": int(counts[1]),
        "points_dropped_outside": int(counts[2]),
    }


def _reject(
    person: PersonInstance, reason: str, detail: str, offset: int = 0, frame_id: int = -1
) -> RejectOutput:
    """A rejected instance of ``person``: its source (offset 0) or one target (offset k)."""
    return RejectOutput(
        person.video_id,
        reject_row(
            reason,
            detail,
            STAGE_PROPAGATE if offset else STAGE_DECODE,
            annotation_id=person.annotation_id,
            video_id=person.video_id,
            frame_id=frame_id if frame_id >= 0 else person.frame_id,
            track_id=person.track_id,
            offset=offset,
        ),
    )


def _mask_counts(labels: np.ndarray | None) -> tuple[str, ...]:
    if labels is None:
        return ()
    return tuple(rle["counts"] for rle in encode_part_masks(labels))


def process_window(
    task: WindowTask,
    estimator: FlowEstimator,
    settings: WindowSettings,
    counters: Counter,
    readers: VideoReaders | None = None,
) -> Iterator[InstanceOutput | RejectOutput]:
    """Run one window; yield one output per instance in, and add to ``counters``.

    ``readers`` keeps video files open between windows, so windows of one video processed in
    order decode it front to back once (see :class:`~dptrack_pipeline.frames.VideoReaders`).

    Counters: ``frames_decoded``, ``frames_failed``, ``flows_computed``, ``points_in``,
    ``points_kept``, ``points_dropped_fb``, ``points_dropped_outside``.
    """

    def locate(index: int):
        ref = task.frames[index]
        return resolve_frame(settings.frames_root, ref.image_file, ref.index)

    def check_size(index: int, image: np.ndarray) -> FrameDecodeError | None:
        ref = task.frames[index]
        if ref.width and ref.height and image.shape[:2] != (ref.height, ref.width):
            return FrameDecodeError(
                FRAME_SIZE_MISMATCH,
                f"{ref.image_file}: decoded {image.shape[1]}x{image.shape[0]}, "
                f"annotated {ref.width}x{ref.height}",
            )
        return None

    steps = schedule_window(task.window, task.num_frames, settings.max_offset)
    for step, held in walk_schedule(steps, locate, estimator, counters, readers, check_size):
        yield from _propagate_source(task, step.source, held, settings, counters)


def _propagate_source(
    task: WindowTask,
    source: int,
    held: Held,
    settings: WindowSettings,
    counters: Counter,
) -> Iterator[InstanceOutput | RejectOutput]:
    frames, failed, flows = held.frames, held.failed, held.flows
    source_ref = task.frames[source]
    targets = target_indices(source, task.num_frames, settings.max_offset)
    size = settings.crop_size
    for person in task.sources.get(source, ()):
        if source in failed:
            err = failed[source]
            yield _reject(person, err.reason, f"source frame: {err}")
            for t in targets:
                yield _reject(
                    person,
                    "source_frame_unreadable",
                    f"source frame {source_ref.image_file} could not be decoded ({err.reason})",
                    t - source,
                    task.frames[t].frame_id,
                )
            continue
        source_image = frames[source]
        labels = decode_part_masks(person.dp_masks) if person.dp_masks is not None else None
        dp = (person.dp_x, person.dp_y, person.dp_I, person.dp_U, person.dp_V)
        yield InstanceOutput(
            person.video_id,
            ShardRecord(
                row=_row(
                    person,
                    source_ref,
                    source_ref,
                    settings,
                    bbox=person.bbox,
                    box_source="annotation",
                    keypoints=person.keypoints,
                    dp=dp,
                    dp_source_index=np.arange(person.dp_x.size),
                    masks=_mask_counts(labels),
                    valid_fraction=float("nan"),
                    counts=(0, 0, 0),
                ),
                crop=crop_image(source_image, person.bbox, size),
                flow=None,
                valid=None,
            ),
        )
        for t in targets:
            target_ref = task.frames[t]
            offset = t - source
            if t in failed:
                err = failed[t]
                yield _reject(
                    person, err.reason, f"target frame: {err}", offset, target_ref.frame_id
                )
                continue
            flow_fwd, flow_bwd = flows[(source, t)], flows[(t, source)]
            given = task.persons.get((t, person.track_id))
            moved = propagate_person(
                source_box=person.bbox,
                keypoints=person.keypoints,
                dp_x=person.dp_x,
                dp_y=person.dp_y,
                dp_I=person.dp_I,
                dp_U=person.dp_U,
                dp_V=person.dp_V,
                part_labels=labels,
                flow_fwd=flow_fwd,
                flow_bwd=flow_bwd,
                fb_threshold=settings.fb_threshold,
                target_box=given.bbox if given is not None else None,
            )
            if moved is None:
                yield _reject(
                    person,
                    "nothing_survived",
                    "no point or mask cell passed the forward-backward check; no box to derive",
                    offset,
                    target_ref.frame_id,
                )
                continue
            counters["points_in"] += moved.points_in
            counters["points_kept"] += moved.points_kept
            counters["points_dropped_fb"] += moved.points_dropped_fb
            counters["points_dropped_outside"] += moved.points_dropped_outside
            if moved.points_kept == 0 and person.dp_x.size > 0:
                yield _reject(
                    person,
                    "no_points_kept",
                    f"all {moved.points_in} points dropped ({moved.points_dropped_fb} by the "
                    f"forward-backward check, {moved.points_dropped_outside} outside)",
                    offset,
                    target_ref.frame_id,
                )
                continue
            cflow, cvalid = crop_flow(
                flow_fwd, flow_bwd, person.bbox, moved.bbox, size, settings.fb_threshold
            )
            yield InstanceOutput(
                person.video_id,
                ShardRecord(
                    row=_row(
                        person,
                        target_ref,
                        source_ref,
                        settings,
                        bbox=moved.bbox,
                        box_source=moved.box_source,
                        keypoints=moved.keypoints,
                        dp=(moved.dp_x, moved.dp_y, moved.dp_I, moved.dp_U, moved.dp_V),
                        dp_source_index=moved.dp_source_index,
                        masks=_mask_counts(moved.part_labels),
                        valid_fraction=float(cvalid.mean()),
                        counts=(
                            moved.points_in,
                            moved.points_dropped_fb,
                            moved.points_dropped_outside,
                        ),
                    ),
                    crop=crop_image(frames[t], moved.bbox, size),
                    flow=cflow,
                    valid=cvalid,
                ),
            )
