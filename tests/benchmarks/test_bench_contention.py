"""``benchmarks/bench_contention.py``: a tiny run on the real 720p video (3 pairs, a few s).

It checks that the script reads the video, times DIS alone and beside each helper, and prints a
finite slowdown per helper CPU-second; not what the numbers are.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest


def test_smoke_run(run_bench, shared_data: Path) -> None:
    video = shared_data / "video" / "street_people_720p.avi"
    if not video.exists():
        pytest.skip(f"{video} is absent")
    done = run_bench("bench_contention", "--video", str(video), "--pairs", "3", timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"DIS alone +: +\d+\.\d ms/pair", done.stdout), done.stdout
    slowdowns = re.findall(r"with (\w+) +helper: .* -> +(\S+) s of DIS wall", done.stdout)
    assert [name for name, _ in slowdowns] == ["remap", "numpy"], done.stdout
    assert all(math.isfinite(float(value)) for _, value in slowdowns), done.stdout


def test_a_missing_video_is_a_clear_error(run_bench, tmp_path: Path) -> None:
    done = run_bench("bench_contention", "--video", str(tmp_path / "none.avi"), timeout=60)
    assert done.returncode != 0
    assert "not found" in done.stderr
