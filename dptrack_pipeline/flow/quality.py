"""How much to trust a point moved along the flow: photometric agreement and the chain error.

The forward-backward check (:mod:`dptrack_pipeline.flow.consistency`) passes flow that is wrong
the same way in both directions: a point hidden by an occluder that moves like it, or a textured
region the estimator locked onto in both frames. Two further scores look at the point from other
sides:

* **Photometric agreement** (:func:`zncc`): the zero-mean normalised cross-correlation of the
  ``(2r + 1) x (2r + 1)`` grey-level patch around the point in the source frame and around its
  moved position in the target frame, both sampled bilinearly (pixel centres on integers,
  replicated borders). In ``[-1, 1]``; 1 when the two patches are the same up to gain and offset
  (illumination changes do not count against a point). A flat patch has no signal: its
  correlation is pulled towards 0 by the regulariser :data:`ZNCC_EPSILON`, so a flat region
  scores low on both sides instead of a division by zero. :func:`census` (the fraction of a
  patch's census bits, "brighter than the centre", that differ) is the other common choice; on
  the six shared MPI-Sintel pairs ZNCC separates points within 3 px of the true position from
  points beyond 10 px better (AUC 0.941 for ZNCC ``r = 5`` vs 0.844 for census ``r = 3`` with
  OpenCV DIS; 0.965 vs 0.875 with Farneback), so it is the one the pipeline uses, with
  ``r =`` :data:`ZNCC_RADIUS`.
* **Chain error** (:func:`chain_error`): the point moved to the target ``t`` directly, and moved
  along two legs through a neighbouring frame ``d`` (``T -> d -> t``), must land in the same place;
  the error is the distance between the two landing points, in target pixels. Flow errors that
  grow with the frame gap (large motion, occlusion) rarely agree along two different paths.

Pure functions on numpy arrays (OpenCV ``remap`` for the patch sampling): no I/O. Images are
``(H, W)`` float32 grey levels (:func:`grey`); points ``(N, 2)`` ``(x, y)`` pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from dptrack_pipeline.flow.sampling import sample_bilinear

ZNCC_RADIUS = 5
"""Patch radius of the photometric score: 11 x 11 pixels (measured, module docstring)."""
ZNCC_EPSILON = 0.01
"""Regulariser of the ZNCC denominator, in (grey level)^2 per pixel: a patch whose grey levels
vary by less than about 0.1 level has no texture to compare. Measured on the six shared Sintel
pairs (AUC of the score, DIS / Farneback flow): 0.941 / 0.965 at 0.01, 0.938 / 0.965 at 0.1,
0.921 / 0.962 at 1, 0.895 / 0.953 at 4; radius 3 / 7 give 0.934 / 0.941 (DIS)."""
_REMAP_ROWS = 16384
"""cv2.remap takes at most 32767 rows: patches are sampled this many points at a time."""


def grey(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` float32 grey levels 0..255 (ITU-R 601 luma)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _offsets(radius: int) -> np.ndarray:
    if radius < 1:
        raise ValueError(f"patch radius must be >= 1, got {radius}")
    steps = np.arange(-radius, radius + 1, dtype=np.float32)
    xx, yy = np.meshgrid(steps, steps)
    return np.stack([xx.reshape(-1), yy.reshape(-1)], axis=1)


def patches(image: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level patches around ``points``: ``(N, (2r + 1)^2)`` float32, row-major, bilinear,
    borders replicated.

    Args:
        image: ``(H, W)`` float32.
        points: ``(N, 2)`` ``(x, y)`` pixels.
        radius: ``r``.
    """
    if image.ndim != 2:
        raise ValueError(f"expected an (H, W) grey image, got shape {image.shape}")
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    grid = pts[:, None, :] + _offsets(radius)[None]
    out = np.empty(grid.shape[:2], np.float32)
    for start in range(0, len(pts), _REMAP_ROWS):
        block = grid[start : start + _REMAP_ROWS]
        out[start : start + _REMAP_ROWS] = cv2.remap(
            image,
            np.ascontiguousarray(block[..., 0]),
            np.ascontiguousarray(block[..., 1]),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


def zncc(
    source: np.ndarray,
    target: np.ndarray,
    source_points: np.ndarray,
    target_points: np.ndarray,
    radius: int = ZNCC_RADIUS,
) -> np.ndarray:
    """Zero-mean normalised cross-correlation of the patches around matching points.

    Args:
        source, target: ``(H, W)`` float32 grey images (:func:`grey`).
        source_points: ``(N, 2)`` points in ``source``.
        target_points: ``(N, 2)`` where they moved to in ``target``.
        radius: patch radius ``r``.

    Returns:
        ``(N,)`` float32 in ``[-1, 1]``.
    """
    a = patches(source, source_points, radius)
    b = patches(target, target_points, radius)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    size = a.shape[1]
    denominator = np.sqrt(
        ((a * a).sum(axis=1) + ZNCC_EPSILON * size) * ((b * b).sum(axis=1) + ZNCC_EPSILON * size)
    )
    return ((a * b).sum(axis=1) / denominator).astype(np.float32)


def census(
    source: np.ndarray,
    target: np.ndarray,
    source_points: np.ndarray,
    target_points: np.ndarray,
    radius: int = 3,
) -> np.ndarray:
    """Census distance of the patches around matching points: the fraction of pixels whose
    "brighter than the patch centre" bit differs, ``(N,)`` float32 in ``[0, 1]`` (0 = same)."""
    a = patches(source, source_points, radius)
    b = patches(target, target_points, radius)
    centre = a.shape[1] // 2
    bits_a = a > a[:, centre : centre + 1]
    bits_b = b > b[:, centre : centre + 1]
    return (bits_a != bits_b).mean(axis=1).astype(np.float32)


def chain_error(
    points: np.ndarray, direct: np.ndarray, first_leg: np.ndarray, second_leg: np.ndarray
) -> np.ndarray:
    """Distance between a point moved directly and the same point moved along two legs.

    Args:
        points: ``(N, 2)`` points in the source frame ``T``.
        direct: ``(N, 2)`` where the direct flow ``T -> t`` moved them.
        first_leg: ``(H, W, 2)`` flow ``T -> d``.
        second_leg: ``(H, W, 2)`` flow ``d -> t``.

    Returns:
        ``(N,)`` float32, pixels of frame ``t``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    middle = pts + sample_bilinear(first_leg, pts)
    landed = middle + sample_bilinear(second_leg, middle)
    return np.hypot(*(landed - np.asarray(direct, dtype=np.float64)).T).astype(np.float32)


def roc_auc(good: np.ndarray, bad: np.ndarray) -> float:
    """Probability that a score of ``good`` exceeds one of ``bad`` (ties count half): the area
    under the ROC curve of a score that should be higher for good points. NaN when either side is
    empty."""
    good = np.asarray(good, dtype=np.float64).reshape(-1)
    bad = np.asarray(bad, dtype=np.float64).reshape(-1)
    if not len(good) or not len(bad):
        return float("nan")
    from scipy.stats import rankdata  # average ranks over ties (Mann-Whitney U)

    ranks = rankdata(np.concatenate([good, bad]), method="average")
    rank_sum = ranks[: len(good)].sum()
    return float((rank_sum - len(good) * (len(good) + 1) / 2.0) / (len(good) * len(bad)))
