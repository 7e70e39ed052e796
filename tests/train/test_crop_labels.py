"""DensePose labels on the crop grid: the train-side float32 formulas against the library's
conversions (``dp_to_pixels`` / ``pixels_to_dp``) and the pipeline's crop-centre convention."""

from __future__ import annotations

import numpy as np
import pytest

from dptrack_pipeline.crops import crop_pixel_centres
from dptrack_pipeline.structures import dp_to_pixels, pixels_to_dp
from dptrack_pipeline.train.crop_labels import crop_coordinates, dp_to_crop, mask_on_crop

SIZE = 32


def _boxes(rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """A float32 ``bbox`` and a ``crop_box`` around it, as the shards store them (xywh)."""
    bbox = rng.uniform([0, 0, 10, 10], [100, 80, 90, 90]).astype(np.float32)
    margin = rng.uniform(0, 20, 4).astype(np.float32)
    crop = bbox + np.array([-margin[0], -margin[1], margin[0] + margin[2], margin[1] + margin[3]])
    return bbox.tolist(), crop.astype(np.float32).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_dp_to_crop_is_dp_to_pixels_then_the_crop_convention(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bbox, crop_box = _boxes(rng)
    dp_x, dp_y = rng.uniform(0, 256, (2, 300)).astype(np.float32)
    points = dp_to_crop(dp_x.tolist(), dp_y.tolist(), bbox, crop_box, SIZE)
    assert points.shape == (300, 2) and points.dtype == np.float32
    library = crop_coordinates(dp_to_pixels(dp_x, dp_y, tuple(bbox)), crop_box, SIZE)
    np.testing.assert_allclose(points, library, atol=1e-4)  # float32 step-by-step vs float64
    # The inverse: crop coordinates -> frame pixels -> dp with the library gives dp back.
    x0, y0, w, h = crop_box
    frame = np.stack([x0 + (points[:, 0] + 0.5) / SIZE * w, y0 + (points[:, 1] + 0.5) / SIZE * h])
    back_x, back_y = pixels_to_dp(frame.T, tuple(bbox))
    np.testing.assert_allclose(np.stack([back_x, back_y]), np.stack([dp_x, dp_y]), atol=2e-3)


def test_crop_pixel_centres_land_on_integer_crop_coordinates() -> None:
    box = (12.5, -3.0, 40.0, 56.0)
    centres = crop_pixel_centres(box, SIZE).reshape(-1, 2)
    grid = np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE)), axis=-1).reshape(-1, 2)
    np.testing.assert_allclose(crop_coordinates(centres, box, SIZE), grid, atol=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_mask_on_crop_reads_the_cell_under_each_crop_pixel_centre(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bbox, crop_box = _boxes(rng)
    labels = rng.integers(1, 15, (256, 256), dtype=np.uint8)
    out = mask_on_crop(labels, bbox, crop_box, SIZE)
    assert out.shape == (SIZE, SIZE) and out.dtype == np.int64
    dp_x, dp_y = pixels_to_dp(crop_pixel_centres(tuple(crop_box), SIZE).reshape(-1, 2), bbox)
    cols, rows = np.floor(dp_x).astype(int), np.floor(dp_y).astype(int)
    inside = (cols >= 0) & (cols < 256) & (rows >= 0) & (rows < 256)
    expected = np.where(inside, labels[rows.clip(0, 255), cols.clip(0, 255)], 0)
    # Equal but where float32 rounding moves a centre across a cell edge (a rare exact tie).
    assert (out.reshape(-1) == expected).mean() > 0.995
    assert (out.reshape(-1)[~inside] == 0).all()
