"""Does a path from data stay inside its root? The rules of
:func:`dptrack_pipeline.frames.escape`, and a refused location that is never opened."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dptrack_pipeline.frames import FrameLocation, decode_frames, escape, resolve_frame


def test_escape_rules(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"x")
    (root / "a" / "in.png").write_bytes(b"x")
    os.symlink(tmp_path / "outside.png", root / "a" / "out_link.png")
    os.symlink(root / "a" / "in.png", root / "in_link.png")
    assert escape(str(root), "a/in.png") is None
    assert escape(str(root), "a/../a/in.png") is None
    assert escape(str(root), "in_link.png") is None  # a link that stays inside is fine
    assert "'..'" in escape(str(root), "../outside.png")
    assert "absolute" in escape(str(root), str(tmp_path / "outside.png"))
    assert "symlink" in escape(str(root), "a/out_link.png")
    assert escape(str(root), "a/out_link.png", follow_symlinks=True) is None
    assert escape(str(root), "../outside.png", follow_symlinks=True) is not None
    # a root that is itself reached through a link
    os.symlink(root, tmp_path / "root_link")
    assert escape(str(tmp_path / "root_link"), "a/in.png") is None
    assert escape(str(tmp_path / "root_link"), "a/out_link.png") is not None


def test_refused_location_is_never_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    cv2.imwrite(str(secret), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "root").mkdir()
    location = resolve_frame(str(tmp_path / "root"), "../secret.png", 0)
    assert location.refused and location.video_index is None
    [result] = decode_frames([location])
    assert result.reason == "path_outside_root"
    assert decode_frames([FrameLocation(str(secret))])[0].shape == (4, 4, 3)
