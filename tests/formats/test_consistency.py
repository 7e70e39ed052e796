"""Records that contradict each other: duplicate ids and an image under two videos are set aside
by the reader and listed by ``validate``; everything else still loads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.formats.densepose_posetrack import load_densepose_posetrack, problems


def _file(tmp_path: Path) -> tuple[dict, list[int]]:
    images = [
        {"id": i, "file_name": f"v/{i:06d}.jpg", "vid_id": 7, "frame_id": 100 + i,
         "width": 64, "height": 48}
        for i in range(4)
    ]  # fmt: skip
    anns = [
        {"id": 10 + i, "image_id": i, "track_id": 1, "bbox": [4.0, 4.0, 20.0, 30.0],
         "dp_x": [10.0], "dp_y": [20.0], "dp_I": [1], "dp_U": [0.5], "dp_V": [0.5]}
        for i in range(4)
    ]  # fmt: skip
    data = {"images": images, "annotations": anns, "categories": []}
    bad = copy.deepcopy(data)
    bad["images"].append({**images[1], "frame_id": 999})  # image id 1 twice
    bad["images"].append({**images[2], "id": 50, "vid_id": 8})  # v/000002.jpg in two videos
    bad["annotations"][3]["id"] = 10  # annotation id 10 twice (on images 0 and 3)
    return bad, [a["id"] for a in anns]


def test_conflicting_records_are_rejected_with_their_reason(tmp_path: Path) -> None:
    bad, _ = _file(tmp_path)
    aset = load_densepose_posetrack(bad)
    reasons = sorted((r.reason, r.annotation_id) for r in aset.rejects)
    assert reasons == [
        ("duplicate_annotation_id", 10), ("duplicate_annotation_id", 10),
        ("duplicate_image_id", 11), ("image_in_two_videos", 12),
    ]  # fmt: skip
    assert aset.persons == [] and aset.num_annotations == 4
    # The other frames of the video still exist (the conflicted ones are left out).
    assert [f.frame_id for f in aset.videos["7"].frames] == [100, 103]


def test_validate_names_every_conflict_and_exits_1(tmp_path: Path) -> None:
    bad, _ = _file(tmp_path)
    codes = sorted({p.reason for p in problems(bad)})
    assert codes == ["duplicate_annotation_id", "duplicate_image_id", "image_in_two_videos"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert (
        "duplicate_image_id" in result.output and "listed under videos ['7', '8']" in result.output
    )
