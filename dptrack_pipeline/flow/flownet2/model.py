"""FlowNet2 (Ilg et al., CVPR 2017) in plain PyTorch, module-for-module the public PyTorch port.

Module and parameter names match the public checkpoint ``FlowNet2_checkpoint.pth.tar`` (220
tensors, 162,518,834 parameters; ``../shared/reference/flownet2_state_dict_keys.txt``), so it loads
with ``strict=True``. Why written here rather than taken from the port: the port needs three CUDA
extensions (correlation, resample, channel norm) that must be compiled against each PyTorch/CUDA
pair and fail to build on recent ones. Here the correlation is
:func:`~dptrack_pipeline.flow.flownet2.correlation.correlation` (matmul + gather), the resampling
is ``grid_sample`` and the channel norm a ``torch.linalg.vector_norm``: nothing to compile.

The stack (each ``flow`` is in pixels, ``(B, 2, H, W)``, channel 0 = x, from image 1 to image 2):

1. FlowNetC on the two images -> flow at 1/4 size, ``x div_flow``, bilinear x4 upsample.
2. FlowNetS (``flownets_1``) on [images, image 2 warped by that flow, flow / div_flow, brightness
   error] -> bilinear x4; 3. FlowNetS (``flownets_2``) the same on its flow -> nearest x4.
4. FlowNetSD on the two images -> nearest x4, **divided** by ``div_flow`` (as the public model).
5. FlowNetFusion on [image 1, both flows, their norms, both brightness errors] -> the output.

Conventions of the public model that this one keeps, each of which changes the numbers:

* Input ``(B, 3, 2, H, W)`` RGB in 0..255 (``H, W`` multiples of 64); the per-channel mean over
  both frames and all pixels is subtracted and the result divided by ``rgb_max = 255``.
* Warping samples image 2 at ``(x + u, y + v)`` bilinearly with edge clamping:
  ``grid_sample(align_corners=True, padding_mode="border")``, the same as the port's Resample2d.
  It runs in fp32 whatever the model's dtype: in bf16 a normalised coordinate is off by pixels.
* ChannelNorm is the L2 norm over channels, keeping a 1-channel dimension.
* Correlation: max displacement 20, stride 2, 441 channels, divided by the 256 feature channels,
  then LeakyReLU(0.1); every conv is followed by LeakyReLU(0.1) except the flow predictors and the
  ``inter_conv`` layers; deconvs are 4x4 stride 2 transposed convs with LeakyReLU.
* ``nn.Upsample(mode="bilinear")`` in the port has ``align_corners=False`` on PyTorch >= 0.4
  (where the published EPEs of the port were measured); kept so (``UPSAMPLE_ALIGN_CORNERS``).

The four sub-networks differ only in data, a table of named convs (:data:`ConvSpec`) and a
:class:`Ladder` (the decoder), built and run by one class that registers the layers under the
port's names in the checkpoint's order; only FlowNetC's correlation step is written out.

Shapes are checked at the boundary (:meth:`FlowNet2.forward`); pre- and post-processing of
arbitrary image sizes lives in :mod:`~dptrack_pipeline.flow.flownet2.inference`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from dptrack_pipeline.flow.flownet2.correlation import correlation

DIV_FLOW = 20.0
RGB_MAX = 255.0
SIZE_MULTIPLE = 64
UPSAMPLE_ALIGN_CORNERS = False

CorrelationFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ConvSpec = tuple[str, int, int, int, int]
"""``(name, in_channels, out_channels, kernel_size, stride)`` of one conv + LeakyReLU; a name
``conv<n>`` or ``conv<n>_1`` works at pyramid level ``n`` (``1 / 2**n`` of the input size)."""


def _level_convs(
    level: int, in_planes: int, out_planes: int, kernel_size: int = 3, refined_planes: int = 0
) -> tuple[ConvSpec, ConvSpec]:
    """``conv<n>`` (stride 2, down to level ``n``) then ``conv<n>_1`` (3x3, stride 1), which
    outputs ``refined_planes`` channels (default ``out_planes``)."""
    refined = refined_planes or out_planes
    return (
        (f"conv{level}", in_planes, out_planes, kernel_size, 2),
        (f"conv{level}_1", out_planes, refined, 3, 1),
    )


def _large_kernel_convs(in_channels: int) -> tuple[ConvSpec, ...]:
    """Levels 1..3 of FlowNetC (3 input channels, one image) and FlowNetS (12): 7x7, 5x5, 5x5."""
    return (
        ("conv1", in_channels, 64, 7, 2),
        ("conv2", 64, 128, 5, 2),
        ("conv3", 128, 256, 5, 2),
    )


def _fine_encoder(in_channels: int) -> tuple[ConvSpec, ...]:
    """Levels 0..2: the start of FlowNetSD (6 input channels) and of FlowNetFusion (11)."""
    return (
        ("conv0", in_channels, 64, 3, 1),
        *_level_convs(1, 64, 64, refined_planes=128),
        *_level_convs(2, 128, 128),
    )


_DEEP_ENCODER = (
    *_level_convs(4, 256, 512),
    *_level_convs(5, 512, 512),
    *_level_convs(6, 512, 1024),
)
"""Levels 4..6, the same in FlowNetC, FlowNetS and FlowNetSD."""

_FLOWNETC_HEAD: tuple[ConvSpec, ...] = (
    *_large_kernel_convs(3),
    ("conv_redir", 256, 32, 1, 1),
    ("conv3_1", 32 + 441, 256, 3, 1),  # redirected features + the 441 correlation channels
)
_FLOWNETS_ENCODER = (*_large_kernel_convs(12), ("conv3_1", 256, 256, 3, 1), *_DEEP_ENCODER)
_FLOWNETSD_ENCODER = (*_fine_encoder(6), *_level_convs(3, 128, 256), *_DEEP_ENCODER)


@dataclass(frozen=True)
class Ladder:
    """The coarse-to-fine flow refinement of one sub-network (built by :class:`_FlowNetPart`).

    At the coarsest level ``predict_flow<top>`` reads the deepest features. At each finer level
    ``n`` the features joined are ``[encoder features of level n, deconv<n>(previous joined
    features), upsampled_flow<n+1>_to_<n>(previous flow)]`` and ``predict_flow<n>`` reads them
    (through ``inter_conv<n>`` first where the ladder has inter convs).

    Attributes:
        levels: pyramid levels, coarsest first; the flow of the last one is the output.
        top_channels: channels of the deepest features (level ``levels[0]``).
        skip_channels: channels of the encoder features joined at ``levels[1:]``.
        deconv_channels: output channels of ``deconv<n>`` (and ``inter_conv<n>``) at ``levels[1:]``.
        inter_conv: FlowNetSD and FlowNetFusion have ``inter_conv<n>`` layers; FlowNetC/S not.
        upsample_bias: the ``upsampled_flow`` transposed convs have a bias (not in FlowNetS).
    """

    levels: tuple[int, ...]
    top_channels: int
    skip_channels: tuple[int, ...]
    deconv_channels: tuple[int, ...]
    inter_conv: bool
    upsample_bias: bool

    def joined_channels(self) -> tuple[int, ...]:
        """Channels of the joined features at each of ``levels[1:]`` (the 2 are the flow)."""
        pairs = zip(self.skip_channels, self.deconv_channels, strict=True)
        return tuple(skip + deconv + 2 for skip, deconv in pairs)


def _coarse_ladder(inter_conv: bool, upsample_bias: bool) -> Ladder:
    """Levels 6 -> 2 over the encoders of FlowNetC, FlowNetS and FlowNetSD."""
    return Ladder(
        levels=(6, 5, 4, 3, 2),
        top_channels=1024,
        skip_channels=(512, 512, 256, 128),
        deconv_channels=(512, 256, 128, 64),
        inter_conv=inter_conv,
        upsample_bias=upsample_bias,
    )


def _conv(in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv + LeakyReLU(0.1), "same" padding; the port's ``conv(batchNorm=False, ...)``."""
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2, bias=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


def _inter_conv(in_planes: int, out_planes: int) -> nn.Sequential:
    """3x3 conv without activation (the port's ``i_conv``); a Sequential for the ``.0.`` names."""
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 3, 1, 1, bias=True))


def _deconv(in_planes: int, out_planes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_planes, out_planes, 4, 2, 1, bias=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


def _predict_flow(in_planes: int) -> nn.Conv2d:
    return nn.Conv2d(in_planes, 2, 3, 1, 1, bias=True)


def _upsample_flow(bias: bool) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=bias)


def _level(conv_name: str) -> int:
    """The pyramid level of ``conv<n>`` / ``conv<n>_1``."""
    return int(conv_name.removeprefix("conv").split("_")[0])


def channel_norm(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, 1, H, W)``: the L2 norm over channels (the port's ChannelNorm)."""
    return torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at ``(x + flow_x, y + flow_y)``: bilinear, edges clamped.

    Args:
        image: ``(B, C, H, W)``.
        flow: ``(B, 2, H, W)`` in pixels, channel 0 = x, pixel centres on integer coordinates.

    Returns:
        ``(B, C, H, W)`` in ``image``'s dtype; computed in fp32 (see the module docstring).
    """
    batch, _, height, width = image.shape
    ys = torch.arange(height, device=flow.device, dtype=torch.float32)
    xs = torch.arange(width, device=flow.device, dtype=torch.float32)
    flow = flow.float()
    gx = (xs.view(1, 1, width) + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
    gy = (ys.view(1, height, 1) + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=3)
    out = F.grid_sample(
        image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out.to(image.dtype)


class _FlowNetPart(nn.Module):
    """A FlowNet sub-network: named convs (the encoder) and a :class:`Ladder` (the decoder).

    Layers are registered in the public checkpoint's order: the encoder convs, then every
    ``deconv``, ``inter_conv``, ``predict_flow`` and ``upsampled_flow`` of the ladder, each kind
    coarsest first. ``_encode`` keeps only the features the ladder joins, so no more activations
    are alive at once than in a hand-written forward.
    """

    def __init__(self, encoder: Sequence[ConvSpec], ladder: Ladder) -> None:
        super().__init__()
        for name, in_planes, out_planes, kernel_size, stride in encoder:
            self.add_module(name, _conv(in_planes, out_planes, kernel_size, stride))
        self.ladder = ladder
        self.encoder_names = tuple(name for name, *_ in encoder)
        levels, joined = ladder.levels, ladder.joined_channels()
        finer = levels[1:]
        deconv_in = (ladder.top_channels, *joined[:-1])
        for level, cin, cout in zip(finer, deconv_in, ladder.deconv_channels, strict=True):
            self.add_module(f"deconv{level}", _deconv(cin, cout))
        if ladder.inter_conv:
            for level, cin, cout in zip(finer, joined, ladder.deconv_channels, strict=True):
                self.add_module(f"inter_conv{level}", _inter_conv(cin, cout))
        predicted_from = ladder.deconv_channels if ladder.inter_conv else joined
        for level, cin in zip(levels, (ladder.top_channels, *predicted_from), strict=True):
            self.add_module(f"predict_flow{level}", _predict_flow(cin))
        for coarse, fine in pairwise(levels):
            self.add_module(
                f"upsampled_flow{coarse}_to_{fine}", _upsample_flow(ladder.upsample_bias)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._decode(self._encode(x, self.encoder_names))

    def _encode(self, x: torch.Tensor, names: Sequence[str]) -> dict[int, torch.Tensor]:
        """Run the convs ``names`` in order; the last output of each ladder level, by level."""
        kept: dict[int, torch.Tensor] = {}
        for name in names:
            x = getattr(self, name)(x)
            if _level(name) in self.ladder.levels:
                kept[_level(name)] = x
        return kept

    def _decode(self, features: dict[int, torch.Tensor]) -> torch.Tensor:
        """The ladder over the encoder ``features`` (by level) -> the finest level's flow."""
        levels = self.ladder.levels
        joined = features[levels[0]]  # at the coarsest level: the deepest features alone
        flow = getattr(self, f"predict_flow{levels[0]}")(joined)
        for coarse, level in pairwise(levels):
            deconv = getattr(self, f"deconv{level}")(joined)
            upsampled = getattr(self, f"upsampled_flow{coarse}_to_{level}")(flow)
            joined = torch.cat((features[level], deconv, upsampled), 1)
            if self.ladder.inter_conv:
                flow = getattr(self, f"predict_flow{level}")(
                    getattr(self, f"inter_conv{level}")(joined)
                )
            else:
                flow = getattr(self, f"predict_flow{level}")(joined)
        return flow


class FlowNetC(_FlowNetPart):
    """``(B, 6, H, W)`` (two normalised images) -> ``(B, 2, H/4, W/4)`` flow / ``div_flow``."""

    def __init__(self, correlation_fn: CorrelationFn = correlation) -> None:
        super().__init__((*_FLOWNETC_HEAD, *_DEEP_ENCODER), _coarse_ladder(False, True))
        self.correlation_fn = correlation_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        # Both images through the shared encoder in one call.
        both = torch.cat((x[:, :3], x[:, 3:]), dim=0)
        conv2 = self.conv2(self.conv1(both))
        conv3 = self.conv3(conv2)
        conv3a, conv3b = conv3[:batch], conv3[batch:]
        corr = F.leaky_relu(self.correlation_fn(conv3a, conv3b), 0.1)
        conv3_1 = self.conv3_1(torch.cat((self.conv_redir(conv3a), corr), 1))
        features = self._encode(conv3_1, self.encoder_names[len(_FLOWNETC_HEAD) :])
        return self._decode({**features, 3: conv3_1, 2: conv2[:batch]})


class FlowNetS(_FlowNetPart):
    """``(B, 12, H, W)`` -> ``(B, 2, H/4, W/4)`` flow / ``div_flow``."""

    def __init__(self) -> None:
        super().__init__(_FLOWNETS_ENCODER, _coarse_ladder(False, False))


class FlowNetSD(_FlowNetPart):
    """Small-displacement net: ``(B, 6, H, W)`` -> ``(B, 2, H/4, W/4)``."""

    def __init__(self) -> None:
        super().__init__(_FLOWNETSD_ENCODER, _coarse_ladder(True, True))


class FlowNetFusion(_FlowNetPart):
    """``(B, 11, H, W)`` -> ``(B, 2, H, W)`` fused flow in pixels (levels 2 -> 0)."""

    def __init__(self) -> None:
        ladder = Ladder((2, 1, 0), 128, (128, 64), (32, 16), inter_conv=True, upsample_bias=True)
        super().__init__(_fine_encoder(11), ladder)


class FlowNet2(nn.Module):
    """The full FlowNet2 stack; see the module docstring for its conventions.

    Args:
        correlation_fn: the correlation used by FlowNetC (default the tiled-matmul
            :func:`~dptrack_pipeline.flow.flownet2.correlation.correlation`; tests pass the
            reference loop).
    """

    def __init__(self, correlation_fn: CorrelationFn = correlation) -> None:
        super().__init__()
        self.div_flow = DIV_FLOW
        self.rgb_max = RGB_MAX
        self.flownetc = FlowNetC(correlation_fn)
        self.flownets_1 = FlowNetS()
        self.flownets_2 = FlowNetS()
        self.flownets_d = FlowNetSD()
        self.flownetfusion = FlowNetFusion()

    @staticmethod
    def _upsample(flow: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "bilinear":
            return F.interpolate(
                flow, scale_factor=4, mode="bilinear", align_corners=UPSAMPLE_ALIGN_CORNERS
            )
        return F.interpolate(flow, scale_factor=4, mode="nearest")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 2, H, W)`` RGB 0..255, ``H, W`` multiples of 64 -> ``(B, 2, H, W)`` fp32 flow.

        Runs in the dtype of the parameters; the mean subtraction and every warp are fp32.
        """
        if inputs.ndim != 5 or inputs.shape[1] != 3 or inputs.shape[2] != 2:
            raise ValueError(f"expected input (B, 3, 2, H, W), got {tuple(inputs.shape)}")
        height, width = inputs.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(
                f"input height and width must be multiples of {SIZE_MULTIPLE}, got {height}x{width}"
                " (flownet2.inference.estimate_flow resizes or pads any size)"
            )
        dtype = next(self.parameters()).dtype
        inputs = inputs.float()
        mean = inputs.mean(dim=(2, 3, 4), keepdim=True)
        x = (inputs - mean) / self.rgb_max
        img1, img2 = x[:, :, 0], x[:, :, 1]
        x = torch.cat((img1, img2), dim=1).to(dtype)
        img1, img2 = x[:, :3], x[:, 3:]

        flow_c = self._upsample(self.flownetc(x).float() * self.div_flow, "bilinear")
        flow_s1 = self._upsample(
            self.flownets_1(self._refine_input(x, img1, img2, flow_c)).float() * self.div_flow,
            "bilinear",
        )
        flow_s2 = self._upsample(
            self.flownets_2(self._refine_input(x, img1, img2, flow_s1)).float() * self.div_flow,
            "nearest",
        )
        flow_sd = self._upsample(self.flownets_d(x).float() / self.div_flow, "nearest")
        error_s2 = channel_norm(img1.float() - warp(img2, flow_s2).float())
        error_sd = channel_norm(img1.float() - warp(img2, flow_sd).float())
        fusion_in = torch.cat(
            (
                img1.float(),
                flow_sd,
                flow_s2,
                channel_norm(flow_sd),
                channel_norm(flow_s2),
                error_sd,
                error_s2,
            ),
            dim=1,
        )
        return self.flownetfusion(fusion_in.to(dtype)).float()

    def _refine_input(
        self, x: torch.Tensor, img1: torch.Tensor, img2: torch.Tensor, flow: torch.Tensor
    ) -> torch.Tensor:
        """[img1, img2, img2 warped by flow, flow / div_flow, |img1 - warped|] (12 channels)."""
        warped = warp(img2, flow)
        error = channel_norm(img1.float() - warped.float())
        parts = (x.float(), warped.float(), flow / self.div_flow, error)
        return torch.cat(parts, dim=1).to(x.dtype)
