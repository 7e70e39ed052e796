"""A small ``run`` folder for the export tests: 2 synthetic videos of 14 frames, 96x128,
labelled every 4th frame, crops of 32 px, 2 shards, the measured checks (instances schema v2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def export_run(
    tmp_path_factory: pytest.TempPathFactory, build_synth_shards: Callable[..., tuple[Path, Path]]
) -> tuple[Path, Path]:
    """``(synth folder, run folder)``."""
    synth_args = ["--videos", "2", "--frames", "14", "--width", "128", "--height", "96",
                  "--seed", "5", "--label-every", "4"]  # fmt: skip
    run_args = ["--crop-size", "32", "--num-shards", "2"]
    return build_synth_shards(tmp_path_factory.mktemp("export_run"), synth_args, run_args)
