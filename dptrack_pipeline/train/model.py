"""A stacked Hourglass network for dense pose (Newell et al. ECCV 2016; Slim DensePose Sec. 5.1).

Slim DensePose (Neverova et al., CVPR 2019) replaces DensePose-RCNN's ROI head by a stacked
Hourglass applied to person crops and trained from scratch; the paper's best model has 6 stacks
and enforces equivariance on "the features preceding the output layers at each hourglass stack".
This module is that network, in the layout of Newell et al.'s reference code:

* **Stem** (stride ``stem_stride``): a 7x7 convolution (stride 2 for ``stem_stride`` 2 and 4,
  stride 1 for 1) with BatchNorm + ReLU, a bottleneck residual block, a 2x2 max-pool (only for
  ``stem_stride`` 4) and two more residual blocks. Its output is the "early" feature level
  (Slim DensePose Table 7, level 0). Strides 1 and 2 exist for tiny CPU crops (tests, smoke runs).
* **Stacks**: each is an hourglass of ``depth`` recursive levels (residual block, 2x2 max-pool,
  recursion, residual block, nearest upsampling, added to a full-resolution residual branch),
  then a residual block and a 1x1 convolution + BatchNorm + ReLU giving the stack's ``features``.
  Three 1x1 heads read the features: ``part_logits`` (``num_parts`` channels: background + 24
  surface patches), and ``u``, ``v`` (``num_parts - 1`` channels each, one per patch, squashed by a
  sigmoid into ``[0, 1]``).
* **Intermediate supervision**: every stack returns its heads (the trainer applies the losses to
  each). Every stack but the last feeds the next with
  ``stack_input + conv1x1(features) + conv1x1(concat(part_logits, u, v))``, the residual
  re-injection of Newell et al.'s reference implementation (``inter = inter + ll_ + tmpOut_``).

All outputs share one resolution: ``S / stem_stride`` for an ``S x S`` crop (the hourglass maps
its input resolution back to itself), so the output stride is ``stem_stride`` (4 by default,
64x64 maps for 256x256 crops). Map cell ``j`` covers crop pixels ``[j * s, (j + 1) * s)``
(``s`` = the stride); its centre is at crop coordinate ``j * s + (s - 1) / 2`` (see
:func:`dptrack_pipeline.train.losses.sample_at_points`).

Input normalisation happens inside the model: images in ``[0, 1]`` are shifted by ``-0.5`` (no
per-channel statistics, since the network is trained from scratch), so callers feed raw crops.

Parameter count with the defaults (2 stacks, 128 channels, depth 4, 25 parts, stem stride 4):
**1,766,546** (``tests/train/test_model.py`` recomputes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

MAX_STACKS = 8
"""Largest accepted ``num_stacks`` (the paper's models use up to 6, Newell et al. 8)."""

FEATURE_LEVELS: tuple[str, ...] = ("stack_features", "segmentation", "uv", "early")
"""Names accepted by :func:`feature_level`, besides ``"stack:K"`` for stack ``K`` (0-based)."""


@dataclass(frozen=True)
class StackOutput:
    """What one hourglass stack predicts, at the output stride ``s`` (maps of ``h = S / s``).

    Attributes:
        features: ``(B, C, h, w)`` float, the features preceding the output layers (the level at
            which Slim DensePose applies equivariance).
        part_logits: ``(B, num_parts, h, w)`` unnormalised scores of the fine parts ``I`` (channel
            0 = background, ``k`` = surface patch ``k``).
        u: ``(B, num_parts - 1, h, w)`` in ``[0, 1]``; channel ``k - 1`` is ``U`` for patch ``k``.
        v: ``(B, num_parts - 1, h, w)`` in ``[0, 1]``; channel ``k - 1`` is ``V`` for patch ``k``.
    """

    features: torch.Tensor
    part_logits: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


class HourglassOutputs(list[StackOutput]):
    """The model's output: a list of :class:`StackOutput`, one per stack (the last is the final
    prediction), with the stem's output attached as ``stem_features`` (``(B, C, h, w)``, the
    "early" level of :func:`feature_level`)."""

    def __init__(self, stacks: list[StackOutput], stem_features: torch.Tensor) -> None:
        super().__init__(stacks)
        self.stem_features = stem_features


class Residual(nn.Module):
    """Newell et al.'s pre-activation bottleneck: BN-ReLU-conv1x1 (``out/2``) - BN-ReLU-conv3x3
    (``out/2``) - BN-ReLU-conv1x1 (``out``), plus the input (through a 1x1 convolution when the
    channel count changes). Keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = max(out_channels // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1),
        )
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The in-place ReLUs act on BatchNorm outputs, never on `x`, so the skip sees the input.
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` recursive levels at ``channels`` channels; output size = input
    size. Each level halves the resolution with a 2x2 max-pool and restores it with nearest
    upsampling to the exact skip size (so odd sizes work; the smallest level must be >= 1 px)."""

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.skip = Residual(channels, channels)
        self.down = Residual(channels, channels)
        self.inner: nn.Module = (
            Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        )
        self.up = Residual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x)
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return skip + F.interpolate(low, size=skip.shape[-2:], mode="nearest")


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class HourglassDensePose(nn.Module):
    """Stacked Hourglass predicting fine parts and per-part UV coordinates (see module docstring).

    Args:
        num_stacks: number of hourglass stacks, 1..8.
        channels: feature channels ``C`` of the stem output, hourglasses and stack features.
        depth: recursion depth of each hourglass (4 in Newell et al.); the map side
            ``S / stem_stride`` must be at least ``2 ** depth``.
        num_parts: fine part classes including background (25 for DensePose); the UV heads have
            ``num_parts - 1`` channels.
        stem_stride: output stride, 4 (default), 2 or 1.

    Raises:
        ValueError: on a ``num_stacks`` outside 1..8, a ``stem_stride`` not in (1, 2, 4), or
            non-positive ``channels``, ``depth`` or ``num_parts < 2``.

    Example:
        >>> model = HourglassDensePose(num_stacks=1, channels=16, depth=2, stem_stride=2)
        >>> outputs = model(torch.rand(2, 3, 32, 32))
        >>> outputs[-1].part_logits.shape, outputs.stem_features.shape
        (torch.Size([2, 25, 16, 16]), torch.Size([2, 16, 16, 16]))
    """

    def __init__(
        self,
        num_stacks: int = 2,
        channels: int = 128,
        depth: int = 4,
        num_parts: int = 25,
        stem_stride: int = 4,
    ) -> None:
        super().__init__()
        if not 1 <= num_stacks <= MAX_STACKS:
            raise ValueError(f"num_stacks must be in 1..{MAX_STACKS}, got {num_stacks}")
        if stem_stride not in (1, 2, 4):
            raise ValueError(f"stem_stride must be 1, 2 or 4, got {stem_stride}")
        if channels < 2 or depth < 1 or num_parts < 2:
            raise ValueError(
                "need channels >= 2, depth >= 1 and num_parts >= 2, got "
                f"channels={channels}, depth={depth}, num_parts={num_parts}"
            )
        self.num_stacks = num_stacks
        self.channels = channels
        self.depth = depth
        self.num_parts = num_parts
        self.stem_stride = stem_stride

        half = channels // 2
        stem: list[nn.Module] = [
            nn.Conv2d(3, half, 7, stride=1 if stem_stride == 1 else 2, padding=3),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            Residual(half, channels),
        ]
        if stem_stride == 4:
            stem.append(nn.MaxPool2d(2))
        stem += [Residual(channels, channels), Residual(channels, channels)]
        self.stem = nn.Sequential(*stem)

        num_uv = num_parts - 1
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels) for _ in range(num_stacks))
        self.feature_blocks = nn.ModuleList(
            nn.Sequential(Residual(channels, channels), _conv_bn_relu(channels, channels))
            for _ in range(num_stacks)
        )
        self.part_heads = nn.ModuleList(
            nn.Conv2d(channels, num_parts, 1) for _ in range(num_stacks)
        )
        self.u_heads = nn.ModuleList(nn.Conv2d(channels, num_uv, 1) for _ in range(num_stacks))
        self.v_heads = nn.ModuleList(nn.Conv2d(channels, num_uv, 1) for _ in range(num_stacks))
        # Re-injection into the next stack (none after the last).
        self.feature_remaps = nn.ModuleList(
            nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1)
        )
        self.head_remaps = nn.ModuleList(
            nn.Conv2d(num_parts + 2 * num_uv, channels, 1) for _ in range(num_stacks - 1)
        )

    def forward(self, images: torch.Tensor) -> HourglassOutputs:
        """Run all stacks.

        Args:
            images: ``(B, 3, H, W)`` float in ``[0, 1]`` (shifted by ``-0.5`` inside), usually
                square crops ``H = W = S``; ``H`` and ``W`` must be multiples of ``stem_stride``
                and at least ``stem_stride * 2 ** depth``.

        Returns:
            :class:`HourglassOutputs`: ``num_stacks`` :class:`StackOutput` with maps of
            ``(H / stem_stride, W / stem_stride)``, and ``.stem_features`` of the same size.

        Raises:
            ValueError: on a wrong input shape, a side not a multiple of the stride or a crop too
                small for the hourglass depth.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, S, S), got {tuple(images.shape)}")
        if any(side % self.stem_stride for side in images.shape[-2:]):
            raise ValueError(
                f"crop sides {tuple(images.shape[-2:])} must be multiples of the stem stride "
                f"{self.stem_stride}"
            )
        min_side = self.stem_stride * 2**self.depth
        if min(images.shape[-2:]) < min_side:
            raise ValueError(
                f"crops of {tuple(images.shape[-2:])} px are too small for depth {self.depth} at "
                f"stem stride {self.stem_stride}: need at least {min_side} px"
            )
        stem_features = self.stem(images - 0.5)
        x = stem_features
        stacks: list[StackOutput] = []
        for k in range(self.num_stacks):
            features = self.feature_blocks[k](self.hourglasses[k](x))
            out = StackOutput(
                features=features,
                part_logits=self.part_heads[k](features),
                u=torch.sigmoid(self.u_heads[k](features)),
                v=torch.sigmoid(self.v_heads[k](features)),
            )
            stacks.append(out)
            if k < self.num_stacks - 1:
                heads = torch.cat((out.part_logits, out.u, out.v), dim=1)
                x = x + self.feature_remaps[k](features) + self.head_remaps[k](heads)
        return HourglassOutputs(stacks, stem_features)


def feature_level(outputs: HourglassOutputs, level: str) -> torch.Tensor:
    """The tensor at a named feature level (Slim DensePose Table 7), e.g. for the equivariance loss.

    Args:
        outputs: what :meth:`HourglassDensePose.forward` returned.
        level: one of

            * ``"stack_features"``: the last stack's ``features`` ``(B, C, h, w)``;
            * ``"stack:K"``: stack ``K``'s ``features`` (0-based; negative counts from the end);
            * ``"segmentation"``: the last stack's ``part_logits`` ``(B, num_parts, h, w)``;
            * ``"uv"``: the last stack's ``cat(u, v)`` ``(B, 2 * (num_parts - 1), h, w)``;
            * ``"early"``: the stem output ``(B, C, h, w)`` (the paper's level 0).

    Returns:
        The tensor (not a copy; gradients flow into the model). All levels share the resolution
        ``h = S / stem_stride``.

    Raises:
        ValueError: on an unknown level or a stack index out of range.
    """
    if level == "stack_features":
        return outputs[-1].features
    if level == "segmentation":
        return outputs[-1].part_logits
    if level == "uv":
        return torch.cat((outputs[-1].u, outputs[-1].v), dim=1)
    if level == "early":
        return outputs.stem_features
    if level.startswith("stack:"):
        try:
            index = int(level[len("stack:") :])
        except ValueError:
            raise ValueError(f"bad stack index in feature level {level!r}") from None
        if not -len(outputs) <= index < len(outputs):
            raise ValueError(f"feature level {level!r}: the model has {len(outputs)} stacks")
        return outputs[index].features
    raise ValueError(
        f"unknown feature level {level!r}; expected one of {FEATURE_LEVELS} or 'stack:K'"
    )
