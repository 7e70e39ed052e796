"""The forward-backward check: exact synthetic cases and the real Sintel occlusions."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.flow import (
    DEFAULT_FB_THRESHOLD,
    compose_flows,
    create_estimator,
    forward_backward_error_map,
    forward_backward_valid_mask,
    track_points,
)
from dptrack_pipeline.flow.io import read_flo
from dptrack_pipeline.flow.metrics import endpoint_error_map
from dptrack_pipeline.flow.sampling import pixel_grid, points_inside

H, W = 30, 40


def _constant_flow(dx: float, dy: float, height: int = H, width: int = W) -> np.ndarray:
    flow = np.empty((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def _affine_flows(matrix: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flows of q = M p + t (forward) and of its exact inverse (backward), on an H x W grid."""
    grid = pixel_grid(H, W).astype(np.float64)
    forward = grid @ matrix.T + shift - grid
    inverse = np.linalg.inv(matrix)
    backward = (grid - shift) @ inverse.T - grid
    return forward.astype(np.float32), backward.astype(np.float32)


def test_default_threshold_is_the_papers() -> None:
    assert DEFAULT_FB_THRESHOLD == 5.0


def test_track_points_constant_flow_is_exact() -> None:
    forward, backward = _constant_flow(2.5, -1.0), _constant_flow(-2.5, 1.0)
    points = np.array([[0.0, 0.0], [10.25, 7.5], [38.0, 20.0], [4.0, 29.0], [37.5, 0.5]])
    track = track_points(points, forward, backward)
    np.testing.assert_array_equal(track.moved, points + [2.5, -1.0])
    np.testing.assert_array_equal(track.error, np.zeros(5))
    # (0, 0) -> (2.5, -1): above the image; (38, 20) -> (40.5, 19): right of it;
    # (37.5, 0.5) -> (40, -0.5): both
    np.testing.assert_array_equal(track.inside, [False, True, False, True, False])
    np.testing.assert_array_equal(track.kept(), track.inside)
    assert track.moved.dtype == np.float32 and track.error.dtype == np.float32
    assert len(track) == 5


def test_track_points_affine_flow() -> None:
    matrix = np.array([[1.05, 0.1], [-0.08, 0.95]])
    shift = np.array([1.5, 2.0])
    forward, backward = _affine_flows(matrix, shift)
    rng = np.random.default_rng(7)
    points = np.stack([rng.uniform(0, W - 1, 300), rng.uniform(0, H - 1, 300)], axis=1)
    track = track_points(points, forward, backward)
    # bilinear interpolation of an affine field is exact
    np.testing.assert_allclose(track.moved, points @ matrix.T + shift, atol=1e-4)
    np.testing.assert_array_equal(
        track.inside, points_inside(points @ matrix.T + shift, width=W, height=H)
    )
    assert 0 < track.inside.sum() < len(points)  # some points leave the image
    # Landing inside B, the backward flow is the exact inverse: no error.
    assert track.error[track.inside].max() < 1e-3
    np.testing.assert_array_equal(track.kept(), track.inside)
    # Landing outside, the backward flow is read at the border: the error is not zero.
    assert track.error[~track.inside].max() > 0.1


def test_error_map_agrees_with_track_points() -> None:
    rng = np.random.default_rng(3)
    forward = rng.normal(0, 3, (H, W, 2)).astype(np.float32)
    backward = rng.normal(0, 3, (H, W, 2)).astype(np.float32)
    error_map = forward_backward_error_map(forward, backward)
    assert error_map.shape == (H, W) and error_map.dtype == np.float32
    track = track_points(pixel_grid(H, W).reshape(-1, 2), forward, backward)
    np.testing.assert_array_equal(error_map.ravel(), track.error)
    np.testing.assert_array_equal(
        forward_backward_valid_mask(forward, backward, threshold=4.0).ravel(), track.kept(4.0)
    )


def test_valid_mask_consistent_and_inconsistent_pairs() -> None:
    forward = _constant_flow(6.0, 0.0)
    consistent = forward_backward_valid_mask(forward, _constant_flow(-6.0, 0.0))
    np.testing.assert_array_equal(forward_backward_error_map(forward, -forward), 0.0)
    assert consistent.shape == (H, W) and consistent.dtype == bool
    # every pixel passes except the 6 right-hand columns, which move out of the image
    assert consistent[:, : W - 6].all() and not consistent[:, W - 6 :].any()

    inconsistent = np.zeros_like(forward)  # backward flow says nothing moved: error 6 px
    np.testing.assert_allclose(forward_backward_error_map(forward, inconsistent), 6.0)
    assert not forward_backward_valid_mask(forward, inconsistent).any()
    loose = forward_backward_valid_mask(forward, inconsistent, threshold=6.5)
    np.testing.assert_array_equal(loose, consistent)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"flow_bwd must have shape \(H, W, 2\)"):
        forward_backward_error_map(np.zeros((4, 4, 2)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        track_points(np.zeros((3,)), np.zeros((4, 4, 2)), np.zeros((4, 4, 2)))


def test_compose_translations() -> None:
    composed = compose_flows(_constant_flow(1.0, 2.0), _constant_flow(3.0, -1.0))
    assert composed.shape == (H, W, 2) and composed.dtype == np.float32
    np.testing.assert_array_equal(composed, _constant_flow(4.0, 1.0))


def test_compose_reads_the_second_flow_where_the_first_lands() -> None:
    rng = np.random.default_rng(5)
    second = rng.normal(0, 2, (H, W, 2)).astype(np.float32)
    composed = compose_flows(_constant_flow(2.0, 1.0), second)
    # pixel (c, r) lands on (c + 2, r + 1) in B, a pixel centre: exact
    np.testing.assert_array_equal(composed[:-1, :-2], second[1:, 2:] + np.float32([2.0, 1.0]))
    # pixels leaving B read the border value of the second flow
    np.testing.assert_array_equal(composed[-1, 5], second[-1, 7] + np.float32([2.0, 1.0]))


def test_compose_with_inverse_is_identity() -> None:
    matrix = np.array([[0.97, 0.05], [0.02, 1.03]])
    forward, backward = _affine_flows(matrix, np.array([-1.0, 0.5]))
    round_trip = compose_flows(forward, backward)
    inside = points_inside((pixel_grid(H, W) + forward).reshape(-1, 2), width=W, height=H).reshape(
        H, W
    )
    assert np.abs(round_trip[inside]).max() < 1e-3


# -- real data ----------------------------------------------------------------------------------


SEQUENCES = ("alley_1", "cave_2", "market_5")


@pytest.fixture(scope="module")
def sintel_check(shared_data: Path) -> dict[str, dict[str, np.ndarray]]:
    """DIS (medium) flows 2->3 and 3->2 on Sintel clean; the 5 px check; the truth."""
    estimator = create_estimator("dis", preset="medium")
    results = {}
    for sequence in SEQUENCES:
        folder = shared_data / "flow" / "sintel" / sequence
        frame2, frame3 = (
            cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB)
            for name in ("frame_0002.png", "frame_0003.png")
        )
        forward, backward = estimator.estimate_batch([(frame2, frame3), (frame3, frame2)])
        truth = read_flo(folder / "gt" / "frame_0002.flo")
        results[sequence] = {
            "passed": forward_backward_valid_mask(forward, backward, DEFAULT_FB_THRESHOLD),
            "occluded": cv2.imread(str(folder / "gt" / "occlusions" / "frame_0002.png"), 0) > 127,
            "usable": cv2.imread(str(folder / "gt" / "invalid" / "frame_0002.png"), 0) <= 127,
            "epe": endpoint_error_map(forward, truth),
        }
    return results


def _statistics(result: dict[str, np.ndarray]) -> dict[str, float]:
    passed, occluded, usable, epe = (result[k] for k in ("passed", "occluded", "usable", "epe"))
    return {
        "fail_occluded": float(1 - passed[occluded & usable].mean()),
        "fail_visible": float(1 - passed[~occluded & usable].mean()),
        "epe_passed": float(epe[passed & usable].mean()),
        "epe_failed": float(epe[~passed & usable].mean()),
    }


@pytest.mark.shared_data
def test_fb_check_flags_occlusions_cave_2(sintel_check) -> None:
    """cave_2 (fast fighting figures, 7.7 % occluded) is where the check matters most."""
    stats = _statistics(sintel_check["cave_2"])
    # measured: failing 47.4 % of occluded vs 3.4 % of visible pixels;
    # EPE 0.95 px where the check passes vs 11.11 px where it fails
    assert stats["fail_occluded"] > 0.38 and stats["fail_visible"] < 0.05
    assert stats["fail_occluded"] > 8 * stats["fail_visible"]
    assert stats["epe_passed"] < 1.2 and stats["epe_failed"] > 9.0
    assert stats["epe_failed"] > 8 * stats["epe_passed"]


@pytest.mark.shared_data
def test_fb_check_flags_occlusions_pooled(sintel_check) -> None:
    passed, occluded, epe = (
        np.concatenate([sintel_check[s][key][sintel_check[s]["usable"]] for s in SEQUENCES])
        for key in ("passed", "occluded", "epe")
    )
    fail_occluded = 1 - passed[occluded].mean()
    fail_visible = 1 - passed[~occluded].mean()
    # measured over alley_1 + cave_2 + market_5: failing 54.9 % of occluded vs 13.7 % of visible
    # pixels; EPE 2.09 px where the check passes vs 39.8 px where it fails
    assert fail_occluded > 3 * fail_visible
    assert epe[passed].mean() < 2.6 and epe[~passed].mean() > 30.0
    assert epe[~passed].mean() > 12 * epe[passed].mean()


@pytest.mark.shared_data
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_fb_check_orders_every_sequence(sintel_check, sequence: str) -> None:
    """Measured (fail occluded / fail visible, EPE passed / failed):
    alley_1 2.0 % / 0.87 %, 0.34 / 0.93 px; market_5 69.0 % / 38.7 %, 6.96 / 45.2 px."""
    stats = _statistics(sintel_check[sequence])
    assert stats["fail_occluded"] > 1.5 * stats["fail_visible"]
    assert stats["epe_failed"] > 2 * stats["epe_passed"]
