"""Checkpoint files: names, all-or-nothing writes through ``shards.atomic``, the resume guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dptrack_pipeline.train import checkpoint
from dptrack_pipeline.train.config import TrainConfig


def _state(step: int, **config) -> dict:
    config = TrainConfig(shards=("s",), out="o", **config).to_dict()
    return {"step": step, "weights": torch.full((3,), float(step)), "config": config}


def test_save_writes_the_step_file_and_last(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    assert checkpoint.latest_checkpoint(str(tmp_path)) is None
    path = checkpoint.save_checkpoint(str(tmp_path), _state(7))
    assert path == str(tmp_path / "checkpoints" / "step-0000007.pt")
    assert checkpoint.latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoints" / "last.pt")
    for name in ("step-0000007.pt", "last.pt"):
        loaded = checkpoint.load_checkpoint(str(tmp_path / "checkpoints" / name))
        assert loaded["step"] == 7 and torch.equal(loaded["weights"], torch.full((3,), 7.0))


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "checkpoints").mkdir()
    checkpoint.save_checkpoint(str(tmp_path), _state(1))

    def torch_save_then_die(obj: object, path: str) -> None:
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", torch_save_then_die)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(str(tmp_path), _state(2))
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "last.pt",
        "step-0000001.pt",
    ]  # no temporary file, no half-written step file
    assert checkpoint.load_checkpoint(str(tmp_path / "checkpoints" / "last.pt"))["step"] == 1


def test_resume_into_another_model_shape_is_refused() -> None:
    config = TrainConfig(shards=("s",), out="o", channels=16)
    checkpoint.check_resumable(_state(3, channels=16), config, "x.pt")
    with pytest.raises(ValueError, match="channels=32, this run 16"):
        checkpoint.check_resumable(_state(3, channels=32), config, "x.pt")
