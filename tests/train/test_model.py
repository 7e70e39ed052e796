"""The stacked Hourglass DensePose model: shapes, ranges, feature levels, gradients, size."""

from __future__ import annotations

import re

import pytest
import torch

from dptrack_pipeline.train import model as model_module
from dptrack_pipeline.train.model import (
    FEATURE_LEVELS,
    HourglassDensePose,
    HourglassOutputs,
    StackOutput,
    feature_level,
)

CROP = 16
CHANNELS = 8


def _tiny(num_stacks: int = 2, stem_stride: int = 2, depth: int = 2) -> HourglassDensePose:
    torch.manual_seed(0)
    return HourglassDensePose(
        num_stacks=num_stacks, channels=CHANNELS, depth=depth, stem_stride=stem_stride
    )


@pytest.mark.parametrize("num_stacks", [1, 2, 8])
def test_output_shapes_per_stack(num_stacks: int) -> None:
    model = _tiny(num_stacks)
    outputs = model(torch.rand(2, 3, CROP, CROP))
    assert isinstance(outputs, HourglassOutputs)
    assert len(outputs) == num_stacks
    side = CROP // 2
    for out in outputs:
        assert isinstance(out, StackOutput)
        assert out.features.shape == (2, CHANNELS, side, side)
        assert out.part_logits.shape == (2, 25, side, side)
        assert out.u.shape == (2, 24, side, side)
        assert out.v.shape == (2, 24, side, side)
    assert outputs.stem_features.shape == (2, CHANNELS, side, side)


@pytest.mark.parametrize("stem_stride", [1, 2, 4])
def test_output_stride_is_the_stem_stride(stem_stride: int) -> None:
    model = _tiny(1, stem_stride=stem_stride)
    outputs = model(torch.rand(2, 3, CROP, CROP))
    side = CROP // stem_stride
    assert outputs[-1].part_logits.shape[-2:] == (side, side)
    assert outputs.stem_features.shape[-2:] == (side, side)


@pytest.mark.parametrize("num_stacks", [0, 9, -1])
def test_num_stacks_out_of_range_raises(num_stacks: int) -> None:
    with pytest.raises(ValueError, match="num_stacks"):
        HourglassDensePose(num_stacks=num_stacks, channels=CHANNELS)


def test_bad_stem_stride_and_input_shapes_raise() -> None:
    with pytest.raises(ValueError, match="stem_stride"):
        HourglassDensePose(channels=CHANNELS, stem_stride=3)
    model = _tiny(1, stem_stride=2, depth=2)
    with pytest.raises(ValueError, match="too small"):
        model(torch.rand(2, 3, 4, 4))  # 2 cells < 2 ** depth
    with pytest.raises(ValueError, match="multiples"):
        model(torch.rand(2, 3, 17, 17))
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        model(torch.rand(2, 1, CROP, CROP))


def test_uv_in_unit_interval() -> None:
    model = _tiny(2)
    outputs = model(torch.rand(2, 3, CROP, CROP) * 4.0 - 2.0)  # out-of-range input, still [0, 1]
    for out in outputs:
        assert out.u.min() >= 0 and out.u.max() <= 1
        assert out.v.min() >= 0 and out.v.max() <= 1


def test_feature_levels() -> None:
    model = _tiny(3)
    outputs = model(torch.rand(2, 3, CROP, CROP))
    assert feature_level(outputs, "stack_features") is outputs[-1].features
    assert feature_level(outputs, "segmentation") is outputs[-1].part_logits
    assert feature_level(outputs, "early") is outputs.stem_features
    uv = feature_level(outputs, "uv")
    assert uv.shape == (2, 48, CROP // 2, CROP // 2)
    assert torch.equal(uv[:, :24], outputs[-1].u) and torch.equal(uv[:, 24:], outputs[-1].v)
    assert feature_level(outputs, "stack:0") is outputs[0].features
    assert feature_level(outputs, "stack:2") is outputs[2].features
    assert feature_level(outputs, "stack:-1") is outputs[-1].features
    for level in FEATURE_LEVELS:
        assert feature_level(outputs, level).shape[-2:] == (CROP // 2, CROP // 2)
    for bad in ("stack:3", "stack:x", "logits", ""):
        with pytest.raises(ValueError):
            feature_level(outputs, bad)


def test_backward_reaches_every_stack_and_the_stem() -> None:
    model = _tiny(2)
    outputs = model(torch.rand(2, 3, CROP, CROP))
    loss = sum(o.part_logits.square().mean() + o.u.mean() + o.v.mean() for o in outputs)
    loss = loss + feature_level(outputs, "early").mean()
    loss.backward()
    stem_conv = model.stem[0]
    assert stem_conv.weight.grad is not None and stem_conv.weight.grad.abs().sum() > 0
    for heads in (model.part_heads, model.u_heads, model.v_heads):
        for head in heads:
            assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    for remap in (*model.feature_remaps, *model.head_remaps):
        assert remap.weight.grad is not None and remap.weight.grad.abs().sum() > 0


def test_input_is_normalised_inside() -> None:
    """The first convolution sees ``images - 0.5``."""
    model = _tiny(1)
    seen: list[torch.Tensor] = []
    hook = model.stem[0].register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    images = torch.rand(2, 3, CROP, CROP)
    model(images)
    hook.remove()
    assert torch.equal(seen[0], images - 0.5)


def test_parameter_count_in_docstring_matches_defaults() -> None:
    documented = re.search(r"\*\*([\d,]+)\*\*", model_module.__doc__ or "")
    assert documented is not None, "the module docstring states the default parameter count"
    count = sum(p.numel() for p in HourglassDensePose().parameters())
    assert count == int(documented.group(1).replace(",", ""))
