"""One chunk of a ``pairs`` job: decode frames front to back, estimate flows, cut crop pairs.

:func:`process_chunk` is the whole per-worker computation, independent of Beam: it takes a
:class:`PairsChunk` (consecutive anchors of one video, with the people of those anchors) and
yields, in anchor order,

* :class:`CropOutput` - a person crop, once per distinct ``(frame, crop box)`` in the chunk
  (with default boxes, crop A of anchor ``T + k`` is crop B of ``(T, T + k)``: stored once);
* :class:`PairOutput` - a pair's index row with its crop flow and validity;
* :class:`PairReject` - a pair that could not be made, with its reason.

Per pair ``(T, T + k)`` and person, in frame pixels (centres on integers):

1. crop A's box comes from the people file (:func:`~dptrack_pipeline.pairs.people.person_box`)
   or the default policy (:func:`~dptrack_pipeline.pairs.people.default_box`);
2. the ``S x S`` pixel centres of crop A are carried to frame ``T + k`` with the direct flow and
   checked with the backward flow (``direct``), or carried step by step along one-step flows
   (``chained``); a pixel is valid when it passes the forward-backward check (``fb_threshold``
   px), stays inside the frames and lands inside crop B (a point that leaves crop B has nothing
   to be compared with there);
3. crop B's box is the same person's people-file box at ``T + k`` when the file has one for that
   exact frame, else crop A's box moved by the median displacement of the valid pixels
   (``followed``: the person stays centred without any tracker); with default boxes it is the
   default box of ``T + k``;
4. the flow is expressed in crop coordinates
   (:func:`~dptrack_pipeline.crops.crop_flow_from_track`): at crop-A pixel ``(c, r)``, the
   position of the same point in crop B minus ``(c, r)``, in crop-B pixels. So crop B sampled at ``p
   + flow(p)`` looks like crop A at ``p`` where valid.

Stored flows are rounded to 1/16 crop px and set to 0 where not valid (:func:`store_ready`).

A pair whose valid fraction is below ``min_valid`` (or that has no valid pixel at all) is rejected
``too_few_valid_pixels``: it would add nothing to an equivariance loss masked by validity.

Memory stays bounded by ``K``, not by the video's length: see :mod:`dptrack_pipeline.pairs.plan`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from dptrack_pipeline.crops import crop_flow_from_track, crop_image, crop_pixel_centres
from dptrack_pipeline.flow.consistency import track_grid, track_grid_chained
from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.frames import VideoReaders
from dptrack_pipeline.pairs.config import PairsConfig
from dptrack_pipeline.pairs.people import default_box, person_box
from dptrack_pipeline.pairs.plan import (
    DIRECT,
    PairsChunk,
    chain_steps,
    pair_offsets,
    pair_reject_row,
    schedule_chunk,
)
from dptrack_pipeline.rejects import (
    CHAIN_BROKEN,
    FRAME_SIZE_MISMATCH,
    STAGE_DECODE,
    STAGE_PAIRS,
    TOO_FEW_VALID,
)
from dptrack_pipeline.schedule import Held, Step, overlap_steps, walk_schedule
from dptrack_pipeline.settings import worker_settings
from dptrack_pipeline.structures import Box

BOX_PEOPLE = "people"
BOX_PEOPLE_NEAREST = "people_nearest"
BOX_FOLLOWED = "followed"
BOX_DEFAULT = "default"


@dataclass(frozen=True)
class PairSettings:
    """What every chunk of a job shares (see :func:`settings_of`)."""

    max_offset: int = 3
    mode: str = DIRECT
    fb_threshold: float = 5.0
    crop_size: int = 256
    min_valid: float = 0.0
    context: float = 1.25
    estimator: str = "dis"


def settings_of(config: PairsConfig) -> PairSettings:
    """The chunk settings of a job configuration."""
    return worker_settings(PairSettings, config)


@dataclass(frozen=True, eq=False)
class CropOutput:
    """A crop of ``frame`` over ``box`` (float32-exact values), ``(S, S, 3)`` uint8 RGB."""

    video_id: str
    frame: int
    box: Box
    crop: np.ndarray

    @property
    def key(self) -> tuple[str, int, Box]:
        """``(video_id, frame, box)``: the crop's key in the shard writer (``CropKey``)."""
        return (self.video_id, self.frame, self.box)


@dataclass(frozen=True, eq=False)
class PairOutput:
    """A pair's index row (``schemas/pairs.v1.json`` without the writer's columns), its crop
    flow ``(S, S, 2)`` float32 and validity ``(S, S)`` bool."""

    video_id: str
    row: dict[str, Any]
    flow: Any
    valid: Any


@dataclass(frozen=True)
class PairReject:
    """A reject row (``schemas/rejects.v1.json`` columns)."""

    video_id: str
    row: dict[str, Any]


def as_box(box: Box) -> Box:
    """The box with float32-exact values (as stored in Parquet), so equal boxes compare equal."""
    return tuple(float(np.float32(v)) for v in box)  # type: ignore[return-value]


def inside_crop(flow: np.ndarray) -> np.ndarray:
    """``(S, S)`` bool: crop-A pixel ``p`` lands inside crop B, ``0 <= p + flow(p) <= S - 1``
    (between the outermost pixel centres), where crop B has something to compare with."""
    size = flow.shape[0]
    c = np.arange(size, dtype=np.float32)
    x = flow[..., 0] + c[None, :]
    y = flow[..., 1] + c[:, None]
    return (x >= 0) & (x <= size - 1) & (y >= 0) & (y <= size - 1)


FLOW_QUANTUM = 1.0 / 16.0
"""Stored crop flows are rounded to this many crop pixels (error at most 1/32 crop px)."""


def store_ready(flow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The flow as stored: rounded to :data:`FLOW_QUANTUM` where valid, 0 where not.

    Invalid pixels carry whatever the estimator said there, which no consumer may use; rounding
    leaves float16's low mantissa bits at zero. Together they shrink the deflated flows 2.3x
    (168 -> 74 kB per 256-px pair on the 720p PoseTrack frames) for an error of at most 1/32
    crop px, far below any estimator's.
    """
    return np.where(valid[..., None], np.round(flow / FLOW_QUANTUM) * FLOW_QUANTUM, 0.0).astype(
        np.float32
    )


def follow_box(box: Box, displacement: np.ndarray, valid: np.ndarray) -> Box:
    """``box`` moved by the median ``(dx, dy)`` of ``displacement`` where ``valid``.

    Args:
        box: ``(x, y, w, h)`` in frame pixels.
        displacement: ``(N, 2)`` frame-pixel motion of the crop's pixel centres.
        valid: ``(N,)`` bool.

    Returns:
        The moved box (unchanged when nothing is valid).
    """
    if not valid.any():
        return box
    dx, dy = np.median(displacement[valid], axis=0)
    return (box[0] + float(dx), box[1] + float(dy), box[2], box[3])


def _boxes_for_anchor(
    chunk: PairsChunk, anchor: int, shape: tuple[int, int], context: float
) -> list[tuple[int, Box, str]]:
    height, width = shape
    if chunk.people is None:
        return [(0, as_box(default_box(width, height)), BOX_DEFAULT)]
    return [
        (e.person, as_box(person_box(e, context)), BOX_PEOPLE if exact else BOX_PEOPLE_NEAREST)
        for e, exact in chunk.people.get(anchor, ())
    ]


def process_chunk(
    chunk: PairsChunk,
    estimator: FlowEstimator,
    settings: PairSettings,
    counters: Counter,
    readers: VideoReaders | None = None,
    helper: Executor | None = None,
    finish: Callable[[CropOutput | PairOutput | PairReject], Any] | None = None,
) -> Iterator[Any]:
    """Make the pairs of one chunk (see the module docstring); add to ``counters``.

    Every planned pair (:meth:`PairsChunk.planned_pairs`) ends as exactly one
    :class:`PairOutput` or :class:`PairReject`. Counters: ``frames_decoded``, ``frames_failed``,
    ``flows_computed``, ``anchors_done``, ``pairs_made``, ``rejected.<reason>``. ``helper`` (a
    single-thread executor) cuts each anchor's pairs while the next anchor's flows are computed
    (:func:`~dptrack_pipeline.schedule.overlap_steps`); the outputs are the same without it.
    ``finish`` is applied to every output where it is made (on ``helper``), e.g. to pack its
    arrays into HDF5 chunks; ``None`` yields the outputs as they are.
    """
    steps = schedule_chunk(
        chunk.planned_anchors(), chunk.num_frames, settings.max_offset, settings.mode
    )
    emitted: set[tuple[int, Box]] = set()

    def work(step: Step, held: Held, own: Counter) -> list[Any]:
        outputs = list(_anchor_pairs(chunk, step.source, held, settings, emitted))
        for out in outputs:
            if isinstance(out, PairReject):
                own[f"rejected.{out.row['reason']}"] += 1
            elif isinstance(out, PairOutput):
                own["pairs_made"] += 1
        own["anchors_done"] += 1
        return outputs if finish is None else [finish(out) for out in outputs]

    walk = walk_schedule(steps, chunk.location, estimator, counters, readers)
    yield from overlap_steps(walk, work, counters, helper)


def _anchor_pairs(
    chunk: PairsChunk,
    anchor: int,
    held: Held,
    settings: PairSettings,
    emitted: set[tuple[int, Box]],
) -> Iterator[CropOutput | PairOutput | PairReject]:
    frames, failed, flows = held.frames, held.failed, held.flows
    vid = chunk.video.video_id
    offsets = pair_offsets(anchor, chunk.num_frames, settings.max_offset)
    size = settings.crop_size
    if anchor in failed:
        err = failed[anchor]
        persons = (
            [0] if chunk.people is None else [e.person for e, _ in chunk.people.get(anchor, ())]
        )
        for person in persons:
            for k in offsets:
                yield PairReject(
                    vid,
                    pair_reject_row(
                        vid,
                        err.reason,
                        f"anchor frame {anchor}: {err}",
                        STAGE_DECODE,
                        anchor,
                        person,
                        k,
                    ),
                )
        return
    image_a = frames[anchor]
    shape = image_a.shape[:2]
    for person, box_a, source_a in _boxes_for_anchor(chunk, anchor, shape, settings.context):
        centres = crop_pixel_centres(box_a, size)
        displacement_base = centres.reshape(-1, 2)
        for k in offsets:
            target = anchor + k

            def reject(reason: str, detail: str, stage: str = STAGE_PAIRS) -> PairReject:
                row = pair_reject_row(vid, reason, detail, stage, anchor, person, k)  # noqa: B023
                return PairReject(vid, row)

            if target in failed:
                err = failed[target]
                yield reject(err.reason, f"partner frame {target}: {err}", STAGE_DECODE)
                continue
            if frames[target].shape != image_a.shape:
                yield reject(
                    FRAME_SIZE_MISMATCH,
                    f"frame {anchor} is {image_a.shape[1]}x{image_a.shape[0]} but frame "
                    f"{target} is {frames[target].shape[1]}x{frames[target].shape[0]}",
                )
                continue
            if settings.mode == DIRECT:
                track = track_grid(centres, flows[(anchor, target)], flows[(target, anchor)])
            else:
                fwd, bwd = chain_steps(anchor, k)
                missing = sorted({f for p in fwd for f in p if f not in frames})
                if missing:
                    yield reject(
                        CHAIN_BROKEN,
                        f"chained flow {anchor}->{target} needs frames {missing}, which could "
                        "not be decoded",
                        STAGE_DECODE,
                    )
                    continue
                if any(frames[f].shape != image_a.shape for p in fwd for f in p):
                    yield reject(
                        FRAME_SIZE_MISMATCH,
                        f"a frame between {anchor} and {target} differs in size from frame "
                        f"{anchor}",
                    )
                    continue
                track = track_grid_chained(
                    centres, [flows[p] for p in fwd], [flows[p] for p in bwd]
                )
            passed = track.kept(settings.fb_threshold)
            target_entry = chunk.targets.get((target, person)) if chunk.people is not None else None
            if chunk.people is None:
                box_b, source_b = as_box(default_box(shape[1], shape[0])), BOX_DEFAULT
            elif target_entry is not None:
                box_b, source_b = as_box(person_box(target_entry, settings.context)), BOX_PEOPLE
            else:
                box_b = as_box(follow_box(box_a, track.moved - displacement_base, passed))
                source_b = BOX_FOLLOWED
            flow, valid = crop_flow_from_track(
                track, box_a, box_b, size, shape, settings.fb_threshold
            )
            valid &= inside_crop(flow)
            flow = store_ready(flow, valid)
            fraction = float(valid.mean())
            if fraction <= 0.0 or fraction < settings.min_valid:
                yield reject(
                    TOO_FEW_VALID,
                    f"{fraction:.1%} of the crop's pixels passed the forward-backward check "
                    f"(minimum {settings.min_valid:.1%}, and at least one pixel)",
                )
                continue
            for frame, box in ((anchor, box_a), (target, box_b)):
                if (frame, box) not in emitted:
                    emitted.add((frame, box))
                    yield CropOutput(vid, frame, box, crop_image(frames[frame], box, size))
            magnitude = np.hypot(flow[..., 0], flow[..., 1])[valid]
            error = track.error.reshape(size, size)[valid]
            yield PairOutput(
                vid,
                {
                    "video_id": vid,
                    "frame_a": int(anchor),
                    "frame_b": int(target),
                    "offset": int(k),
                    "person": int(person),
                    "mode": settings.mode,
                    "estimator": settings.estimator,
                    "box_source_a": source_a,
                    "box_source_b": source_b,
                    "crop_box_a": list(box_a),
                    "crop_box_b": list(box_b),
                    "frame_width": int(shape[1]),
                    "frame_height": int(shape[0]),
                    "valid_fraction": fraction,
                    "flow_median": float(np.median(magnitude)),
                    "fb_error_median": float(np.median(error)),
                },
                flow,
                valid,
            )
