"""Reading an image file the way both benchmarks do: OpenCV, converted to RGB.

``cv2.imread`` decodes in one call, with no EXIF handling beyond OpenCV's own, which is what a
plain JPEG + JSON training loader does (and the cost the shard reader is compared with); the
pipeline's frame sources (:mod:`dptrack_pipeline.frames`) do more (locations, videos, errors as
values) that a benchmark baseline should not pay for.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_rgb(path: str | Path) -> np.ndarray:
    """The image at ``path`` as ``(H, W, 3)`` uint8 RGB.

    Raises:
        FileNotFoundError: OpenCV cannot read it.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
