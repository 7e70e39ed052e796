"""Any-size pairs in, pixel flows out: pre- and post-processing around the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dptrack_pipeline.flow.flownet2.inference import (
    from_network_output,
    network_size,
    run_network,
    to_network_input,
)


def test_network_size_rounds_up_to_64() -> None:
    assert network_size(100, 140) == (128, 192)
    assert network_size(436, 1024) == (448, 1024)
    assert network_size(720, 1280) == (768, 1280)
    assert network_size(64, 64) == (64, 64)


def _pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2))


def test_layout_is_b_rgb_frame_h_w() -> None:
    first, second = _pair(64, 128)
    batch = to_network_input([(first, second)], "cpu")
    assert batch.shape == (1, 3, 2, 64, 128) and batch.dtype == torch.float32
    assert torch.equal(batch[0, :, 0], torch.from_numpy(first).permute(2, 0, 1).float())
    assert torch.equal(batch[0, :, 1], torch.from_numpy(second).permute(2, 0, 1).float())


def test_pad_repeats_the_edges() -> None:
    first, second = _pair(100, 140)
    batch = to_network_input([(first, second)], "cpu", fit="pad")
    assert batch.shape == (1, 3, 2, 128, 192)
    assert torch.equal(batch[0, :, 0, :100, :140], torch.from_numpy(first).permute(2, 0, 1).float())
    assert torch.equal(batch[0, :, 0, 127, :140], batch[0, :, 0, 99, :140])
    assert torch.equal(batch[0, :, 1, :100, 191], batch[0, :, 1, :100, 139])


def test_mixed_sizes_and_unknown_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="one size"):
        to_network_input([_pair(64, 64), _pair(64, 128)], "cpu")
    with pytest.raises(ValueError, match="fit must be"):
        to_network_input([_pair(64, 64)], "cpu", fit="crop")


class _Translation(torch.nn.Module):
    """A stand-in network whose answer is a known translation in network pixels."""

    def __init__(self, dx: float, dy: float) -> None:
        super().__init__()
        self.dx, self.dy = dx, dy

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, _, _, height, width = inputs.shape
        flow = torch.empty(batch, 2, height, width)
        flow[:, 0], flow[:, 1] = self.dx, self.dy
        return flow


def test_resized_flow_is_rescaled_to_original_pixels() -> None:
    # 100x140 runs at 128x192: a shift of 19.2 x 12.8 network pixels is 14 x 10 real ones.
    out = run_network(_Translation(19.2, 12.8), [_pair(100, 140)] * 3, "cpu", fit="resize")
    assert out.shape == (3, 100, 140, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], 14.0, rtol=1e-6)
    np.testing.assert_allclose(out[..., 1], 10.0, rtol=1e-6)


def test_padded_flow_is_cropped_unscaled() -> None:
    out = run_network(_Translation(3.0, -2.0), [_pair(100, 140)], "cpu", fit="pad")
    assert out.shape == (1, 100, 140, 2)
    np.testing.assert_array_equal(out[..., 0], 3.0)
    np.testing.assert_array_equal(out[..., 1], -2.0)


def test_flow_at_network_size_is_untouched() -> None:
    flow = torch.randn(2, 2, 64, 128)
    assert from_network_output(flow, 64, 128) is flow
