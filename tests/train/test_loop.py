"""The training loop: it learns, checkpoints, resumes exactly, runs two stages, logs and plots."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import MISSING, fields, replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dptrack_pipeline.cli.train import main
from dptrack_pipeline.cli.train import train as train_command
from dptrack_pipeline.train.config import TrainConfig
from dptrack_pipeline.train.dataset import ShardDataset
from dptrack_pipeline.train.loop import Trainer
from dptrack_pipeline.train.metrics import read_metrics

TINY = {"stacks": 2, "channels": 16, "depth": 2, "stem_stride": 2, "batch_size": 4}


def _config(shards: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(shards=(str(shards),), out=str(out), **{**TINY, **kw})


def _batches_per_epoch(shards: Path, include: str, batch_size: int) -> int:
    return len(list(ShardDataset(shards, include=include, with_flow_source=False))) // batch_size


def _png_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from a PNG's signature and IHDR chunk (fails if it is not a PNG)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    return struct.unpack(">II", head[16:24])


def test_twenty_steps_lower_the_loss_and_write_checkpoints(train_shards, tmp_path) -> None:
    synth, shards = train_shards
    run = tmp_path / "run"
    config = _config(
        shards, run, steps=20, log_every=1, checkpoint_every=10, lr=1e-2,
        gt_propagation=True, equivariance="real", val_shards=(str(shards),), truth=str(synth),
    )  # fmt: skip
    trainer = Trainer(config)
    result = trainer.run(progress=False)
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints", "config.json", "metrics.jsonl", "metrics.png"
    ]  # fmt: skip

    # metrics.jsonl: one train line per step, every term finite and in its range, then one eval.
    records = read_metrics(str(run / "metrics.jsonl"))
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 21))
    assert {r["stage"] for r in records} == {1}
    terms = ("part_sparse", "part_dense", "uv", "equivariance")
    for r in train:
        assert set(r) == {"step", "stage", "kind", "samples_per_s", "loss", *terms}, r
        assert all(math.isfinite(r[k]) and r[k] >= 0 for k in ("loss", *terms)), r
        assert r["loss"] == pytest.approx(sum(r[k] for k in terms), rel=1e-5)
        assert r["uv"] <= 2 * TINY["stacks"]  # U + V smooth-L1 of values in [0, 1], per stack
        assert r["equivariance"] <= 2.0  # 1 - cos, weight 1
        assert r["samples_per_s"] > 0
    first = train[0]  # at initialisation: near-uniform 25-way CE in each of the 2 stacks
    assert first["part_sparse"] == pytest.approx(2 * math.log(25), abs=1.5)
    assert first["equivariance"] > 0

    def mean(key: str, rows: list[dict]) -> float:
        return sum(r[key] for r in rows) / len(rows)

    assert mean("loss", train[-5:]) < 0.9 * mean("loss", train[:5])
    assert mean("part_dense", train[-5:]) < 0.8 * mean("part_dense", train[:5])
    evaluation = records[-1]
    assert (evaluation["kind"], evaluation["step"]) == ("eval", 20)
    assert evaluation["num_points"] > 100
    ratios = [evaluation[f"within_{cm}cm"] for cm in (5, 10, 20)]
    assert 0 <= ratios[0] <= ratios[1] <= ratios[2] <= 100  # % of points, nested thresholds
    assert 0 <= evaluation["part_accuracy"] <= 100
    scores = {k: v for k, v in evaluation.items() if k not in ("step", "stage", "kind")}
    assert json.dumps(result, sort_keys=True) == json.dumps(scores, sort_keys=True)

    # Checkpoints: the right step, stage, config and stream positions; last.pt is the final one.
    folder = run / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "last.pt", "step-0000010.pt", "step-0000020.pt"
    ]  # fmt: skip
    per_epoch = {
        "supervised": _batches_per_epoch(shards, "all", TINY["batch_size"]),
        "pairs": _batches_per_epoch(shards, "propagated", TINY["batch_size"]),
    }
    for name, step in (("step-0000010.pt", 10), ("step-0000020.pt", 20), ("last.pt", 20)):
        state = torch.load(folder / name, weights_only=False)
        assert (state["step"], state["stage"]) == (step, 1), name
        assert TrainConfig.from_dict(state["config"]) == config
        assert set(state["streams"]) == set(per_epoch)
        for stream, position in state["streams"].items():
            assert position["epoch"] * per_epoch[stream] + position["consumed"] == step, name
        adam_steps = {int(s["step"]) for s in state["optimizer"]["state"].values()}
        assert adam_steps == {step}, name
    final = torch.load(folder / "last.pt", weights_only=False)
    restored = Trainer(replace(config, out=str(tmp_path / "restored")))
    restored.model.load_state_dict(final["model"])
    for (key, a), b in zip(
        trainer.model.state_dict().items(), restored.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key

    # config.json is the configuration; metrics.png is a real PNG of the plot's size.
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) == config
    assert _png_size(run / "metrics.png") == (990, 360)  # figsize (11, 4) at 90 dpi
    assert (run / "metrics.png").stat().st_size > 1000


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
    result = CliRunner().invoke(train_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["step"] == 3
    more = [a if a != "3" else "5" for a in args] + ["--resume"]
    result = CliRunner().invoke(train_command, more, catch_exceptions=False)
    assert json.loads(result.output.strip().splitlines()[-1])["step"] == 5
    bad = CliRunner().invoke(train_command, [*args, "--losses", "part_sparse,xyz"])
    assert bad.exit_code == 2 and "unknown ['xyz']" in bad.output
    assert "Examples" in CliRunner().invoke(train_command, ["--help"]).output


def test_cli_defaults_are_the_config_defaults_and_main_runs_the_command(tmp_path, capsys) -> None:
    context = train_command.make_context("dptrack-train", ["--shards", str(tmp_path), "--out", "o"])
    parsed = {**context.params, "stem_stride": int(context.params["stem_stride"])}
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    assert len(defaults) >= 25 and set(defaults) <= set(parsed)
    assert {name: parsed[name] for name in defaults} == defaults
    assert train_command.name == "train"  # as it appears when attached to another group
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: dptrack-train ")
