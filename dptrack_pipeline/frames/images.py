"""Image files as frames: which images a frame folder holds, in which order, and their pixels.

A *frame folder* holds one image file per frame (extension in :data:`IMAGE_EXTENSIONS`, any
case). Its frames are its images in **natural order** (:func:`natural_key`): digit runs compare as
numbers, so ``2.jpg`` comes before ``10.jpg``, and zero-padded names sort as usual.

Pixel convention, shared with the video decoder: every frame is returned as an ``(H, W, 3)``
uint8 **RGB** array (:func:`to_rgb`). OpenCV's BGR is converted; grey images are replicated to
three channels, an alpha channel is dropped, 16-bit images are scaled to 8 bits and JPEG EXIF
orientation is applied, as OpenCV's ``IMREAD_COLOR`` does.
"""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

from dptrack_pipeline.frames.errors import FRAME_MISSING, FRAME_UNREADABLE, FrameDecodeError
from dptrack_pipeline.frames.location import FrameLocation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


def natural_key(name: str) -> list[object]:
    """Sort key comparing digit runs as numbers (``2.jpg`` before ``10.jpg``), case-insensitive."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_image_frames(folder: str) -> list[str]:
    """Paths of the image files directly in ``folder``, in natural order.

    Images are files with an extension in :data:`IMAGE_EXTENSIONS` (any case). Natural order
    compares digit runs as numbers, so ``2.jpg`` comes before ``10.jpg`` (zero-padded names sort
    as usual).

    Returns:
        ``os.path.join(folder, name)`` for each image.

    Raises:
        FileNotFoundError / NotADirectoryError: when ``folder`` is not a folder.
    """
    names = [
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    return [os.path.join(folder, name) for name in sorted(names, key=natural_key)]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV image (``(H, W)`` grey, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA, uint8) as an
    ``(H, W, 3)`` uint8 RGB array."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_image(location: FrameLocation) -> np.ndarray | FrameDecodeError:
    """Decode one image file: an ``(H, W, 3)`` uint8 RGB array, or the reason it failed
    (``frame_missing``, ``frame_unreadable``); nothing is raised."""
    path = location.path
    if not os.path.isfile(path):
        return FrameDecodeError(FRAME_MISSING, f"image file not found: {path}", location)
    try:
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error) as error:
        return FrameDecodeError(FRAME_UNREADABLE, f"cannot read image {path}: {error}", location)
    if image is None:
        return FrameDecodeError(FRAME_UNREADABLE, f"not a decodable image: {path}", location)
    return to_rgb(image)
