"""Which videos a ``pairs`` job reads, how many frames they have, where frame ``i`` is."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.frames import FRAME_MISSING, FRAME_UNREADABLE, FrameDecodeError, FrameLocation
from dptrack_pipeline.pairs.videos import (
    KIND_FILE,
    KIND_FOLDER,
    VideoFrames,
    VideoSpec,
    count_frames,
    discover_videos,
    frame_location,
)


def _write_frames(folder: Path, names: list[str], width: int = 24, height: int = 16) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(names))
    for name in names:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), image)


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# --------------------------------------------------------------------------- discovery


def test_discover_video_file(tmp_path: Path) -> None:
    _touch(tmp_path / "clip01.MP4")
    specs = discover_videos([str(tmp_path / "clip01.MP4")])
    assert specs == [VideoSpec("clip01", str(tmp_path / "clip01.MP4"), KIND_FILE)]


def test_discover_frame_folder(tmp_path: Path) -> None:
    folder = tmp_path / "walk"
    _write_frames(folder, ["0.png", "1.png"])
    _touch(folder / "walk.mp4")  # a video of the same frames beside them is ignored
    _touch(folder / "notes.txt")
    specs = discover_videos([str(folder) + os.sep])  # a trailing separator is normalised away
    assert specs == [VideoSpec("walk", str(folder), KIND_FOLDER)]


def test_discover_collection(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    _touch(root / "clip10.mp4")
    _touch(root / "clip2.avi")
    _touch(root / "README.txt")
    _write_frames(root / "seq1", ["a.png"])
    _write_frames(root / "seq03", ["a.png"])
    (root / "empty").mkdir()  # a sub-folder without images is not a video
    _touch(root / "other" / "deeper.mp4")  # neither is one holding only videos
    specs = discover_videos([str(root)])
    assert specs == [
        VideoSpec("clip2", str(root / "clip2.avi"), KIND_FILE),
        VideoSpec("clip10", str(root / "clip10.mp4"), KIND_FILE),
        VideoSpec("seq1", str(root / "seq1"), KIND_FOLDER),
        VideoSpec("seq03", str(root / "seq03"), KIND_FOLDER),
    ]


def test_discover_keeps_argument_order(tmp_path: Path) -> None:
    _touch(tmp_path / "b.mp4")
    _write_frames(tmp_path / "a", ["0.png"])
    specs = discover_videos([str(tmp_path / "b.mp4"), str(tmp_path / "a")])
    assert [s.video_id for s in specs] == ["b", "a"]


def test_discover_duplicate_ids(tmp_path: Path) -> None:
    _touch(tmp_path / "one" / "clip.mp4")
    _touch(tmp_path / "two" / "clip.avi")
    with pytest.raises(ValueError, match="'clip'") as info:
        discover_videos([str(tmp_path / "one" / "clip.mp4"), str(tmp_path / "two")])
    assert str(tmp_path / "one" / "clip.mp4") in str(info.value)
    assert str(tmp_path / "two" / "clip.avi") in str(info.value)


def test_discover_duplicate_ids_inside_a_collection(tmp_path: Path) -> None:
    _touch(tmp_path / "c" / "clip.mp4")
    _write_frames(tmp_path / "c" / "clip", ["0.png"])
    with pytest.raises(ValueError, match="two videos have the id 'clip'"):
        discover_videos([str(tmp_path / "c")])


def test_discover_same_path_twice_is_a_duplicate(tmp_path: Path) -> None:
    _touch(tmp_path / "clip.mp4")
    with pytest.raises(ValueError, match="two videos"):
        discover_videos([str(tmp_path / "clip.mp4"), str(tmp_path / "clip.mp4")])


def test_discover_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file or folder"):
        discover_videos([str(tmp_path / "nothing.mp4")])


def test_discover_non_video_file(tmp_path: Path) -> None:
    _touch(tmp_path / "frame.png")
    with pytest.raises(ValueError, match="not a video file"):
        discover_videos([str(tmp_path / "frame.png")])


def test_discover_folder_without_videos(tmp_path: Path) -> None:
    _touch(tmp_path / "nothing" / "notes.txt")
    with pytest.raises(ValueError, match="neither images nor video files"):
        discover_videos([str(tmp_path / "nothing")])


# --------------------------------------------------------------------------- counting


def test_count_frames_folder_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    names = ["10.png", "2.png", "1.png", "000.png"]
    _write_frames(folder, names, width=24, height=16)
    _touch(folder / "labels.txt")
    frames = count_frames(VideoSpec("seq", str(folder), KIND_FOLDER))
    assert frames == VideoFrames(
        4, 24, 16, tuple(str(folder / n) for n in ["000.png", "1.png", "2.png", "10.png"])
    )


def test_count_frames_empty_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert count_frames(VideoSpec("empty", str(tmp_path / "empty"), KIND_FOLDER)) == VideoFrames(
        0, 0, 0, ()
    )
    with pytest.raises(FrameDecodeError) as info:
        count_frames(VideoSpec("gone", str(tmp_path / "gone"), KIND_FOLDER))
    assert info.value.reason == FRAME_MISSING


def test_count_frames_unreadable_first_image(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "0.png").write_bytes(b"not a png")
    with pytest.raises(FrameDecodeError) as info:
        count_frames(VideoSpec("broken", str(folder), KIND_FOLDER))
    assert info.value.reason == FRAME_UNREADABLE


def test_count_frames_missing_video_file(tmp_path: Path) -> None:
    with pytest.raises(FrameDecodeError):
        count_frames(VideoSpec("gone", str(tmp_path / "gone.mp4"), KIND_FILE))


def test_count_frames_written_video(tmp_path: Path) -> None:
    path = tmp_path / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    assert writer.isOpened()
    for i in range(7):
        writer.write(np.full((24, 32, 3), 30 * i, np.uint8))
    writer.release()
    (spec,) = discover_videos([str(path)])
    assert count_frames(spec) == VideoFrames(7, 32, 24, ())


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "frames"),
    [
        ("pedestrians_demo.mp4", VideoFrames(5, 960, 540, ())),
        ("street_people_720p.avi", VideoFrames(205, 1280, 720, ())),
    ],
)
def test_count_frames_shared_video(shared_data: Path, name: str, frames: VideoFrames) -> None:
    path = shared_data / "video" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    (spec,) = discover_videos([str(path)])
    assert spec == VideoSpec(path.stem, str(path), KIND_FILE)
    assert count_frames(spec) == frames


@pytest.mark.shared_data
def test_posetrack_frame_folder_ignores_its_mp4(shared_data: Path) -> None:
    folder = shared_data / "posetrack18" / "videos" / "000001_mpiinew_test"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    (spec,) = discover_videos([str(folder)])
    assert spec.kind == KIND_FOLDER
    frames = count_frames(spec)
    assert (frames.num_frames, frames.width, frames.height) == (10, 1280, 720)
    assert [os.path.basename(f) for f in frames.frame_files] == [f"{i:06d}.jpg" for i in range(10)]


# --------------------------------------------------------------------------- locations


def test_frame_location() -> None:
    file_spec = VideoSpec("clip", "/data/clip.mp4", KIND_FILE)
    assert frame_location(file_spec, 12) == FrameLocation("/data/clip.mp4", 12)
    folder_spec = VideoSpec("seq", "/data/seq", KIND_FOLDER)
    files = ("/data/seq/0.jpg", "/data/seq/1.jpg")
    assert frame_location(folder_spec, 1, files) == FrameLocation("/data/seq/1.jpg", None)


def test_nested_collections_are_not_searched_and_duplicate_names_are_refused(
    tmp_path: Path,
) -> None:
    """Collections are one level deep; give each batch folder, and same-named clips clash."""
    _touch(tmp_path / "mpii" / "batch1" / "clip.mp4")
    _touch(tmp_path / "mpii" / "batch2" / "clip.mp4")
    with pytest.raises(ValueError, match="neither images nor video files"):
        discover_videos([str(tmp_path / "mpii")])
    with pytest.raises(ValueError, match="two videos have the id 'clip'"):
        discover_videos([str(tmp_path / "mpii" / "batch1"), str(tmp_path / "mpii" / "batch2")])
