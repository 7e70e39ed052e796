"""Fixtures of the synthetic-data tests: one small dataset on disk, shared by the module tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dptrack_pipeline.synth.dataset import generate_dataset

SMALL = {"videos": 2, "frames": 14, "seed": 3, "width": 320, "height": 240, "people": 2}
"""Two videos of 14 frames: labelled frames 4 (flows to 1..7) and 12 (flows to 9..13)."""


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``(folder, summary)`` of a small synthetic dataset written once per test session."""
    out = tmp_path_factory.mktemp("synth_small")
    summary = generate_dataset(str(out), **SMALL)
    return out, summary
