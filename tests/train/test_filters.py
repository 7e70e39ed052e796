"""Label filters where labels are consumed: exactly the failing points and rows leave, labels stay
aligned, the split across workers and ranks stays a split, v1 folders are refused clearly, and
``dptrack-train`` records the filters and resumes exactly with them.

The shards are the ``train_shards`` fixture (a tiny synthetic set through ``dptrack-build run``,
instances schema v2); the thresholds are taken from its own score distribution so that every
filter drops a real share of points or rows.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import DataLoader

from dptrack_pipeline.cli.train import train as train_command
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.reader import file_schema_version, list_shards, read_instances
from dptrack_pipeline.shards.schema import load_parquet_schema
from dptrack_pipeline.train import partition
from dptrack_pipeline.train.config import TrainConfig
from dptrack_pipeline.train.crop_labels import dp_to_crop
from dptrack_pipeline.train.dataset import PairDataset, ShardDataset
from dptrack_pipeline.train.filters import POINT_COLUMNS, FilterStats, LabelFilter
from dptrack_pipeline.train.loop import Trainer
from dptrack_pipeline.train.samples import collate
from dptrack_pipeline.train.streams import build_streams

Key = tuple[str, int]


def _raw(shards: Path) -> dict[Key, dict]:
    """``(shard name, row) -> record`` of every instance row, read with ``read_instances``."""
    records = read_instances(str(shards)).to_pylist()
    keys = [(f.name, r) for f in ShardDataset(shards).files for r in range(f.num_rows)]
    assert len(keys) == len(records)
    return dict(zip(keys, records, strict=True))


def _scores(raw: dict[Key, dict], column: str) -> np.ndarray:
    return np.concatenate([r[column] for r in raw.values() if r["offset"] != 0]).astype(float)


@pytest.fixture(scope="module")
def raw(train_shards) -> dict[Key, dict]:
    return _raw(train_shards[1])


@pytest.fixture(scope="module")
def thresholds(raw) -> dict[str, float]:
    """Thresholds equal to real scores (``"lower"``), so the strict comparisons are exercised."""
    fb, photo = _scores(raw, "dp_fb_error"), _scores(raw, "dp_photo")
    return {
        "max_fb_error": float(np.percentile(fb, 70, method="lower")),
        "min_photo": float(np.percentile(photo, 20, method="lower")),
    }


def _keep(record: dict, max_fb_error: float, min_photo: float) -> np.ndarray:
    """The points the point filters keep, computed here independently of the filter."""
    if record["offset"] == 0:
        return np.ones(len(record["dp_I"]), dtype=bool)
    fb = np.asarray(record["dp_fb_error"], dtype=float)
    photo = np.asarray(record["dp_photo"], dtype=float)
    return ~(fb > max_fb_error) & ~(photo < min_photo)


def _same(a: float, b: float) -> bool:
    """Equal, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _key(sample: dict) -> Key:
    return sample["meta"]["shard"], sample["meta"]["row"]


def _filtered(shards: Path, label_filter: LabelFilter, **kw) -> list[dict]:
    kw = {"shuffle": False, "with_flow_source": False, **kw}
    return list(ShardDataset(shards, label_filter=label_filter, **kw))


def test_point_filters_drop_exactly_the_points_whose_scores_fail(
    train_shards, raw, thresholds
) -> None:
    _, shards = train_shards
    dataset = ShardDataset(
        shards, shuffle=False, with_flow_source=False, label_filter=LabelFilter(**thresholds)
    )
    samples = list(dataset)
    assert [_key(s) for s in samples] == list(raw)  # no row filter: every row, in order
    dropped = {"fb": 0, "photo": 0}
    for sample in samples:
        record = raw[_key(sample)]
        keep = _keep(record, **thresholds)
        if record["offset"] != 0:
            fb_fails = np.asarray(record["dp_fb_error"]) > thresholds["max_fb_error"]
            dropped["fb"] += int(fb_fails.sum())
            dropped["photo"] += int((~keep & ~fb_fails).sum())

        # Positions, parts and U/V are the raw row's, cut with the same mask: still aligned.
        cut = {c: np.asarray(record[c])[keep] for c in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")}
        assert sample["point_I"].tolist() == cut["dp_I"].tolist()
        assert np.array_equal(sample["point_U"].numpy(), cut["dp_U"].astype(np.float32))
        assert np.array_equal(sample["point_V"].numpy(), cut["dp_V"].astype(np.float32))
        points = dp_to_crop(cut["dp_x"], cut["dp_y"], record["bbox"], record["crop_box"], 32)
        assert np.array_equal(sample["points"].numpy(), points)
    total = _scores(raw, "dp_fb_error").size
    assert dropped["fb"] > 0.2 * total and dropped["photo"] > 0.05 * total
    stats = dataset.filter_stats()
    assert stats == FilterStats(
        rows_in=len(raw),
        points_in=total,
        points_dropped_fb_error=dropped["fb"],
        points_dropped_photo=dropped["photo"],
    )
    assert stats.as_dict()["rows_kept"] == len(raw)


def test_cut_rows_keep_every_point_column_aligned(raw, thresholds) -> None:
    label_filter = LabelFilter(**thresholds)
    cut_rows = 0
    for record in raw.values():
        before = json.dumps(record, default=str)
        out = label_filter.apply(record)
        assert json.dumps(record, default=str) == before  # the input row is not changed
        keep = _keep(record, **thresholds)
        if keep.all():
            assert out is record
            continue
        cut_rows += 1
        for column in POINT_COLUMNS:
            assert out[column] == [v for v, k in zip(record[column], keep, strict=True) if k]
        # Through dp_source_index, each kept point still has its own raw values.
        where = {s: j for j, s in enumerate(record["dp_source_index"])}
        for k, source_index in enumerate(out["dp_source_index"]):
            j = where[source_index]
            assert all(_same(out[c][k], record[c][j]) for c in POINT_COLUMNS)
        unchanged = set(record) - set(POINT_COLUMNS)
        assert {c: out[c] for c in unchanged} == {c: record[c] for c in unchanged}
        assert out["dp_masks"] == record["dp_masks"]  # masks are not filtered
    assert cut_rows > 10


def test_nan_scores_pass_and_sources_are_never_point_filtered() -> None:
    nan = math.nan
    propagated = {"offset": -2, "pckh": nan, "dp_I": [1, 2, 3], "dp_U": [0.1, 0.2, 0.3],
                  "dp_fb_error": [nan, 5.0, 0.1], "dp_photo": [0.9, 0.9, nan],
                  "dp_source_index": [4, 7, 9]}  # fmt: skip
    strict = LabelFilter(max_fb_error=1.0, min_photo=0.5, min_pckh=0.9)
    stats = FilterStats()
    out = strict.apply(propagated, stats)
    assert out["dp_I"] == [1, 3] and out["dp_U"] == [0.1, 0.3] and out["dp_source_index"] == [4, 9]
    assert (stats.points_in, stats.points_dropped_fb_error, stats.rows_kept) == (3, 1, 1)
    assert LabelFilter(min_pckh=0.9).apply({**propagated, "pckh": 0.5}) is None
    source = {"offset": 0, "pckh": nan, "dp_I": [1, 2], "dp_fb_error": [nan, nan],
              "dp_photo": [nan, nan]}  # fmt: skip
    assert LabelFilter(max_fb_error=0.0, min_photo=1.0, min_pckh=1.0, min_points=5).apply(
        source
    ) is source  # fmt: skip
    assert LabelFilter(offsets=[2]).apply(source) is None
    assert LabelFilter(offsets=[2]).apply(propagated) is propagated
    assert LabelFilter(max_fb_error=1.0, min_points=3).apply(propagated) is None
    assert LabelFilter(offsets=[2, 0, 2]).offsets == (0, 2)
    assert not LabelFilter().active and LabelFilter(min_points=1).active
    for bad in ({"offsets": [-1]}, {"offsets": []}, {"min_photo": 1.5}, {"min_pckh": -0.1},
                {"max_fb_error": -1.0}, {"min_points": -2}, {"max_fb_error": nan}):  # fmt: skip
        with pytest.raises(ValueError):
            LabelFilter(**bad)


def test_row_filters_keep_exactly_the_rows_that_pass(train_shards, raw, thresholds) -> None:
    _, shards = train_shards
    pckh = {k: r["pckh"] for k, r in raw.items() if r["offset"] != 0}
    min_pckh = float(np.percentile(list(pckh.values()), 25, method="lower"))
    assert 0 < sum(v < min_pckh for v in pckh.values()) < len(pckh)
    label_filter = LabelFilter(min_pckh=min_pckh, offsets=(0, 1, 3))
    expected = [
        k for k, r in raw.items()
        if abs(r["offset"]) in (0, 1, 3) and (r["offset"] == 0 or not r["pckh"] < min_pckh)
    ]  # fmt: skip
    assert [_key(s) for s in _filtered(shards, label_filter)] == expected
    assert {abs(raw[k]["offset"]) for k in expected} == {0, 1, 3}

    counts = {k: int(_keep(r, **thresholds).sum()) for k, r in raw.items()}
    min_points = int(np.percentile([counts[k] for k in pckh], 30))
    label_filter = LabelFilter(**thresholds, min_points=min_points)
    dataset = ShardDataset(shards, shuffle=False, with_flow_source=False, label_filter=label_filter)
    samples = list(dataset)
    expected = [k for k, r in raw.items() if r["offset"] == 0 or counts[k] >= min_points]
    assert [_key(s) for s in samples] == expected and len(expected) < len(raw)
    assert all(len(s["point_I"]) >= min_points for s in samples)
    assert dataset.filter_stats().rows_dropped_min_points == len(raw) - len(expected)


@pytest.mark.parametrize("split", ["auto", "files", "rows"])
def test_two_workers_by_two_ranks_split_the_kept_rows(
    train_shards, raw, thresholds, monkeypatch, split
) -> None:
    _, shards = train_shards
    label_filter = LabelFilter(**thresholds, min_pckh=0.9, offsets=(0, 1, 2), min_points=20)
    whole = ShardDataset(shards, seed=3, with_flow_source=False, label_filter=label_filter)
    everything = {_key(s): s for s in whole}
    unfiltered = [_key(s) for s in ShardDataset(shards, seed=3, with_flow_source=False)]
    assert list(everything) == [k for k in unfiltered if k in everything]  # same order, less
    assert 0.2 * len(raw) < len(everything) < 0.8 * len(raw)
    taken: list[Key] = []
    stats = FilterStats()
    for rank in range(2):
        dataset = ShardDataset(shards, seed=3, split=split, rank=rank, world_size=2,
                               with_flow_source=False, label_filter=label_filter)  # fmt: skip
        dataset = pickle.loads(pickle.dumps(dataset))  # as a DataLoader worker receives it
        for worker in range(2):
            monkeypatch.setattr(partition, "_consumer", lambda w=worker: (w, 2))
            for sample in dataset:
                taken.append(_key(sample))
                assert torch.equal(sample["point_I"], everything[_key(sample)]["point_I"])
            stats = stats + dataset.filter_stats()
    assert len(taken) == len(set(taken))  # no overlap
    assert set(taken) == set(everything)  # no loss
    assert stats == whole.filter_stats()  # the consumers' counts add up


def test_dataloader_workers_read_the_kept_rows_once(train_shards, thresholds) -> None:
    _, shards = train_shards
    label_filter = LabelFilter(**thresholds, offsets=(0, 2), min_points=20)
    dataset = ShardDataset(shards, seed=1, split="rows", label_filter=label_filter)
    assert len(pickle.dumps(dataset)) < 20_000
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate)
    seen = [(m["shard"], m["row"]) for batch in loader for m in batch["meta"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == {_key(s) for s in _filtered(shards, label_filter)}


def _v1_copy(shards: Path, out: Path) -> Path:
    """A copy of ``shards`` whose instance files are rewritten with the v1 schema (no quality)."""
    shutil.copytree(shards, out)
    v1 = load_parquet_schema("instances", 1)
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text())
    entries = {e["file"]: e for e in info["files"]}
    for path in list_shards(str(out), "instances"):
        pq.write_table(pq.read_table(path).select(v1.names).cast(v1), path)
        assert file_schema_version(pq.read_schema(path)) == 1
        entry = entries[os.path.basename(path)]  # as an older dptrack recorded it
        entry["sha256"], entry["bytes"] = file_digest(path)
    info_path.write_text(json.dumps(info))
    return out


def test_a_quality_filter_on_a_v1_folder_is_refused_clearly(train_shards, tmp_path) -> None:
    _, shards = train_shards
    old = _v1_copy(shards, tmp_path / "v1")
    assert len(list(ShardDataset(old, shuffle=False, with_flow_source=False))) > 0
    kept = _filtered(old, LabelFilter(offsets=(0, 1)))  # offset is a v1 column
    assert kept and all(abs(s["meta"]["offset"]) <= 1 for s in kept)
    for label_filter, column in ((LabelFilter(max_fb_error=1.0), "dp_fb_error"),
                                 (LabelFilter(min_photo=0.5), "dp_photo"),
                                 (LabelFilter(min_pckh=0.5), "pckh")):  # fmt: skip
        with pytest.raises(ValueError) as err:
            ShardDataset(old, label_filter=label_filter)
        message = str(err.value)
        assert str(old) in message and repr(column) in message, message
        assert "schema v1" in message and "dptrack-build run" in message, message
    # A v1 stage-II folder is refused when the trainer is built, before stage I trains.
    config = TrainConfig(shards=(str(shards),), finetune_shards=(str(old),), finetune_steps=1,
                         out=str(tmp_path / "paced"), gt_propagation=True, max_fb_error=1.0,
                         stacks=1, channels=8, depth=2, stem_stride=2)  # fmt: skip
    with pytest.raises(ValueError, match="'dp_fb_error'") as err:
        Trainer(config)
    assert str(old) in str(err.value)
    args = ["--shards", str(old), "--out", str(tmp_path / "run"), "--steps", "1",
            "--gt-propagation", "--min-pckh", "0.5", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 1, result.output
    assert "'pckh'" in result.output and "dptrack-build run" in result.output


def test_pairs_filter_by_offset_only(train_pairs) -> None:
    offsets = [s["meta"]["offset"] for s in PairDataset(train_pairs, shuffle=False)]
    kept = list(PairDataset(train_pairs, shuffle=False, label_filter=LabelFilter(offsets=[1])))
    assert 0 < len(kept) == sum(abs(k) == 1 for k in offsets) < len(offsets)
    with pytest.raises(ValueError, match="pairs carry no labels"):
        PairDataset(train_pairs, label_filter=LabelFilter(max_fb_error=1.0))


def test_train_config_holds_the_filters_and_round_trips(train_shards, tmp_path) -> None:
    _, shards = train_shards
    base = {"shards": (str(shards),), "out": str(tmp_path), "gt_propagation": True}
    config = TrainConfig(**base, max_fb_error=1.5, min_photo=-0.2, min_pckh=0.5,
                         offsets=(2, 0, 1), min_points=3)  # fmt: skip
    assert config.offsets == (0, 1, 2)
    assert config.label_filter() == LabelFilter(1.5, -0.2, 0.5, (0, 1, 2), 3)
    as_json = json.loads(json.dumps(config.to_dict()))
    assert as_json["offsets"] == [0, 1, 2] and as_json["min_pckh"] == 0.5
    assert TrainConfig.from_dict(as_json) == config
    filter_keys = ("max_fb_error", "min_photo", "min_pckh", "offsets", "min_points")
    legacy = {k: v for k, v in as_json.items() if k not in filter_keys}  # a config.json of before
    assert not TrainConfig.from_dict(legacy).label_filter().active
    with pytest.raises(ValueError, match="--gt-propagation"):
        TrainConfig(**{**base, "gt_propagation": False}, offsets=(0, 1))
    with pytest.raises(ValueError, match="min_photo"):
        TrainConfig(**base, min_photo=2.0)
    # The supervised stream is filtered; the equivariance pairs and evaluation are not.
    real = TrainConfig(**base, equivariance="real", max_fb_error=1.0, offsets=(0, 1))
    streams = build_streams(real, real.shards, seed=0)
    assert streams["supervised"].dataset.label_filter == real.label_filter()
    assert not streams["pairs"].dataset.label_filter.active


def test_cli_records_the_filters_and_resumes_exactly(train_shards, tmp_path, thresholds) -> None:
    _, shards = train_shards
    flags = ["--gt-propagation", "--max-fb-error", str(thresholds["max_fb_error"]),
             "--min-photo", str(thresholds["min_photo"]), "--min-pckh", "0.8",
             "--offsets", "0,1,2", "--min-points", "10"]  # fmt: skip

    def run(out: str, steps: int, *more: str) -> None:
        args = ["--shards", str(shards), "--out", str(tmp_path / out), "--steps", str(steps),
                "--stacks", "1", "--channels", "8", "--depth", "2", "--stem-stride", "2",
                "--batch-size", "2", "--losses", "part_sparse,uv", "--checkpoint-every", "2",
                "--no-progress", *flags, *more]  # fmt: skip
        result = CliRunner().invoke(train_command, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["step"] == steps

    run("straight", 4)
    saved = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert saved["max_fb_error"] == thresholds["max_fb_error"]
    assert saved["min_photo"] == thresholds["min_photo"]
    assert (saved["min_pckh"], saved["offsets"], saved["min_points"]) == (0.8, [0, 1, 2], 10)
    assert TrainConfig.from_dict(saved).label_filter().offsets == (0, 1, 2)
    run("resumed", 2)
    run("resumed", 4, "--resume")
    straight, resumed = (
        torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=False)
        for name in ("straight", "resumed")
    )
    assert straight["streams"] == resumed["streams"]
    for key, value in straight["model"].items():
        assert torch.allclose(value.float(), resumed["model"][key].float(), atol=1e-6), key

    usage = CliRunner().invoke(train_command, ["--help"]).output
    for text in ("--max-fb-error PX", "pixels", "--min-photo ZNCC", "-1..1", "--min-pckh P",
                 "PCKh", "--offsets K[,K...]", "|offset|", "--min-points N"):  # fmt: skip
        assert text in usage, text
    bad = CliRunner().invoke(train_command, ["--shards", str(shards), "--out", "x",
                                             "--offsets", "0,a"])  # fmt: skip
    assert bad.exit_code == 2 and "comma-separated" in bad.output
    no_gt = CliRunner().invoke(train_command, ["--shards", str(shards), "--out", str(tmp_path),
                                               "--offsets", "0,1"])  # fmt: skip
    assert no_gt.exit_code == 1 and "--gt-propagation" in no_gt.output
