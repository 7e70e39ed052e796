"""Losses: point sampling convention, zeros where they must be, ignores, gradients, empty cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART
from dptrack_pipeline.train.losses import (
    coarse_log_probs,
    equivariance_loss,
    flow_to_grid,
    part_ce_dense,
    part_ce_sparse,
    sample_at_points,
    uv_loss,
)

CROP = 32


def _cell_centre(j: torch.Tensor | int, stride: int) -> torch.Tensor | float:
    return j * stride + (stride - 1) / 2.0


def _crop_to_grid(x: float, stride: int) -> float:
    """Crop coordinate -> map grid coordinate: cell ``j``'s centre is at ``j * s + (s - 1) / 2``."""
    return (x - (stride - 1) / 2.0) / stride


def _points_on_cells(
    batch: int, count: int, stride: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random cell indices ``(B, P, 2)`` (col, row) and the crop coordinates of their centres."""
    cells = torch.randint(0, CROP // stride, (batch, count, 2), generator=gen)
    return cells, _cell_centre(cells.float(), stride)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_sample_at_points_matches_direct_formula(stride: int, reference_bilinear) -> None:
    gen = torch.Generator().manual_seed(stride)
    side = CROP // stride
    maps = torch.rand(2, 3, side, side, generator=gen)
    points = torch.rand(2, 40, 2, generator=gen) * (CROP + 6) - 3  # some beyond the crop
    points[0, 0] = torch.tensor([0.0, 0.0])
    points[0, 1] = torch.tensor([CROP - 1.0, CROP - 1.0])
    sampled = sample_at_points(maps, points, CROP, stride)
    assert sampled.shape == (2, 40, 3)
    for b in range(2):
        field = maps[b].permute(1, 2, 0).numpy()
        for p in range(40):
            x, y = points[b, p].tolist()
            expected = reference_bilinear(field, _crop_to_grid(x, stride), _crop_to_grid(y, stride))
            np.testing.assert_allclose(sampled[b, p].numpy(), expected, atol=1e-5)


def test_sample_at_points_reads_cell_values_at_cell_centres() -> None:
    stride = 4
    maps = torch.rand(1, 2, 8, 8)
    cells, points = _points_on_cells(1, 10, stride, torch.Generator().manual_seed(0))
    sampled = sample_at_points(maps, points, CROP, stride)
    expected = maps[0, :, cells[0, :, 1], cells[0, :, 0]].T
    assert torch.allclose(sampled[0], expected, atol=1e-6)


def test_sample_at_points_rejects_inconsistent_stride() -> None:
    with pytest.raises(ValueError):
        sample_at_points(torch.rand(1, 2, 8, 8), torch.zeros(1, 3, 2), CROP, 2)
    with pytest.raises(ValueError):
        sample_at_points(torch.rand(1, 2, 8, 8), torch.zeros(1, 3, 2), 30, 4)


# ---- part_ce_sparse ---------------------------------------------------------------------------


def _confident_logits(classes: torch.Tensor, num: int = 25) -> torch.Tensor:
    """``(B, h, w)`` classes -> ``(B, num, h, w)`` logits, +50 at the class, 0 elsewhere."""
    return 50.0 * torch.nn.functional.one_hot(classes, num).permute(0, 3, 1, 2).float()


def test_part_ce_sparse_near_zero_for_confident_right_logits_and_ignores_padding() -> None:
    stride = 4
    gen = torch.Generator().manual_seed(1)
    classes = torch.randint(0, 25, (2, 8, 8), generator=gen)
    logits = _confident_logits(classes).requires_grad_(True)
    cells, points = _points_on_cells(2, 12, stride, gen)
    point_I = classes[torch.arange(2)[:, None], cells[..., 1], cells[..., 0]]
    point_I[1, 6:] = -1  # padding, with garbage coordinates
    points[1, 6:] = float("nan")
    loss = part_ce_sparse(logits, points, point_I, CROP, stride)
    assert 0 <= loss.item() < 1e-6
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    # A wrong class at one point is penalised.
    wrong = point_I.clone()
    wrong[0, 0] = (wrong[0, 0] + 1) % 25
    assert part_ce_sparse(logits, points, wrong, CROP, stride).item() > 1.0


def test_part_ce_sparse_has_gradients_and_mean_over_valid_points() -> None:
    stride = 2
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 25, 16, 16, generator=gen, requires_grad=True)
    cells, points = _points_on_cells(2, 5, stride, gen)
    point_I = torch.randint(0, 25, (2, 5), generator=gen)
    loss = part_ce_sparse(logits, points, point_I, CROP, stride)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    sampled = logits.detach()[
        torch.arange(2)[:, None], :, cells[..., 1], cells[..., 0]
    ]  # (B, P, 25)
    expected = torch.nn.functional.cross_entropy(sampled.reshape(-1, 25), point_I.reshape(-1))
    assert torch.allclose(loss, expected, atol=1e-5)
    # Padding points do not change the mean.
    padded_I = torch.cat((point_I, torch.full((2, 3), -1)), dim=1)
    padded_points = torch.cat((points, torch.full((2, 3, 2), 1e6)), dim=1)
    assert torch.allclose(part_ce_sparse(logits, padded_points, padded_I, CROP, stride), loss)


def test_part_ce_sparse_empty_is_zero_with_grad() -> None:
    logits = torch.randn(2, 25, 8, 8, requires_grad=True)
    point_I = torch.full((2, 4), -1)
    loss = part_ce_sparse(logits, torch.full((2, 4, 2), float("nan")), point_I, CROP, 4)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    no_points = part_ce_sparse(
        logits, torch.zeros(2, 0, 2), torch.zeros(2, 0, dtype=torch.long), CROP, 4
    )
    assert no_points.item() == 0.0 and no_points.requires_grad


# ---- part_ce_dense ----------------------------------------------------------------------------


def test_coarse_log_probs_sum_fine_probabilities() -> None:
    logits = torch.randn(2, 25, 4, 4)
    coarse = coarse_log_probs(logits)
    assert coarse.shape == (2, 15, 4, 4)
    assert torch.allclose(coarse.logsumexp(dim=1), torch.zeros(2, 4, 4), atol=1e-5)
    probs = logits.softmax(dim=1)
    for k in range(15):
        members = [i for i in range(25) if SURFACE_TO_MASK_PART[i] == k]
        assert torch.allclose(coarse[:, k].exp(), probs[:, members].sum(dim=1), atol=1e-6)


def test_part_ce_dense_near_zero_for_perfect_logits_and_ignores_unknown() -> None:
    stride = 4
    gen = torch.Generator().manual_seed(3)
    coarse = torch.randint(0, 15, (2, 8, 8), generator=gen)
    # A fine part of each coarse part (the first one listed).
    first_fine = torch.tensor(
        [int(np.flatnonzero(SURFACE_TO_MASK_PART == k)[0]) for k in range(15)]
    )
    logits = _confident_logits(first_fine[coarse]).requires_grad_(True)
    mask = coarse.repeat_interleave(stride, 1).repeat_interleave(stride, 2)
    mask[1, :16] = -1  # unknown: rows 0..3 of the cells
    loss = part_ce_dense(logits, mask)
    assert 0 <= loss.item() < 1e-6
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    # Scrambling logits where the mask is unknown changes nothing.
    scrambled = logits.detach().clone()
    scrambled[1, :, :4] = torch.randn(25, 4, 8, generator=gen)
    assert part_ce_dense(scrambled, mask).item() < 1e-6
    scrambled[0, :, 0, 0] = torch.randn(25, generator=gen)  # a labelled cell: now it counts
    assert part_ce_dense(scrambled, mask).item() > 0


def test_part_ce_dense_reads_the_mask_at_cell_centres() -> None:
    """Only mask pixel ``j * s + s // 2`` of each block matters."""
    stride = 4
    logits = torch.randn(1, 25, 8, 8)
    mask = torch.randint(0, 15, (1, CROP, CROP))
    base = part_ce_dense(logits, mask)
    other = mask.clone()
    keep = torch.zeros(CROP, dtype=torch.bool)
    keep[stride // 2 :: stride] = True
    off_centre = ~(keep[:, None] & keep[None, :])
    other[0][off_centre] = -1
    assert torch.allclose(part_ce_dense(logits, other), base)


def test_part_ce_dense_gradients_and_empty() -> None:
    logits = torch.randn(2, 25, 8, 8, requires_grad=True)
    mask = torch.randint(0, 15, (2, CROP, CROP))
    part_ce_dense(logits, mask).backward()
    assert logits.grad.abs().sum() > 0
    logits.grad = None
    empty = part_ce_dense(logits, torch.full((2, CROP, CROP), -1))
    assert empty.item() == 0.0 and empty.requires_grad
    empty.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError):
        part_ce_dense(logits, torch.zeros(2, 30, 30, dtype=torch.long))


# ---- uv_loss ----------------------------------------------------------------------------------


def test_uv_loss_zero_for_perfect_prediction_and_gradient_only_on_true_patch() -> None:
    stride = 4
    gen = torch.Generator().manual_seed(4)
    u = torch.rand(2, 24, 8, 8, generator=gen).requires_grad_(True)
    v = torch.rand(2, 24, 8, 8, generator=gen).requires_grad_(True)
    cells, points = _points_on_cells(2, 6, stride, gen)
    point_I = torch.randint(1, 25, (2, 6), generator=gen)
    batch = torch.arange(2)[:, None]
    point_U = u.detach()[batch, point_I - 1, cells[..., 1], cells[..., 0]]
    point_V = v.detach()[batch, point_I - 1, cells[..., 1], cells[..., 0]]
    # Background and padding points with garbage truth are ignored.
    point_I = torch.cat((point_I, torch.tensor([[0, -1], [-1, -1]])), dim=1)
    point_U = torch.cat((point_U, torch.full((2, 2), float("nan"))), dim=1)
    point_V = torch.cat((point_V, torch.full((2, 2), 7.0)), dim=1)
    points = torch.cat((points, torch.full((2, 2, 2), float("nan"))), dim=1)
    loss = uv_loss(u, v, points, point_I, point_U, point_V, CROP, stride)
    assert loss.item() < 1e-10
    # Off by 0.5 in U at every point: smooth L1 (beta 0.1) = 0.5 - 0.05 per point.
    shifted = torch.where(point_I >= 1, point_U + 0.5, point_U)
    off = uv_loss(u, v, points, point_I, shifted, point_V, CROP, stride)
    assert off.item() == pytest.approx(0.45, abs=1e-5)
    off.backward()
    assert torch.isfinite(u.grad).all() and torch.isfinite(v.grad).all()
    touched = torch.zeros_like(u, dtype=torch.bool)
    for b in range(2):
        for p in range(6):
            touched[b, point_I[b, p] - 1, cells[b, p, 1], cells[b, p, 0]] = True
    assert (u.grad[touched] != 0).all()
    assert (u.grad[~touched] == 0).all()


def test_uv_loss_empty_is_zero_with_grad() -> None:
    u = torch.rand(1, 24, 8, 8, requires_grad=True)
    v = torch.rand(1, 24, 8, 8, requires_grad=True)
    point_I = torch.tensor([[0, -1, -1]])
    nan = torch.full((1, 3), float("nan"))
    loss = uv_loss(u, v, torch.zeros(1, 3, 2), point_I, nan, nan, CROP, 4)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(u.grad, torch.zeros_like(u))


# ---- equivariance_loss ------------------------------------------------------------------------


def _all_valid(batch: int = 2) -> torch.Tensor:
    return torch.ones(batch, CROP, CROP, dtype=torch.bool)


def test_equivariance_zero_for_identical_features_and_zero_flow() -> None:
    feat = torch.randn(2, 8, 8, 8)
    loss = equivariance_loss(feat, feat.clone(), torch.zeros(2, CROP, CROP, 2), _all_valid(), CROP)
    assert abs(loss.item()) < 1e-6


@pytest.mark.parametrize("stride", [1, 4])
def test_equivariance_zero_for_translation_with_matching_flow(stride: int) -> None:
    side = CROP // stride
    gen = torch.Generator().manual_seed(5)
    feat_a = torch.randn(2, 8, side, side, generator=gen, requires_grad=True)
    shift_x, shift_y = 2, 1  # cells: feat_a(p) == feat_b(p + t)
    feat_b = torch.roll(feat_a.detach(), shifts=(shift_y, shift_x), dims=(2, 3))
    feat_b.requires_grad_(True)
    flow = torch.zeros(2, CROP, CROP, 2)
    flow[..., 0] = shift_x * stride
    flow[..., 1] = shift_y * stride
    loss = equivariance_loss(feat_a, feat_b, flow, _all_valid(), CROP)
    assert abs(loss.item()) < 1e-5
    # A wrong flow (no motion) is far from zero.
    wrong = equivariance_loss(feat_a, feat_b, torch.zeros_like(flow), _all_valid(), CROP)
    assert wrong.item() > 0.5
    wrong.backward()
    assert feat_a.grad.abs().sum() > 0 and feat_b.grad.abs().sum() > 0  # Siamese: both branches


def test_equivariance_stop_gradient_target() -> None:
    feat_a = torch.randn(1, 4, 8, 8, requires_grad=True)
    feat_b = torch.randn(1, 4, 8, 8, requires_grad=True)
    loss = equivariance_loss(
        feat_a, feat_b, torch.zeros(1, CROP, CROP, 2), _all_valid(1), CROP, True
    )
    loss.backward()
    assert feat_a.grad.abs().sum() > 0
    assert feat_b.grad is None


def test_equivariance_ignores_invalid_flow_and_empty_is_zero() -> None:
    feat_a = torch.randn(1, 4, 8, 8, requires_grad=True)
    feat_b = feat_a.detach().clone()
    flow = torch.zeros(1, CROP, CROP, 2)
    valid = _all_valid(1)
    flow[0, :16] = float("nan")  # the top half is invalid and garbage
    valid[0, :16] = False
    loss = equivariance_loss(feat_a, feat_b, flow, valid, CROP)
    assert abs(loss.item()) < 1e-6
    empty = equivariance_loss(feat_a, feat_b, flow, torch.zeros_like(valid), CROP)
    assert empty.item() == 0.0 and empty.requires_grad
    empty.backward()
    assert torch.equal(feat_a.grad, torch.zeros_like(feat_a))
    # Flow sending everything outside the map: nothing valid either.
    far = torch.full((1, CROP, CROP, 2), 100.0)
    assert equivariance_loss(feat_a, feat_b, far, _all_valid(1), CROP).item() == 0.0


def test_flow_to_grid_reads_cell_centres_in_cells() -> None:
    stride = 4
    ramp = torch.arange(float(CROP))
    ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
    flow = torch.stack((0.5 * xs + 3.0, -0.25 * ys), dim=-1)[None]  # linear: exact bilinear
    valid = _all_valid(1)
    # Cell (0, 0)'s centre is crop (1.5, 1.5): its bilinear read touches pixels 1..2 only.
    valid[0, 2, 1] = False
    flow[0, 2, 1] = float("nan")
    on_grid, grid_valid = flow_to_grid(flow, valid, 8, 8)
    assert not grid_valid[0, 0, 0] and grid_valid.sum() == 63
    assert torch.isfinite(on_grid).all()
    centres = _cell_centre(torch.arange(8.0), stride)
    expected_x = (0.5 * centres + 3.0)[None, :].expand(8, 8) / stride
    expected_y = (-0.25 * centres)[:, None].expand(8, 8) / stride
    good = grid_valid[0]
    assert torch.allclose(on_grid[0, ..., 0][good], expected_x[good], atol=1e-5)
    assert torch.allclose(on_grid[0, ..., 1][good], expected_y[good], atol=1e-5)


def test_equivariance_rejects_bad_shapes() -> None:
    feat = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="flow"):
        equivariance_loss(feat, feat, torch.zeros(1, 16, 16, 2), _all_valid(1), CROP)
    with pytest.raises(ValueError, match="same shape"):
        equivariance_loss(
            feat, torch.randn(1, 4, 4, 4), torch.zeros(1, CROP, CROP, 2), _all_valid(1), CROP
        )
    with pytest.raises(ValueError, match="tile"):
        equivariance_loss(
            torch.randn(1, 4, 7, 7),
            torch.randn(1, 4, 7, 7),
            torch.zeros(1, CROP, CROP, 2),
            _all_valid(1),
            CROP,
        )
