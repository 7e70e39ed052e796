"""The report's numbers equal what the manifest and the rows say (``report/figures.py``,
``report/pairs_figures.py``), on real folders written by the two jobs."""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.pairs.summary import pairs_offset_summary
from dptrack_pipeline.report.columns import json_ready
from dptrack_pipeline.report.figures import run_figures
from dptrack_pipeline.report.pairs_figures import pairs_figures
from dptrack_pipeline.shards import read_dataset_info, read_instances, read_pairs, read_rejects


def figures_of(folder: Path, gallery_size: int = 4) -> tuple[dict, dict, list, list]:
    info = read_dataset_info(str(folder))
    instances, rejects = read_instances(str(folder)), read_rejects(str(folder))
    figures = run_figures(info, instances, rejects, written="now", gallery_size=gallery_size)
    return figures, info, instances.to_pylist(), rejects.to_pylist()


@pytest.fixture(scope="module")
def run(run_folder: Path) -> tuple[dict, dict, list, list]:
    return figures_of(run_folder)


def test_funnel_numbers_are_the_manifest_counters(run: tuple) -> None:
    figures, info, rows, rejects = run
    c, funnel = info["counters"], figures["funnel"]
    inst, points = funnel["instances"], funnel["points"]
    assert (inst["in"], inst["written"], inst["rejected"]) == (
        c["instances_in"], c["instances_written"], c["instances_rejected"],
    )  # fmt: skip
    assert inst["written_sources"] + inst["written_propagated"] == len(rows) == inst["written"]
    assert inst["written_sources"] == sum(r["offset"] == 0 for r in rows) == c["sources_in"]
    # The missing frame: both people's T+3 targets are set aside, and nothing else.
    assert inst["rejected_by_reason"] == dict(collections.Counter(r["reason"] for r in rejects))
    assert inst["rejected_by_reason"] == {"frame_missing": 2}
    assert sum(inst["rejected_by_stage"].values()) == inst["rejected"] == len(rejects)
    assert (points["in"], points["kept"]) == (c["points_in"], c["points_kept"])
    assert points["dropped"] == {k: c[f"points_dropped_{k}"] for k in points["dropped"]}
    assert points["in"] == points["kept"] + sum(points["dropped"].values())
    assert funnel["problems"] == []
    assert figures["about"]["checks"] == info["checks"]
    assert figures["about"]["versions"]["numpy"] == info["versions"]["numpy"]
    assert figures["about"]["inputs"]["annotations"] == info["config"]["annotations"]


def test_kept_fraction_per_offset_is_kept_over_points_in_of_the_rows(run: tuple) -> None:
    figures, _, rows, _ = run
    table = {o["offset"]: o for o in figures["offsets"]}
    assert sorted(table) == sorted({r["offset"] for r in rows})
    for off, entry in table.items():
        mine = [r for r in rows if r["offset"] == off]
        assert entry["rows"] == len(mine)
        if off == 0:
            continue
        kept, n_in = sum(len(r["dp_x"]) for r in mine), sum(r["points_in"] for r in mine)
        assert entry["points_kept"] == kept and entry["points_in"] == n_in
        assert entry["kept_ratio"] == pytest.approx(kept / n_in)
        # ... the same as the rows' own kept_fraction, weighted by their points.
        weighted = sum(r["kept_fraction"] * r["points_in"] for r in mine) / n_in
        assert entry["kept_ratio"] == pytest.approx(weighted, abs=1e-6)
        for reason in ("fb", "outside", "photo", "chain"):
            column = f"points_dropped_{reason}"
            assert entry[column] == sum(r[column] for r in mine)
    # Per offset, the rows' numbers add up to the manifest's (no rejected target holds points).
    propagated = [o for o in figures["offsets"] if o["offset"] != 0]
    assert sum(o["points_kept"] for o in propagated) == figures["funnel"]["points"]["kept"]


def test_histograms_hold_every_kept_point_of_their_offset(run: tuple) -> None:
    figures, info, rows, _ = run
    assert figures["quality_columns"] is True
    distributions = figures["distributions"]
    assert [d["abs_offset"] for d in distributions] == [1, 2, 3]
    for d in distributions:
        mine = [r for r in rows if abs(r["offset"]) == d["abs_offset"]]
        fb = np.array([e for r in mine for e in r["dp_fb_error"]])
        photo = np.array([e for r in mine for e in r["dp_photo"]])
        assert d["fb_error_px"]["n"] == sum(d["fb_error_px"]["counts"]) == fb.size > 0
        assert d["fb_error_px"]["median"] == pytest.approx(np.median(fb))
        assert d["fb_error_px"]["edges"][-1] >= info["checks"]["fb_threshold"] >= fb.max()
        assert d["photo_zncc"]["n"] == sum(d["photo_zncc"]["counts"]) == photo.size
        assert d["photo_zncc"]["median"] == pytest.approx(np.median(photo))
        assert (d["photo_zncc"]["edges"][0], d["photo_zncc"]["edges"][-1]) == (-1.0, 1.0)


def test_keypoint_agreement_is_that_of_the_rows(run: tuple) -> None:
    figures, _, rows, _ = run
    for k in figures["keypoints"]:
        mine = [r for r in rows if r["offset"] == k["offset"]]
        compared = [r["pckh"] for r in mine if math.isfinite(r["pckh"])]
        errors = [e for r in mine for e in r["kp_posetrack_error"] if math.isfinite(e)]
        assert k["instances"] == len(mine)
        assert k["instances_compared"] == len(compared) > 0
        assert k["mean_pckh"] == pytest.approx(np.mean(compared))
        assert k["median_error_px"] == pytest.approx(np.median(errors))


def test_video_table_splits_rows_and_rejects_by_video(run: tuple) -> None:
    figures, _, rows, rejects = run
    videos = {v["video_id"]: v for v in figures["videos"]}
    assert sorted(videos) == sorted({r["video_id"] for r in rows}) == ["1001", "1002"]
    assert {v: e["rejects"] for v, e in videos.items()} == {"1001": 2, "1002": 0}
    for video, entry in videos.items():
        moved = [r for r in rows if r["video_id"] == video and r["offset"] != 0]
        assert entry["rows"] == sum(r["video_id"] == video for r in rows)
        assert entry["propagated"] == len(moved)
        kept, n_in = sum(len(r["dp_x"]) for r in moved), sum(r["points_in"] for r in moved)
        assert entry["kept_fraction"] == pytest.approx(kept / n_in)
        fb = [e for r in moved for e in r["dp_fb_error"]]
        assert entry["median_fb_error_px"] == pytest.approx(np.median(fb))
        assert entry["mean_pckh"] == pytest.approx(np.nanmean([r["pckh"] for r in moved]))


def test_gallery_ranks_by_the_documented_score(run: tuple) -> None:
    figures, _, rows, _ = run
    gallery = figures["gallery"]
    assert "photo_median" in gallery["score"] and "fb_error_median" in gallery["score"]
    worst, best = gallery["worst"], gallery["best"]
    assert len(worst) == len(best) == 4
    assert not {e["row"] for e in worst} & {e["row"] for e in best}

    def key(e: dict) -> tuple[float, float]:
        return (e["photo_median"], -e["fb_error_median"])

    assert [key(e) for e in worst] == sorted(key(e) for e in worst)
    assert [key(e) for e in best] == sorted((key(e) for e in best), reverse=True)
    assert key(worst[-1]) <= key(best[-1])
    scores = sorted(r["photo_median"] for r in rows if r["offset"] != 0)
    assert worst[0]["photo_median"] == scores[0] and best[0]["photo_median"] == scores[-1]
    for e in worst + best:
        row = rows[e["row"]]
        assert (row["video_id"], row["annotation_id"], row["offset"]) == (
            e["video_id"], e["annotation_id"], e["offset"],
        )  # fmt: skip
        assert row["photo_median"] == e["photo_median"] and e["offset"] != 0


def test_a_v1_folder_has_the_counts_and_says_the_quality_columns_are_absent(
    run: tuple, v1_folder: Path
) -> None:
    figures, *_ = figures_of(v1_folder)
    assert figures["quality_columns"] is False
    assert figures["distributions"] is None and figures["keypoints"] is None
    assert figures["about"]["checks"] is None
    assert figures["funnel"] == run[0]["funnel"]
    v2 = {o["offset"]: o for o in run[0]["offsets"]}
    for o in figures["offsets"]:
        assert o.items() <= v2[o["offset"]].items()
    assert "kept fraction" in figures["gallery"]["score"]
    fractions = [e["points_kept"] / e["points_in"] for e in figures["gallery"]["worst"]]
    assert fractions == sorted(fractions)
    assert "median_fb_error_px" not in figures["videos"][0]


def test_pairs_figures_are_the_manifest_and_the_rows(pairs_folder: Path) -> None:
    info = read_dataset_info(str(pairs_folder))
    table, rejects = read_pairs(str(pairs_folder)), read_rejects(str(pairs_folder))
    figures = pairs_figures(info, table, rejects, gallery_size=4)
    c, funnel = info["counters"], figures["funnel"]
    assert figures["kind"] == "pairs"
    assert (funnel["pairs"]["planned"], funnel["pairs"]["written"]) == (
        c["pairs_planned"], c["pairs_written"],
    )  # fmt: skip
    assert funnel["videos"]["in"] == c["videos_in"] == 2
    assert funnel["people"] == {"in": 0, "used": 0, "rejected": 0}
    assert funnel["problems"] == []
    assert figures["offsets"] == pairs_offset_summary(table)
    assert sum(v["pairs"] for v in figures["videos"]) == table.num_rows == c["pairs_written"]
    assert sorted({e["offset"] for e in figures["gallery"]}) == [-2, -1, 1, 2]
    rows = table.to_pylist()
    for e in figures["gallery"]:
        assert rows[e["row"]]["frame_a"] == e["frame_a"] and rows[e["row"]]["offset"] == e["offset"]


def test_json_ready_turns_nan_into_null_and_numpy_into_python() -> None:
    value = {"a": float("nan"), "b": [np.float32(1.5), np.int64(2), (np.inf,)], 3: "x"}
    assert json_ready(value) == {"a": None, "b": [1.5, 2, [None]], "3": "x"}
