"""How fast, how large and how costly is one FlowNet2 configuration?

Each function measures one thing for one configuration and returns a result dict with
``"status": "ok"`` (the sweep in :mod:`.flownet2_suite` wraps them in
:func:`~dptrack_pipeline.perf.device.guarded`, so a failure becomes a status instead):

* :func:`measure_matmul`: the bf16 rate of a square ``N x N @ N x N`` matmul, in TFLOP/s
  (``2 N^3`` FLOPs per product): the yardstick for "fraction of the card"; it is not the card's
  datasheet peak.
* :func:`count_flops`: FLOPs per pair at each network size, by
  ``torch.utils.flop_counter.FlopCounterMode`` on a batch-1 forward on the ``meta`` device (no
  memory, no time; falls back to the real device). It counts convolutions (transposed ones too)
  and the correlation's tiled matmul as ``bmm``, which computes 784 scores per 441 kept
  (``tile = 8``), so about 1.8x the correlation's useful products; interpolation,
  ``grid_sample``, norms and elementwise ops are not counted.
* :func:`bench_model`: the network alone on a ``(B, 3, 2, H', W')`` float tensor already on
  the device; :func:`bench_estimator`: ``create_estimator("flownet2", ...).estimate_batch``
  end to end, uint8 numpy frames of the input size in, float32 numpy flows out (stacking, the
  host-to-device copy, the resize to ``H', W'`` and back, the copy back and the output checks
  are all inside the time). Both: ms per batch and per pair, pairs/s and peak GPU memory.
* :func:`bench_correlation`: :func:`correlation` (tiled matmul) against
  :func:`correlation_reference` (the 441-shift loop) on random FlowNetC features
  ``(B, 256, H'/8, W'/8)``: ms per call, speed-up and ``max|fast - reference| / max|reference|``
  (same dtype, and against the fp32 reference for bf16).

Models are laid out as the estimator lays them (:func:`prepare_model`): channels-last weights
on CUDA.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dptrack_pipeline.flow.flownet2.correlation import correlation, correlation_reference
from dptrack_pipeline.flow.flownet2.model import FlowNet2
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.perf.device import guarded, memory_peak, parameter_bytes, start_memory_peak
from dptrack_pipeline.perf.flownet2_settings import size_label
from dptrack_pipeline.perf.timing import time_calls

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
CORRELATION_CHANNELS = 256  # FlowNetC's conv3 features, at 1/8 of the network size


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
    """FLOPs of one pair at each ``(H', W')``, by ``FlopCounterMode`` on a batch-1 forward.

    Counted on the ``meta`` device; where an op has no meta kernel, on ``device`` with the
    ``fallback`` (fp32) model. Keys are the network labels ``"W'xH'"``.
    """
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


def _rates(seconds: float, batch: int, memory: dict[str, float | None]) -> dict[str, Any]:
    """The result of ``batch`` pairs in ``seconds`` a call, with its memory."""
    return {
        "status": "ok",
        "ms_per_batch": seconds * 1e3,
        "ms_per_pair": seconds * 1e3 / batch,
        "pairs_per_s": batch / seconds,
        **memory,
    }


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
    return _rates(seconds, batch, memory_peak(device, before, parameter_bytes(model)))


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
    return _rates(seconds, batch, memory_peak(device, before, weight_bytes))


def _max_relative_difference(value: torch.Tensor, exact: torch.Tensor) -> float:
    """``max|value - exact| / max|exact|``."""
    return (value - exact).abs().max().item() / exact.abs().max().item()


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
        result = {
            "status": "ok",
            "feature_shape": list(shape),
            "fast_ms": fast_s * 1e3,
            "reference_ms": reference_s * 1e3,
            "speedup": reference_s / fast_s,
            "max_rel_diff": _max_relative_difference(fast, reference),
        }
        if precision != "fp32":
            exact = correlation_reference(f1.float(), f2.float())
            result["fast_max_rel_diff_vs_fp32"] = _max_relative_difference(fast, exact)
            result["reference_max_rel_diff_vs_fp32"] = _max_relative_difference(reference, exact)
    return result
