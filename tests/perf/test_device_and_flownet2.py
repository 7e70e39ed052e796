"""``perf.device`` and the one-configuration measurements of ``perf.flownet2``, on the CPU."""

from __future__ import annotations

import pytest
import torch

from dptrack_pipeline.perf.device import (
    DeviceError,
    check_device,
    guarded,
    memory_peak,
    start_memory_peak,
)
from dptrack_pipeline.perf.flownet2 import bench_correlation, measure_matmul, random_pairs

CPU = torch.device("cpu")


def test_check_device() -> None:
    assert check_device("cpu", "bench_x") == CPU
    with pytest.raises(DeviceError, match="bench_x: bad --device 'gpu0'"):
        check_device("gpu0", "bench_x")
    with pytest.raises(DeviceError, match="must be cuda, cuda:N or cpu"):
        check_device("meta", "bench_x")


def test_guarded_records_failures_instead_of_raising() -> None:
    def oom() -> dict:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    def broken() -> dict:
        raise KeyError("x")

    assert guarded(CPU, oom) == {"status": "OOM"}
    assert guarded(CPU, broken) == {"status": "error", "error": "KeyError: 'x'"}
    assert guarded(CPU, lambda a, b=0: {"status": "ok", "sum": a + b}, 1, b=2)["sum"] == 3


def test_memory_is_not_measured_on_the_cpu() -> None:
    before = start_memory_peak(CPU)
    assert before == 0
    assert memory_peak(CPU, before, 100) == {"peak_mem_mib": None, "peak_mem_process_mib": None}


def test_matmul_and_correlation_on_tiny_sizes() -> None:
    matmul = measure_matmul(CPU, 64, warmup=0, iters=1)
    assert matmul["status"] == "ok" and matmul["tflops"] > 0
    result = bench_correlation(CPU, (64, 128), batch=1, precision="bf16", warmup=0, iters=1)
    assert result["feature_shape"] == [1, 256, 8, 16]
    assert result["fast_ms"] > 0 and result["speedup"] > 0
    assert 0 <= result["max_rel_diff"] < 2e-2
    assert result["fast_max_rel_diff_vs_fp32"] < 2e-2  # bf16 rows compare with fp32 too


def test_random_pairs_are_uint8_hw3() -> None:
    pairs = random_pairs(5, 3, count=2, seed=0)
    assert len(pairs) == 2 and pairs[0][0].shape == (3, 5, 3) and pairs[0][1].dtype == "uint8"
