"""Process one planning window: decode its frames, compute its flows, propagate its labels.

A window is the unit of work of the ``run`` pipeline; a Beam element is a run of consecutive
windows of one video (:func:`process_windows`). These are plain generators, so they can be tested
without Beam; :mod:`dptrack_pipeline.beam.propagate` wraps it. It holds no maths of
its own: decoding and flows are the shared engine (:func:`dptrack_pipeline.schedule.walk_schedule`
over :func:`~dptrack_pipeline.propagate.plan.schedule_window`: every frame of the window decoded
once, every directed flow computed once, released as soon as no later source needs them), moving
labels is :mod:`dptrack_pipeline.propagate.labels`, crops are :mod:`dptrack_pipeline.crops`.
With a ``helper`` thread, each source's propagation runs there while the estimator computes the
next source's flows, in this window or the next (:func:`process_windows`); the outputs are the
same.
Each frame is converted to grey (for the photometric score) once, not once per instance.

Every instance that enters (a source annotation, or a source moved to one target frame) leaves as
exactly one :class:`InstanceOutput` or one :class:`RejectOutput`; nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dptrack_pipeline.crops import crop_flow, crop_image
from dptrack_pipeline.flow.quality import grey
from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.formats.rle import decode_part_masks, encode_part_masks
from dptrack_pipeline.frames import FrameDecodeError, VideoReaders, resolve_frame
from dptrack_pipeline.propagate.agreement import NOT_COMPARED, head_size, keypoint_agreement
from dptrack_pipeline.propagate.checks import Checks
from dptrack_pipeline.propagate.labels import propagate_person
from dptrack_pipeline.propagate.plan import WindowTask, chain_neighbour, schedule_window
from dptrack_pipeline.propagate.points import Evidence
from dptrack_pipeline.propagate.rows import propagated_row, source_row
from dptrack_pipeline.rejects import (
    FRAME_SIZE_MISMATCH,
    NO_POINTS_KEPT,
    NOTHING_SURVIVED,
    SOURCE_FRAME_UNREADABLE,
    STAGE_DECODE,
    STAGE_PROPAGATE,
    reject_row,
)
from dptrack_pipeline.schedule import (
    Held,
    Step,
    StepOverlap,
    overlap_steps,
    target_indices,
    walk_schedule,
)
from dptrack_pipeline.shards import ShardRecord
from dptrack_pipeline.shards.counters import COUNTER_SUMS, KIND_RUN
from dptrack_pipeline.structures import PersonInstance


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
    checks: Checks
    crop_size: int
    estimator: str
    follow_symlinks: bool = False


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


@dataclass
class WindowResult:
    """What one window made: its outputs in order (after ``finish``, see
    :func:`process_windows`) and its counters."""

    task: WindowTask
    outputs: list[Any]
    counters: Counter


def process_windows(
    tasks: Sequence[WindowTask],
    estimator: FlowEstimator,
    settings: WindowSettings,
    readers: VideoReaders | None = None,
    helper: Executor | None = None,
    finish: Callable[[InstanceOutput | RejectOutput], Any] | None = None,
    carry: StepOverlap | None = None,
) -> Iterator[WindowResult]:
    """Run windows in order; yield one :class:`WindowResult` per window, in the same order.

    Every instance in leaves as one output (see the module docstring).

    Args:
        tasks: windows, usually consecutive windows of one video.
        estimator: computes every step's flows, on the calling thread.
        settings: what a window needs of the run's configuration.
        readers: video files kept open between windows, so windows of one video processed in
            order decode it front to back once (:class:`~dptrack_pipeline.frames.VideoReaders`).
        helper: a single-thread executor. Each source's propagation (and ``finish``) runs there
            while the estimator computes the next source's flows, across window boundaries
            (:func:`~dptrack_pipeline.schedule.overlap_steps`): with one labelled frame per window,
            as when every 8th frame of a video is labelled and ``K = 3``, the next window's flows
            are what there is to overlap with. ``None`` runs everything on the calling thread;
            the results are the same.
        finish: applied to every output where it is made (on ``helper``), e.g. to compress its
            arrays; ``None`` keeps the outputs as they are.
        carry: instead of ``helper``, a :class:`~dptrack_pipeline.schedule.StepOverlap` kept
            between calls: the results of an earlier call's last window come out first, and
            this call's last window is left pending on it when the call returns (the caller
            flushes it at the end). A Beam worker passes one per bundle, so it never waits for
            its helper between elements.

    Counters of each window: ``frames_decoded``, ``frames_failed``, ``flows_computed`` and
    :data:`POINT_COUNTERS`.
    """
    if carry is not None and helper is not None:
        raise ValueError("pass helper or carry, not both: carry runs on its own helper")
    chain = settings.checks.chain is not None

    def walk() -> Iterator[tuple[tuple[WindowTask, Step, Counter | None], Held]]:
        for task in tasks:
            steps = schedule_window(task.window, task.num_frames, settings.max_offset, chain)
            if not steps:
                raise ValueError(f"window {task.window.key} has no labelled frame")
            counts: Counter = Counter()
            locate, check = _frame_access(task, settings)
            inner = walk_schedule(steps, locate, estimator, counts, readers, check)
            for i, (step, held) in enumerate(inner):
                # The walk's counters of a window are final once its last step is yielded.
                yield (task, step, counts.copy() if i == len(steps) - 1 else None), held

    current = _WindowInProgress()

    def work(item: tuple[WindowTask, Step, Counter | None], held: Held, _: Counter) -> list:
        nonlocal current
        task, step, walk_counts = item
        if current.task is not task:
            current = _WindowInProgress(task)
        current.greys.keep_only(held.frames)
        made = _propagate_source(task, step.source, held, settings, current.counts, current.greys)
        current.outputs.extend(made if finish is None else map(finish, made))
        if walk_counts is None:
            return []
        walk_counts.update(current.counts)
        return [WindowResult(task, current.outputs, walk_counts)]

    if carry is not None:
        yield from carry.run(walk(), work)
    else:
        yield from overlap_steps(walk(), work, Counter(), helper)


@dataclass
class _WindowInProgress:
    """What the helper has made so far of the window it is working on (only it touches this)."""

    task: WindowTask | None = None
    greys: GreyFrames = field(default_factory=lambda: GreyFrames())
    counts: Counter = field(default_factory=Counter)
    outputs: list[Any] = field(default_factory=list)


def _frame_access(task: WindowTask, settings: WindowSettings) -> tuple[Callable, Callable]:
    """Where a window's frame positions are, and the check of a decoded frame's size against
    its annotation."""

    def locate(index: int):
        ref = task.frames[index]
        root, follow = settings.frames_root, settings.follow_symlinks
        return resolve_frame(root, ref.image_file, ref.index, follow_symlinks=follow)

    def check_size(index: int, image: np.ndarray) -> FrameDecodeError | None:
        ref = task.frames[index]
        if ref.width and ref.height and image.shape[:2] != (ref.height, ref.width):
            return FrameDecodeError(
                FRAME_SIZE_MISMATCH,
                f"{ref.image_file}: decoded {image.shape[1]}x{image.shape[0]}, "
                f"annotated {ref.width}x{ref.height}",
            )
        return None

    return locate, check_size


class GreyFrames:
    """Grey versions (:func:`~dptrack_pipeline.flow.quality.grey`) of the held frames, each
    converted once however many instances and targets read it; not thread-safe."""

    def __init__(self) -> None:
        self._greys: dict[int, np.ndarray] = {}

    def keep_only(self, frames: dict[int, np.ndarray]) -> None:
        """Forget the frames no longer held (frame positions are the keys)."""
        for index in [i for i in self._greys if i not in frames]:
            del self._greys[index]

    def of(self, index: int, frames: dict[int, np.ndarray]) -> np.ndarray:
        if index not in self._greys:
            self._greys[index] = grey(frames[index])
        return self._greys[index]


def _propagate_source(
    task: WindowTask,
    source: int,
    held: Held,
    settings: WindowSettings,
    counters: Counter,
    greys: GreyFrames,
) -> Iterator[InstanceOutput | RejectOutput]:
    frames, failed = held.frames, held.failed
    source_ref = task.frames[source]
    targets = target_indices(source, task.num_frames, settings.max_offset)
    size, estimator, checks = settings.crop_size, settings.estimator, settings.checks
    for person in task.sources.get(source, ()):
        if source in failed:
            err = failed[source]
            yield _reject(person, err.reason, f"source frame: {err}")
            for t in targets:
                yield _reject(
                    person,
                    SOURCE_FRAME_UNREADABLE,
                    f"source frame {source_ref.image_file} could not be decoded ({err.reason})",
                    t - source,
                    task.frames[t].frame_id,
                )
            continue
        labels = decode_part_masks(person.dp_masks) if person.dp_masks is not None else None
        yield InstanceOutput(
            person.video_id,
            ShardRecord(
                row=source_row(person, source_ref, estimator, checks, _mask_counts(labels)),
                crop=crop_image(frames[source], person.bbox, size),
            ),
        )
        for t in targets:
            if t in failed:
                err = failed[t]
                offset = t - source
                yield _reject(
                    person, err.reason, f"target frame: {err}", offset, task.frames[t].frame_id
                )
                continue
            yield _propagate_to(task, person, labels, (source, t), held, settings, counters, greys)


POINT_COUNTERS = ("points_in", *dict(COUNTER_SUMS[KIND_RUN])["points_in"])
"""Counters of propagated points (``points_in`` = kept + every dropped reason)."""


def _propagate_to(
    task: WindowTask,
    person: PersonInstance,
    labels: np.ndarray | None,
    pair: tuple[int, int],
    held: Held,
    settings: WindowSettings,
    counters: Counter,
    greys: GreyFrames,
) -> InstanceOutput | RejectOutput:
    """``person`` of the source frame moved into one target frame: its row, or why not."""
    source, target = pair
    frames, flows = held.frames, held.flows
    target_ref = task.frames[target]
    offset = target - source
    checks = settings.checks
    flow_fwd, flow_bwd = flows[(source, target)], flows[(target, source)]
    given = task.persons.get((target, person.track_id))
    middle = None
    if checks.chain is not None:
        middle = chain_neighbour(source, target, task.num_frames, settings.max_offset)
    evidence = Evidence(
        source_grey=greys.of(source, frames),
        target_grey=greys.of(target, frames),
        first_leg=None if middle is None else flows.get((source, middle)),
        second_leg=None if middle is None else flows.get((middle, target)),
    )
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
        checks=checks,
        target_box=given.bbox if given is not None else None,
        evidence=evidence,
    )
    if moved is None:
        return _reject(
            person,
            NOTHING_SURVIVED,
            "no point or mask cell passed the forward-backward check; no box to derive",
            offset,
            target_ref.frame_id,
        )
    for name in POINT_COUNTERS:
        counters[name] += getattr(moved, name)
    if moved.points_kept == 0 and person.dp_x.size > 0:
        return _reject(
            person,
            NO_POINTS_KEPT,
            f"all {moved.points_in} points dropped ({moved.points_dropped_fb} by the "
            f"forward-backward check, {moved.points_dropped_photo} photometric, "
            f"{moved.points_dropped_chain} chain, {moved.points_dropped_outside} outside)",
            offset,
            target_ref.frame_id,
        )
    size = settings.crop_size
    cflow, cvalid = crop_flow(
        flow_fwd, flow_bwd, person.bbox, moved.bbox, size, checks.fb_threshold
    )
    agreement = NOT_COMPARED
    if given is not None:
        scale = head_size(given.head_box, given.bbox)
        agreement = keypoint_agreement(moved.keypoints, given.keypoints, scale)
    row = propagated_row(
        person,
        target_ref,
        task.frames[source],
        settings.estimator,
        checks,
        moved,
        _mask_counts(moved.part_labels),
        float(cvalid.mean()),
        agreement,
    )
    crop = crop_image(frames[target], moved.bbox, size)
    return InstanceOutput(
        person.video_id, ShardRecord(row=row, crop=crop, flow=cflow, valid=cvalid)
    )
