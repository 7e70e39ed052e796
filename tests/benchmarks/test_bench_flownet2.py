"""``benchmarks/bench_flownet2.py`` and the functions it calls: sizes and settings, the anchor
and the table, its CUDA-missing message and a CPU smoke run.

The smoke run is the documented command line (``--device cpu --smoke --json OUT``) on a random
checkpoint, with ``--batches 1``: bf16 convolutions on a CPU without bf16 instructions take
about 4 s a forward pass at any size, and batch 2 would add ~20 s. It checks the JSON results
have every section and positive numbers, not what the numbers are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from dptrack_pipeline.perf.flownet2_report import (
    anchor_comparison,
    anchor_text,
    throughput_table,
)
from dptrack_pipeline.perf.flownet2_settings import (
    configurations,
    network_label,
    parse_size,
    resolve_settings,
)


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


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720)
    assert network_label(1000, 500) == "1024x512"
    assert network_label(1280, 720) == "1280x768"
    for bad in ("1280", "1280x", "0x64", "axb"):
        with pytest.raises(argparse.ArgumentTypeError, match="size must be"):
            parse_size(bad)


def test_smoke_settings_and_explicit_options_win(tmp_path: Path) -> None:
    smoke = resolve_settings("cpu", sintel=tmp_path, smoke=True)
    assert smoke["sizes"] == ["60x40"] and smoke["network_sizes"] == ["64x64"]
    assert (smoke["batches"], smoke["warmup"], smoke["iters"]) == ([1, 2], 0, 1)
    assert smoke["matmul_size"] == 1024 and smoke["sintel_crop"] == "64x64"
    full = resolve_settings("cuda", sintel=tmp_path, sizes=[(1000, 500)], batches=[4])
    assert full["network_sizes"] == ["1024x512"] and full["batches"] == [4]
    assert (full["warmup"], full["iters"], full["matmul_size"]) == (3, 10, 8192)
    assert (full["matmul_warmup"], full["matmul_iters"]) == (5, 50)  # more for a stable rate
    assert full["precisions"] == ["fp32", "bf16"] and full["sintel_crop"] is None
    with pytest.raises(ValueError, match="--batches must be >= 1"):
        resolve_settings("cpu", sintel=tmp_path, batches=[0])
    with pytest.raises(ValueError, match="--iters >= 1"):
        resolve_settings("cpu", sintel=tmp_path, iters=0)


def test_configurations_nest_size_precision_batch(tmp_path: Path) -> None:
    settings = resolve_settings(
        "cpu", sintel=tmp_path, sizes=[(64, 64), (1000, 500)], batches=[1, 2]
    )
    rows = list(configurations(settings))
    assert len(rows) == 2 * 2 * 2
    assert rows[0] == (
        {"size": "64x64", "network_size": "64x64", "precision": "fp32", "batch": 1},
        (64, 64),
    )
    assert rows[-1] == (
        {"size": "1000x500", "network_size": "1024x512", "precision": "bf16", "batch": 2},
        (512, 1024),  # (H', W')
    )


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


def test_anchor_and_table() -> None:
    rows = [
        _row("1000x500", "fp32", 1, 40.0),
        _row("1000x500", "bf16", 16, 10.7),
        _row("1000x500", "bf16", 64, None),
        _row("1024x448", "bf16", 16, 5.0),  # faster, but not at the anchor's size
    ]
    anchor = anchor_comparison(rows)
    assert anchor["best_model"]["ms_per_pair"] == 10.7
    assert anchor["best_model"]["speedup_vs_anchor"] == pytest.approx(20.0)
    assert anchor["goal_met_model"] is True
    assert anchor["fp32_batch1_model"]["ms_per_pair"] == 40.0
    table = throughput_table(rows, "cpu")
    assert "pairs/s (estimator, end-to-end)" in table
    assert "| 1000x500 -> 1024x512 | bf16 | 64 | OOM |" in table
    assert table.splitlines()[1] == "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    assert len(table.splitlines()) == 2 + len(rows)
    text = anchor_text(anchor)
    assert text.startswith("Anchor: public FlowNet2 PyTorch port")
    assert "10.70 ms/pair (bf16, batch 16, input 1000x500) = 20.0x the port; meets the goal" in text


def test_cuda_missing_says_what_to_run(run_bench) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here")
    done = run_bench("bench_flownet2", "--device", "cuda", timeout=120)
    assert done.returncode != 0
    assert "CUDA is not available" in done.stderr
    assert "--device cpu --smoke" in done.stderr


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.mark.slow
def test_cpu_smoke_run_writes_complete_json(
    run_bench, bench_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    done = run_bench(
        "bench_flownet2",
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
    assert "CPU run: peak RSS of this process" in done.stdout
    assert "NO --checkpoint" not in done.stdout  # a checkpoint was given

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
