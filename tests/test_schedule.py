"""The shared decode/flow engine: snapshots per step and overlapping work with the next step."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.frames import FrameLocation
from dptrack_pipeline.schedule import (
    Held,
    Step,
    StepOverlap,
    overlap_steps,
    required_pairs,
    schedule_sources,
    target_indices,
    walk_schedule,
)


class IndexEstimator(FlowEstimator):
    """Flow ``a -> b`` filled with ``b - a``; frames are recognised by their fill value."""

    name = "test_index"

    def estimate_batch(self, pairs):
        out = []
        for first, second in self.check_pairs(pairs):
            flow = np.empty(first.shape[:2] + (2,), np.float32)
            flow[...] = float(second[0, 0, 0]) - float(first[0, 0, 0])
            out.append(flow)
        return out


def _walk(num_frames: int = 8, max_offset: int = 2):
    sources = list(range(num_frames))
    steps = schedule_sources(
        sources,
        lambda s: [s, *target_indices(s, num_frames, max_offset)],
        lambda s: required_pairs(s, num_frames, max_offset),
    )
    frames = {i: np.full((4, 5, 3), i, np.uint8) for i in range(num_frames)}

    def locate(index: int) -> FrameLocation:
        return FrameLocation(path=f"{index}.png")

    return steps, frames, locate


def _fake_decode(monkeypatch: pytest.MonkeyPatch, frames: dict[int, np.ndarray]) -> None:
    def decode(locations, readers=None):
        return [frames[int(loc.path.split(".")[0])] for loc in locations]

    monkeypatch.setattr("dptrack_pipeline.schedule.decode_frames", decode)


def _summary(step: Step, held: Held, own: Counter) -> list[tuple]:
    """What a step saw: its source, the frames and flows held (by value)."""
    own["steps"] += 1
    own["flows_seen"] += len(held.flows)
    flows = tuple(sorted((p, float(f[0, 0, 0])) for p, f in held.flows.items()))
    return [(step.source, tuple(sorted(held.frames)), flows)]


def test_each_step_keeps_its_frames_and_flows_after_the_walk_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps, frames, locate = _walk()
    _fake_decode(monkeypatch, frames)
    counters: Counter = Counter()
    collected = list(walk_schedule(steps, locate, IndexEstimator(), counters))
    # every step's Held is still complete after the walk released everything
    for step, held in collected:
        assert step.source in held.frames
        for t in (step.source - 1, step.source + 1):
            if 0 <= t < 8:
                assert held.flows[(step.source, t)][0, 0, 0] == t - step.source
    assert counters["flows_computed"] == sum(len(s.flows) for s in steps)


@pytest.mark.parametrize("ahead", [1, 3])
def test_overlap_gives_the_same_outputs_and_counters_as_inline(
    monkeypatch: pytest.MonkeyPatch, ahead: int
) -> None:
    steps, frames, locate = _walk()
    _fake_decode(monkeypatch, frames)
    inline: Counter = Counter()
    expected = list(
        overlap_steps(walk_schedule(steps, locate, IndexEstimator(), inline), _summary, inline)
    )
    overlapped: Counter = Counter()
    with ThreadPoolExecutor(max_workers=1) as helper:
        walk = walk_schedule(steps, locate, IndexEstimator(), overlapped)
        got = list(overlap_steps(walk, _summary, overlapped, helper, ahead=ahead))
    assert got == expected
    assert [g[0] for g in got] == list(range(8))
    assert overlapped == inline
    assert inline["steps"] == 8


def test_work_runs_on_the_helper_while_the_walk_computes_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps, frames, locate = _walk()
    _fake_decode(monkeypatch, frames)
    main = threading.get_ident()
    threads: list[int] = []
    walked: list[int] = []

    def work(step: Step, held: Held, own: Counter) -> list[int]:
        threads.append(threading.get_ident())
        # the walk is at most `ahead` steps beyond the step being worked on
        assert len(walked) - 1 - step.source <= 1
        return [step.source]

    def walk():
        for step, held in walk_schedule(steps, locate, IndexEstimator(), Counter()):
            walked.append(step.source)
            yield step, held

    with ThreadPoolExecutor(max_workers=1) as helper:
        assert list(overlap_steps(walk(), work, Counter(), helper)) == list(range(8))
    assert main not in threads and len(set(threads)) == 1


def test_an_error_in_the_work_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    steps, frames, locate = _walk()
    _fake_decode(monkeypatch, frames)

    def work(step: Step, held: Held, own: Counter) -> list[int]:
        if step.source == 3:
            raise ValueError("bad step 3")
        return [step.source]

    got = []
    with ThreadPoolExecutor(max_workers=1) as helper:
        walk = walk_schedule(steps, locate, IndexEstimator(), Counter())
        with pytest.raises(ValueError, match="bad step 3"):
            for out in overlap_steps(walk, work, Counter(), helper):
                got.append(out)
    assert got == [0, 1, 2]


def test_step_overlap_carries_the_last_steps_into_the_next_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps, frames, locate = _walk()
    _fake_decode(monkeypatch, frames)
    inline: Counter = Counter()
    expected = [
        out
        for part in (steps[:5], steps[5:])
        for out in overlap_steps(
            walk_schedule(part, locate, IndexEstimator(), Counter()), _summary, inline
        )
    ]
    carried: Counter = Counter()
    with ThreadPoolExecutor(max_workers=1) as helper:
        overlap = StepOverlap(helper, carried)
        first = list(
            overlap.run(walk_schedule(steps[:5], locate, IndexEstimator(), Counter()), _summary)
        )
        assert len(overlap) == 1  # step 4's work is still pending between the walks
        second = list(
            overlap.run(walk_schedule(steps[5:], locate, IndexEstimator(), Counter()), _summary)
        )
        last = list(overlap.flush())
    assert [g[0] for g in first] == [0, 1, 2, 3]
    assert [g[0] for g in second] == [4, 5, 6]
    assert first + second + last == expected
    assert len(overlap) == 0 and carried == inline and carried["steps"] == 8


def test_step_overlap_discard_leaves_nothing_for_a_later_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps, frames, locate = _walk()
    _fake_decode(monkeypatch, frames)
    release = threading.Event()

    def work(step: Step, held: Held, own: Counter) -> list[int]:
        release.wait(5)
        return [step.source]

    with ThreadPoolExecutor(max_workers=1) as helper:
        overlap = StepOverlap(helper, Counter(), ahead=3)
        walk = walk_schedule(steps[:3], locate, IndexEstimator(), Counter())
        assert list(overlap.run(walk, work)) == []
        release.set()
        overlap.discard()
        assert len(overlap) == 0
        assert list(overlap.flush()) == []
    with pytest.raises(ValueError, match="ahead"):
        StepOverlap(helper, Counter(), ahead=-1)
