"""DensePose-PoseTrack reader: real points round trip, videos and frame order, rejects, merging."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.formats.densepose_posetrack import (
    AnnotationSet,
    load_densepose_posetrack,
    merge_posetrack18,
    problems,
)
from dptrack_pipeline.formats.posetrack18 import load_posetrack18
from dptrack_pipeline.formats.rle import decode_part_masks
from dptrack_pipeline.structures import dp_to_pixels


def _file(images: list[dict], annotations: list[dict]) -> dict:
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}]}


def _write(tmp_path: Path, data: dict, name: str = "dp_posetrack.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _check_invariant(aset: AnnotationSet) -> None:
    assert len({id(p) for p in aset.persons}) == len(aset.persons)
    assert aset.num_annotations == len(aset.persons) + len(aset.rejects)
    person_ids = {id(p) for p in aset.persons}
    assert all(id(p) in person_ids for p in aset.instances)


def test_real_densepose_person_round_trips_through_json(tmp_path, make_image, demo_person):
    ann = demo_person["annotation"]
    path = _write(tmp_path, _file([make_image()], [ann]))
    aset = load_densepose_posetrack(path)
    _check_invariant(aset)
    assert aset.rejects == []
    (inst,) = aset.instances
    assert aset.persons == [inst]
    assert inst.has_densepose
    assert (inst.annotation_id, inst.video_id, inst.frame_id, inst.track_id) == (
        7,
        "3418",
        10034180000,
        0,
    )
    assert inst.bbox == tuple(ann["bbox"])
    for name in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V"):
        array = getattr(inst, name)
        assert array.dtype == np.float32 and array.shape == (125,)
        np.testing.assert_allclose(array, ann[name], rtol=1e-6, atol=1e-5)
    # The box-relative points land back on the crop pixels, offset by the box origin.
    pixels = dp_to_pixels(inst.dp_x, inst.dp_y, inst.bbox)
    np.testing.assert_allclose(pixels, demo_person["crop_xy"] + inst.bbox[:2], atol=1e-3)
    # Masks: absent parts ([] and {} in the file) become None; the label map survives exactly.
    assert len(inst.dp_masks) == 14
    assert inst.dp_masks[3] is None and inst.dp_masks[4] is None  # feet: no points there
    assert all(isinstance(m["counts"], str) for m in inst.dp_masks if m is not None)
    np.testing.assert_array_equal(decode_part_masks(inst.dp_masks), demo_person["labels"])
    assert inst.keypoints.shape == (17, 3) and inst.keypoints.dtype == np.float32


def test_vid_id_int_and_string_are_one_video(make_image, make_annotation):
    images = [
        make_image(id=1, vid_id=3418, frame_id=10034180000, file_name="a/000000.jpg"),
        make_image(id=2, vid_id="003418", frame_id=10034180001, file_name="a/000001.jpg"),
        make_image(id=3, vid_id="bonn_5", frame_id=7, file_name="b/000007.jpg"),
    ]
    anns = [make_annotation(id=k, image_id=k) for k in (1, 2, 3)]
    aset = load_densepose_posetrack(_file(images, anns))
    assert sorted(aset.videos) == ["3418", "bonn_5"]
    assert [f.image_id for f in aset.videos["3418"].frames] == [1, 2]
    assert {p.video_id for p in aset.persons} == {"3418", "bonn_5"}


def test_frame_index_is_position_when_frame_ids_are_global_and_unordered(
    make_image, make_annotation
):
    frame_ids = [10034180040, 10034180000, 10034180148, 10034180007]
    images = [
        make_image(id=100 + k, frame_id=fid, file_name=f"images/val/003418/{fid % 1000:06d}.jpg")
        for k, fid in enumerate(frame_ids)
    ]
    aset = load_densepose_posetrack(_file(images, []))
    video = aset.videos["3418"]
    assert [f.frame_id for f in video.frames] == sorted(frame_ids)
    assert [f.index for f in video.frames] == [0, 1, 2, 3]
    assert [f.image_id for f in video.frames] == [101, 103, 100, 102]
    assert video.frame_by_id(10034180148).index == 3
    assert video.frames[1].image_file == "images/val/003418/000007.jpg"
    assert (video.frames[0].width, video.frames[0].height) == (1920, 1080)
    assert aset.num_annotations == 0


def test_has_no_densepose_keeps_person_drops_densepose(make_image, make_annotation, demo_person):
    images = [make_image(id=1, frame_id=1), make_image(id=2, frame_id=2, has_no_densepose=True)]
    ann_labelled = copy.deepcopy(demo_person["annotation"]) | {"id": 1, "image_id": 1}
    ann_ignored = copy.deepcopy(demo_person["annotation"]) | {"id": 2, "image_id": 2}
    aset = load_densepose_posetrack(_file(images, [ann_labelled, ann_ignored]))
    _check_invariant(aset)
    assert [p.annotation_id for p in aset.persons] == [1, 2]
    assert [p.annotation_id for p in aset.instances] == [1]
    ignored = aset.persons[1]
    assert not ignored.has_densepose
    assert ignored.dp_x.shape == (0,) and ignored.dp_masks is None
    np.testing.assert_array_equal(ignored.keypoints, np.tile([120.0, 250.0, 1.0], (17, 1)))


def test_person_without_densepose_and_all_empty_masks(make_image, make_annotation):
    plain = make_annotation(id=1, track_id=1)
    for name in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V"):
        del plain[name]
    empty_masks = copy.deepcopy(plain) | {"id": 2, "track_id": 2, "dp_masks": [[]] * 7 + [{}] * 7}
    aset = load_densepose_posetrack(_file([make_image()], [plain, empty_masks]))
    assert len(aset.persons) == 2
    assert aset.instances == []
    assert all(p.dp_masks is None for p in aset.persons)


def test_invalid_annotations_are_rejected_with_all_details(make_image, make_annotation):
    images = [make_image()]
    bad = make_annotation(id=5, track_id=3, dp_I=[1.0, 31.0, 2.0], dp_U=[0.0, 0.5, 1.5])
    unknown = make_annotation(id=6, image_id=424242)
    good = make_annotation(id=7, track_id=4)
    aset = load_densepose_posetrack(_file(images, [bad, unknown, good]))
    _check_invariant(aset)
    assert [p.annotation_id for p in aset.persons] == [7]
    assert aset.num_annotations == 3
    first, second = aset.rejects
    assert first.stage == "validate"
    assert first.reason == "dp_I_out_of_range"
    assert first.detail == (
        "dp_I[1] = 31, expected an integer in 1..24; dp_U[2] = 1.5, expected a value in [0, 1]"
    )
    assert (first.annotation_id, first.video_id, first.frame_id, first.track_id) == (
        5,
        "3418",
        10034180000,
        3,
    )
    assert second.reason == "unknown_image"
    assert (second.annotation_id, second.video_id, second.frame_id) == (6, "", -1)


def test_annotations_of_an_invalid_image_take_its_reason(make_image, make_annotation):
    images = [make_image(id=1, vid_id=None), make_image(id=2, frame_id=5)]
    del images[1]["file_name"]
    anns = [make_annotation(id=10, image_id=1), make_annotation(id=11, image_id=2), "oops"]
    aset = load_densepose_posetrack(_file(images, anns))
    _check_invariant(aset)
    assert aset.videos == {}
    assert aset.persons == []
    assert [r.reason for r in aset.rejects] == ["unknown_video", "missing_field", "missing_field"]
    assert aset.rejects[0].detail == "image 1: video id is missing"
    assert aset.rejects[1].detail == "image 2: file_name is missing"
    assert aset.rejects[1].video_id == "3418" and aset.rejects[1].frame_id == 5
    assert aset.rejects[2].detail == "annotation is not a JSON object: str"


def test_invariant_on_a_mixed_file(make_image, make_annotation, demo_person):
    images = [make_image(id=k, frame_id=k, has_no_densepose=(k == 3)) for k in range(5)]
    anns = []
    for k in range(20):
        ann = copy.deepcopy(demo_person["annotation"]) | {"id": k, "image_id": k % 6, "track_id": k}
        if k % 4 == 1:
            ann["dp_V"][3] = 2.0
        if k % 5 == 2:
            ann["bbox"] = [0, 0, 0, 0]
        anns.append(ann)
    aset = load_densepose_posetrack(_file(images, anns))
    _check_invariant(aset)
    assert aset.num_annotations == 20
    assert 0 < len(aset.rejects) < 20
    assert 0 < len(aset.instances) < len(aset.persons)


def test_unreadable_or_wrong_files_raise_with_the_path(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match=r"broken\.json: cannot read DensePose-PoseTrack JSON"):
        load_densepose_posetrack(broken)
    with pytest.raises(ValueError, match=r"absent\.json: cannot read"):
        load_densepose_posetrack(tmp_path / "absent.json")
    listed = _write(tmp_path, [1, 2], "list.json")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"list\.json: expected a JSON object .* got a JSON list"):
        load_densepose_posetrack(listed)
    no_images = _write(tmp_path, {"annotations": []}, "no_images.json")
    with pytest.raises(ValueError, match=r"no_images\.json: .*'images' is missing"):
        load_densepose_posetrack(no_images)
    with pytest.raises(ValueError, match=r"images\[0\] is a int"):
        load_densepose_posetrack({"images": [3], "annotations": []})


def test_problems_lists_every_problem(tmp_path, make_image, make_annotation):
    image_bad = make_image(id=2, frame_id=2, vid_id=True)
    ann = make_annotation(id=5, bbox=[0, 0, -1, 4], dp_I=[1.0, 2.0, 99.0], dp_x=[0.0, 1.0, 300.0])
    ann2 = make_annotation(id=6, image_id=2, track_id=9)
    path = _write(tmp_path, _file([make_image(), image_bad], [ann, ann2, make_annotation(id=7)]))
    found = problems(path)
    assert [(r.reason, r.annotation_id) for r in found] == [
        ("unknown_video", -1),
        ("bbox_invalid", 5),
        ("dp_I_out_of_range", 5),
        ("dp_xy_out_of_range", 5),
    ]
    assert all(r.stage == "validate" for r in found)
    assert found[0].frame_id == 2
    assert found[3].detail == "dp_x[2] = 300, expected a value in [0, 256]"
    # The loader rejects annotation 5 once, with its first reason, and annotation 6 for its image.
    aset = load_densepose_posetrack(path)
    assert [(r.reason, r.annotation_id) for r in aset.rejects] == [
        ("bbox_invalid", 5),
        ("unknown_video", 6),
    ]


def _posetrack_file(make_image, make_annotation) -> dict:
    """A PoseTrack18-style file for video 003418: frames 0..4, tracks 0 and 1 on each."""
    images = [
        make_image(
            id=10034180000 + f,
            vid_id="003418",
            frame_id=10034180000 + f,
            file_name=f"images/val/003418_mpii_test/{f:06d}.jpg",
            has_no_densepose=True,
        )
        for f in range(5)
    ]
    anns = [
        {
            "id": 1003418000000 + 100 * f + t,
            "image_id": 10034180000 + f,
            "track_id": t,
            "bbox": [300.0 + t, 200.0, 100.0, 300.0],
            "keypoints": make_annotation()["keypoints"],
        }
        for f in range(5)
        for t in (0, 1)
    ]
    return _file(images, anns)


def test_merge_posetrack18_precedence_and_frames(make_image, make_annotation, demo_person):
    # DensePose-PoseTrack lists frames 1 and 3 of video 3418 (int id), track 0 on frame 1 with
    # DensePose, track 1 on frame 3 without, and a rejected track 1 on frame 1.
    dp_images = [
        make_image(id=1, frame_id=10034180001, file_name="dp/000001.jpg"),
        make_image(id=3, frame_id=10034180003, file_name="dp/000003.jpg"),
    ]
    with_dp = copy.deepcopy(demo_person["annotation"]) | {"id": 70, "image_id": 1, "track_id": 0}
    without_dp = make_annotation(id=71, image_id=3, track_id=1, bbox=[1.0, 2.0, 3.0, 4.0])
    for name in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V"):
        del without_dp[name]
    rejected = make_annotation(id=72, image_id=1, track_id=1, dp_I=[0.0, 1.0, 1.0])
    dp = load_densepose_posetrack(_file(dp_images, [with_dp, without_dp, rejected]))
    pt_data = _posetrack_file(make_image, make_annotation)
    pt_data["annotations"][3]["bbox"] = [-500.0, 0.0, 100.0, 100.0]  # frame 1 track 1: rejected
    pt = load_posetrack18(pt_data)
    assert (len(pt.persons), len(pt.rejects)) == (9, 1)

    merged = merge_posetrack18(dp, pt)
    _check_invariant(merged)
    video = merged.videos["3418"]
    assert [f.frame_id - 10034180000 for f in video.frames] == [0, 1, 2, 3, 4]
    assert [f.index for f in video.frames] == [0, 1, 2, 3, 4]
    # DensePose-PoseTrack frames win where both list a frame.
    assert [f.image_file for f in video.frames] == [
        "images/val/003418_mpii_test/000000.jpg",
        "dp/000001.jpg",
        "images/val/003418_mpii_test/000002.jpg",
        "dp/000003.jpg",
        "images/val/003418_mpii_test/000004.jpg",
    ]
    index = merged.person_index()
    assert len(index) == 9  # 5 frames x 2 tracks, less the one both files rejected
    assert index[("3418", 10034180001, 0)].annotation_id == 70  # DensePose-PoseTrack wins
    assert index[("3418", 10034180003, 1)].bbox == (1.0, 2.0, 3.0, 4.0)
    assert index[("3418", 10034180000, 0)].annotation_id == 1003418000000
    # Track 1 on frame 1: DensePose rejected it and so did PoseTrack18: one reject, no person.
    assert ("3418", 10034180001, 1) not in index
    assert [r.annotation_id for r in merged.rejects] == [72]
    assert merged.instances == dp.instances
    # 3 DensePose-PoseTrack annotations + 7 PoseTrack18 persons not already there.
    assert (len(merged.persons), len(merged.rejects), merged.num_annotations) == (9, 1, 10)
    # Inputs unchanged.
    assert [f.frame_id for f in dp.videos["3418"].frames] == [10034180001, 10034180003]
    assert len(dp.persons) == 2


def test_merge_takes_posetrack_box_for_a_rejected_densepose_person(make_image, make_annotation):
    dp_images = [make_image(id=1, frame_id=10034180001, file_name="dp/000001.jpg")]
    rejected = make_annotation(id=72, image_id=1, track_id=1, dp_I=[0.0, 1.0, 1.0])
    dp = load_densepose_posetrack(_file(dp_images, [rejected]))
    pt = load_posetrack18(_posetrack_file(make_image, make_annotation))
    merged = merge_posetrack18(dp, pt)
    _check_invariant(merged)
    assert merged.person_index()[("3418", 10034180001, 1)].annotation_id == 1003418000101


def test_merge_only_densepose_videos(make_image, make_annotation):
    dp = load_densepose_posetrack(_file([make_image(vid_id=9473, frame_id=10094730000)], []))
    pt = load_posetrack18(_posetrack_file(make_image, make_annotation))
    merged = merge_posetrack18(dp, pt)
    assert sorted(merged.videos) == ["9473"] and merged.persons == []
    _check_invariant(merged)
    everything = merge_posetrack18(dp, pt, only_densepose_videos=False)
    assert sorted(everything.videos) == ["3418", "9473"] and len(everything.persons) == 10
    _check_invariant(everything)


def test_merge_with_real_posetrack18_file(shared_data, make_image, demo_person):
    """A DensePose-PoseTrack file for video 3418 (int id) meets the real PoseTrack18 annotation
    of video "003418" (one labelled frame, one person, track 0)."""
    real = shared_data / "posetrack18" / "annotations" / "val" / "003418_mpii_test.json"
    pt = load_posetrack18(real)
    dp_images = [
        make_image(id=10034180000, frame_id=10034180000),
        make_image(id=10034180004, frame_id=10034180004, file_name="x/000004.jpg"),
    ]
    ann = copy.deepcopy(demo_person["annotation"]) | {"image_id": 10034180000, "track_id": 0}
    dp = load_densepose_posetrack(_file(dp_images, [ann]))
    merged = merge_posetrack18(dp, pt)
    _check_invariant(merged)
    assert [f.index for f in merged.videos["3418"].frames] == [0, 1]
    (person,) = merged.persons
    assert person is dp.instances[0]
    assert merged.num_annotations == 1
