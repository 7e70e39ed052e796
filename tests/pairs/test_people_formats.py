"""Telling ``--people`` formats apart (``--people-format auto``) and the errors of a wrong one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dptrack_pipeline.pairs.people_formats import detect_format, read_people


def _write(path: Path, doc: object) -> str:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_detect_by_path_and_first_record(tmp_path: Path) -> None:
    own = [{"video": "v", "frame": 0, "x": 1, "y": 1, "scale": 1}]
    assert detect_format(_write(tmp_path / "own.json", own)) == "dptrack"
    assert detect_format(_write(tmp_path / "own2.json", {"people": own})) == "dptrack"
    (tmp_path / "own.csv").write_text("video,frame,x,y,scale\nv,0,1,1,1\n")
    assert detect_format(str(tmp_path / "own.csv")) == "dptrack"
    coco = {"images": [], "annotations": [], "categories": []}
    assert detect_format(_write(tmp_path / "pt.json", coco)) == "posetrack18"
    mpii = [{"image": "a.jpg", "center": [1, 1], "scale": 1.0}]
    assert detect_format(_write(tmp_path / "mpii.json", mpii)) == "mpii-json"
    (tmp_path / "x.mat").write_bytes(b"")
    assert detect_format(str(tmp_path / "x.mat")) == "mpii-mat"
    assert detect_format(str(tmp_path)) == "posetrack18"


def test_wrong_inputs_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="people file not found"):
        detect_format(str(tmp_path / "absent.json"))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        detect_format(str(tmp_path / "broken.json"))
    with pytest.raises(ValueError, match="unknown people format"):
        read_people(str(tmp_path / "broken.json"), "coco")
    with pytest.raises(ValueError, match="only --people-format posetrack18 reads folders"):
        read_people(str(tmp_path), "dptrack")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="must hold .json files"):
        read_people(str(empty))
    (tmp_path / "x.mat").write_bytes(b"not matlab")
    keyframes = tmp_path / "k.mat"
    keyframes.write_bytes(b"not matlab")
    with pytest.raises(ValueError, match="cannot read the MPII keyframes file"):
        read_people(str(tmp_path / "x.mat"), keyframes=str(keyframes))
    own = _write(tmp_path / "own.json", [{"video": "v"}])
    with pytest.raises(ValueError, match="expected a JSON object with 'images'"):
        read_people(own, "posetrack18")
