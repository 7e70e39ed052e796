"""FlowNet2's structure against the public checkpoint's tensor list, and its building blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dptrack_pipeline.flow.flownet2.correlation import correlation_reference
from dptrack_pipeline.flow.flownet2.model import FlowNet2, channel_norm, warp


def reference_keys(shared_data: Path) -> list[tuple[str, tuple[int, ...]]]:
    path = shared_data.parent / "reference" / "flownet2_state_dict_keys.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = []
    for line in path.read_text().splitlines():
        name, shape = line.split("\t")
        rows.append((name, tuple(int(v) for v in shape.strip("()").split(",") if v.strip())))
    return rows


def test_names_and_shapes_are_the_public_checkpoints(shared_data: Path) -> None:
    with torch.device("meta"):
        model = FlowNet2()
    ours = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    assert ours == reference_keys(shared_data)  # same names, shapes and order: all 220
    assert sum(p.numel() for p in model.parameters()) == 162_518_834


@pytest.fixture(scope="module")
def small_model() -> FlowNet2:
    torch.manual_seed(0)
    return FlowNet2().eval()


def test_fast_and_reference_correlation_give_the_same_flow(small_model: FlowNet2) -> None:
    torch.manual_seed(1)
    inputs = torch.rand(1, 3, 2, 64, 128) * 255
    with torch.inference_mode():
        fast = small_model(inputs)
        small_model.flownetc.correlation_fn = correlation_reference
        try:
            reference = small_model(inputs)
        finally:
            from dptrack_pipeline.flow.flownet2.correlation import correlation

            small_model.flownetc.correlation_fn = correlation
    assert fast.shape == (1, 2, 64, 128) and fast.dtype == torch.float32
    assert torch.allclose(fast, reference, rtol=1e-4, atol=1e-5 * reference.abs().max().item())


def test_brightness_offset_of_both_frames_changes_nothing(small_model: FlowNet2) -> None:
    # The mean over both frames is subtracted, so a common offset cancels exactly (up to fp).
    torch.manual_seed(2)
    inputs = torch.rand(2, 3, 2, 64, 64) * 200
    with torch.inference_mode():
        a = small_model(inputs)
        b = small_model(inputs + torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1, 1))
    assert torch.allclose(a, b, atol=1e-4 * max(1.0, a.abs().max().item()))


def test_input_shapes_are_checked(small_model: FlowNet2) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, 2, H, W\)"):
        small_model(torch.zeros(1, 6, 64, 64))
    with pytest.raises(ValueError, match="multiples of 64"):
        small_model(torch.zeros(1, 3, 2, 100, 140))


def test_bf16_model_runs_and_returns_fp32(small_model: FlowNet2) -> None:
    model = FlowNet2().eval()
    model.load_state_dict(small_model.state_dict())
    model = model.to(torch.bfloat16)
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 2, 64, 64) * 255)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def direct_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The public Resample2d kernel: bilinear at (x+u, y+v), neighbour indices clamped."""
    channels, height, width = image.shape
    out = np.zeros_like(image)
    for y in range(height):
        for x in range(width):
            xf, yf = x + flow[0, y, x], y + flow[1, y, x]
            x0, y0 = int(np.floor(xf)), int(np.floor(yf))
            a, b = xf - x0, yf - y0
            xl, xr = min(max(x0, 0), width - 1), min(max(x0 + 1, 0), width - 1)
            yt, yb = min(max(y0, 0), height - 1), min(max(y0 + 1, 0), height - 1)
            out[:, y, x] = (
                (1 - a) * (1 - b) * image[:, yt, xl]
                + a * (1 - b) * image[:, yt, xr]
                + (1 - a) * b * image[:, yb, xl]
                + a * b * image[:, yb, xr]
            )
    return out


def test_warp_is_resample2d_with_clamped_edges() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((3, 9, 13))
    flow = rng.uniform(-6, 6, (2, 9, 13))  # many samples land outside the image
    got = warp(torch.from_numpy(image)[None].float(), torch.from_numpy(flow)[None].float())
    np.testing.assert_allclose(got[0].numpy(), direct_warp(image, flow), atol=1e-5)
    # ... which is grid_sample(align_corners=True, padding_mode="border"), as the issue states.
    assert got.dtype == torch.float32


def test_warp_keeps_dtype_and_samples_in_fp32() -> None:
    # Columns alternate 0, 100: sampling at x + 0.25 must give 25 or 75. In bf16 a grid
    # coordinate near x = 300 is rounded to a multiple of 2 and would give 0 or 100.
    width = 400
    image = (torch.arange(width) % 2 * 100.0).expand(1, 1, 3, width).contiguous()
    flow = torch.zeros(1, 2, 3, width)
    flow[:, 0] = 0.25
    out = warp(image.to(torch.bfloat16), flow.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    right = torch.cat((image[..., 1:], image[..., -1:]), dim=-1)  # the edge column repeats
    expected = right * 0.25 + image * 0.75
    assert torch.allclose(out.float(), expected, atol=0.5)


def test_channel_norm_is_l2_over_channels() -> None:
    x = torch.tensor([[[[3.0]], [[4.0]]]])
    assert channel_norm(x).shape == (1, 1, 1, 1) and channel_norm(x).item() == 5.0
