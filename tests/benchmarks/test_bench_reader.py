"""``benchmarks/bench_reader.py``: a tiny end-to-end run and its table helpers.

The smoke run builds shards from 12 frames of the real 720p video (one labelled frame, two
people: 14 instances), writes the JPEG + JSON copy and times both loaders with no worker
process, in about 15 s. It checks that the JSON results have positive rates and that the two
loaders yield the same samples, not what the rates are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.perf.annotations import body_part_labels
from dptrack_pipeline.perf.jpeg_json import LABEL_COLUMNS, META_KEYS
from dptrack_pipeline.perf.reader import (
    add_ratios,
    goal_by_workers,
    goal_lines,
    plan_runs,
    results_table,
)


def test_plan_ratios_and_table() -> None:
    runs = plan_runs([0, 2])
    assert runs == [
        ("shards", 0, True),
        ("jpeg+json", 0, True),
        ("shards", 2, True),
        ("jpeg+json", 2, True),
        ("shards", 0, False),
        ("jpeg+json", 0, False),
    ]
    rates = [300.0, 100.0, 500.0, 250.0, 400.0, 200.0]
    results = [
        {"loader": n, "workers": w, "with_flow_source": s, "samples_per_s": r}
        for (n, w, s), r in zip(runs, rates, strict=True)
    ]
    add_ratios(results)
    assert [r["ratio_vs_jpeg"] for r in results] == pytest.approx([3.0, 1.0, 2.0, 1.0, 2.0, 1.0])
    table = results_table(results)
    assert "| shards | yes | 0 | 300.0 | 3.00x |" in table
    assert table.splitlines()[1] == "|---|---|---|---|---|"
    assert len(table.splitlines()) == 2 + len(results)
    goal = goal_by_workers(results, [0, 2])
    assert goal == {"0": {"ratio": 3.0, "met": True}, "2": {"ratio": 2.0, "met": False}}
    assert goal_lines(goal)[1] == "ratio with 2 workers: 2.00x (goal >= 3x: NOT met)"


def test_json_carries_the_labels_not_the_dense_references() -> None:
    from dptrack_pipeline.train.shard_index import COLUMNS

    assert set(LABEL_COLUMNS) < set(COLUMNS)
    assert {"bbox", "crop_box", "dp_x", "dp_I", "dp_masks"} <= set(LABEL_COLUMNS)
    assert not {"dense_file", "crop_index", "flow_index", "estimator"} & set(LABEL_COLUMNS)
    assert {"video_id", "annotation_id", "offset", "track_id"} <= set(META_KEYS)
    assert not {"bbox", "dp_x", "dp_masks"} & set(META_KEYS)


def test_body_labels_cover_every_part() -> None:
    labels = body_part_labels(np.random.default_rng(0))
    assert labels.shape == (256, 256)
    assert set(np.unique(labels).tolist()) == set(range(15))


def test_smoke_run(bench_script, shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "video" / "street_people_720p.avi"
    if not video.exists():
        pytest.skip(f"{video} is absent")
    bench = bench_script("bench_reader")
    out = tmp_path / "bench.json"
    argv = [
        "--video", str(video), "--frames", "12", "--people", "2", "--segment", "12",
        "--workers", "0", "--batch-size", "4", "--warmup-batches", "1", "--passes", "2",
        "--work", str(tmp_path / "work"), "--json", str(out),
    ]  # fmt: skip
    report = bench.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["schema"] == "bench_reader/1"
    data = report["data"]
    assert data["annotated_rows"] == 2 and data["propagated_rows"] > 0
    assert data["rows"] == data["annotated_rows"] + data["propagated_rows"]
    assert [(r["loader"], r["workers"], r["with_flow_source"]) for r in report["results"]] == [
        ("shards", 0, True),
        ("jpeg+json", 0, True),
        ("shards", 0, False),
        ("jpeg+json", 0, False),
    ]
    for result in report["results"]:
        assert result["samples"] == 2 * data["rows"]  # two full passes
        assert result["samples_per_s"] > 0 and result["ratio_vs_jpeg"] > 0
    assert report["goal"]["by_workers"]["0"]["ratio"] > 0
    check = report["same_samples"]
    assert check["passed"], check
    assert check["exact_mismatches"] == []
    assert check["partners_compared"] > 0
    assert 0 <= check["crop_mean_abs_diff"] <= check["max_allowed_mean_abs_diff"]

    again = bench.main(argv)  # the data in --work is reused
    assert again["data"]["reused"] is True
    assert again["data"]["rows"] == data["rows"]
