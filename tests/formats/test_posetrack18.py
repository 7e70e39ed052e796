"""PoseTrack18 reader on the real val files in shared data, and boxes derived from keypoints."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.formats.annotation_set import AnnotationSet
from dptrack_pipeline.formats.posetrack18 import (
    KEYPOINT_BOX_ENLARGE,
    keypoint_box,
    load_many,
    load_posetrack18,
)

VIDEOS = {"3418": 10034180000, "9473": 10094730000, "12834": 10128340000}
"""Normalised video id -> global frame id of the one labelled frame of each sample video."""
ANNOTATIONS_PER_VIDEO = {"3418": 1, "9473": 2, "12834": 11}


def _annotations_dir(shared_data: Path) -> Path:
    return shared_data / "posetrack18" / "annotations"


def _per_video_files(shared_data: Path) -> list[Path]:
    return sorted((_annotations_dir(shared_data) / "val").glob("*_mpii_test.json"))


def _check_invariant(aset: AnnotationSet) -> None:
    assert aset.num_annotations == len(aset.persons) + len(aset.rejects)


def test_combined_file(shared_data):
    aset = load_posetrack18(_annotations_dir(shared_data) / "test_posetrack18_val.json")
    _check_invariant(aset)
    assert aset.num_annotations == 14
    assert aset.instances == []
    assert aset.rejects == []
    assert len(aset.persons) == 14
    assert {vid: len(video.frames) for vid, video in aset.videos.items()} == {
        "3418": 1,
        "9473": 1,
        "12834": 1,
    }
    for video_id, frame_id in VIDEOS.items():
        (frame,) = aset.videos[video_id].frames
        assert (frame.index, frame.frame_id, frame.image_id) == (0, frame_id, frame_id)
        assert frame.image_file == f"images/val/{int(video_id):06d}_mpii_test/000000.jpg"
        assert (frame.width, frame.height) == (1920, 1080)
    counts = {vid: sum(p.video_id == vid for p in aset.persons) for vid in VIDEOS}
    assert counts == ANNOTATIONS_PER_VIDEO
    first = aset.persons[0]
    assert (first.annotation_id, first.video_id, first.frame_id, first.track_id) == (
        1012834000000,
        "12834",
        10128340000,
        0,
    )
    assert first.bbox == pytest.approx((322.3, 488.60029, 166.4, 186.408368))
    np.testing.assert_array_equal(first.keypoints[0], [401.0, 530.0, 1.0])
    np.testing.assert_array_equal(first.keypoints[3], [0.0, 0.0, 0.0])
    assert not first.has_densepose
    index = aset.person_index()
    assert sorted(t for (v, _, t) in index if v == "12834") == list(range(11))


def test_strict_tolerance_rejects_the_person_cut_off_at_the_top(shared_data):
    aset = load_posetrack18(
        _annotations_dir(shared_data) / "test_posetrack18_val.json", bbox_tolerance=0.10
    )
    _check_invariant(aset)
    (reject,) = aset.rejects
    assert reject.reason == "bbox_outside_image"
    assert (reject.annotation_id, reject.video_id, reject.frame_id, reject.track_id) == (
        1012834000010,
        "12834",
        10128340000,
        10,
    )
    assert "top edge" in reject.detail
    assert len(aset.persons) == 13


@pytest.mark.parametrize("video_id", sorted(VIDEOS))
def test_per_video_files(shared_data, video_id):
    path = _annotations_dir(shared_data) / "val" / f"{int(video_id):06d}_mpii_test.json"
    aset = load_posetrack18(path)
    _check_invariant(aset)
    assert list(aset.videos) == [video_id]
    assert aset.num_annotations == ANNOTATIONS_PER_VIDEO[video_id]
    assert {p.frame_id for p in aset.persons} == {VIDEOS[video_id]}


def test_load_many_merges_without_duplicates(shared_data):
    per_video = _per_video_files(shared_data)
    assert len(per_video) == 3
    merged = load_many(per_video)
    _check_invariant(merged)
    assert sorted(merged.videos) == sorted(VIDEOS)
    assert len(merged.persons) == 14
    # The combined file holds the same persons again: nothing is added twice.
    again = load_many([*per_video, _annotations_dir(shared_data) / "test_posetrack18_val.json"])
    _check_invariant(again)
    assert len(again.persons) == 14 and again.num_annotations == 14
    strict = load_many([*per_video, *per_video], bbox_tolerance=0.10)
    _check_invariant(strict)
    assert (len(strict.persons), len(strict.rejects)) == (13, 1)


def test_keypoint_box_reproduces_posetrack_boxes(shared_data):
    """PoseTrack's boxes are the visible joints' extent enlarged by 30%; derived ones equal them."""
    path = _annotations_dir(shared_data) / "test_posetrack18_val.json"
    data = json.loads(path.read_text())
    assert KEYPOINT_BOX_ENLARGE == pytest.approx(0.30)
    for ann in data["annotations"]:
        assert keypoint_box(np.asarray(ann["keypoints"])) == pytest.approx(ann["bbox"], abs=1e-6)
    # So a file with every bbox removed reads to the same boxes.
    without = copy.deepcopy(data)
    for ann in without["annotations"]:
        del ann["bbox"]
    derived = load_posetrack18(without)
    given = load_posetrack18(data)
    np.testing.assert_allclose(
        [p.bbox for p in derived.persons], [p.bbox for p in given.persons], atol=1e-6
    )


def test_keypoint_box_by_hand():
    keypoints = np.zeros((17, 3))
    keypoints[0] = (100.0, 50.0, 1.0)
    keypoints[5] = (200.0, 250.0, 1.0)
    keypoints[9] = (900.0, 900.0, 0.0)  # not visible: ignored
    assert keypoint_box(keypoints) == pytest.approx((85.0, 20.0, 130.0, 260.0))
    assert keypoint_box(np.zeros((17, 3))) is None


def _single_person_file(shared_data: Path, **changes: object) -> dict:
    data = json.loads((_annotations_dir(shared_data) / "val" / "003418_mpii_test.json").read_text())
    (ann,) = data["annotations"]
    for name, value in changes.items():
        if value is None:
            ann.pop(name, None)
        else:
            ann[name] = value
    return data


def test_missing_box_and_keypoints(shared_data):
    no_box_no_joints = load_posetrack18(_single_person_file(shared_data, bbox=None, keypoints=None))
    (reject,) = no_box_no_joints.rejects
    assert (reject.reason, reject.detail) == ("missing_field", "bbox is missing")
    _check_invariant(no_box_no_joints)

    hidden = [0.0] * 51
    no_visible = load_posetrack18(_single_person_file(shared_data, bbox=None, keypoints=hidden))
    assert [r.reason for r in no_visible.rejects] == ["missing_field"]

    one = [0.0] * 51
    one[0:3] = [10.0, 20.0, 1.0]
    one_joint = load_posetrack18(_single_person_file(shared_data, bbox=None, keypoints=one))
    assert [r.reason for r in one_joint.rejects] == ["bbox_invalid"]

    box_only = load_posetrack18(_single_person_file(shared_data, keypoints=None))
    (person,) = box_only.persons
    assert person.bbox == pytest.approx((214.25, 15.0, 1358.5, 1092.0))
    np.testing.assert_array_equal(person.keypoints, np.zeros((17, 3), np.float32))


def test_densepose_fields_are_ignored(shared_data):
    data = _single_person_file(
        shared_data, dp_x=[1.0], dp_y=[1.0], dp_I=[99.0], dp_U=[0.5], dp_V=[0.5]
    )
    aset = load_posetrack18(data)
    assert aset.rejects == [] and aset.instances == []
    assert not aset.persons[0].has_densepose


def test_bad_file_raises_with_path(tmp_path):
    path = tmp_path / "pt.json"
    path.write_text('{"images": {}, "annotations": []}')
    with pytest.raises(ValueError, match=r"pt\.json: expected .*PoseTrack18.*'images' is a dict"):
        load_posetrack18(path)
