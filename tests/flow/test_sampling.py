"""Bilinear sampling at points, the inside test, and backward warping."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.flow.io import read_flo
from dptrack_pipeline.flow.sampling import (
    pixel_grid,
    points_inside,
    sample_bilinear,
    warp_backward,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("shape", [(7, 11), (7, 11, 2), (7, 11, 5)])
def test_integer_points_give_stored_values(rng: np.random.Generator, shape: tuple) -> None:
    field = rng.normal(size=shape).astype(np.float32)
    rows, cols = np.meshgrid(np.arange(7), np.arange(11), indexing="ij")
    points = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float32)
    values = sample_bilinear(field, points)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, field[rows.ravel(), cols.ravel()])


@pytest.mark.parametrize("shape", [(13, 9), (13, 9, 3)])
def test_random_points_match_the_formula(
    rng: np.random.Generator, shape: tuple, reference_bilinear
) -> None:
    field = rng.uniform(-50, 50, size=shape)
    points = np.stack([rng.uniform(0, 8, 200), rng.uniform(0, 12, 200)], axis=1)
    values = sample_bilinear(field, points)
    expected = np.array([reference_bilinear(field, x, y) for x, y in points])  # all inside
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-4)


def test_integer_field_is_interpolated_in_float() -> None:
    field = np.array([[0, 10], [20, 30]], dtype=np.uint8)
    np.testing.assert_allclose(
        sample_bilinear(field, np.array([[0.5, 0.5], [0.25, 0.0]])), [15, 2.5]
    )


def test_points_outside_are_clamped_to_the_border(rng: np.random.Generator) -> None:
    field = rng.normal(size=(6, 8, 2)).astype(np.float32)
    outside = np.array([[-3.0, 2.5], [9.5, -1.0], [100.0, 100.0], [3.25, 5.5]])
    clamped = np.array([[0.0, 2.5], [7.0, 0.0], [7.0, 5.0], [3.25, 5.0]])
    np.testing.assert_array_equal(sample_bilinear(field, outside), sample_bilinear(field, clamped))
    np.testing.assert_array_equal(sample_bilinear(field, [[100.0, 100.0]])[0], field[5, 7])


def test_degenerate_sizes_and_empty_point_lists() -> None:
    single_row = np.arange(5, dtype=np.float32)[None, :]
    np.testing.assert_allclose(sample_bilinear(single_row, [[1.5, 0.7], [4.0, 3.0]]), [1.5, 4.0])
    single_pixel = np.full((1, 1, 2), 7.0)
    np.testing.assert_array_equal(sample_bilinear(single_pixel, [[0.3, -2.0]]), [[7.0, 7.0]])
    assert sample_bilinear(np.zeros((4, 4)), np.zeros((0, 2))).shape == (0,)
    assert sample_bilinear(np.zeros((4, 4, 3)), np.zeros((0, 2))).shape == (0, 3)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(N, 2\).*\(3, 3\)"):
        sample_bilinear(np.zeros((4, 4)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        sample_bilinear(np.zeros((4, 4)), np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        sample_bilinear(np.zeros(4), np.zeros((1, 2)))


def test_points_inside_edges() -> None:
    points = np.array(
        [[0, 0], [9, 4], [9.001, 4], [-0.001, 2], [4.5, 4.0], [4.5, 4.01], [np.nan, 1.0]]
    )
    np.testing.assert_array_equal(
        points_inside(points, width=10, height=5), [True, True, False, False, True, False, False]
    )


def test_pixel_grid_convention() -> None:
    grid = pixel_grid(3, 4)
    assert grid.shape == (3, 4, 2) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[2, 1], [1, 2])  # (x, y) = (c, r)


def test_warp_backward_integer_translation(rng: np.random.Generator) -> None:
    image = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0
    for interpolation in ("linear", "nearest"):
        warped = warp_backward(image, flow, interpolation=interpolation, border_value=7)
        # output[r, c] = image[r - 2, c + 3]
        np.testing.assert_array_equal(warped[2:, :-3], image[:-2, 3:])
        assert np.all(warped[:2] == 7) and np.all(warped[:, -3:] == 7)


def test_warp_backward_half_pixel_is_the_average() -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = 0.5
    warped = warp_backward(image, flow)
    np.testing.assert_allclose(warped[:, :3], (image[:, :3] + image[:, 1:]) / 2, atol=1e-3)


def test_warp_backward_nearest_keeps_labels(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 15, (16, 16), dtype=np.uint8)
    flow = rng.uniform(-3, 3, (16, 16, 2)).astype(np.float32)
    warped = warp_backward(labels, flow, interpolation="nearest")
    assert warped.dtype == np.uint8 and set(np.unique(warped)) <= set(np.unique(labels)) | {0}
    ids = rng.integers(0, 10**6, (16, 16), dtype=np.int32)
    warped_ids = warp_backward(ids, flow, interpolation="nearest", border_value=-1)
    assert warped_ids.dtype == np.int32
    assert set(np.unique(warped_ids)) <= set(np.unique(ids)) | {-1}


def test_warp_backward_shapes_and_errors() -> None:
    flow = np.zeros((5, 6, 2), np.float32)
    assert warp_backward(np.zeros((8, 9, 1), np.float32), flow).shape == (5, 6, 1)
    assert warp_backward(np.zeros((8, 9, 7), np.float64), flow).shape == (5, 6, 7)
    with pytest.raises(ValueError, match="int8"):
        warp_backward(np.zeros((5, 6), np.int8), flow)
    with pytest.raises(ValueError, match="int32"):
        warp_backward(np.zeros((5, 6), np.int32), flow, interpolation="linear")
    with pytest.raises(ValueError, match="interpolation"):
        warp_backward(np.zeros((5, 6), np.uint8), flow, interpolation="cubic")
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        warp_backward(np.zeros((5, 6), np.uint8), np.zeros((5, 6, 3)))


@pytest.mark.shared_data
def test_warp_sintel_frame_with_true_flow(shared_data: Path) -> None:
    """Frame 3 warped back by the true flow 2->3 reproduces frame 2 where nothing is occluded."""
    folder = shared_data / "flow" / "sintel" / "alley_1"
    frame2 = cv2.imread(str(folder / "frame_0002.png")).astype(np.float32)
    frame3 = cv2.imread(str(folder / "frame_0003.png")).astype(np.float32)
    flow = read_flo(folder / "gt" / "frame_0002.flo")
    occluded = cv2.imread(str(folder / "gt" / "occlusions" / "frame_0002.png"), 0) > 127
    visible = ~occluded
    unwarped = np.abs(frame3 - frame2)[visible].mean()
    warped = np.abs(warp_backward(frame3, flow) - frame2)[visible].mean()
    negated = np.abs(warp_backward(frame3, -flow) - frame2)[visible].mean()
    # measured (mean abs BGR difference on visible pixels): unwarped 9.37, warped 2.07,
    # warped by the negated flow 13.60
    assert warped < 2.5
    assert warped < 0.3 * unwarped and negated > unwarped
