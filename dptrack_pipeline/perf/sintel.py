"""How far is FlowNet2 in bf16 from fp32, and from the truth, on real frames?

The pairs are Sintel clean ``frame_0002 -> frame_0003`` of ``alley_1``, ``cave_2`` and
``market_5`` (``<sintel>/<sequence>/frame_000N.png`` and ``gt/frame_0002.flo``), run through the
estimator (resize to multiples of 64 and back), all pairs in one batch, once per precision. For
each pair: the EPE of each precision against the truth (the mean over all pixels, Sintel's
"all") and the mean and max endpoint difference between the fp32 and bf16 flows; then their
means over the pairs (and the max of the max differences). Meaningful only with the real
checkpoint.

A ``crop`` (``(W, H)``) keeps the central window of every frame and flow, for quick runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dptrack_pipeline.flow.io import read_flo
from dptrack_pipeline.flow.metrics import endpoint_error, endpoint_error_map
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.perf.flownet2_settings import size_label
from dptrack_pipeline.perf.images import read_rgb
from dptrack_pipeline.perf.results import finite_or_none

SINTEL_SEQUENCES = ("alley_1", "cave_2", "market_5")


def missing_sequences(sintel: Path) -> list[str]:
    """The sequences of :data:`SINTEL_SEQUENCES` without their truth flow under ``sintel``."""
    return [s for s in SINTEL_SEQUENCES if not (sintel / s / "gt" / "frame_0002.flo").is_file()]


def center_crop(array: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """The central ``size`` = (W, H) window of an ``(H, W, ...)`` array (all of it if ``None``)."""
    if size is None:
        return array
    width, height = min(size[0], array.shape[1]), min(size[1], array.shape[0])
    top, left = (array.shape[0] - height) // 2, (array.shape[1] - width) // 2
    return array[top : top + height, left : left + width]


def sintel_accuracy(
    sintel: Path,
    estimator_options: dict[str, Any],
    precisions: Sequence[str],
    crop: tuple[int, int] | None,
) -> dict[str, Any]:
    """EPE of each precision against the Sintel truth, and the fp32 - bf16 endpoint difference.

    Returns:
        ``{"status": "ok", "crop", "pairs": [per pair: sequence, pair, size, epe_<precision>,
        fp32_bf16_mean_epd, fp32_bf16_max_epd], "mean_epe_<precision>",
        "mean_fp32_bf16_mean_epd", "max_fp32_bf16_max_epd"}`` (differences only with both
        precisions), in pixels.
    """
    frames, truths = [], []
    for sequence in SINTEL_SEQUENCES:
        folder = sintel / sequence
        first = center_crop(read_rgb(folder / "frame_0002.png"), crop)
        second = center_crop(read_rgb(folder / "frame_0003.png"), crop)
        frames.append((np.ascontiguousarray(first), np.ascontiguousarray(second)))
        truths.append(center_crop(read_flo(folder / "gt" / "frame_0002.flo"), crop))
    flows: dict[str, list[np.ndarray]] = {}
    for precision in precisions:
        estimator = create_estimator(
            "flownet2", **estimator_options, precision=precision, batch_size=len(frames)
        )
        flows[precision] = estimator.estimate_batch(frames)
    pairs = []
    for index, sequence in enumerate(SINTEL_SEQUENCES):
        entry: dict[str, Any] = {
            "sequence": sequence,
            "pair": "frame_0002->frame_0003 (clean)",
            "size": size_label(frames[index][0].shape[1], frames[index][0].shape[0]),
        }
        for precision in precisions:
            entry[f"epe_{precision}"] = finite_or_none(
                endpoint_error(flows[precision][index], truths[index])
            )
        if "fp32" in flows and "bf16" in flows:
            difference = endpoint_error_map(flows["fp32"][index], flows["bf16"][index])
            entry["fp32_bf16_mean_epd"] = finite_or_none(float(difference.mean()))
            entry["fp32_bf16_max_epd"] = finite_or_none(float(difference.max()))
        pairs.append(entry)
    summary: dict[str, Any] = {"status": "ok", "crop": crop and size_label(*crop), "pairs": pairs}
    for key in pairs[0]:
        if key.startswith(("epe_", "fp32_bf16_mean")):
            values = [p[key] for p in pairs if p[key] is not None]
            summary[f"mean_{key}"] = float(np.mean(values)) if values else None
    if "fp32_bf16_max_epd" in pairs[0]:
        values = [p["fp32_bf16_max_epd"] for p in pairs if p["fp32_bf16_max_epd"] is not None]
        summary["max_fp32_bf16_max_epd"] = max(values) if values else None
    return summary
