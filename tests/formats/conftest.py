"""Fixtures for the annotation-format tests: record factories and a real DensePose person."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART, encode_part_masks

DEMO_BOX = (600.0, 200.0, 341.0, 355.0)
"""Box of the demo person in a 1920x1080 frame: the pickle's crop is 341 x 355 pixels."""


IMAGE: dict = {
    "id": 10034180000,
    "width": 1920,
    "height": 1080,
    "file_name": "images/val/003418_mpii_test/000000.jpg",
    "vid_id": 3418,
    "frame_id": 10034180000,
    "nframes": 149,
    "is_labeled": True,
    "has_no_densepose": False,
}
"""A valid DensePose-PoseTrack image record: frame 0 of video 3418, 1920x1080."""

ANNOTATION: dict = {
    "id": 1,
    "image_id": 10034180000,
    "track_id": 0,
    "category_id": 1,
    "bbox": [100.0, 200.0, 50.0, 120.0],
    "keypoints": [float(v) for v in np.tile([120.0, 250.0, 1.0], 17)],
    "dp_x": [10.0, 128.0, 250.5],
    "dp_y": [5.0, 128.0, 255.0],
    "dp_I": [1.0, 14.0, 24.0],
    "dp_U": [0.0, 0.5, 1.0],
    "dp_V": [0.25, 0.5, 0.75],
}
"""A valid person on :data:`IMAGE` with 3 DensePose points and no masks."""


def _record(base: dict, **fields: object) -> dict:
    """A fresh (deep) copy of ``base`` with ``fields`` replaced or added, so tests may edit it."""
    return {**copy.deepcopy(base), **fields}


@pytest.fixture
def make_image() -> Callable[..., dict]:
    """``make_image(**fields)``: a valid DensePose-PoseTrack image record with fields replaced."""
    return partial(_record, IMAGE)


@pytest.fixture
def make_annotation() -> Callable[..., dict]:
    """``make_annotation(**fields)``: a valid annotation on ``make_image()``, fields replaced."""
    return partial(_record, ANNOTATION)


def _nearest_point_labels(dp_x: np.ndarray, dp_y: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """A part label map on the 256 grid: each cell takes the mask part of its nearest annotated
    point when that point is within 20 grid units of the cell centre, else background."""
    centres = np.arange(256, dtype=np.float32) + 0.5
    cx, cy = np.meshgrid(centres, centres)
    dist2 = (cx.reshape(-1, 1) - dp_x[None, :]) ** 2 + (cy.reshape(-1, 1) - dp_y[None, :]) ** 2
    nearest = dist2.argmin(axis=1)
    labels = np.where(dist2.min(axis=1) <= 20.0**2, parts[nearest], 0)
    return labels.reshape(256, 256).astype(np.uint8)


@pytest.fixture(scope="session")
def demo_person(shared_data: Path) -> dict:
    """The real DensePose-COCO person of ``demo_dp_single_ann.pkl`` as a DensePose-PoseTrack
    annotation on :data:`DEMO_BOX`.

    The pickle holds 125 points (``x, y`` in pixels of the 341 x 355 person crop, ``I, U, V``);
    they become box-relative ``dp_x = x / 341 * 256`` etc. It has no masks, so ``labels`` is made
    from the points (nearest point's part, see :func:`_nearest_point_labels`), and ``dp_masks``
    encodes it with the absent parts (both feet) written as ``[]`` and ``{}`` as in real files.

    Returns:
        ``{"annotation": dict, "labels": (256, 256) uint8, "crop_xy": (125, 2) float64}``.
    """
    path = shared_data / "densepose" / "DensePoseData" / "demo_data" / "demo_dp_single_ann.pkl"
    with open(path, "rb") as stream:
        demo = pickle.load(stream, encoding="latin1")
    crop_h, crop_w = demo["ICrop"].shape[:2]
    assert (crop_w, crop_h) == (DEMO_BOX[2], DEMO_BOX[3])
    dp_x = np.asarray(demo["x"], dtype=np.float64) / crop_w * 256
    dp_y = np.asarray(demo["y"], dtype=np.float64) / crop_h * 256
    dp_i = np.asarray(demo["I"], dtype=np.float64)
    labels = _nearest_point_labels(
        dp_x.astype(np.float32), dp_y.astype(np.float32), SURFACE_TO_MASK_PART[dp_i.astype(int)]
    )
    masks: list = list(encode_part_masks(labels))
    empty = [k for k in range(14) if not (labels == k + 1).any()]
    for n, k in enumerate(empty):
        masks[k] = [] if n % 2 == 0 else {}
    annotation = _record(
        ANNOTATION,
        id=7,
        bbox=list(DEMO_BOX),
        dp_x=dp_x.tolist(),
        dp_y=dp_y.tolist(),
        dp_I=dp_i.tolist(),
        dp_U=np.asarray(demo["U"], dtype=np.float64).tolist(),
        dp_V=np.asarray(demo["V"], dtype=np.float64).tolist(),
        dp_masks=masks,
    )
    crop_xy = np.stack([demo["x"], demo["y"]], axis=1).astype(np.float64)
    return {"annotation": annotation, "labels": labels, "crop_xy": crop_xy}
