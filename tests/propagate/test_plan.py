"""Planning: targets, windows, and the schedule's exactly-once guarantees."""

from __future__ import annotations

import itertools

import pytest

from dptrack_pipeline.propagate.plan import plan_windows, schedule_window
from dptrack_pipeline.schedule import required_pairs, target_indices


def test_targets_stay_inside_the_video() -> None:
    assert target_indices(0, 10, 3) == [1, 2, 3]
    assert target_indices(9, 10, 3) == [8, 7, 6]
    assert target_indices(5, 10, 2) == [4, 6, 3, 7]
    assert required_pairs(0, 2, 3) == [(0, 1), (1, 0)]


def test_separate_sources_give_separate_windows() -> None:
    windows = plan_windows("v", 40, [4, 12, 20, 28], 3)
    assert [w.sources for w in windows] == [(4,), (12,), (20,), (28,)]
    assert windows[0].frames == (1, 2, 3, 4, 5, 6, 7)
    assert len(windows[0].pairs) == 12


def test_overlapping_sources_merge_and_share_flows() -> None:
    # Every second frame for four frames (the paper's fast-motion sampling): one window.
    windows = plan_windows("v", 30, [10, 12, 14, 16], 3)
    assert len(windows) == 1
    w = windows[0]
    assert w.frames == tuple(range(7, 20))
    # (10, 12) serves 10's forward move and 12's backward check: planned once.
    needed = {p for s in w.sources for p in required_pairs(s, 30, 3)}
    assert set(w.pairs) == needed and len(w.pairs) == len(needed)


@pytest.mark.parametrize(
    "sources", [[4, 12, 20], [10, 12, 14, 16], list(range(0, 60, 4)), [0, 1, 2, 59], [5]]
)
def test_every_pair_once_and_every_frame_once(sources: list[int]) -> None:
    n, k = 60, 3
    windows = plan_windows("v", n, sources, k)
    all_pairs = list(itertools.chain.from_iterable(w.pairs for w in windows))
    assert len(all_pairs) == len(set(all_pairs))
    assert set(all_pairs) == {p for s in sources for p in required_pairs(s, n, k)}
    all_frames = list(itertools.chain.from_iterable(w.frames for w in windows))
    assert len(all_frames) == len(set(all_frames))
    for w in windows:
        steps = schedule_window(w, n, k)
        decoded = [f for s in steps for f in s.decode]
        computed = [p for s in steps for p in s.flows]
        assert sorted(decoded) == list(w.frames)
        assert sorted(computed) == list(w.pairs)
        released = [f for s in steps for f in s.release_frames]
        assert sorted(released) == list(w.frames)
        # Memory stays bounded: never more than 2K+1 frames + K frames of overlap held.
        held: set[int] = set()
        for s in steps:
            held.update(s.decode)
            assert len(held) <= 3 * k + 1
            held.difference_update(s.release_frames)
        assert not held


def test_out_of_range_sources_are_ignored_and_bad_offset_fails() -> None:
    assert plan_windows("v", 5, [-1, 7], 3) == []
    with pytest.raises(ValueError, match="max_offset"):
        plan_windows("v", 5, [1], -1)
