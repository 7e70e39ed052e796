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


QUALITY_COLUMNS = ("dp_fb_error", "dp_photo", "pckh", "kp_posetrack_error")
"""The instances v2 columns the quality summary reads (a v1 folder has none of them)."""


def _flat(instances: pa.Table, column: str, sel: np.ndarray) -> np.ndarray:
    values = pc.list_flatten(instances.filter(pa.array(sel)).column(column))
    flat = np.asarray(values.to_numpy(zero_copy_only=False), np.float64)
    return flat[np.isfinite(flat)]


def quality_summary(instances: pa.Table) -> list[dict[str, Any]]:
    """Per propagated offset, the quality of the kept labels: median forward-backward error and
    ZNCC of kept points, points dropped by the photometric and chain checks, and the agreement
    of keypoints with the annotated ones (instances compared, mean PCKh@0.5, median error px).
    Empty for a v1 folder."""
    if not set(QUALITY_COLUMNS) <= set(instances.column_names):
        return []
    offsets, photo_drops, chain_drops, pckh = columns_as_arrays(
        instances, "offset", "points_dropped_photo", "points_dropped_chain", "pckh"
    )
    rows = []
    for off in sorted(set(offsets.tolist()) - {0}):
        sel = offsets == off
        fb, photo = _flat(instances, "dp_fb_error", sel), _flat(instances, "dp_photo", sel)
        kp_error = _flat(instances, "kp_posetrack_error", sel)
        compared = np.isfinite(pckh[sel])

        def median(values: np.ndarray) -> float:
            return float(np.median(values)) if values.size else float("nan")

        rows.append(
            {
                "offset": int(off),
                "median_fb_error_px": median(fb),
                "median_photo": median(photo),
                "points_dropped_photo": int(photo_drops[sel].sum()),
                "points_dropped_chain": int(chain_drops[sel].sum()),
                "instances_compared": int(compared.sum()),
                "mean_pckh": float(pckh[sel][compared].mean()) if compared.any() else float("nan"),
                "median_keypoint_error_px": median(kp_error),
            }
        )
    return rows


def format_quality(quality: list[dict[str, Any]]) -> list[str]:
    """The quality table's lines (none for a v1 folder)."""
    if not quality:
        return ["label quality: not recorded (a folder written before instances schema v2)"]
    lines = [
        "label quality of kept points (and keypoints against the annotated ones):",
        f"{'offset':>6} {'med fb px':>9} {'med zncc':>8} {'drop photo':>10} {'drop chain':>10} "
        f"{'compared':>8} {'PCKh@0.5':>8} {'med kp px':>9}",
    ]
    for q in quality:
        lines.append(
            f"{q['offset']:>+6d} {q['median_fb_error_px']:>9.2f} {q['median_photo']:>8.3f} "
            f"{q['points_dropped_photo']:>10} {q['points_dropped_chain']:>10} "
            f"{q['instances_compared']:>8} {q['mean_pckh']:>8.3f} "
            f"{q['median_keypoint_error_px']:>9.2f}"
        )
    return lines


def format_summary(
    info: dict,
    offsets: list[dict[str, Any]],
    rejects: dict[str, int],
    quality: list[dict[str, Any]] | None = None,
) -> str:
    """Plain-text report for the terminal."""
    c = info.get("counters", {})
    checks = info.get("checks")
    described = f"fb_threshold: {info.get('fb_threshold')} px"
    if checks:
        photo = checks["photometric"]
        photo = f"{photo['metric']} >= {photo['threshold']:g}" if photo else "off"
        chain = f"{checks['chain']:g} px" if checks["chain"] is not None else "off"
        described = (
            f"checks: {checks['preset']} (forward-backward {checks['fb_threshold']:g} px, "
            f"photometric {photo}, chain {chain})"
        )
    lines = [
        f"estimator: {info.get('estimator')}  {described}  shards: {info.get('num_shards')}",
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
    if quality is not None:
        lines.append("")
        lines.extend(format_quality(quality))
    lines.append("")
    if rejects:
        lines.append("rejected instances by reason:")
        lines.extend(f"  {reason}: {n}" for reason, n in rejects.items())
    else:
        lines.append("rejected instances: none")
    problems = counter_problems(c, KIND_RUN, info.get("totals"))
    lines.append("")
    lines.append("counters add up" if not problems else "COUNTERS DO NOT ADD UP:")
    lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)
