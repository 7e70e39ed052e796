"""What does a run record as it trains, and how is it plotted?

``OUT/metrics.jsonl`` gets one JSON object per line (keys sorted): ``step``, ``stage``, ``kind``
(``"train"``: ``loss``, each loss term, ``samples_per_s``; ``"eval"``: the evaluation's numbers,
e.g. ``within_5cm``, ``part_accuracy``, ``num_points``). Lines are appended as the run goes, so
an interrupted run keeps what it logged; a resume first drops the lines beyond the checkpoint's
step (:func:`truncate_metrics`), so the file never holds a step twice. ``OUT/metrics.png``
(:func:`plot_metrics`) shows training losses (log scale) and evaluation ratios against the step.
Rewrites (truncation, the plot) go through
:func:`~dptrack_pipeline.shards.atomic.atomic_write`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from dptrack_pipeline.shards.atomic import atomic_write


def append_metrics(path: str, record: dict[str, Any]) -> None:
    """Append ``record`` as one line of the ``metrics.jsonl`` at ``path``."""
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: str, step: int) -> None:
    """Keep only the lines of ``path`` with ``step <= step`` (nothing to do without the file)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        f.writelines(lines)


def plot_metrics(metrics_path: str, png_path: str) -> None:
    """Plot training losses (left) and evaluation ratios (right) of a run into a PNG."""
    if not os.path.exists(metrics_path):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    keys = sorted({k for r in train for k in r} - {"step", "stage", "kind", "samples_per_s"})
    for key in keys:
        points = [(r["step"], r[key]) for r in train if key in r and math.isfinite(r[key])]
        if points:
            left.plot(*zip(*points, strict=True), label=key)
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.set_yscale("log")
    left.set_title("training losses")
    if keys:
        left.legend(fontsize=8)
    metric_keys = sorted({k for r in evals for k in r if k.startswith(("within_", "part_acc"))})
    for key in metric_keys:
        points = [(r["step"], r[key]) for r in evals if isinstance(r.get(key), (int, float))]
        if points:
            right.plot(*zip(*points, strict=True), marker="o", label=key)
    right.set_xlabel("step")
    right.set_ylabel("% of points")
    right.set_title("evaluation")
    if metric_keys:
        right.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_write(png_path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
