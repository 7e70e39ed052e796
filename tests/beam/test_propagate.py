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
    assert [len(g) for g in groups] == [5, 5, 2, 2]
    assert all(len({t.window.video_id for t in g}) == 1 for g in groups)
    assert [t for g in groups for t in g] == tasks
