"""Image frames: listing a frame folder in natural order, and decoding images to RGB."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dptrack_pipeline.frames import FrameLocation, decode_frames, list_image_frames


def test_list_image_frames_natural_order(tmp_path: Path) -> None:
    for name in ["10.jpg", "2.PNG", "1.jpeg", "notes.txt", "3.bmp", "a.mp4", "0.ppm"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "4.jpg").mkdir()
    names = [Path(p).name for p in list_image_frames(str(tmp_path))]
    assert names == ["0.ppm", "1.jpeg", "2.PNG", "3.bmp", "10.jpg"]
    assert list_image_frames(str(tmp_path))[0] == str(tmp_path / "0.ppm")


def test_decode_jpg_folder(posetrack_video: Path) -> None:
    paths = list_image_frames(str(posetrack_video))
    assert [Path(p).name for p in paths] == [f"{i:06d}.jpg" for i in range(10)]
    frames = decode_frames([FrameLocation(p) for p in paths])
    assert all(f.shape == (720, 1280, 3) and f.dtype == np.uint8 for f in frames)
    bgr = cv2.imread(paths[3])
    np.testing.assert_array_equal(frames[3], bgr[:, :, ::-1])  # RGB out


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
