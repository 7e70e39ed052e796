"""Dense-correspondence accuracy: the ratio of points within 5, 10 and 20 cm on the body surface.

Slim DensePose (Neverova et al. 2019, sec. 5.1) and DensePose (Güler et al. 2018) score a model
by its predictions at the annotated points: for every ground-truth point ``(I, U, V)`` at an image
position, the model's surface point ``(I', U', V')`` predicted at that position is compared with
the annotated one by their geodesic distance on the body surface; the score is the percentage of
points within 5, 10 and 20 cm. A point predicted as background (``I' = 0``) is infinitely far.

This module holds the two pure pieces around a distance function:

* :func:`predictions_at_points` reads ``(I', U', V')`` from the network's output maps at the
  annotated points;
* :func:`ratio_within` turns distances into the percentages.

The distance itself is :func:`dptrack_pipeline.train.geodesic.surface_distances_cm` (SMPL
geodesics of the official DensePose evaluation, for real data) or
:meth:`dptrack_pipeline.train.synth_surface.SynthSurface.distance_cm` (synthetic bodies).

**Sampling.** Output maps have stride ``s`` over the ``S``-pixel crop: map cell ``(i, j)`` covers
crop pixels ``[j s, (j + 1) s) x [i s, (i + 1) s)``, so its centre is crop pixel
``(j s + (s - 1) / 2, i s + (s - 1) / 2)`` (pixel centres on integers), the convention of
:func:`dptrack_pipeline.train.losses.sample_at_points`, which reads the points, so the metric sees
the maps exactly where the losses supervise them. A point is read by bilinear interpolation of
all channels (the border value beyond the outermost cell centres), like DensePose's bilinear
upsampling of its outputs to the box before reading the points: the part is the argmax of the
interpolated 25 fine-part logits (channel 0 = background), and ``U', V'`` are the interpolated
``U, V`` channels of that part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dptrack_pipeline.train.losses import sample_at_points

NUM_FINE_PARTS = 25
"""Fine part channels: background 0 and the DensePose surface parts 1..24."""

THRESHOLDS_CM: tuple[float, ...] = (5.0, 10.0, 20.0)
"""The Slim DensePose / DensePose distance thresholds."""


def _to_numpy(values: object) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def ratio_within(
    distances_cm: object, thresholds_cm: Sequence[float] = THRESHOLDS_CM
) -> dict[str, float]:
    """Percentage of points whose surface distance is at most each threshold.

    Args:
        distances_cm: distances in centimetres, any shape (numpy array, tensor or sequence);
            ``inf`` counts as a miss (e.g. a point predicted as background) and ``nan`` is not
            scored (e.g. a ground-truth point without a surface vertex). Distances in metres
            must be multiplied by 100 first.
        thresholds_cm: thresholds in centimetres.

    Returns:
        ``{"within_5cm": ..., "within_10cm": ..., "within_20cm": ..., "num_points": n}``: one key
        ``f"within_{t:g}cm"`` per threshold, percentages in ``[0, 100]`` (``nan`` when no point
        is scored), and ``num_points`` the number of points scored (as a float).

    Example:
        >>> ratio_within([1.0, 7.0, 15.0, float("inf")])
        {'within_5cm': 25.0, 'within_10cm': 50.0, 'within_20cm': 75.0, 'num_points': 4.0}
    """
    distances = _to_numpy(distances_cm).astype(np.float64).reshape(-1)
    scored = distances[~np.isnan(distances)]
    out: dict[str, float] = {}
    for threshold in thresholds_cm:
        key = f"within_{float(threshold):g}cm"
        out[key] = float(100.0 * np.mean(scored <= threshold)) if scored.size else float("nan")
    out["num_points"] = float(scored.size)
    return out


def predictions_at_points(
    part_logits: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    points: torch.Tensor,
    crop_size: int,
    stride: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The predicted surface point ``(I', U', V')`` at each annotated point.

    Args:
        part_logits: ``(B, 25, h, w)`` fine-part logits (channel 0 = background).
        u, v: ``(B, 24, h, w)`` per-patch chart coordinates as the model outputs them (channel
            ``k - 1`` is ``U`` / ``V`` on patch ``k``).
        points: ``(B, P, 2)`` crop-pixel coordinates ``(x, y)``, pixel centres on integers.
            Padding points may hold anything (NaN included): non-finite coordinates are read at
            ``(0, 0)``; mask the results with ``point_I >= 0`` afterwards.
        crop_size: crop side ``S`` in pixels; the maps must be ``S / stride`` on each side.
        stride: crop pixels per map cell.

    Returns:
        ``I'`` ``(B, P)`` int64 in ``0..24``, and ``U'``, ``V'`` ``(B, P)`` in the maps' dtype
        (the chosen part's channel; meaningless where ``I' = 0``).

    Raises:
        ValueError: on shapes that do not fit together (including maps that do not tile the crop
            at ``stride``).
    """
    if part_logits.ndim != 4 or part_logits.shape[1] != NUM_FINE_PARTS:
        raise ValueError(
            f"part_logits must be (B, {NUM_FINE_PARTS}, h, w), got {tuple(part_logits.shape)}"
        )
    uv_shape = (part_logits.shape[0], NUM_FINE_PARTS - 1, *part_logits.shape[2:])
    if tuple(u.shape) != uv_shape or tuple(v.shape) != uv_shape:
        raise ValueError(
            f"u {tuple(u.shape)} and v {tuple(v.shape)} must match part_logits "
            f"{tuple(part_logits.shape)}: expected {uv_shape}, one channel per patch"
        )
    batch = part_logits.shape[0]
    if points.ndim != 3 or points.shape[0] != batch or points.shape[2] != 2:
        raise ValueError(f"points must be ({batch}, P, 2) as (x, y), got {tuple(points.shape)}")
    points = torch.nan_to_num(points, nan=0.0, posinf=0.0, neginf=0.0)
    # A zero channel in front of U and V puts patch k at channel k, like the logits.
    pad = torch.zeros_like(u[:, :1])
    maps = torch.cat([part_logits, pad, u, pad, v], dim=1)
    values = sample_at_points(maps, points, crop_size, stride)  # (B, P, 75)
    logits, u_all, v_all = values.split(NUM_FINE_PARTS, dim=-1)
    parts = logits.argmax(dim=-1)
    index = parts[..., None]
    return parts, u_all.gather(-1, index)[..., 0], v_all.gather(-1, index)[..., 0]
