"""Accuracy of the OpenCV estimators on real benchmark pairs (Middlebury, MPI-Sintel).

Bounds are set a little above what was measured once (2-core CPU, OpenCV 5.0, full resolution,
no downscaling); the measured value is in each comment.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.flow import create_estimator
from dptrack_pipeline.flow.io import known_flow_mask, read_flo
from dptrack_pipeline.flow.metrics import endpoint_error

pytestmark = pytest.mark.shared_data


def _rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def rubber_whale(shared_data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder = shared_data / "flow" / "middlebury" / "RubberWhale"
    truth = read_flo(folder / "flow10.flo")
    return _rgb(folder / "frame10.png"), _rgb(folder / "frame11.png"), truth, known_flow_mask(truth)


def _sintel(shared_data: Path, sequence: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    folder = shared_data / "flow" / "sintel" / sequence
    return (
        _rgb(folder / "frame_0002.png"),
        _rgb(folder / "frame_0003.png"),
        read_flo(folder / "gt" / "frame_0002.flo"),
    )


def test_rubber_whale_truth_has_unknown_pixels(rubber_whale) -> None:
    _, _, truth, valid = rubber_whale
    assert truth.shape == (388, 584, 2)
    assert 0.95 < valid.mean() < 1.0  # 98.4 % known; the rest are stored as 1e10
    assert np.all(np.abs(truth[~valid]) > 1e9)


# (estimator, options, bound): measured EPE in the comment.
RUBBER_WHALE_BOUNDS = [
    ("dis", {}, 0.27),  # measured 0.2235 px
    ("farneback", {}, 0.45),  # measured 0.3616 px
]


@pytest.mark.parametrize("name, options, bound", RUBBER_WHALE_BOUNDS)
def test_epe_middlebury_rubber_whale(rubber_whale, name: str, options: dict, bound: float) -> None:
    first, second, truth, valid = rubber_whale
    flow = create_estimator(name, **options).estimate(first, second)
    assert flow.shape == truth.shape and flow.dtype == np.float32
    epe = endpoint_error(flow, truth, valid)
    assert epe < bound
    # far better than no motion at all (zero-flow EPE: 1.256 px)
    assert epe < 0.4 * endpoint_error(np.zeros_like(truth), truth, valid)


# Sintel clean pass, frame_0002 -> frame_0003, EPE over all pixels. market_5 has very large
# motion (the running figure) that the CPU methods cannot follow: its bound is loose on purpose.
# Zero-flow EPE, for scale: alley_1 2.98 px, market_5 31.99 px.
SINTEL_BOUNDS = [
    ("dis", "alley_1", 0.42),  # measured 0.341 px
    ("dis", "market_5", 26.0),  # measured 23.23 px
    ("farneback", "alley_1", 1.15),  # measured 0.933 px
    ("farneback", "market_5", 28.0),  # measured 24.95 px
]


@pytest.mark.parametrize("name, sequence, bound", SINTEL_BOUNDS)
def test_epe_sintel_clean(shared_data: Path, name: str, sequence: str, bound: float) -> None:
    first, second, truth = _sintel(shared_data, sequence)
    flow = create_estimator(name).estimate(first, second)
    assert flow.shape == (436, 1024, 2)
    epe = endpoint_error(flow, truth)
    assert epe < bound
    assert epe < 0.9 * endpoint_error(np.zeros_like(truth), truth)


def test_dis_recovers_a_translation_of_a_real_image(rubber_whale) -> None:
    """Second image = first moved by (+3, -2) px: the flow's channel 0 must be x."""
    image = rubber_whale[0]
    first = image[10:-10, 10:-10]
    second = image[12:-8, 7:-13]  # second[r, c] = first[r + 2, c - 3]
    flow = create_estimator("dis").estimate(first, second)
    median = np.median(flow[20:-20, 20:-20].reshape(-1, 2), axis=0)
    np.testing.assert_allclose(median, [3.0, -2.0], atol=0.05)


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_identical_images_give_near_zero_flow(rubber_whale, name: str) -> None:
    image = rubber_whale[0]
    magnitude = np.abs(create_estimator(name).estimate(image, image))
    # measured: DIS exactly 0; Farneback mean 0.00025 px, 99th percentile 0.0031 px (max 0.54 px
    # on a few pixels of flat background)
    assert magnitude.mean() < 0.002
    assert np.percentile(magnitude, 99) < 0.01


def test_batch_keeps_order_and_sizes(rubber_whale) -> None:
    first, second, _, _ = rubber_whale
    estimator = create_estimator("dis", preset="ultrafast")
    crop_a, crop_b = first[:100, :150], second[:100, :150]
    flows = estimator.estimate_batch([(first, second), (crop_a, crop_b), (second, first)])
    assert [f.shape for f in flows] == [(388, 584, 2), (100, 150, 2), (388, 584, 2)]
    np.testing.assert_array_equal(flows[0], estimator.estimate(first, second))
    np.testing.assert_array_equal(flows[2], estimator.estimate(second, first))
