"""Frame sources: image folders and video files, resolved by reference and decoded in windows."""

from dptrack_pipeline.frames.sources import (
    DECODE_REASONS,
    FRAME_INDEX_OUT_OF_RANGE,
    FRAME_MISSING,
    FRAME_UNREADABLE,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FrameDecodeError,
    FrameLocation,
    VideoReaders,
    count_video_frames,
    decode_frames,
    iter_video_frames,
    list_image_frames,
    resolve_frame,
)

__all__ = [
    "DECODE_REASONS",
    "FRAME_INDEX_OUT_OF_RANGE",
    "FRAME_MISSING",
    "FRAME_UNREADABLE",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FrameDecodeError",
    "FrameLocation",
    "VideoReaders",
    "count_video_frames",
    "decode_frames",
    "iter_video_frames",
    "list_image_frames",
    "resolve_frame",
]
