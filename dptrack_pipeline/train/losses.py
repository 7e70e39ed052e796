"""Losses of the Hourglass DensePose model: parts, UV, and the Siamese equivariance loss.

Pure functions on tensors (no I/O, no model): each takes the maps of one stack and the batch's
labels and returns a scalar; the trainer sums them over stacks (intermediate supervision), see
:mod:`.objective`, where the terms are weighted (``TrainConfig.losses`` selects the supervised
terms, ``TrainConfig.equivariance_weight`` weights the equivariance term).

Conventions (those of :mod:`dptrack_pipeline.train`):

* Maps are ``(B, C, h, w)`` at output stride ``s`` of an ``S x S`` crop, ``S = s * h = s * w``.
  Map cell ``j`` covers crop pixels ``[j * s, (j + 1) * s)``; its centre is at crop coordinate
  ``j * s + (s - 1) / 2`` (crop pixel centres on integers), so crop coordinate ``x`` is grid
  coordinate ``(x - (s - 1) / 2) / s``.
* Points ``(B, P, 2)`` float crop coordinates ``(x, y)``; ``point_I`` ``(B, P)`` int64 fine part
  0..24 with ``-1`` for padding; ``point_U``, ``point_V`` ``(B, P)`` in ``[0, 1]``. Padded entries
  may hold anything (NaN included): they are replaced before any arithmetic, so they never reach
  a value or a gradient.
* Dense coarse masks ``(B, S, S)`` int64, 0..14, ``-1`` = unknown.
* Flows ``(B, S, S, 2)`` from crop A to crop B in crop pixels (channel 0 = x), with
  ``flow_valid`` ``(B, S, S)`` bool.

Every loss is a mean over its valid elements (points or cells) across the whole batch, and is an
exact zero *connected to the graph* (``maps.sum() * 0`` in effect) when there are none, so a
batch without labels of one kind still backpropagates. Computing the mean as a masked sum over a
clamped count needs no host synchronisation on a GPU.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART
from dptrack_pipeline.train.warps import sample_at_cells, warp_by_flow

UV_SMOOTH_L1_BETA = 0.1
"""Smooth-L1 transition of :func:`uv_loss`: quadratic below 0.1 (a tenth of the UV range), so
small UV errors are not flattened by a square while large ones get an L1 gradient."""

_VALID_FRACTION = 1.0 - 1e-6


def _stride_of(maps: torch.Tensor, crop_size: int, name: str) -> int:
    """The output stride ``s`` with ``crop_size == s * h == s * w``; ValueError otherwise."""
    height, width = maps.shape[-2:]
    stride = crop_size // height if height else 0
    if stride < 1 or stride * height != crop_size or stride * width != crop_size:
        raise ValueError(
            f"{name} of {height}x{width} cells does not tile a {crop_size} px crop "
            "(need crop_size = stride * h = stride * w)"
        )
    return stride


def _check_points(points: torch.Tensor, point_I: torch.Tensor, batch: int) -> None:
    if points.ndim != 3 or points.shape[0] != batch or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (B={batch}, P, 2), got {tuple(points.shape)}")
    if tuple(point_I.shape) != tuple(points.shape[:2]):
        raise ValueError(
            f"point_I must have shape (B, P) = {tuple(points.shape[:2])}, "
            f"got {tuple(point_I.shape)}"
        )


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``valid`` (same shape); 0 connected to the graph when none."""
    total = torch.where(valid, values, torch.zeros_like(values)).sum()
    return total / valid.sum().clamp(min=1).to(values.dtype)


def sample_at_points(
    maps: torch.Tensor, points: torch.Tensor, crop_size: int, stride: int
) -> torch.Tensor:
    """Bilinearly sample maps at crop coordinates.

    Crop coordinate ``x`` is read at grid coordinate ``(x - (stride - 1) / 2) / stride`` (cell
    centres, see the module docstring), i.e. ``grid_sample(align_corners=False)`` at the
    normalised ``(2 x + 1) / crop_size - 1``; points beyond the outermost cell centres read the
    border value. Differentiable in ``maps``.

    Args:
        maps: ``(B, C, h, w)`` float, with ``crop_size = stride * h = stride * w``.
        points: ``(B, P, 2)`` float crop coordinates ``(x, y)``, finite.
        crop_size: crop side ``S`` in pixels.
        stride: output stride of ``maps``.

    Returns:
        ``(B, P, C)`` values.

    Raises:
        ValueError: on wrong shapes or a stride that does not tile the crop.
    """
    if maps.ndim != 4:
        raise ValueError(f"maps must have shape (B, C, h, w), got {tuple(maps.shape)}")
    if points.ndim != 3 or points.shape[0] != maps.shape[0] or points.shape[-1] != 2:
        raise ValueError(
            f"points must have shape (B={maps.shape[0]}, P, 2), got {tuple(points.shape)}"
        )
    if _stride_of(maps, crop_size, "maps") != stride:
        raise ValueError(
            f"maps of {tuple(maps.shape[-2:])} cells have stride {crop_size // maps.shape[-2]} "
            f"on a {crop_size} px crop, not {stride}"
        )
    cells = (points - (stride - 1) / 2.0) / stride
    return sample_at_cells(maps, cells[:, :, None, :])[..., 0].transpose(1, 2)


def part_ce_sparse(
    part_logits: torch.Tensor,
    points: torch.Tensor,
    point_I: torch.Tensor,
    crop_size: int,
    stride: int,
) -> torch.Tensor:
    """Cross-entropy of the fine part scores at annotated points.

    The logits are sampled bilinearly at each point (:func:`sample_at_points`) and scored against
    ``point_I``, background (0) included. Points with ``point_I < 0`` (padding) are ignored.

    Args:
        part_logits: ``(B, K, h, w)`` unnormalised scores (K = 25).
        points: ``(B, P, 2)`` crop coordinates.
        point_I: ``(B, P)`` int64 in ``0..K-1``, or ``-1`` (ignored).
        crop_size: crop side ``S``.
        stride: output stride, ``S = stride * h``.

    Returns:
        Scalar: mean over the valid points of the batch; 0 (with a graph) when there are none.
    """
    _check_points(points, point_I, part_logits.shape[0])
    valid = point_I >= 0
    safe_points = torch.where(valid[..., None], points, torch.zeros_like(points))
    logits = sample_at_points(part_logits, safe_points, crop_size, stride)
    target = torch.where(valid, point_I, torch.full_like(point_I, -1))
    per_point = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-1, reduction="none"
    )
    return _masked_mean(per_point, valid.reshape(-1))


def coarse_log_probs(part_logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the 15 coarse mask parts from the 25 fine part scores.

    ``log p(coarse = k) = logsumexp_{i : SURFACE_TO_MASK_PART[i] = k} log_softmax(logits)_i``
    (fine 0 = coarse 0 = background); exact, since a coarse part is a disjoint union of fine ones.

    Args:
        part_logits: ``(B, 25, h, w)``.

    Returns:
        ``(B, 15, h, w)`` log-probabilities (``logsumexp`` over channels is 0).

    Raises:
        ValueError: if there are not 25 fine parts.
    """
    fine_to_coarse = SURFACE_TO_MASK_PART.tolist()
    if part_logits.ndim != 4 or part_logits.shape[1] != len(fine_to_coarse):
        raise ValueError(
            f"part_logits must have shape (B, {len(fine_to_coarse)}, h, w), "
            f"got {tuple(part_logits.shape)}"
        )
    log_probs = F.log_softmax(part_logits, dim=1)
    groups = [
        [fine for fine, coarse in enumerate(fine_to_coarse) if coarse == k]
        for k in range(max(fine_to_coarse) + 1)
    ]
    return torch.cat(
        [torch.logsumexp(log_probs[:, group], dim=1, keepdim=True) for group in groups], dim=1
    )


def part_ce_dense(part_logits: torch.Tensor, part_mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the dense coarse part masks under the fine part scores.

    The fine scores become coarse log-probabilities (:func:`coarse_log_probs`) and the mask is
    brought down to the logit grid by **nearest sampling at cell centres**: cell ``j`` reads mask
    pixel ``j * s + s // 2`` (the centre ``j * s + (s - 1) / 2`` itself for odd ``s``, the pixel
    just after it for even ``s``). Downsampling the labels rather than upsampling the logits keeps
    the loss at the model's resolution and costs nothing. Cells whose label is ``< 0`` are ignored.

    Args:
        part_logits: ``(B, 25, h, w)``.
        part_mask: ``(B, S, S)`` int64, 0..14 or ``-1``, with ``S = s * h``.

    Returns:
        Scalar: mean over the valid cells of the batch; 0 (with a graph) when there are none.

    Raises:
        ValueError: on wrong shapes.
    """
    if part_mask.ndim != 3 or part_mask.shape[0] != part_logits.shape[0]:
        raise ValueError(
            f"part_mask must have shape (B={part_logits.shape[0]}, S, S), "
            f"got {tuple(part_mask.shape)}"
        )
    if part_mask.shape[1] != part_mask.shape[2]:
        raise ValueError(f"part_mask must be square, got {tuple(part_mask.shape)}")
    log_probs = coarse_log_probs(part_logits)
    stride = _stride_of(part_logits, part_mask.shape[1], "part_logits")
    target = part_mask[:, stride // 2 :: stride, stride // 2 :: stride]
    valid = target >= 0
    target = torch.where(valid, target, torch.full_like(target, -1))
    per_cell = F.nll_loss(log_probs, target, ignore_index=-1, reduction="none")
    return _masked_mean(per_cell, valid)


def uv_loss(
    u: torch.Tensor,
    v: torch.Tensor,
    points: torch.Tensor,
    point_I: torch.Tensor,
    point_U: torch.Tensor,
    point_V: torch.Tensor,
    crop_size: int,
    stride: int,
    beta: float = UV_SMOOTH_L1_BETA,
) -> torch.Tensor:
    """Smooth-L1 error of the predicted UV of the annotated patch at annotated points.

    At each point the ``u`` and ``v`` maps are sampled bilinearly and channel ``I - 1`` (the
    ground-truth patch) is compared with ``(U, V)``; the other patches' channels get no gradient.
    Points with ``point_I <= 0`` (background, which has no UV, and padding) are ignored.

    Args:
        u: ``(B, K - 1, h, w)`` predicted U per patch (K - 1 = 24).
        v: ``(B, K - 1, h, w)`` predicted V per patch.
        points: ``(B, P, 2)`` crop coordinates.
        point_I: ``(B, P)`` int64 patch, 1..K-1 for points that count.
        point_U: ``(B, P)`` float truth in ``[0, 1]``.
        point_V: ``(B, P)`` float truth in ``[0, 1]``.
        crop_size: crop side ``S``.
        stride: output stride.
        beta: smooth-L1 transition point (:data:`UV_SMOOTH_L1_BETA`).

    Returns:
        Scalar: per point, the U term plus the V term; mean over the valid points of the batch;
        0 (with a graph) when there are none.

    Raises:
        ValueError: on wrong shapes.
    """
    _check_points(points, point_I, u.shape[0])
    if u.shape != v.shape:
        raise ValueError(
            f"u and v must have the same shape, got {tuple(u.shape)}, {tuple(v.shape)}"
        )
    for name, values in (("point_U", point_U), ("point_V", point_V)):
        if values.shape != point_I.shape:
            raise ValueError(
                f"{name} must have shape (B, P) = {tuple(point_I.shape)}, got {tuple(values.shape)}"
            )
    valid = point_I >= 1
    safe_points = torch.where(valid[..., None], points, torch.zeros_like(points))
    channel = torch.where(valid, point_I - 1, torch.zeros_like(point_I))[..., None]
    per_point = torch.zeros_like(point_U, dtype=u.dtype)
    for maps, truth in ((u, point_U), (v, point_V)):
        predicted = sample_at_points(maps, safe_points, crop_size, stride).gather(2, channel)[
            ..., 0
        ]
        safe_truth = torch.where(valid, truth.to(u.dtype), torch.zeros_like(predicted))
        per_point = per_point + F.smooth_l1_loss(predicted, safe_truth, beta=beta, reduction="none")
    return _masked_mean(per_point, valid)


def flow_to_grid(
    flow: torch.Tensor, flow_valid: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a crop flow to a map grid at stride ``s = S / h``.

    The flow is read bilinearly at each cell centre (crop coordinate ``j * s + (s - 1) / 2``, which
    is what ``interpolate(mode="bilinear", align_corners=False)`` samples) and divided by ``s``,
    giving cells of the map grid. A cell is valid only where **every** crop pixel that the
    bilinear read touches is valid (so no invalid flow leaks in); invalid or non-finite flow
    values are zeroed first.

    Args:
        flow: ``(B, S, S, 2)`` float A-to-B flow in crop pixels (channel 0 = x).
        flow_valid: ``(B, S, S)`` bool.
        height: map height ``h``, with ``S = s * h``.
        width: map width ``w``, with ``S = s * w``.

    Returns:
        ``(flow_on_grid (B, h, w, 2) in cells, valid (B, h, w) bool)``.
    """
    if flow.ndim != 4 or flow.shape[-1] != 2 or flow.shape[1] != flow.shape[2]:
        raise ValueError(f"flow must have shape (B, S, S, 2), got {tuple(flow.shape)}")
    stride = flow.shape[1] // height
    if stride < 1 or stride * height != flow.shape[1] or stride * width != flow.shape[2]:
        raise ValueError(f"a {flow.shape[1]} px flow does not tile a {height}x{width} grid")
    usable = flow_valid & torch.isfinite(flow).all(dim=-1)
    clean = torch.where(usable[..., None], flow, torch.zeros_like(flow))
    size = (height, width)
    flow_cells = F.interpolate(
        clean.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False
    )
    valid_fraction = F.interpolate(
        usable[:, None].to(flow.dtype), size=size, mode="bilinear", align_corners=False
    )
    return (flow_cells / stride).permute(0, 2, 3, 1), valid_fraction[:, 0] >= _VALID_FRACTION


def equivariance_loss(
    feat_a: torch.Tensor,
    feat_b: torch.Tensor,
    flow: torch.Tensor,
    flow_valid: torch.Tensor,
    crop_size: int,
    stop_gradient_target: bool = False,
) -> torch.Tensor:
    """Slim DensePose's equivariance loss ``L_cos = 1 - cos(Psi(A), Psi_g(B))`` (Sec. 3.2.2).

    For each cell ``p`` of A's map, B's features are read bilinearly at ``p + g(p)``, where ``g``
    is the crop flow resampled to the feature grid (:func:`flow_to_grid`); the loss is one minus
    the cosine similarity of the two ``C``-vectors. A cell counts when its flow is valid
    (:func:`flow_to_grid`) and ``p + g(p)`` lies inside B's map
    (:func:`~dptrack_pipeline.train.warps.warp_by_flow`).

    Gradients flow into **both** branches by default (the paper's Siamese configuration: the same
    network produced both tensors); ``stop_gradient_target=True`` detaches ``feat_b`` so only A's
    branch is pulled towards the warped B.

    Args:
        feat_a: ``(B, C, h, w)`` features of crop A (any level of
            :func:`dptrack_pipeline.train.model.feature_level`).
        feat_b: ``(B, C, h, w)`` features of crop B at the same level.
        flow: ``(B, S, S, 2)`` float A-to-B flow in crop pixels, ``S = crop_size = s * h``.
        flow_valid: ``(B, S, S)`` bool.
        crop_size: crop side ``S``.
        stop_gradient_target: detach ``feat_b``.

    Returns:
        Scalar in ``[0, 2]``: mean over the valid cells of the batch; 0 (with a graph) when none.

    Raises:
        ValueError: on wrong shapes.
    """
    if feat_a.ndim != 4 or feat_a.shape != feat_b.shape:
        raise ValueError(
            "feat_a and feat_b must have the same shape (B, C, h, w), got "
            f"{tuple(feat_a.shape)} and {tuple(feat_b.shape)}"
        )
    batch, _, height, width = feat_a.shape
    if tuple(flow.shape) != (batch, crop_size, crop_size, 2):
        raise ValueError(
            f"flow must have shape (B, S, S, 2) = {(batch, crop_size, crop_size, 2)}, "
            f"got {tuple(flow.shape)}"
        )
    if tuple(flow_valid.shape) != (batch, crop_size, crop_size):
        raise ValueError(
            f"flow_valid must have shape (B, S, S) = {(batch, crop_size, crop_size)}, "
            f"got {tuple(flow_valid.shape)}"
        )
    _stride_of(feat_a, crop_size, "feat_a")
    flow_on_grid, valid = flow_to_grid(flow.to(feat_a.dtype), flow_valid, height, width)
    target = feat_b.detach() if stop_gradient_target else feat_b
    warped, inside = warp_by_flow(target, flow_on_grid)
    cosine = F.cosine_similarity(feat_a, warped, dim=1, eps=1e-8)
    return _masked_mean(1.0 - cosine, valid & inside)
