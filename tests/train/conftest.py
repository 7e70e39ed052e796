"""Shards for the training tests: a small synthetic set run through ``dptrack-build run``, and
flow pairs of translating textures run through ``dptrack-build pairs``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main


@pytest.fixture(scope="session")
def train_shards(
    tmp_path_factory: pytest.TempPathFactory, build_synth_shards: Callable[..., tuple[Path, Path]]
) -> tuple[Path, Path]:
    """``(synth folder, shard folder)``: 2 synthetic videos of 14 frames, 96x128, labelled every
    4th frame, through ``dptrack-build run``: crops of 32 px, DIS flow, 3 shards."""
    synth_args = ["--videos", "2", "--frames", "14", "--width", "128", "--height", "96",
                  "--seed", "11", "--label-every", "4"]  # fmt: skip
    run_args = ["--crop-size", "32", "--num-shards", "3"]
    return build_synth_shards(tmp_path_factory.mktemp("train_shards"), synth_args, run_args)


PAIR_STEP = (2, 1)
"""Frame-pixel motion ``(dx, dy)`` of the texture per frame in :func:`build_pairs`' clips."""


def write_translating_clip(folder: Path, seed: int, frames: int = 8) -> None:
    """A frame folder of 96x128 PNGs: a smooth random texture moving by :data:`PAIR_STEP` px per
    frame (frame ``t`` at ``(x, y)`` shows the texture at ``(x, y) - t * PAIR_STEP``), so the
    true flow from frame ``a`` to ``b`` is ``(b - a) * PAIR_STEP`` everywhere."""
    dx, dy = PAIR_STEP
    margin_x, margin_y = dx * frames, dy * frames
    texture = np.random.default_rng(seed).uniform(0, 255, (96 + margin_y, 128 + margin_x, 3))
    texture = cv2.GaussianBlur(texture.astype(np.float32), (0, 0), 2.5)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    folder.mkdir(parents=True)
    for t in range(frames):
        y0, x0 = margin_y - dy * t, margin_x - dx * t
        assert cv2.imwrite(str(folder / f"{t:03d}.png"), texture[y0 : y0 + 96, x0 : x0 + 128])


def build_pairs(root: Path) -> Path:
    """A ``dptrack-build pairs`` folder of two 8-frame translating clips (``left``, ``right``):
    crops of 32 px (default centred boxes), offsets +-1, +-2, DIS flow, 2 shards."""
    videos, out = root / "videos", root / "pairs"
    for seed, name in enumerate(("left", "right")):
        write_translating_clip(videos / name, seed=seed)
    args = ["pairs", "--videos", str(videos), "--out", str(out), "--crop-size", "32",
            "--offsets", "2", "--num-shards", "2", "--no-progress",
            "--runner", "FnApiRunner"]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def train_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pairs(tmp_path_factory.mktemp("train_pairs"))


@pytest.fixture(scope="session")
def pair_step() -> tuple[int, int]:
    """The texture motion per frame of the ``train_pairs`` clips, in frame pixels."""
    return PAIR_STEP
