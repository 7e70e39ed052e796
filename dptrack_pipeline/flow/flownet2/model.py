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

Shapes are checked at the boundary (:meth:`FlowNet2.forward`); pre- and post-processing of
arbitrary image sizes lives in :mod:`~dptrack_pipeline.flow.flownet2.inference`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dptrack_pipeline.flow.flownet2.correlation import correlation

DIV_FLOW = 20.0
RGB_MAX = 255.0
SIZE_MULTIPLE = 64
UPSAMPLE_ALIGN_CORNERS = False

CorrelationFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


class _Decoder(nn.Module):
    """The refinement ladder shared by FlowNetC and FlowNetS (levels 6 -> 2)."""

    def _decode(
        self, conv6: torch.Tensor, conv5: torch.Tensor, conv4: torch.Tensor, conv3, conv2
    ) -> torch.Tensor:
        flow6 = self.predict_flow6(conv6)
        concat5 = torch.cat((conv5, self.deconv5(conv6), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(concat5)
        concat4 = torch.cat((conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(concat4)
        concat3 = torch.cat((conv3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(concat3)
        concat2 = torch.cat((conv2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        return self.predict_flow2(concat2)

    def _build_decoder(self, upsample_bias: bool) -> None:
        self.deconv5 = _deconv(1024, 512)
        self.deconv4 = _deconv(1026, 256)
        self.deconv3 = _deconv(770, 128)
        self.deconv2 = _deconv(386, 64)
        self.predict_flow6 = _predict_flow(1024)
        self.predict_flow5 = _predict_flow(1026)
        self.predict_flow4 = _predict_flow(770)
        self.predict_flow3 = _predict_flow(386)
        self.predict_flow2 = _predict_flow(194)
        self.upsampled_flow6_to_5 = _upsample_flow(upsample_bias)
        self.upsampled_flow5_to_4 = _upsample_flow(upsample_bias)
        self.upsampled_flow4_to_3 = _upsample_flow(upsample_bias)
        self.upsampled_flow3_to_2 = _upsample_flow(upsample_bias)


class FlowNetC(_Decoder):
    """``(B, 6, H, W)`` (two normalised images) -> ``(B, 2, H/4, W/4)`` flow / ``div_flow``."""

    def __init__(self, correlation_fn: CorrelationFn = correlation) -> None:
        super().__init__()
        self.correlation_fn = correlation_fn
        self.conv1 = _conv(3, 64, 7, 2)
        self.conv2 = _conv(64, 128, 5, 2)
        self.conv3 = _conv(128, 256, 5, 2)
        self.conv_redir = _conv(256, 32, 1, 1)
        self.conv3_1 = _conv(473, 256)
        self.conv4 = _conv(256, 512, stride=2)
        self.conv4_1 = _conv(512, 512)
        self.conv5 = _conv(512, 512, stride=2)
        self.conv5_1 = _conv(512, 512)
        self.conv6 = _conv(512, 1024, stride=2)
        self.conv6_1 = _conv(1024, 1024)
        self._build_decoder(upsample_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        # Both images through the shared encoder in one call.
        both = torch.cat((x[:, :3], x[:, 3:]), dim=0)
        conv2 = self.conv2(self.conv1(both))
        conv3 = self.conv3(conv2)
        conv2a, conv3a, conv3b = conv2[:batch], conv3[:batch], conv3[batch:]
        corr = F.leaky_relu(self.correlation_fn(conv3a, conv3b), 0.1)
        conv3_1 = self.conv3_1(torch.cat((self.conv_redir(conv3a), corr), 1))
        conv4 = self.conv4_1(self.conv4(conv3_1))
        conv5 = self.conv5_1(self.conv5(conv4))
        conv6 = self.conv6_1(self.conv6(conv5))
        return self._decode(conv6, conv5, conv4, conv3_1, conv2a)


class FlowNetS(_Decoder):
    """``(B, 12, H, W)`` -> ``(B, 2, H/4, W/4)`` flow / ``div_flow``."""

    def __init__(self, input_channels: int = 12) -> None:
        super().__init__()
        self.conv1 = _conv(input_channels, 64, 7, 2)
        self.conv2 = _conv(64, 128, 5, 2)
        self.conv3 = _conv(128, 256, 5, 2)
        self.conv3_1 = _conv(256, 256)
        self.conv4 = _conv(256, 512, stride=2)
        self.conv4_1 = _conv(512, 512)
        self.conv5 = _conv(512, 512, stride=2)
        self.conv5_1 = _conv(512, 512)
        self.conv6 = _conv(512, 1024, stride=2)
        self.conv6_1 = _conv(1024, 1024)
        self._build_decoder(upsample_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv2 = self.conv2(self.conv1(x))
        conv3 = self.conv3_1(self.conv3(conv2))
        conv4 = self.conv4_1(self.conv4(conv3))
        conv5 = self.conv5_1(self.conv5(conv4))
        conv6 = self.conv6_1(self.conv6(conv5))
        return self._decode(conv6, conv5, conv4, conv3, conv2)


class FlowNetSD(nn.Module):
    """Small-displacement net: ``(B, 6, H, W)`` -> ``(B, 2, H/4, W/4)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = _conv(6, 64)
        self.conv1 = _conv(64, 64, stride=2)
        self.conv1_1 = _conv(64, 128)
        self.conv2 = _conv(128, 128, stride=2)
        self.conv2_1 = _conv(128, 128)
        self.conv3 = _conv(128, 256, stride=2)
        self.conv3_1 = _conv(256, 256)
        self.conv4 = _conv(256, 512, stride=2)
        self.conv4_1 = _conv(512, 512)
        self.conv5 = _conv(512, 512, stride=2)
        self.conv5_1 = _conv(512, 512)
        self.conv6 = _conv(512, 1024, stride=2)
        self.conv6_1 = _conv(1024, 1024)
        self.deconv5 = _deconv(1024, 512)
        self.deconv4 = _deconv(1026, 256)
        self.deconv3 = _deconv(770, 128)
        self.deconv2 = _deconv(386, 64)
        self.inter_conv5 = _inter_conv(1026, 512)
        self.inter_conv4 = _inter_conv(770, 256)
        self.inter_conv3 = _inter_conv(386, 128)
        self.inter_conv2 = _inter_conv(194, 64)
        self.predict_flow6 = _predict_flow(1024)
        self.predict_flow5 = _predict_flow(512)
        self.predict_flow4 = _predict_flow(256)
        self.predict_flow3 = _predict_flow(128)
        self.predict_flow2 = _predict_flow(64)
        self.upsampled_flow6_to_5 = _upsample_flow(True)
        self.upsampled_flow5_to_4 = _upsample_flow(True)
        self.upsampled_flow4_to_3 = _upsample_flow(True)
        self.upsampled_flow3_to_2 = _upsample_flow(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv0 = self.conv0(x)
        conv1 = self.conv1_1(self.conv1(conv0))
        conv2 = self.conv2_1(self.conv2(conv1))
        conv3 = self.conv3_1(self.conv3(conv2))
        conv4 = self.conv4_1(self.conv4(conv3))
        conv5 = self.conv5_1(self.conv5(conv4))
        conv6 = self.conv6_1(self.conv6(conv5))
        flow6 = self.predict_flow6(conv6)
        concat5 = torch.cat((conv5, self.deconv5(conv6), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(self.inter_conv5(concat5))
        concat4 = torch.cat((conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(self.inter_conv4(concat4))
        concat3 = torch.cat((conv3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(self.inter_conv3(concat3))
        concat2 = torch.cat((conv2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        return self.predict_flow2(self.inter_conv2(concat2))


class FlowNetFusion(nn.Module):
    """``(B, 11, H, W)`` -> ``(B, 2, H, W)`` fused flow in pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = _conv(11, 64)
        self.conv1 = _conv(64, 64, stride=2)
        self.conv1_1 = _conv(64, 128)
        self.conv2 = _conv(128, 128, stride=2)
        self.conv2_1 = _conv(128, 128)
        self.deconv1 = _deconv(128, 32)
        self.deconv0 = _deconv(162, 16)
        self.inter_conv1 = _inter_conv(162, 32)
        self.inter_conv0 = _inter_conv(82, 16)
        self.predict_flow2 = _predict_flow(128)
        self.predict_flow1 = _predict_flow(32)
        self.predict_flow0 = _predict_flow(16)
        self.upsampled_flow2_to_1 = _upsample_flow(True)
        self.upsampled_flow1_to_0 = _upsample_flow(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv0 = self.conv0(x)
        conv1 = self.conv1_1(self.conv1(conv0))
        conv2 = self.conv2_1(self.conv2(conv1))
        flow2 = self.predict_flow2(conv2)
        concat1 = torch.cat((conv1, self.deconv1(conv2), self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(concat1))
        concat0 = torch.cat((conv0, self.deconv0(concat1), self.upsampled_flow1_to_0(flow1)), 1)
        return self.predict_flow0(self.inter_conv0(concat0))


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
