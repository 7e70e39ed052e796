"""The ``run`` job's Beam pieces: how windows become elements."""

from __future__ import annotations

from dptrack_pipeline.beam.propagate import group_windows
from dptrack_pipeline.propagate.plan import WindowTask, plan_windows


def test_windows_are_grouped_in_runs_of_one_video() -> None:
    def task(video: str, source: int) -> WindowTask:
        (window,) = plan_windows(video, 100, [source], 3)
        return WindowTask(window=window, num_frames=100, frames={}, sources={})

    tasks = [task("a", s) for s in range(4, 100, 8)] + [task("b", 4), task("b", 12)]
    groups = group_windows(tasks, size=5)
    assert [len(g) for g in groups] == [4, 4, 4, 2]  # 12 windows of "a": sizes balanced
    assert all(len({t.window.video_id for t in g}) == 1 for g in groups)
    assert [t for g in groups for t in g] == tasks


def test_a_long_video_is_cut_into_runs_of_balanced_sizes() -> None:
    def task(source: int) -> WindowTask:
        (window,) = plan_windows("v", 300, [source], 3)
        return WindowTask(window=window, num_frames=300, frames={}, sources={})

    tasks = [task(s) for s in range(4, 212, 8)]  # 26 windows
    assert [len(g) for g in group_windows(tasks, size=8)] == [7, 7, 6, 6]
    assert [len(g) for g in group_windows(tasks[:16], size=8)] == [8, 8]
    assert [len(g) for g in group_windows(tasks[:1], size=8)] == [1]
