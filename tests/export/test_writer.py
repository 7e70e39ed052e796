"""Streamed, atomic export files: valid JSON, one file per video, nothing left by a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dptrack_pipeline.export.writer import JsonOutputs


def _outputs(out: Path, per_video: bool) -> JsonOutputs:
    return JsonOutputs(
        str(out),
        per_video,
        lambda video: [{"id": 1, "video": video}],
        lambda video: {"for": video},
    )


def test_one_file_streams_valid_json(tmp_path: Path) -> None:
    out = tmp_path / "one.json"
    writers = _outputs(out, per_video=False)
    for i in range(3):
        writers.write(f"v{i}", {"id": i + 1})
    writers.close()
    doc = json.loads(out.read_text())
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3]
    assert doc["images"] == [{"id": 1, "video": None}] and doc["info"] == {"for": None}
    assert doc["categories"][0]["name"] == "person"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json"]


def test_per_video_files_and_no_revisits(tmp_path: Path) -> None:
    writers = _outputs(tmp_path / "videos", per_video=True)
    writers.write("a", {"id": 1})
    writers.write("a", {"id": 2})
    writers.write("b", {"id": 3})
    with pytest.raises(ValueError, match="not contiguous"):
        writers.write("a", {"id": 4})
    writers.close()
    a = json.loads((tmp_path / "videos" / "a.json").read_text())
    b = json.loads((tmp_path / "videos" / "b.json").read_text())
    assert [x["id"] for x in a["annotations"]] == [1, 2] and b["info"] == {"for": "b"}


def test_an_aborted_export_leaves_nothing(tmp_path: Path) -> None:
    writers = _outputs(tmp_path / "x.json", per_video=False)
    writers.write("a", {"id": 1})
    writers.abort()
    assert list(tmp_path.iterdir()) == []


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    writers = _outputs(tmp_path / "x.json", per_video=False)
    with pytest.raises(ValueError):
        writers.write("a", {"id": 1, "bad": float("nan")})
    writers.abort()
    assert list(tmp_path.iterdir()) == []
