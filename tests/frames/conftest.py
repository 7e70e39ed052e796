"""Fixtures of the frame-source tests: the shared PoseTrack frame folder (10 JPEGs and an mp4)."""

from __future__ import annotations

from pathlib import Path

import pytest

VIDEO_DIR = ("posetrack18", "videos", "000001_mpiinew_test")
"""Under ``shared_data``: ``000000.jpg`` .. ``000009.jpg`` (1280x720) and
``000001_mpiinew_test.mp4`` holding only the first 5 of those frames."""


@pytest.fixture
def posetrack_video(shared_data: Path) -> Path:
    """The folder of :data:`VIDEO_DIR` (skipped when the shared data is absent)."""
    return shared_data.joinpath(*VIDEO_DIR)
