"""The correlation layer: both implementations against a direct loop written from the definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dptrack_pipeline.flow.flownet2.correlation import correlation, correlation_reference


def direct_correlation(f1: np.ndarray, f2: np.ndarray, max_disp: int, stride: int) -> np.ndarray:
    """Per output pixel and displacement, in float64: f2 is zero outside the map."""
    batch, channels, height, width = f1.shape
    radius = max_disp // stride
    size = 2 * radius + 1
    out = np.zeros((batch, size * size, height, width))
    for p in range(-radius, radius + 1):
        for o in range(-radius, radius + 1):
            channel = (p + radius) * size + (o + radius)
            for y in range(height):
                for x in range(width):
                    yy, xx = y + p * stride, x + o * stride
                    if 0 <= yy < height and 0 <= xx < width:
                        out[:, channel, y, x] = (f1[:, :, y, x] * f2[:, :, yy, xx]).sum(1)
    return out / channels


@pytest.mark.parametrize(
    ("shape", "max_disp", "stride"),
    [((2, 3, 9, 11), 20, 2), ((1, 5, 23, 30), 20, 2), ((1, 4, 12, 7), 4, 1), ((2, 2, 6, 6), 6, 3)],
)
@pytest.mark.parametrize("implementation", [correlation_reference, correlation])
def test_matches_the_definition_including_borders(shape, max_disp, stride, implementation) -> None:
    rng = np.random.default_rng(0)
    f1 = rng.standard_normal(shape).astype(np.float32)
    f2 = rng.standard_normal(shape).astype(np.float32)
    expected = direct_correlation(f1.astype(np.float64), f2.astype(np.float64), max_disp, stride)
    got = implementation(torch.from_numpy(f1), torch.from_numpy(f2), max_disp, stride).numpy()
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    relative = np.abs(got - expected).max() / np.abs(expected).max()
    assert relative < 1e-5
    # Channel 0 looks max_disp rows up: the top max_disp rows see only padding, exactly zero.
    assert np.all(got[:, 0, :max_disp, :] == 0)


def test_flownetc_size_agrees_between_implementations() -> None:
    torch.manual_seed(0)
    f1 = torch.randn(2, 256, 16, 24)
    f2 = torch.randn(2, 256, 16, 24)
    reference = correlation_reference(f1.double(), f2.double())
    fast = correlation(f1, f2)
    assert fast.shape == (2, 441, 16, 24)
    assert ((fast.double() - reference).abs().max() / reference.abs().max()).item() < 1e-5


@pytest.mark.parametrize("tile", [1, 3, 8, 16])
def test_tile_size_does_not_change_the_result(tile: int) -> None:
    torch.manual_seed(1)
    f1, f2 = torch.randn(1, 8, 20, 26, dtype=torch.float64), torch.randn(1, 8, 20, 26).double()
    assert torch.allclose(correlation(f1, f2, tile=tile), correlation_reference(f1, f2))


def test_channels_are_y_major() -> None:
    # f2 is f1 moved by 4 rows down and 2 columns left: the peak is at p = +2, o = -1.
    torch.manual_seed(2)
    f1 = torch.randn(1, 16, 24, 24, dtype=torch.float64)
    f2 = torch.roll(f1, shifts=(4, -2), dims=(2, 3))
    out = correlation(f1, f2)
    assert int(out[0, :, 12, 12].argmax()) == (2 + 10) * 21 + (-1 + 10)


def test_channels_last_input_gives_the_same_result() -> None:
    torch.manual_seed(3)
    f1, f2 = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)
    nhwc = correlation(
        f1.to(memory_format=torch.channels_last), f2.to(memory_format=torch.channels_last)
    )
    assert torch.allclose(nhwc, correlation(f1, f2))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        correlation(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(ValueError, match="multiple of"):
        correlation_reference(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), 5, 2)
