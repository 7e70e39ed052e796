"""Which frames and flows a worker needs, in what order, and when it can let go of them.

Both jobs walk the frames of one video source by source: ``run`` moves each labelled frame ``T``
to ``T ± 1..K``, ``pairs`` pairs each anchor frame ``T`` with ``T ± 1..K``. They share the engine
in this module, so a frame is decoded once and a directed flow is computed once, whichever job
asks:

* :func:`target_indices` and :func:`required_pairs` say which neighbours a frame has in a video
  and which directed flows it needs for them (``T -> T±k`` to move, ``T±k -> T`` for the
  forward-backward check). ``T`` and ``k`` count frame *positions* in the video.
* :func:`schedule_sources` orders the work source by source: each step says which frames to
  decode and which flows to compute before the source is processed, and which frames and flows
  to release after it, right after their last use. A long run of sources therefore holds only
  about ``2K + 1`` frames and a few ``K`` flows, whatever the video's length.
* :func:`walk_schedule` carries out such a schedule: it decodes the step's frames (through open
  video files kept in :class:`~dptrack_pipeline.frames.VideoReaders`), hands the step's flows to
  the estimator as one batch, yields the step with what is held, then releases. The jobs' workers
  (:mod:`dptrack_pipeline.propagate.worker`, :mod:`dptrack_pipeline.pairs.worker`) only say what a
  source does with the frames and flows it is given.
* :func:`overlap_steps` runs that per-source work on a helper thread while the estimator computes
  the next step's flows. OpenCV's estimators release the GIL, so propagation, crops and packing
  use the cores the estimator leaves idle instead of adding to the wall time: all of one core
  when the estimator runs one thread, about 10% of two when DIS runs two (1.78x from 1 to 2
  threads on the 2-core machine; there each CPU-second of helper work still costs DIS about
  0.8 s of wall time, ``benchmarks/bench_contention.py``); on a GPU the device computes the
  next flows while the CPU works. The outputs, their order and the counters are the same as
  without a helper.
  :class:`StepOverlap` does the same across walks: the last step's work of one walk runs while
  the next walk's first flows are computed, so a worker that takes one walk per Beam element
  does not wait for its helper at every element's end.

A frame that cannot be decoded is held as its :class:`~dptrack_pipeline.frames.FrameDecodeError`
(``failed``) so the worker can reject exactly the outputs that needed it; a flow is computed only
when both of its frames decoded with the same size.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.frames import FrameDecodeError, FrameLocation, VideoReaders, decode_frames

Pair = tuple[int, int]
"""A directed flow ``(from_index, to_index)`` between two frame positions of one video."""


def target_indices(source: int, num_frames: int, max_offset: int) -> list[int]:
    """Neighbours of a frame: ``source ± 1..max_offset`` inside ``[0, num_frames)``, ordered by
    offset ``-1, +1, -2, +2, ...``."""
    out = []
    for k in range(1, max_offset + 1):
        for t in (source - k, source + k):
            if 0 <= t < num_frames:
                out.append(t)
    return out


def required_pairs(source: int, num_frames: int, max_offset: int) -> list[Pair]:
    """Directed flows a frame needs to reach its neighbours and check the way back:
    ``(source, t)`` and ``(t, source)`` per target ``t`` of :func:`target_indices`."""
    pairs = []
    for t in target_indices(source, num_frames, max_offset):
        pairs.extend([(source, t), (t, source)])
    return pairs


@dataclass(frozen=True)
class Step:
    """One step of a schedule: decode ``decode`` frames, compute ``flows``, process ``source``,
    then release ``release_frames`` and ``release_flows``."""

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


@dataclass
class Held:
    """What a worker holds at one step of :func:`walk_schedule`.

    Attributes:
        frames: decoded frames by position, ``(H, W, 3)`` uint8 RGB.
        failed: frames that could not be used, by position, with why.
        flows: computed flows by directed pair, ``(H, W, 2)`` float32 pixels, channel 0 = x.
    """

    frames: dict[int, np.ndarray] = field(default_factory=dict)
    failed: dict[int, FrameDecodeError] = field(default_factory=dict)
    flows: dict[Pair, np.ndarray] = field(default_factory=dict)


FrameCheck = Callable[[int, np.ndarray], FrameDecodeError | None]
"""A check of a decoded frame at a position: an error sets the frame aside as failed."""


def walk_schedule(
    steps: Iterable[Step],
    locate: Callable[[int], FrameLocation],
    estimator: FlowEstimator,
    counters: Counter,
    readers: VideoReaders | None = None,
    check: FrameCheck | None = None,
) -> Iterator[tuple[Step, Held]]:
    """Carry out a schedule (see the module docstring); yield each step with what is held.

    Args:
        steps: from :func:`schedule_sources`.
        locate: where the frame at a position is.
        estimator: computes each step's flows, as one batch.
        counters: ``frames_decoded``, ``frames_failed`` and ``flows_computed`` are added here.
        readers: open video files kept between calls (a video decoded front to back once).
        check: an optional check of each decoded frame (e.g. its size against the annotation).

    Each step gets its own :class:`Held` (new dicts over the same arrays), which stays valid
    after the generator resumes: the step's releases only drop the walk's own references, so a
    consumer may keep a step's frames and flows while the next step is computed
    (:func:`overlap_steps`). The arrays are shared and must not be modified.
    """
    held = Held()
    for step in steps:
        if step.decode:
            results = decode_frames([locate(f) for f in step.decode], readers)
            for f, result in zip(step.decode, results, strict=True):
                if not isinstance(result, FrameDecodeError) and check is not None:
                    result = check(f, result) or result
                if isinstance(result, FrameDecodeError):
                    held.failed[f] = result
                    counters["frames_failed"] += 1
                else:
                    held.frames[f] = result
                    counters["frames_decoded"] += 1
        frames = held.frames
        todo = [
            p
            for p in step.flows
            if p[0] in frames and p[1] in frames and frames[p[0]].shape == frames[p[1]].shape
        ]
        if todo:
            results = estimator.estimate_batch([(frames[a], frames[b]) for a, b in todo])
            held.flows.update(zip(todo, results, strict=True))
            counters["flows_computed"] += len(todo)
        yield step, Held(dict(held.frames), dict(held.failed), dict(held.flows))
        for f in step.release_frames:
            held.frames.pop(f, None)
            held.failed.pop(f, None)
        for p in step.release_flows:
            held.flows.pop(p, None)


Output = TypeVar("Output")
StepWork = Callable[[Step, Held, Counter], list[Output]]
"""What a worker does with one step: its outputs, with its counters added to the given Counter."""


def overlap_steps(
    walk: Iterable[tuple[Step, Held]],
    work: StepWork,
    counters: Counter,
    helper: Executor | None = None,
    ahead: int = 1,
) -> Iterator[Output]:
    """``work`` on every step of ``walk``, in order; on ``helper`` while the walk computes ahead.

    Args:
        walk: :func:`walk_schedule`'s steps (each with its own :class:`Held`).
        work: called once per step, in step order; may keep state between steps (it is never
            called concurrently with itself when ``helper`` runs one thread).
        counters: every call's counters are added here, by the calling thread.
        helper: a **single-thread** executor (e.g. ``ThreadPoolExecutor(max_workers=1)``), or
            ``None`` to run ``work`` inline. Other jobs may share its queue: they run in order.
        ahead: how many steps' work may wait on the helper while the walk goes on. Each one
            keeps its step's frames and flows alive, so memory grows by about one step per unit.

    Yields:
        The outputs of step 0, then step 1, ...: the same items in the same order as running
        ``work`` inline. An exception in ``work`` is raised here, when its step's outputs are due.
    """
    if helper is None:
        for step, held in walk:
            yield from work(step, held, counters)
        return
    overlap = StepOverlap(helper, counters, ahead)
    yield from overlap.run(walk, work)
    yield from overlap.flush()


class StepOverlap:
    """:func:`overlap_steps` whose last steps' work may stay on the helper between walks.

    :meth:`run` submits each step of a walk and yields the outputs that are due, but leaves the
    last ``ahead`` steps pending when the walk ends; the next :meth:`run` (another walk, e.g.
    the next Beam element of a worker) yields them first, while its own first flows are being
    computed, and :meth:`flush` yields what is left at the end. Outputs come in submission order
    across walks, exactly as running every walk through :func:`overlap_steps` one after another.

    Args:
        helper: a single-thread executor, as for :func:`overlap_steps`.
        counters: every step's counters are added here when its outputs are yielded.
        ahead: as for :func:`overlap_steps`.
    """

    def __init__(self, helper: Executor, counters: Counter, ahead: int = 1) -> None:
        if ahead < 0:
            raise ValueError(f"ahead must be >= 0, got {ahead}")
        self._helper = helper
        self._counters = counters
        self._ahead = ahead
        self._pending: deque[tuple[Future, Counter]] = deque()

    def __len__(self) -> int:
        """Steps whose outputs have not been yielded yet."""
        return len(self._pending)

    def run(self, walk: Iterable[tuple[Step, Held]], work: StepWork) -> Iterator[Output]:
        """Submit ``work`` for every step of ``walk``; yield the outputs that are due."""
        for step, held in walk:
            own: Counter = Counter()
            self._pending.append((self._helper.submit(work, step, held, own), own))
            yield from self._drain(self._ahead)

    def flush(self) -> Iterator[Output]:
        """Yield the outputs of every pending step, waiting for them."""
        yield from self._drain(0)

    def discard(self) -> None:
        """Forget the pending steps (after a failure): cancel those not started and wait for the
        one running, so nothing of them reaches a later walk."""
        while self._pending:
            job, _ = self._pending.popleft()
            if not job.cancel():
                job.exception()

    def _drain(self, until: int) -> Iterator[Output]:
        while len(self._pending) > until:
            job, own = self._pending.popleft()
            outputs = job.result()
            self._counters.update(own)
            yield from outputs
