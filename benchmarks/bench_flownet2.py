"""Speed, FLOPs, memory and bf16 accuracy of the pure-PyTorch FlowNet2, made for one GPU run.

What it measures, in one process, in this order (each step is printed as it goes, and with
``--json`` the results file is rewritten after every step, so a run cut short keeps what it did):

1. **Environment**: device name, torch, CUDA and cuDNN versions, TF32 settings (PyTorch's default
   lets cuDNN run "fp32" convolutions as TF32 on Ampere and later: the "fp32" rows are that).
2. **bf16 matmul rate** of the card: a square ``N x N @ N x N`` bf16 matmul (N = 8192 on CUDA,
   1024 in ``--smoke`` and on the CPU), in TFLOP/s (``2 N^3`` FLOPs per product). It is the
   yardstick for "fraction of the card" below; it is not the card's datasheet peak.
3. **FLOPs per pair** at each network size, by ``torch.utils.flop_counter.FlopCounterMode`` on a
   batch-1 forward of the model on the ``meta`` device (no memory, no time; falls back to the real
   device). It counts convolutions (transposed ones too) and the correlation's tiled matmul as
   ``bmm``, which computes 784 scores per 441 kept (``tile = 8``), so it counts about 1.8x the
   correlation's useful products; interpolation, ``grid_sample``, norms and elementwise ops are
   not counted.
4. **Accuracy of bf16** on real frames: Sintel clean ``frame_0002 -> frame_0003`` of ``alley_1``,
   ``cave_2`` and ``market_5`` (``../shared/data/flow/sintel``; skipped, with the reason, when
   absent), through the estimator: mean and max endpoint difference between the fp32 and bf16
   flows, and the EPE of each against ``gt/frame_0002.flo``. Meaningful only with the real
   checkpoint; with the random one the numbers are printed, with a warning, for the code path.
5. **Throughput**, for each size x precision x batch, two ways:

   * ``model``: the network alone on a ``(B, 3, 2, H', W')`` float tensor already on the device,
     ``H', W'`` the multiples of 64 the estimator resizes to: pairs/s, ms/pair, peak GPU memory,
     achieved TFLOP/s (FLOPs per pair x pairs/s) and its fraction of the bf16 matmul rate;
   * ``estimator``: ``create_estimator("flownet2", ...).estimate_batch(pairs)`` end to end, uint8
     numpy frames of the input size in, float32 numpy flows out: stacking, the host-to-device
     copy, the resize to ``H', W'`` and back, the device-to-host copy and the output checks are
     all inside the time.

   ``--warmup`` untimed iterations, then ``--iters`` timed ones between two
   ``torch.cuda.synchronize()``; ``cudnn.benchmark`` on and channels-last weights on CUDA, as
   the estimator does. A configuration that runs out of GPU memory is recorded as ``"OOM"`` and
   the run goes on. Peak GPU memory (``torch.cuda.max_memory_allocated``) is what the
   configuration alone needs: its model's weights plus its peak above what was allocated before
   it (the process also holds the other precision's model and the estimators' copies; that total
   is in the JSON as ``peak_mem_process_mib``). On the CPU it is "n/a" and the process's peak RSS
   is given instead.
6. **Correlation**: :func:`correlation` (tiled matmul) against :func:`correlation_reference` (the
   441-shift loop) on random FlowNetC features ``(B, 256, H'/8, W'/8)``, fp32 and bf16: ms per
   call, speed-up, and ``max|fast - reference| / max|reference|`` (same dtype, and against the
   fp32 reference for bf16).

Then a Markdown table for the README and the anchor: the public port measured 214 ms/pair at
500x1000 (H x W) fp32 on an RTX 3090; the goal is >= 10x faster (<= 21.4 ms/pair) with bf16
batching on an H100/H200. The default sizes include 1000x500 (W x H), which the estimator resizes
to 1024x512 (the port, too, runs its network at multiples of 64); the speed-up is printed for it.

Sizes are input frame sizes ``W x H`` (``--sizes``); the network runs at the next multiples of 64
(1024x448 -> 1024x448, 1000x500 -> 1024x512, 1280x720 -> 1280x768). ``--smoke`` is a check of
the script, not a measurement: 60x40 frames (network 64x64, the smallest; bf16 convolutions on a
CPU without bf16 instructions are ~50x slower than fp32, ~4 s a pass at any size), batches 1 and
2, no warm-up, 1 iteration, a 1024 matmul and Sintel pairs cropped to 64x64.

Without ``--checkpoint`` a random checkpoint with the public names and shapes is written to a
temporary folder (650 MB, a few seconds): the timings are valid, the flow accuracy numbers are
not. ``--max-seconds`` (default 420) skips the configurations that would start after that many
seconds from the start, so the default run fits in about 8 minutes on an H100.

    # on the GPU machine, with the public weights (a few minutes on an H100; capped at 420 s):
    python benchmarks/bench_flownet2.py --checkpoint FlowNet2_checkpoint.pth.tar \\
        --json flownet2_bench.json
    # the CPU smoke run (tiny sizes, 1 iteration, random weights; about a minute):
    python benchmarks/bench_flownet2.py --device cpu --smoke --json /tmp/flownet2_smoke.json
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from dptrack_pipeline.flow.flownet2.checkpoint import (  # noqa: E402
    load_flownet2,
    write_random_checkpoint,
)
from dptrack_pipeline.flow.flownet2.correlation import (  # noqa: E402
    correlation,
    correlation_reference,
)
from dptrack_pipeline.flow.flownet2.inference import network_size  # noqa: E402
from dptrack_pipeline.flow.flownet2.model import FlowNet2  # noqa: E402
from dptrack_pipeline.flow.io import read_flo  # noqa: E402
from dptrack_pipeline.flow.metrics import endpoint_error, endpoint_error_map  # noqa: E402
from dptrack_pipeline.flow.registry import create_estimator  # noqa: E402

SCHEMA = "bench_flownet2/1"
DEFAULT_SIZES = ("1024x448", "1000x500", "1280x720")
DEFAULT_BATCHES = (1, 4, 16)
DEFAULT_PRECISIONS = ("fp32", "bf16")
SMOKE_SIZES = ("60x40",)  # resized to the smallest network size, 64x64 (bf16 CPU convs are slow)
SMOKE_BATCHES = (1, 2)
SMOKE_SINTEL_CROP = "64x64"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SINTEL_SEQUENCES = ("alley_1", "cave_2", "market_5")
CORRELATION_CHANNELS = 256  # FlowNetC's conv3 features, at 1/8 of the network size

ANCHOR_MS_PER_PAIR = 214.0  # the public port, 500x1000 fp32, RTX 3090
ANCHOR_NETWORK_SIZE = network_size(500, 1000)  # (H', W') = (512, 1024)
ANCHOR_SPEEDUP_GOAL = 10.0

RANDOM_WEIGHTS_BANNER = (
    "!" * 100 + "\n"
    "!! NO --checkpoint: using RANDOM FlowNet2 weights. Timings, FLOPs and memory are valid;\n"
    "!! the flow accuracy numbers (EPE, fp32 vs bf16 differences) are MEANINGLESS.\n" + "!" * 100
)


# -- small helpers ----------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)`` in pixels, both >= 1."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be WxH (e.g. 1280x720), got {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def size_label(width: int, height: int) -> str:
    return f"{width}x{height}"


def network_label(width: int, height: int) -> str:
    """The network size (multiples of 64) of a ``width x height`` input, as ``"W'xH'"``."""
    net_h, net_w = network_size(height, width)
    return size_label(net_w, net_h)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity; they are written as null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def is_oom(error: BaseException) -> bool:
    """GPU (or CPU allocator) out-of-memory, as raised by PyTorch."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def start_memory_peak(device: torch.device) -> int:
    """Reset the GPU peak counter; the bytes allocated now (0 on the CPU)."""
    if device.type != "cuda":
        return 0
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def memory_peak(device: torch.device, before: int, weight_bytes: int) -> dict[str, float | None]:
    """GPU memory of one configuration since :func:`start_memory_peak` returned ``before``, MiB.

    ``peak_mem_mib`` is what the configuration alone needs: the weights of its model plus its
    peak above what was allocated before it (inputs, activations, cuDNN workspaces). The process
    holds more (the other precision's model, the estimators' own copies): that total is
    ``peak_mem_process_mib``. Both ``None`` on the CPU.
    """
    if device.type != "cuda":
        return {"peak_mem_mib": None, "peak_mem_process_mib": None}
    peak = torch.cuda.max_memory_allocated(device)
    return {
        "peak_mem_mib": (peak - before + weight_bytes) / 2**20,
        "peak_mem_process_mib": peak / 2**20,
    }


def process_peak_rss_mib() -> float:
    """Peak resident memory of this process so far (its whole life), MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def guarded(
    device: torch.device, run: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """``run(*args, **kwargs)``, with an out-of-memory error recorded as ``{"status": "OOM"}``
    and any other error as ``{"status": "error", "error": ...}`` instead of ending the run."""
    failure: dict[str, Any] | None = None
    try:
        result = run(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - one failed configuration must not end the run
        if is_oom(error):
            failure = {"status": "OOM"}
        else:
            failure = {"status": "error", "error": f"{type(error).__name__}: {error}"[:500]}
    # Out of the except block: the traceback (and the tensors it holds) is gone.
    if failure is not None:
        release_memory(device)
        return failure
    return result


def time_calls(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> float:
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then ``iters`` timed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / iters


class Run:
    """The results of this run, its clock and budget, progress lines and the JSON file."""

    def __init__(self, json_path: Path | None, max_seconds: float) -> None:
        self.start = time.perf_counter()
        self.json_path = json_path
        self.max_seconds = max_seconds
        self.results: dict[str, Any] = {"schema": SCHEMA, "complete": False}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over_budget(self) -> bool:
        return self.elapsed() > self.max_seconds

    def log(self, message: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {message}", flush=True)

    def save(self) -> None:
        """Write the results so far (atomically: a temporary file renamed over the target)."""
        self.results["elapsed_s"] = round(self.elapsed(), 3)
        if self.json_path is None:
            return
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.json_path.with_name(self.json_path.name + ".partial")
        partial.write_text(json.dumps(json_safe(self.results), indent=2) + "\n")
        os.replace(partial, self.json_path)


# -- the measurements -------------------------------------------------------------------------


def environment(device: torch.device) -> dict[str, Any]:
    """What ran the benchmark: versions, device, precision settings."""
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "conv_fp32_precision": getattr(
            getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None
        ),
        "matmul_fp32_precision": getattr(torch.backends.cuda.matmul, "fp32_precision", None),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            device_name=torch.cuda.get_device_name(device),
            gpu_memory_gib=round(props.total_memory / 2**30, 2),
            multiprocessors=props.multi_processor_count,
            compute_capability=f"{props.major}.{props.minor}",
        )
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def measure_matmul(device: torch.device, n: int, warmup: int, iters: int) -> dict[str, Any]:
    """The bf16 rate of one square ``n x n`` matmul on ``device``, TFLOP/s."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=generator)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=generator)
    out = torch.empty(n, n, device=device, dtype=torch.bfloat16)
    seconds = time_calls(lambda: torch.matmul(a, b, out=out), device, warmup, iters)
    return {
        "status": "ok",
        "n": n,
        "dtype": "bf16",
        "iters": iters,
        "ms_per_matmul": seconds * 1e3,
        "tflops": 2 * n**3 / seconds / 1e12,
    }


def count_flops(
    network_sizes: Sequence[tuple[int, int]], device: torch.device, fallback: torch.nn.Module | None
) -> dict[str, Any]:
    """FLOPs of one pair at each ``(H', W')``, by ``FlopCounterMode`` on a batch-1 forward."""
    with torch.device("meta"):
        meta_model = FlowNet2().eval()
    results: dict[str, Any] = {}
    for net_h, net_w in network_sizes:
        label = size_label(net_w, net_h)
        counted_on = "meta"
        try:
            flops = _flops_of(meta_model, torch.empty(1, 3, 2, net_h, net_w, device="meta"))
        except Exception:  # noqa: BLE001 - an op without a meta kernel: count on the device
            counted_on = str(device)
            if fallback is None:
                results[label] = {"status": "error: no meta kernel and no fp32 model"}
                continue
            counted = guarded(
                device,
                lambda h, w: {"status": "ok", "by_op": _flops_of(fallback, _zeros(h, w, device))},
                net_h,
                net_w,
            )
            if counted["status"] != "ok":
                results[label] = counted
                continue
            flops = counted["by_op"]
        total = sum(flops.values())
        results[label] = {
            "status": "ok",
            "flops_per_pair": total,
            "gflops_per_pair": total / 1e9,
            "by_op": flops,
            "counted_on": counted_on,
        }
    return results


def _zeros(height: int, width: int, device: torch.device) -> torch.Tensor:
    return torch.zeros(1, 3, 2, height, width, device=device)


def _flops_of(model: torch.nn.Module, inputs: torch.Tensor) -> dict[str, int]:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(inputs)
    return {str(op): int(count) for op, count in counter.get_flop_counts()["Global"].items()}


def prepare_model(base: torch.nn.Module, device: torch.device, precision: str) -> torch.nn.Module:
    """A copy of ``base`` on ``device`` in ``precision``, laid out as the estimator lays it."""
    model = copy.deepcopy(base).to(device=device, dtype=DTYPES[precision])
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def bench_model(
    model: torch.nn.Module,
    device: torch.device,
    net_size: tuple[int, int],
    batch: int,
    warmup: int,
    iters: int,
) -> dict[str, Any]:
    """Pairs/s of the network alone on a ``(B, 3, 2, H', W')`` tensor already on the device."""
    net_h, net_w = net_size
    before = start_memory_peak(device)
    generator = torch.Generator(device=device).manual_seed(batch)
    inputs = torch.rand(batch, 3, 2, net_h, net_w, device=device, generator=generator) * 255
    with torch.inference_mode():
        seconds = time_calls(lambda: model(inputs), device, warmup, iters)
    return {
        "status": "ok",
        "ms_per_batch": seconds * 1e3,
        "ms_per_pair": seconds * 1e3 / batch,
        "pairs_per_s": batch / seconds,
        **memory_peak(device, before, parameter_bytes(model)),
    }


def random_pairs(width: int, height: int, count: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """``count`` pairs of ``(H, W, 3)`` uint8 noise images."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
            rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        )
        for _ in range(count)
    ]


def bench_estimator(
    options: dict[str, Any],
    device: torch.device,
    size: tuple[int, int],
    batch: int,
    warmup: int,
    iters: int,
    weight_bytes: int,
) -> dict[str, Any]:
    """Pairs/s of ``estimate_batch`` end to end on ``batch`` numpy pairs of ``size`` (W, H).

    ``weight_bytes``: the size of the estimator's model (the same as the model path's).
    """
    estimator = create_estimator("flownet2", **options, batch_size=batch)
    estimator.setup()
    pairs = random_pairs(*size, batch, seed=batch)
    before = start_memory_peak(device)
    seconds = time_calls(lambda: estimator.estimate_batch(pairs), device, warmup, iters)
    return {
        "status": "ok",
        "ms_per_batch": seconds * 1e3,
        "ms_per_pair": seconds * 1e3 / batch,
        "pairs_per_s": batch / seconds,
        **memory_peak(device, before, weight_bytes),
    }


def bench_correlation(
    device: torch.device,
    net_size: tuple[int, int],
    batch: int,
    precision: str,
    warmup: int,
    iters: int,
) -> dict[str, Any]:
    """:func:`correlation` against :func:`correlation_reference` on FlowNetC-sized features."""
    net_h, net_w = net_size
    shape = (batch, CORRELATION_CHANNELS, net_h // 8, net_w // 8)
    generator = torch.Generator(device=device).manual_seed(1)
    f1 = torch.randn(shape, device=device, generator=generator).to(DTYPES[precision])
    f2 = torch.randn(shape, device=device, generator=generator).to(DTYPES[precision])
    with torch.inference_mode():
        fast_s = time_calls(lambda: correlation(f1, f2), device, warmup, iters)
        reference_s = time_calls(lambda: correlation_reference(f1, f2), device, warmup, iters)
        fast = correlation(f1, f2).float()
        reference = correlation_reference(f1, f2).float()
        scale = reference.abs().max().item()
        result = {
            "status": "ok",
            "feature_shape": list(shape),
            "fast_ms": fast_s * 1e3,
            "reference_ms": reference_s * 1e3,
            "speedup": reference_s / fast_s,
            "max_rel_diff": (fast - reference).abs().max().item() / scale,
        }
        if precision != "fp32":
            exact = correlation_reference(f1.float(), f2.float())
            exact_scale = exact.abs().max().item()
            result["fast_max_rel_diff_vs_fp32"] = (fast - exact).abs().max().item() / exact_scale
            result["reference_max_rel_diff_vs_fp32"] = (
                reference - exact
            ).abs().max().item() / exact_scale
    return result


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def center_crop(array: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """The central ``size`` = (W, H) window of an ``(H, W, ...)`` array (all of it if ``None``)."""
    if size is None:
        return array
    width, height = min(size[0], array.shape[1]), min(size[1], array.shape[0])
    top, left = (array.shape[0] - height) // 2, (array.shape[1] - width) // 2
    return array[top : top + height, left : left + width]


def sintel_accuracy(
    sintel: Path,
    estimator_options: dict[str, Any],
    precisions: Sequence[str],
    crop: tuple[int, int] | None,
) -> dict[str, Any]:
    """EPE of each precision against the Sintel truth, and the fp32 - bf16 endpoint difference.

    Flows are computed by the estimator (resize to multiples of 64 and back), all pairs in one
    batch; EPE is the mean over all pixels (Sintel's "all").
    """
    frames, truths = [], []
    for sequence in SINTEL_SEQUENCES:
        folder = sintel / sequence
        first = center_crop(read_rgb(folder / "frame_0002.png"), crop)
        second = center_crop(read_rgb(folder / "frame_0003.png"), crop)
        frames.append((np.ascontiguousarray(first), np.ascontiguousarray(second)))
        truths.append(center_crop(read_flo(folder / "gt" / "frame_0002.flo"), crop))
    flows: dict[str, list[np.ndarray]] = {}
    for precision in precisions:
        estimator = create_estimator(
            "flownet2", **estimator_options, precision=precision, batch_size=len(frames)
        )
        flows[precision] = estimator.estimate_batch(frames)
    pairs = []
    for index, sequence in enumerate(SINTEL_SEQUENCES):
        entry: dict[str, Any] = {
            "sequence": sequence,
            "pair": "frame_0002->frame_0003 (clean)",
            "size": size_label(frames[index][0].shape[1], frames[index][0].shape[0]),
        }
        for precision in precisions:
            entry[f"epe_{precision}"] = finite_or_none(
                endpoint_error(flows[precision][index], truths[index])
            )
        if "fp32" in flows and "bf16" in flows:
            difference = endpoint_error_map(flows["fp32"][index], flows["bf16"][index])
            entry["fp32_bf16_mean_epd"] = finite_or_none(float(difference.mean()))
            entry["fp32_bf16_max_epd"] = finite_or_none(float(difference.max()))
        pairs.append(entry)
    summary: dict[str, Any] = {"status": "ok", "crop": crop and size_label(*crop), "pairs": pairs}
    for key in pairs[0]:
        if key.startswith(("epe_", "fp32_bf16_mean")):
            values = [p[key] for p in pairs if p[key] is not None]
            summary[f"mean_{key}"] = float(np.mean(values)) if values else None
    if "fp32_bf16_max_epd" in pairs[0]:
        values = [p["fp32_bf16_max_epd"] for p in pairs if p["fp32_bf16_max_epd"] is not None]
        summary["max_fp32_bf16_max_epd"] = max(values) if values else None
    return summary


# -- reporting --------------------------------------------------------------------------------


def _cell(result: dict[str, Any], key: str, fmt: str) -> str:
    if result.get("status") != "ok":
        return str(result.get("status", "-"))
    value = result.get(key)
    return "n/a" if value is None else format(value, fmt)


def markdown_table(rows: Sequence[dict[str, Any]], device: torch.device) -> str:
    """The throughput results as a Markdown table (README-ready)."""
    memory = "peak GPU mem (MiB)" if device.type == "cuda" else "peak GPU mem"
    lines = [
        "| size (input -> network) | precision | batch | pairs/s (model) "
        "| pairs/s (estimator, end-to-end) | ms/pair (model) "
        f"| {memory} | TFLOP/s achieved | fraction of bf16 matmul rate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        model, estimator = row["model"], row["estimator"]
        lines.append(
            f"| {row['size']} -> {row['network_size']} | {row['precision']} | {row['batch']} "
            f"| {_cell(model, 'pairs_per_s', '.2f')} | {_cell(estimator, 'pairs_per_s', '.2f')} "
            f"| {_cell(model, 'ms_per_pair', '.2f')} | {_cell(model, 'peak_mem_mib', '.0f')} "
            f"| {_cell(model, 'tflops', '.3g')} "
            f"| {_cell(model, 'fraction_of_bf16_matmul', '.3f')} |"
        )
    return "\n".join(lines)


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
    result: dict[str, Any] = {
        "reference": "public FlowNet2 PyTorch port, 500x1000 (HxW) fp32, RTX 3090",
        "reference_ms_per_pair": ANCHOR_MS_PER_PAIR,
        "goal_ms_per_pair": target,
        "network_size": size_label(net_w, net_h),
        "best_model": _best(at_anchor, "model"),
        "best_estimator": _best(at_anchor, "estimator"),
        "fp32_batch1_model": None,
    }
    fp32_single = [r for r in at_anchor if r["precision"] == "fp32" and r["batch"] == 1]
    result["fp32_batch1_model"] = _best(fp32_single, "model")
    best = result["best_model"]
    result["goal_met_model"] = None if best is None else best["ms_per_pair"] <= target
    best_e2e = result["best_estimator"]
    result["goal_met_estimator"] = None if best_e2e is None else best_e2e["ms_per_pair"] <= target
    return result


def print_anchor(anchor: dict[str, Any]) -> None:
    print(
        f"\nAnchor: {anchor['reference']}: {anchor['reference_ms_per_pair']:.0f} ms/pair; "
        f"goal >= {ANCHOR_SPEEDUP_GOAL:.0f}x faster (<= {anchor['goal_ms_per_pair']:.1f} ms/pair) "
        f"at network size {anchor['network_size']} (input 1000x500, --sizes 1000x500).",
        flush=True,
    )
    labels = (
        ("best_model", "best, model alone"),
        ("best_estimator", "best, estimator end-to-end"),
        ("fp32_batch1_model", "fp32 batch 1, model alone (like for like)"),
    )
    for key, label in labels:
        best = anchor[key]
        if best is None:
            print(f"  {label:42s}: not measured", flush=True)
            continue
        verdict = "meets" if best["ms_per_pair"] <= anchor["goal_ms_per_pair"] else "misses"
        print(
            f"  {label:42s}: {best['ms_per_pair']:8.2f} ms/pair ({best['precision']}, batch "
            f"{best['batch']}, input {best['size']}) = {best['speedup_vs_anchor']:.1f}x "
            f"the port; {verdict} the goal",
            flush=True,
        )


# -- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring for what each number means.",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the public FlowNet2_checkpoint.pth.tar (default: random weights, accuracy invalid)",
    )
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=None,
        help=f"input frame sizes WxH (default: {' '.join(DEFAULT_SIZES)})",
    )
    parser.add_argument(
        "--batches", nargs="+", type=int, default=None, help="batch sizes (default: 1 4 16)"
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=sorted(DTYPES),
        default=None,
        help="precisions (default: fp32 bf16)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 3)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default 10)")
    parser.add_argument(
        "--matmul-size", type=int, default=None, help="N of the bf16 matmul (default 8192 on CUDA)"
    )
    parser.add_argument(
        "--sintel",
        type=Path,
        default=None,
        help="Sintel folder with alley_1, cave_2, market_5 (default: ../shared/data/flow/sintel)",
    )
    parser.add_argument(
        "--sintel-crop",
        type=parse_size,
        default=None,
        help=f"centre crop WxH of the Sintel pairs (default: none; {SMOKE_SINTEL_CROP} in --smoke)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run for CI/CPU: size 60x40 (network 64x64), batches 1 2, 1 iteration, "
        "no warm-up, a 1024 matmul, Sintel cropped",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all results to this file")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=420.0,
        help="skip configurations that would start after this many seconds (default 420)",
    )
    return parser


def resolve_settings(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Fill the defaults (normal or ``--smoke``); explicit flags win."""
    smoke = args.smoke
    sizes = args.sizes or [parse_size(s) for s in (SMOKE_SIZES if smoke else DEFAULT_SIZES)]
    batches = args.batches or list(SMOKE_BATCHES if smoke else DEFAULT_BATCHES)
    if any(b < 1 for b in batches):
        raise SystemExit(f"--batches must be >= 1, got {batches}")
    warmup = args.warmup if args.warmup is not None else (0 if smoke else 3)
    iters = args.iters if args.iters is not None else (1 if smoke else 10)
    if warmup < 0 or iters < 1:
        raise SystemExit(f"need --warmup >= 0 and --iters >= 1, got {warmup} and {iters}")
    matmul_size = args.matmul_size or (1024 if smoke or device.type == "cpu" else 8192)
    sintel_crop = args.sintel_crop or (parse_size(SMOKE_SINTEL_CROP) if smoke else None)
    if args.sintel is not None:
        sintel = args.sintel
    elif os.environ.get("DPTRACK_SHARED_DATA"):
        sintel = Path(os.environ["DPTRACK_SHARED_DATA"]) / "flow" / "sintel"
    else:
        sintel = REPO.parent / "shared" / "data" / "flow" / "sintel"
    return {
        "sizes": [size_label(*s) for s in sizes],
        "network_sizes": [network_label(*s) for s in sizes],
        "batches": batches,
        "precisions": args.precisions or list(DEFAULT_PRECISIONS),
        "warmup": warmup,
        "iters": iters,
        "matmul_size": matmul_size,
        # One 8192^3 product takes ~1.5 ms on an H100: more of them for a stable rate.
        "matmul_warmup": max(warmup, 5) if device.type == "cuda" else warmup,
        "matmul_iters": max(iters, 50) if device.type == "cuda" else iters,
        "sintel": str(sintel),
        "sintel_crop": sintel_crop and size_label(*sintel_crop),
        "smoke": smoke,
        "max_seconds": args.max_seconds,
        "fit": "resize",
        "correlation": "matmul",
        "channels_last": device.type == "cuda",
    }


def check_device(name: str) -> torch.device:
    """The device, or exit with what to do instead when CUDA is asked for and not usable."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise SystemExit(f"bench_flownet2: bad --device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        reason = "this torch has no CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise SystemExit(
            f"bench_flownet2: --device {name} but CUDA is not available ({reason}; torch "
            f"{torch.__version__}). This benchmark is meant for a GPU; for a quick check of the "
            "script on the CPU run:  python benchmarks/bench_flownet2.py --device cpu --smoke"
        )
    if device.type not in ("cuda", "cpu"):
        raise SystemExit(f"bench_flownet2: --device must be cuda, cuda:N or cpu, got {name!r}")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise SystemExit(
            f"bench_flownet2: --device {name}: only {torch.cuda.device_count()} GPU(s) visible"
        )
    return device


def run_throughput(
    run: Run,
    models: dict[str, torch.nn.Module],
    estimator_options: dict[str, Any],
    device: torch.device,
    settings: dict[str, Any],
    flops: dict[str, Any],
    matmul_tflops: float | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    run.results["throughput"] = rows
    warmup, iters = settings["warmup"], settings["iters"]
    for label, net_label in zip(settings["sizes"], settings["network_sizes"], strict=True):
        size = parse_size(label)
        net_w, net_h = parse_size(net_label)
        flops_per_pair = flops.get(net_label, {}).get("flops_per_pair")
        for precision in settings["precisions"]:
            for batch in settings["batches"]:
                row: dict[str, Any] = {
                    "size": label,
                    "network_size": net_label,
                    "precision": precision,
                    "batch": batch,
                }
                rows.append(row)
                if run.over_budget():
                    row["model"] = row["estimator"] = {"status": "skipped (budget)"}
                    run.log(f"throughput {label} {precision} batch {batch}: skipped (budget)")
                    continue
                row["model"] = guarded(
                    device,
                    bench_model,
                    models[precision],
                    device,
                    (net_h, net_w),
                    batch,
                    warmup,
                    iters,
                )
                options = {**estimator_options, "precision": precision}
                row["estimator"] = guarded(
                    device,
                    bench_estimator,
                    options,
                    device,
                    size,
                    batch,
                    warmup,
                    iters,
                    parameter_bytes(models[precision]),
                )
                for path in ("model", "estimator"):
                    result = row[path]
                    if result["status"] == "ok" and flops_per_pair:
                        result["tflops"] = flops_per_pair * result["pairs_per_s"] / 1e12
                        if matmul_tflops:
                            result["fraction_of_bf16_matmul"] = result["tflops"] / matmul_tflops
                if device.type == "cpu":
                    row["process_peak_rss_mib"] = process_peak_rss_mib()
                run.log(
                    f"throughput {label} (net {net_label}) {precision} batch {batch}: "
                    f"model {_describe(row['model'])}; estimator {_describe(row['estimator'])}"
                )
                run.save()
                release_memory(device)
    return rows


def _describe(result: dict[str, Any]) -> str:
    if result["status"] != "ok":
        return result["status"] + (f" ({result['error']})" if "error" in result else "")
    memory = result.get("peak_mem_mib")
    text = f"{result['pairs_per_s']:.2f} pairs/s, {result['ms_per_pair']:.2f} ms/pair"
    if "tflops" in result:
        text += f", {result['tflops']:.3g} TFLOP/s"
    return text + (f", peak {memory:.0f} MiB" if memory is not None else "")


def run_correlation(run: Run, device: torch.device, settings: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = []
    run.results["correlation"] = rows
    for label, net_label in zip(settings["sizes"], settings["network_sizes"], strict=True):
        net_w, net_h = parse_size(net_label)
        for precision in settings["precisions"]:
            for batch in settings["batches"]:
                row: dict[str, Any] = {
                    "size": label,
                    "network_size": net_label,
                    "precision": precision,
                    "batch": batch,
                }
                if run.over_budget():
                    row["status"] = "skipped (budget)"
                else:
                    row.update(
                        guarded(
                            device,
                            bench_correlation,
                            device,
                            (net_h, net_w),
                            batch,
                            precision,
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
                run.log(
                    f"correlation {label} (features {batch}x{CORRELATION_CHANNELS}x"
                    f"{net_h // 8}x{net_w // 8}) {precision}: {text}"
                )
                run.save()
                release_memory(device)


def run_accuracy(
    run: Run,
    estimator_options: dict[str, Any],
    device: torch.device,
    settings: dict[str, Any],
    random_weights: bool,
) -> None:
    sintel = Path(settings["sintel"])
    missing = [s for s in SINTEL_SEQUENCES if not (sintel / s / "gt" / "frame_0002.flo").is_file()]
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


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results (also written with ``--json``)."""
    args = build_parser().parse_args(argv)
    device = check_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    settings = resolve_settings(args, device)
    run = Run(args.json, settings["max_seconds"])
    run.results["command"] = [sys.executable, *sys.argv] if argv is None else list(argv)
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

    temporary = None
    random_weights = args.checkpoint is None
    if random_weights:
        print(RANDOM_WEIGHTS_BANNER, flush=True)
        temporary = tempfile.TemporaryDirectory(prefix="bench_flownet2_")
        checkpoint = Path(temporary.name) / "flownet2_random.pth.tar"
        write_random_checkpoint(str(checkpoint))
        run.log(f"wrote a random checkpoint to {checkpoint}")
    else:
        checkpoint = args.checkpoint
        if not checkpoint.is_file():
            raise SystemExit(f"bench_flownet2: checkpoint not found: {checkpoint}")
    run.results["checkpoint"] = {"path": str(checkpoint), "random_weights": random_weights}

    try:
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
        # The estimator keeps one model per process per option set while an estimator using it
        # lives: these keep them loaded, so each configuration's new estimator (its own batch
        # size) reuses the model instead of reading the checkpoint again.
        keepers = [
            create_estimator("flownet2", **estimator_options, precision=p)
            for p in settings["precisions"]
        ]
        for keeper in keepers:
            keeper.setup()
        run.log(f"estimator models loaded ({', '.join(settings['precisions'])})")

        matmul = guarded(
            device,
            measure_matmul,
            device,
            settings["matmul_size"],
            settings["matmul_warmup"],
            settings["matmul_iters"],
        )
        run.results["bf16_matmul"] = matmul
        matmul_tflops = matmul.get("tflops")
        run.log(f"bf16 matmul {settings['matmul_size']}^3: {_fmt(matmul_tflops, '.3g')} TFLOP/s")
        run.save()

        net_sizes = [parse_size(s)[::-1] for s in dict.fromkeys(settings["network_sizes"])]
        flops = count_flops(net_sizes, device, models.get("fp32"))
        run.results["flops"] = flops
        run.results["flops_note"] = (
            "FlopCounterMode, batch-1 forward, 2 FLOPs per multiply-add: convolutions and "
            "transposed convolutions, plus the correlation's tiled matmul (aten.bmm; it computes "
            "784 scores per 441 kept, so ~1.8x the correlation's useful work). Interpolation, "
            "grid_sample, norms and elementwise ops are not counted."
        )
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

        run_accuracy(run, estimator_options, device, settings, random_weights)
        rows = run_throughput(
            run, models, estimator_options, device, settings, flops, matmul_tflops
        )
        run_correlation(run, device, settings)
        run.results["anchor"] = anchor = anchor_comparison(rows)
        run.results["complete"] = True
        run.results["budget_exceeded"] = run.over_budget()
        run.save()
        del keepers, models
    finally:
        if temporary is not None:
            temporary.cleanup()

    print("\n" + markdown_table(rows, device), flush=True)
    print(
        f"\n{env['device_name']}, torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}; "
        f"model = network alone on device tensors; estimator = estimate_batch end to end (numpy "
        f"in/out, transfers and resize included); {settings['warmup']} warm-up + "
        f"{settings['iters']} timed iterations; bf16 matmul rate "
        f"{_fmt(matmul_tflops, '.3g')} TFLOP/s ({settings['matmul_size']}^3). FLOPs by "
        "FlopCounterMode (the correlation's matmul counted as matmul FLOPs).",
        flush=True,
    )
    if device.type == "cpu":
        print(f"CPU run: peak RSS of this process {process_peak_rss_mib():.0f} MiB", flush=True)
    print_anchor(anchor)
    accuracy = run.results["accuracy"]
    if accuracy["status"] == "ok" and "mean_fp32_bf16_mean_epd" in accuracy:
        print(
            f"\nbf16 vs fp32 on Sintel (3 pairs): mean endpoint difference "
            f"{accuracy['mean_fp32_bf16_mean_epd']:.4f} px, max "
            f"{accuracy['max_fp32_bf16_max_epd']:.3f} px; EPE fp32 "
            f"{_fmt(accuracy.get('mean_epe_fp32'), '.3f')}, bf16 "
            f"{_fmt(accuracy.get('mean_epe_bf16'), '.3f')}",
            flush=True,
        )
    if random_weights:
        print("\n" + RANDOM_WEIGHTS_BANNER, flush=True)
    run.log("done" + (f"; results in {args.json}" if args.json else ""))
    return run.results


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
