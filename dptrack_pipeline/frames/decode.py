"""Decoding a batch of frame references into pixels, each frame once, one window per video.

This is where the pixels of :class:`~dptrack_pipeline.frames.location.FrameLocation` references
are finally read, on the worker that computes a flow. :func:`decode_frames` takes the locations a
task needs, in any order and with duplicates, decodes each distinct location once (an image file
with :func:`~dptrack_pipeline.frames.images.decode_image`, the frames of one video file together
as one window with :func:`~dptrack_pipeline.frames.video.decode_video_window`) and hands the
results back in input order. Failures come back as
:class:`~dptrack_pipeline.frames.errors.FrameDecodeError` values in place of frames, never
raised. Frames are ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dptrack_pipeline.frames.errors import PATH_OUTSIDE_ROOT, FrameDecodeError
from dptrack_pipeline.frames.images import decode_image
from dptrack_pipeline.frames.location import FrameLocation
from dptrack_pipeline.frames.video import VideoReaders, decode_video_window


def decode_frames(
    locations: Sequence[FrameLocation], readers: VideoReaders | None = None
) -> list[np.ndarray | FrameDecodeError]:
    """Decode frames, each distinct location once, one video window per video file.

    Args:
        locations: frames to decode, in any order, duplicates allowed.
        readers: open video files to continue from (see :class:`VideoReaders`); ``None`` opens
            and closes each video file within the call.

    Returns:
        One entry per input location, in input order: an ``(H, W, 3)`` uint8 RGB array, or a
        :class:`FrameDecodeError` (``frame_missing``, ``frame_unreadable``,
        ``frame_index_out_of_range``, or ``path_outside_root`` for a refused location).
        Duplicate locations share one array object; do not modify it in place. Nothing is
        raised for a bad frame.

    Raises:
        TypeError: when an element is not a :class:`FrameLocation` (a programming error).
    """
    positions: dict[FrameLocation, None] = {}
    for location in locations:
        if not isinstance(location, FrameLocation):
            raise TypeError(f"expected FrameLocation, got {type(location).__name__}")
        positions[location] = None

    decoded: dict[FrameLocation, np.ndarray | FrameDecodeError] = {}
    videos: dict[str, list[int]] = {}
    for location in positions:
        if location.refused:
            decoded[location] = FrameDecodeError(PATH_OUTSIDE_ROOT, location.refused, location)
        elif location.video_index is None:
            decoded[location] = decode_image(location)
        else:
            videos.setdefault(location.path, []).append(int(location.video_index))
    for path, indices in videos.items():
        for index, result in decode_video_window(path, indices, readers).items():
            decoded[FrameLocation(path, index)] = result
    return [decoded[location] for location in locations]
