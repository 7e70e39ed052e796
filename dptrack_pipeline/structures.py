"""Plain data records shared by every stage of the pipeline.

Conventions (apply everywhere in dptrack):

* Image coordinates are in pixels with **pixel centres on integer coordinates** (COCO / OpenCV /
  DensePose practice): the centre of the pixel in column ``c`` and row ``r`` is ``(x, y) = (c, r)``.
  Optical flow ``F[r, c]`` (shape ``(H, W, 2)``, float32, channel 0 = x) is the displacement in
  pixels of that pixel centre from the first frame to the second.
* Boxes are ``xywh`` in pixels of the frame they belong to (COCO ``bbox``).
* DensePose points ``dp_x, dp_y`` are box-relative on a 256 grid:
  ``pixel_x = box_x + dp_x / 256 * box_w`` and ``pixel_y = box_y + dp_y / 256 * box_h``.
  :func:`dp_to_pixels` and :func:`pixels_to_dp` are the only two places that convert.
* ``dp_masks`` are 14 COCO RLEs on a 256x256 grid spanning the box; grid cell ``(i, j)`` (row,
  column) covers box-relative ``[j, j+1) x [i, i+1)`` in 256-units, so its centre maps to pixel
  ``box_x + (j + 0.5) / 256 * box_w``.
* Keypoints are ``(17, 3)`` float32 arrays of ``x, y, v`` in frame pixels (COCO order for
  DensePose-PoseTrack, PoseTrack order for PoseTrack18 — both have 17 joints); ``v = 0``: absent.
* Video ids are strings (DensePose-PoseTrack has ints, PoseTrack18 zero-padded strings; both are
  normalised by :func:`normalise_video_id`). A frame's ``index`` is its 0-based position in its
  video, ordered by ``frame_id``; ``frame_id`` itself is the dataset's (often global) id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DP_GRID = 256
"""Size of the box-relative DensePose grid (points and part masks)."""

Box = tuple[float, float, float, float]
"""``(x, y, w, h)`` in pixels of the frame the box belongs to (COCO ``bbox``)."""

NUM_MASK_PARTS = 14
NUM_SURFACE_PARTS = 24
NUM_KEYPOINTS = 17

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
"""The 17 COCO / PoseTrack keypoints, in the order of a ``keypoints`` list's triples."""
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)
"""COCO person skeleton, 1-based keypoint indices (as in ``person_keypoints`` categories)."""
assert len(COCO_KEYPOINT_NAMES) == NUM_KEYPOINTS

PERSON_CATEGORY = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": list(COCO_KEYPOINT_NAMES),
    "skeleton": [list(edge) for edge in COCO_SKELETON],
}
"""The ``person`` category of COCO-style keypoint files (id 1, keypoint names, skeleton)."""


def normalise_video_id(vid_id: object) -> str:
    """Return a video id as a canonical string.

    DensePose-PoseTrack writes ``vid_id`` as an int (``3418``) where PoseTrack18 writes a
    zero-padded string (``"003418"``) for the same video. Purely numeric ids are therefore
    canonicalised to their decimal value without leading zeros (both give ``"3418"``); other
    strings are kept, stripped.

    Raises:
        ValueError: for ``None``, bools, empty strings and other types.
    """
    if vid_id is None:
        raise ValueError("video id is missing")
    if isinstance(vid_id, bool):
        raise ValueError(f"video id must be int or str, got bool {vid_id!r}")
    if isinstance(vid_id, (int, np.integer)):
        return str(int(vid_id))
    if isinstance(vid_id, str) and vid_id.strip():
        text = vid_id.strip()
        return str(int(text)) if text.isdigit() else text
    raise ValueError(f"video id must be a non-empty int or str, got {vid_id!r}")


def dp_to_pixels(
    dp_x: np.ndarray, dp_y: np.ndarray, bbox: tuple[float, float, float, float]
) -> np.ndarray:
    """Box-relative DensePose coordinates (256 grid) to frame pixels.

    Args:
        dp_x, dp_y: ``(N,)`` coordinates in ``[0, 256]``.
        bbox: ``(x, y, w, h)`` in frame pixels.

    Returns:
        ``(N, 2)`` float32 array of ``(x, y)`` pixel coordinates.
    """
    x0, y0, w, h = (float(v) for v in bbox)
    px = x0 + np.asarray(dp_x, dtype=np.float64) / DP_GRID * w
    py = y0 + np.asarray(dp_y, dtype=np.float64) / DP_GRID * h
    return np.stack([px, py], axis=-1).astype(np.float32)


def pixels_to_dp(
    points: np.ndarray, bbox: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`dp_to_pixels`: ``(N, 2)`` pixels to box-relative ``(dp_x, dp_y)``."""
    x0, y0, w, h = (float(v) for v in bbox)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    dp_x = (pts[:, 0] - x0) / w * DP_GRID
    dp_y = (pts[:, 1] - y0) / h * DP_GRID
    return dp_x.astype(np.float32), dp_y.astype(np.float32)


@dataclass(frozen=True)
class FrameRef:
    """One frame of one video, by reference (never the pixels).

    Attributes:
        video_id: normalised video id.
        index: 0-based position of the frame in its video (the unit of the offsets T±k).
        frame_id: the dataset's id for the frame (PoseTrack: global, e.g. 10034180000).
        image_file: ``file_name`` as written in the annotations (relative to ``--frames-root``).
        image_id: the COCO ``images[].id`` of the frame, or -1 when the frame was not listed.
        width, height: frame size in pixels as annotated (0 when unknown).
    """

    video_id: str
    index: int
    frame_id: int
    image_file: str
    image_id: int = -1
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Video:
    """All frames of one video, ordered by ``frame_id`` (``frames[i].index == i``)."""

    video_id: str
    frames: tuple[FrameRef, ...]

    def frame_by_id(self, frame_id: int) -> FrameRef | None:
        for frame in self.frames:
            if frame.frame_id == frame_id:
                return frame
        return None


@dataclass(frozen=True, eq=False)
class PersonInstance:
    """One annotated person in one frame (a DensePose-PoseTrack or PoseTrack18 annotation).

    Arrays are float32. ``dp_*`` are empty (shape ``(0,)``) when the person has no DensePose points;
    ``dp_masks`` is ``None`` when it has no part masks, else a tuple of 14 COCO RLE dicts
    (``{"size": [256, 256], "counts": str}``; an empty dict or ``None`` entry = empty part).
    ``head_box`` is PoseTrack's ``bbox_head`` (``xywh``) when the annotation has a valid one.
    """

    annotation_id: int
    video_id: str
    frame_id: int
    image_id: int
    track_id: int
    bbox: tuple[float, float, float, float]
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((NUM_KEYPOINTS, 3), np.float32))
    dp_x: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    dp_y: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    dp_I: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    dp_U: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    dp_V: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    dp_masks: tuple[dict | None, ...] | None = None
    head_box: Box | None = None

    @property
    def has_densepose(self) -> bool:
        return self.dp_x.size > 0 or self.dp_masks is not None


@dataclass(frozen=True)
class Reject:
    """An input item set aside, with why. ``stage`` is where it was found (``"validate"``,
    ``"decode"``, ``"propagate"``); ``reason`` is a short machine-readable code
    (e.g. ``"dp_I_out_of_range"``) and ``detail`` a human sentence."""

    reason: str
    detail: str
    stage: str
    annotation_id: int = -1
    video_id: str = ""
    frame_id: int = -1
    track_id: int = -1
    offset: int = 0
