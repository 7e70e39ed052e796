"""Reading fields at sub-pixel points, and warping images by a flow.

Conventions: pixel centres on integer coordinates, so the value stored at ``field[r, c]`` is the
field's value at ``(x, y) = (c, r)``; point lists are ``(N, 2)`` ``(x, y)`` in pixels; a flow is
``(H, W, 2)`` float32 with channel 0 = x.

:func:`sample_bilinear` is hand-written in vectorised numpy rather than ``cv2.remap`` because it is
the hot path for DensePose points and must be exact: ``remap`` rounds linear-interpolation
coordinates to 1/32 px (``INTER_TAB_SIZE``), which on a rough field changes values noticeably,
and it would need the points reshaped into ``(N, 1)`` float32 maps. The numpy version is exact at
integer points (weights 0 and 1), computes coordinates in float64 and values in float32, and is
shared by the forward-backward check and the propagation of points, so both see the same numbers
(about 0.1 s for the 446k pixels of a Sintel frame). :func:`warp_backward` moves whole images
and :func:`sample_grid` reads a field on a dense grid of points (crop flows, mask grids), where
``cv2.remap``'s speed (15x the numpy version for a 256x256 grid on a 720p flow) matters more than
its 1/32 px rounding (about 1e-3 px on a smooth flow field).
"""

from __future__ import annotations

import cv2
import numpy as np

_INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def _check_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) as (x, y), got {pts.shape}")
    pts = pts.astype(np.float64, copy=False)
    if not np.all(np.isfinite(pts)):
        raise ValueError("points must be finite (found NaN or inf)")
    return pts


def sample_bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinearly interpolate ``field`` at sub-pixel ``points``.

    Points outside the image are **clamped to the border** first: a point at ``(x, y)`` reads the
    field at ``(clip(x, 0, W-1), clip(y, 0, H-1))``, i.e. the nearest border value (OpenCV's
    ``BORDER_REPLICATE``). Callers that must know whether a point was inside use
    :func:`points_inside`.

    Args:
        field: ``(H, W)`` or ``(H, W, C)`` array of any real dtype.
        points: ``(N, 2)`` ``(x, y)`` in pixels, pixel centres on integers; finite.

    Returns:
        ``(N,)`` (for a 2-D field) or ``(N, C)`` float32 values. At integer points the result is
        exactly the stored value (up to float32 rounding of the field).

    Raises:
        ValueError: on wrong shapes, an empty field or non-finite points.

    Example:
        >>> field = np.array([[0.0, 1.0], [2.0, 3.0]])
        >>> sample_bilinear(field, np.array([[0.5, 0.5], [5.0, -1.0]]))
        array([1.5, 1. ], dtype=float32)
    """
    field = np.asarray(field)
    if field.ndim not in (2, 3):
        raise ValueError(f"field must have shape (H, W) or (H, W, C), got {field.shape}")
    height, width = field.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"field is empty: shape {field.shape}")
    pts = _check_points(points)
    # Work on a flat (H*W, C) view: one 1-D gather per corner is the fastest numpy access.
    flat = field.reshape(height * width, -1).astype(np.float32, copy=False)
    x = np.clip(pts[:, 0], 0.0, width - 1)
    y = np.clip(pts[:, 1], 0.0, height - 1)
    # Left/top neighbour (x >= 0, so truncation is floor), kept at most W-2 / H-2 so that the
    # right/bottom neighbour exists; at x = W-1 the right neighbour's weight is then exactly 1.
    x0 = np.minimum(x.astype(np.intp), max(width - 2, 0))
    y0 = np.minimum(y.astype(np.intp), max(height - 2, 0))
    wx = (x - x0).astype(np.float32)[:, None]
    wy = (y - y0).astype(np.float32)[:, None]
    step_x = 1 if width > 1 else 0
    step_y = width if height > 1 else 0
    top_left = y0 * width + x0
    top = flat[top_left] * (1.0 - wx) + flat[top_left + step_x] * wx
    bottom = flat[top_left + step_y] * (1.0 - wx) + flat[top_left + step_y + step_x] * wx
    values = top * (1.0 - wy) + bottom * wy
    return values if field.ndim == 3 else values[:, 0]


def sample_grid(field: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Bilinearly read ``field`` at a dense grid of points with ``cv2.remap`` (fast, 1/32 px).

    Same convention and border clamping as :func:`sample_bilinear` (``BORDER_REPLICATE``), for
    grids such as the pixel centres of a crop; coordinates are rounded to 1/32 px by OpenCV.

    Args:
        field: ``(H, W)`` or ``(H, W, C)`` float32 (other dtypes are converted), ``C <= 4``.
        grid: ``(h, w, 2)`` ``(x, y)`` points in pixels of ``field``.

    Returns:
        ``(h, w)`` or ``(h, w, C)`` float32.
    """
    field = np.asarray(field, dtype=np.float32)
    grid = np.asarray(grid, dtype=np.float32)
    if field.ndim not in (2, 3) or field.shape[0] < 1 or field.shape[1] < 1:
        raise ValueError(f"field must have shape (H, W) or (H, W, C), got {field.shape}")
    if grid.ndim != 3 or grid.shape[2] != 2:
        raise ValueError(f"grid must have shape (h, w, 2) as (x, y), got {grid.shape}")
    # One (h, w, 2) map (CV_32FC2) rather than two split copies: OpenCV reads the same numbers.
    out = cv2.remap(
        np.ascontiguousarray(field),
        np.ascontiguousarray(grid),
        None,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if field.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def points_inside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Whether each point lies inside an image of ``width`` x ``height`` pixels.

    Inside means ``0 <= x <= W-1`` and ``0 <= y <= H-1`` (between the outermost pixel centres).

    Args:
        points: ``(N, 2)`` ``(x, y)`` in pixels. Non-finite points are outside.
        width, height: image size in pixels.

    Returns:
        ``(N,)`` bool.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) as (x, y), got {pts.shape}")
    x, y = pts[:, 0], pts[:, 1]
    with np.errstate(invalid="ignore"):
        return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def check_flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    """Validate an ``(H, W, 2)`` flow field and return it as float32.

    Raises:
        ValueError: when the shape is not ``(H, W, 2)`` or the field is empty.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{name} must have shape (H, W, 2), got {flow.shape}")
    if flow.shape[0] < 1 or flow.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {flow.shape}")
    return flow.astype(np.float32, copy=False)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """``(H, W, 2)`` float32 grid of pixel-centre coordinates: ``grid[r, c] = (c, r)``."""
    xs, ys = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32), indexing="xy"
    )
    return np.stack([xs, ys], axis=-1)


def warp_backward(
    image: np.ndarray,
    flow: np.ndarray,
    interpolation: str = "linear",
    border_value: float = 0,
) -> np.ndarray:
    """Backward-warp ``image`` by ``flow``: ``output[r, c] = image at (c, r) + flow[r, c]``.

    Typical use: with the flow from frame A to frame B, ``warp_backward(image_B, flow_AB)`` brings
    frame B's content into frame A's pixel grid. Uses ``cv2.remap`` with ``BORDER_CONSTANT``:
    samples that fall outside ``image`` take ``border_value`` (with ``"linear"``, pixels within one
    pixel of the border blend towards it).

    Args:
        image: ``(H', W')`` or ``(H', W', C)``; dtype uint8, uint16, int16, float32 or float64
            (plus int32 with ``"nearest"``) — what ``cv2.remap`` supports. Need not have the
            flow's size.
        flow: ``(H, W, 2)`` flow in pixels, channel 0 = x; sets the output size.
        interpolation: ``"linear"`` for images, ``"nearest"`` for label maps (part indices,
            masks), which must not be blended. OpenCV rounds half-way coordinates to even.
        border_value: value of samples outside ``image``.

    Returns:
        ``(H, W)`` or ``(H, W, C)`` array of ``image``'s dtype.

    Raises:
        ValueError: on bad shapes, an unknown interpolation or a dtype remap cannot handle.
    """
    flow = check_flow(flow)
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}"
        )
    supported = {np.uint8, np.uint16, np.int16, np.float32, np.float64}
    if interpolation == "nearest":
        supported.add(np.int32)
    if image.dtype.type not in supported:
        names = sorted(np.dtype(t).name for t in supported)
        raise ValueError(
            f"cv2.remap with {interpolation!r} supports dtypes {names}, got {image.dtype}"
        )
    height, width = flow.shape[:2]
    map_x = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0]
    map_y = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1]
    channels = image.shape[2] if image.ndim == 3 else 1
    warped = cv2.remap(
        np.ascontiguousarray(image),
        map_x,
        map_y,
        _INTERPOLATIONS[interpolation],
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * min(channels, 4),
    )
    if image.ndim == 3 and warped.ndim == 2:  # remap drops a trailing channel axis of size 1
        warped = warped[:, :, None]
    return warped
