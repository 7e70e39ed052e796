"""Any-size image pairs in, pixel flows out: FlowNet2's pre- and post-processing.

FlowNet2 needs ``H, W`` multiples of 64 (six stride-2 stages). Two ways to get there, chosen by
``fit``:

* ``"resize"`` (default): both images are resized bilinearly to the next multiples of 64 (never
  smaller, so nothing is lost), and the flow is resized back and its x and y components scaled by
  ``W / W64`` and ``H / H64``. The network sees the scene up to ~10% larger than it is.
* ``"pad"``: images are padded at the bottom and right by repeating the edge rows and columns,
  and the flow is cropped back. The network sees the scene at its true scale, but the repeated
  edges are not a real scene and flow next to them is less reliable.

Resizing uses ``F.interpolate(..., align_corners=False)``: pixel centres at ``i + 0.5`` in both
grids, so a pixel of the original maps to ``(c + 0.5) * W64 / W - 0.5`` and a flow vector scales
by ``W64 / W`` exactly; the flow is rescaled by the inverse.

Transfers: the batch goes to the device as uint8 (4x fewer bytes than float) and the flows come
back in one ``.cpu()`` call per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dptrack_pipeline.flow.flownet2.model import SIZE_MULTIPLE

FITS = ("resize", "pad")


def network_size(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """The smallest ``(H', W')``, multiples of ``multiple``, with ``H' >= height, W' >= width``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def to_network_input(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    device: torch.device | str,
    fit: str = "resize",
) -> torch.Tensor:
    """Stack ``(H, W, 3)`` uint8 RGB pairs of one size into ``(B, 3, 2, H', W')`` float32 0..255.

    Raises:
        ValueError: for an unknown ``fit``, an empty batch or pairs of different sizes.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if not pairs:
        raise ValueError("empty batch")
    shapes = {image.shape for pair in pairs for image in pair}
    if len(shapes) != 1:
        raise ValueError(f"all images of a batch must have one size, got {sorted(shapes)}")
    height, width = pairs[0][0].shape[:2]
    stacked = np.stack([np.stack(pair) for pair in pairs])  # (B, 2, H, W, 3) uint8
    batch = torch.from_numpy(stacked).to(device, non_blocking=True)
    batch = batch.permute(0, 4, 1, 2, 3).float()  # (B, 3, 2, H, W)
    target = network_size(height, width)
    if target == (height, width):
        return batch.contiguous()
    flat = batch.flatten(1, 2)  # (B, 6, H, W)
    if fit == "resize":
        flat = F.interpolate(flat, size=target, mode="bilinear", align_corners=False)
    else:
        flat = F.pad(flat, (0, target[1] - width, 0, target[0] - height), mode="replicate")
    return flat.reshape(batch.shape[0], 3, 2, *target)


def from_network_output(
    flow: torch.Tensor, height: int, width: int, fit: str = "resize"
) -> torch.Tensor:
    """``(B, 2, H', W')`` network flow -> ``(B, 2, height, width)`` flow in original pixels."""
    net_h, net_w = flow.shape[-2:]
    if (net_h, net_w) == (height, width):
        return flow
    if fit == "pad":
        return flow[:, :, :height, :width]
    flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    scale = torch.tensor([width / net_w, height / net_h], device=flow.device, dtype=flow.dtype)
    return flow * scale.view(1, 2, 1, 1)


def run_network(
    model: torch.nn.Module,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    device: torch.device | str,
    fit: str = "resize",
) -> np.ndarray:
    """Flows of a batch of same-size pairs: ``(B, H, W, 2)`` float32 numpy, channel 0 = x.

    ``model`` maps ``(B, 3, 2, H', W')`` to ``(B, 2, H', W')`` (a :class:`FlowNet2`).
    """
    height, width = pairs[0][0].shape[:2]
    with torch.inference_mode():
        net_in = to_network_input(pairs, device, fit)
        flow = from_network_output(model(net_in).float(), height, width, fit)
        return flow.permute(0, 2, 3, 1).contiguous().cpu().numpy()
