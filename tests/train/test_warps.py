"""Flow warps of maps and random TPS warps of crops, against direct sampling references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dptrack_pipeline.flow.sampling import sample_bilinear
from dptrack_pipeline.train.warps import (
    apply_tps,
    cell_grid,
    fit_tps,
    random_tps_flow,
    sample_at_cells,
    warp_by_flow,
)


def test_cell_grid_channel_zero_is_x() -> None:
    grid = cell_grid(3, 5)
    assert grid.shape == (3, 5, 2)
    assert grid[2, 4].tolist() == [4.0, 2.0]


def test_sample_at_cells_exact_on_cell_centres() -> None:
    maps = torch.rand(2, 3, 5, 7)
    xy = cell_grid(5, 7)[None].expand(2, -1, -1, -1)
    assert torch.allclose(sample_at_cells(maps, xy), maps, atol=1e-6)


def test_warp_by_flow_matches_direct_bilinear_formula(reference_bilinear) -> None:
    gen = torch.Generator().manual_seed(3)
    batch, channels, height, width = 2, 3, 6, 9
    feat_b = torch.rand(batch, channels, height, width, generator=gen)
    flow = (torch.rand(batch, height, width, 2, generator=gen) - 0.5) * 8.0  # some land outside
    flow[0, 1, 2] = torch.tensor([float("nan"), 0.0])
    warped, inside = warp_by_flow(feat_b, flow)
    assert warped.shape == feat_b.shape and inside.shape == (batch, height, width)
    for b in range(batch):
        field = feat_b[b].permute(1, 2, 0).numpy()
        for r in range(height):
            for c in range(width):
                fx, fy = flow[b, r, c].tolist()
                if not (math.isfinite(fx) and math.isfinite(fy)):
                    assert not inside[b, r, c]
                    fx = fy = 0.0  # a non-finite flow reads the cell itself
                tx, ty = c + fx, r + fy
                expected = reference_bilinear(field, tx, ty)
                np.testing.assert_allclose(warped[b, :, r, c].numpy(), expected, atol=1e-5)
                if math.isfinite(flow[b, r, c, 0]):
                    in_map = 0 <= tx <= width - 1 and 0 <= ty <= height - 1
                    assert bool(inside[b, r, c]) == in_map


def test_warp_by_flow_zero_flow_is_identity_and_differentiable() -> None:
    feat_b = torch.rand(1, 4, 5, 5, requires_grad=True)
    warped, inside = warp_by_flow(feat_b, torch.zeros(1, 5, 5, 2))
    assert torch.allclose(warped, feat_b, atol=1e-6) and inside.all()
    warped.sum().backward()
    assert torch.allclose(feat_b.grad, torch.ones_like(feat_b), atol=1e-5)


def test_warp_by_flow_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="flow_on_grid"):
        warp_by_flow(torch.rand(1, 2, 4, 4), torch.zeros(1, 4, 5, 2))
    with pytest.raises(ValueError, match="feat_b"):
        warp_by_flow(torch.rand(2, 4, 4), torch.zeros(1, 4, 4, 2))


@pytest.mark.parametrize("strength", [0.05, 0.15])
def test_tps_warp_agrees_with_direct_sampling_at_flow(strength: float, reference_bilinear) -> None:
    """warped(p) == original(p + flow(p)), both by kornia's warp and by a numpy reference."""
    size = 32
    images = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    warped, flow, valid = apply_tps(images, torch.Generator().manual_seed(1), strength)
    assert warped.shape == images.shape
    assert flow.shape == (3, size, size, 2) and flow.dtype == torch.float32
    assert valid.shape == (3, size, size) and valid.dtype == torch.bool
    assert flow.abs().max() > 0.5  # it did warp
    targets = cell_grid(size, size) + flow
    for b in range(3):
        field = images[b].permute(1, 2, 0).numpy()
        # The repo's exact numpy sampler (border-clamped like grid_sample's border padding).
        expected = sample_bilinear(field, targets[b].reshape(-1, 2).numpy()).reshape(size, size, 3)
        np.testing.assert_allclose(warped[b].permute(1, 2, 0).numpy(), expected, atol=1e-4)
        # And the textbook formula on a few pixels.
        for r, c in ((0, 0), (5, 17), (31, 31), (16, 3)):
            tx, ty = targets[b, r, c].tolist()
            np.testing.assert_allclose(
                warped[b, :, r, c].numpy(), reference_bilinear(field, tx, ty), atol=1e-4
            )
        inside = (targets[b] >= -1e-3) & (targets[b] <= size - 1 + 1e-3)
        assert torch.equal(valid[b], inside.all(dim=-1))


def test_tps_flow_warp_agrees_with_warp_by_flow() -> None:
    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    warped, flow, _ = apply_tps(images, torch.Generator().manual_seed(5), 0.1)
    by_flow, _ = warp_by_flow(images, flow)
    assert torch.allclose(warped, by_flow, atol=1e-4)


def test_tps_is_deterministic_and_matches_random_tps_flow() -> None:
    images = torch.rand(2, 3, 16, 16)
    _, flow_a, valid_a = apply_tps(images, torch.Generator().manual_seed(7), 0.1)
    flow_b, valid_b = random_tps_flow(2, 16, torch.Generator().manual_seed(7), strength=0.1)
    assert torch.equal(flow_a, flow_b) and torch.equal(valid_a, valid_b)
    flow_c, _ = random_tps_flow(2, 16, torch.Generator().manual_seed(8), strength=0.1)
    assert not torch.allclose(flow_a, flow_c)
    assert not torch.allclose(flow_b[0], flow_b[1])  # independent warps per batch element


def test_identity_tps_gives_zero_flow() -> None:
    images = torch.rand(2, 3, 16, 16)
    warped, flow, valid = apply_tps(images, torch.Generator().manual_seed(0), strength=0.0)
    assert flow.abs().max() < 1e-6
    assert valid.all()
    assert torch.allclose(warped, images, atol=1e-5)


def test_fit_tps_interpolates_and_reproduces_affine_maps() -> None:
    from kornia.geometry.transform import warp_points_tps

    gen = torch.Generator().manual_seed(2)
    centers = torch.rand(2, 9, 2, generator=gen, dtype=torch.float64) * 2 - 1
    targets = centers + 0.3 * torch.randn(2, 9, 2, generator=gen, dtype=torch.float64)
    kernel_weights, affine_weights = fit_tps(centers, targets)
    mapped = warp_points_tps(centers, centers, kernel_weights, affine_weights)
    assert torch.allclose(mapped, targets, atol=1e-9)
    # An affine target is reproduced everywhere, with zero bending.
    matrix = torch.tensor([[1.1, 0.2], [-0.1, 0.9]], dtype=torch.float64)
    affine_targets = centers @ matrix.T + torch.tensor([0.05, -0.2], dtype=torch.float64)
    kernel_weights, affine_weights = fit_tps(centers, affine_targets)
    assert kernel_weights.abs().max() < 1e-9
    probe = torch.rand(2, 20, 2, generator=gen, dtype=torch.float64)
    expected = probe @ matrix.T + torch.tensor([0.05, -0.2], dtype=torch.float64)
    assert torch.allclose(warp_points_tps(probe, centers, kernel_weights, affine_weights), expected)


def test_tps_rejects_bad_arguments() -> None:
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="num_points"):
        random_tps_flow(1, 8, gen, num_points=1)
    with pytest.raises(ValueError, match="strength"):
        random_tps_flow(1, 8, gen, strength=-0.1)
    with pytest.raises(ValueError, match="images"):
        apply_tps(torch.rand(1, 3, 8, 9), gen)
