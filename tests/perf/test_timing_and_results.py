"""``perf.timing`` and ``perf.results``: the clock, peak RSS, tables and the results file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from dptrack_pipeline.perf.results import BenchmarkRun, json_safe, write_json
from dptrack_pipeline.perf.timing import format_or_na, markdown_table, peak_rss_mib, time_calls


def test_time_calls_warms_up_untimed_then_averages() -> None:
    calls = []
    seconds = time_calls(lambda: calls.append(1), torch.device("cpu"), warmup=2, iters=3)
    assert len(calls) == 5 and 0 <= seconds < 1


def test_peak_rss_is_positive_mib() -> None:
    assert 1 < peak_rss_mib() < 1e6
    assert peak_rss_mib(children=True) >= 0


def test_markdown_table_alignment_and_cells() -> None:
    table = markdown_table(("a", "b", "c"), [("1", "x", "2.5")], right_aligned=(0, 2))
    assert table.splitlines() == ["| a | b | c |", "|---:|---|---:|", "| 1 | x | 2.5 |"]
    assert format_or_na(None, ".2f") == "n/a" and format_or_na(1.234, ".2f") == "1.23"


def test_json_safe_replaces_non_finite_floats() -> None:
    data = {"a": [1.0, math.nan, (math.inf, 2)], "b": {"c": -math.inf}, "d": "x"}
    assert json_safe(data) == {"a": [1.0, None, [None, 2]], "b": {"c": None}, "d": "x"}


def test_write_json_is_atomic_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.json"
    write_json(path, {"x": math.nan})
    assert json.loads(path.read_text()) == {"x": None}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no .partial left


def test_benchmark_run_saves_what_it_has(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.json"
    run = BenchmarkRun("test/1", path, max_seconds=3600)
    run.results["step"] = 1
    run.save()
    saved = json.loads(path.read_text())
    assert saved["schema"] == "test/1" and saved["complete"] is False and saved["step"] == 1
    assert saved["elapsed_s"] >= 0 and not run.over_budget()
    assert BenchmarkRun("test/1", None, max_seconds=-1).over_budget()
    run.log("hello")
    assert capsys.readouterr().out.rstrip().endswith("s] hello")
