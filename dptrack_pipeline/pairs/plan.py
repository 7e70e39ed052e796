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
shared :func:`~dptrack_pipeline.schedule.schedule_sources`) releases every frame and flow
right after the last anchor that needs it, so a worker holds at most ``2K + 1`` frames and
``K(K + 3)`` direct flows (18 at ``K = 3``) or ``4K`` one-step flows, whatever the video's
length (``tests/pairs/test_plan.py`` replays the schedule). Flows and frames that straddle two
chunks are computed in both; with the default chunk of 256 anchors and ``K = 3`` that is 12 flows
in about 1536 (0.8%).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dptrack_pipeline.frames import FrameDecodeError, FrameLocation
from dptrack_pipeline.pairs.config import PairsConfig
from dptrack_pipeline.pairs.people import PersonEntry, check_entries, people_for_frames
from dptrack_pipeline.pairs.videos import KIND_FOLDER, VideoSpec, count_frames, frame_location
from dptrack_pipeline.rejects import PEOPLE_VIDEO_UNREADABLE, STAGE_DECODE, STAGE_PEOPLE, reject_row
from dptrack_pipeline.schedule import Pair, Step, required_pairs, schedule_sources, target_indices
from dptrack_pipeline.shards import shard_for_key

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
    (the targets of :func:`~dptrack_pipeline.schedule.target_indices`)."""
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
    (``direct``: :func:`~dptrack_pipeline.schedule.required_pairs`, as ``run`` needs them)."""
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


# --------------------------------------------------------------------------- chunks of a video


def pair_reject_row(
    video_id: str,
    reason: str,
    detail: str,
    stage: str,
    frame: int = -1,
    person: int = -1,
    offset: int = 0,
) -> dict[str, Any]:
    """A ``rejects.v1`` row about a pair (``frame`` = anchor), a video or a people row: the
    ``pairs`` convention of :func:`~dptrack_pipeline.rejects.reject_row` (``frame_id`` holds the
    frame index, ``track_id`` the person)."""
    return reject_row(
        reason, detail, stage, video_id=video_id, frame_id=frame, track_id=person, offset=offset
    )


@dataclass(frozen=True)
class PairsChunk:
    """Consecutive anchors of one video and who to crop there.

    Attributes:
        video: the video.
        num_frames: frames in the video (counted by decoding).
        anchors: anchor frames, ascending.
        people: ``None`` for default boxes; else ``anchor -> ((entry, exact), ...)`` for the
            anchors that have people in reach (others get no pairs).
        targets: exact people-file entries ``(frame, person) -> entry`` of the frames the chunk
            reads, for crop B's box.
        frame_files: a frame folder's image paths for frames ``files_start ...``; empty for a
            video file.
        files_start: frame index of ``frame_files[0]``.
    """

    video: VideoSpec
    num_frames: int
    anchors: tuple[int, ...]
    people: Mapping[int, tuple[tuple[PersonEntry, bool], ...]] | None = None
    targets: Mapping[tuple[int, int], PersonEntry] = field(default_factory=dict)
    frame_files: tuple[str, ...] = ()
    files_start: int = 0

    def planned_anchors(self) -> list[int]:
        """Anchors that get pairs (all of them with default boxes)."""
        if self.people is None:
            return list(self.anchors)
        return [a for a in self.anchors if self.people.get(a)]

    def persons(self, anchor: int) -> int:
        return 1 if self.people is None else len(self.people.get(anchor, ()))

    def planned_pairs(self, max_offset: int) -> int:
        """Pairs the chunk is expected to produce or reject."""
        return sum(
            self.persons(a) * len(pair_offsets(a, self.num_frames, max_offset))
            for a in self.planned_anchors()
        )

    def location(self, index: int) -> FrameLocation:
        """Where frame ``index`` of the video is."""
        files = self.frame_files
        if files:
            return frame_location(self.video, index - self.files_start, files)
        return frame_location(self.video, index)


def chunk_shard(video_id: str, chunk_index: int, num_shards: int) -> int:
    """The shard of a video's ``chunk_index``-th chunk."""
    return shard_for_key(f"{video_id}#{chunk_index}", num_shards)


def plan_video(
    spec: VideoSpec, entries: Sequence[PersonEntry] | None, config: PairsConfig, num_shards: int
) -> Iterator[tuple[str, Any]]:
    """Plan one video: yields ``("chunk", (shard, PairsChunk))``, ``("reject", (shard, row))``
    and one ``("counters", dict)``. ``entries`` is ``None`` without a people file."""
    counters: Counter = Counter()
    shard0 = chunk_shard(spec.video_id, 0, num_shards)
    try:
        frames = count_frames(spec)
    except FrameDecodeError as err:
        counters["videos_rejected"] += 1
        yield "reject", (shard0, pair_reject_row(spec.video_id, err.reason, str(err), STAGE_DECODE))
        for e in entries or ():
            counters["people_rejected"] += 1
            yield (
                "reject",
                (
                    shard0,
                    pair_reject_row(
                        spec.video_id,
                        PEOPLE_VIDEO_UNREADABLE,
                        f"video {spec.path} could not be read ({err.reason})",
                        STAGE_PEOPLE,
                        e.frame,
                        e.person,
                    ),
                ),
            )
        yield "counters", dict(counters)
        return
    n, big_k = frames.num_frames, config.max_offset
    counters["videos_planned"] += 1
    counters["frames_in_videos"] += n
    anchors = anchor_frames(n, config.stride)
    people = None
    targets: dict[tuple[int, int], PersonEntry] = {}
    if entries is not None:
        good, bad = check_entries(entries, n, frames.width, frames.height)
        counters["people_used"] += len(good)
        for e, reason, detail in bad:
            counters["people_rejected"] += 1
            yield (
                "reject",
                (
                    shard0,
                    pair_reject_row(spec.video_id, reason, detail, STAGE_PEOPLE, e.frame, e.person),
                ),
            )
        people = people_for_frames(good, anchors, config.people_reach)
        targets = {(e.frame, e.person): e for e in good}
    planned_anchors = anchors if people is None else [a for a in anchors if people.get(a)]
    counters["flows_needed"] += len(flows_needed(planned_anchors, n, big_k, config.mode))
    for index, run in enumerate(chunk_anchors(anchors, config.chunk_anchors)):
        first, last = max(0, run[0] - big_k), min(n - 1, run[-1] + big_k)
        chunk = PairsChunk(
            video=spec,
            num_frames=n,
            anchors=run,
            people=None if people is None else {a: people[a] for a in run if a in people},
            targets={k: e for k, e in targets.items() if first <= k[0] <= last},
            frame_files=frames.frame_files[first : last + 1] if spec.kind == KIND_FOLDER else (),
            files_start=first if spec.kind == KIND_FOLDER else 0,
        )
        planned = chunk.planned_pairs(big_k)
        if planned == 0:
            continue
        counters["pairs_planned"] += planned
        counters["chunks"] += 1
        yield "chunk", (chunk_shard(spec.video_id, index, num_shards), chunk)
    yield "counters", dict(counters)
