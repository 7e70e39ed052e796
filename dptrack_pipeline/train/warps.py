"""Warping maps by a flow on their own grid, and random thin-plate-spline (TPS) warps of crops.

Conventions (those of :mod:`dptrack_pipeline.train`):

* A map ``(B, C, h, w)`` stores at ``[..., r, c]`` its value at grid coordinate ``(x, y) = (c, r)``
  (cell centres on integers). Grid coordinates are in **cells** of that map; for a crop they are
  pixels.
* A flow from A to B, ``(B, h, w, 2)`` float (channel 0 = x), holds at A's cell ``p`` the position
  in B of the same point minus ``p``. "Warping B to A" samples B at ``p + flow(p)``, so the
  warped map equals A wherever the flow is right.
* Sampling is bilinear with ``grid_sample(align_corners=False)``: grid coordinate ``x`` is the
  normalised ``(2 x + 1) / w - 1``, so the normalised frame's ``-1`` and ``1`` are the outer cell
  *edges*; ``padding_mode="border"`` clamps out-of-map coordinates to ``[0, w - 1]`` (the nearest
  border value, OpenCV's ``BORDER_REPLICATE``, like
  :func:`dptrack_pipeline.flow.sampling.sample_bilinear`). Such targets are flagged invalid.

TPS warps follow Slim DensePose Sec. 3.2.1 (synthetic correspondence fields): a random TPS ``T``
maps each pixel of the warped crop A to a position in the original crop B, and
``A(p) = B(T(p))``, so ``flow(p) = T(p) - p`` is exactly our A-to-B flow. ``T`` is fitted in the
normalised ``align_corners=False`` frame (``[-1, 1]`` = the crop's outer pixel edges) with its
kernel centres on a regular grid of A, sending them to the grid plus random offsets in B.
Kornia's :func:`~kornia.geometry.transform.warp_image_tps` evaluates a spline on the *output*
pixels (normalised, with the same ``align_corners`` flag) and samples the *input* there, which is
exactly ``A(p) = B(T(p))``; :func:`random_tps_flow` evaluates the same spline at the pixel centres
with :func:`~kornia.geometry.transform.warp_points_tps`. The spline is fitted by
:func:`fit_tps`, not kornia's ``get_tps_transform`` (ill-conditioned, see there), and is solved
and evaluated in float64, so a zero-strength TPS gives a flow of zero to round-off (about 1e-14 px).
"""

from __future__ import annotations

import torch
from kornia.geometry.grid import create_meshgrid
from kornia.geometry.transform import warp_image_tps, warp_points_tps
from torch.nn import functional as F

INSIDE_TOLERANCE = 1e-3
"""How far (cells, or pixels for crops) a target may lie outside ``[0, w - 1]`` and still count as
inside: absorbs float round-off (an identity TPS lands ``1e-14`` px past the last pixel centre);
the border clamp it allows changes a bilinear sample by at most this fraction of a cell."""


def _inside(target: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(..., 2)`` grid coordinates -> ``(...)`` bool, inside ``[0, w - 1] x [0, h - 1]``."""
    x, y = target[..., 0], target[..., 1]
    low = -INSIDE_TOLERANCE
    return (
        (x >= low)
        & (x <= width - 1 + INSIDE_TOLERANCE)
        & (y >= low)
        & (y <= height - 1 + INSIDE_TOLERANCE)
    )


def sample_at_cells(maps: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``maps`` at grid coordinates ``xy`` (cells, centres on integers).

    Coordinates outside ``[0, w - 1] x [0, h - 1]`` read the nearest border value. Differentiable
    in ``maps`` (and in ``xy``, with the usual bilinear sub-gradient).

    Args:
        maps: ``(B, C, h, w)`` float.
        xy: ``(B, N, M, 2)`` float ``(x, y)`` grid coordinates, finite.

    Returns:
        ``(B, C, N, M)`` sampled values, same dtype as ``maps``.

    Raises:
        ValueError: on wrong shapes.
    """
    if maps.ndim != 4:
        raise ValueError(f"maps must have shape (B, C, h, w), got {tuple(maps.shape)}")
    if xy.ndim != 4 or xy.shape[-1] != 2 or xy.shape[0] != maps.shape[0]:
        raise ValueError(f"xy must have shape (B={maps.shape[0]}, N, M, 2), got {tuple(xy.shape)}")
    height, width = maps.shape[-2:]
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=xy.dtype, device=xy.device)
    grid = (xy + 0.5) * scale - 1.0  # = (2 x + 1) / w - 1
    return F.grid_sample(
        maps, grid.to(maps.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


def cell_grid(
    height: int, width: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``(h, w, 2)`` grid coordinates of every cell, ``[r, c] = (c, r)`` (channel 0 = x)."""
    rows = torch.arange(height, device=device, dtype=dtype)
    cols = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)


def warp_by_flow(
    feat_b: torch.Tensor, flow_on_grid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp B's maps to A: ``warped[..., p] = feat_b[..., p + flow(p)]`` (bilinear).

    Args:
        feat_b: ``(B, C, h, w)`` float maps of B.
        flow_on_grid: ``(B, h, w, 2)`` float flow from A to B in **cells of this grid**
            (channel 0 = x); non-finite values are treated as zero (and flagged invalid).

    Returns:
        ``(warped, inside)``: ``warped`` ``(B, C, h, w)``, differentiable in ``feat_b``;
        ``inside`` ``(B, h, w)`` bool, True where the flow is finite and ``p + flow(p)`` lies in
        ``[0, w - 1] x [0, h - 1]`` (up to :data:`INSIDE_TOLERANCE`). The caller ANDs it with the
        flow's own validity.

    Raises:
        ValueError: on wrong shapes.
    """
    if feat_b.ndim != 4:
        raise ValueError(f"feat_b must have shape (B, C, h, w), got {tuple(feat_b.shape)}")
    batch, _, height, width = feat_b.shape
    if tuple(flow_on_grid.shape) != (batch, height, width, 2):
        raise ValueError(
            f"flow_on_grid must have shape (B, h, w, 2) = {(batch, height, width, 2)}, "
            f"got {tuple(flow_on_grid.shape)}"
        )
    finite = torch.isfinite(flow_on_grid).all(dim=-1)
    flow = torch.where(finite[..., None], flow_on_grid, torch.zeros_like(flow_on_grid))
    target = cell_grid(height, width, flow.device, flow.dtype) + flow
    inside = finite & _inside(target, height, width)
    return sample_at_cells(feat_b, target), inside


def _tps_kernel(squared_distances: torch.Tensor) -> torch.Tensor:
    """The TPS radial basis ``U(r) = r^2 log r = r^2 log(r^2) / 2`` (``U(0) = 0``), from squared
    distances; the same function kornia's :func:`~kornia.geometry.transform.warp_points_tps`
    evaluates."""
    positive = squared_distances > 0
    safe = torch.where(positive, squared_distances, torch.ones_like(squared_distances))
    return torch.where(positive, 0.5 * safe * safe.log(), torch.zeros_like(squared_distances))


def fit_tps(centers: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit the textbook interpolating thin-plate spline ``f`` with ``f(centers_i) = targets_i``.

    ``f(x) = a_0 + A x + sum_j w_j U(|x - centers_j|)`` with ``sum_j w_j = 0`` and
    ``sum_j w_j centers_j = 0`` (Bookstein 1989); the returned weights plug into kornia's
    :func:`~kornia.geometry.transform.warp_points_tps` and
    :func:`~kornia.geometry.transform.warp_image_tps` with ``kernel_centers=centers``.

    Kornia 0.9's own :func:`~kornia.geometry.transform.get_tps_transform` is not used: it builds its
    kernel matrix from distances between the *source and destination* points (not among the
    centres), which is ill-conditioned once points move by a sizeable fraction of their spacing
    (kornia PR #2690). Measured on 200 random 4x4-point warps of a 32 px crop at strength 0.2: it
    gives a median largest flow of 16 px and a worst of 1632 px; this fit gives 7 px and 13 px.

    Args:
        centers: ``(B, N, 2)`` control points ``(x, y)``, any frame, pairwise distinct, not all
            collinear.
        targets: ``(B, N, 2)`` where ``f`` must send them, same frame.

    Returns:
        ``(kernel_weights (B, N, 2), affine_weights (B, 3, 2))`` in kornia's layout (affine rows:
        constant, x, y; columns: the x and y outputs).
    """
    batch, count, _ = centers.shape
    squared = (centers[:, :, None, :] - centers[:, None, :, :]).square().sum(dim=-1)
    ones = torch.ones((batch, count, 1), dtype=centers.dtype, device=centers.device)
    affine_basis = torch.cat((ones, centers), dim=-1)
    zeros = torch.zeros((batch, 3, 3), dtype=centers.dtype, device=centers.device)
    system = torch.cat(
        (
            torch.cat((_tps_kernel(squared), affine_basis), dim=-1),
            torch.cat((affine_basis.transpose(1, 2), zeros), dim=-1),
        ),
        dim=1,
    )
    rhs = torch.cat((targets, zeros[:, :, :2]), dim=1)
    weights = torch.linalg.solve(system, rhs)
    return weights[:, :count], weights[:, count:]


def _random_tps(
    batch: int, num_points: int, strength: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random TPS splines (float64, on the generator's device) from the warped crop's normalised
    coordinates to the original's: the regular control grid goes to the grid plus normal noise.
    Returns ``(kernel_centers, kernel_weights, affine_weights)`` for kornia's TPS warps."""
    if num_points < 2:
        raise ValueError(f"num_points must be >= 2 (control points per side), got {num_points}")
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    device = generator.device
    ramp = torch.linspace(-1.0, 1.0, num_points, dtype=torch.float64, device=device)
    grid_y, grid_x = torch.meshgrid(ramp, ramp, indexing="ij")
    control = torch.stack((grid_x, grid_y), dim=-1).reshape(1, -1, 2).expand(batch, -1, -1)
    noise = torch.randn(
        (batch, num_points * num_points, 2), generator=generator, dtype=torch.float64, device=device
    )
    kernel_weights, affine_weights = fit_tps(control, control + strength * noise)
    return control, kernel_weights, affine_weights


def _tps_flow(
    size: int, tps: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate a fitted TPS on the pixel centres of a ``size x size`` crop: flow (float32 pixels)
    and the inside mask."""
    kernel_centers, kernel_weights, affine_weights = tps
    batch = kernel_centers.shape[0]
    coords = create_meshgrid(
        size,
        size,
        normalized_coordinates=True,
        device=kernel_centers.device,
        dtype=torch.float64,
        align_corners=False,
    ).reshape(1, -1, 2)
    mapped = warp_points_tps(
        coords.expand(batch, -1, -1), kernel_centers, kernel_weights, affine_weights
    )
    # Normalised (align_corners=False) to pixels: x = ((x_n + 1) * size - 1) / 2, so a normalised
    # difference scales by size / 2.
    flow = ((mapped - coords) * (size / 2.0)).reshape(batch, size, size, 2)
    target = cell_grid(size, size, flow.device, flow.dtype) + flow
    inside = _inside(target, size, size)
    return flow.float(), inside


def random_tps_flow(
    batch: int,
    size: int,
    generator: torch.Generator,
    num_points: int = 4,
    strength: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows of random TPS warps of ``size x size`` crops (see :func:`apply_tps` for the images).

    The spline moves a ``num_points x num_points`` grid of control points spanning the crop (its
    outer pixel edges, normalised ``[-1, 1]``) by independent normal offsets of standard
    deviation ``strength`` in normalised units (1.0 = half the crop side), and interpolates the
    rest. Deterministic given the generator's state (which it advances); computed on the
    generator's device.

    Args:
        batch: number of independent warps ``B``.
        size: crop side ``S`` in pixels.
        generator: the source of randomness.
        num_points: control points **per side** (16 control points for the default 4).
        strength: offset standard deviation, normalised units; 0 gives the identity.

    Returns:
        ``(flow, valid)``: ``flow`` ``(B, S, S, 2)`` float32 pixels (channel 0 = x) from the
        warped crop A to the original B, ``A(p) = B(p + flow(p))``; ``valid`` ``(B, S, S)`` bool,
        True where ``p + flow(p)`` is inside ``[0, S - 1]^2`` (up to :data:`INSIDE_TOLERANCE`).

    Raises:
        ValueError: on ``num_points < 2`` or a negative strength.
    """
    return _tps_flow(size, _random_tps(batch, num_points, strength, generator))


def apply_tps(
    images: torch.Tensor,
    generator: torch.Generator,
    strength: float = 0.1,
    num_points: int = 4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp crops by random TPS warps and return the A-to-B flow (A = warped, B = ``images``).

    Draws the same warps as :func:`random_tps_flow` for the same generator state. The images are
    warped by kornia's :func:`~kornia.geometry.transform.warp_image_tps` (bilinear,
    ``align_corners=False``, border padding), so ``warped[..., p] == images[..., p + flow(p)]``
    sampled bilinearly (positions clamped to the crop), to float32 round-off.

    Args:
        images: ``(B, C, S, S)`` float crops (C = 3 for RGB; any C works).
        generator: the source of randomness (its device may differ from ``images``').
        strength: control point offset standard deviation, normalised units (see
            :func:`random_tps_flow`).
        num_points: control points per side.

    Returns:
        ``(warped, flow, valid)``: ``warped`` like ``images``; ``flow`` ``(B, S, S, 2)`` float32
        pixels on ``images``' device; ``valid`` ``(B, S, S)`` bool, ``p + flow(p)`` inside the crop.

    Raises:
        ValueError: on non-square or non-4-D images, ``num_points < 2`` or a negative strength.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must have shape (B, C, S, S), got {tuple(images.shape)}")
    batch, size = images.shape[0], images.shape[-1]
    tps = _random_tps(batch, num_points, strength, generator)
    flow, valid = _tps_flow(size, tps)
    centers, kernel_weights, affine_weights = (
        t.to(device=images.device, dtype=images.dtype) for t in tps
    )
    warped = warp_image_tps(
        images, centers, kernel_weights, affine_weights, align_corners=False, padding_mode="border"
    )
    return warped, flow.to(images.device), valid.to(images.device)
