"""How long does a call take, how much memory did the process hold, and how is it tabulated?

Timing follows one rule: ``warmup`` untimed calls, then ``iters`` timed ones between two device
synchronisations, so that queued GPU work is inside the time and nothing of the warm-up is
(cuDNN autotuning, allocator growth, lazy initialisation). The clock is
``time.perf_counter`` (seconds, monotonic).

Peak resident memory comes from ``getrusage``: the largest resident set of the process's whole
life (or of its largest finished child), not the current one. Linux reports it in KiB, macOS in
bytes; both are returned in MiB.

torch is imported only when a CUDA device has to be synchronised.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


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


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory so far, MiB: of this process (its whole life), or with
    ``children=True`` of its largest child process that has ended."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def format_or_na(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``"n/a"`` when it was not measured."""
    return "n/a" if value is None else format(value, spec)


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], right_aligned: Sequence[int] = ()
) -> str:
    """A Markdown table of already formatted cells; columns ``right_aligned`` (by index) are
    aligned right (``---:``), the others left."""
    rule = ["---:" if i in right_aligned else "---" for i in range(len(header))]
    lines = [_markdown_row(header), "|" + "|".join(rule) + "|"]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
