"""Which frame pairs a ``pairs`` job makes, which flows they need, and when to let go of them.

**Pairs.** The *anchors* of a video of ``N`` frames are the frames ``T = 0, S, 2S, ... < N``
(``S`` = ``--stride``). Each anchor pairs with every ``T + k``, ``k`` in ``±1..±K``
(``K`` = ``--offsets``), that is a frame of the video: a *directed* pair ``(T, T + k)`` whose
crop A is taken at ``T`` and crop B at ``T + k``. Pairs of one anchor are ordered
``-1, +1, -2, +2, ...``.
With ``S = 1`` and ``K = 3`` an inner frame has 6 pairs, so 1M frames give about 6M pairs (the
paper's 5.8M for ~1M MPII frames). :func:`expected_pair_count` is the closed form per person.

**Flows.** A pair needs the flow ``T -> T+k`` (to move crop A's pixels) and ``T+k -> T`` (the
forward-backward check). Two modes:

* ``direct``: both directed flows are estimated from the two frames. With ``S = 1`` every flow
  ``a -> b`` with ``1 <= |a - b| <= K`` is needed once and serves two pairs (``(a, b)`` forward and
  ``(b, a)`` backward), so flows computed = pairs.
* ``chained``: only one-step flows ``t -> t±1`` are estimated and ``T -> T+k`` is their
  composition, evaluated by sampling along the chain
  (:func:`~dptrack_pipeline.flow.consistency.track_grid_chained`). Two flows per frame whatever
  ``K``: a third of ``direct``'s estimator work at ``K = 3``, at the price of errors that add up
  along the chain.

**Streaming.** A worker processes the anchors of one *chunk* (consecutive anchors of one video,
:func:`chunk_anchors`) in order, decoding frames front to back. :func:`schedule_chunk` (the
``run`` job's :func:`~dptrack_pipeline.planning.schedule_sources`) releases every frame and flow
right after the last anchor that needs it, so a worker holds at most ``2K + 1`` frames and
``K(K + 3)`` direct flows (18 at ``K = 3``) or ``4K`` one-step flows, whatever the video's
length (``tests/pairs/test_plan.py`` replays the schedule). Flows and frames that straddle two
chunks are computed in both; with the default chunk of 256 anchors and ``K = 3`` that is 12 flows
in about 1536 (0.8%).
"""

from __future__ import annotations

from collections.abc import Sequence

from dptrack_pipeline.planning import (
    Pair,
    Step,
    required_pairs,
    schedule_sources,
    target_indices,
)

DIRECT = "direct"
CHAINED = "chained"
MODES = (DIRECT, CHAINED)
DEFAULT_CHUNK_ANCHORS = 256


def anchor_frames(num_frames: int, stride: int) -> list[int]:
    """``0, stride, 2 * stride, ... < num_frames``."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return list(range(0, max(0, num_frames), stride))


def pair_offsets(anchor: int, num_frames: int, max_offset: int) -> list[int]:
    """Offsets ``k`` of ``anchor``'s pairs: ``-1, +1, -2, +2, ...`` with ``0 <= anchor + k < N``
    (the targets of :func:`~dptrack_pipeline.planning.target_indices`)."""
    return [t - anchor for t in target_indices(anchor, num_frames, max_offset)]


def expected_pair_count(num_frames: int, max_offset: int, stride: int) -> int:
    """Pairs of one person-track in a video of ``num_frames`` frames, in closed form.

    For each ``k = 1..K``: anchors ``T = jS`` with ``T + k <= N - 1`` number
    ``floor((N - 1 - k) / S) + 1`` (when ``N - 1 - k >= 0``), and anchors with ``T - k >= 0`` number
    ``A - ceil(k / S)`` where ``A = ceil(N / S)`` (when positive).
    """
    if num_frames <= 0:
        return 0
    anchors = -(-num_frames // stride)
    total = 0
    for k in range(1, max_offset + 1):
        if num_frames - 1 - k >= 0:
            total += (num_frames - 1 - k) // stride + 1
        total += max(0, anchors - (-(-k // stride)))
    return total


def chain_steps(anchor: int, offset: int) -> tuple[list[Pair], list[Pair]]:
    """One-step flows composing ``anchor -> anchor + offset`` and back, in application order.

    >>> chain_steps(5, 2)
    ([(5, 6), (6, 7)], [(7, 6), (6, 5)])
    """
    if offset == 0:
        raise ValueError("offset must not be 0")
    step = 1 if offset > 0 else -1
    n = abs(offset)
    fwd = [(anchor + i * step, anchor + (i + 1) * step) for i in range(n)]
    bwd = [(anchor + (n - i) * step, anchor + (n - i - 1) * step) for i in range(n)]
    return fwd, bwd


def anchor_flows(anchor: int, num_frames: int, max_offset: int, mode: str) -> list[Pair]:
    """Directed flows the pairs of ``anchor`` need, without duplicates, in a fixed order
    (``direct``: :func:`~dptrack_pipeline.planning.required_pairs`, as ``run`` needs them)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == DIRECT:
        return required_pairs(anchor, num_frames, max_offset)
    out: dict[Pair, None] = {}
    for offset in pair_offsets(anchor, num_frames, max_offset):
        fwd, bwd = chain_steps(anchor, offset)
        for pair in fwd + bwd:
            out[pair] = None
    return list(out)


def anchor_frames_needed(anchor: int, num_frames: int, max_offset: int) -> list[int]:
    """Frames the pairs of ``anchor`` read (both modes): ``anchor`` and its partners, sorted."""
    return sorted({anchor, *(anchor + k for k in pair_offsets(anchor, num_frames, max_offset))})


def flows_needed(anchors: Sequence[int], num_frames: int, max_offset: int, mode: str) -> set[Pair]:
    """Every distinct directed flow the pairs of ``anchors`` need."""
    out: set[Pair] = set()
    for anchor in anchors:
        out.update(anchor_flows(anchor, num_frames, max_offset, mode))
    return out


def frames_needed(anchors: Sequence[int], num_frames: int, max_offset: int) -> list[int]:
    """Every distinct frame the pairs of ``anchors`` read, sorted."""
    out: set[int] = set()
    for anchor in anchors:
        out.update(anchor_frames_needed(anchor, num_frames, max_offset))
    return sorted(out)


def chunk_anchors(anchors: Sequence[int], chunk_size: int) -> list[tuple[int, ...]]:
    """Consecutive runs of at most ``chunk_size`` anchors."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return [tuple(anchors[i : i + chunk_size]) for i in range(0, len(anchors), chunk_size)]


def schedule_chunk(
    anchors: Sequence[int], num_frames: int, max_offset: int, mode: str
) -> list[Step]:
    """Anchor-by-anchor steps: frames to decode, flows to compute, then what to release."""
    return schedule_sources(
        anchors,
        lambda a: anchor_frames_needed(a, num_frames, max_offset),
        lambda a: anchor_flows(a, num_frames, max_offset, mode),
    )
