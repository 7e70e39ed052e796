"""Summaries of a ``run`` output folder: what ``dptrack-build inspect`` prints.

Reads only the shards and ``dataset_info.json`` (no frames): rows per offset, the kept ratio of
DensePose points per offset (kept / points that entered propagation), rejects by reason
(:func:`~dptrack_pipeline.rejects.count_reasons`), and whether the counters add up
(:func:`~dptrack_pipeline.shards.counters.counter_problems`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dptrack_pipeline.shards.counters import KIND_RUN, counter_problems
from dptrack_pipeline.shards.reader import columns_as_arrays


def offset_summary(instances: pa.Table) -> list[dict[str, Any]]:
    """Per offset: rows, points in/kept/dropped and the kept ratio, mean crop-flow validity."""
    offsets, points_in, fb, outside, valid = columns_as_arrays(
        instances,
        "offset",
        "points_in",
        "points_dropped_fb",
        "points_dropped_outside",
        "flow_valid_fraction",
    )
    kept = np.asarray(pc.list_value_length(instances.column("dp_x")).to_numpy(zero_copy_only=False))
    kept = np.nan_to_num(kept.astype(np.float64)).astype(np.int64)
    rows = []
    for off in sorted(set(offsets.tolist())):
        sel = offsets == off
        entry: dict[str, Any] = {"offset": int(off), "rows": int(sel.sum())}
        if off == 0:
            entry.update(points=int(kept[sel].sum()))
        else:
            n_in = int(points_in[sel].sum())
            entry.update(
                points_in=n_in,
                points_kept=int(kept[sel].sum()),
                points_dropped_fb=int(fb[sel].sum()),
                points_dropped_outside=int(outside[sel].sum()),
                kept_ratio=float(kept[sel].sum() / n_in) if n_in else float("nan"),
                mean_flow_valid=float(np.nanmean(valid[sel])) if sel.any() else float("nan"),
            )
        rows.append(entry)
    return rows


def format_summary(info: dict, offsets: list[dict[str, Any]], rejects: dict[str, int]) -> str:
    """Plain-text report for the terminal."""
    c = info.get("counters", {})
    lines = [
        f"estimator: {info.get('estimator')}  fb_threshold: {info.get('fb_threshold')} px  "
        f"shards: {info.get('num_shards')}",
        "counters: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())),
        "",
        f"{'offset':>6} {'rows':>6} {'pts in':>8} {'kept':>8} {'kept %':>7} "
        f"{'drop fb':>8} {'drop out':>8} {'flow valid %':>12}",
    ]
    for o in offsets:
        if o["offset"] == 0:
            lines.append(f"{0:>6} {o['rows']:>6} {'':>8} {o['points']:>8}   (labelled sources)")
            continue
        lines.append(
            f"{o['offset']:>+6d} {o['rows']:>6} {o['points_in']:>8} {o['points_kept']:>8} "
            f"{100 * o['kept_ratio']:>6.1f}% {o['points_dropped_fb']:>8} "
            f"{o['points_dropped_outside']:>8} {100 * o['mean_flow_valid']:>11.1f}%"
        )
    lines.append("")
    if rejects:
        lines.append("rejected instances by reason:")
        lines.extend(f"  {reason}: {n}" for reason, n in rejects.items())
    else:
        lines.append("rejected instances: none")
    problems = counter_problems(c, KIND_RUN)
    lines.append("")
    lines.append("counters add up" if not problems else "COUNTERS DO NOT ADD UP:")
    lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)
