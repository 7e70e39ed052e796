"""Nothing is read outside its root: ``..``, absolute paths, the video fallback and symlinks that
leave ``--frames-root`` (``run``) or a ``--videos`` folder (``pairs``) are rejected
``path_outside_root`` and never opened; ``--follow-symlinks`` opts in to links."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.frames import FrameLocation, decode_frames, escape, resolve_frame
from tests.reliability.conftest import labelled_image, run_job, write_json


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


def _outside_frame(tmp_path: Path, synth: Path) -> Path:
    """A real frame copied outside the frames root (so that reading it would succeed)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(next((synth / "frames").rglob("000004.png")), outside / "x.png")
    return outside / "x.png"


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_run_rejects_labelled_frame_outside_root(
    how: str, synth: Path, annotations: dict, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(synth / "frames", root / "frames")
    outside = _outside_frame(tmp_path, synth)
    image = labelled_image(annotations)
    if how == "dotdot":
        image["file_name"] = "../outside/x.png"
    elif how == "absolute":
        image["file_name"] = str(outside)
    else:
        target = root / image["file_name"]
        target.unlink()
        os.symlink(outside, target)
    path = write_json(tmp_path / "a.json", annotations)
    out = run_job("run", tmp_path / "out", "--annotations", path, "--frames-root", root)
    assert out.info is not None and out.info["totals"]["instances"] == 0
    assert out.reasons <= {"path_outside_root", "source_frame_unreadable"}
    assert "path_outside_root" in out.reasons
    assert out.info["counters"]["frames_decoded"] < len(annotations["images"])

    if how == "symlink":  # opting in reads through the link
        follow = run_job(
            "run", tmp_path / "follow", "--annotations", path, "--frames-root", root,
            "--follow-symlinks",
        )  # fmt: skip
        assert follow.exit_code == 0 and follow.rejects == []
        assert follow.info["config"]["follow_symlinks"] is True


def test_run_refuses_video_fallback_that_leaves_root(
    synth: Path, annotations: dict, tmp_path: Path
) -> None:
    """``<folder>.avi`` next to the named folder: a symlink to a video elsewhere is refused."""
    root = tmp_path / "root"
    root.mkdir()
    frames = sorted((synth / "frames").rglob("*.png"))
    video = tmp_path / "elsewhere.avi"
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (first.shape[1], first.shape[0])
    )
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    folder = os.path.dirname(labelled_image(annotations)["file_name"])
    (root / folder).parent.mkdir(parents=True)
    os.symlink(video, root / f"{folder}.avi")
    path = write_json(tmp_path / "a.json", annotations)
    out = run_job("run", tmp_path / "out", "--annotations", path, "--frames-root", root)
    assert "path_outside_root" in out.reasons and out.info["totals"]["instances"] == 0
    follow = run_job(
        "run", tmp_path / "follow", "--annotations", path, "--frames-root", root,
        "--follow-symlinks", "--offsets", "1",
    )  # fmt: skip
    assert follow.info["totals"]["instances"] > 0


def test_pairs_refuses_links_out_of_its_folders(synth: Path, tmp_path: Path) -> None:
    frames = sorted((synth / "frames").rglob("*.png"))
    collection = tmp_path / "videos"
    inside = collection / "inside"
    inside.mkdir(parents=True)
    for f in frames:
        shutil.copy(f, inside / f.name)
    outside = tmp_path / "outside_frames"
    shutil.copytree(inside, outside)
    os.symlink(outside, collection / "linked")  # a whole video elsewhere
    (inside / frames[3].name).unlink()
    os.symlink(outside / frames[3].name, inside / frames[3].name)  # one frame elsewhere
    args = ("--videos", collection, "--offsets", "1")
    out = run_job("pairs", tmp_path / "out", *args)
    by_reason = {}
    for r in out.rejects:
        by_reason.setdefault(r["reason"], []).append(r)
    assert {r["video_id"] for r in by_reason["path_outside_root"]} == {"linked", "inside"}
    assert out.info["counters"]["videos_rejected"] == 1
    assert out.info["totals"]["pairs"] > 0  # the rest of "inside" is still paired
    follow = run_job("pairs", tmp_path / "follow", *args, "--follow-symlinks")
    assert follow.rejects == [] and follow.info["counters"]["videos_rejected"] == 0
