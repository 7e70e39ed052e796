"""The training loop: it learns, checkpoints, resumes exactly, runs two stages, logs and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dptrack_pipeline.train.cli import main as train_main
from dptrack_pipeline.train.loop import TrainConfig, Trainer, read_metrics

TINY = {"stacks": 2, "channels": 16, "depth": 2, "stem_stride": 2, "batch_size": 4}


def _config(shards: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(shards=(str(shards),), out=str(out), **{**TINY, **kw})


def test_twenty_steps_lower_the_loss_and_write_checkpoints(train_shards, tmp_path) -> None:
    synth, shards = train_shards
    config = _config(
        shards, tmp_path / "run", steps=20, log_every=1, checkpoint_every=10, lr=1e-2,
        gt_propagation=True, equivariance="real", val_shards=(str(shards),), truth=str(synth),
    )  # fmt: skip
    result = Trainer(config).run(progress=False)
    records = read_metrics(str(tmp_path / "run" / "metrics.jsonl"))
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5
    assert all(r["equivariance"] >= 0 for r in records if r["kind"] == "train")
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["last.pt", "step-0000010.pt", "step-0000020.pt"]
    assert {"within_5cm", "within_10cm", "within_20cm", "part_accuracy"} <= set(result)
    assert records[-1]["kind"] == "eval" and records[-1]["num_points"] > 100
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["equivariance"] == "real" and saved["steps"] == 20


@pytest.mark.parametrize("equivariance", ["tps", "real"])
def test_resume_continues_exactly(train_shards, tmp_path, equivariance) -> None:
    _, shards = train_shards
    common = {"checkpoint_every": 4, "log_every": 1, "equivariance": equivariance}
    straight = Trainer(_config(shards, tmp_path / "a", steps=8, **common))
    straight.run(progress=False)
    # An "interrupted" run: 6 steps (checkpoint at 4 and 6), then resumed to 8.
    Trainer(_config(shards, tmp_path / "b", steps=6, **common)).run(progress=False)
    (tmp_path / "b" / "checkpoints" / "last.pt").unlink()
    state = torch.load(tmp_path / "b" / "checkpoints" / "step-0000004.pt", weights_only=False)
    torch.save(state, tmp_path / "b" / "checkpoints" / "last.pt")  # as if killed after step 5
    resumed = Trainer(_config(shards, tmp_path / "b", steps=8, **common))
    resumed.run(resume=True, progress=False)
    assert resumed.step == 8
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    steps = [r["step"] for r in read_metrics(str(tmp_path / "b" / "metrics.jsonl"))]
    assert steps == list(range(1, 9))  # lines after the checkpoint were replaced, not doubled


def test_two_stages(train_shards, tmp_path) -> None:
    _, shards = train_shards
    trainer = Trainer(
        _config(
            shards,
            tmp_path / "paced",
            steps=3,
            finetune_steps=2,
            log_every=1,
            finetune_shards=(str(shards),),
            finetune_union=True,
        )  # fmt: skip
    )
    trainer.run(progress=False)
    stages = [r["stage"] for r in read_metrics(str(tmp_path / "paced" / "metrics.jsonl"))]
    assert stages == [1, 1, 1, 2, 2]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert trainer.stages()[1][1] == (str(shards), str(shards))


def test_bad_configurations_are_refused(train_shards, tmp_path) -> None:
    _, shards = train_shards
    with pytest.raises(ValueError, match="unknown loss"):
        _config(shards, tmp_path, losses=("part", "uv"))
    with pytest.raises(ValueError, match="feature_level"):
        _config(shards, tmp_path, feature_level="middle")
    with pytest.raises(ValueError, match="nothing to train"):
        _config(shards, tmp_path, losses=())
    with pytest.raises(ValueError, match="too small"):
        Trainer(_config(shards, tmp_path / "x", depth=5, steps=1)).run(progress=False)


def test_cli_trains_and_resumes(train_shards, tmp_path) -> None:
    _, shards = train_shards
    args = ["--shards", str(shards), "--out", str(tmp_path / "cli"), "--steps", "3",
            "--stacks", "1", "--channels", "8", "--depth", "2", "--stem-stride", "2",
            "--batch-size", "2", "--equivariance", "tps", "--losses", "part_sparse,uv",
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(train_main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["step"] == 3
    more = [a if a != "3" else "5" for a in args] + ["--resume"]
    result = CliRunner().invoke(train_main, more, catch_exceptions=False)
    assert json.loads(result.output.strip().splitlines()[-1])["step"] == 5
    bad = CliRunner().invoke(train_main, [*args, "--losses", "part_sparse,xyz"])
    assert bad.exit_code == 2 and "unknown ['xyz']" in bad.output
    assert "Examples" in CliRunner().invoke(train_main, ["--help"]).output
