"""PoseTrack18 people for ``pairs``, on the real shared files.

Real data: ``../shared/data/posetrack18/annotations/val/*.json`` (3 videos, 14 people on frame 0)
with their frame folders ``images/val/<video>/000000.jpg``, and the 10 consecutive real frames of
``videos/000001_mpiinew_test/`` (a folder and an mp4). The shared annotations cover only frame 0
of videos whose other frames are not shared, so they cannot make pairs; the end-to-end runs use a
PoseTrack18 file for the 10-frame sequence written here in the same layout as the real files
(their ``categories``, image fields and id scheme), with boxes drawn by hand on its frame 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.pairs.config import PairsConfig
from dptrack_pipeline.pairs.launch import prepare
from dptrack_pipeline.pairs.people import entry_from_box, person_box
from dptrack_pipeline.pairs.people_formats import detect_format, read_people
from dptrack_pipeline.pairs.people_posetrack import load_posetrack_people
from dptrack_pipeline.rejects import (
    PEOPLE_DUPLICATE,
    PEOPLE_NO_BOX,
    PEOPLE_UNKNOWN_IMAGE,
    PEOPLE_UNKNOWN_VIDEO,
)

SEQUENCE = "000001_mpiinew_test"
HAND_BOXES = {0: [360.0, 274.0, 204.0, 300.0], 1: [606.0, 260.0, 224.0, 170.0],
              2: [600.0, 390.0, 250.0, 134.0]}  # fmt: skip
"""Players on frame 0 of the shared sequence (track id -> xywh, drawn by hand)."""


@pytest.fixture(scope="module")
def posetrack(shared_data: Path) -> Path:
    return shared_data / "posetrack18"


def _raw_people(posetrack: Path) -> list[tuple[str, str, dict]]:
    out = []
    for path in sorted((posetrack / "annotations" / "val").glob("*.json")):
        doc = json.loads(path.read_text())
        images = {im["id"]: im for im in doc["images"]}
        for ann in doc["annotations"]:
            file_name = images[ann["image_id"]]["file_name"]
            out.append((Path(file_name).parent.name, Path(file_name).name, ann))
    return out


def test_reads_the_shared_posetrack18_files(posetrack: Path) -> None:
    entries, problems = load_posetrack_people(str(posetrack / "annotations" / "val"))
    raw = _raw_people(posetrack)
    assert problems == [] and len(entries) == len(raw) == 14
    expected = {
        (v, a["track_id"]): entry_from_box(v, 0, tuple(a["bbox"]), a["track_id"], name)
        for v, name, a in raw
    }
    assert {(e.video, e.person): e for e in entries} == expected
    assert {e.video for e in entries} == {
        "003418_mpii_test",
        "009473_mpii_test",
        "012834_mpii_test",
    }
    # A box is the square of the longer side times the context, around the box centre.
    e = entries[0]
    box = next(a["bbox"] for v, _, a in raw if (v, a["track_id"]) == (e.video, e.person))
    side = person_box(e, context=1.25)[2]
    assert side == pytest.approx(1.25 * max(box[2], box[3]))


def test_folder_and_combined_file_give_the_same_people(posetrack: Path) -> None:
    annotations = posetrack / "annotations"
    assert detect_format(str(annotations / "val")) == "posetrack18"
    assert detect_format(str(annotations / "test_posetrack18_val.json")) == "posetrack18"
    _, from_folder, _ = read_people(str(annotations / "val"))
    _, from_file, _ = read_people(str(annotations / "test_posetrack18_val.json"))
    assert sorted(from_folder, key=repr) == sorted(from_file, key=repr)


def test_launch_places_the_shared_people_in_their_frame_folders(posetrack: Path, tmp_path) -> None:
    config = PairsConfig(
        videos=(str(posetrack / "images" / "val"),),
        out=str(tmp_path / "o"),
        people=str(posetrack / "annotations" / "val"),
    )
    prepared = prepare(config)
    assert prepared.people_format == "posetrack18"
    assert prepared.launch_rejects == ()
    assert prepared.counters["people_in"] == 14
    placed = [e for rows in prepared.people.values() for e in rows]
    assert len(placed) == 14 and {e.frame for e in placed} == {0}
    # The same people against another video: every one is an unknown video, counted.
    other = prepare(
        PairsConfig(
            videos=(str(posetrack / "videos" / SEQUENCE),),
            out=str(tmp_path / "o"),
            people=str(posetrack / "annotations" / "val"),
        )
    )
    assert [r["reason"] for r in other.launch_rejects] == [PEOPLE_UNKNOWN_VIDEO] * 14
    assert other.counters["people_rejected"] == 14


def write_sequence_annotations(posetrack: Path, path: Path) -> Path:
    """A PoseTrack18 file for the shared 10-frame sequence, laid out like the real files."""
    real = json.loads((posetrack / "annotations" / "val" / "012834_mpii_test.json").read_text())
    template = real["images"][0]
    images = []
    for k in range(10):
        frame_id = 10000010000 + k
        images.append({
            "has_no_densepose": template["has_no_densepose"],
            "file_name": f"images/val/{SEQUENCE}/{k:06d}.jpg", "id": frame_id,
            "frame_id": frame_id, "vid_id": "000001", "nframes": 10, "is_labeled": k == 0,
            "width": 1280, "height": 720, "ignore_regions_x": [], "ignore_regions_y": [],
        })  # fmt: skip
    annotations = [
        {"id": 100000100000 + t, "image_id": 10000010000, "track_id": t, "bbox": box,
         "category_id": 1, "iscrowd": False, "keypoints": [0] * 51, "num_keypoints": 0}
        for t, box in HAND_BOXES.items()
    ]  # fmt: skip
    annotations += [
        {**annotations[0], "id": 100000100010},  # a second annotation of track 0 in frame 0
        {**annotations[1], "id": 100000100011, "bbox": None},  # no box, no keypoints
        {**annotations[2], "id": 100000100012, "image_id": 999},  # names no image
    ]
    doc = {"categories": real["categories"], "images": images, "annotations": annotations}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _pairs(videos: Path, people: Path, out: Path) -> dict:
    args = [
        "pairs", "--videos", str(videos), "--people", str(people), "--out", str(out),
        "--offsets", "2", "--crop-size", "64", "--no-progress", "--runner", "FnApiRunner",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "6 people (posetrack18, 3 set aside)" in result.output
    return json.loads((out / "dataset_info.json").read_text())["counters"]


def test_pairs_runs_on_posetrack18_people_of_a_real_sequence(posetrack: Path, tmp_path) -> None:
    people = write_sequence_annotations(posetrack, tmp_path / f"{SEQUENCE}.json")
    sequence = posetrack / "videos" / SEQUENCE
    counters = _pairs(sequence, people, tmp_path / "folder")
    assert (counters["people_in"], counters["people_used"], counters["people_rejected"]) == (
        6,
        3,
        3,
    )
    assert counters["pairs_written"] + counters["pairs_rejected"] == counters["pairs_planned"]
    # 10 frames, K = 2, all within --people-reach of frame 0: 34 pairs per person.
    assert counters["pairs_planned"] == 3 * 34
    table = pq.read_table(sorted((tmp_path / "folder").glob("pairs-*.parquet"))[0]).to_pylist()
    assert {r["person"] for r in table} == set(HAND_BOXES)
    for row in (r for r in table if r["frame_a"] == 0):
        entry = entry_from_box(SEQUENCE, 0, tuple(HAND_BOXES[row["person"]]), row["person"])
        assert row["box_source_a"] == "people"
        assert row["crop_box_a"] == pytest.approx(list(person_box(entry)), abs=1e-3)
    rejects = pq.read_table(sorted((tmp_path / "folder").glob("rejects-*.parquet"))[0])
    assert sorted(rejects.column("reason").to_pylist()) == sorted(
        [PEOPLE_DUPLICATE, PEOPLE_NO_BOX, PEOPLE_UNKNOWN_IMAGE]
    )
    # The sequence's mp4 (its first 5 frames) places the people by frame number: the same boxes.
    video_counters = _pairs(sequence / f"{SEQUENCE}.mp4", people, tmp_path / "file")
    assert video_counters["pairs_planned"] == 3 * 14  # 5 frames, K = 2
    rows = pq.read_table(sorted((tmp_path / "file").glob("pairs-*.parquet"))[0]).to_pylist()

    def exact(table: list[dict]) -> dict:
        return {(r["frame_b"], r["person"]): r["crop_box_a"] for r in table if r["frame_a"] == 0}

    assert exact(rows) == {k: v for k, v in exact(table).items() if k[0] < 5}
