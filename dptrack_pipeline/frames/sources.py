"""Where a frame's pixels live, and decoding them where the flow is computed.

Frames are passed through the pipeline **by reference** (:class:`FrameLocation`), never as pixels:
a 720p RGB frame is 2.7 MB and a Beam shuffle of pixels would dwarf everything else. The worker
that computes a flow decodes the few frames it needs with :func:`decode_frames`.

A frame lives either in an image file (PoseTrack's ``images/<split>/<video>/<frame>.jpg``) or
inside a video file. :func:`resolve_frame` maps an annotation's ``file_name`` to a location (rules
in its docstring). :func:`decode_frames` decodes a batch of locations, each once; frames of the
same video are decoded as one **video window**: the file is opened once, seeked once to the
smallest index needed (``CAP_PROP_POS_FRAMES``) and read forward to the largest, keeping only the
needed frames (the others are ``grab()``-ed, which skips colour conversion). Seeking trusts
OpenCV's FFmpeg backend, which seeks to the preceding key frame and decodes forward, exact for
constant-frame-rate files; when the backend reports another position after the seek, the window is
read from the start instead.

Failures are data, not exceptions: :func:`decode_frames` returns a :class:`FrameDecodeError` in
place of each frame that could not be decoded, with a machine-readable ``reason``
(:data:`FRAME_MISSING`, :data:`FRAME_UNREADABLE`, :data:`FRAME_INDEX_OUT_OF_RANGE`) that the Beam
layer turns into a reject record.

All frames returned are ``(H, W, 3)`` uint8 **RGB** (OpenCV's BGR is converted; grey images are
replicated to three channels, an alpha channel is dropped, 16-bit images are scaled to 8 bits and
JPEG EXIF orientation is applied, as OpenCV's ``IMREAD_COLOR`` does). Paths are local file paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")

FRAME_MISSING = "frame_missing"
FRAME_UNREADABLE = "frame_unreadable"
FRAME_INDEX_OUT_OF_RANGE = "frame_index_out_of_range"
DECODE_REASONS = (FRAME_MISSING, FRAME_UNREADABLE, FRAME_INDEX_OUT_OF_RANGE)

_VIDEO_FRAME_SUFFIX = re.compile(
    r"^(?P<path>.+(?:" + "|".join(re.escape(ext) for ext in VIDEO_EXTENSIONS) + r"))"
    r"#(?P<index>\d+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FrameLocation:
    """Where one frame's pixels are.

    Attributes:
        path: an image file, or a video file when ``video_index`` is set.
        video_index: ``None`` for an image file; otherwise the 0-based index of the frame inside
            the video file (counted in decoded frames).
    """

    path: str
    video_index: int | None = None

    @property
    def is_video(self) -> bool:
        return self.video_index is not None


class FrameDecodeError(Exception):
    """A frame that could not be decoded.

    Attributes:
        reason: one of :data:`DECODE_REASONS`.
        message: a human sentence (also ``str(error)``).
        location: the frame's location, when known.
    """

    def __init__(self, reason: str, message: str, location: FrameLocation | None = None) -> None:
        if reason not in DECODE_REASONS:
            raise ValueError(f"reason must be one of {DECODE_REASONS}, got {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.location = location

    def __reduce__(self):
        return (type(self), (self.reason, self.message, self.location))

    def __repr__(self) -> str:
        return f"FrameDecodeError({self.reason!r}, {self.message!r})"


# -- resolving --------------------------------------------------------------------------------


def resolve_frame(frames_root: str, image_file: str, index_in_video: int) -> FrameLocation:
    """Map an annotation's ``file_name`` to where its pixels are.

    Rules, first match wins:

    1. ``frames_root/image_file`` is an existing file: that image.
    2. ``image_file`` names a video file with a ``#<n>`` suffix (``"videos/a.mp4#12"``; extension
       in :data:`VIDEO_EXTENSIONS`, any case): frame ``n`` of ``frames_root/videos/a.mp4``, whether
       or not it exists (``index_in_video`` is ignored). This explicit form is checked before
       rule 3 so that it cannot be shadowed by a sibling video.
    3. ``frames_root/<dirname(image_file)><ext>`` exists for an extension of
       :data:`VIDEO_EXTENSIONS` (tried in that order), i.e. the frame folder was replaced by one
       video file (``images/val/000001.mp4`` for ``images/val/000001/000007.jpg``): frame
       ``index_in_video`` of that video. Not tried when ``image_file`` has no folder.
    4. Otherwise the image location of rule 1; decoding will report it ``frame_missing``.

    Args:
        frames_root: local folder the annotation file names are relative to.
        image_file: the annotation's ``file_name`` (relative, ``/``-separated).
        index_in_video: the frame's 0-based position in its video (``FrameRef.index``).
    """
    image_path = os.path.join(frames_root, image_file)
    if os.path.isfile(image_path):
        return FrameLocation(image_path, None)
    match = _VIDEO_FRAME_SUFFIX.match(image_file)
    if match:
        return FrameLocation(os.path.join(frames_root, match["path"]), int(match["index"]))
    folder = os.path.dirname(image_file.rstrip("/"))
    if folder:
        for extension in VIDEO_EXTENSIONS:
            video_path = os.path.join(frames_root, folder + extension)
            if os.path.isfile(video_path):
                return FrameLocation(video_path, int(index_in_video))
    return FrameLocation(image_path, None)


# -- decoding ---------------------------------------------------------------------------------


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode_image(location: FrameLocation) -> np.ndarray | FrameDecodeError:
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
    return _to_rgb(image)


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
    """Video files kept open between calls of :func:`decode_frames`, with their read position.

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


def _decode_video_window(
    path: str, indices: Sequence[int], readers: VideoReaders | None = None
) -> dict[int, np.ndarray | FrameDecodeError]:
    """Decode the distinct ``indices`` of one video in a single forward pass (continuing an open
    capture from ``readers`` when it can)."""
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
                        results[position] = _to_rgb(frame)
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
        :class:`FrameDecodeError` (``frame_missing``, ``frame_unreadable`` or
        ``frame_index_out_of_range``). Duplicate locations share one array object; do not modify
        it in place. Nothing is raised for a bad frame.

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
        if location.video_index is None:
            decoded[location] = _decode_image(location)
        else:
            videos.setdefault(location.path, []).append(int(location.video_index))
    for path, indices in videos.items():
        for index, result in _decode_video_window(path, indices, readers).items():
            decoded[FrameLocation(path, index)] = result
    return [decoded[location] for location in locations]


# -- whole videos and folders -----------------------------------------------------------------


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
                yield position, _to_rgb(frame)
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
