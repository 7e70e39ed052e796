"""Nothing is read outside its root: ``..``, absolute paths, the video fallback and symlinks that
leave ``--frames-root`` (``run``) or a ``--videos`` folder (``pairs``) are rejected
``path_outside_root`` and never opened; ``--follow-symlinks`` opts in to links."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import pytest

from tests.reliability.conftest import labelled_image, run_job, write_json


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
