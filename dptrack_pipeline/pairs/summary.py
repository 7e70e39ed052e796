"""Summaries of a ``pairs`` output folder: what ``dptrack-build inspect`` prints for one.

Reads only the shards and ``dataset_info.json``: pairs per offset with their mean valid fraction,
median flow length and median forward-backward error, the funnel of videos, pairs and people rows,
rejects by reason, and whether the counters add up
(:func:`~dptrack_pipeline.shards.counters.counter_problems`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from dptrack_pipeline.shards.counters import KIND_PAIRS, counter_problems
from dptrack_pipeline.shards.reader import columns_as_arrays


def pairs_offset_summary(pairs: pa.Table) -> list[dict[str, Any]]:
    """Per offset of a ``pairs`` folder: pairs, mean valid fraction, median flow length (crop px)
    and median forward-backward error (frame px)."""
    offsets, valid, motion, error = columns_as_arrays(
        pairs, "offset", "valid_fraction", "flow_median", "fb_error_median"
    )
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
    for problem in counter_problems(c, KIND_PAIRS):
        lines.append(f"COUNTERS DO NOT ADD UP: {problem}")
    return "\n".join(lines)
