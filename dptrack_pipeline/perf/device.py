"""Which torch device does a benchmark run on, what is it, and what did a configuration cost?

* :func:`check_device` turns ``--device`` into a device, or says what to do instead (a GPU
  benchmark asked to run where CUDA is not usable names the CPU smoke command).
* :func:`environment` records what ran the benchmark: versions, the card, the precision
  settings (PyTorch's default lets cuDNN run "fp32" convolutions as TF32 on Ampere and later).
* **Memory of one configuration.** ``torch.cuda.max_memory_allocated`` is the process's peak; a
  configuration's own need is its model's weights plus its peak above what was allocated before
  it (:func:`start_memory_peak`, :func:`memory_peak`). Both are ``None`` on the CPU, where the
  process's peak RSS (:func:`~dptrack_pipeline.perf.timing.peak_rss_mib`) stands in.
* **Failures.** A sweep over sizes and batches must survive the configuration that does not fit:
  :func:`guarded` records an out-of-memory error as ``{"status": "OOM"}`` (any other error with
  its message) and frees the memory, out of the ``except`` block so that the traceback's tensors
  are gone first.
"""

from __future__ import annotations

import gc
import platform
from collections.abc import Callable
from typing import Any

import torch


class DeviceError(ValueError):
    """``--device`` names no device this process can use; the message says what to do."""


def check_device(name: str, program: str) -> torch.device:
    """The device ``name`` (``cuda``, ``cuda:N`` or ``cpu``; ``cuda`` gets its index).

    Raises:
        DeviceError: a bad name, CUDA asked for and not usable (the message gives the CPU smoke
            command of ``program``, e.g. ``"bench_flownet2"``), or a GPU index not visible.
    """
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"{program}: bad --device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        reason = "this torch has no CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise DeviceError(
            f"{program}: --device {name} but CUDA is not available ({reason}; torch "
            f"{torch.__version__}). This benchmark is meant for a GPU; for a quick check of the "
            f"script on the CPU run:  python benchmarks/{program}.py --device cpu --smoke"
        )
    if device.type not in ("cuda", "cpu"):
        raise DeviceError(f"{program}: --device must be cuda, cuda:N or cpu, got {name!r}")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise DeviceError(
            f"{program}: --device {name}: only {torch.cuda.device_count()} GPU(s) visible"
        )
    return device


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


def is_oom(error: BaseException) -> bool:
    """GPU (or CPU allocator) out-of-memory, as raised by PyTorch."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_memory(device: torch.device) -> None:
    """Collect garbage and return cached GPU blocks, so the next configuration starts clean."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes of ``model``'s parameters (its weights on the device)."""
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
    holds more (other models, other copies): that total is ``peak_mem_process_mib``. Both
    ``None`` on the CPU.
    """
    if device.type != "cuda":
        return {"peak_mem_mib": None, "peak_mem_process_mib": None}
    peak = torch.cuda.max_memory_allocated(device)
    return {
        "peak_mem_mib": (peak - before + weight_bytes) / 2**20,
        "peak_mem_process_mib": peak / 2**20,
    }


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
