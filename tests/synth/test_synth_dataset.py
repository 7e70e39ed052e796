"""The written dataset: DensePose-PoseTrack format, exact DensePose labels, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART, decode_part_masks
from dptrack_pipeline.structures import COCO_KEYPOINT_NAMES, dp_to_pixels
from dptrack_pipeline.synth.annotate import sample_dp_pixels
from dptrack_pipeline.synth.dataset import generate_dataset
from dptrack_pipeline.synth.truth import load_frame_truth

from .conftest import SMALL


@pytest.fixture(scope="module")
def document(synth_small) -> dict:
    folder, _ = synth_small
    return json.loads((folder / "annotations.json").read_text())


def test_summary_and_layout(synth_small) -> None:
    folder, summary = synth_small
    assert summary["video_ids"] == [1001, 1002]
    assert summary["num_frames"] == 28 and summary["num_labelled_frames"] == 4
    assert summary["num_flows"] == 2 * (6 + 4)
    assert summary["num_densepose_annotations"] == 8
    pngs = sorted((folder / "frames").rglob("*.png"))
    assert len(pngs) == 28
    assert pngs[0].relative_to(folder).as_posix() == "frames/001001_synth/000000.png"
    image = cv2.imread(str(pngs[0]))
    assert image.shape == (SMALL["height"], SMALL["width"], 3)


def test_images_follow_densepose_posetrack(document) -> None:
    images = document["images"]
    assert len(images) == 28
    required = {"id", "width", "height", "file_name", "vid_id", "frame_id", "nframes"}
    for image in images:
        assert required <= set(image)
        assert image["has_no_densepose"] is False and image["nframes"] == 14
        index = image["frame_id"] - image["vid_id"] * 10000
        assert image["id"] == image["frame_id"] and 0 <= index < 14
        assert image["is_labeled"] == (index % 8 == 4)
    labelled = sum(image["is_labeled"] for image in images)
    assert labelled == 4  # about one frame in eight (frames 4 and 12 of 14)
    category = document["categories"][0]
    assert category["id"] == 1 and category["name"] == "person"
    assert category["keypoints"] == list(COCO_KEYPOINT_NAMES) and len(category["skeleton"]) == 19


def test_annotations_follow_densepose_posetrack(synth_small, document) -> None:
    folder, _ = synth_small
    images = {image["id"]: image for image in document["images"]}
    ids = [ann["id"] for ann in document["annotations"]]
    assert len(set(ids)) == len(ids)
    with_dp = 0
    for ann in document["annotations"]:
        image = images[ann["image_id"]]
        assert ann["category_id"] == 1 and ann["iscrowd"] == 0 and ann["track_id"] in (0, 1)
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= image["width"] - 1 + 1e-6 and y + h <= image["height"] - 1 + 1e-6
        assert len(ann["keypoints"]) == 51
        v = np.asarray(ann["keypoints"]).reshape(17, 3)[:, 2]
        assert set(v.tolist()) <= {0.0, 1.0, 2.0} and ann["num_keypoints"] == int((v > 0).sum())
        segmentation = mask_utils.decode(
            {**ann["segmentation"], "counts": ann["segmentation"]["counts"].encode()}
        )
        assert segmentation.sum() == ann["area"]
        if not image["is_labeled"]:
            assert "dp_x" not in ann and "dp_masks" not in ann
            continue
        with_dp += 1
        n = len(ann["dp_x"])
        assert 80 <= n <= 100
        assert all(len(ann[key]) == n for key in ("dp_y", "dp_I", "dp_U", "dp_V"))
        dp_i = np.asarray(ann["dp_I"])
        assert np.all((dp_i >= 1) & (dp_i <= 24) & (dp_i == np.round(dp_i)))
        for key in ("dp_U", "dp_V"):
            assert 0.0 <= min(ann[key]) and max(ann[key]) <= 1.0
        for key in ("dp_x", "dp_y"):
            assert 0.0 <= min(ann[key]) and max(ann[key]) <= 256.0
        assert len(ann["dp_masks"]) == 14
        for rle in ann["dp_masks"]:
            assert rle["size"] == [256, 256]
            decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
            assert decoded.shape == (256, 256)
        # Points are stratified over the visible patches: most patches get some.
        assert len(np.unique(dp_i)) >= 8
    assert with_dp == 8


def test_densepose_points_and_masks_are_the_exact_render(synth_small, document) -> None:
    folder, _ = synth_small
    images = {image["id"]: image for image in document["images"]}
    agree = total = 0
    for ann in document["annotations"]:
        if "dp_x" not in ann:
            continue
        image = images[ann["image_id"]]
        truth = load_frame_truth(folder, image["vid_id"], image["frame_id"] % 10000)
        points = dp_to_pixels(np.asarray(ann["dp_x"]), np.asarray(ann["dp_y"]), ann["bbox"])
        cols, rows = np.rint(points[:, 0]).astype(int), np.rint(points[:, 1]).astype(int)
        assert np.abs(points - np.stack([cols, rows], axis=1)).max() < 1e-3  # pixel centres
        assert np.all(truth["person"][rows, cols] == ann["track_id"])
        assert np.array_equal(truth["I"][rows, cols], np.asarray(ann["dp_I"]))
        assert np.allclose(truth["U"][rows, cols], ann["dp_U"], atol=1e-6)
        assert np.allclose(truth["V"][rows, cols], ann["dp_V"], atol=1e-6)
        # The part masks carry the mask part of each point's patch at the point's grid cell.
        labels = decode_part_masks(ann["dp_masks"])
        gi = np.clip(np.floor(np.asarray(ann["dp_y"])).astype(int), 0, 255)
        gj = np.clip(np.floor(np.asarray(ann["dp_x"])).astype(int), 0, 255)
        expected = SURFACE_TO_MASK_PART[np.asarray(ann["dp_I"], dtype=int)]
        agree += int((labels[gi, gj] == expected).sum())
        total += len(gi)
        # Mask area on the grid matches the visible area of the person.
        x, y, w, h = ann["bbox"]
        area_px = (labels > 0).sum() * (w * h) / 256**2
        assert abs(area_px - ann["area"]) < 0.1 * ann["area"]
    assert agree / total > 0.95


def test_dp_sampling_is_stratified_and_prefers_interior_pixels() -> None:
    part = np.zeros((40, 40), dtype=np.uint8)
    part[5:35, 5:20] = 1  # 450 px
    part[5:35, 20:35] = 2  # 450 px
    part[36:39, 36:39] = 3  # 9 px, 1 interior
    mask = part > 0
    rows, cols = sample_dp_pixels(mask, part, np.random.default_rng(0), count=100)
    labels = part[rows, cols]
    counts = np.bincount(labels, minlength=4)
    assert (
        counts.sum() == 100 and counts[3] == 9 and counts[1] in (45, 46) and counts[2] in (45, 46)
    )
    on_big = labels < 3
    assert np.all((cols[on_big] != 19) & (cols[on_big] != 20))  # not on the patch border


def test_generation_is_deterministic(tmp_path: Path) -> None:
    kwargs = {"videos": 1, "frames": 6, "seed": 11, "width": 160, "height": 120, "label_every": 4}
    generate_dataset(str(tmp_path / "a"), **kwargs)
    generate_dataset(str(tmp_path / "b"), **kwargs)
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    # 6 PNGs, annotations.json, 6 truth frames, flows 2 -> 0, 1, 3, 4, 5, index.json, README.md
    assert files_a == files_b and len(files_a) == 6 + 1 + 6 + 5 + 2
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    generate_dataset(str(tmp_path / "c"), **{**kwargs, "seed": 12})
    assert (tmp_path / "a" / "annotations.json").read_bytes() != (
        tmp_path / "c" / "annotations.json"
    ).read_bytes()


def test_annotations_pass_the_project_validator(synth_small) -> None:
    """Cross-check with the DensePose-PoseTrack reader of ``dptrack_pipeline.formats``."""
    folder, _ = synth_small
    from dptrack_pipeline.formats.densepose_posetrack import load_densepose_posetrack, problems

    assert problems(folder / "annotations.json") == []
    loaded = load_densepose_posetrack(folder / "annotations.json")
    assert len(loaded.instances) == 8


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_dataset(str(tmp_path), videos=0)
    with pytest.raises(ValueError):
        generate_dataset(str(tmp_path), width=16)
