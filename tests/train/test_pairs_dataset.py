"""The pairs dataset (``dptrack-build pairs`` shards in PyTorch) and its use by ``dptrack-train``:
one sample per pair row, partitioning, the flow convention, collate, filtering, clear errors, and
training with ``--equivariance real --pairs``.

The pairs come from the ``train_pairs`` fixture: two clips of a texture translating by
``pair_step`` px per frame, cropped to the centred 96x96 square resampled to 32 px, so the true
crop flow of a pair is ``offset * PAIR_STEP * 32 / 96`` everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import DataLoader

from dptrack_pipeline.cli.train import train as train_command
from dptrack_pipeline.shards.reader import DenseReader, read_pairs
from dptrack_pipeline.train import partition
from dptrack_pipeline.train.config import TrainConfig
from dptrack_pipeline.train.dataset import PairDataset, ShardDataset
from dptrack_pipeline.train.loop import Trainer
from dptrack_pipeline.train.metrics import read_metrics
from dptrack_pipeline.train.samples import collate

TINY = {"stacks": 2, "channels": 16, "depth": 2, "stem_stride": 2, "batch_size": 4}
CROP_SCALE = 32 / 96  # crop pixels per frame pixel (centred 96x96 box -> 32 px)


def _key(sample: dict) -> tuple[str, int]:
    return sample["meta"]["shard"], sample["meta"]["row"]


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.numpy().transpose(1, 2, 0).astype(np.float32)


def test_one_sample_per_pair_row_with_its_crops_and_flow(train_pairs: Path) -> None:
    rows = read_pairs(str(train_pairs)).to_pylist()
    dataset = PairDataset(train_pairs, shuffle=False)
    samples = list(dataset)
    assert len(samples) == len(rows) == dataset.num_rows > 20
    assert len({_key(s) for s in samples}) == len(rows)
    size = 32
    with DenseReader(str(train_pairs)) as dense:
        # Unshuffled order is shard then row order, the order of read_pairs.
        for sample, row in zip(samples, rows, strict=True):
            assert sample["image"].shape == sample["flow_source_image"].shape == (3, size, size)
            assert sample["image"].dtype == sample["flow_source_image"].dtype == torch.uint8
            assert sample["flow"].shape == (size, size, 2) and sample["flow"].dtype == torch.float32
            assert sample["flow_valid"].shape == (size, size)
            assert sample["flow_valid"].dtype == torch.bool
            assert sample["has_flow"] is True
            assert sample["points"].shape == (0, 2) and sample["points"].dtype == torch.float32
            assert sample["point_I"].shape == (0,) and sample["point_I"].dtype == torch.int64
            assert sample["point_U"].shape == sample["point_V"].shape == (0,)
            assert sample["part_mask"].shape == (size, size)
            assert (sample["part_mask"] == -1).all()
            crop_b = dense.crop(row["dense_file"], row["crop_b_index"])
            crop_a = dense.crop(row["dense_file"], row["crop_a_index"])
            assert np.array_equal(_hwc(sample["image"]), crop_b)  # B is the image ...
            assert np.array_equal(_hwc(sample["flow_source_image"]), crop_a)  # ... A the source
            meta = sample["meta"]
            assert (meta["video_id"], meta["frame_index"], meta["source_frame_index"]) == (
                row["video_id"], row["frame_b"], row["frame_a"],
            )  # fmt: skip
            assert (meta["offset"], meta["track_id"], meta["annotation_id"]) == (
                row["offset"], row["person"], -1,
            )  # fmt: skip
            assert meta["estimator"] == row["estimator"] and meta["folder"] == str(train_pairs)
    assert {s["meta"]["video_id"] for s in samples} == {"left", "right"}


@pytest.mark.parametrize("split", ["auto", "files", "rows"])
@pytest.mark.parametrize(("world", "workers"), [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)])
def test_consumers_partition_the_pairs(train_pairs, monkeypatch, split, world, workers) -> None:
    everything = PairDataset(train_pairs)
    all_rows = {(i, r) for i, f in enumerate(everything.files) for r in range(f.num_rows)}
    assert [bool(f.num_rows) for f in everything.files] == [True, True], "fixture: 2 full shards"
    taken: list[tuple[int, int]] = []
    idle = 0
    for rank in range(world):
        dataset = PairDataset(train_pairs, split=split, rank=rank, world_size=world, seed=3)
        for worker in range(workers):
            monkeypatch.setattr(partition, "_consumer", lambda w=worker: (w, workers))
            mine = [(i, int(r)) for i, rows in dataset.assignment() for r in rows]
            taken += mine
            idle += not mine
    assert len(taken) == len(set(taken))  # no overlap
    assert set(taken) == all_rows  # no loss
    # Whole files per consumer leave consumers idle when there are fewer files than consumers.
    files_split = split == "files" or (split == "auto" and len(everything.files) >= world * workers)
    assert idle == (max(0, world * workers - len(everything.files)) if files_split else 0)


def test_ranks_and_dataloader_workers_read_every_pair_once(train_pairs: Path) -> None:
    total = PairDataset(train_pairs).num_rows
    by_rank = [
        [_key(s) for s in PairDataset(train_pairs, split="rows", rank=r, world_size=3, seed=2)]
        for r in range(3)
    ]
    seen = [key for keys in by_rank for key in keys]
    assert all(by_rank) and len(seen) == len(set(seen)) == total
    loader = DataLoader(
        PairDataset(train_pairs, seed=1, split="rows"), batch_size=4, num_workers=2,
        collate_fn=collate,
    )  # fmt: skip
    seen = [(m["shard"], m["row"]) for batch in loader for m in batch["meta"]]
    assert len(seen) == len(set(seen)) == total


def test_crop_b_sampled_at_p_plus_flow_looks_like_crop_a(train_pairs: Path, pair_step) -> None:
    grid = np.arange(32, dtype=np.float32)
    flow_errors, warped_errors, unwarped_errors = [], [], []
    for sample in PairDataset(train_pairs, shuffle=False):
        flow, valid = sample["flow"].numpy(), sample["flow_valid"].numpy()
        assert valid.mean() > 0.5
        truth = np.array(pair_step, dtype=np.float32) * CROP_SCALE * sample["meta"]["offset"]
        flow_errors.append(np.median(np.abs(flow[valid] - truth)))
        crop_a, crop_b = _hwc(sample["flow_source_image"]), _hwc(sample["image"])
        warped = cv2.remap(crop_b, grid[None, :] + flow[..., 0], grid[:, None] + flow[..., 1],
                           cv2.INTER_LINEAR)  # fmt: skip
        warped_errors.append(np.abs(warped - crop_a)[valid].mean())
        unwarped_errors.append(np.abs(crop_b - crop_a)[valid].mean())
    assert np.max(flow_errors) < 0.1  # crop pixels: the stored flow is the known translation
    assert np.median(warped_errors) < 8.0  # uint8 levels (bilinear resampling of a fine texture)
    assert np.median(warped_errors) < 0.4 * np.median(unwarped_errors)
    assert all(w < u for w, u in zip(warped_errors, unwarped_errors, strict=True))


def test_collate_batches_pairs_unchanged(train_pairs: Path) -> None:
    samples = list(PairDataset(train_pairs, shuffle=False))[:5]
    batch = collate(samples)
    assert batch["image"].shape == batch["flow_source_image"].shape == (5, 3, 32, 32)
    assert batch["has_flow"].all()
    assert batch["points"].shape == (5, 1, 2) and (batch["point_I"] == -1).all()
    assert (batch["part_mask"] == -1).all()
    for b, s in enumerate(samples):
        assert torch.equal(batch["image"][b], s["image"])
        assert torch.equal(batch["flow_source_image"][b], s["flow_source_image"])
        assert torch.equal(batch["flow"][b], s["flow"])
        assert torch.equal(batch["flow_valid"][b], s["flow_valid"])
    assert batch["offset"].tolist() == [s["meta"]["offset"] for s in samples]


def test_min_valid_skips_pairs_below_it(train_pairs: Path) -> None:
    fractions = read_pairs(str(train_pairs), columns=["valid_fraction"]).column(0).to_pylist()
    threshold = max(fractions)
    kept = list(PairDataset(train_pairs, min_valid=threshold, shuffle=False))
    assert 0 < len(kept) < len(fractions)  # the fixture's pairs differ in valid fraction
    assert len(kept) == sum(f >= threshold for f in fractions)
    assert all(s["flow_valid"].float().mean() >= threshold - 1e-6 for s in kept)
    assert len(list(PairDataset(train_pairs, min_valid=0.0))) == len(fractions)
    with pytest.raises(ValueError, match="min_valid"):
        PairDataset(train_pairs, min_valid=1.5)


def test_wrong_folders_are_refused_with_what_they_hold(train_shards, train_pairs, tmp_path) -> None:
    _, run_folder = train_shards
    with pytest.raises(FileNotFoundError, match=r"no pairs-\*\.parquet") as err:
        PairDataset(run_folder)
    assert "instances-*.parquet" in str(err.value) and "dptrack-build run" in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"no instances-\*\.parquet") as err:
        ShardDataset(train_pairs)
    assert "pairs-*.parquet" in str(err.value) and "PairDataset" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no shard files"):
        PairDataset(tmp_path)


def _config(shards: Path, pair_folder: Path, out: Path, **kw) -> TrainConfig:
    base = {"shards": (str(shards),), "pairs": (str(pair_folder),), "out": str(out),
            "equivariance": "real", "log_every": 1, **TINY}  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_trainer_takes_equivariance_pairs_from_the_pairs_folder(
    train_shards, train_pairs, tmp_path
) -> None:
    _, shards = train_shards
    trainer = Trainer(_config(shards, train_pairs, tmp_path / "run", steps=3))
    trainer.run(progress=False)
    stream = trainer.streams["pairs"]
    assert isinstance(stream.dataset, PairDataset) and stream.dataset.folders == [str(train_pairs)]
    assert stream.state() == {"epoch": 0, "consumed": 3}  # one pairs batch per step
    records = [r for r in read_metrics(str(tmp_path / "run" / "metrics.jsonl"))]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(0 < r["equivariance"] < 2 for r in records)  # 1 - cos, on real pairs
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["pairs"] == [str(train_pairs)]
    assert TrainConfig.from_dict(saved) == trainer.config
    small = {"image": torch.zeros(4, 3, 16, 16, dtype=torch.uint8)}  # pairs of another size
    stream.next = lambda: small
    with pytest.raises(ValueError, match="--crop-size 32"):
        trainer.train_step()
    without = Trainer(_config(shards, train_pairs, tmp_path / "x", steps=1, pairs=()))
    without._enter_stage(1, (str(shards),), 1e-3)
    assert not isinstance(without.streams["pairs"].dataset, PairDataset)  # propagated rows


def test_resume_with_pairs_continues_exactly(train_shards, train_pairs, tmp_path) -> None:
    _, shards = train_shards
    straight = Trainer(_config(shards, train_pairs, tmp_path / "a", steps=4, checkpoint_every=2))
    straight.run(progress=False)
    Trainer(_config(shards, train_pairs, tmp_path / "b", steps=2)).run(progress=False)
    resumed = Trainer(_config(shards, train_pairs, tmp_path / "b", steps=4, checkpoint_every=2))
    resumed.run(resume=True, progress=False)
    assert resumed.step == 4
    assert resumed.streams["pairs"].state() == straight.streams["pairs"].state()
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_cli_trains_on_pairs_and_refuses_pairs_without_real_flow(
    train_shards, train_pairs, tmp_path
) -> None:
    _, shards = train_shards
    args = ["--shards", str(shards), "--pairs", str(train_pairs), "--out", str(tmp_path / "cli"),
            "--steps", "2", "--stacks", "1", "--channels", "8", "--depth", "2",
            "--stem-stride", "2", "--batch-size", "2", "--losses", "part_sparse",
            "--log-every", "1", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(train_command, [*args, "--equivariance", "real"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["step"] == 2
    records = read_metrics(str(tmp_path / "cli" / "metrics.jsonl"))
    assert [r["step"] for r in records] == [1, 2] and all(r["equivariance"] > 0 for r in records)
    config = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert config["pairs"] == [str(train_pairs)] and config["equivariance"] == "real"
    for equivariance in ("none", "tps"):
        bad = CliRunner().invoke(train_command, [*args, "--equivariance", equivariance])
        assert bad.exit_code == 2
        assert "--pairs" in bad.output and "--equivariance real" in bad.output
    with pytest.raises(ValueError, match="pairs"):
        _config(shards, train_pairs, tmp_path, equivariance="tps")
    run_folder = CliRunner().invoke(
        train_command, [*args, "--equivariance", "real", "--pairs", str(shards)]
    )
    assert run_folder.exit_code == 1 and "no pairs-*.parquet" in run_folder.output
    usage = CliRunner().invoke(train_command, ["--help"]).output
    assert "--pairs" in usage and "dptrack-build pairs" in usage
