"""Drawing blocks both jobs' pictures share (``dptrack-build inspect --render``).

Flows are drawn in the standard Middlebury colour wheel (:func:`flow_vis.flow_to_color`) with
pixels that failed the forward-backward check in grey; images go side by side with captions and
are written as PNG; :func:`spread_over_offsets` picks examples so that every offset shows up.
Drawing uses OpenCV; the colour wheel is flow_vis. What each job draws is
:mod:`dptrack_pipeline.propagate.render` and :mod:`dptrack_pipeline.pairs.render`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import cv2
import flow_vis
import numpy as np


def side_by_side(left: np.ndarray, right: np.ndarray, captions: tuple[str, str]) -> np.ndarray:
    """Two RGB images next to each other (same height), with captions."""
    h = max(left.shape[0], right.shape[0])

    def pad(img: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(img, 0, h - img.shape[0], 0, 4, cv2.BORDER_CONSTANT, value=0)

    canvas = np.concatenate([pad(left), pad(right)], axis=1)
    for text, x in ((captions[0], 5), (captions[1], left.shape[1] + 9)):
        cv2.putText(canvas, text, (x, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    return canvas


def flow_picture(flow: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Colour-coded ``(H, W, 3)`` uint8 RGB picture of a flow (Middlebury wheel); invalid grey."""
    picture = flow_vis.flow_to_color(np.nan_to_num(flow.astype(np.float32)), convert_to_bgr=False)
    if valid is not None:
        picture[~valid.astype(bool)] = 128
    return picture


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write an RGB image as PNG (creates the folder)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def spread_over_offsets(
    rows: Iterable[dict[str, Any]], order: Callable[[dict[str, Any]], Any], limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows taken in turn from each ``offset`` (ascending), each offset's rows in
    ``order``: a spread of examples in which every ``|k|`` shows up."""
    by_offset: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=order):
        by_offset.setdefault(row["offset"], []).append(row)
    chosen: list[dict[str, Any]] = []
    while len(chosen) < limit and any(by_offset.values()):
        for k in sorted(by_offset):
            if by_offset[k] and len(chosen) < limit:
                chosen.append(by_offset[k].pop(0))
    return chosen
