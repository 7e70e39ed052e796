"""Shared pytest fixtures and options.

* ``--runslow`` runs tests marked ``slow``; ``--device cuda`` runs tests marked ``gpu``.
* ``shared_data`` is the path of ``../shared/data`` (real data written by others). Tests that
  need it take the fixture and are skipped, with the reason, when it is absent (a user's clone).
  ``DPTRACK_SHARED_DATA`` overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("DPTRACK_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")
    parser.addoption("--device", default="cpu", help="device for gpu-marked tests (cpu|cuda)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow test: pass --runslow to run it")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device: pass --device cuda on a GPU machine")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and config.getoption("--device") != "cuda":
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (it sits beside the repo in CI only)")
    return path


@pytest.fixture(scope="session")
def flownet2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FlowNet2 checkpoint of random weights with exactly the public names and shapes.

    Written once per session (about 650 MB, a few seconds): it exercises the loader and the
    network end to end; its flows mean nothing.
    """
    from dptrack_pipeline.flow.flownet2.checkpoint import write_random_checkpoint

    path = tmp_path_factory.mktemp("flownet2") / "FlowNet2_random.pth.tar"
    write_random_checkpoint(str(path), seed=0)
    return path


# ---- shared helpers, appended below the original file (hence the late imports) --------------

import math  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402


def _reference_bilinear(field: np.ndarray, x: float, y: float) -> np.ndarray:
    """Textbook bilinear read of ``field`` ``(h, w, C)`` at ``(x, y)`` (pixel centres on integers,
    channel order kept), clamped to the border, in float64: ``(C,)``."""
    height, width = field.shape[:2]
    x = min(max(x, 0.0), width - 1.0)
    y = min(max(y, 0.0), height - 1.0)
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    ax, ay = x - x0, y - y0
    f = field.astype(np.float64)
    return (
        f[y0, x0] * (1 - ax) * (1 - ay)
        + f[y0, x1] * ax * (1 - ay)
        + f[y1, x0] * (1 - ax) * ay
        + f[y1, x1] * ax * ay
    )


@pytest.fixture(scope="session")
def reference_bilinear() -> Callable[[np.ndarray, float, float], np.ndarray]:
    """The direct bilinear formula the samplers (flow sampling, map warps, loss sampling) are
    checked against: ``reference_bilinear(field, x, y)``, see :func:`_reference_bilinear`."""
    return _reference_bilinear


def _build_synth_shards(
    root: Path, synth_args: Sequence[str] = (), run_args: Sequence[str] = ()
) -> tuple[Path, Path]:
    """``dptrack-build synth ROOT/synth *synth_args`` then ``dptrack-build run`` on it into
    ``ROOT/shards`` (``--no-progress --runner FnApiRunner *run_args``); asserts both succeed and
    returns ``(synth folder, shard folder)``."""
    from dptrack_pipeline.cli import main  # here, not at the top: conftest stays cheap to load

    synth, shards = root / "synth", root / "shards"
    commands = [
        ["synth", str(synth), *synth_args],
        ["run", "--annotations", str(synth / "annotations.json"), "--frames-root", str(synth),
         "--out", str(shards), "--no-progress", "--runner", "FnApiRunner", *run_args],
    ]  # fmt: skip
    for args in commands:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return synth, shards


@pytest.fixture(scope="session")
def build_synth_shards() -> Callable[..., tuple[Path, Path]]:
    """Build a synthetic dataset and its shards in-process:
    ``build_synth_shards(root, synth_args, run_args) -> (synth folder, shard folder)``, see
    :func:`_build_synth_shards`."""
    return _build_synth_shards
