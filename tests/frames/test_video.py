"""Video frames: windows equal sequential reading, whole-video streaming and counting, and
captures kept open between windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.frames import (
    FRAME_MISSING,
    FRAME_UNREADABLE,
    FrameDecodeError,
    FrameLocation,
    VideoReaders,
    count_video_frames,
    decode_frames,
    iter_video_frames,
)


def test_decode_window_equals_sequential_reading(shared_data: Path) -> None:
    """One seek to the smallest index, then reading forward, gives the same pixels as decoding
    the file from the start."""
    video = str(shared_data / "video" / "street_people_720p.avi")
    wanted = [12, 5, 9]
    windowed = decode_frames([FrameLocation(video, i) for i in wanted])
    sequential = dict(iter_video_frames(video, 0, 13))
    for index, frame in zip(wanted, windowed, strict=True):
        np.testing.assert_array_equal(frame, sequential[index])


def test_iter_video_frames_avi(shared_data: Path) -> None:
    video = str(shared_data / "video" / "street_people_720p.avi")
    frames = list(iter_video_frames(video, start=0, stop=10, step=1))
    assert [index for index, _ in frames] == list(range(10))
    assert all(f.shape == (720, 1280, 3) and f.dtype == np.uint8 for _, f in frames)
    assert np.abs(frames[9][1].astype(np.int16) - frames[0][1]).mean() > 0.5  # it is moving

    stepped = list(iter_video_frames(video, start=3, stop=10, step=3))
    assert [index for index, _ in stepped] == [3, 6, 9]
    np.testing.assert_array_equal(stepped[2][1], frames[9][1])
    assert [i for i, _ in iter_video_frames(video, start=200)] == [200, 201, 202, 203, 204]
    with pytest.raises(ValueError, match="step"):
        next(iter_video_frames(video, step=0))


def test_iter_and_count_errors(tmp_path: Path) -> None:
    with pytest.raises(FrameDecodeError) as info:
        next(iter_video_frames(str(tmp_path / "none.mp4")))
    assert info.value.reason == FRAME_MISSING
    garbage = tmp_path / "g.mp4"
    garbage.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(FrameDecodeError) as info:
        count_video_frames(str(garbage))
    assert info.value.reason == FRAME_UNREADABLE


def test_count_video_frames(shared_data: Path, posetrack_video: Path) -> None:
    assert count_video_frames(str(posetrack_video / "000001_mpiinew_test.mp4")) == 5
    assert count_video_frames(str(shared_data / "video" / "pedestrians_demo.mp4")) == 5


def test_video_readers_continue_forward_and_match_fresh_decoding(shared_data: Path) -> None:
    path = str(shared_data / "video" / "street_people_720p.avi")
    windows = [[0, 1, 2], [4, 5], [5, 6, 9], [2, 3]]  # the last one goes backwards
    with VideoReaders() as readers:
        for window in windows:
            locations = [FrameLocation(path, i) for i in window]
            fresh = decode_frames(locations)
            kept_before = readers.take(path, window[0])
            if kept_before is not None:  # put it back: take() hands over the capture
                readers.put(path, *kept_before)
            continued = decode_frames(locations, readers)
            for a, b in zip(fresh, continued, strict=True):
                assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                np.testing.assert_array_equal(a, b)
            # After a window the capture stays open just past its last frame.
            capture, position, _ = readers.take(path, window[-1] + 1)
            assert position == window[-1] + 1
            readers.put(path, capture, position, -1)
    assert readers.take(path, 0) is None  # closed on exit
