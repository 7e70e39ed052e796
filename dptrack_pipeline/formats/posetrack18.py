"""Reader of PoseTrack18 annotation files (boxes, keypoints, tracks; no DensePose).

PoseTrack18 ships one COCO-style JSON per video (``annotations/val/003418_mpii_test.json``), and
tools often combine several into one file; both read the same way. Images carry ``vid_id`` as a
zero-padded string (``"003418"``, normalised to ``"3418"`` to match DensePose-PoseTrack's int ids),
a global ``frame_id`` (``10034180000``) and ``file_name`` like
``images/val/003418_mpii_test/000000.jpg``. Annotations carry ``bbox``, ``bbox_head``,
``keypoints`` (17 PoseTrack joints as ``x, y, v``), ``track_id``, ``image_id`` and ``id``; some
persons lack ``bbox`` or ``keypoints``.

Rules beyond :mod:`dptrack_pipeline.formats.densepose_posetrack` (same records, same validation,
the same reading: :mod:`dptrack_pipeline.formats.coco_json`):

* An annotation without ``bbox`` but with visible keypoints (``v > 0``) gets the box of those
  keypoints' extent enlarged by :data:`KEYPOINT_BOX_ENLARGE` (30%: 15% of the extent added on each
  side, about the centre), not clipped to the image. That is how PoseTrack made its own boxes: all
  14 boxes of the shared PoseTrack18 val sample equal this construction to float precision
  (measured by ``test_keypoint_box_reproduces_posetrack_boxes``), so derived boxes match given
  ones, overhang of the frame edge included (see ``bbox_outside_image`` in
  :mod:`dptrack_pipeline.formats.validation`). A single visible joint gives a zero-size box,
  rejected as ``bbox_invalid``.
* An annotation with neither a box nor a visible keypoint is rejected as ``missing_field``.
* Any ``dp_*`` fields are ignored: ``instances`` is always empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from dptrack_pipeline.formats.annotation_set import AnnotationSet, merge_annotation_sets
from dptrack_pipeline.formats.coco_json import Source, load_annotation_set
from dptrack_pipeline.formats.validation import BBOX_OUTSIDE_TOLERANCE, check_keypoints

KEYPOINT_BOX_ENLARGE = 0.30
"""Relative growth of a box derived from keypoints (total, split equally between both sides)."""


def load_posetrack18(
    source: Source, *, bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE
) -> AnnotationSet:
    """Read a PoseTrack18 file (one video or several combined) into an :class:`AnnotationSet`.

    Arguments and errors as :func:`~dptrack_pipeline.formats.coco_json.load_annotation_set`,
    with ``keep_densepose=False`` and boxes derived from keypoints where missing (module doc).
    Against the shared val sample a ``bbox_tolerance`` of 0.10 rejects 1 of the 14 persons, the
    default 0.25 none.

    Returns:
        Videos, ``persons`` and ``rejects``; ``instances`` is empty (PoseTrack18 has no DensePose).
    """
    return load_annotation_set(
        source,
        "PoseTrack18",
        keep_densepose=False,
        prepare=_fill_bbox,
        bbox_tolerance=bbox_tolerance,
    )


def load_many(
    paths: Iterable[str | os.PathLike], *, bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE
) -> AnnotationSet:
    """Read several PoseTrack18 files into one set.

    Files are merged in the given order; the first file that has a person
    ``(video_id, frame_id, track_id)`` or a frame ``frame_id`` of a video wins, so passing both the
    per-video files and a combined file holding the same videos does not duplicate persons.
    """
    merged = AnnotationSet()
    for path in paths:
        merged = merge_annotation_sets(
            merged, load_posetrack18(path, bbox_tolerance=bbox_tolerance)
        )
    return merged


def keypoint_box(
    keypoints: np.ndarray, enlarge: float = KEYPOINT_BOX_ENLARGE
) -> tuple[float, float, float, float] | None:
    """Box around the visible keypoints, as PoseTrack draws it.

    Args:
        keypoints: ``(17, 3)`` (or flat 51) ``x, y, v`` in frame pixels; ``v > 0`` = visible.
        enlarge: total relative growth of the extent, half added on each side.

    Returns:
        ``(x, y, w, h)`` in frame pixels (may reach outside the frame), or ``None`` when no
        keypoint is visible.
    """
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    visible = points[points[:, 2] > 0, :2]
    if visible.size == 0:
        return None
    low = visible.min(axis=0)
    size = visible.max(axis=0) - low
    low = low - size * enlarge / 2
    size = size * (1.0 + enlarge)
    return (float(low[0]), float(low[1]), float(size[0]), float(size[1]))


def _fill_bbox(ann: dict, _image: dict | None) -> dict:
    """``ann`` without DensePose fields, with a keypoint box when it has no ``bbox``."""
    ann = {key: value for key, value in ann.items() if not key.startswith("dp_")}
    if ann.get("bbox") is not None:
        return ann
    keypoints = ann.get("keypoints")
    if keypoints is None or check_keypoints(keypoints):
        return ann  # validation reports the missing box (and malformed keypoints)
    box = keypoint_box(np.asarray(keypoints, dtype=np.float64))
    if box is not None:
        ann["bbox"] = list(box)
    return ann
