"""score_propagation against propagations built from the exact truth itself."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from dptrack_pipeline.structures import dp_to_pixels, pixels_to_dp
from dptrack_pipeline.synth.score import format_score_table, score_propagation
from dptrack_pipeline.synth.truth import load_flow_truth, load_truth_index


def _instances(folder, *, shift=(0.0, 0.0), keep_hidden=False, offsets=(1, 2, 3)) -> list[dict]:
    """instances.v1-like rows: every labelled person (offset 0) and its propagation to each
    truth target, moved by the exact flow (plus ``shift`` px), keeping the truth-visible points
    (all points when ``keep_hidden``)."""
    document = json.loads((folder / "annotations.json").read_text())
    images = {image["id"]: image for image in document["images"]}
    boxes = {(a["image_id"], a["track_id"]): a["bbox"] for a in document["annotations"]}
    pairs = {v["video_id"]: v["flow_pairs"] for v in load_truth_index(folder)["videos"]}
    rows = []
    for ann in document["annotations"]:
        if "dp_x" not in ann:
            continue
        image = images[ann["image_id"]]
        video_id, frame = str(image["vid_id"]), image["frame_id"] % 10000
        n = len(ann["dp_x"])
        base = {
            "video_id": video_id,
            "track_id": ann["track_id"],
            "annotation_id": ann["id"],
            "source_frame_index": frame,
        }
        rows.append(
            {
                **base,
                "frame_id": image["frame_id"],
                "frame_index": frame,
                "offset": 0,
                "bbox": ann["bbox"],
                **{key: ann[key] for key in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")},
                "dp_source_index": list(range(n)),
            }
        )
        points = dp_to_pixels(np.asarray(ann["dp_x"]), np.asarray(ann["dp_y"]), ann["bbox"])
        cols, rows_px = np.rint(points[:, 0]).astype(int), np.rint(points[:, 1]).astype(int)
        for source, target in pairs[video_id]:
            if source != frame or abs(target - source) not in offsets:
                continue
            flow, visible = load_flow_truth(folder, video_id, source, target)
            moved = points + flow[rows_px, cols] + np.asarray(shift, dtype=np.float32)
            kept = np.ones(n, bool) if keep_hidden else visible[rows_px, cols]
            target_id = image["vid_id"] * 10000 + target
            box = boxes.get((target_id, ann["track_id"]), ann["bbox"])
            dp_x, dp_y = pixels_to_dp(moved[kept], box)
            rows.append(
                {
                    **base,
                    "frame_id": target_id,
                    "frame_index": target,
                    "offset": target - source,
                    "bbox": box,
                    "dp_x": dp_x.tolist(),
                    "dp_y": dp_y.tolist(),
                    **{
                        key: np.asarray(ann[key])[kept].tolist() for key in ("dp_I", "dp_U", "dp_V")
                    },
                    "dp_source_index": np.flatnonzero(kept).tolist(),
                }
            )
    return rows


def test_perfect_propagation_scores_perfectly(synth_small) -> None:
    folder, _ = synth_small
    score = score_propagation(_instances(folder), folder)
    assert set(score["per_offset"]) == {1, 2, 3}
    assert score["n_sources"] == 8 and score["n_orphan_targets"] == 0
    for s in [*score["per_offset"].values(), score["all"]]:
        assert s["n_targets"] > 0 and s["n_missing_targets"] == 0
        assert s["n_kept"] == s["n_visible"] == s["n_kept_visible"] == s["n_correct"]
        assert s["median_error_px"] < 1e-3 and s["mean_error_px"] < 1e-3
        assert s["precision"] == 1.0 and s["recall"] == 1.0
    # Occlusion is real: some source points are hidden in their targets.
    assert score["all"]["n_visible"] < score["all"]["n_source_points"]
    all_targets = sum(s["n_targets"] for s in score["per_offset"].values())
    assert score["all"]["n_targets"] == all_targets == 2 * 2 * (6 + 4)


def test_shifted_propagation_has_the_shift_as_error(synth_small) -> None:
    folder, _ = synth_small
    rows = _instances(folder, shift=(2.0, 0.0))
    near = score_propagation(rows, folder, near_px=3.0)
    far = score_propagation(rows, folder, near_px=1.5)
    for k in (1, 2, 3):
        assert near["per_offset"][k]["median_error_px"] == pytest.approx(2.0, abs=1e-3)
        assert near["per_offset"][k]["precision"] == 1.0
        assert far["per_offset"][k]["precision"] == 0.0
        assert far["per_offset"][k]["recall"] == 1.0  # recall counts kept points, not placement


def test_keeping_hidden_points_costs_precision(synth_small) -> None:
    folder, _ = synth_small
    s = score_propagation(_instances(folder, keep_hidden=True), folder)["all"]
    assert s["n_kept"] == s["n_source_points"]
    assert s["recall"] == 1.0
    assert s["precision"] == pytest.approx(s["n_visible"] / s["n_source_points"])
    assert s["precision"] < 0.99


def test_missing_targets_count_as_dropped(synth_small) -> None:
    folder, _ = synth_small
    score = score_propagation(_instances(folder, offsets=(1, 2)), folder)
    three = score["per_offset"][3]
    assert three["n_missing_targets"] == three["n_targets"] > 0
    assert three["n_kept"] == 0 and three["recall"] == 0.0 and math.isnan(three["precision"])
    assert math.isnan(three["median_error_px"])
    assert 0.0 < score["all"]["recall"] < 1.0
    table = format_score_table(score)
    assert table.splitlines()[0].split()[:3] == ["|k|", "targets", "missing"]
    assert any(line.split()[0] == "all" for line in table.splitlines()[2:])


def test_arrow_table_input_gives_the_same_score(synth_small) -> None:
    folder, _ = synth_small
    rows = _instances(folder, shift=(0.5, -1.0))
    table = pa.Table.from_pylist(rows)
    assert score_propagation(table, folder) == score_propagation(rows, folder)
