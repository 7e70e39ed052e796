"""``dptrack-build export`` end to end on a real ``run`` folder: the file validates, pycocotools
loads it and decodes every mask, detectron2 DensePose's loader rules hold, the labels equal the
shard rows, ``run`` reads it back, and every row is exported, filtered or refused (counted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from dptrack_pipeline.cli import main
from dptrack_pipeline.export.build import export_folder
from dptrack_pipeline.export.config import ExportConfig
from dptrack_pipeline.shards import read_instances
from dptrack_pipeline.train.filters import LabelFilter

POINT_KEYS = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def _check_detectron2_contract(doc: dict, frames_root: Path) -> None:
    """The rules detectron2 DensePose's loader and mapper enforce (``load_coco_json``,
    ``DensePoseDataRelative.validate_annotation``, the horizontal-flip transform)."""
    images = {im["id"]: im for im in doc["images"]}
    assert len(images) == len(doc["images"])
    for im in doc["images"]:
        frame = cv2.imread(str(frames_root / im["file_name"]), cv2.IMREAD_UNCHANGED)
        assert frame is not None, im["file_name"]
        assert (im["width"], im["height"]) == (frame.shape[1], frame.shape[0])
    assert doc["categories"][0]["id"] == 1 and len(doc["categories"][0]["keypoints"]) == 17
    ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ids)) == len(ids)
    for ann in doc["annotations"]:
        assert ann["image_id"] in images and "ignore" not in ann and ann["iscrowd"] == 0
        present = [k in ann for k in (*POINT_KEYS, "dp_masks")]
        assert all(present) or not any(present)
        if not any(present):
            continue
        assert len({len(ann[k]) for k in POINT_KEYS}) == 1
        assert all(0 <= v <= 255 for k in ("dp_x", "dp_y") for v in ann[k])
        assert all(0 <= v <= 1 for k in ("dp_U", "dp_V") for v in ann[k])
        assert all(1 <= i <= 24 for i in ann["dp_I"])
        assert len(ann["dp_masks"]) == 14
        for m in ann["dp_masks"]:
            assert m == [] or (m["size"] == [256, 256] and isinstance(m["counts"], str))


@pytest.fixture(scope="module")
def coco_export(export_run: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, shards = export_run
    out = tmp_path_factory.mktemp("export") / "coco.json"
    summary = _cli("export", str(shards), "--out", str(out), "--no-progress")
    assert "refused (none)" in summary
    return out


def test_the_export_validates_loads_and_keeps_the_loader_rules(
    export_run: tuple[Path, Path], coco_export: Path
) -> None:
    synth, _ = export_run
    assert "no problems found" in _cli("validate", str(coco_export), "--frames-root", str(synth))
    coco = COCO(str(coco_export))
    decoded = 0
    for ann in coco.dataset["annotations"]:
        for m in ann.get("dp_masks", []):
            if m:
                assert mask_utils.decode(m).shape == (256, 256)
                decoded += 1
    assert decoded > 0
    _check_detectron2_contract(coco.dataset, synth)
    counts = coco.dataset["info"]["dptrack"]["counts"]
    assert counts["rows_in"] == counts["rows_exported"] == len(coco.dataset["annotations"])


def test_the_export_equals_the_shard_rows(export_run: tuple[Path, Path], coco_export: Path) -> None:
    _, shards = export_run
    rows = {(r["annotation_id"], r["offset"]): r for r in read_instances(str(shards)).to_pylist()}
    doc = json.loads(coco_export.read_text())
    assert len(doc["annotations"]) == len(rows)
    images = {im["id"]: im for im in doc["images"]}
    for ann in doc["annotations"]:
        p = ann["dptrack"]
        row = rows[(p["source_annotation_id"], p["offset"])]
        image = images[ann["image_id"]]
        assert (image["vid_id"], image["frame_id"]) == (int(row["video_id"]), row["frame_id"])
        assert ann["track_id"] == row["track_id"]
        np.testing.assert_array_equal(np.float32(ann["bbox"]), np.float32(row["bbox"]))
        np.testing.assert_array_equal(np.float32(ann["keypoints"]), np.float32(row["keypoints"]))
        for key in ("dp_x", "dp_y"):
            expected = np.clip(np.float32(row[key]), 0, 255)
            np.testing.assert_array_equal(np.float32(ann[key]), expected)
        for key in ("dp_U", "dp_V"):
            np.testing.assert_array_equal(np.float32(ann[key]), np.clip(np.float32(row[key]), 0, 1))
        assert ann["dp_I"] == list(row["dp_I"])
        for exported, counts in zip(ann["dp_masks"], row["dp_masks"], strict=True):
            original = mask_utils.decode({"size": [256, 256], "counts": counts.encode()})
            got = mask_utils.decode(exported) if exported else np.zeros((256, 256), np.uint8)
            np.testing.assert_array_equal(got, original)


def test_the_same_folder_exports_to_the_same_bytes(
    export_run: tuple[Path, Path], coco_export: Path, tmp_path: Path
) -> None:
    _, shards = export_run
    again = tmp_path / "again.json"
    _cli("export", str(shards), "--out", str(again), "--no-progress")
    assert again.read_bytes() == coco_export.read_bytes()


def test_a_posetrack_export_per_video_validates_and_propagates_again(
    export_run: tuple[Path, Path], tmp_path: Path
) -> None:
    synth, shards = export_run
    out = tmp_path / "posetrack"
    _cli("export", str(shards), "--format", "densepose-posetrack", "--per-video",
         "--out", str(out), "--no-progress")  # fmt: skip
    files = sorted(out.glob("*.json"))
    source = json.loads((synth / "annotations.json").read_text())
    assert len(files) == len({im["vid_id"] for im in source["images"]})
    for path in files:
        assert "no problems found" in _cli("validate", str(path), "--frames-root", str(synth))
        doc = json.loads(path.read_text())
        vid = doc["images"][0]["vid_id"]
        listed = [im for im in source["images"] if im["vid_id"] == vid]
        assert len(doc["images"]) == len(listed)  # every frame of the video
        with_dp = {a["image_id"] for a in doc["annotations"] if "dp_masks" in a}
        for im in doc["images"]:
            assert im["has_no_densepose"] == (im["id"] not in with_dp)
            assert "ignore_regions_x" in im and "nframes" in im
    rerun = tmp_path / "rerun"
    _cli("run", "--annotations", str(files[0]), "--frames-root", str(synth), "--out", str(rerun),
         "--no-progress", "--crop-size", "32", "--runner", "FnApiRunner")  # fmt: skip
    info = json.loads((rerun / "dataset_info.json").read_text())
    assert info["counters"]["instances_written"] > 0
    doc = json.loads(files[0].read_text())
    sources = sum(1 for a in doc["annotations"] if "dp_masks" in a)
    again = read_instances(str(rerun)).to_pylist()
    assert sum(1 for r in again if r["offset"] == 0) == sources  # every export row is a source
    assert any(r["offset"] != 0 for r in again)


def test_filters_and_counts_add_up(export_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, shards = export_run
    rows = read_instances(str(shards)).to_pylist()
    config = ExportConfig(
        shards=str(shards),
        out=str(tmp_path / "f.json"),
        label_filter=LabelFilter(offsets=(1, 2), max_fb_error=0.5, min_points=3),
        include_sources=False,
    )
    result = export_folder(config)
    c = result.counts
    assert c.adds_up() and c.rows_in == len(rows)
    doc = json.loads((tmp_path / "f.json").read_text())
    assert len(doc["annotations"]) == c.rows_exported > 0
    assert {abs(a["dptrack"]["offset"]) for a in doc["annotations"]} <= {1, 2}
    by_key = {(r["annotation_id"], r["offset"]): r for r in rows}
    for ann in doc["annotations"]:
        row = by_key[(ann["dptrack"]["source_annotation_id"], ann["dptrack"]["offset"])]
        kept = [e for e in row["dp_fb_error"] if not e > 0.5]
        assert len(ann["dp_I"]) == len(kept) >= 3
    assert result.filtered.rows_dropped_offset > 0


def test_refusals_are_counted_and_named(export_run: tuple[Path, Path], tmp_path: Path) -> None:
    synth, shards = export_run
    root = tmp_path / "frames"
    shutil.copytree(synth, root)
    source = json.loads((synth / "annotations.json").read_text())
    first_vid = source["images"][0]["vid_id"]
    # one frame of the first video is now another size: its rows are refused, the rest go
    changed = next(im for im in source["images"] if im["vid_id"] == first_vid)
    frame = cv2.imread(str(root / changed["file_name"]))
    cv2.imwrite(str(root / changed["file_name"]), cv2.resize(frame, (64, 48)))
    # the second video is not in the given annotation file
    trimmed = dict(source)
    trimmed["images"] = [im for im in source["images"] if im["vid_id"] == first_vid]
    ids = {im["id"] for im in trimmed["images"]}
    trimmed["annotations"] = [a for a in source["annotations"] if a["image_id"] in ids]
    (tmp_path / "trimmed.json").write_text(json.dumps(trimmed))
    result = CliRunner().invoke(
        main,
        ["export", str(shards), "--out", str(tmp_path / "e.json"), "--no-progress",
         "--annotations", str(tmp_path / "trimmed.json"), "--frames-root", str(root)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads((tmp_path / "e.json").read_text())
    counts = doc["info"]["dptrack"]["counts"]
    refused = counts["rows_refused"]
    assert refused["frame_size_mismatch"] > 0 and refused["frame_not_in_inputs"] > 0
    total = counts["rows_exported"] + counts["rows_filtered"] + sum(refused.values())
    assert total == counts["rows_in"] == len(read_instances(str(shards)))
    assert "refused" in result.stderr and "frame_size_mismatch" in result.stderr
    assert changed["id"] not in {im["id"] for im in doc["images"]}
    _check_detectron2_contract(doc, root)


def test_frames_in_video_files_are_refused_or_extracted(
    export_run: tuple[Path, Path], tmp_path: Path
) -> None:
    synth, _ = export_run
    root = tmp_path / "video_root"
    shutil.copytree(synth, root, ignore=shutil.ignore_patterns("truth"))
    for folder in sorted(p for p in (root / "frames").iterdir() if p.is_dir()):
        pngs = sorted(folder.glob("*.png"))
        first = cv2.imread(str(pngs[0]))
        writer = cv2.VideoWriter(str(folder) + ".avi", cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                                 (first.shape[1], first.shape[0]))  # fmt: skip
        for png in pngs:
            writer.write(cv2.imread(str(png)))
        writer.release()
        shutil.rmtree(folder)
    shards = tmp_path / "video_run"
    _cli("run", "--annotations", str(root / "annotations.json"), "--frames-root", str(root),
         "--out", str(shards), "--no-progress", "--crop-size", "32",
         "--runner", "FnApiRunner")  # fmt: skip
    rows = len(read_instances(str(shards)))
    refused = CliRunner().invoke(
        main, ["export", str(shards), "--out", str(tmp_path / "r.json"), "--no-progress"]
    )
    assert refused.exit_code == 0
    assert f"refused {rows} rows: frame_in_video_file" in refused.stderr
    assert "--write-frames" in refused.stderr
    outside = CliRunner().invoke(
        main,
        [
            "export",
            str(shards),
            "--out",
            str(tmp_path / "o.json"),
            "--no-progress",
            "--write-frames",
            str(tmp_path / "elsewhere"),
        ],  # fmt: skip
    )
    assert outside.exit_code == 1 and "inside --frames-root" in outside.stderr
    out = tmp_path / "x.json"
    _cli("export", str(shards), "--out", str(out), "--no-progress",
         "--write-frames", str(root / "extracted"))  # fmt: skip
    doc = json.loads(out.read_text())
    assert len(doc["annotations"]) == rows
    counts = doc["info"]["dptrack"]["counts"]
    assert (
        counts["frames_extracted"]
        == len(doc["images"])
        == len(list((root / "extracted").rglob("*.jpg")))
    )
    assert all(im["file_name"].startswith("extracted/") for im in doc["images"])
    _check_detectron2_contract(doc, root)
    first = (root / doc["images"][0]["file_name"]).read_bytes()
    _cli("export", str(shards), "--out", str(out), "--no-progress",
         "--write-frames", str(root / "extracted"))  # fmt: skip
    assert (root / doc["images"][0]["file_name"]).read_bytes() == first  # deterministic JPEG
    assert "no problems found" in _cli("validate", str(out), "--frames-root", str(root))


def test_a_pairs_folder_or_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["export", str(tmp_path), "--out", str(tmp_path / "x.json"), "--no-progress"]
    )
    assert result.exit_code == 1
    assert "not a finished dptrack-build run folder" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x.json").exists()


def test_a_per_video_folder_is_replaced_only_with_overwrite(
    export_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, shards = export_run
    out = tmp_path / "pt"
    out.mkdir()
    (out / "stale.json").write_text("{}")
    args = ["export", str(shards), "--format", "densepose-posetrack", "--per-video",
            "--out", str(out), "--no-progress"]  # fmt: skip
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "--overwrite" in refused.stderr
    assert (out / "stale.json").exists()
    _cli(*args, "--overwrite")
    assert not (out / "stale.json").exists() and len(list(out.glob("*.json"))) == 2
    folder = CliRunner().invoke(main, ["export", str(shards), "--out", str(out), "--no-progress"])
    assert folder.exit_code == 1 and "is a folder" in folder.stderr
