"""Moving points along the flow and checking them: DensePose points and keypoints.

A point ``p`` of the labelled frame ``T`` moves to ``p' = p + F(T -> t)(p)`` in the target ``t``
(bilinear flow sampling, :mod:`dptrack_pipeline.flow.consistency`). Every point gets its quality
scores, whether or not a check uses them:

* ``error``: the forward-backward error ``|p' + F(t -> T)(p') - p|``, px;
* ``photo``: the ZNCC of the point's neighbourhoods in ``T`` and ``t``
  (:func:`~dptrack_pipeline.flow.quality.zncc`), when the grey frames are given (else NaN);
* ``chain``: the distance between ``p'`` and the point moved along the two legs of the target's
  chain (:func:`~dptrack_pipeline.flow.quality.chain_error`), when they are given (else NaN).

Its status is :data:`KEPT` or the first check it fails, in the order of
:mod:`dptrack_pipeline.propagate.checks`: :data:`DROPPED_OUTSIDE`, :data:`DROPPED_FB`,
:data:`DROPPED_PHOTO`, :data:`DROPPED_CHAIN`. A check that is off, or whose score is NaN (no grey
frames, no chain for this target), passes every point.

Conventions: points ``(N, 2)`` ``(x, y)`` frame pixels, pixel centres on integers; flows
``(H, W, 2)`` float32, channel 0 = x; keypoints ``(17, 3)`` ``(x, y, v)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.flow.consistency import track_points
from dptrack_pipeline.flow.quality import chain_error, zncc
from dptrack_pipeline.propagate.checks import Checks
from dptrack_pipeline.structures import Box

KEPT = 0
DROPPED_FB = 1
DROPPED_OUTSIDE = 2
DROPPED_PHOTO = 3
DROPPED_CHAIN = 4


@dataclass(frozen=True, eq=False)
class Evidence:
    """What the photometric and chain checks look at, besides the two flows (all optional).

    Attributes:
        source_grey, target_grey: ``(H, W)`` float32 grey frames ``T`` and ``t``
            (:func:`~dptrack_pipeline.flow.quality.grey`).
        first_leg, second_leg: flows ``T -> d`` and ``d -> t`` through the target's chain
            neighbour ``d`` (:mod:`dptrack_pipeline.propagate.checks`).
    """

    source_grey: np.ndarray | None = None
    target_grey: np.ndarray | None = None
    first_leg: np.ndarray | None = None
    second_leg: np.ndarray | None = None


NO_EVIDENCE = Evidence()


@dataclass(frozen=True, eq=False)
class PointStatus:
    """``N`` points moved: ``moved`` (N, 2) float32 target pixels, ``status`` (N,) uint8, and the
    scores ``error`` (px), ``photo`` (ZNCC) and ``chain`` (px), each (N,) float32 (module doc)."""

    moved: np.ndarray
    status: np.ndarray
    error: np.ndarray
    photo: np.ndarray
    chain: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return self.status == KEPT

    def dropped(self, status: int) -> int:
        """How many points were dropped with ``status``."""
        return int((self.status == status).sum())


def move_points(
    points: np.ndarray,
    flow_fwd: np.ndarray,
    flow_bwd: np.ndarray,
    checks: Checks,
    target_box: Box | None = None,
    evidence: Evidence = NO_EVIDENCE,
) -> PointStatus:
    """Move pixel points along ``flow_fwd``, score them and apply the checks.

    Args:
        points: ``(N, 2)`` float (x, y) source-frame pixels.
        flow_fwd: ``(H, W, 2)`` flow source -> target.
        flow_bwd: ``(H, W, 2)`` flow target -> source (same size: frames of one video).
        checks: the checks (:class:`~dptrack_pipeline.propagate.checks.Checks`).
        target_box: when given, points landing outside this ``xywh`` box are ``outside`` too.
        evidence: grey frames and chain legs for the photometric and chain scores.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    track = track_points(points, flow_fwd, flow_bwd)
    moved = track.moved.astype(np.float32)
    nan = np.full(len(points), np.nan, np.float32)
    photo, chain = nan, nan
    if len(points) and evidence.source_grey is not None and evidence.target_grey is not None:
        photo = zncc(evidence.source_grey, evidence.target_grey, points, moved)
    if len(points) and evidence.first_leg is not None and evidence.second_leg is not None:
        chain = chain_error(points, moved, evidence.first_leg, evidence.second_leg)
    outside = ~track.inside
    if target_box is not None:
        x0, y0, w, h = target_box
        mx, my = moved[:, 0], moved[:, 1]
        outside |= (mx < x0) | (mx > x0 + w) | (my < y0) | (my > y0 + h)
    status = np.full(len(points), KEPT, dtype=np.uint8)
    # Assigned from the last check to the first, so a point carries the first check it fails.
    if checks.chain is not None:
        status[chain > checks.chain] = DROPPED_CHAIN
    if checks.photometric is not None:
        status[photo < checks.photometric] = DROPPED_PHOTO
    status[track.error > checks.fb_threshold] = DROPPED_FB
    status[outside] = DROPPED_OUTSIDE
    return PointStatus(moved=moved, status=status, error=track.error, photo=photo, chain=chain)


@dataclass(frozen=True, eq=False)
class MovedKeypoints:
    """Keypoints moved into the target frame: ``keypoints`` (17, 3), absent or dropped ones
    ``(0, 0, 0)``; ``fb_error`` and ``photo`` (17,) float32, NaN where absent or dropped."""

    keypoints: np.ndarray
    fb_error: np.ndarray
    photo: np.ndarray


def move_keypoints(
    keypoints: np.ndarray,
    flow_fwd: np.ndarray,
    flow_bwd: np.ndarray,
    checks: Checks,
    evidence: Evidence = NO_EVIDENCE,
) -> MovedKeypoints:
    """Move ``(17, 3)`` keypoints ``(x, y, v)`` with the same checks as points.

    Visible flags ``v`` of kept keypoints are preserved.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(-1, 3)
    out = np.zeros_like(keypoints)
    fb_error = np.full(len(keypoints), np.nan, np.float32)
    photo = fb_error.copy()
    present = keypoints[:, 2] > 0
    if present.any():
        result = move_points(keypoints[present, :2], flow_fwd, flow_bwd, checks, None, evidence)
        idx = np.flatnonzero(present)[result.kept]
        out[idx, :2] = result.moved[result.kept]
        out[idx, 2] = keypoints[idx, 2]
        fb_error[idx] = result.error[result.kept]
        photo[idx] = result.photo[result.kept]
    return MovedKeypoints(keypoints=out, fb_error=fb_error, photo=photo)
