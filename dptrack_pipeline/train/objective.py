"""What does one training step minimise? The configured terms of a model output and a batch.

The maths lives in :mod:`.losses` and :mod:`.warps`; this module chooses and composes the terms.

**Supervised terms**, summed over the stacks (intermediate supervision), each switched by name:
``part_sparse`` (CE of the 25-way part head at annotated points), ``part_dense`` (CE of the
coarse parts aggregated from the part head against the 14-part masks), ``uv`` (smooth L1 on U, V
of the annotated part at annotated points). Annotated and propagated rows are averaged as two
groups (:func:`supervised_losses`), so the loss scale does not depend on the batch's mix.

**Equivariance** (Slim DensePose eq. 2 and sec. 3.2.2): ``1 - cos(Psi(A)[p], Psi(B)[p + g(p)])``
over valid ``p``, with ``g`` the shards' flow (``real``) or a random thin-plate-spline warp of the
supervised images (``tps``: ``A`` = the warped image, ``B`` = the image), ``Psi`` the chosen
``feature_level``; ``stack_features`` applies it to every stack's features, as the paper does.

All inputs of one step go through the model as one concatenated batch (one forward pass, one set
of batch-norm statistics); :func:`split_outputs` cuts the output back into its parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dptrack_pipeline.train import losses as L
from dptrack_pipeline.train.config import TrainConfig
from dptrack_pipeline.train.model import HourglassOutputs, StackOutput, feature_level


def as_images(uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(B, 3, S, S)`` uint8 crops -> float images in ``[0, 1]`` on ``device``."""
    return uint8.to(device, non_blocking=True).float().div_(255.0)


def supervised_losses(
    outputs: Sequence[Any],
    batch: dict[str, Any],
    config: TrainConfig,
    crop_size: int,
    stride: int,
) -> dict[str, torch.Tensor]:
    """Each supervised loss of ``config.losses`` summed over stacks.

    Annotated and propagated rows are two groups, each averaged on its own, then combined as
    ``(L_annotated + w * L_propagated) / (1 + w)`` with ``w = propagated_weight`` (only the groups
    present in the batch count), so the loss scale does not depend on the batch's mix. Without
    GT propagation the propagated rows carry no supervised loss.
    """
    propagated = (batch["offset"] != 0).to(outputs[-1].part_logits.device)
    groups = [(~propagated, 1.0)]
    if config.gt_propagation and config.propagated_weight > 0:
        groups.append((propagated, config.propagated_weight))
    point_i = batch["point_I"]
    part_mask = batch["part_mask"]
    groups = [(rows, weight) for rows, weight in groups if bool(rows.any())]
    norm = sum(weight for _, weight in groups) or 1.0
    out: dict[str, torch.Tensor] = {}
    for name in config.losses:
        total = outputs[-1].part_logits.new_zeros(())
        for rows, weight in groups:
            ids = torch.where(rows[:, None], point_i, torch.full_like(point_i, -1))
            masks = torch.where(rows[:, None, None], part_mask, torch.full_like(part_mask, -1))
            for stack in outputs:
                if name == "part_sparse":
                    value = L.part_ce_sparse(
                        stack.part_logits, batch["points"], ids, crop_size, stride
                    )
                elif name == "part_dense":
                    value = L.part_ce_dense(stack.part_logits, masks)
                else:
                    value = L.uv_loss(
                        stack.u, stack.v, batch["points"], ids, batch["point_U"],
                        batch["point_V"], crop_size, stride,
                    )  # fmt: skip
                total = total + (weight / norm) * value
        out[name] = total
    return out


def _levels(outputs: Any, level: str) -> list[torch.Tensor]:
    if level == "stack_features":
        return [stack.features for stack in outputs]
    return [feature_level(outputs, level)]


def equivariance_term(
    outputs_a: Any,
    outputs_b: Any,
    flow: torch.Tensor,
    valid: torch.Tensor,
    level: str,
    crop_size: int,
) -> torch.Tensor:
    """Mean over the chosen levels of :func:`~dptrack_pipeline.train.losses.equivariance_loss`
    (``flow`` ``(B, S, S, 2)`` from crop A to crop B, crop pixels; ``valid`` ``(B, S, S)``)."""
    terms = [
        L.equivariance_loss(a, b, flow, valid, crop_size)
        for a, b in zip(_levels(outputs_a, level), _levels(outputs_b, level), strict=True)
    ]
    return torch.stack(terms).mean()


def split_outputs(outputs: HourglassOutputs, sizes: Sequence[int]) -> list[HourglassOutputs]:
    """Split a model output over a concatenated batch into per-part outputs of ``sizes`` rows."""
    parts = []
    start = 0
    for size in sizes:
        sl = slice(start, start + size)
        stacks = [StackOutput(s.features[sl], s.part_logits[sl], s.u[sl], s.v[sl]) for s in outputs]
        parts.append(HourglassOutputs(stacks, outputs.stem_features[sl]))
        start += size
    return parts
