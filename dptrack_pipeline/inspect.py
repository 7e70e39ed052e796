"""Summaries of a ``run`` output folder: what ``dptrack-build inspect`` prints.

Reads only the shards and ``dataset_info.json`` (no frames): rows per offset, the kept ratio of
DensePose points per offset (kept / points that entered propagation), rejects by reason, and
whether the counters add up.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dptrack_pipeline.shards.manifest import pairs_counter_problems


def offset_summary(instances: pa.Table) -> list[dict[str, Any]]:
    """Per offset: rows, points in/kept/dropped and the kept ratio, mean crop-flow validity."""
    offsets = np.asarray(instances.column("offset").to_numpy(zero_copy_only=False))
    points_in = np.asarray(instances.column("points_in").to_numpy(zero_copy_only=False))
    kept = np.asarray(pc.list_value_length(instances.column("dp_x")).to_numpy(zero_copy_only=False))
    kept = np.nan_to_num(kept.astype(np.float64)).astype(np.int64)
    fb = np.asarray(instances.column("points_dropped_fb").to_numpy(zero_copy_only=False))
    outside = np.asarray(instances.column("points_dropped_outside").to_numpy(zero_copy_only=False))
    valid = np.asarray(instances.column("flow_valid_fraction").to_numpy(zero_copy_only=False))
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


def reject_summary(rejects: pa.Table) -> dict[str, int]:
    """Rejected instances by reason, most common first."""
    counts = Counter(rejects.column("reason").to_pylist()) if rejects.num_rows else Counter()
    return dict(counts.most_common())


def counters_add_up(counters: dict[str, int]) -> list[str]:
    """The identities a run must satisfy; returns the ones that fail (empty = all hold)."""
    problems = []
    written = counters.get("instances_written", 0)
    rejected = counters.get("instances_rejected", 0)
    if counters.get("instances_in", -1) != written + rejected:
        problems.append(
            f"instances_in {counters.get('instances_in')} != instances_written {written} "
            f"+ instances_rejected {rejected}"
        )
    kept = counters.get("points_kept", 0)
    fb = counters.get("points_dropped_fb", 0)
    outside = counters.get("points_dropped_outside", 0)
    if counters.get("points_in", -1) != kept + fb + outside:
        problems.append(
            f"points_in {counters.get('points_in')} != points_kept {kept} + "
            f"points_dropped_fb {fb} + points_dropped_outside {outside}"
        )
    return problems


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
    problems = counters_add_up(c)
    lines.append("")
    lines.append("counters add up" if not problems else "COUNTERS DO NOT ADD UP:")
    lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)


# --------------------------------------------------------------------------- pairs folders


def pairs_offset_summary(pairs: pa.Table) -> list[dict[str, Any]]:
    """Per offset of a ``pairs`` folder: pairs, mean valid fraction, median flow length (crop px)
    and median forward-backward error (frame px)."""
    offsets = np.asarray(pairs.column("offset").to_numpy(zero_copy_only=False))
    valid = np.asarray(pairs.column("valid_fraction").to_numpy(zero_copy_only=False))
    motion = np.asarray(pairs.column("flow_median").to_numpy(zero_copy_only=False))
    error = np.asarray(pairs.column("fb_error_median").to_numpy(zero_copy_only=False))
    rows = []
    for off in sorted(set(offsets.tolist())):
        sel = offsets == off
        rows.append(
            {
                "offset": int(off),
                "pairs": int(sel.sum()),
                "mean_valid_fraction": float(valid[sel].mean()),
                "median_flow_crop_px": float(np.median(motion[sel])),
                "median_fb_error_px": float(np.median(error[sel])),
            }
        )
    return rows


def format_pairs_summary(info: dict, offsets: list[dict[str, Any]], rejects: dict[str, int]) -> str:
    """The text ``dptrack-build inspect`` prints for a ``pairs`` folder."""
    c = info["counters"]
    lines = [
        f"pairs folder: estimator {info['estimator']} ({info['mode']}), offsets "
        f"{info['offsets']}, stride {info['stride']}, crops {info['crop_size']} px, "
        f"fb threshold {info['fb_threshold']} px, {info['num_shards']} shards",
        f"videos: {c['videos_in']} in, {c['videos_planned']} read, {c['videos_rejected']} "
        f"rejected; {c['frames_in_videos']} frames, {c['frames_decoded']} decoded",
        f"pairs: {c['pairs_planned']} planned, {c['pairs_written']} written, "
        f"{c['pairs_rejected']} rejected; {c.get('crops_written', 0)} distinct crops; "
        f"{c['flows_computed']} flows computed ({c['flows_needed']} distinct needed)",
        f"people rows: {c['people_in']} in, {c['people_used']} used, {c['people_rejected']} "
        "rejected",
        "",
        "offset  pairs  valid  median flow (crop px)  median fb error (px)",
    ]
    for row in offsets:
        lines.append(
            f"{row['offset']:+6d} {row['pairs']:6d}  {row['mean_valid_fraction']:5.1%}"
            f"  {row['median_flow_crop_px']:21.2f}  {row['median_fb_error_px']:20.2f}"
        )
    if rejects:
        lines.append("")
        lines.append("rejects: " + ", ".join(f"{k} {v}" for k, v in rejects.items()))
    for problem in pairs_counter_problems(c):
        lines.append(f"COUNTERS DO NOT ADD UP: {problem}")
    return "\n".join(lines)
