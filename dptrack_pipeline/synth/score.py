"""Score propagated DensePose points against the exact truth of a synthetic dataset.

Input rows follow the ``instances.v1`` columns: a **source** row (``offset == 0``) is a labelled
person at frame ``T`` with its DensePose points; a **target** row (``offset == k != 0``) is the
same person (same ``video_id``, ``track_id``, ``annotation_id``) propagated to frame ``T + k``,
holding only the kept points and, in ``dp_source_index``, each kept point's index in the source
annotation. Point positions are box-relative (``pixel = box_x + dp_x / 256 * box_w``).

For every source row and every ``k`` with ``1 <= |k| <= max_offset`` for which the truth has the
exact flow ``T -> T + k`` (an **expected target**, whether or not the table has a row for it):

* the true position of source point ``p`` is ``p + flow(round(p))``: the flow is read at the
  **nearest pixel** (not interpolated), because the truth is exact at pixel centres (where the
  synthetic annotators put the points) and interpolating across a silhouette would mix two
  surfaces; ``visible(round(p))`` says whether the point can be seen in ``T + k``;
* a point is **kept** when the target row lists its index in ``dp_source_index``; its error is
  the distance in pixels between its propagated position and the true one;
* a kept point is **correct** when it is truth-visible and within ``near_px`` of the truth (a
  point placed exactly on the hidden true position of an occluded surface lands on the occluder,
  so its label is wrong however small its error).

Reported per ``|k|`` and over all offsets: ``n_targets`` (expected target instances),
``n_missing_targets`` (expected but absent from the table: all their points count as dropped),
``n_source_points`` (source points summed over expected targets), ``n_visible`` (of those,
truth-visible), ``n_kept``, ``n_kept_visible``, ``n_correct``, ``median_error_px`` and
``mean_error_px`` (over kept points), ``precision = n_correct / n_kept`` and
``recall = n_kept_visible / n_visible`` (visible points kept). Ratios of nothing are ``nan``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

from dptrack_pipeline.structures import dp_to_pixels, normalise_video_id
from dptrack_pipeline.synth.truth import load_flow_truth, load_truth_index

_COUNTS = (
    "n_targets",
    "n_missing_targets",
    "n_source_points",
    "n_visible",
    "n_kept",
    "n_kept_visible",
    "n_correct",
)


def _rows(instances: object) -> list[dict]:
    if hasattr(instances, "to_pylist"):
        return list(instances.to_pylist())
    if isinstance(instances, Mapping):
        raise TypeError("instances must be a pyarrow Table or an iterable of row dicts")
    return [dict(row) for row in instances]  # type: ignore[union-attr]


def _array(row: Mapping, name: str) -> np.ndarray:
    value = row.get(name)
    return np.zeros((0,), np.float64) if value is None else np.asarray(value, dtype=np.float64)


class _Accumulator:
    def __init__(self) -> None:
        self.counts = dict.fromkeys(_COUNTS, 0)
        self.errors: list[np.ndarray] = []

    def add(self, other: _Accumulator) -> None:
        for name in _COUNTS:
            self.counts[name] += other.counts[name]
        self.errors.extend(other.errors)

    def summary(self) -> dict:
        errors = np.concatenate(self.errors) if self.errors else np.zeros((0,))
        c = self.counts
        return {
            **c,
            "median_error_px": float(np.median(errors)) if errors.size else math.nan,
            "mean_error_px": float(errors.mean()) if errors.size else math.nan,
            "precision": c["n_correct"] / c["n_kept"] if c["n_kept"] else math.nan,
            "recall": c["n_kept_visible"] / c["n_visible"] if c["n_visible"] else math.nan,
        }


def true_positions(
    points: np.ndarray, flow: np.ndarray, visible_map: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where source points truly are in the target, and whether they can be seen there.

    Args:
        points: ``(N, 2)`` source-frame pixels.
        flow, visible_map: the exact flow ``(H, W, 2)`` and visibility ``(H, W)`` of the pair.

    Returns:
        ``(N, 2)`` float64 true positions ``p + flow(round(p))`` and ``(N,)`` bool visibility
        (read at the nearest pixel, see the module docstring).
    """
    height, width = visible_map.shape
    cols = np.clip(np.rint(points[:, 0]).astype(np.int64), 0, width - 1)
    rows = np.clip(np.rint(points[:, 1]).astype(np.int64), 0, height - 1)
    return points + flow[rows, cols].astype(np.float64), visible_map[rows, cols]


def score_propagation(
    instances: object,
    synth_dir: str | os.PathLike,
    *,
    near_px: float = 3.0,
    max_offset: int = 3,
) -> dict:
    """Compare propagated DensePose points with the exact truth of a synthetic dataset.

    Args:
        instances: a pyarrow Table or an iterable of row dicts with the ``instances.v1`` columns
            ``video_id, frame_index, track_id, annotation_id, offset, bbox (xywh), dp_x, dp_y``
            and ``dp_source_index`` (missing on a source row = ``0..N-1``).
        synth_dir: the synthetic dataset folder (with ``truth/``).
        near_px: distance in pixels under which a kept visible point counts as correct.
        max_offset: largest ``|offset|`` scored.

    Returns:
        ``{"per_offset": {1: {...}, ..., max_offset: {...}}, "all": {...}, "near_px": float,
        "n_sources": int, "n_sources_without_truth": int, "n_orphan_targets": int}``; the inner
        dicts are described in the module docstring.
    """
    index = load_truth_index(synth_dir)
    pairs = {
        video["video_id"]: {tuple(pair) for pair in video["flow_pairs"]}
        for video in index["videos"]
    }
    sources: dict[tuple, dict] = {}
    targets: dict[tuple, dict] = {}
    for row in _rows(instances):
        key = (normalise_video_id(row["video_id"]), int(row["track_id"]), int(row["annotation_id"]))
        offset = int(row["offset"])
        if offset == 0:
            sources[key] = row
        else:
            targets[(*key, offset)] = row

    per_offset = {k: _Accumulator() for k in range(1, max_offset + 1)}
    scored_targets: set[tuple] = set()
    flows: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    n_sources = n_without_truth = 0
    for key in sorted(sources):
        source = sources[key]
        dp_x, dp_y = _array(source, "dp_x"), _array(source, "dp_y")
        if dp_x.size == 0:
            continue
        n_sources += 1
        video_id = key[0]
        frame = int(source["frame_index"])
        expected = [
            k
            for k in range(-max_offset, max_offset + 1)
            if k != 0 and (frame, frame + k) in pairs.get(video_id, ())
        ]
        if not expected:
            n_without_truth += 1
            continue
        points = dp_to_pixels(dp_x, dp_y, tuple(source["bbox"])).astype(np.float64)
        source_index = source.get("dp_source_index")
        if source_index is None:
            source_index = range(dp_x.size)
        position = {int(i): j for j, i in enumerate(source_index)}
        for k in expected:
            pair_key = (video_id, frame, frame + k)
            if pair_key not in flows:
                flows[pair_key] = load_flow_truth(synth_dir, video_id, frame, frame + k)
            truth, visible = true_positions(points, *flows[pair_key])

            acc = per_offset[abs(k)]
            acc.counts["n_targets"] += 1
            acc.counts["n_source_points"] += int(dp_x.size)
            acc.counts["n_visible"] += int(visible.sum())
            target = targets.get((*key, k))
            if target is None:
                acc.counts["n_missing_targets"] += 1
                continue
            scored_targets.add((*key, k))
            kept_index = _array(target, "dp_source_index").astype(np.int64)
            matched = np.array([int(i) in position for i in kept_index], dtype=bool)
            source_pos = np.array([position[int(i)] for i in kept_index[matched]], dtype=np.int64)
            moved = dp_to_pixels(
                _array(target, "dp_x")[matched],
                _array(target, "dp_y")[matched],
                tuple(target["bbox"]),
            ).astype(np.float64)
            error = np.hypot(*(moved - truth[source_pos]).T)
            kept_visible = visible[source_pos]
            acc.counts["n_kept"] += int(source_pos.size)
            acc.counts["n_kept_visible"] += int(kept_visible.sum())
            acc.counts["n_correct"] += int((kept_visible & (error <= near_px)).sum())
            acc.errors.append(error)

    total = _Accumulator()
    for acc in per_offset.values():
        total.add(acc)
    return {
        "per_offset": {k: acc.summary() for k, acc in per_offset.items()},
        "all": total.summary(),
        "near_px": float(near_px),
        "n_sources": n_sources,
        "n_sources_without_truth": n_without_truth,
        "n_orphan_targets": len(set(targets) - scored_targets),
    }


def format_score_table(score: dict) -> str:
    """A plain-text table of a :func:`score_propagation` result, one line per ``|offset|``."""
    header = (
        f"{'|k|':>4} {'targets':>8} {'missing':>8} {'points':>8} {'visible':>8} {'kept':>8} "
        f"{'median px':>10} {'mean px':>8} {'precision':>10} {'recall':>8}"
    )
    lines = [header, "-" * len(header)]

    def line(label: str, s: dict) -> str:
        return (
            f"{label:>4} {s['n_targets']:>8d} {s['n_missing_targets']:>8d} "
            f"{s['n_source_points']:>8d} {s['n_visible']:>8d} {s['n_kept']:>8d} "
            f"{_fmt(s['median_error_px'], 10, 3)} {_fmt(s['mean_error_px'], 8, 3)} "
            f"{_fmt(s['precision'], 10, 4)} {_fmt(s['recall'], 8, 4)}"
        )

    for k in sorted(score["per_offset"]):
        lines.append(line(str(k), score["per_offset"][k]))
    lines.append(line("all", score["all"]))
    lines.append(
        f"precision: kept points visible in the target and within {score['near_px']:g} px of "
        "the exact position / kept; recall: visible points kept / visible"
    )
    return "\n".join(lines)


def _fmt(value: float, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.{digits}f}"
