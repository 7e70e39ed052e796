"""Frame resolution and decoding: image folders, video windows, per-frame errors."""

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
    VideoReaders,
    count_video_frames,
    decode_frames,
    iter_video_frames,
    list_image_frames,
    resolve_frame,
    sources,
)

VIDEO_DIR = ("posetrack18", "videos", "000001_mpiinew_test")


@pytest.fixture
def posetrack_video(shared_data: Path) -> Path:
    return shared_data.joinpath(*VIDEO_DIR)


def _errors(results: list) -> list[str | None]:
    return [r.reason if isinstance(r, FrameDecodeError) else None for r in results]


# -- decoding ---------------------------------------------------------------------------------


def test_decode_jpg_folder(posetrack_video: Path) -> None:
    paths = list_image_frames(str(posetrack_video))
    assert [Path(p).name for p in paths] == [f"{i:06d}.jpg" for i in range(10)]
    frames = decode_frames([FrameLocation(p) for p in paths])
    assert all(f.shape == (720, 1280, 3) and f.dtype == np.uint8 for f in frames)
    bgr = cv2.imread(paths[3])
    np.testing.assert_array_equal(frames[3], bgr[:, :, ::-1])  # RGB out


def test_decode_mp4_window_matches_the_jpgs(posetrack_video: Path, monkeypatch) -> None:
    """The mp4 holds only the first 5 of the 10 frames: index 7 is past its end."""
    video = str(posetrack_video / "000001_mpiinew_test.mp4")
    opened = []
    real_open = sources._open_video
    monkeypatch.setattr(sources, "_open_video", lambda p: opened.append(p) or real_open(p))

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


def test_decode_window_equals_sequential_reading(shared_data: Path) -> None:
    """One seek to the smallest index, then reading forward, gives the same pixels as decoding
    the file from the start."""
    video = str(shared_data / "video" / "street_people_720p.avi")
    wanted = [12, 5, 9]
    windowed = decode_frames([FrameLocation(video, i) for i in wanted])
    sequential = dict(iter_video_frames(video, 0, 13))
    for index, frame in zip(wanted, windowed, strict=True):
        np.testing.assert_array_equal(frame, sequential[index])


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


def test_grey_and_alpha_images_become_rgb(tmp_path: Path) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    bgra = np.zeros((3, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 255, 10, 128  # blue, a little red, half alpha
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    grey_rgb, alpha_rgb = decode_frames(
        [FrameLocation(str(tmp_path / "g.png")), FrameLocation(str(tmp_path / "a.png"))]
    )
    assert grey_rgb.shape == (3, 4, 3)
    np.testing.assert_array_equal(grey_rgb, np.repeat(grey[:, :, None], 3, axis=2))
    assert alpha_rgb.shape == (3, 4, 3)
    np.testing.assert_array_equal(alpha_rgb[0, 0], [10, 0, 255])


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


# -- whole videos -----------------------------------------------------------------------------


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


def test_list_image_frames_natural_order(tmp_path: Path) -> None:
    for name in ["10.jpg", "2.PNG", "1.jpeg", "notes.txt", "3.bmp", "a.mp4", "0.ppm"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "4.jpg").mkdir()
    names = [Path(p).name for p in list_image_frames(str(tmp_path))]
    assert names == ["0.ppm", "1.jpeg", "2.PNG", "3.bmp", "10.jpg"]
    assert list_image_frames(str(tmp_path))[0] == str(tmp_path / "0.ppm")


# -- resolving --------------------------------------------------------------------------------


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
