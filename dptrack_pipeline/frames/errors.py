"""Why a frame could not be decoded: :class:`FrameDecodeError` and its reason codes.

Failures are data, not exceptions:
:func:`~dptrack_pipeline.frames.decode.decode_frames` returns a :class:`FrameDecodeError` in place
of each frame that could not be decoded, with a machine-readable ``reason`` that the Beam layer
turns into a reject record. The reasons are a closed set, the decode reasons of the reject table
(:data:`dptrack_pipeline.rejects.DECODE_REASONS`):

* :data:`FRAME_MISSING`: the image or video file does not exist;
* :data:`FRAME_UNREADABLE`: the file exists but OpenCV cannot decode it (or decoding stopped
  before a frame the file says it has);
* :data:`FRAME_INDEX_OUT_OF_RANGE`: a negative frame index, or one past the decodable end;
* :data:`PATH_OUTSIDE_ROOT`: the path leaves its root (:mod:`~dptrack_pipeline.frames.containment`)
  and was not opened;
* ``frame_size_mismatch``: the frame decoded, but is not the size its annotation says (set by the
  ``run`` worker's check of decoded frames).

Only the whole-video helpers (:func:`~dptrack_pipeline.frames.video.iter_video_frames`,
:func:`~dptrack_pipeline.frames.video.count_video_frames`) raise it, when the file cannot be
opened. It pickles with its reason and location, so it crosses Beam worker boundaries intact.
"""

from __future__ import annotations

from dptrack_pipeline.frames.location import FrameLocation
from dptrack_pipeline.rejects import (
    DECODE_REASONS,
    FRAME_INDEX_OUT_OF_RANGE,
    FRAME_MISSING,
    FRAME_UNREADABLE,
    PATH_OUTSIDE_ROOT,
)

__all__ = [
    "DECODE_REASONS",
    "FRAME_INDEX_OUT_OF_RANGE",
    "FRAME_MISSING",
    "FRAME_UNREADABLE",
    "PATH_OUTSIDE_ROOT",
    "FrameDecodeError",
]


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
