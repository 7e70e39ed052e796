"""Move an annotated person from its labelled frame T into a neighbour frame T+k along flow.

This is the "GT propagation" of Slim DensePose (Neverova et al. 2019, sec. 3.2.2 and 5.4): every
annotation location is translated by the forward flow F(T -> T+k), and a location is ignored when
translating it forward and then back with F(T+k -> T) lands more than ``fb_threshold`` (5 px) away
from where it started. Pure functions on numpy arrays; no Beam, no file I/O.

Conventions (see :mod:`dptrack_pipeline.structures`): pixel centres on integer coordinates, flows
``(H, W, 2)`` float32 with channel 0 = x, boxes ``xywh`` in frame pixels, DensePose points and part
masks box-relative on the 256 grid.

What moves and how:

* **DensePose points** keep ``I, U, V``; each records ``dp_source_index`` (its index in the source
  annotation) and its quality scores (forward-backward error, photometric agreement, chain error:
  :mod:`dptrack_pipeline.propagate.points`). A point is dropped as ``outside`` when its moved
  position leaves the target frame or the target box (``dp_x, dp_y`` must stay on the box's
  0..256 grid), else under the first check of :mod:`dptrack_pipeline.propagate.checks` it fails.
* **Keypoints** with ``v > 0`` get the same checks; a dropped keypoint becomes ``(0, 0, 0)``.
* **Part masks** are pulled, not pushed: every cell of the target box's 256x256 grid is sent back
  to the source frame with the backward flow and takes the source part label there (nearest).
  Cells whose backward-then-forward round trip misses by more than the forward-backward threshold
  become background, so occluded or unreliable regions carry no label (the photometric and chain
  checks are for points).
* **The box** in the target frame is the annotated (PoseTrack) box of the same ``track_id`` when
  that frame has one. Otherwise it is derived from the motion: a per-axis scale-and-shift
  ``x' = a x + b`` is fitted by least squares to the kept correspondences (points and mask cells)
  and applied to the source box, so the annotators' padding convention survives. The scale is
  clamped to ``[1/1.5, 1.5]`` (people do not change size by 50% in 3 frames).

Person crops and crop flows are :mod:`dptrack_pipeline.crops`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.flow.consistency import track_grid
from dptrack_pipeline.propagate.checks import Checks
from dptrack_pipeline.propagate.points import (
    DROPPED_CHAIN,
    DROPPED_FB,
    DROPPED_OUTSIDE,
    DROPPED_PHOTO,
    NO_EVIDENCE,
    Evidence,
    move_keypoints,
    move_points,
)
from dptrack_pipeline.structures import DP_GRID, Box, dp_to_pixels, pixels_to_dp

MAX_BOX_SCALE_CHANGE = 1.5
MIN_BOX_SIDE = 2.0


def grid_cell_centres(box: Box, grid: int = DP_GRID) -> np.ndarray:
    """Frame-pixel centres of the ``grid x grid`` cells over ``box``: ``(grid, grid, 2)``."""
    x0, y0, w, h = box
    j = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    xs = x0 + j * w
    ys = y0 + j * h
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx, gy], axis=-1).astype(np.float32)


def mask_cell_points(labels: np.ndarray, box: Box, stride: int = 2) -> np.ndarray:
    """Frame-pixel centres of labelled (non-zero) cells of a 256x256 part map, every ``stride``-th
    cell in each direction: ``(M, 2)`` float32. Used to move the mask's extent."""
    centres = grid_cell_centres(box, labels.shape[0])[::stride, ::stride]
    sel = labels[::stride, ::stride] > 0
    return centres[sel]


def warp_part_labels(
    labels: np.ndarray,
    source_box: Box,
    target_box: Box,
    flow_fwd: np.ndarray,
    flow_bwd: np.ndarray,
    fb_threshold: float,
) -> np.ndarray:
    """Pull a part label map from the source box grid onto the target box grid.

    Args:
        labels: ``(256, 256)`` uint8, 0 = background, 1..14 parts, on ``source_box``.
        source_box, target_box: ``xywh`` frame pixels in the source / target frame.
        flow_fwd: ``(H, W, 2)`` source -> target; flow_bwd: target -> source.
        fb_threshold: cells whose target -> source -> target round trip misses by more are 0.

    Returns:
        ``(256, 256)`` uint8 label map on ``target_box``.
    """
    grid = labels.shape[0]
    # The round trip starts in the target frame, so the roles of the flows swap.
    back = track_grid(grid_cell_centres(target_box, grid), flow_bwd, flow_fwd)
    ok = back.inside & (back.error <= fb_threshold)
    sx0, sy0, sw, sh = source_box
    col = np.floor((back.moved[:, 0] - sx0) / sw * grid).astype(np.int64)
    row = np.floor((back.moved[:, 1] - sy0) / sh * grid).astype(np.int64)
    ok &= (col >= 0) & (col < grid) & (row >= 0) & (row < grid)
    out = np.zeros(grid * grid, dtype=np.uint8)
    out[ok] = labels[row[ok], col[ok]]
    return out.reshape(grid, grid)


def fit_box_motion(
    source_box: Box,
    source_points: np.ndarray,
    moved_points: np.ndarray,
    image_size: tuple[int, int],
) -> Box | None:
    """Derive the target box from kept correspondences (see the module docstring).

    Args:
        source_box: ``xywh`` in the source frame.
        source_points, moved_points: ``(M, 2)`` kept correspondences (source -> target pixels).
        image_size: ``(width, height)`` of the target frame; the box is clipped to it.

    Returns:
        The target ``xywh`` box, or ``None`` when fewer than 2 correspondences are left or the
        clipped box is degenerate.
    """
    if len(source_points) < 2:
        return None
    x0, y0, w, h = source_box
    coeffs = []
    for axis in (0, 1):
        s = source_points[:, axis].astype(np.float64)
        t = moved_points[:, axis].astype(np.float64)
        spread = s.std()
        if spread < 1e-3:
            scale = 1.0
        else:
            scale = float(np.cov(s, t, bias=True)[0, 1] / (spread * spread))
            scale = float(np.clip(scale, 1.0 / MAX_BOX_SCALE_CHANGE, MAX_BOX_SCALE_CHANGE))
        shift = float(np.median(t - scale * s))
        coeffs.append((scale, shift))
    (ax, bx), (ay, by) = coeffs
    nx0, ny0 = ax * x0 + bx, ay * y0 + by
    nx1, ny1 = ax * (x0 + w) + bx, ay * (y0 + h) + by
    width, height = image_size
    nx0, nx1 = max(nx0, 0.0), min(nx1, float(width - 1))
    ny0, ny1 = max(ny0, 0.0), min(ny1, float(height - 1))
    if nx1 - nx0 < MIN_BOX_SIDE or ny1 - ny0 < MIN_BOX_SIDE:
        return None
    return (float(nx0), float(ny0), float(nx1 - nx0), float(ny1 - ny0))


@dataclass(frozen=True)
class PropagatedInstance:
    """One person moved into a target frame (target-frame pixels, target box grid).

    ``dp_*`` hold the kept points only; ``dp_source_index`` their indices in the source
    annotation; ``dp_fb_error``, ``dp_photo``, ``dp_chain_error`` their scores (px, ZNCC, px; NaN
    where not computed); ``part_labels`` is ``(256, 256)`` uint8 or ``None`` when the source had
    no masks; ``kp_fb_error`` and ``kp_photo`` are ``(17,)`` (NaN where absent or dropped).
    ``box_source`` is ``"posetrack"`` (the given target box) or ``"derived"``.
    """

    bbox: Box
    box_source: str
    keypoints: np.ndarray
    dp_x: np.ndarray
    dp_y: np.ndarray
    dp_I: np.ndarray
    dp_U: np.ndarray
    dp_V: np.ndarray
    dp_source_index: np.ndarray
    dp_fb_error: np.ndarray
    dp_photo: np.ndarray
    dp_chain_error: np.ndarray
    part_labels: np.ndarray | None
    kp_fb_error: np.ndarray
    kp_photo: np.ndarray
    points_in: int
    points_dropped_fb: int
    points_dropped_outside: int
    points_dropped_photo: int = 0
    points_dropped_chain: int = 0

    @property
    def points_kept(self) -> int:
        return int(self.dp_x.size)


def propagate_person(
    *,
    source_box: Box,
    keypoints: np.ndarray,
    dp_x: np.ndarray,
    dp_y: np.ndarray,
    dp_I: np.ndarray,
    dp_U: np.ndarray,
    dp_V: np.ndarray,
    part_labels: np.ndarray | None,
    flow_fwd: np.ndarray,
    flow_bwd: np.ndarray,
    checks: Checks,
    target_box: Box | None = None,
    evidence: Evidence = NO_EVIDENCE,
) -> PropagatedInstance | None:
    """Propagate one annotated person from its source frame into a target frame.

    Args:
        source_box: ``xywh`` of the person in the source frame.
        keypoints: ``(17, 3)`` source keypoints.
        dp_x, dp_y, dp_I, dp_U, dp_V: ``(N,)`` DensePose points (box-relative 256 grid).
        part_labels: ``(256, 256)`` uint8 part map on ``source_box``, or ``None``.
        flow_fwd, flow_bwd: ``(H, W, 2)`` flows source -> target and target -> source.
        checks: the point checks (boxes and masks use their forward-backward part).
        target_box: the annotated box of the same track in the target frame, if any.
        evidence: grey frames and chain legs for the photometric and chain scores.

    Returns:
        The propagated instance, or ``None`` when no box can be derived for the target frame
        (nothing of the person survived the check).
    """
    if flow_fwd.shape != flow_bwd.shape or flow_fwd.ndim != 3 or flow_fwd.shape[2] != 2:
        raise ValueError(f"flows must both be (H, W, 2); got {flow_fwd.shape} and {flow_bwd.shape}")
    height, width = flow_fwd.shape[:2]
    points = dp_to_pixels(dp_x, dp_y, source_box)
    box_source = "posetrack"
    if target_box is None:
        box_source = "derived"
        corr_src = [points]
        if part_labels is not None:
            corr_src.append(mask_cell_points(part_labels, source_box))
        src = np.concatenate(corr_src, axis=0) if corr_src else np.zeros((0, 2), np.float32)
        moved = move_points(src, flow_fwd, flow_bwd, checks.fb_only)
        target_box = fit_box_motion(
            source_box, src[moved.kept], moved.moved[moved.kept], (width, height)
        )
        if target_box is None:
            return None
    result = move_points(points, flow_fwd, flow_bwd, checks, target_box, evidence)
    kept = result.kept
    new_x, new_y = pixels_to_dp(result.moved[kept], target_box)
    # Points exactly on the box edge can round a hair outside the grid.
    new_x = np.clip(new_x, 0.0, float(DP_GRID))
    new_y = np.clip(new_y, 0.0, float(DP_GRID))
    labels = None
    if part_labels is not None:
        labels = warp_part_labels(
            part_labels, source_box, target_box, flow_fwd, flow_bwd, checks.fb_threshold
        )
    keypoints_moved = move_keypoints(keypoints, flow_fwd, flow_bwd, checks, evidence)
    return PropagatedInstance(
        bbox=tuple(float(v) for v in target_box),
        box_source=box_source,
        keypoints=keypoints_moved.keypoints,
        dp_x=new_x,
        dp_y=new_y,
        dp_I=np.asarray(dp_I)[kept],
        dp_U=np.asarray(dp_U, dtype=np.float32)[kept],
        dp_V=np.asarray(dp_V, dtype=np.float32)[kept],
        dp_source_index=np.flatnonzero(kept).astype(np.int32),
        dp_fb_error=result.error[kept],
        dp_photo=result.photo[kept],
        dp_chain_error=result.chain[kept],
        part_labels=labels,
        kp_fb_error=keypoints_moved.fb_error,
        kp_photo=keypoints_moved.photo,
        points_in=int(len(points)),
        points_dropped_fb=result.dropped(DROPPED_FB),
        points_dropped_outside=result.dropped(DROPPED_OUTSIDE),
        points_dropped_photo=result.dropped(DROPPED_PHOTO),
        points_dropped_chain=result.dropped(DROPPED_CHAIN),
    )
