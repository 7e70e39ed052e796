"""Fixtures for the scripts in ``benchmarks/``: import one as a module, or run it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO_ROOT / "benchmarks"


@pytest.fixture(scope="module")
def bench_script() -> Callable[[str], ModuleType]:
    """``bench_script("bench_reader")``: that script imported as a module (it is not in a
    package), so a test can call its ``main(argv)``."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="module")
def run_bench() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_bench("bench_flownet2", *args, timeout=...)``: the script run in a fresh
    interpreter from the repository root, output captured."""

    def run(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(BENCHMARKS / f"{name}.py"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
        )

    return run
