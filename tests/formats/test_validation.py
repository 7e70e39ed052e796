"""Record checks: every reason code from a crafted bad record, and the details they give."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dptrack_pipeline.formats.rle import encode_part_masks
from dptrack_pipeline.formats.validation import (
    BBOX_OUTSIDE_TOLERANCE,
    REASON_CODES,
    validate_densepose_annotation,
    validate_image,
)


def _codes(problems: list[tuple[str, str]]) -> list[str]:
    return [code for code, _ in problems]


def _edited(record: dict, fields: dict) -> dict:
    """``record`` with ``fields`` set in place; a field given as ``None`` is deleted instead."""
    for name, value in fields.items():
        if value is None:
            del record[name]
        else:
            record[name] = value
    return record


def _valid_masks() -> list:
    labels = np.zeros((256, 256), np.uint8)
    labels[20:200, 60:190] = 1
    labels[0:20, 100:150] = 14
    masks: list = list(encode_part_masks(labels))
    masks[3] = []
    masks[4] = {}
    masks[5] = None
    return masks


def test_valid_records_have_no_problems(make_annotation, make_image):
    assert validate_image(make_image()) == []
    assert validate_image(make_image(vid_id="003418")) == []
    assert validate_densepose_annotation(make_annotation(), make_image()) == []
    assert (
        validate_densepose_annotation(make_annotation(dp_masks=_valid_masks()), make_image()) == []
    )


def test_person_without_densepose_is_valid(make_annotation, make_image):
    ann = make_annotation()
    for name in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V"):
        del ann[name]
    assert validate_densepose_annotation(ann, make_image()) == []
    ann.update(dp_x=[], dp_y=[], dp_I=[], dp_U=[], dp_V=[])
    assert validate_densepose_annotation(ann, make_image()) == []
    del ann["keypoints"]  # keypoints are optional
    assert validate_densepose_annotation(ann, make_image()) == []


BAD_ANNOTATIONS = [
    # (reason, fields to set (None deletes), expected fragment of the detail)
    ("missing_field", {"bbox": None}, "bbox is missing"),
    ("missing_field", {"track_id": None}, "track_id is missing"),
    ("missing_field", {"track_id": 1.5}, "track_id = 1.5 is not an integer"),
    ("missing_field", {"image_id": None}, "image_id is missing"),
    ("bbox_invalid", {"bbox": [1, 2, 3]}, "expected [x, y, w, h]"),
    ("bbox_invalid", {"bbox": [1, 2, 0, 10]}, "w <= 0 or h <= 0"),
    ("bbox_invalid", {"bbox": [1, 2, 10, -3]}, "w <= 0 or h <= 0"),
    ("bbox_invalid", {"bbox": [1, math.nan, 10, 10]}, "bbox[1] = nan is not a finite number"),
    ("bbox_invalid", {"bbox": [1, 2, "10", 10]}, "bbox[2] = '10'"),
    ("bbox_outside_image", {"bbox": [2000.0, 10.0, 50.0, 50.0]}, "lies outside the 1920x1080"),
    ("bbox_outside_image", {"bbox": [10.0, -300.0, 50.0, 250.0]}, "lies outside"),
    ("bbox_outside_image", {"bbox": [1900.0, 10.0, 100.0, 50.0]}, "past the right edge"),
    ("bbox_outside_image", {"bbox": [10.0, 1010.0, 50.0, 100.0]}, "30.0 px past the bottom edge"),
    ("keypoints_malformed", {"keypoints": [1.0] * 50}, "has 50 values, expected 51"),
    ("keypoints_malformed", {"keypoints": [1.0] * 50 + [math.inf]}, "keypoints[50] = inf"),
    ("keypoints_malformed", {"keypoints": []}, "has 0 values"),
    ("dp_length_mismatch", {"dp_V": [0.1, 0.2]}, "dp_V: 2"),
    ("dp_length_mismatch", {"dp_U": None}, "dp_U: absent"),
    ("dp_length_mismatch", {"dp_x": 3.0}, "dp_x is 3.0, expected a list"),
    ("non_finite", {"dp_U": [0.1, math.nan, 0.3]}, "dp_U[1] = nan is not a finite number"),
    ("non_finite", {"dp_x": [1.0, 2.0, math.inf]}, "dp_x[2] = inf"),
    ("non_finite", {"dp_y": [1.0, "2", 3.0]}, "dp_y[1] = '2'"),
    ("dp_I_out_of_range", {"dp_I": [1.0, 0.0, 2.0]}, "dp_I[1] = 0, expected an integer in 1..24"),
    ("dp_I_out_of_range", {"dp_I": [1.0, 2.0, 2.5]}, "dp_I[2] = 2.5"),
    (
        "dp_UV_out_of_range",
        {"dp_U": [0.0, 1.01, 0.5]},
        "dp_U[1] = 1.01, expected a value in [0, 1]",
    ),
    ("dp_UV_out_of_range", {"dp_V": [-0.1, 0.5, 0.5]}, "dp_V[0] = -0.1"),
    (
        "dp_xy_out_of_range",
        {"dp_x": [10.0, 256.5, 0.0]},
        "dp_x[1] = 256.5, expected a value in [0, 256]",
    ),
    ("dp_xy_out_of_range", {"dp_y": [10.0, 20.0, -1.0]}, "dp_y[2] = -1"),
    ("bad_rle", {"dp_masks": [None] * 13}, "dp_masks has 13 entries, expected 14"),
    ("bad_rle", {"dp_masks": {"counts": "T3"}}, "expected 14"),
]


@pytest.mark.parametrize(("reason", "fields", "fragment"), BAD_ANNOTATIONS)
def test_bad_annotation_gives_its_reason(make_annotation, make_image, reason, fields, fragment):
    problems = validate_densepose_annotation(_edited(make_annotation(), fields), make_image())
    assert _codes(problems) == [reason], problems
    assert fragment in problems[0][1]


def test_dp_I_detail_names_index_and_value_and_counts(make_annotation, make_image):
    dp_i = [float(1 + k % 24) for k in range(20)]
    dp_i[17] = 31.0
    dp_i[19] = 0.0
    zeros = [0.5] * 20
    ann = make_annotation(dp_x=zeros, dp_y=zeros, dp_I=dp_i, dp_U=zeros, dp_V=zeros)
    (problem,) = validate_densepose_annotation(ann, make_image())
    assert problem == (
        "dp_I_out_of_range",
        "dp_I[17] = 31, expected an integer in 1..24 (2 values in all)",
    )


def test_bad_rle_entries_each_reported(make_annotation, make_image):
    masks = _valid_masks()
    masks[2] = {"size": [128, 128], "counts": "T3"}
    masks[7] = {"size": [256, 256], "counts": "T3"}
    masks[9] = {"size": [256, 256]}
    problems = validate_densepose_annotation(make_annotation(dp_masks=masks), make_image())
    assert _codes(problems) == ["bad_rle"] * 3
    assert problems[0][1].startswith("dp_masks[2] (Left Hand): RLE size is [128, 128]")
    assert problems[1][1].startswith("dp_masks[7] (Lower Leg Right): RLE run lengths add up to 100")
    assert problems[2][1].startswith("dp_masks[9] (Upper Arm Left)")


def test_unknown_image(make_annotation):
    problems = validate_densepose_annotation(make_annotation(image_id=99), None)
    assert _codes(problems) == ["unknown_image"]
    assert problems[0][1] == "image_id 99 is not in images"


def test_all_problems_listed_in_order(make_annotation):
    ann = make_annotation(bbox=[0, 0, -1, 1], dp_I=[0.0, 1.0, 2.0], dp_U=[0.0, 0.1, 7.0])
    del ann["track_id"]
    problems = validate_densepose_annotation(ann, None)
    assert _codes(problems) == [
        "unknown_image",
        "missing_field",
        "bbox_invalid",
        "dp_I_out_of_range",
        "dp_UV_out_of_range",
    ]


@pytest.mark.parametrize(
    ("bbox", "outside"),
    [
        # Overhang as a fraction of the box size, against the 25% tolerance.
        ([-24.0, 10.0, 100.0, 100.0], False),  # 24% past the left edge
        ([-26.0, 10.0, 100.0, 100.0], True),  # 26%
        ([1844.0, 10.0, 100.0, 100.0], False),  # 24% past the right edge (1920)
        ([1846.0, 10.0, 100.0, 100.0], True),
        ([10.0, -49.0, 100.0, 200.0], False),  # 24.5% past the top edge
        ([10.0, 1001.0, 100.0, 100.0], False),  # 21% past the bottom edge (1080)
        ([10.0, 1006.0, 100.0, 100.0], True),  # 26%
        ([0.0, 0.0, 1920.0, 1080.0], False),  # the whole image
    ],
)
def test_bbox_tolerance(make_annotation, make_image, bbox, outside):
    assert BBOX_OUTSIDE_TOLERANCE == 0.25
    problems = validate_densepose_annotation(make_annotation(bbox=bbox), make_image())
    assert _codes(problems) == (["bbox_outside_image"] if outside else [])


def test_bbox_tolerance_can_be_changed(make_annotation, make_image):
    ann = make_annotation(bbox=[10.0, 1001.0, 100.0, 100.0])  # 21% past the bottom edge
    problems = validate_densepose_annotation(ann, make_image(), bbox_tolerance=0.10)
    assert _codes(problems) == ["bbox_outside_image"]
    assert "more than 10% of its size 100" in problems[0][1]
    ann = make_annotation(bbox=[10.0, 1006.0, 100.0, 100.0])  # 26%
    assert validate_densepose_annotation(ann, make_image(), bbox_tolerance=0.30) == []


def test_bbox_outside_check_skipped_without_image_size(make_annotation, make_image):
    image = make_image()
    del image["width"], image["height"]
    ann = make_annotation(bbox=[5000.0, 5000.0, 10.0, 10.0])
    assert validate_densepose_annotation(ann, image) == []


BAD_IMAGES = [
    ({"vid_id": None}, "unknown_video", "video id is missing"),
    ({"vid_id": True}, "unknown_video", "got bool"),
    ({"vid_id": ""}, "unknown_video", "non-empty"),
    ({"vid_id": [3418]}, "unknown_video", "non-empty int or str"),
    ({"file_name": None}, "missing_field", "file_name is missing"),
    ({"frame_id": None}, "missing_field", "frame_id is missing"),
    ({"frame_id": "0001"}, "missing_field", "frame_id = '0001' is not an integer"),
    ({"id": None}, "missing_field", "id is missing"),
]


@pytest.mark.parametrize(("fields", "reason", "fragment"), BAD_IMAGES)
def test_bad_image(make_image, fields, reason, fragment):
    problems = validate_image(_edited(make_image(), fields))
    assert _codes(problems) == [reason]
    assert fragment in problems[0][1]


def test_every_reason_code_has_a_crafted_record():
    crafted = {reason for reason, _, _ in BAD_ANNOTATIONS} | {reason for _, reason, _ in BAD_IMAGES}
    # unknown_image has its own test; the file-level conflicts are tests/formats/test_consistency.py
    conflicts = {"duplicate_image_id", "image_in_two_videos", "duplicate_annotation_id"}
    assert crafted | {"unknown_image"} | conflicts == set(REASON_CODES)
