"""Made-up DensePose-PoseTrack labels on a real video, for the benchmarks.

The benchmarks run the real pipeline on real 720p video (``street_people_720p.avi``,
1280x720), but no labels exist for it; the estimator and the writers do not care what the labels
are, only how many there are. So :func:`make_annotations` labels every 8th frame with ``people``
boxes of 100 random DensePose points each (the numbers of a real DensePose-PoseTrack frame),
seeded, so two runs benchmark the same data.

For the shard reader benchmark, :func:`make_reader_annotations` also cuts the video into
made-up videos of ``segment`` frames (shards are keyed by video, and one video would fill one
shard) and gives every annotation 14 part masks of a drawn body (:func:`body_part_labels`), so
that loaders pay for decoding and resampling masks as they would on real data.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from dptrack_pipeline.formats.rle import MASK_PART_NAMES, encode_part_masks
from dptrack_pipeline.structures import DP_GRID

FRAME_WIDTH, FRAME_HEIGHT = 1280, 720
POINTS_PER_PERSON = 100


def make_annotations(path: Path, video: Path, frames: int, people: int, seed: int = 0) -> list[int]:
    """Write a DensePose-PoseTrack JSON to ``path`` whose frames are the first ``frames`` of
    ``video`` (resolved as ``<frames_root>/<video stem>.avi``), one video (``vid_id`` 1).

    Frames ``4, 12, 20, ...`` are labelled, each with ``people`` boxes ``xywh`` 220x480 px side
    by side and 100 DensePose points per box (``dp_x``/``dp_y`` on the 256 box grid).

    Returns:
        The labelled frame positions.
    """
    rng = np.random.default_rng(seed)
    width, height = FRAME_WIDTH, FRAME_HEIGHT
    images, annotations = [], []
    labelled = list(range(4, frames, 8))
    for i in range(frames):
        images.append(
            {
                "id": 1000 + i,
                "file_name": f"{video.stem}/{i:06d}.jpg",
                "width": width,
                "height": height,
                "vid_id": 1,
                "frame_id": 10000 + i,
                "nframes": frames,
                "is_labeled": i in labelled,
            }
        )
        if i not in labelled:
            continue
        for p in range(people):
            x0 = 100 + p * (width - 300) / max(people, 1)
            box = [float(x0), 150.0, 220.0, 480.0]
            n = POINTS_PER_PERSON
            annotations.append(
                {
                    "id": 100000 + 100 * i + p,
                    "image_id": 1000 + i,
                    "track_id": p,
                    "category_id": 1,
                    "iscrowd": 0,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "keypoints": [0.0] * 51,
                    "dp_x": rng.uniform(5, 251, n).tolist(),
                    "dp_y": rng.uniform(5, 251, n).tolist(),
                    "dp_I": rng.integers(1, 25, n).astype(float).tolist(),
                    "dp_U": rng.uniform(0, 1, n).tolist(),
                    "dp_V": rng.uniform(0, 1, n).tolist(),
                }
            )
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1}]})
    )
    return labelled


def _part(name: str) -> int:
    return MASK_PART_NAMES.index(name) + 1


def body_part_labels(rng: np.random.Generator) -> np.ndarray:
    """A drawn standing body on the 256 box grid: ``(256, 256)`` uint8 coarse parts 0..14.

    Shifted by a few cells at random so that the masks of different annotations differ; the
    labels only need to cost what real masks cost to decode and resample.
    """
    labels = np.zeros((DP_GRID, DP_GRID), np.uint8)
    dx, dy = (int(v) for v in rng.integers(-8, 9, 2))

    def rect(name: str, x0: int, y0: int, x1: int, y1: int) -> None:
        cv2.rectangle(labels, (x0 + dx, y0 + dy), (x1 + dx, y1 + dy), _part(name), -1)

    def blob(name: str, cx: int, cy: int, ax: int, ay: int) -> None:
        cv2.ellipse(labels, (cx + dx, cy + dy), (ax, ay), 0, 0, 360, _part(name), -1)

    blob("Head", 128, 30, 20, 24)
    rect("Torso", 96, 54, 160, 130)
    rect("Upper Arm Right", 78, 56, 95, 100)
    rect("Upper Arm Left", 161, 56, 178, 100)
    rect("Lower Arm Right", 78, 101, 94, 140)
    rect("Lower Arm Left", 162, 101, 178, 140)
    blob("Right Hand", 86, 150, 9, 11)
    blob("Left Hand", 170, 150, 9, 11)
    rect("Upper Leg Right", 98, 131, 126, 190)
    rect("Upper Leg Left", 130, 131, 158, 190)
    rect("Lower Leg Right", 100, 191, 124, 236)
    rect("Lower Leg Left", 132, 191, 156, 236)
    rect("Right Foot", 94, 237, 124, 250)
    rect("Left Foot", 132, 237, 162, 250)
    return labels


def make_reader_annotations(
    path: Path, video: Path, frames: int, people: int, segment: int, seed: int = 0
) -> list[int]:
    """:func:`make_annotations`, cut into videos of ``segment`` frames, with masks.

    Video ``s`` (``vid_id`` ``s + 1``) holds frames ``s * segment ..`` of ``video``, each named
    ``<video name>#<frame>`` (rule 2 of ``resolve_frame``: that frame of that file). Every
    annotation gets 14 compressed-RLE ``dp_masks`` of :func:`body_part_labels`.

    Returns:
        The labelled frame positions in ``video``.
    """
    labelled = make_annotations(path, video, frames, people, seed)
    data = json.loads(path.read_text())
    for i, image in enumerate(data["images"]):
        first = i - i % segment
        image["vid_id"] = 1 + i // segment
        image["file_name"] = f"{video.name}#{i}"
        image["nframes"] = min(segment, frames - first)
    rng = np.random.default_rng(seed + 1)
    for annotation in data["annotations"]:
        annotation["dp_masks"] = list(encode_part_masks(body_part_labels(rng)))
    path.write_text(json.dumps(data))
    return labelled


def video_frame(file_name: str) -> int:
    """Frame number of ``<video>#<n>`` (the ``file_name`` form :func:`make_reader_annotations`
    writes)."""
    return int(file_name.rsplit("#", 1)[1])
