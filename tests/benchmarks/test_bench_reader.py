"""``benchmarks/bench_reader.py``: a tiny end-to-end run and its table helpers.

The smoke run builds shards from 12 frames of the real 720p video (one labelled frame, two
people: 14 instances), writes the JPEG + JSON copy and times both loaders with no worker
process, in about 15 s. It checks that the JSON results have positive rates and that the two
loaders yield the same samples, not what the rates are.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_reader.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script imported as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("bench_reader", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_ratios_and_table(bench: ModuleType) -> None:
    runs = bench.plan_runs([0, 2])
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
    bench.add_ratios(results)
    assert [r["ratio_vs_jpeg"] for r in results] == pytest.approx([3.0, 1.0, 2.0, 1.0, 2.0, 1.0])
    table = bench.markdown_table(results)
    assert "| shards | yes | 0 | 300.0 | 3.00x |" in table
    assert len(table.splitlines()) == 2 + len(results)


def test_body_labels_cover_every_part(bench: ModuleType) -> None:
    import numpy as np

    labels = bench.body_part_labels(np.random.default_rng(0))
    assert labels.shape == (256, 256)
    assert set(np.unique(labels).tolist()) == set(range(15))


def test_smoke_run(bench: ModuleType, shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "video" / "street_people_720p.avi"
    if not video.exists():
        pytest.skip(f"{video} is absent")
    out = tmp_path / "bench.json"
    argv = [
        "--video", str(video), "--frames", "12", "--people", "2", "--segment", "12",
        "--workers", "0", "--batch-size", "4", "--warmup-batches", "1",
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
        assert result["samples"] == data["rows"]  # one full pass
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
