"""The forward-backward check along a chain of one-step flows (``track_grid_chained``)."""

from __future__ import annotations

import numpy as np
import pytest

from dptrack_pipeline.flow.consistency import compose_flows, track_grid, track_grid_chained
from dptrack_pipeline.flow.sampling import pixel_grid, points_inside

H, W = 30, 40


def _constant_flow(dx: float, dy: float, height: int = H, width: int = W) -> np.ndarray:
    flow = np.empty((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def _smooth_flow(seed: int, amplitude: float = 2.0) -> np.ndarray:
    """A smooth, non-constant flow: low-frequency sines with random phases."""
    rng = np.random.default_rng(seed)
    grid = pixel_grid(H, W).astype(np.float64)
    x, y = grid[..., 0], grid[..., 1]
    flow = np.empty((H, W, 2), np.float32)
    for channel in range(2):
        px, py, offset = rng.uniform(0, 2 * np.pi, 3)
        flow[..., channel] = amplitude * (
            0.6 * np.sin(x / 13.0 + px) + 0.4 * np.cos(y / 11.0 + py)
        ) + rng.uniform(-1, 1)
    return flow


def _crop_grid() -> np.ndarray:
    """A ``(12, 16, 2)`` grid of non-integer points inside the frame (like a crop's centres)."""
    xs = np.linspace(5.3, 33.7, 16, dtype=np.float32)
    ys = np.linspace(4.1, 24.9, 12, dtype=np.float32)
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx, yy], axis=-1)


def test_one_step_equals_track_grid() -> None:
    grid = _crop_grid()
    forward, backward = _smooth_flow(1), _smooth_flow(2)
    direct = track_grid(grid, forward, backward)
    chained = track_grid_chained(grid, [forward], [backward])
    np.testing.assert_array_equal(chained.moved, direct.moved)
    np.testing.assert_array_equal(chained.error, direct.error)
    np.testing.assert_array_equal(chained.inside, direct.inside)
    assert chained.moved.shape == (12 * 16, 2) and chained.moved.dtype == np.float32
    assert chained.error.shape == (12 * 16,) and chained.error.dtype == np.float32
    assert chained.inside.shape == (12 * 16,) and chained.inside.dtype == bool


def test_one_step_equals_track_grid_with_points_leaving_the_frame() -> None:
    grid = pixel_grid(H, W)
    forward, backward = _constant_flow(3.0, -2.0), _constant_flow(-3.0, 2.0)
    direct = track_grid(grid, forward, backward)
    chained = track_grid_chained(grid, [forward], [backward])
    np.testing.assert_array_equal(chained.inside, direct.inside)
    assert 0 < direct.inside.sum() < H * W
    np.testing.assert_array_equal(chained.moved, direct.moved)


@pytest.mark.parametrize("steps", [2, 3, 5])
def test_constant_translation_adds_up(steps: int) -> None:
    grid = _crop_grid()
    step_fwd, step_bwd = _constant_flow(1.5, -0.25), _constant_flow(-1.5, 0.25)
    track = track_grid_chained(grid, [step_fwd] * steps, [step_bwd] * steps)
    expected = grid.reshape(-1, 2) + np.array([1.5, -0.25], np.float32) * steps
    np.testing.assert_allclose(track.moved, expected, atol=1e-4)
    np.testing.assert_allclose(track.error, 0.0, atol=1e-4)
    np.testing.assert_array_equal(track.inside, points_inside(expected, W, H))
    assert track.inside.any()
    np.testing.assert_array_equal(track.kept(0.01), track.inside)


def test_three_steps_of_one_and_a_half_pixels() -> None:
    grid = pixel_grid(H, W)
    track = track_grid_chained(
        grid, [_constant_flow(1.5, 0.0)] * 3, [_constant_flow(-1.5, 0.0)] * 3
    )
    moved = track.moved.reshape(H, W, 2)
    np.testing.assert_allclose(moved[..., 0] - grid[..., 0], 4.5, atol=1e-5)
    np.testing.assert_allclose(moved[..., 1], grid[..., 1], atol=1e-5)
    np.testing.assert_allclose(track.error, 0.0, atol=1e-5)
    # inside: x + 4.5 <= W - 1, i.e. columns 0 .. W - 6
    inside = track.inside.reshape(H, W)
    assert inside[:, : W - 5].all() and not inside[:, W - 5 :].any()


def test_a_wrong_backward_chain_shows_as_error() -> None:
    grid = _crop_grid()
    track = track_grid_chained(
        grid, [_constant_flow(1.0, 0.0)] * 3, [_constant_flow(-1.0, 0.0)] * 2
    )
    np.testing.assert_allclose(track.error, 1.0, atol=1e-4)
    assert not track.kept(0.5).any() and track.kept(5.0).all()


def test_leaving_the_frame_midway_is_outside_even_when_coming_back() -> None:
    grid = pixel_grid(H, W)
    out_and_back = [_constant_flow(4.0, 0.0), _constant_flow(-4.0, 0.0)]
    track = track_grid_chained(grid, out_and_back, [_constant_flow(0.0, 0.0)])
    # every point ends where it started, inside the frame ...
    np.testing.assert_allclose(track.moved, grid.reshape(-1, 2), atol=1e-5)
    # ... but those that were past the right edge after step 1 are not trusted
    inside = track.inside.reshape(H, W)
    assert inside[:, : W - 4].all()
    assert not inside[:, W - 4 :].any()
    # track_grid on the composed (zero) flow would call them inside
    composed = compose_flows(*out_and_back)
    assert track_grid(grid, composed, _constant_flow(0.0, 0.0)).inside.all()


def test_leaving_through_the_top_on_the_last_step() -> None:
    grid = pixel_grid(H, W)
    steps = [_constant_flow(0.0, -1.0)] * 3
    track = track_grid_chained(grid, steps, [_constant_flow(0.0, 1.0)] * 3)
    inside = track.inside.reshape(H, W)
    assert not inside[:3].any() and inside[3:].all()


@pytest.mark.parametrize("num_steps", [2, 3])
def test_chain_matches_compose_flows_then_track_grid(num_steps: int) -> None:
    grid = pixel_grid(H, W)
    fwd = [_smooth_flow(10 + i) for i in range(num_steps)]
    bwd = [_smooth_flow(20 + i) for i in range(num_steps)]
    composed_fwd, composed_bwd = fwd[0], bwd[0]
    for f, b in zip(fwd[1:], bwd[1:], strict=True):
        composed_fwd = compose_flows(composed_fwd, f)
        composed_bwd = compose_flows(composed_bwd, b)
    chained = track_grid_chained(grid, fwd, bwd)
    composed = track_grid(grid, composed_fwd, composed_bwd)
    # at pixel centres both evaluate the same composition; remap reads at 1/32 px, the
    # composition's bilinear reads at full precision, and the way back reads the composed
    # backward flow between pixel centres, where interpolation and composition differ slightly
    np.testing.assert_allclose(chained.moved, composed.moved, atol=0.01)
    both = chained.inside & composed.inside
    assert both.mean() > 0.5
    np.testing.assert_allclose(chained.error[both], composed.error[both], atol=0.05)
    assert chained.error.max() > 1.0  # unrelated backward flows: the check has work to do
    # the only points composition calls inside and the chain does not left the frame midway
    assert not (chained.inside & ~composed.inside).any()


def test_matches_compose_flows_for_an_inverse_pair_of_chains() -> None:
    # pure translations whose way back is the exact inverse: composing and chaining agree
    # exactly, and the error is 0
    grid = pixel_grid(H, W)
    fwd = [_constant_flow(0.75, 0.5), _constant_flow(-0.25, 1.0)]
    bwd = [_constant_flow(0.25, -1.0), _constant_flow(-0.75, -0.5)]
    chained = track_grid_chained(grid, fwd, bwd)
    composed = track_grid(grid, compose_flows(*fwd), compose_flows(*bwd))
    np.testing.assert_allclose(chained.moved, composed.moved, atol=1e-5)
    np.testing.assert_allclose(chained.error, 0.0, atol=1e-5)
    np.testing.assert_array_equal(chained.inside, composed.inside)


def test_needs_steps_and_a_grid() -> None:
    grid = pixel_grid(H, W)
    flow = _constant_flow(0.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        track_grid_chained(grid, [], [flow])
    with pytest.raises(ValueError, match="at least one"):
        track_grid_chained(grid, [flow], [])
    with pytest.raises(ValueError, match=r"steps_fwd\[1\]"):
        track_grid_chained(grid, [flow, flow[..., 0]], [flow])
    with pytest.raises(ValueError, match="grid"):
        track_grid_chained(grid.reshape(-1, 2), [flow], [flow])
