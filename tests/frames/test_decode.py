"""Decoding batches of frame references: one window per video, input order, per-frame errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.frames import (
    FRAME_INDEX_OUT_OF_RANGE,
    FRAME_MISSING,
    FRAME_UNREADABLE,
    FrameDecodeError,
    FrameLocation,
    decode_frames,
)
from dptrack_pipeline.frames import video as video_module


def _errors(results: list) -> list[str | None]:
    return [r.reason if isinstance(r, FrameDecodeError) else None for r in results]


def test_decode_mp4_window_matches_the_jpgs(posetrack_video: Path, monkeypatch) -> None:
    """The mp4 holds only the first 5 of the 10 frames: index 7 is past its end."""
    video = str(posetrack_video / "000001_mpiinew_test.mp4")
    opened = []
    real_open = video_module._open_video
    monkeypatch.setattr(video_module, "_open_video", lambda p: opened.append(p) or real_open(p))

    locations = [FrameLocation(video, i) for i in (4, 3, 7, 3)]
    frames = decode_frames(locations)
    assert opened == [video]  # one window for the whole video
    assert _errors(frames) == [None, None, FRAME_INDEX_OUT_OF_RANGE, None]
    assert frames[1] is frames[3]  # duplicates decoded once
    assert "past the end" in str(frames[2]) and frames[2].location == locations[2]
    for index, frame in ((4, frames[0]), (3, frames[1])):
        jpg = cv2.imread(str(posetrack_video / f"{index:06d}.jpg"))[:, :, ::-1]
        difference = np.abs(frame.astype(np.int16) - jpg).mean()
        assert difference < 3.5  # measured 2.49 (frame 4) and 2.55 (frame 3): codec noise
        other = cv2.imread(str(posetrack_video / f"{index - 2:06d}.jpg"))[:, :, ::-1]
        assert np.abs(frame.astype(np.int16) - other).mean() > 8  # measured 16.5 and 17.7


def test_mixed_locations_keep_input_order(posetrack_video: Path, tmp_path: Path) -> None:
    video = str(posetrack_video / "000001_mpiinew_test.mp4")
    corrupt = tmp_path / "x.jpg"
    corrupt.write_bytes(b"this is not a jpeg" * 50)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    locations = [
        FrameLocation(str(posetrack_video / "000001.jpg")),
        FrameLocation(str(tmp_path / "missing.jpg")),
        FrameLocation(video, 1),
        FrameLocation(str(corrupt)),
        FrameLocation(str(tmp_path / "missing.mp4"), 0),
        FrameLocation(video, -1),
        FrameLocation(str(empty)),
        FrameLocation(str(corrupt), 2),  # garbage opened as a video
    ]
    results = decode_frames(locations)
    assert _errors(results) == [
        None,
        FRAME_MISSING,
        None,
        FRAME_UNREADABLE,
        FRAME_MISSING,
        FRAME_INDEX_OUT_OF_RANGE,
        FRAME_UNREADABLE,
        FRAME_UNREADABLE,
    ]
    assert results[0].shape == results[2].shape == (720, 1280, 3)
    assert str(tmp_path / "missing.jpg") in str(results[1])


def test_decode_rejects_non_locations() -> None:
    with pytest.raises(TypeError, match="FrameLocation"):
        decode_frames(["a.jpg"])


def test_frame_decode_error_pickles() -> None:
    error = FrameDecodeError(FRAME_MISSING, "gone", FrameLocation("a.mp4", 3))
    restored = pickle.loads(pickle.dumps(error))
    assert (restored.reason, restored.message, restored.location) == (
        FRAME_MISSING,
        "gone",
        FrameLocation("a.mp4", 3),
    )
    with pytest.raises(ValueError, match="reason"):
        FrameDecodeError("oops", "bad reason")
