"""How far propagated keypoints land from annotated ones: agreement with PoseTrack.

PoseTrack labels keypoints on many consecutive frames, DensePose only on a few. Where a target
frame has an annotated person of the same ``track_id`` (PoseTrack18 JSON passed with
``--posetrack``, or the DensePose-PoseTrack file's own keypoint annotations), each propagated
keypoint can be compared with the annotated one: an accuracy measure of the propagation on real
footage.

* **Distance** per keypoint: ``|propagated - annotated|`` in target-frame pixels, for the joints
  visible (``v > 0``) in both; NaN for the others.
* **PCKh@0.5**: the fraction of those joints within ``0.5 * head_size``, the standard PoseTrack /
  MPII measure. ``head_size = 0.6 * |head box diagonal|`` (:data:`HEAD_SIZE_SCALE`, the ``SC_BIAS``
  of the MPII and PoseTrack evaluation code) from PoseTrack's ``bbox_head``. Where the annotation
  has no head box it is estimated from the person box: the head box diagonal is
  :data:`HEAD_TO_PERSON_DIAGONAL` (0.213) of the person box diagonal, the median over the 14
  annotated persons of the shared PoseTrack18 val sample (range 0.151-0.276).

Pure functions on numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.structures import Box

HEAD_SIZE_SCALE = 0.6
"""MPII/PoseTrack ``SC_BIAS``: head size = 0.6 x the head box diagonal."""
HEAD_TO_PERSON_DIAGONAL = 0.213
"""Head box diagonal / person box diagonal, median of the shared PoseTrack18 val persons."""
PCKH_ALPHA = 0.5
"""PCKh@0.5: a joint is correct within half a head size."""


def head_size(head_box: Box | None, person_box: Box) -> float:
    """The PCKh normaliser in pixels, from the head box or, without one, the person box."""
    if head_box is not None and head_box[2] > 0 and head_box[3] > 0:
        diagonal = math.hypot(head_box[2], head_box[3])
    else:
        diagonal = HEAD_TO_PERSON_DIAGONAL * math.hypot(person_box[2], person_box[3])
    return HEAD_SIZE_SCALE * diagonal


@dataclass(frozen=True, eq=False)
class Agreement:
    """``errors`` (17,) float32 px, NaN where not comparable; ``pckh`` in [0, 1] or NaN when no
    joint is comparable."""

    errors: np.ndarray
    pckh: float


NOT_COMPARED = Agreement(errors=np.full(17, np.nan, np.float32), pckh=float("nan"))


def keypoint_agreement(propagated: np.ndarray, annotated: np.ndarray, size: float) -> Agreement:
    """Compare ``(17, 3)`` propagated keypoints with the ``(17, 3)`` annotated ones.

    Args:
        propagated: ``(x, y, v)`` in target pixels, ``v = 0`` where absent or dropped.
        annotated: the target frame's annotation of the same track.
        size: :func:`head_size`.
    """
    propagated = np.asarray(propagated, np.float32).reshape(-1, 3)
    annotated = np.asarray(annotated, np.float32).reshape(-1, 3)
    both = (propagated[:, 2] > 0) & (annotated[:, 2] > 0)
    errors = np.full(len(propagated), np.nan, np.float32)
    errors[both] = np.hypot(*(propagated[both, :2] - annotated[both, :2]).T)
    if not both.any() or not size > 0:
        return Agreement(errors=errors, pckh=float("nan"))
    return Agreement(errors=errors, pckh=float(np.mean(errors[both] <= PCKH_ALPHA * size)))
