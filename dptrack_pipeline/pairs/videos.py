"""Which videos a ``pairs`` job reads, how many frames each has, and where frame ``i`` lives.

A *video* is either a video file (extension in
:data:`~dptrack_pipeline.frames.VIDEO_EXTENSIONS`) or a *frame folder*: a folder whose
image files (:data:`~dptrack_pipeline.frames.IMAGE_EXTENSIONS`) are the frames in natural
order (``2.jpg`` before ``10.jpg``). :func:`discover_videos` expands the paths a user gives:

* a video file: that video;
* a folder that directly holds images: one frame folder (other files in it, such as a video file
  of the same frames, are ignored);
* any other folder: a collection. Its video files and its sub-folders that hold images are the
  videos, one level deep, in natural order of their names.

The **video id** is the file name without extension (``clip01.mp4`` -> ``clip01``) or the folder
name; collections are not searched deeper than one level, so give each batch folder of a nested
archive (``--videos mpii/batch1 --videos mpii/batch2``). Ids must be unique over the job: two videos
with the same id are an error that names both paths (people files and shards refer to videos by id).

Frame ``i`` of a video is the ``i``-th decoded frame (0-based) of the file, or the ``i``-th image
of the folder. Frames are counted by decoding (:func:`count_frames`), never from the container's
header, which is wrong for variable-frame-rate files and files without an index.

Containment (:mod:`dptrack_pipeline.frames.containment`): the paths given with ``--videos`` are
trusted, but what a folder holds is data. A collection entry or a frame image that is a symlink
leaving its folder is refused unless ``follow_symlinks``: such a video is rejected
``path_outside_root`` at planning (:func:`count_frames` raises), such a frame when a pair needs it
(its location is refused, decoding reports it), and neither is ever opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2

from dptrack_pipeline.frames import (
    FRAME_MISSING,
    FRAME_UNREADABLE,
    IMAGE_EXTENSIONS,
    PATH_OUTSIDE_ROOT,
    VIDEO_EXTENSIONS,
    FrameDecodeError,
    FrameLocation,
    count_video_frames,
    escape,
    list_image_frames,
    natural_key,
)

KIND_FILE = "file"
KIND_FOLDER = "folder"


@dataclass(frozen=True)
class VideoSpec:
    """One input video.

    Attributes:
        video_id: unique id (see the module docstring).
        path: the video file or the frame folder (as given, joined with the collection folder).
        kind: :data:`KIND_FILE` or :data:`KIND_FOLDER`.
        refused: why the video may not be opened (a collection entry that leaves the
            collection), or ``None``.
        follow_symlinks: accept frame images that are symlinks out of the frame folder.
    """

    video_id: str
    path: str
    kind: str
    refused: str | None = None
    follow_symlinks: bool = False


@dataclass(frozen=True)
class VideoFrames:
    """What counting a video found.

    Attributes:
        num_frames: decodable frames (file: counted by decoding; folder: image files).
        width, height: size of frame 0 in pixels (0 when the video has no frame).
        frame_files: for a frame folder, the image paths in frame order; empty for a file.
    """

    num_frames: int
    width: int
    height: int
    frame_files: tuple[str, ...] = ()


def _is_video_file(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _holds_images(folder: str) -> bool:
    with os.scandir(folder) as entries:
        return any(e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS) for e in entries)


def _strip_extension(name: str) -> str:
    return os.path.splitext(name)[0] if _is_video_file(name) else name


def discover_videos(
    paths: list[str] | tuple[str, ...], follow_symlinks: bool = False
) -> list[VideoSpec]:
    """Expand ``--videos`` arguments into videos (rules in the module docstring).

    A collection entry that is a symlink out of the collection keeps its place with ``refused``
    set (unless ``follow_symlinks``), so that it is rejected with its reason, not dropped.

    Returns:
        The videos in argument order, each collection in natural order of names.

    Raises:
        ValueError: a path that does not exist, is neither a video file nor a folder, a
            collection without any video, or two videos with the same id.
    """
    found: list[VideoSpec] = []
    for given in paths:
        path = os.path.normpath(str(given))
        if os.path.isfile(path):
            if not _is_video_file(path):
                raise ValueError(
                    f"{given}: not a video file (extensions: {', '.join(VIDEO_EXTENSIONS)}) "
                    "and not a folder of frames"
                )
            found.append(VideoSpec(_strip_extension(os.path.basename(path)), path, KIND_FILE))
        elif os.path.isdir(path):
            if _holds_images(path):
                found.append(
                    VideoSpec(os.path.basename(path), path, KIND_FOLDER, None, follow_symlinks)
                )
                continue
            inside = []
            for name in sorted(os.listdir(path), key=natural_key):
                full = os.path.join(path, name)
                why = escape(path, name, follow_symlinks=follow_symlinks)
                if os.path.isfile(full) and _is_video_file(name):
                    inside.append(VideoSpec(_strip_extension(name), full, KIND_FILE, why))
                elif os.path.isdir(full) and _holds_images(full):
                    inside.append(VideoSpec(name, full, KIND_FOLDER, why, follow_symlinks))
            if not inside:
                raise ValueError(
                    f"{given}: a folder with neither images nor video files nor sub-folders of "
                    "images in it"
                )
            found.extend(inside)
        else:
            raise ValueError(f"{given}: no such file or folder")
    seen: dict[str, str] = {}
    for spec in found:
        if spec.video_id in seen:
            raise ValueError(
                f"two videos have the id {spec.video_id!r}: {seen[spec.video_id]} and {spec.path}; "
                "rename one (ids are file names without extension, or folder names)"
            )
        seen[spec.video_id] = spec.path
    return found


def count_frames(spec: VideoSpec) -> VideoFrames:
    """Count a video's frames and read its frame size.

    Raises:
        FrameDecodeError: ``path_outside_root`` for a refused video (nothing is opened);
            ``frame_missing`` / ``frame_unreadable`` when a video file cannot be opened or a
            folder's first image inside the folder cannot be read.
    """
    if spec.refused:
        raise FrameDecodeError(PATH_OUTSIDE_ROOT, spec.refused, FrameLocation(spec.path))
    if spec.kind == KIND_FOLDER:
        if not os.path.isdir(spec.path):
            raise FrameDecodeError(FRAME_MISSING, f"frame folder not found: {spec.path}")
        files = tuple(list_image_frames(spec.path))
        if not files:
            return VideoFrames(0, 0, 0, ())
        inside = [f for f in files if not _refused_frame(spec, f)]
        if not inside:
            raise FrameDecodeError(PATH_OUTSIDE_ROOT, _refused_frame(spec, files[0]) or "")
        header = cv2.imread(inside[0], cv2.IMREAD_UNCHANGED)
        if header is None:
            raise FrameDecodeError(FRAME_UNREADABLE, f"cannot read the first frame {inside[0]}")
        return VideoFrames(len(files), int(header.shape[1]), int(header.shape[0]), files)
    count = count_video_frames(spec.path)
    capture = cv2.VideoCapture(spec.path)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) if count else 0
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) if count else 0
    finally:
        capture.release()
    return VideoFrames(count, width, height, ())


def frame_location(spec: VideoSpec, index: int, frame_files: tuple[str, ...] = ()) -> FrameLocation:
    """Where frame ``index`` of ``spec`` is; ``frame_files`` are the folder's images (see
    :class:`VideoFrames`) indexed from frame 0."""
    if spec.kind == KIND_FOLDER:
        path = frame_files[index]
        return FrameLocation(path, None, _refused_frame(spec, path))
    return FrameLocation(spec.path, index)


def _refused_frame(spec: VideoSpec, path: str) -> str | None:
    """Why the frame image ``path`` of the folder ``spec`` may not be opened, or ``None``."""
    return escape(spec.path, os.path.basename(path), follow_symlinks=spec.follow_symlinks)
