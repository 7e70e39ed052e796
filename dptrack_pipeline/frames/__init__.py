"""Frame sources: where a frame's pixels live, and decoding them where the flow is computed.

Frames travel through the pipeline by reference and are decoded on the worker that needs them.
One module per question:

* :mod:`.containment`: does a path from data stay inside its root? :func:`escape`.
* :mod:`.location`: where are a frame's pixels? :class:`FrameLocation`, :func:`resolve_frame`.
* :mod:`.errors`: why could a frame not be decoded? :class:`FrameDecodeError` and its reasons.
* :mod:`.images`: which frames does an image folder hold, in which order, and how is one image
  decoded? :func:`list_image_frames`, natural order, the RGB convention.
* :mod:`.video`: how are frames read from a video file? Windows, :class:`VideoReaders`,
  :func:`iter_video_frames`, :func:`count_video_frames`.
* :mod:`.decode`: how is a batch of references decoded? :func:`decode_frames`.

Every frame returned is an ``(H, W, 3)`` uint8 RGB array.
"""

from dptrack_pipeline.frames.containment import escape
from dptrack_pipeline.frames.decode import decode_frames
from dptrack_pipeline.frames.errors import (
    DECODE_REASONS,
    FRAME_INDEX_OUT_OF_RANGE,
    FRAME_MISSING,
    FRAME_UNREADABLE,
    PATH_OUTSIDE_ROOT,
    FrameDecodeError,
)
from dptrack_pipeline.frames.images import (
    IMAGE_EXTENSIONS,
    decode_image,
    list_image_frames,
    natural_key,
    to_rgb,
)
from dptrack_pipeline.frames.location import VIDEO_EXTENSIONS, FrameLocation, resolve_frame
from dptrack_pipeline.frames.video import (
    VideoReaders,
    count_video_frames,
    decode_video_window,
    iter_video_frames,
)

__all__ = [
    "DECODE_REASONS",
    "FRAME_INDEX_OUT_OF_RANGE",
    "FRAME_MISSING",
    "FRAME_UNREADABLE",
    "PATH_OUTSIDE_ROOT",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FrameDecodeError",
    "FrameLocation",
    "VideoReaders",
    "count_video_frames",
    "decode_frames",
    "decode_image",
    "decode_video_window",
    "escape",
    "iter_video_frames",
    "list_image_frames",
    "natural_key",
    "resolve_frame",
    "to_rgb",
]
