"""What are the numbers of a ``run`` folder's quality report?

Pure functions of the instance and reject tables and ``dataset_info.json`` (no file I/O, no
drawing): the page (:mod:`~dptrack_pipeline.report.pages`) shows them and ``--json`` writes them
unchanged, so the two never disagree. Everything is plain JSON data
(:func:`~dptrack_pipeline.report.columns.json_ready` turns NaN into ``null``).

* :func:`about` - inputs, estimator, parameters, checks and versions the manifest records.
* :func:`run_funnel` - instances in / written / rejected by reason and points in / kept /
  dropped by reason: the manifest's ``counters`` (rejects by reason from the reject rows).
* :func:`offset_table` - per offset, from the rows (:func:`~dptrack_pipeline.propagate.summary.
  offset_summary` plus the photometric and chain drops).
* :func:`distributions` - per ``|offset|``, histograms of the forward-backward error and the ZNCC
  of the kept points (``instances.v2`` columns).
* :func:`keypoint_agreement` - per offset, PCKh and the distance to the annotated keypoints.
* :func:`video_table` - one line per video.
* :func:`gallery_choice` - the worst and best propagated instances by :data:`QUALITY_SCORE`.

``instances.v1`` folders lack the quality columns: the figures that need them are ``None`` and
``quality_columns`` is ``false``; the gallery then ranks by kept fraction.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from dptrack_pipeline.propagate.summary import QUALITY_COLUMNS as SUMMARY_QUALITY_COLUMNS
from dptrack_pipeline.propagate.summary import offset_summary, quality_summary
from dptrack_pipeline.rejects import count_reasons
from dptrack_pipeline.report.columns import (
    flat_values,
    kept_points,
    mean,
    median,
    split_by,
)
from dptrack_pipeline.shards.counters import KIND_RUN, counter_problems
from dptrack_pipeline.shards.reader import columns_as_arrays

QUALITY_COLUMNS = (*SUMMARY_QUALITY_COLUMNS, "fb_error_median", "photo_median")
"""``instances.v2`` columns the quality figures read (absent from ``instances.v1``)."""

QUALITY_SCORE = (
    "instances are ranked by photo_median (the median ZNCC of their kept points: 1 = the moved "
    "points see the same texture), ties broken by fb_error_median (lower is better); rows whose "
    "score is NaN are left out"
)
QUALITY_SCORE_V1 = (
    "instances.v1 has no quality columns: instances are ranked by kept fraction (kept points / "
    "points in), ties broken by |offset| (larger is worse)"
)

FB_BINS = 25
PHOTO_BINS = 40


def has_quality_columns(instances: pa.Table) -> bool:
    """Whether the table carries the ``instances.v2`` quality columns."""
    return all(name in instances.column_names for name in QUALITY_COLUMNS)


# --------------------------------------------------------------------------- header and funnel


def about(
    info: dict[str, Any],
    written: str | None,
    inputs: tuple[str, ...] = ("annotations", "frames_root", "posetrack"),
    parameters: tuple[str, ...] = ("offsets", "crop_size", "num_shards", "fb_threshold"),
) -> dict[str, Any]:
    """What produced the folder: inputs, estimator, parameters, checks, versions.

    Args:
        info: ``dataset_info.json``.
        written: when the manifest was written (its file's modification time; the manifest holds
            no timestamp by design), or ``None`` when unknown.
        inputs: the config keys that name the job's inputs (the defaults: a ``run``'s).
        parameters: the manifest's top-level parameters to show (the defaults: a ``run``'s).
    """
    config = dict(info.get("config", {}))
    return {
        "written": written,
        "inputs": {k: config.pop(k) for k in inputs if k in config},
        "estimator": {
            "name": info.get("estimator"),
            "params": info.get("estimator_params", {}),
            "provenance": info.get("extra", {}).get("estimator_provenance", {}),
        },
        "parameters": {**{k: info.get(k) for k in parameters}, "config": config},
        "checks": info.get("checks"),
        "versions": {
            "code_version": info.get("code_version"),
            "schemas": info.get("schemas", {}),
            **info.get("versions", {}),
        },
    }


def run_funnel(
    counters: dict[str, int],
    instances: pa.Table,
    rejects: pa.Table,
    totals: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Instances in -> written / rejected by reason, points in -> kept / dropped by reason.

    The totals are the manifest's counters; the split of the written rows into sources and
    propagated ones and of the rejects by reason and stage come from the rows.
    """
    offsets = columns_as_arrays(instances, "offset")[0]
    reasons = rejects.column("reason").to_pylist()
    stages = rejects.column("stage").to_pylist()
    by_stage: dict[str, int] = {}
    for stage in stages:
        by_stage[stage] = by_stage.get(stage, 0) + 1
    return {
        "annotations": {
            "in": counters.get("annotations_in"),
            "rejected": counters.get("annotations_rejected"),
            "sources": counters.get("sources_in"),
        },
        "instances": {
            "in": counters.get("instances_in", 0),
            "written": counters.get("instances_written", 0),
            "written_sources": int((offsets == 0).sum()),
            "written_propagated": int((offsets != 0).sum()),
            "rejected": counters.get("instances_rejected", 0),
            "rejected_by_reason": count_reasons(reasons),
            "rejected_by_stage": dict(sorted(by_stage.items())),
        },
        "points": {
            "in": counters.get("points_in", 0),
            "kept": counters.get("points_kept", 0),
            "dropped": {
                reason: counters.get(f"points_dropped_{reason}", 0)
                for reason in ("fb", "outside", "photo", "chain")
            },
        },
        "work": {
            k: counters.get(k)
            for k in ("frames_decoded", "frames_failed", "flows_computed", "windows")
            if k in counters
        },
        "problems": counter_problems(counters, KIND_RUN, totals),
    }


# --------------------------------------------------------------------------- per offset


def offset_table(instances: pa.Table) -> list[dict[str, Any]]:
    """Per offset: rows, points in / kept / dropped by reason and the kept ratio (kept / in)."""
    rows = offset_summary(instances)
    extra = [
        c for c in ("points_dropped_photo", "points_dropped_chain") if c in instances.schema.names
    ]
    if extra:
        offsets = columns_as_arrays(instances, "offset")[0]
        arrays = columns_as_arrays(instances, *extra)
        for row in rows:
            if row["offset"] != 0:
                sel = offsets == row["offset"]
                row.update({name: int(a[sel].sum()) for name, a in zip(extra, arrays, strict=True)})
    return rows


def _histogram(values: np.ndarray, lo: float, hi: float, bins: int) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    return {
        "n": int(values.size),
        "median": median(values),
        "p10": float(np.percentile(values, 10)) if values.size else float("nan"),
        "p90": float(np.percentile(values, 90)) if values.size else float("nan"),
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
    }


def distributions(instances: pa.Table, fb_threshold: float | None) -> list[dict[str, Any]] | None:
    """Per ``|offset|``: histograms of the kept points' forward-backward error (px, ``0`` to the
    threshold or the largest error) and ZNCC (``-1`` to ``1``); ``None`` for ``instances.v1``.

    Values outside the range are counted in the end bins.
    """
    if not has_quality_columns(instances):
        return None
    distance = np.abs(columns_as_arrays(instances, "offset")[0])
    fb, fb_rows = flat_values(instances, "dp_fb_error")
    photo, photo_rows = flat_values(instances, "dp_photo")
    finite = fb[np.isfinite(fb)]
    top = max(fb_threshold or 0.0, float(finite.max()) if finite.size else 0.0) or 1.0
    return [
        {
            "abs_offset": int(k),
            "fb_error_px": _histogram(fb[distance[fb_rows] == k], 0.0, top, FB_BINS),
            "photo_zncc": _histogram(photo[distance[photo_rows] == k], -1.0, 1.0, PHOTO_BINS),
        }
        for k in sorted(set(distance.tolist()) - {0})
    ]


def keypoint_agreement(instances: pa.Table) -> list[dict[str, Any]] | None:
    """Per offset: instances, those with a PCKh (their keypoints could be compared with the
    annotated ones of the same track), their mean PCKh@0.5 and the median distance in px of the
    propagated keypoints to the annotated ones (over the joints compared), from
    :func:`~dptrack_pipeline.propagate.summary.quality_summary`; ``None`` for ``instances.v1``."""
    if not has_quality_columns(instances):
        return None
    offsets = columns_as_arrays(instances, "offset")[0]
    return [
        {
            "offset": q["offset"],
            "instances": int((offsets == q["offset"]).sum()),
            "instances_compared": q["instances_compared"],
            "mean_pckh": q["mean_pckh"],
            "median_error_px": q["median_keypoint_error_px"],
        }
        for q in quality_summary(instances)
    ]


# --------------------------------------------------------------------------- per video


def video_table(instances: pa.Table, rejects: pa.Table) -> list[dict[str, Any]]:
    """One line per video (those with rows or rejects): rows, propagated rows, kept fraction
    (kept / in over its propagated points), median forward-backward error and ZNCC over its kept
    points, mean PCKh over its compared instances, rejects."""
    videos = instances.column("video_id").to_pylist()
    offsets, points_in = columns_as_arrays(instances, "offset", "points_in")
    kept = kept_points(instances)
    rejected = count_reasons(rejects.column("video_id").to_pylist())
    names = sorted(set(videos) | set(rejected))
    number = {v: i for i, v in enumerate(names)}
    group = np.fromiter((number[v] for v in videos), np.int64, len(videos))
    moved = offsets != 0
    rows_of = split_by(np.where(moved, group, -1), len(names))
    row_counts = np.bincount(group, minlength=len(names))
    quality = has_quality_columns(instances)
    if quality:
        pckh = columns_as_arrays(instances, "pckh")[0]
        pooled = {}
        for name in ("dp_fb_error", "dp_photo"):
            values, rows = flat_values(instances, name)
            pooled[name] = [
                values[i] for i in split_by(np.where(moved[rows], group[rows], -1), len(names))
            ]
    out = []
    for g, video in enumerate(names):
        mine = rows_of[g]
        n_in, n_kept = int(points_in[mine].sum()), int(kept[mine].sum())
        entry: dict[str, Any] = {
            "video_id": video,
            "rows": int(row_counts[g]),
            "propagated": int(mine.size),
            "points_in": n_in,
            "points_kept": n_kept,
            "kept_fraction": n_kept / n_in if n_in else float("nan"),
            "rejects": rejected.get(video, 0),
        }
        if quality:
            entry["median_fb_error_px"] = median(pooled["dp_fb_error"][g])
            entry["median_photo_zncc"] = median(pooled["dp_photo"][g])
            entry["mean_pckh"] = mean(pckh[mine])
        out.append(entry)
    return out


# --------------------------------------------------------------------------- gallery


def gallery_choice(instances: pa.Table, size: int) -> dict[str, Any]:
    """The ``size`` worst and ``size`` best propagated instances with kept points.

    Returns:
        ``{"score": text, "worst": [...], "best": [...]}``; each entry names the row (``row``: its
        position in the folder's instance rows, shard order) and its numbers. Worst first in
        ``worst``, best first in ``best``; no row is in both.
    """
    offsets, points_in = columns_as_arrays(instances, "offset", "points_in")
    videos = instances.column("video_id").to_pylist()
    annotations = columns_as_arrays(instances, "annotation_id")[0]
    kept = kept_points(instances)
    quality = has_quality_columns(instances)
    if quality:
        photo, fb, pckh = columns_as_arrays(instances, "photo_median", "fb_error_median", "pckh")
        score = {i: (photo[i], -fb[i]) for i in range(len(offsets))}
    else:
        fraction = kept / np.maximum(points_in, 1)
        score = {i: (fraction[i], -abs(offsets[i])) for i in range(len(offsets))}
    candidates = [
        i
        for i in range(len(offsets))
        if offsets[i] != 0 and kept[i] > 0 and all(math.isfinite(v) for v in score[i])
    ]
    candidates.sort(key=lambda i: (*score[i], videos[i], int(annotations[i]), int(offsets[i])))
    worst = candidates[:size]
    best = candidates[max(len(worst), len(candidates) - size) :][::-1]

    def describe(i: int) -> dict[str, Any]:
        entry = {
            "row": int(i),
            "video_id": videos[i],
            "annotation_id": int(annotations[i]),
            "offset": int(offsets[i]),
            "points_in": int(points_in[i]),
            "points_kept": int(kept[i]),
        }
        if quality:
            entry.update(
                photo_median=float(photo[i]), fb_error_median=float(fb[i]), pckh=float(pckh[i])
            )
        return entry

    return {
        "score": QUALITY_SCORE if quality else QUALITY_SCORE_V1,
        "worst": [describe(i) for i in worst],
        "best": [describe(i) for i in best],
    }


def run_figures(
    info: dict[str, Any],
    instances: pa.Table,
    rejects: pa.Table,
    *,
    written: str | None = None,
    gallery_size: int = 6,
) -> dict[str, Any]:
    """Every number of a ``run`` folder's report (what ``--json`` writes, before
    :func:`json_ready`)."""
    checks = info.get("checks") or {}
    return {
        "kind": KIND_RUN,
        "about": about(info, written),
        "funnel": run_funnel(info.get("counters", {}), instances, rejects, info.get("totals")),
        "quality_columns": has_quality_columns(instances),
        "offsets": offset_table(instances),
        "distributions": distributions(
            instances, checks.get("fb_threshold", info.get("fb_threshold"))
        ),
        "keypoints": keypoint_agreement(instances),
        "videos": video_table(instances, rejects),
        "gallery": gallery_choice(instances, gallery_size),
    }
