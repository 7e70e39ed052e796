"""Speed, FLOPs, memory and bf16 accuracy of the pure-PyTorch FlowNet2, made for one GPU run.

What :func:`run_benchmark` measures, in one process, in this order (each step is logged as it
goes, and the results file is rewritten after every step, so a run cut short keeps what it did):

1. **Environment**: device name, torch, CUDA and cuDNN versions, TF32 settings (PyTorch's default
   lets cuDNN run "fp32" convolutions as TF32 on Ampere and later: the "fp32" rows are that).
2. **bf16 matmul rate** of the card: a square ``N x N @ N x N`` bf16 matmul (N = 8192 on CUDA,
   1024 in smoke runs and on the CPU), in TFLOP/s; the yardstick for "fraction of the card"
   below, not the card's datasheet peak (:func:`~.flownet2.measure_matmul`).
3. **FLOPs per pair** at each network size, on the ``meta`` device
   (:func:`~.flownet2.count_flops`, which says what is and is not counted).
4. **Accuracy of bf16** on real frames: three Sintel clean pairs through the estimator, fp32
   against bf16 and both against the truth (:mod:`.sintel`; skipped, with the reason, when the
   frames are absent). Meaningful only with the real checkpoint; with the random one the numbers
   are printed, with a warning, for the code path.
5. **Throughput**, for each size x precision x batch, two ways: ``model``, the network alone on
   device tensors, and ``estimator``, ``estimate_batch`` end to end on numpy frames
   (:func:`~.flownet2.bench_model`, :func:`~.flownet2.bench_estimator`): pairs/s, ms/pair, peak
   GPU memory, achieved TFLOP/s (FLOPs per pair x pairs/s) and its fraction of the matmul rate.
   ``warmup`` untimed iterations, then ``iters`` timed ones between two
   ``torch.cuda.synchronize()``; ``cudnn.benchmark`` on and channels-last weights on CUDA, as the
   estimator does. A configuration that runs out of GPU memory is recorded as ``"OOM"`` and the
   run goes on. Peak GPU memory is what the configuration alone needs
   (:func:`~dptrack_pipeline.perf.device.memory_peak`; the process also holds the other
   precision's model and the estimators' copies: that total is ``peak_mem_process_mib``). On
   the CPU it is "n/a" and the process's peak RSS is given instead.
6. **Correlation**: the tiled matmul against the 441-shift loop on FlowNetC-sized features, fp32
   and bf16 (:func:`~.flownet2.bench_correlation`).

Then the Markdown table and the anchor (:mod:`.flownet2_report`). Without a checkpoint a random
one with the public names and shapes is written to a temporary folder (650 MB, a few seconds):
the timings are valid, the flow accuracy numbers are not. ``max_seconds`` (default 420) skips
the configurations that would start after that many seconds from the start, so the default run
fits in about 8 minutes on an H100.

**Models are loaded once.** One copy of the network per precision serves the ``model`` path;
the estimator keeps one model per process per option set while an estimator using it lives, so
one "keeper" estimator per precision stays set up for the whole run and each configuration's
new estimator (its own batch size) reuses that model instead of reading the checkpoint again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from dptrack_pipeline.flow.flownet2.checkpoint import load_flownet2, write_random_checkpoint
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.perf.device import environment, guarded, parameter_bytes, release_memory
from dptrack_pipeline.perf.flownet2 import (
    CORRELATION_CHANNELS,
    bench_correlation,
    bench_estimator,
    bench_model,
    count_flops,
    measure_matmul,
    prepare_model,
)
from dptrack_pipeline.perf.flownet2_report import RANDOM_WEIGHTS_BANNER, anchor_comparison, describe
from dptrack_pipeline.perf.flownet2_settings import configurations, parse_size
from dptrack_pipeline.perf.results import BenchmarkRun
from dptrack_pipeline.perf.sintel import missing_sequences, sintel_accuracy
from dptrack_pipeline.perf.timing import format_or_na, peak_rss_mib

SCHEMA = "bench_flownet2/1"
FLOPS_NOTE = (
    "FlopCounterMode, batch-1 forward, 2 FLOPs per multiply-add: convolutions and "
    "transposed convolutions, plus the correlation's tiled matmul (aten.bmm; it computes "
    "784 scores per 441 kept, so ~1.8x the correlation's useful work). Interpolation, "
    "grid_sample, norms and elementwise ops are not counted."
)


@contextmanager
def checkpoint_or_random(run: BenchmarkRun, checkpoint: Path | None) -> Iterator[Path]:
    """``checkpoint``, or (``None``) a random one in a temporary folder removed afterwards."""
    if checkpoint is not None:
        yield checkpoint
        return
    print(RANDOM_WEIGHTS_BANNER, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_flownet2_") as folder:
        path = Path(folder) / "flownet2_random.pth.tar"
        write_random_checkpoint(str(path))
        run.log(f"wrote a random checkpoint to {path}")
        yield path


def run_benchmark(
    settings: dict[str, Any],
    device: torch.device,
    checkpoint: Path | None,
    json_path: Path | None,
    command: list[str],
) -> BenchmarkRun:
    """Run every step for ``settings`` (:func:`~.flownet2_settings.resolve_settings`) on
    ``device``; returns the run, whose ``results`` were written to ``json_path`` after each
    step (its clock goes on, for the caller's last lines).

    ``checkpoint``: the public weights, or ``None`` for random ones (accuracy meaningless).
    ``command``: the command line, recorded in the results.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    run = BenchmarkRun(SCHEMA, json_path, settings["max_seconds"])
    run.results["command"] = command
    run.results["settings"] = settings
    run.results["environment"] = env = environment(device)
    run.log(
        f"device {env['device']} ({env['device_name']}), torch {env['torch']}, "
        f"CUDA {env['cuda']}, cuDNN {env['cudnn']}, conv fp32 precision "
        f"{env['conv_fp32_precision']}, matmul fp32 precision {env['matmul_fp32_precision']}"
    )
    run.log(
        f"sizes {settings['sizes']} (network {settings['network_sizes']}), batches "
        f"{settings['batches']}, precisions {settings['precisions']}, warm-up "
        f"{settings['warmup']}, iters {settings['iters']}, budget {settings['max_seconds']:.0f} s"
    )
    random_weights = checkpoint is None
    with checkpoint_or_random(run, checkpoint) as path:
        run.results["checkpoint"] = {"path": str(path), "random_weights": random_weights}
        _measure(run, path, device, settings, random_weights)
    return run


def _measure(
    run: BenchmarkRun,
    checkpoint: Path,
    device: torch.device,
    settings: dict[str, Any],
    random_weights: bool,
) -> None:
    base = load_flownet2(str(checkpoint))
    models = {p: prepare_model(base, device, p) for p in settings["precisions"]}
    del base
    run.log(f"loaded {checkpoint.name} as {', '.join(models)} on {device}")
    estimator_options = {
        "checkpoint": str(checkpoint),
        "device": str(device),
        "fit": settings["fit"],
        "correlation": settings["correlation"],
    }
    keepers = [
        create_estimator("flownet2", **estimator_options, precision=p)
        for p in settings["precisions"]
    ]
    for keeper in keepers:
        keeper.setup()
    run.log(f"estimator models loaded ({', '.join(settings['precisions'])})")

    matmul_tflops = run_matmul(run, device, settings)
    flops = run_flops(run, device, settings, models.get("fp32"))
    run_accuracy(run, estimator_options, device, settings, random_weights)
    rows = run_throughput(run, models, estimator_options, device, settings, flops, matmul_tflops)
    run_correlation(run, device, settings)
    run.results["anchor"] = anchor_comparison(rows)
    run.results["complete"] = True
    run.results["budget_exceeded"] = run.over_budget()
    run.save()
    del keepers, models


def run_matmul(run: BenchmarkRun, device: torch.device, settings: dict[str, Any]) -> float | None:
    """Step 2: the bf16 matmul rate; its TFLOP/s (``None`` when it failed)."""
    size = settings["matmul_size"]
    matmul = guarded(
        device, measure_matmul, device, size, settings["matmul_warmup"], settings["matmul_iters"]
    )
    run.results["bf16_matmul"] = matmul
    tflops = matmul.get("tflops")
    run.log(f"bf16 matmul {size}^3: {format_or_na(tflops, '.3g')} TFLOP/s")
    run.save()
    return tflops


def run_flops(
    run: BenchmarkRun,
    device: torch.device,
    settings: dict[str, Any],
    fp32_model: torch.nn.Module | None,
) -> dict[str, Any]:
    """Step 3: FLOPs per pair at each network size, keyed by network label."""
    net_sizes = [parse_size(s)[::-1] for s in dict.fromkeys(settings["network_sizes"])]
    flops = count_flops(net_sizes, device, fp32_model)
    run.results["flops"] = flops
    run.results["flops_note"] = FLOPS_NOTE
    for label, entry in flops.items():
        if entry["status"] != "ok":
            run.log(f"FLOPs per pair at {label}: {entry['status']}")
            continue
        run.log(
            f"FLOPs per pair at {label}: {entry['gflops_per_pair']:.1f} GFLOP "
            f"({', '.join(f'{op} {n / 1e9:.1f}' for op, n in entry['by_op'].items())}; "
            f"counted on {entry['counted_on']})"
        )
    run.save()
    return flops


def run_accuracy(
    run: BenchmarkRun,
    estimator_options: dict[str, Any],
    device: torch.device,
    settings: dict[str, Any],
    random_weights: bool,
) -> None:
    """Step 4: bf16 against fp32 and the truth on the Sintel pairs (or why it was skipped)."""
    sintel = Path(settings["sintel"])
    missing = missing_sequences(sintel)
    if missing:
        result: dict[str, Any] = {
            "status": f"skipped: Sintel frames not found under {sintel} ({', '.join(missing)})"
        }
    else:
        crop = parse_size(settings["sintel_crop"]) if settings["sintel_crop"] else None
        result = guarded(
            device, sintel_accuracy, sintel, estimator_options, settings["precisions"], crop
        )
    result["random_weights"] = random_weights
    run.results["accuracy"] = result
    run.log(f"accuracy (Sintel clean 2->3): {result['status']}")
    if result["status"] == "ok":
        for pair in result["pairs"]:
            parts = [f"{k} {v:.3f}" for k, v in pair.items() if isinstance(v, float)]
            run.log(f"  {pair['sequence']} {pair['size']}: " + ", ".join(parts))
        if random_weights:
            run.log("  WARNING: random weights: these EPEs and differences are meaningless")
    run.save()


def run_throughput(
    run: BenchmarkRun,
    models: dict[str, torch.nn.Module],
    estimator_options: dict[str, Any],
    device: torch.device,
    settings: dict[str, Any],
    flops: dict[str, Any],
    matmul_tflops: float | None,
) -> list[dict[str, Any]]:
    """Step 5: the model and the estimator at every configuration; the result rows."""
    rows: list[dict[str, Any]] = []
    run.results["throughput"] = rows
    warmup, iters = settings["warmup"], settings["iters"]
    for row, net_size in configurations(settings):
        label, net_label = row["size"], row["network_size"]
        precision, batch = row["precision"], row["batch"]
        rows.append(row)
        if run.over_budget():
            row["model"] = row["estimator"] = {"status": "skipped (budget)"}
            run.log(f"throughput {label} {precision} batch {batch}: skipped (budget)")
            continue
        model = models[precision]
        row["model"] = guarded(device, bench_model, model, device, net_size, batch, warmup, iters)
        options = {**estimator_options, "precision": precision}
        row["estimator"] = guarded(
            device,
            bench_estimator,
            options,
            device,
            parse_size(label),
            batch,
            warmup,
            iters,
            parameter_bytes(model),
        )
        flops_per_pair = flops.get(net_label, {}).get("flops_per_pair")
        for path in ("model", "estimator"):
            result = row[path]
            if result["status"] == "ok" and flops_per_pair:
                result["tflops"] = flops_per_pair * result["pairs_per_s"] / 1e12
                if matmul_tflops:
                    result["fraction_of_bf16_matmul"] = result["tflops"] / matmul_tflops
        if device.type == "cpu":
            row["process_peak_rss_mib"] = peak_rss_mib()
        run.log(
            f"throughput {label} (net {net_label}) {precision} batch {batch}: "
            f"model {describe(row['model'])}; estimator {describe(row['estimator'])}"
        )
        run.save()
        release_memory(device)
    return rows


def run_correlation(run: BenchmarkRun, device: torch.device, settings: dict[str, Any]) -> None:
    """Step 6: the tiled correlation against the loop at every configuration."""
    rows: list[dict[str, Any]] = []
    run.results["correlation"] = rows
    for row, net_size in configurations(settings):
        if run.over_budget():
            row["status"] = "skipped (budget)"
        else:
            row.update(
                guarded(
                    device,
                    bench_correlation,
                    device,
                    net_size,
                    row["batch"],
                    row["precision"],
                    settings["warmup"],
                    settings["iters"],
                )
            )
        rows.append(row)
        if row["status"] == "ok":
            text = (
                f"matmul {row['fast_ms']:.2f} ms, loop {row['reference_ms']:.2f} ms "
                f"({row['speedup']:.1f}x), max rel diff {row['max_rel_diff']:.2e}"
            )
        else:
            text = row["status"]
        net_h, net_w = net_size
        run.log(
            f"correlation {row['size']} (features {row['batch']}x{CORRELATION_CHANNELS}x"
            f"{net_h // 8}x{net_w // 8}) {row['precision']}: {text}"
        )
        run.save()
        release_memory(device)
