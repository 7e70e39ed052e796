"""What are the numbers of a ``pairs`` folder's quality report?

Pure functions of the pair and reject tables and ``dataset_info.json``, as
:mod:`~dptrack_pipeline.report.figures` is for a ``run`` folder:

* :func:`pairs_about` - inputs, estimator, parameters and versions.
* :func:`pairs_funnel` - videos in / read / rejected, pairs planned / written / rejected by reason
  (the ``rejected.<reason>`` counters), people rows in / used / rejected, and the reject rows by
  stage and reason.
* per offset: :func:`~dptrack_pipeline.pairs.summary.pairs_offset_summary` (mean valid fraction,
  median flow length, median forward-backward error).
* :func:`pairs_video_table` - one line per video.
* :func:`pairs_gallery_choice` - a spread of pairs over the offsets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from dptrack_pipeline.pairs.summary import pairs_offset_summary
from dptrack_pipeline.pictures import spread_over_offsets
from dptrack_pipeline.rejects import count_reasons
from dptrack_pipeline.report.columns import mean, median
from dptrack_pipeline.report.figures import about
from dptrack_pipeline.shards.counters import KIND_PAIRS, counter_problems
from dptrack_pipeline.shards.reader import columns_as_arrays

REJECTED_PREFIX = "rejected."


PAIRS_INPUTS = ("videos", "people")
PAIRS_PARAMETERS = ("mode", "offsets", "stride", "crop_size", "fb_threshold", "num_shards")


def pairs_about(info: dict[str, Any], written: str | None) -> dict[str, Any]:
    """What produced the folder (:func:`~dptrack_pipeline.report.figures.about` of a pairs
    folder's inputs and parameters)."""
    return about(info, written, PAIRS_INPUTS, PAIRS_PARAMETERS)


def pairs_funnel(
    counters: dict[str, int], rejects: pa.Table, totals: dict[str, int] | None = None
) -> dict[str, Any]:
    """Videos, pairs and people rows in and out (the manifest's counters), and the reject rows."""
    by_reason = {
        k.removeprefix(REJECTED_PREFIX): v
        for k, v in counters.items()
        if k.startswith(REJECTED_PREFIX)
    }
    stages = rejects.column("stage").to_pylist()
    reasons = rejects.column("reason").to_pylist()
    return {
        "videos": {
            "in": counters.get("videos_in", 0),
            "read": counters.get("videos_planned", 0),
            "rejected": counters.get("videos_rejected", 0),
            "frames": counters.get("frames_in_videos", 0),
            "frames_decoded": counters.get("frames_decoded", 0),
            "frames_failed": counters.get("frames_failed", 0),
        },
        "pairs": {
            "planned": counters.get("pairs_planned", 0),
            "written": counters.get("pairs_written", 0),
            "rejected": counters.get("pairs_rejected", 0),
            "rejected_by_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        },
        "people": {
            "in": counters.get("people_in", 0),
            "used": counters.get("people_used", 0),
            "rejected": counters.get("people_rejected", 0),
        },
        "work": {
            "flows_needed": counters.get("flows_needed", 0),
            "flows_computed": counters.get("flows_computed", 0),
            "crops_written": counters.get("crops_written", 0),
        },
        "reject_rows": {
            stage: count_reasons(r for s, r in zip(stages, reasons, strict=True) if s == stage)
            for stage in sorted(set(stages))
        },
        "problems": counter_problems(counters, KIND_PAIRS, totals),
    }


def pairs_video_table(pairs: pa.Table, rejects: pa.Table) -> list[dict[str, Any]]:
    """One line per video: pairs, mean valid fraction, median flow length (crop px) and median
    forward-backward error (px) of its pairs, reject rows naming it."""
    videos = np.asarray(pairs.column("video_id").to_pylist(), dtype=object)
    valid, motion, error = columns_as_arrays(
        pairs, "valid_fraction", "flow_median", "fb_error_median"
    )
    rejected = count_reasons(rejects.column("video_id").to_pylist())
    out = []
    for video in sorted(set(videos.tolist()) | set(rejected)):
        sel = videos == video
        out.append(
            {
                "video_id": video,
                "pairs": int(sel.sum()),
                "mean_valid_fraction": mean(valid[sel]),
                "median_flow_crop_px": median(motion[sel]),
                "median_fb_error_px": median(error[sel]),
                "rejects": rejected.get(video, 0),
            }
        )
    return out


def pairs_gallery_choice(pairs: pa.Table, size: int) -> list[dict[str, Any]]:
    """Up to ``size`` pairs spread over the offsets (ascending ``|offset|``, then video and
    anchor frame), each with its ``row`` (position in the folder's pair rows) and numbers."""
    keys = ("video_id", "frame_a", "frame_b", "offset", "person")
    numbers = ("valid_fraction", "flow_median", "fb_error_median")
    rows = pairs.select([*keys, *numbers]).to_pylist()
    for i, row in enumerate(rows):
        row["row"] = i
    return spread_over_offsets(
        rows, lambda r: (abs(r["offset"]), r["video_id"], r["frame_a"], r["person"]), size
    )


def pairs_figures(
    info: dict[str, Any],
    pairs: pa.Table,
    rejects: pa.Table,
    *,
    written: str | None = None,
    gallery_size: int = 6,
) -> dict[str, Any]:
    """Every number of a ``pairs`` folder's report (what ``--json`` writes, before
    :func:`~dptrack_pipeline.report.columns.json_ready`)."""
    return {
        "kind": KIND_PAIRS,
        "about": pairs_about(info, written),
        "funnel": pairs_funnel(info.get("counters", {}), rejects, info.get("totals")),
        "offsets": pairs_offset_summary(pairs),
        "videos": pairs_video_table(pairs, rejects),
        "gallery": pairs_gallery_choice(pairs, gallery_size),
    }
