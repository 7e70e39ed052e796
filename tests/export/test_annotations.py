"""One instance row as a DensePose-COCO annotation: the format's traps (ranges, masks, keys)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from dptrack_pipeline.export.annotations import (
    EMPTY_MASK_COUNTS,
    ExportCounts,
    Fixes,
    coco_annotation,
)


def _rle(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


def _row(**changes: object) -> dict:
    part = np.zeros((256, 256), np.uint8)
    part[40:90, 100:160] = 1
    row = {
        "annotation_id": 7, "offset": -2, "source_frame_id": 10, "track_id": 3,
        "bbox": [10.5, 20.0, 50.0, 80.0], "keypoints": [1.0, 2.0, 2] * 17,
        "dp_x": [0.0, 255.5, 256.0, 12.25], "dp_y": [-0.25, 30.0, 40.0, 255.0],
        "dp_I": [1, 2, 24, 7], "dp_U": [0.0, 1.0, 1.0000001, 0.5], "dp_V": [0.25, -1e-7, 0.0, 1.0],
        "dp_masks": [_rle(part)] + [EMPTY_MASK_COUNTS] * 12 + [""], "estimator": "dis",
        "fb_error_median": 0.4, "photo_median": float("nan"), "kept_fraction": 0.9, "pckh": None,
    }  # fmt: skip
    row.update(changes)
    return row


def test_an_annotation_meets_the_loader_contract() -> None:
    fixes = Fixes()
    ann = coco_annotation(_row(), 5, 11, fixes)
    assert (ann["id"], ann["image_id"], ann["category_id"], ann["iscrowd"]) == (5, 11, 1, 0)
    assert ann["bbox"] == [10.5, 20.0, 50.0, 80.0] and ann["area"] == 50.0 * 80.0
    assert "ignore" not in ann and ann["track_id"] == 3
    assert len(ann["keypoints"]) == 51 and ann["num_keypoints"] == 17
    # clipped to the original data's ranges, and counted
    assert ann["dp_x"] == [0.0, 255.0, 255.0, 12.25]
    assert ann["dp_y"] == [0.0, 30.0, 40.0, 255.0]
    assert min(ann["dp_U"] + ann["dp_V"]) >= 0.0 and max(ann["dp_U"] + ann["dp_V"]) <= 1.0
    assert fixes.as_dict() == {"points_clipped_xy": 3, "values_clipped_uv": 2,
                               "rows_without_masks": 0}  # fmt: skip
    lengths = {len(ann[k]) for k in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")}
    assert lengths == {4}
    masks = ann["dp_masks"]
    assert len(masks) == 14 and masks[1:] == [[]] * 13
    assert masks[0]["size"] == [256, 256] and isinstance(masks[0]["counts"], str)
    decoded = mask_utils.decode(masks[0])
    assert decoded.shape == (256, 256) and decoded[40:90, 100:160].all() and decoded.sum() == 3000
    provenance = ann["dptrack"]
    assert provenance["source_annotation_id"] == 7 and provenance["offset"] == -2
    assert provenance["photo_median"] is None and provenance["pckh"] is None
    assert provenance["fb_error_median"] == pytest.approx(0.4)


def test_a_row_without_masks_gets_no_densepose_keys() -> None:
    fixes = Fixes()
    ann = coco_annotation(_row(dp_masks=None), 1, 1, fixes)
    assert not {"dp_x", "dp_y", "dp_I", "dp_U", "dp_V", "dp_masks"} & set(ann)
    assert fixes.rows_without_masks == 1


def test_a_row_without_keypoints_gets_no_keypoint_keys() -> None:
    ann = coco_annotation(_row(keypoints=None), 1, 1, Fixes())
    assert "keypoints" not in ann and "num_keypoints" not in ann


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dp_U": [0.1]}, "different lengths"),
        ({"dp_masks": ["PPP2"] * 13}, "14 part masks"),
    ],
)
def test_a_damaged_row_raises(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coco_annotation(_row(**changes), 1, 1, Fixes())


def test_empty_mask_counts_is_what_pycocotools_writes_for_an_empty_mask() -> None:
    assert _rle(np.zeros((256, 256), np.uint8)) == EMPTY_MASK_COUNTS


def test_counts_add_up() -> None:
    counts = ExportCounts(rows_in=5, rows_exported=2, rows_filtered=1)
    counts.refuse("frame_in_video_file", 2)
    assert counts.adds_up()
    counts.refuse("frame_unreadable")
    assert not counts.adds_up() and not math.isnan(counts.rows_in)
