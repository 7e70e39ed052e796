"""The report's pictures of single instances and pairs, drawn with OpenCV from the dense crops.

**Instances.** For a propagated row and its source row (same ``video_id`` and ``annotation_id``,
offset 0) :func:`instance_panels` draws three panels: the source crop with every annotated point
(kept ones filled in their quality colour, dropped ones as hollow white rings), the target crop
with the moved points in the same colours, and the crop flow
(:func:`~dptrack_pipeline.pictures.flow_picture`, grey where the forward-backward check failed).
A point's colour is its forward-backward error on :data:`COLOUR_MAP` from 0 (blue) to the run's
threshold (red); :func:`colour_bar` is the legend. A point of frame pixel ``p`` sits at crop pixel
``(p - crop_xy) / crop_wh * S - 0.5`` (:mod:`dptrack_pipeline.crops`); for ``run`` rows the crop
box is the bbox, so this is ``dp * S / 256 - 0.5``. Point ``i`` of the target row is source
point ``dp_source_index[i]``.

**Pairs.** :func:`pair_panels`: crop A | crop B | crop B warped onto A by the stored flow (dimmed
where not valid; where the flow is right it looks like crop A) | the flow, as
:mod:`dptrack_pipeline.pairs.render` draws them for ``inspect --render``.

A crop is square but its box is not: panels are shown in the box's proportions, the longer side
enlarged by an integer factor to about :data:`DISPLAY` px (nearest neighbour, so crop pixels stay
visible). Panels are RGB uint8 arrays; :func:`encode_png` makes PNG bytes of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from dptrack_pipeline.pairs.render import pair_pictures
from dptrack_pipeline.pictures import flow_picture
from dptrack_pipeline.shards import DenseReader
from dptrack_pipeline.structures import dp_to_pixels

DISPLAY = 256
"""Target side of a displayed crop, in screen pixels (crops are enlarged by an integer factor)."""

COLOUR_MAP = cv2.COLORMAP_TURBO
DROPPED_COLOUR = (255, 255, 255)
PLAIN_COLOUR = (0, 255, 255)
_SHIFT = 4  # OpenCV sub-pixel drawing: coordinates in 1/16 px


def encode_png(rgb: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` uint8 RGB image as PNG bytes."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode an image of shape {rgb.shape} as PNG")
    return data.tobytes()


def display_size(size: int, box: Sequence[float]) -> tuple[int, int]:
    """``(width, height)`` on screen of an ``size``-px crop of ``box`` (x, y, w, h): the longer
    side enlarged by an integer factor to about :data:`DISPLAY` px, the other one in the box's
    proportions (a crop is square, the person is not)."""
    longest = size * max(1, round(DISPLAY / size))
    w, h = float(box[2]), float(box[3])
    if w >= h:
        return longest, max(1, round(longest * h / w))
    return max(1, round(longest * w / h)), longest


def show(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A crop-grid image resized to ``(width, height)`` (nearest neighbour: pixels stay
    visible)."""
    if image.shape[1::-1] == shape:
        return image.copy()
    return cv2.resize(image, shape, interpolation=cv2.INTER_NEAREST)


def quality_colours(errors: np.ndarray, top: float) -> np.ndarray:
    """``(N, 3)`` uint8 RGB colours of forward-backward errors on :data:`COLOUR_MAP`, 0..``top``
    px (NaN gets the top colour)."""
    scaled = np.nan_to_num(np.asarray(errors, np.float64) / top, nan=1.0).clip(0, 1)
    levels = (scaled * 255).round().astype(np.uint8).reshape(-1, 1)
    return cv2.applyColorMap(levels, COLOUR_MAP).reshape(-1, 3)[:, ::-1]


def colour_bar(width: int = DISPLAY, height: int = 12) -> np.ndarray:
    """The legend of :func:`quality_colours`: 0 on the left, ``top`` on the right."""
    levels = np.linspace(0, 255, width).round().astype(np.uint8).reshape(1, -1)
    bar = cv2.applyColorMap(levels, COLOUR_MAP)[:, :, ::-1]
    return np.repeat(bar, height, axis=0)


def crop_points(row: dict[str, Any], size: int) -> np.ndarray:
    """``(N, 2)`` crop-pixel positions (pixel centres on integers) of a row's DensePose points in
    its own ``size``-px crop."""
    frame = dp_to_pixels(np.asarray(row["dp_x"]), np.asarray(row["dp_y"]), row["bbox"])
    x0, y0, w, h = (float(v) for v in row["crop_box"])
    return np.stack(
        [(frame[:, 0] - x0) / w * size - 0.5, (frame[:, 1] - y0) / h * size - 0.5], axis=-1
    )


def draw_points(
    image: np.ndarray,
    points: np.ndarray,
    colours: np.ndarray,
    size: int,
    *,
    hollow: bool = False,
) -> None:
    """Draw crop-pixel ``points`` of a ``size``-px crop on its displayed ``image`` (in place)."""
    sx, sy = image.shape[1] / size, image.shape[0] / size
    radius = max(2, round(min(sx, sy)))
    for (x, y), colour in zip(points, colours, strict=True):
        centre = (
            int(round(((x + 0.5) * sx - 0.5) * 2**_SHIFT)),
            int(round(((y + 0.5) * sy - 0.5) * 2**_SHIFT)),
        )
        rgb = tuple(int(c) for c in colour)
        if hollow:
            cv2.circle(image, centre, radius << _SHIFT, (0, 0, 0), 3, cv2.LINE_AA, _SHIFT)
            cv2.circle(image, centre, radius << _SHIFT, rgb, 1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.circle(image, centre, (radius + 1) << _SHIFT, (0, 0, 0), -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(image, centre, radius << _SHIFT, rgb, -1, cv2.LINE_AA, _SHIFT)


def instance_panels(
    dense: DenseReader, source: dict[str, Any], target: dict[str, Any], top: float
) -> dict[str, np.ndarray]:
    """The source crop, the target crop and the crop flow of one propagated instance.

    Args:
        dense: reader of the run folder.
        source: the source row (offset 0) of ``target``.
        target: a propagated row (``instances.v1`` or ``v2`` dict).
        top: forward-backward error in px drawn in the last colour (the run's threshold).

    Returns:
        ``{"source": ..., "target": ..., "flow": ...}``, uint8 RGB each, in the proportions of
        the crop boxes (the flow lives on the source crop's grid).
    """
    source_crop = dense.crop(source["dense_file"], source["crop_index"])
    target_crop = dense.crop(target["dense_file"], target["crop_index"])
    size = source_crop.shape[0]
    if target.get("dp_fb_error") is not None:
        colours = quality_colours(np.asarray(target["dp_fb_error"]), top)
    else:
        colours = np.tile(np.array(PLAIN_COLOUR, np.uint8), (len(target["dp_x"]), 1))
    kept = np.asarray(target["dp_source_index"], np.int64)
    at_source = crop_points(source, size)
    dropped = np.setdiff1d(np.arange(len(at_source)), kept)
    source_shape = display_size(size, source["crop_box"])
    left = show(source_crop, source_shape)
    grey = np.tile(np.array(DROPPED_COLOUR, np.uint8), (len(dropped), 1))
    draw_points(left, at_source[dropped], grey, size, hollow=True)
    draw_points(left, at_source[kept], colours, size)
    right = show(target_crop, display_size(target_crop.shape[0], target["crop_box"]))
    draw_points(right, crop_points(target, target_crop.shape[0]), colours, target_crop.shape[0])
    flow, valid = dense.flow(target["dense_file"], target["flow_index"])
    return {"source": left, "target": right, "flow": show(flow_picture(flow, valid), source_shape)}


def pair_panels(dense: DenseReader, row: dict[str, Any]) -> dict[str, np.ndarray]:
    """Crop A, crop B, crop B warped onto A by the stored flow (invalid pixels dimmed) and the
    flow of one ``pairs`` row; uint8 RGB each, in the proportions of the crop boxes."""
    pictures = pair_pictures(dense, row)
    size = pictures["a"].shape[0]
    shape_a = display_size(size, row["crop_box_a"])
    return {
        "a": show(pictures["a"], shape_a),
        "b": show(pictures["b"], display_size(size, row["crop_box_b"])),
        "warped": show(pictures["warped"], shape_a),
        "flow": show(pictures["flow"], shape_a),
    }
