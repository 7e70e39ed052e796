"""The images of an export: input order, real sizes (EXIF rotation), where extracted frames go."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dptrack_pipeline.export.images import (
    FrameSizes,
    check_write_frames,
    extracted_name,
    source_images,
)
from dptrack_pipeline.frames import FrameLocation


def test_source_images_order_like_the_run(tmp_path: Path) -> None:
    images = [
        {"id": 3, "vid_id": "7", "frame_id": 30, "file_name": "a/2.jpg"},
        {"id": 1, "vid_id": 7, "frame_id": 10, "file_name": "a/0.jpg"},
        {"id": 2, "vid_id": 7, "frame_id": 20, "file_name": "a/1.jpg"},
        {"id": 9, "vid_id": 8, "file_name": "b/0.jpg"},  # no frame_id: the run sets it aside
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    videos = source_images([str(path)])
    assert list(videos) == ["7"]
    assert [(s.index, s.record["id"]) for s in videos["7"]] == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 30)), (6, (30, 40)), (8, (30, 40))])
def test_frame_sizes_follow_exif_rotation(tmp_path: Path, orientation: int, size: tuple) -> None:
    path = tmp_path / "f.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(path, exif=exif)
    assert FrameSizes()(FrameLocation(str(path))) == size


def test_an_unreadable_frame_has_no_size(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    sizes = FrameSizes()
    assert sizes(FrameLocation(str(tmp_path / "bad.jpg"))) is None
    assert sizes(FrameLocation(str(tmp_path / "missing.jpg"))) is None


def test_write_frames_must_be_inside_the_frames_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert check_write_frames(str(root), str(root / "out" / "x")) == "out/x"
    for bad in (tmp_path / "elsewhere", root):
        with pytest.raises(ValueError, match="inside --frames-root"):
            check_write_frames(str(root), str(bad))
    assert extracted_name("out", "12", 7) == "out/12/000007.jpg"
