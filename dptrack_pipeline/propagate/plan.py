"""Which frames a ``run`` decodes and which flows it computes, per video: windows.

For every DensePose-labelled frame ``T`` of a video and every ``k = 1..K`` the targets are the
frames ``T - k`` and ``T + k`` that exist in the video
(:func:`~dptrack_pipeline.schedule.target_indices`). Each target needs two directed flows:
``T -> T±k`` to move the labels and ``T±k -> T`` for the forward-backward check
(:func:`~dptrack_pipeline.schedule.required_pairs`).

Work is cut into **windows**: labelled frames whose ranges ``[T-K, T+K]`` share a frame are
merged into one window. Windows of one video then share no frame, so

* every needed directed flow belongs to exactly one window and is computed exactly once (a flow
  ``T -> T'`` between two labelled frames serves both the forward move of ``T`` and the backward
  check of ``T'``);
* every frame is decoded in exactly one window.

With the chain check on (:mod:`dptrack_pipeline.propagate.checks`), each target ``t`` also needs
the one-step flow from its chain neighbour ``d`` (:func:`chain_neighbour`) to ``t``; the flow
``T -> d`` is already there (``d`` is a target too). :func:`source_pairs` lists a source's flows
either way.

Inside a window, :func:`schedule_window` orders the work source by source with the shared
:func:`~dptrack_pipeline.schedule.schedule_sources`, so a long window (e.g. every 4th frame
labelled) keeps only about ``2K + 1`` frames and ``4K`` flows in memory at once.

A :class:`WindowTask` is what a worker gets for one window: ids, paths, boxes and points, never
pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from dptrack_pipeline.schedule import Pair, Step, required_pairs, schedule_sources, target_indices
from dptrack_pipeline.structures import Box, FrameRef, PersonInstance


@dataclass(frozen=True)
class Window:
    """A run of labelled frames of one video whose neighbourhoods overlap.

    ``sources`` are sorted labelled frame positions; ``frames`` every position to decode (sorted);
    ``pairs`` every directed flow to compute (sorted, unique).
    """

    video_id: str
    sources: tuple[int, ...]
    frames: tuple[int, ...]
    pairs: tuple[Pair, ...]

    @property
    def key(self) -> str:
        """A stable name, e.g. ``"3418:12-30"``."""
        return f"{self.video_id}:{self.frames[0]}-{self.frames[-1]}"


def chain_neighbour(source: int, target: int, num_frames: int, max_offset: int) -> int | None:
    """The frame a target's chain goes through: ``t - sign(k)`` for ``|k| >= 2``, ``T + 2 sign(k)``
    for ``|k| = 1`` (``k = t - T``); ``None`` when that frame is not another target of the source
    (outside the video or beyond ``T ± K``)."""
    k = target - source
    if k == 0:
        raise ValueError("a source is not its own target")
    step = 1 if k > 0 else -1
    middle = target - step if abs(k) >= 2 else source + 2 * step
    if middle == source or abs(middle - source) > max_offset or not 0 <= middle < num_frames:
        return None
    return middle


def source_pairs(source: int, num_frames: int, max_offset: int, chain: bool = False) -> list[Pair]:
    """Directed flows a labelled frame needs: those of
    :func:`~dptrack_pipeline.schedule.required_pairs`, plus ``(d, t)`` for every target ``t`` with
    a chain neighbour ``d`` when ``chain``."""
    pairs = required_pairs(source, num_frames, max_offset)
    if chain:
        for t in target_indices(source, num_frames, max_offset):
            middle = chain_neighbour(source, t, num_frames, max_offset)
            if middle is not None:
                pairs.append((middle, t))
    return pairs


def plan_windows(
    video_id: str, num_frames: int, sources: Iterable[int], max_offset: int, chain: bool = False
) -> list[Window]:
    """Cut a video's labelled frames into independent windows (see module docstring).

    Args:
        video_id: the video's id.
        num_frames: number of frames in the video.
        sources: positions of labelled frames (duplicates allowed; out-of-range ones ignored).
        max_offset: ``K``, the largest ``|offset|``.
        chain: plan the chain check's one-step flows too.
    """
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}")
    labelled = sorted({s for s in sources if 0 <= s < num_frames})
    groups: list[list[int]] = []
    for s in labelled:
        # Ranges [s-K, s+K] that overlap share frames: merge them.
        if groups and s - max_offset <= groups[-1][-1] + max_offset:
            groups[-1].append(s)
        else:
            groups.append([s])
    windows = []
    for group in groups:
        pairs: set[Pair] = set()
        frames: set[int] = set(group)
        for s in group:
            for a, b in source_pairs(s, num_frames, max_offset, chain):
                pairs.add((a, b))
                frames.update((a, b))
        windows.append(
            Window(
                video_id=video_id,
                sources=tuple(group),
                frames=tuple(sorted(frames)),
                pairs=tuple(sorted(pairs)),
            )
        )
    return windows


def schedule_window(
    window: Window, num_frames: int, max_offset: int, chain: bool = False
) -> list[Step]:
    """Order a window's work source by source with the earliest possible release of memory
    (:func:`~dptrack_pipeline.schedule.schedule_sources` with the frames and flows of
    :func:`source_pairs`).

    Every frame in ``window.frames`` is decoded in exactly one step and every pair in
    ``window.pairs`` computed in exactly one step (checked by the tests).
    """
    return schedule_sources(
        window.sources,
        lambda s: (s, *target_indices(s, num_frames, max_offset)),
        lambda s: source_pairs(s, num_frames, max_offset, chain),
    )


@dataclass(frozen=True)
class TargetPerson:
    """An annotated person in a frame: its box boxes a propagated instance, its keypoints (and
    head box) measure how well the propagated keypoints agree."""

    bbox: Box
    keypoints: np.ndarray
    head_box: Box | None = None


@dataclass(frozen=True)
class WindowTask:
    """Everything a worker needs for one window, by reference (paths and ids, no pixels).

    Attributes:
        window: the planned window.
        num_frames: frames in the whole video.
        frames: ``FrameRef`` of every frame position the window decodes.
        sources: labelled persons per source frame position.
        persons: annotated persons per ``(frame position, track_id)`` in the window, used as
            target boxes.
    """

    window: Window
    num_frames: int
    frames: Mapping[int, FrameRef]
    sources: Mapping[int, tuple[PersonInstance, ...]]
    persons: Mapping[tuple[int, int], TargetPerson] = field(default_factory=dict)
