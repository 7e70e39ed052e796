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
