"""Video files as frames: decoding a few frames of a video in one forward pass, or all of it.

Frames of the same video are decoded as one **video window** (:func:`decode_video_window`): the
file is opened once, seeked once to the smallest index needed (``CAP_PROP_POS_FRAMES``) and read
forward to the largest, keeping only the needed frames (the others are ``grab()``-ed, which skips
colour conversion). Seeking trusts OpenCV's FFmpeg backend, which seeks to the preceding key frame
and decodes forward, exact for constant-frame-rate files; when the backend reports another
position after the seek, the window is read from the start instead. :class:`VideoReaders` keeps
captures open between windows so that windows read in order decode the video once, front to back.

Frame ``i`` of a video is its ``i``-th **decoded** frame (0-based). Frame counts come from
decoding (:func:`count_video_frames`), not from the container's header. Frames are ``(H, W, 3)``
uint8 RGB (:func:`~dptrack_pipeline.frames.images.to_rgb`). A window reports each frame it cannot
deliver as a :class:`~dptrack_pipeline.frames.errors.FrameDecodeError`; the whole-video helpers
(:func:`iter_video_frames`, :func:`count_video_frames`) raise it when the file cannot be opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from dptrack_pipeline.frames.errors import (
    FRAME_INDEX_OUT_OF_RANGE,
    FRAME_MISSING,
    FRAME_UNREADABLE,
    FrameDecodeError,
)
from dptrack_pipeline.frames.images import to_rgb
from dptrack_pipeline.frames.location import FrameLocation


def _open_video(path: str) -> cv2.VideoCapture:
    """Open a video file; raise :class:`FrameDecodeError` when missing or unreadable."""
    if not os.path.isfile(path):
        raise FrameDecodeError(FRAME_MISSING, f"video file not found: {path}", FrameLocation(path))
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise FrameDecodeError(
            FRAME_UNREADABLE, f"OpenCV cannot open video {path}", FrameLocation(path)
        )
    return capture


def _seek(capture: cv2.VideoCapture, path: str, index: int) -> tuple[cv2.VideoCapture, int]:
    """Position ``capture`` at frame ``index``; return the capture and its actual position.

    Falls back to a fresh capture at frame 0 when the backend does not land where asked.
    """
    if index == 0:
        return capture, 0
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    if int(round(capture.get(cv2.CAP_PROP_POS_FRAMES))) == index:
        return capture, index
    capture.release()
    return _open_video(path), 0


def _reported_frame_count(capture: cv2.VideoCapture) -> int:
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if count and count > 0 else -1


class VideoReaders:
    """Video files kept open between calls of
    :func:`~dptrack_pipeline.frames.decode.decode_frames`, with their read position.

    Reading the windows of one video in order then decodes the video once, front to back:
    a later window continues from where the previous one stopped (skipping frames with
    ``grab()``) instead of seeking. Seeking is what costs: OpenCV decodes from the last key frame,
    which took 0.07-0.23 s per seek on a 720p AVI, as long as decoding 30 frames. A request before
    the current position, or more than :data:`MAX_SKIP` frames ahead, re-opens and seeks.

    Not thread-safe: one instance per worker thread (a Beam DoFn instance is one thread's).
    """

    MAX_SKIP = 300

    def __init__(self, max_open: int = 4) -> None:
        self._max_open = max_open
        self._open: dict[str, tuple[cv2.VideoCapture, int, int]] = {}

    def take(self, path: str, first: int) -> tuple[cv2.VideoCapture, int, int] | None:
        """Remove and return ``(capture, position, reported_count)`` for ``path`` when it can
        continue forward to frame ``first``; else release it and return ``None``."""
        entry = self._open.pop(path, None)
        if entry is None:
            return None
        capture, position, reported = entry
        if position <= first <= position + self.MAX_SKIP:
            return entry
        capture.release()
        return None

    def put(self, path: str, capture: cv2.VideoCapture, position: int, reported: int) -> None:
        """Keep ``capture`` open at ``position``; the oldest is closed beyond ``max_open``."""
        self._open[path] = (capture, position, reported)
        while len(self._open) > self._max_open:
            oldest = next(iter(self._open))
            self._open.pop(oldest)[0].release()

    def close(self) -> None:
        for capture, _, _ in self._open.values():
            capture.release()
        self._open.clear()

    def __enter__(self) -> VideoReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_video_window(
    path: str, indices: Sequence[int], readers: VideoReaders | None = None
) -> dict[int, np.ndarray | FrameDecodeError]:
    """Decode the distinct ``indices`` of one video in a single forward pass (continuing an open
    capture from ``readers`` when it can).

    Args:
        path: video file.
        indices: 0-based frame indices, in any order, duplicates allowed.
        readers: open captures to continue from and to leave the capture in; ``None`` opens and
            closes the file within the call.

    Returns:
        ``{index: frame}`` for each distinct index: an ``(H, W, 3)`` uint8 RGB array or a
        :class:`~dptrack_pipeline.frames.errors.FrameDecodeError`. Nothing is raised for a bad
        frame or file.
    """
    results: dict[int, np.ndarray | FrameDecodeError] = {}
    wanted = sorted({index for index in indices if index >= 0})
    for index in indices:
        if index < 0:
            results[index] = FrameDecodeError(
                FRAME_INDEX_OUT_OF_RANGE,
                f"negative frame index {index} in video {path}",
                FrameLocation(path, index),
            )
    if not wanted:
        return results
    kept = readers.take(path, wanted[0]) if readers is not None else None
    try:
        if kept is not None:
            capture, position, reported = kept
        else:
            capture = _open_video(path)
            position = -1
    except FrameDecodeError as error:
        for index in wanted:
            results[index] = FrameDecodeError(
                error.reason, error.message, FrameLocation(path, index)
            )
        return results
    healthy = False
    try:
        if kept is None:
            reported = _reported_frame_count(capture)
            capture, position = _seek(capture, path, wanted[0])
        needed = set(wanted)
        last = wanted[-1]
        while position <= last:
            try:
                if position in needed:
                    ok, frame = capture.read()
                    if ok:
                        results[position] = to_rgb(frame)
                else:
                    ok = capture.grab()
            except cv2.error:
                ok = False
            if not ok:
                break
            position += 1
        healthy = position > last
        for index in wanted:
            if index in results:
                continue
            location = FrameLocation(path, index)
            if position == 0:
                results[index] = FrameDecodeError(
                    FRAME_UNREADABLE, f"no frame of {path} could be decoded", location
                )
            elif reported > index:
                results[index] = FrameDecodeError(
                    FRAME_UNREADABLE,
                    f"decoding {path} stopped at frame {position}, before frame {index} "
                    f"(the file reports {reported} frames)",
                    location,
                )
            else:
                results[index] = FrameDecodeError(
                    FRAME_INDEX_OUT_OF_RANGE,
                    f"frame {index} is past the end of {path} "
                    f"(decoding stopped at frame {position}; the file reports {reported} frames)",
                    location,
                )
    except FrameDecodeError as error:  # the file vanished or broke before the fallback re-open
        for index in wanted:
            results.setdefault(
                index, FrameDecodeError(error.reason, error.message, FrameLocation(path, index))
            )
    finally:
        if readers is not None and healthy:
            readers.put(path, capture, position, reported)
        else:
            capture.release()
    return results


# -- whole videos -----------------------------------------------------------------------------


def iter_video_frames(
    path: str, start: int = 0, stop: int | None = None, step: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream ``(index, frame)`` for ``index`` in ``range(start, stop, step)`` of a video file.

    Holds one frame at a time (frames skipped by ``step`` are grabbed, not converted). Ends
    quietly at the end of the video (or where the decoder stops).

    Args:
        path: video file.
        start: first frame index, >= 0 (reached by one seek).
        stop: index to stop before; ``None`` reads to the end.
        step: >= 1.

    Yields:
        ``(index, frame)`` with ``frame`` ``(H, W, 3)`` uint8 RGB.

    Raises:
        FrameDecodeError: ``frame_missing`` / ``frame_unreadable`` when the file cannot be opened.
        ValueError: on a negative ``start`` or ``stop`` or a ``step`` < 1.
    """
    if start < 0 or (stop is not None and stop < 0) or step < 1:
        raise ValueError(
            f"need start >= 0, stop >= 0 or None, step >= 1; got {start}, {stop}, {step}"
        )
    capture = _open_video(path)
    try:
        capture, position = _seek(capture, path, start)
        while stop is None or position < stop:
            if position >= start and (position - start) % step == 0:
                ok, frame = capture.read()
                if not ok:
                    return
                yield position, to_rgb(frame)
            elif not capture.grab():
                return
            position += 1
    finally:
        capture.release()


def count_video_frames(path: str) -> int:
    """Number of frames in a video file, **counted by decoding** (``grab()`` through the file).

    ``CAP_PROP_FRAME_COUNT`` is not used: for many containers OpenCV derives it from the duration
    and the frame rate, which is wrong for variable-frame-rate files and files without an index.
    Counting costs one decode pass (about 2 ms per 720p frame).

    Raises:
        FrameDecodeError: ``frame_missing`` / ``frame_unreadable`` when the file cannot be opened.
    """
    capture = _open_video(path)
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count
