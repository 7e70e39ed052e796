"""Do the annotated frames exist, inside their root, at the annotated size? :func:`frame_problems`.

``dptrack-build validate --frames-root`` runs this after the JSON checks, so that a user learns
before a long run what ``run`` would reject at decoding:

* ``path_outside_root``: the ``file_name`` leaves ``--frames-root`` (``..``, absolute, or a symlink
  out without ``follow_symlinks``; :mod:`dptrack_pipeline.frames.containment`); never opened;
* ``frame_missing`` / ``frame_unreadable``: no image or video file, or one OpenCV cannot decode;
* ``frame_size_mismatch``: the frame is not the ``width`` x ``height`` its image entry says (``run``
  rejects every instance on such a frame rather than crop it with boxes of another size).

Frames are located exactly as ``run`` locates them
(:func:`~dptrack_pipeline.frames.resolve_frame`). An image file is decoded (OpenCV has no
header-only reader); a video file is opened once and its size read from the container, not
decoded (a frame index past its end is found by ``run`` only). Only frames listed in ``images``
(``image_id >= 0``) are checked: they are the ones with an annotated size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import cv2

from dptrack_pipeline.frames import FrameDecodeError, FrameLocation, decode_image, resolve_frame
from dptrack_pipeline.rejects import (
    FRAME_SIZE_MISMATCH,
    FRAME_UNREADABLE,
    PATH_OUTSIDE_ROOT,
    STAGE_DECODE,
)
from dptrack_pipeline.structures import FrameRef, Reject, Video


def _video_size(path: str) -> tuple[int, int] | FrameDecodeError:
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return FrameDecodeError(FRAME_UNREADABLE, f"OpenCV cannot open video {path}")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    return width, height


def _size(location: FrameLocation, videos: dict[str, object]) -> tuple[int, int] | FrameDecodeError:
    """``(width, height)`` of the frame at ``location``, or why it cannot be read."""
    if location.refused:
        return FrameDecodeError(PATH_OUTSIDE_ROOT, location.refused, location)
    if location.video_index is None:
        image = decode_image(location)
        if isinstance(image, FrameDecodeError):
            return image
        return int(image.shape[1]), int(image.shape[0])
    if location.path not in videos:
        videos[location.path] = _video_size(location.path)
    return videos[location.path]  # type: ignore[return-value]


def _reject(frame: FrameRef, reason: str, detail: str) -> Reject:
    return Reject(reason, detail, STAGE_DECODE, -1, frame.video_id, frame.frame_id)


def frame_problems(
    frames: Iterable[FrameRef], frames_root: str, *, follow_symlinks: bool = False
) -> list[Reject]:
    """One :class:`~dptrack_pipeline.structures.Reject` (``annotation_id = -1``) per frame that
    ``run`` could not use, in input order.

    Args:
        frames: the frames to check, usually :func:`listed_frames` (an iterable, so that the
            caller can wrap it in a progress bar).
        frames_root: as ``run --frames-root``.
        follow_symlinks: as ``run --follow-symlinks``.
    """
    found: list[Reject] = []
    opened: dict[str, object] = {}
    for frame in frames:
        location = resolve_frame(
            frames_root, frame.image_file, frame.index, follow_symlinks=follow_symlinks
        )
        size = _size(location, opened)
        if isinstance(size, FrameDecodeError):
            found.append(_reject(frame, size.reason, f"{frame.image_file}: {size.message}"))
        elif frame.width and frame.height and size != (frame.width, frame.height):
            found.append(
                _reject(
                    frame,
                    FRAME_SIZE_MISMATCH,
                    f"{frame.image_file}: the frame is {size[0]}x{size[1]}, its image entry says "
                    f"{frame.width}x{frame.height}; fix width/height in the JSON",
                )
            )
    return found


def listed_frames(videos: Mapping[str, Video]) -> list[FrameRef]:
    """The frames of ``videos`` (an :class:`~dptrack_pipeline.formats.AnnotationSet`'s) listed in
    the JSON's ``images`` (``image_id >= 0``), in video and frame order."""
    return [f for v in videos.values() for f in v.frames if f.image_id >= 0]
