"""One instance row as a DensePose-COCO annotation: :func:`coco_annotation`.

The row is an ``instances-*.parquet`` record (``schemas/instances.v1.json``/``v2``); the result is
the ``annotations[]`` entry detectron2's DensePose loader reads (``densepose/data/datasets/coco.py``
``load_coco_json`` and ``densepose/data/structures.py`` ``DensePoseDataRelative``), which is also
the format of DensePose-COCO and DensePose-PoseTrack files:

* ``bbox`` ``[x, y, w, h]`` frame pixels; ``area`` ``w * h`` (the box's, as no frame-pixel
  segmentation is stored); ``category_id`` 1; ``iscrowd`` 0; never an ``ignore`` key (the loader
  asserts ``ignore == 0``).
* ``keypoints``: the 51 numbers ``x, y, v`` (pixel centres on integers: COCO's own convention,
  which detectron2 turns into continuous coordinates by adding 0.5), ``num_keypoints`` = visible
  ones; a row without keypoints gets none of the two keys.
* ``dp_x``, ``dp_y`` on the 256 box grid, ``dp_I`` 1..24, ``dp_U``, ``dp_V``: all five lists of the
  same length (possibly 0), because the loader wants all five or none. Two ranges are made to hold
  (the **traps**, counted in :class:`Fixes`): ``dp_x``/``dp_y`` are **clipped to [0, 255]**, the
  range of the original data (DensePose evaluation maps points with ``/255``, and a horizontal flip
  maps ``x -> 256 - x``); a propagated point at the far box edge can carry up to 256, and clipping
  moves it by at most 1/256 of the box. ``dp_U``/``dp_V`` are clipped to [0, 1]: the flip
  augmentation indexes its symmetry tables with ``(u * 255).long()``.
* ``dp_masks``: 14 entries, a COCO compressed RLE ``{"size": [256, 256], "counts": str}`` for a
  present part and ``[]`` for an absent one, as in the original files. A row without part masks
  gets **no DensePose keys at all** (counted): the loader requires ``dp_masks`` with the points,
  and 14 empty masks would teach "background everywhere".
* ``track_id``, and one extra key, ``dptrack`` (loaders ignore it): the source annotation id, the
  offset, the source frame, the estimator and the row's quality scores (NaN written as ``null``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dptrack_pipeline.structures import DP_GRID, NUM_MASK_PARTS

DP_MAX = float(DP_GRID - 1)
"""Largest ``dp_x``/``dp_y`` written (255: the range of the original annotations)."""

EMPTY_MASK_COUNTS = "PPP2"
"""COCO compressed counts of an all-zero 256x256 mask (as pycocotools encodes it)."""

QUALITY_COLUMNS = ("fb_error_median", "photo_median", "kept_fraction", "pckh")
"""Per-row quality columns (instances v2) copied into the ``dptrack`` provenance key."""


@dataclass
class Fixes:
    """What :func:`coco_annotation` changed or left out to meet the format (summed over rows)."""

    points_clipped_xy: int = 0
    values_clipped_uv: int = 0
    rows_without_masks: int = 0

    def add(self, other: Fixes) -> None:
        self.points_clipped_xy += other.points_clipped_xy
        self.values_clipped_uv += other.values_clipped_uv
        self.rows_without_masks += other.rows_without_masks

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _floats(values: Any) -> np.ndarray:
    return np.asarray(values if values is not None else [], dtype=np.float64)


def _json_number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _points(row: Mapping[str, Any], fixes: Fixes) -> dict[str, list]:
    x, y = _floats(row.get("dp_x")), _floats(row.get("dp_y"))
    u, v = _floats(row.get("dp_U")), _floats(row.get("dp_V"))
    parts = np.asarray(row.get("dp_I") if row.get("dp_I") is not None else [], dtype=np.int64)
    if not x.size == y.size == u.size == v.size == parts.size:
        raise ValueError(
            f"annotation {row.get('annotation_id')} offset {row.get('offset')}: point lists of "
            f"different lengths ({x.size}, {y.size}, {parts.size}, {u.size}, {v.size})"
        )
    outside = (x < 0) | (x > DP_MAX) | (y < 0) | (y > DP_MAX)
    fixes.points_clipped_xy += int(outside.sum())
    off_uv = int(((u < 0) | (u > 1)).sum() + ((v < 0) | (v > 1)).sum())
    fixes.values_clipped_uv += off_uv
    return {
        "dp_x": np.clip(x, 0.0, DP_MAX).astype(np.float32).tolist(),
        "dp_y": np.clip(y, 0.0, DP_MAX).astype(np.float32).tolist(),
        "dp_I": parts.tolist(),
        "dp_U": np.clip(u, 0.0, 1.0).astype(np.float32).tolist(),
        "dp_V": np.clip(v, 0.0, 1.0).astype(np.float32).tolist(),
    }


def _masks(counts: Any) -> list[Any]:
    counts = list(counts)
    if len(counts) != NUM_MASK_PARTS:
        raise ValueError(f"expected {NUM_MASK_PARTS} part masks, got {len(counts)}")
    return [
        [] if not c or c == EMPTY_MASK_COUNTS else {"size": [DP_GRID, DP_GRID], "counts": str(c)}
        for c in counts
    ]


def coco_annotation(
    row: Mapping[str, Any], annotation_id: int, image_id: int, fixes: Fixes
) -> dict[str, Any]:
    """The DensePose-COCO annotation of one instance row (rules in the module docstring).

    Args:
        row: an instance row as a dict (``bbox``, ``keypoints``, ``dp_*``, ``dp_masks``,
            provenance columns; quality columns when the shards have them).
        annotation_id, image_id: the ids this annotation and its image get in the export.
        fixes: counts of the changes made, added to.

    Raises:
        ValueError: point lists of different lengths, or not 14 part masks (a damaged row).
    """
    x, y, w, h = (float(v) for v in row["bbox"])
    ann: dict[str, Any] = {
        "id": int(annotation_id),
        "image_id": int(image_id),
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [x, y, w, h],
        "area": w * h,
        "track_id": int(row["track_id"]),
    }
    keypoints = row.get("keypoints")
    if keypoints is not None and len(keypoints) == 51:
        values = np.asarray(keypoints, dtype=np.float32)
        ann["keypoints"] = values.tolist()
        ann["num_keypoints"] = int((values[2::3] > 0).sum())
    masks = row.get("dp_masks")
    if masks:
        ann.update(_points(row, fixes))
        ann["dp_masks"] = _masks(masks)
    else:
        fixes.rows_without_masks += 1
    ann["dptrack"] = {
        "source_annotation_id": int(row["annotation_id"]),
        "offset": int(row["offset"]),
        "source_frame_id": int(row["source_frame_id"]),
        "estimator": str(row.get("estimator", "")),
        **{c: _json_number(row.get(c)) for c in QUALITY_COLUMNS if c in row},
    }
    return ann


@dataclass
class ExportCounts:
    """What an export read and wrote; ``rows_in`` = exported + filtered + refused."""

    rows_in: int = 0
    rows_exported: int = 0
    rows_filtered: int = 0
    rows_refused: dict[str, int] = field(default_factory=dict)
    images_written: int = 0
    frames_extracted: int = 0

    def refuse(self, reason: str, count: int = 1) -> None:
        self.rows_refused[reason] = self.rows_refused.get(reason, 0) + count

    def adds_up(self) -> bool:
        refused = sum(self.rows_refused.values())
        return self.rows_in == self.rows_exported + self.rows_filtered + refused
