"""Shards for the training tests: a small synthetic set run through ``dptrack-build run``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main


def build_shards(root: Path, seed: int, videos: int = 2, frames: int = 14) -> tuple[Path, Path]:
    """``(synth folder, shard folder)``: 96x128 frames, crops of 32 px, DIS flow, 3 shards."""
    synth, shards = root / "synth", root / "shards"
    args = ["synth", str(synth), "--videos", str(videos), "--frames", str(frames)]
    args += ["--width", "128", "--height", "96", "--seed", str(seed), "--label-every", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--annotations",
            str(synth / "annotations.json"),
            "--frames-root",
            str(synth),
            "--out",
            str(shards),
            "--crop-size",
            "32",
            "--num-shards",
            "3",
            "--no-progress",
            "--runner",
            "FnApiRunner",
        ],  # fmt: skip
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return synth, shards


@pytest.fixture(scope="session")
def train_shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_shards(tmp_path_factory.mktemp("train_shards"), seed=11)
