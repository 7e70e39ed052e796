"""Pictures for ``dptrack-build inspect --render``: see what propagation did.

For a propagated instance it writes one PNG with, side by side, the source frame with the
annotated points and part mask, and the target frame with the propagated points and warped mask
(points coloured by their ``U`` value, as in the paper's figure 3). For the same instance it
writes the crop pair and the crop flow in the standard Middlebury colour wheel
(:func:`flow_vis.flow_to_color`), with pixels that failed the forward-backward check in grey.
Drawing uses OpenCV; the colour wheel is flow_vis.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import flow_vis
import numpy as np

from dptrack_pipeline.formats.rle import decode_part_masks
from dptrack_pipeline.structures import DP_GRID, dp_to_pixels

_PART_COLOURS = cv2.applyColorMap(
    np.linspace(0, 255, 15).astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_HSV
).reshape(-1, 3)[:, ::-1]


def overlay_instance(image: np.ndarray, row: dict[str, Any], alpha: float = 0.45) -> np.ndarray:
    """Draw one instance row (instances.v1) on its ``(H, W, 3)`` uint8 RGB frame."""
    out = image.copy()
    x0, y0, w, h = row["bbox"]
    if row.get("dp_masks"):
        labels = decode_part_masks(
            [{"size": [DP_GRID, DP_GRID], "counts": c} for c in row["dp_masks"]]
        )
        # Paint each grid cell's part colour over the box region of the frame.
        xi0, yi0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        xi1 = min(int(np.ceil(x0 + w)), image.shape[1])
        yi1 = min(int(np.ceil(y0 + h)), image.shape[0])
        if xi1 > xi0 and yi1 > yi0:
            cols = ((np.arange(xi0, xi1) - x0) / w * DP_GRID).astype(int).clip(0, DP_GRID - 1)
            rws = ((np.arange(yi0, yi1) - y0) / h * DP_GRID).astype(int).clip(0, DP_GRID - 1)
            lab = labels[np.ix_(rws, cols)]
            region = out[yi0:yi1, xi0:xi1].astype(np.float32)
            colour = _PART_COLOURS[lab].astype(np.float32)
            m = (lab > 0)[..., None]
            out[yi0:yi1, xi0:xi1] = np.where(m, (1 - alpha) * region + alpha * colour, region)
    cv2.rectangle(out, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), (255, 255, 0), 1)
    if len(row["dp_x"]):
        pts = dp_to_pixels(np.asarray(row["dp_x"]), np.asarray(row["dp_y"]), row["bbox"])
        u = (np.asarray(row["dp_U"]) * 255).clip(0, 255).astype(np.uint8).reshape(-1, 1)
        colours = cv2.applyColorMap(u, cv2.COLORMAP_JET).reshape(-1, 3)[:, ::-1]
        for (px, py), c in zip(pts, colours, strict=True):
            cv2.circle(out, (int(round(px)), int(round(py))), 2, tuple(int(v) for v in c), -1)
    kps = np.asarray(row["keypoints"], np.float32).reshape(-1, 3)
    for x, y, v in kps:
        if v > 0:
            cv2.drawMarker(out, (int(x), int(y)), (255, 255, 255), cv2.MARKER_CROSS, 6, 1)
    return out


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
