"""``benchmarks/bench_flownet2.py``: its helpers, its CUDA-missing message and a CPU smoke run.

The smoke run is the documented command line (``--device cpu --smoke --json OUT``) on a random
checkpoint, with ``--batches 1``: bf16 convolutions on a CPU without bf16 instructions take
about 4 s a forward pass at any size, and batch 2 would add ~20 s. It checks the JSON results
have every section and positive numbers, not what the numbers are.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_flownet2.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script imported as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("bench_flownet2", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_checkpoint(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """A FlowNet2 checkpoint: the suite's shared ``flownet2_checkpoint`` fixture where one is
    defined, else a random one written here (650 MB, ~4 s)."""
    try:
        return Path(request.getfixturevalue("flownet2_checkpoint"))
    except pytest.FixtureLookupError:
        from dptrack_pipeline.flow.flownet2.checkpoint import write_random_checkpoint

        path = tmp_path_factory.mktemp("flownet2") / "flownet2_random.pth.tar"
        write_random_checkpoint(str(path))
        return path


def _run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def test_parse_size(bench: ModuleType) -> None:
    assert bench.parse_size("1280x720") == (1280, 720)
    assert bench.network_label(1000, 500) == "1024x512"
    assert bench.network_label(1280, 720) == "1280x768"
    for bad in ("1280", "1280x", "0x64", "axb"):
        with pytest.raises(argparse.ArgumentTypeError, match="size must be"):
            bench.parse_size(bad)


def _row(size: str, precision: str, batch: int, ms: float | None) -> dict:
    result = {"status": "OOM"} if ms is None else {"status": "ok", "ms_per_pair": ms}
    return {
        "size": size,
        "network_size": "1024x512" if size == "1000x500" else "1024x448",
        "precision": precision,
        "batch": batch,
        "model": result,
        "estimator": dict(result),
    }


def test_anchor_and_table(bench: ModuleType) -> None:
    import torch

    rows = [
        _row("1000x500", "fp32", 1, 40.0),
        _row("1000x500", "bf16", 16, 10.7),
        _row("1000x500", "bf16", 64, None),
        _row("1024x448", "bf16", 16, 5.0),  # faster, but not at the anchor's size
    ]
    anchor = bench.anchor_comparison(rows)
    assert anchor["best_model"]["ms_per_pair"] == 10.7
    assert anchor["best_model"]["speedup_vs_anchor"] == pytest.approx(20.0)
    assert anchor["goal_met_model"] is True
    assert anchor["fp32_batch1_model"]["ms_per_pair"] == 40.0
    table = bench.markdown_table(rows, torch.device("cpu"))
    assert "pairs/s (estimator, end-to-end)" in table
    assert "| 1000x500 -> 1024x512 | bf16 | 64 | OOM |" in table
    assert len(table.splitlines()) == 2 + len(rows)


def test_cuda_missing_says_what_to_run() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here")
    done = _run_script("--device", "cuda", timeout=120)
    assert done.returncode != 0
    assert "CUDA is not available" in done.stderr
    assert "--device cpu --smoke" in done.stderr


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.mark.slow
def test_cpu_smoke_run_writes_complete_json(bench_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = _run_script(
        "--device",
        "cpu",
        "--smoke",
        "--batches",
        "1",
        "--checkpoint",
        str(bench_checkpoint),
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| size (input -> network) | precision | batch |" in done.stdout
    assert "Anchor: public FlowNet2 PyTorch port" in done.stdout

    results = json.loads(out.read_text())
    assert results["schema"] == "bench_flownet2/1"
    assert results["complete"] is True
    env = results["environment"]
    for key in ("device", "device_name", "torch", "cuda", "cudnn", "conv_fp32_precision"):
        assert key in env
    assert env["device"] == "cpu"
    assert results["settings"]["network_sizes"] == ["64x64"]
    assert results["checkpoint"]["path"] == str(bench_checkpoint)

    assert results["bf16_matmul"]["status"] == "ok"
    assert results["bf16_matmul"]["n"] == 1024
    assert _positive(results["bf16_matmul"]["tflops"])

    flops = results["flops"]["64x64"]
    assert flops["status"] == "ok" and _positive(flops["flops_per_pair"])
    assert _positive(flops["by_op"]["aten.convolution"]) and _positive(flops["by_op"]["aten.bmm"])

    rows = results["throughput"]
    assert [(r["precision"], r["batch"]) for r in rows] == [("fp32", 1), ("bf16", 1)]
    for row in rows:
        assert row["size"] == "60x40" and row["network_size"] == "64x64"
        for path in ("model", "estimator"):
            result = row[path]
            assert result["status"] == "ok", result
            for key in ("pairs_per_s", "ms_per_pair", "tflops", "fraction_of_bf16_matmul"):
                assert _positive(result[key]), (path, key, result)
            assert result["peak_mem_mib"] is None  # no GPU
        assert _positive(row["process_peak_rss_mib"])

    correlations = results["correlation"]
    assert [c["precision"] for c in correlations] == ["fp32", "bf16"]
    for entry in correlations:
        assert entry["status"] == "ok", entry
        assert entry["feature_shape"] == [1, 256, 8, 8]
        assert _positive(entry["fast_ms"]) and _positive(entry["reference_ms"])
        tolerance = 1e-5 if entry["precision"] == "fp32" else 2e-2
        assert 0 <= entry["max_rel_diff"] < tolerance

    accuracy = results["accuracy"]
    if accuracy["status"] == "ok":
        assert [p["sequence"] for p in accuracy["pairs"]] == ["alley_1", "cave_2", "market_5"]
        for pair in accuracy["pairs"]:
            assert _positive(pair["epe_fp32"]) and _positive(pair["epe_bf16"])
            assert pair["fp32_bf16_max_epd"] >= pair["fp32_bf16_mean_epd"] >= 0
    else:
        assert accuracy["status"].startswith("skipped: Sintel frames not found")

    anchor = results["anchor"]
    assert anchor["reference_ms_per_pair"] == 214.0
    assert anchor["network_size"] == "1024x512"
    assert anchor["best_model"] is None  # 1000x500 is not a smoke size
