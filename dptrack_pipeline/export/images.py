"""The ``images`` of an export: what the run's inputs said of each frame, its real size, and the
frames that live only inside video files (extracted with ``--write-frames``).

* :func:`source_images` reads the ``images`` of the annotation files the run read (DensePose-
  PoseTrack first, then PoseTrack18, as the run merged them; keyed by normalised video id and
  ``frame_id``) and orders each video's frames as the run did (``frame_id``, then ``id``), so a
  frame's position in its video is its ``frame_index``.
* :class:`FrameSizes` reads a frame's real size as training will see it: for an image file from
  its header (Pillow; EXIF orientations 5-8 swap width and height, as OpenCV's decoder and
  detectron2's ``read_image`` apply them); for a frame inside a video file from the container.
  detectron2 refuses an image whose size differs from ``width``/``height`` of its record; the
  run already refused frames whose decoded size differed from their JSON size, so a mismatch here
  means the frames changed since the run.
* :func:`extract_frames` writes frames that exist only inside a video file as JPEG (quality
  :data:`JPEG_QUALITY`, OpenCV's encoder: the same bytes for the same decoded frame) under
  ``<write_frames>/<video_id>/<frame_index:06d>.jpg``, which must lie inside the frames root so
  that ``file_name`` stays relative to it (and inside it: ``dptrack-build run`` refuses paths that
  leave their root).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
from PIL import Image

from dptrack_pipeline.formats.coco_json import read_annotation_json
from dptrack_pipeline.frames import (
    FrameDecodeError,
    FrameLocation,
    VideoReaders,
    decode_frames,
    escape,
    resolve_frame,
)
from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.structures import normalise_video_id

JPEG_QUALITY = 95
EXTRACT_BATCH = 32
"""Frames of one video decoded at a time when extracting (bounded memory)."""
ImageKey = tuple[str, int]
"""``(normalised video id, frame_id)``."""

IMAGE_FIELDS = ("nframes", "is_labeled", "has_no_densepose", "ignore_regions_x", "ignore_regions_y")
"""PoseTrack image fields an export carries over from the run's inputs."""


@dataclass(frozen=True)
class SourceImage:
    """One frame as the run's input files list it."""

    video_id: str
    index: int
    record: Mapping[str, Any]


def source_images(paths: Sequence[str]) -> dict[str, list[SourceImage]]:
    """``video_id -> frames in order`` from the ``images`` of annotation files (the first file
    that lists a ``(video, frame_id)`` wins, as in the run's merge).

    Raises:
        ValueError: a file that cannot be read (its path named).
    """
    seen: dict[ImageKey, Mapping[str, Any]] = {}
    for path in paths:
        data, _ = read_annotation_json(path, "annotation")
        for image in data["images"]:
            try:
                key = (normalise_video_id(image.get("vid_id")), int(image["frame_id"]))
            except (KeyError, TypeError, ValueError):
                continue  # the run set such an image aside too
            seen.setdefault(key, image)
    videos: dict[str, list[Mapping[str, Any]]] = {}
    for (video_id, _), image in seen.items():
        videos.setdefault(video_id, []).append(image)
    return {
        video_id: [
            SourceImage(video_id, i, image)
            for i, image in enumerate(sorted(images, key=lambda m: (m["frame_id"], m.get("id", 0))))
        ]
        for video_id, images in sorted(videos.items())
    }


_SWAPS = {5, 6, 7, 8}
"""EXIF orientations that rotate by 90 degrees (width and height swap)."""


class FrameSizes:
    """Real ``(width, height)`` of frames, each file or video opened once."""

    def __init__(self) -> None:
        self._videos: dict[str, tuple[int, int] | None] = {}

    def __call__(self, location: FrameLocation) -> tuple[int, int] | None:
        """The frame's size, or ``None`` when it cannot be read (or the path is refused)."""
        if location.refused:
            return None
        if location.video_index is None:
            try:
                with Image.open(location.path) as image:
                    width, height = image.size
                    orientation = image.getexif().get(0x0112, 1)
            except (OSError, ValueError):
                return None
            return (height, width) if orientation in _SWAPS else (width, height)
        if location.path not in self._videos:
            capture = cv2.VideoCapture(location.path)
            size = None
            if capture.isOpened():
                size = (
                    int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                )
            capture.release()
            self._videos[location.path] = size
        return self._videos[location.path]


def locate(frames_root: str, image: SourceImage, follow_symlinks: bool) -> FrameLocation:
    """Where a listed frame's pixels are, as the run found them."""
    return resolve_frame(
        frames_root, str(image.record["file_name"]), image.index, follow_symlinks=follow_symlinks
    )


def extracted_name(write_frames_rel: str, video_id: str, index: int) -> str:
    """``file_name`` (relative to the frames root) of an extracted frame."""
    return f"{write_frames_rel}/{video_id}/{index:06d}.jpg"


def check_write_frames(frames_root: str, write_frames: str) -> str:
    """``write_frames`` relative to ``frames_root`` (``/``-separated).

    Raises:
        ValueError: it is not inside the frames root.
    """
    relative = os.path.relpath(os.path.abspath(write_frames), os.path.abspath(frames_root))
    if escape(frames_root, relative, follow_symlinks=True) is not None or relative == ".":
        raise ValueError(
            f"--write-frames {write_frames} must be a folder inside --frames-root {frames_root} "
            "(exported file_names are relative to it)"
        )
    return relative.replace(os.sep, "/")


def extract_frames(frames: Iterable[tuple[FrameLocation, str]], frames_root: str) -> dict[str, str]:
    """Decode each ``(location, file_name)`` frame and write it as JPEG at
    ``frames_root/file_name``; returns ``file_name -> why`` for frames that could not be read.

    Frames of one video are decoded together, front to back (one open reader per video).
    """
    failed: dict[str, str] = {}
    by_video: dict[str, list[tuple[FrameLocation, str]]] = {}
    for location, name in frames:
        by_video.setdefault(location.path, []).append((location, name))
    with VideoReaders() as readers:
        for items in by_video.values():
            items.sort(key=lambda item: item[0].video_index or 0)
            for start in range(0, len(items), EXTRACT_BATCH):
                batch = items[start : start + EXTRACT_BATCH]
                decoded = decode_frames([location for location, _ in batch], readers)
                _write_jpegs(batch, decoded, frames_root, failed)
    return failed


def _write_jpegs(
    batch: Sequence[tuple[FrameLocation, str]],
    decoded: Sequence[Any],
    frames_root: str,
    failed: dict[str, str],
) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    for (_, name), frame in zip(batch, decoded, strict=True):
        if isinstance(frame, FrameDecodeError):
            failed[name] = f"{frame.reason}: {frame.message}"
            continue
        path = os.path.join(frames_root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        if not ok:
            failed[name] = "OpenCV could not encode the frame as JPEG"
            continue
        with atomic_write(path) as tmp, open(tmp, "wb") as f:
            f.write(data.tobytes())
