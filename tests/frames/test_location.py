"""Resolving an annotation's file name to an image file or a frame of a video file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dptrack_pipeline.frames import FRAME_MISSING, FrameLocation, decode_frames, resolve_frame


def test_resolve_frame_rules(tmp_path: Path) -> None:
    root = str(tmp_path)
    (tmp_path / "images" / "val" / "001").mkdir(parents=True)
    (tmp_path / "images" / "val" / "001" / "000007.jpg").write_bytes(b"")
    (tmp_path / "images" / "val" / "002.mp4").write_bytes(b"")
    (tmp_path / "images" / "val" / "003.webm").write_bytes(b"")

    # 1. the image exists
    assert resolve_frame(root, "images/val/001/000007.jpg", 7) == FrameLocation(
        str(tmp_path / "images/val/001/000007.jpg"), None
    )
    # 3. the folder was replaced by a video of the same name
    assert resolve_frame(root, "images/val/002/000007.jpg", 7) == FrameLocation(
        str(tmp_path / "images/val/002.mp4"), 7
    )
    assert resolve_frame(root, "images/val/003/000000.jpg", 0) == FrameLocation(
        str(tmp_path / "images/val/003.webm"), 0
    )
    # 2. an explicit video reference, whether or not the file exists; index from the suffix
    assert resolve_frame(root, "videos/a.MP4#12", 3) == FrameLocation(
        str(tmp_path / "videos/a.MP4"), 12
    )
    # 4. nothing found: the image location, reported missing at decoding
    missing = resolve_frame(root, "images/val/004/000001.jpg", 1)
    assert missing == FrameLocation(str(tmp_path / "images/val/004/000001.jpg"), None)
    assert decode_frames([missing])[0].reason == FRAME_MISSING
    # no folder: no sibling video is looked for
    assert resolve_frame(root, "x.jpg", 0) == FrameLocation(str(tmp_path / "x.jpg"), None)
    # not a video extension: no '#' rule
    assert resolve_frame(root, "clip.gif#3", 0).video_index is None


def test_resolve_then_decode_posetrack(shared_data: Path) -> None:
    root = str(shared_data / "posetrack18" / "videos")
    location = resolve_frame(root, "000001_mpiinew_test/000002.jpg", 2)
    assert location.video_index is None
    via_video = resolve_frame(root, "000001_mpiinew_test/000001_mpiinew_test.mp4#2", 0)
    image, frame = decode_frames([location, via_video])
    assert frame.shape == image.shape
    assert np.abs(frame.astype(np.int16) - image).mean() < 3.5  # measured 2.47
