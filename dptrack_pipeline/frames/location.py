"""Where a frame's pixels live: :class:`FrameLocation`, and :func:`resolve_frame` from a file name.

Frames are passed through the pipeline **by reference** (a :class:`FrameLocation`), never as
pixels: a 720p RGB frame is 2.7 MB and a Beam shuffle of pixels would dwarf everything else. The
worker that computes a flow decodes the few frames it needs
(:func:`~dptrack_pipeline.frames.decode.decode_frames`).

A frame lives either in an image file (PoseTrack's ``images/<split>/<video>/<frame>.jpg``) or
inside a video file (extension in :data:`VIDEO_EXTENSIONS`). :func:`resolve_frame` maps an
annotation's ``file_name`` to a location (rules in its docstring); it only looks at which files
exist and never opens one, so a location that names nothing is found out at decoding. Paths are
local file paths.

Every candidate path is checked to stay inside ``frames_root`` first
(:func:`~dptrack_pipeline.frames.containment.escape`): a ``file_name`` with ``..``, an absolute
one, or a symlink that leaves the root resolves to a location with ``refused`` set, which decoding
reports as ``path_outside_root`` without opening anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from dptrack_pipeline.frames.containment import escape

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")

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
        refused: why the path may not be opened (it leaves its root), or ``None``. Decoding a
            refused location gives a ``path_outside_root`` error and opens nothing.
    """

    path: str
    video_index: int | None = None
    refused: str | None = None

    @property
    def is_video(self) -> bool:
        return self.video_index is not None


def resolve_frame(
    frames_root: str, image_file: str, index_in_video: int, *, follow_symlinks: bool = False
) -> FrameLocation:
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

    A candidate that leaves ``frames_root`` (``..``, absolute, or a symlink out unless
    ``follow_symlinks``) is never looked at: the result is the image location of rule 1 with
    ``refused`` set.

    Args:
        frames_root: local folder the annotation file names are relative to.
        image_file: the annotation's ``file_name`` (relative, ``/``-separated).
        index_in_video: the frame's 0-based position in its video (``FrameRef.index``).
        follow_symlinks: accept symlinks that leave ``frames_root`` (``--follow-symlinks``).
    """
    image_path = os.path.join(frames_root, image_file)

    def refused(relative: str) -> str | None:
        return escape(frames_root, relative, follow_symlinks=follow_symlinks)

    why = escape(frames_root, image_file, follow_symlinks=True)  # lexical: before any stat
    if why:
        return FrameLocation(image_path, None, why)
    if os.path.isfile(image_path):
        return FrameLocation(image_path, None, refused(image_file))
    match = _VIDEO_FRAME_SUFFIX.match(image_file)
    if match:
        video = match["path"]
        return FrameLocation(os.path.join(frames_root, video), int(match["index"]), refused(video))
    folder = os.path.dirname(image_file.rstrip("/"))
    if folder:
        for extension in VIDEO_EXTENSIONS:
            video_path = os.path.join(frames_root, folder + extension)
            if os.path.isfile(video_path):
                return FrameLocation(video_path, int(index_in_video), refused(folder + extension))
    return FrameLocation(image_path, None, refused(image_file))
