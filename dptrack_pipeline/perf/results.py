"""What has a benchmark run found so far, and where is it written?

A long benchmark on a lent machine can be cut short (a time limit, a lost machine), so its
results are a plain dict rewritten to JSON after every step: a run cut short keeps what it did,
and ``"complete"`` says whether it got to the end. The file is written to a temporary name and
renamed over the target, so a reader never sees half a file. JSON has no NaN or infinity: they
are written as ``null``.

:class:`BenchmarkRun` also holds the run's clock (seconds since it started, printed before every
progress line) and its time budget: steps that would start after ``max_seconds`` are skipped and
recorded as skipped, so a run fits the time it was given.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from dptrack_pipeline.shards.atomic import atomic_write


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is ``None``, NaN or infinite."""
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


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` (made :func:`json_safe`) to ``path`` atomically, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(str(path)) as tmp:
        Path(tmp).write_text(json.dumps(json_safe(data), indent=2) + "\n")


class BenchmarkRun:
    """The results of one run (``schema`` and ``complete`` first), its clock and budget.

    Args:
        schema: the results' format, e.g. ``"bench_flownet2/1"``.
        json_path: where :meth:`save` writes the results (``None``: nowhere).
        max_seconds: the time budget, seconds from the start (see :meth:`over_budget`).
    """

    def __init__(self, schema: str, json_path: Path | None, max_seconds: float) -> None:
        self.start = time.perf_counter()
        self.json_path = json_path
        self.max_seconds = max_seconds
        self.results: dict[str, Any] = {"schema": schema, "complete": False}

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.start

    def over_budget(self) -> bool:
        """Whether the budget is spent: the next step should be skipped."""
        return self.elapsed() > self.max_seconds

    def log(self, message: str) -> None:
        """Print a progress line, stamped with the elapsed seconds."""
        print(f"[{self.elapsed():7.1f}s] {message}", flush=True)

    def save(self) -> None:
        """Record ``elapsed_s`` and write the results so far (when there is a JSON path)."""
        self.results["elapsed_s"] = round(self.elapsed(), 3)
        if self.json_path is not None:
            write_json(self.json_path, self.results)
