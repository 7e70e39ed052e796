"""Which frames to decode and which flows to compute, per video.

For every DensePose-labelled frame ``T`` of a video and every ``k = 1..K`` the targets are the
frames ``T - k`` and ``T + k`` that exist in the video (``T`` and ``k`` count frame *positions*
in the video, not dataset frame ids). Each target needs two directed flows: ``T -> T±k`` to move
the labels and ``T±k -> T`` for the forward-backward check.

Work is cut into **windows**: labelled frames whose ranges ``[T-K, T+K]`` share a frame are
merged into one window. Windows of one video then share no frame, so

* every needed directed flow belongs to exactly one window and is computed exactly once (a flow
  ``T -> T'`` between two labelled frames serves both the forward move of ``T`` and the backward
  check of ``T'``);
* every frame is decoded in exactly one window.

Inside a window, :func:`schedule_window` orders the work source by source and says, after each
source, which frames and flows can be released, so a long window (e.g. every 4th frame
labelled) keeps only about ``2K + 1`` frames and ``4K`` flows in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Pair = tuple[int, int]


def target_indices(source: int, num_frames: int, max_offset: int) -> list[int]:
    """Targets of a labelled frame: ``source ± 1..max_offset`` inside ``[0, num_frames)``,
    ordered by offset ``-1, +1, -2, +2, ...``."""
    out = []
    for k in range(1, max_offset + 1):
        for t in (source - k, source + k):
            if 0 <= t < num_frames:
                out.append(t)
    return out


def required_pairs(source: int, num_frames: int, max_offset: int) -> list[Pair]:
    """Directed flows a labelled frame needs: ``(source, t)`` and ``(t, source)`` per target."""
    pairs = []
    for t in target_indices(source, num_frames, max_offset):
        pairs.extend([(source, t), (t, source)])
    return pairs


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


def plan_windows(
    video_id: str, num_frames: int, sources: Iterable[int], max_offset: int
) -> list[Window]:
    """Cut a video's labelled frames into independent windows (see module docstring).

    Args:
        video_id: the video's id.
        num_frames: number of frames in the video.
        sources: positions of labelled frames (duplicates allowed; out-of-range ones ignored).
        max_offset: ``K``, the largest ``|offset|``.
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
            for a, b in required_pairs(s, num_frames, max_offset):
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


@dataclass(frozen=True)
class Step:
    """One step of a window's schedule: decode ``decode`` frames, compute ``flows``, propagate the
    labels of ``source``, then release ``release_frames`` and ``release_flows``."""

    source: int
    decode: tuple[int, ...]
    flows: tuple[Pair, ...]
    release_frames: tuple[int, ...]
    release_flows: tuple[Pair, ...]


def schedule_sources(
    sources: Sequence[int],
    frames_of: Callable[[int], Iterable[int]],
    pairs_of: Callable[[int], Iterable[Pair]],
) -> list[Step]:
    """Order work source by source, releasing each frame and flow right after its last use.

    Args:
        sources: source (anchor) frames in processing order.
        frames_of: the frames a source reads.
        pairs_of: the directed flows a source needs.

    Every frame a source reads is decoded in exactly one step and every flow computed in exactly
    one step, no later than the first source that needs it; both are released after the last.
    """
    needs_frames = {s: sorted(set(frames_of(s))) for s in sources}
    needs_pairs = {s: list(dict.fromkeys(pairs_of(s))) for s in sources}
    last_use_frame: dict[int, int] = {}
    last_use_pair: dict[Pair, int] = {}
    for s in sources:
        for f in needs_frames[s]:
            last_use_frame[f] = s
        for p in needs_pairs[s]:
            last_use_pair[p] = s
    decoded: set[int] = set()
    computed: set[Pair] = set()
    steps = []
    for s in sources:
        decode = tuple(f for f in needs_frames[s] if f not in decoded)
        decoded.update(decode)
        flows = tuple(p for p in needs_pairs[s] if p not in computed)
        computed.update(flows)
        steps.append(
            Step(
                source=s,
                decode=decode,
                flows=flows,
                release_frames=tuple(f for f in needs_frames[s] if last_use_frame[f] == s),
                release_flows=tuple(sorted({p for p in needs_pairs[s] if last_use_pair[p] == s})),
            )
        )
    return steps


def schedule_window(window: Window, num_frames: int, max_offset: int) -> list[Step]:
    """Order a window's work source by source with the earliest possible release of memory
    (:func:`schedule_sources` with the frames and flows of :func:`required_pairs`).

    Every frame in ``window.frames`` is decoded in exactly one step and every pair in
    ``window.pairs`` computed in exactly one step (checked by the tests).
    """
    return schedule_sources(
        window.sources,
        lambda s: (s, *target_indices(s, num_frames, max_offset)),
        lambda s: required_pairs(s, num_frames, max_offset),
    )
