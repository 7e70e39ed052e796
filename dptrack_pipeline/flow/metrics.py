"""Flow accuracy: the endpoint error (EPE) used by every flow benchmark.

The EPE at a pixel is the Euclidean distance in pixels between the predicted and the true flow
vector; the benchmark figure is its mean over the pixels where the truth is valid (Middlebury:
known flow; Sintel: all pixels, or non-occluded ones; KITTI: its sparse valid mask).
"""

from __future__ import annotations

import numpy as np


def _check_same_flow_shape(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.ndim != 3 or pred.shape[2] != 2:
        raise ValueError(f"pred must have shape (H, W, 2), got {pred.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {pred.shape} and {gt.shape}")


def endpoint_error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel endpoint error.

    Args:
        pred, gt: ``(H, W, 2)`` flows in pixels, channel 0 = x.

    Returns:
        ``(H, W)`` float32 ``|pred - gt|`` in pixels (computed in float64).
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    _check_same_flow_shape(pred, gt)
    diff = pred.astype(np.float64) - gt.astype(np.float64)
    return np.sqrt(np.sum(diff * diff, axis=-1)).astype(np.float32)


def endpoint_error(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean endpoint error over the valid pixels.

    Args:
        pred, gt: ``(H, W, 2)`` flows in pixels.
        valid: optional ``(H, W)`` bool mask of pixels to average over (default: all).

    Returns:
        The mean EPE in pixels; ``nan`` when no pixel is valid.
    """
    errors = endpoint_error_map(pred, gt)
    if valid is None:
        return float(errors.astype(np.float64).mean())
    valid = np.asarray(valid)
    if valid.shape != errors.shape:
        raise ValueError(f"valid must have shape {errors.shape}, got {valid.shape}")
    selected = errors[valid.astype(bool)]
    if selected.size == 0:
        return float("nan")
    return float(selected.astype(np.float64).mean())
