"""The FlowNet2 benchmark's results as text: the Markdown table, the anchor, the summary.

**The anchor.** The public PyTorch port of FlowNet2 measured 214 ms per pair at 500x1000
(H x W) in fp32 on an RTX 3090; the goal is at least 10x faster (<= 21.4 ms per pair) with bf16
batching on an H100/H200. The port, too, runs its network at multiples of 64, so the like for
like is the network size 1024x512 (input 1000x500, ``--sizes 1000x500``):
:func:`anchor_comparison` takes the best ms/pair there, for the model alone and for the
estimator end to end, and the fp32 batch-1 model (the port's own setting).

Cells of configurations that did not run show their status (``OOM``, ``skipped (budget)``)
instead of a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dptrack_pipeline.flow.flownet2.inference import network_size
from dptrack_pipeline.perf.flownet2_settings import size_label
from dptrack_pipeline.perf.timing import format_or_na, markdown_table, peak_rss_mib

ANCHOR_MS_PER_PAIR = 214.0  # the public port, 500x1000 fp32, RTX 3090
ANCHOR_NETWORK_SIZE = network_size(500, 1000)  # (H', W') = (512, 1024)
ANCHOR_SPEEDUP_GOAL = 10.0

RANDOM_WEIGHTS_BANNER = (
    "!" * 100 + "\n"
    "!! NO --checkpoint: using RANDOM FlowNet2 weights. Timings, FLOPs and memory are valid;\n"
    "!! the flow accuracy numbers (EPE, fp32 vs bf16 differences) are MEANINGLESS.\n" + "!" * 100
)


def _cell(result: dict[str, Any], key: str, fmt: str) -> str:
    if result.get("status") != "ok":
        return str(result.get("status", "-"))
    return format_or_na(result.get(key), fmt)


def throughput_table(rows: Sequence[dict[str, Any]], device_type: str) -> str:
    """The throughput rows as a Markdown table (README-ready)."""
    memory = "peak GPU mem (MiB)" if device_type == "cuda" else "peak GPU mem"
    header = (
        "size (input -> network)",
        "precision",
        "batch",
        "pairs/s (model)",
        "pairs/s (estimator, end-to-end)",
        "ms/pair (model)",
        memory,
        "TFLOP/s achieved",
        "fraction of bf16 matmul rate",
    )
    cells = [
        (
            f"{row['size']} -> {row['network_size']}",
            row["precision"],
            str(row["batch"]),
            _cell(row["model"], "pairs_per_s", ".2f"),
            _cell(row["estimator"], "pairs_per_s", ".2f"),
            _cell(row["model"], "ms_per_pair", ".2f"),
            _cell(row["model"], "peak_mem_mib", ".0f"),
            _cell(row["model"], "tflops", ".3g"),
            _cell(row["model"], "fraction_of_bf16_matmul", ".3f"),
        )
        for row in rows
    ]
    return markdown_table(header, cells, right_aligned=range(2, len(header)))


def describe(result: dict[str, Any]) -> str:
    """One measurement in a progress line: its rates, or its status."""
    if result["status"] != "ok":
        return result["status"] + (f" ({result['error']})" if "error" in result else "")
    memory = result.get("peak_mem_mib")
    text = f"{result['pairs_per_s']:.2f} pairs/s, {result['ms_per_pair']:.2f} ms/pair"
    if "tflops" in result:
        text += f", {result['tflops']:.3g} TFLOP/s"
    return text + (f", peak {memory:.0f} MiB" if memory is not None else "")


def _best(rows: Sequence[dict[str, Any]], path: str) -> dict[str, Any] | None:
    done = [row for row in rows if row[path].get("status") == "ok"]
    if not done:
        return None
    row = min(done, key=lambda r: r[path]["ms_per_pair"])
    return {
        "size": row["size"],
        "precision": row["precision"],
        "batch": row["batch"],
        "ms_per_pair": row[path]["ms_per_pair"],
        "speedup_vs_anchor": ANCHOR_MS_PER_PAIR / row[path]["ms_per_pair"],
    }


def anchor_comparison(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Best ms/pair at the anchor's network size against the public port's 214 ms/pair."""
    net_h, net_w = ANCHOR_NETWORK_SIZE
    at_anchor = [row for row in rows if row["network_size"] == size_label(net_w, net_h)]
    target = ANCHOR_MS_PER_PAIR / ANCHOR_SPEEDUP_GOAL
    fp32_single = [r for r in at_anchor if r["precision"] == "fp32" and r["batch"] == 1]
    result: dict[str, Any] = {
        "reference": "public FlowNet2 PyTorch port, 500x1000 (HxW) fp32, RTX 3090",
        "reference_ms_per_pair": ANCHOR_MS_PER_PAIR,
        "goal_ms_per_pair": target,
        "network_size": size_label(net_w, net_h),
        "best_model": _best(at_anchor, "model"),
        "best_estimator": _best(at_anchor, "estimator"),
        "fp32_batch1_model": _best(fp32_single, "model"),
    }
    for path in ("model", "estimator"):
        best = result[f"best_{path}"]
        result[f"goal_met_{path}"] = None if best is None else best["ms_per_pair"] <= target
    return result


def anchor_text(anchor: dict[str, Any]) -> str:
    """The anchor comparison, one line per best configuration."""
    lines = [
        f"Anchor: {anchor['reference']}: {anchor['reference_ms_per_pair']:.0f} ms/pair; "
        f"goal >= {ANCHOR_SPEEDUP_GOAL:.0f}x faster (<= {anchor['goal_ms_per_pair']:.1f} ms/pair) "
        f"at network size {anchor['network_size']} (input 1000x500, --sizes 1000x500)."
    ]
    labels = (
        ("best_model", "best, model alone"),
        ("best_estimator", "best, estimator end-to-end"),
        ("fp32_batch1_model", "fp32 batch 1, model alone (like for like)"),
    )
    for key, label in labels:
        best = anchor[key]
        if best is None:
            lines.append(f"  {label:42s}: not measured")
            continue
        verdict = "meets" if best["ms_per_pair"] <= anchor["goal_ms_per_pair"] else "misses"
        lines.append(
            f"  {label:42s}: {best['ms_per_pair']:8.2f} ms/pair ({best['precision']}, batch "
            f"{best['batch']}, input {best['size']}) = {best['speedup_vs_anchor']:.1f}x "
            f"the port; {verdict} the goal"
        )
    return "\n".join(lines)


def final_report(results: dict[str, Any]) -> str:
    """What a run prints at its end: the table, how it was measured, the anchor, bf16 accuracy
    and, with random weights, the warning again."""
    env, settings = results["environment"], results["settings"]
    matmul_tflops = results["bf16_matmul"].get("tflops")
    parts = [
        throughput_table(results["throughput"], env["device"].split(":")[0]),
        f"{env['device_name']}, torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}; "
        f"model = network alone on device tensors; estimator = estimate_batch end to end (numpy "
        f"in/out, transfers and resize included); {settings['warmup']} warm-up + "
        f"{settings['iters']} timed iterations; bf16 matmul rate "
        f"{format_or_na(matmul_tflops, '.3g')} TFLOP/s ({settings['matmul_size']}^3). FLOPs by "
        "FlopCounterMode (the correlation's matmul counted as matmul FLOPs).",
    ]
    if env["device"] == "cpu":
        parts[-1] += f"\nCPU run: peak RSS of this process {peak_rss_mib():.0f} MiB"
    parts.append(anchor_text(results["anchor"]))
    accuracy = results["accuracy"]
    if accuracy["status"] == "ok" and "mean_fp32_bf16_mean_epd" in accuracy:
        parts.append(
            f"bf16 vs fp32 on Sintel (3 pairs): mean endpoint difference "
            f"{accuracy['mean_fp32_bf16_mean_epd']:.4f} px, max "
            f"{accuracy['max_fp32_bf16_max_epd']:.3f} px; EPE fp32 "
            f"{format_or_na(accuracy.get('mean_epe_fp32'), '.3f')}, bf16 "
            f"{format_or_na(accuracy.get('mean_epe_bf16'), '.3f')}"
        )
    if results["checkpoint"]["random_weights"]:
        parts.append(RANDOM_WEIGHTS_BANNER)
    return "\n" + "\n\n".join(parts)
