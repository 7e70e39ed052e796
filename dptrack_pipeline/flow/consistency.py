"""The forward-backward flow check of Slim DensePose, for points and for whole images.

Slim DensePose (Neverova et al., CVPR 2019, Sec. 4) propagates annotations from a labelled frame A
to a neighbour B with the flow A->B and keeps a point only if the flow B->A brings it back close to
where it started. For a point ``p`` in A:

* ``p'  = p  + F_AB(p)``   (where the point lands in B),
* ``p'' = p' + F_BA(p')``  (where it lands back in A),
* error ``= |p'' - p|`` (Euclidean, pixels); the point is kept when ``error <= threshold``
  (:data:`DEFAULT_FB_THRESHOLD` = 5 px, the paper's value) **and** ``p'`` is inside B.

Flows are read with :func:`~dptrack_pipeline.flow.sampling.sample_bilinear`, which clamps points
outside the image to the border; such points are marked by ``inside`` and fail the check anyway.
The dense functions evaluate exactly the same formula at every pixel centre, so a point on a pixel
centre gets the same answer from :func:`track_points` and :func:`forward_backward_error_map`.

Conventions: points ``(N, 2)`` ``(x, y)`` in pixels with pixel centres on integers; flows
``(H, W, 2)`` float32 with channel 0 = x (``dptrack_pipeline.structures``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.flow.sampling import (
    check_flow,
    pixel_grid,
    points_inside,
    sample_bilinear,
    sample_grid,
)

DEFAULT_FB_THRESHOLD = 5.0
"""Forward-backward error threshold in pixels (Slim DensePose)."""


@dataclass(frozen=True, eq=False)
class PointTrack:
    """Points carried from frame A to frame B, with their forward-backward error.

    Attributes:
        moved: ``(N, 2)`` float32 ``p' = p + F_AB(p)``, positions in B.
        error: ``(N,)`` float32 ``|p' + F_BA(p') - p|`` in pixels.
        inside: ``(N,)`` bool, ``p'`` lies inside B (``0 <= x <= W-1``, ``0 <= y <= H-1``).
    """

    moved: np.ndarray
    error: np.ndarray
    inside: np.ndarray

    def __len__(self) -> int:
        return int(self.error.shape[0])

    def kept(self, threshold: float = DEFAULT_FB_THRESHOLD) -> np.ndarray:
        """``(N,)`` bool: the point passes the check (``inside`` and ``error <= threshold``)."""
        return self.inside & (self.error <= threshold)


def _check_pair(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flow_fwd = check_flow(flow_fwd, "flow_fwd")
    flow_bwd = check_flow(flow_bwd, "flow_bwd")
    return flow_fwd, flow_bwd


def track_points(points: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> PointTrack:
    """Move points with the forward flow and measure their forward-backward error.

    Args:
        points: ``(N, 2)`` ``(x, y)`` in frame A, pixels; finite.
        flow_fwd: ``(H_A, W_A, 2)`` flow A->B.
        flow_bwd: ``(H_B, W_B, 2)`` flow B->A (normally the same size as ``flow_fwd``);
            ``inside`` is judged against its size.

    Returns:
        A :class:`PointTrack` (bilinear sampling, border clamping; see the module docstring).
    """
    flow_fwd, flow_bwd = _check_pair(flow_fwd, flow_bwd)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) as (x, y), got {pts.shape}")
    return _track(pts, sample_bilinear(flow_fwd, pts), flow_bwd)


def track_grid(grid: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> PointTrack:
    """:func:`track_points` for a dense ``(h, w, 2)`` grid of points (e.g. a crop's pixel centres),
    read with :func:`~dptrack_pipeline.flow.sampling.sample_grid` (``cv2.remap``, 1/32 px).

    Returns:
        A :class:`PointTrack` over the ``h * w`` points in row-major order.
    """
    flow_fwd, flow_bwd = _check_pair(flow_fwd, flow_bwd)
    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 3 or grid.shape[2] != 2:
        raise ValueError(f"grid must have shape (h, w, 2) as (x, y), got {grid.shape}")
    moved = grid + sample_grid(flow_fwd, grid)
    miss = moved + sample_grid(flow_bwd, moved) - grid
    error = np.hypot(miss[..., 0], miss[..., 1]).reshape(-1)
    moved = moved.reshape(-1, 2)
    inside = points_inside(moved, flow_bwd.shape[1], flow_bwd.shape[0])
    return PointTrack(moved=moved, error=error.astype(np.float32), inside=inside)


def track_grid_chained(
    grid: np.ndarray, steps_fwd: Sequence[np.ndarray], steps_bwd: Sequence[np.ndarray]
) -> PointTrack:
    """:func:`track_grid` along a chain of one-step flows instead of one direct flow.

    The flow A->B is the composition of the steps, evaluated by sampling (as
    :func:`compose_flows` does, but only at the grid's points): ``p_0 = p``,
    ``p_{i+1} = p_i + F_i(p_i)``. The way back goes through ``steps_bwd`` the same way from the
    landing point, and the error is ``|back - p|`` as for a direct pair. A point is ``inside``
    only when it stays inside the frame after **every** forward step: a point that leaves the frame
    half-way reads clamped border flow from then on and cannot be trusted.

    Args:
        grid: ``(h, w, 2)`` ``(x, y)`` points in frame A (pixels, centres on integers).
        steps_fwd: flows applied in order, e.g. ``[F_{T->T+1}, F_{T+1->T+2}]`` for A = T,
            B = T+2 (or ``[F_{T->T-1}, F_{T-1->T-2}]`` going back in time); at least one.
        steps_bwd: flows from B back to A in order, e.g. ``[F_{T+2->T+1}, F_{T+1->T}]``.

    Returns:
        A :class:`PointTrack` over the ``h * w`` points in row-major order. With one step each
        it equals :func:`track_grid` on the same flows.
    """
    if not steps_fwd or not steps_bwd:
        raise ValueError("need at least one forward and one backward step")
    fwd = [check_flow(f, f"steps_fwd[{i}]") for i, f in enumerate(steps_fwd)]
    bwd = [check_flow(f, f"steps_bwd[{i}]") for i, f in enumerate(steps_bwd)]
    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 3 or grid.shape[2] != 2:
        raise ValueError(f"grid must have shape (h, w, 2) as (x, y), got {grid.shape}")
    moved = grid
    inside = np.ones(grid.shape[:2], dtype=bool)
    for flow in fwd:
        moved = moved + sample_grid(flow, moved)
        inside &= points_inside(moved.reshape(-1, 2), flow.shape[1], flow.shape[0]).reshape(
            grid.shape[:2]
        )
    back = moved
    for flow in bwd:
        back = back + sample_grid(flow, back)
    miss = back - grid
    error = np.hypot(miss[..., 0], miss[..., 1]).reshape(-1)
    return PointTrack(
        moved=moved.reshape(-1, 2), error=error.astype(np.float32), inside=inside.reshape(-1)
    )


def _track(points: np.ndarray, displacement: np.ndarray, flow_bwd: np.ndarray) -> PointTrack:
    """The check for ``(N, 2)`` float64 ``points`` already displaced by ``(N, 2)`` forward flow."""
    moved = points + displacement
    back = moved + sample_bilinear(flow_bwd, moved)
    error = np.linalg.norm(back - points, axis=1)
    inside = points_inside(moved, flow_bwd.shape[1], flow_bwd.shape[0])
    return PointTrack(moved=moved.astype(np.float32), error=error.astype(np.float32), inside=inside)


def _track_grid(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> PointTrack:
    # At pixel centres bilinear sampling returns the stored flow exactly, so the forward flow is
    # used as is (same numbers as track_points on the grid, half the work).
    height, width = flow_fwd.shape[:2]
    grid = pixel_grid(height, width).reshape(-1, 2).astype(np.float64)
    return _track(grid, flow_fwd.reshape(-1, 2), flow_bwd)


def forward_backward_error_map(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """Forward-backward error at every pixel centre of frame A.

    Args:
        flow_fwd: ``(H, W, 2)`` flow A->B.
        flow_bwd: ``(H_B, W_B, 2)`` flow B->A.

    Returns:
        ``(H, W)`` float32 error in pixels (targets outside B read the flow at the border).
    """
    flow_fwd, flow_bwd = _check_pair(flow_fwd, flow_bwd)
    return _track_grid(flow_fwd, flow_bwd).error.reshape(flow_fwd.shape[:2])


def forward_backward_valid_mask(
    flow_fwd: np.ndarray, flow_bwd: np.ndarray, threshold: float = DEFAULT_FB_THRESHOLD
) -> np.ndarray:
    """Pixels of frame A that pass the check: error ``<= threshold`` and target inside B.

    Args:
        flow_fwd: ``(H, W, 2)`` flow A->B.
        flow_bwd: ``(H_B, W_B, 2)`` flow B->A.
        threshold: maximum forward-backward error in pixels.

    Returns:
        ``(H, W)`` bool.
    """
    flow_fwd, flow_bwd = _check_pair(flow_fwd, flow_bwd)
    return _track_grid(flow_fwd, flow_bwd).kept(threshold).reshape(flow_fwd.shape[:2])


def compose_flows(flow_ab: np.ndarray, flow_bc: np.ndarray) -> np.ndarray:
    """Chain two flows: the flow A->C from A->B and B->C.

    ``F_AC(p) = F_AB(p) + F_BC(p + F_AB(p))``, with ``F_BC`` read bilinearly and clamped at the
    border (pixels whose path leaves B get the border flow; check them with
    :func:`~dptrack_pipeline.flow.sampling.points_inside` on ``p + F_AB(p)`` if that matters).

    Args:
        flow_ab: ``(H, W, 2)`` flow A->B.
        flow_bc: ``(H_B, W_B, 2)`` flow B->C.

    Returns:
        ``(H, W, 2)`` float32 flow A->C.
    """
    flow_ab = check_flow(flow_ab, "flow_ab")
    flow_bc = check_flow(flow_bc, "flow_bc")
    height, width = flow_ab.shape[:2]
    grid = pixel_grid(height, width).reshape(-1, 2).astype(np.float64)
    step_ab = flow_ab.reshape(-1, 2).astype(np.float64)
    step_bc = sample_bilinear(flow_bc, grid + step_ab)
    return (step_ab + step_bc).astype(np.float32).reshape(height, width, 2)
