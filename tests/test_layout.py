"""The house rules of the code's layout, checked on every module (see README "How the code is laid
out"): imports go one way, the two jobs never import each other, and no module grows past 400
lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 400

ENGINE = {
    "structures",
    "settings",
    "schedule",
    "crops",
    "rejects",
    "pictures",
    "flow",
    "frames",
    "formats",
    "shards",
}
"""The shared engine: both jobs build on it; it imports no job, no Beam layer, no CLI."""

ALLOWED = {
    "engine": {"engine"},
    "propagate": {"engine", "propagate"},
    "pairs": {"engine", "pairs"},
    "synth": {"engine", "synth"},
    "train": {"engine", "train", "synth"},
    "beam": {"engine", "beam", "propagate", "pairs"},
    "pipelines": {"engine", "beam", "propagate", "pairs", "pipelines"},
    "report": {"engine", "report", "propagate", "pairs"},
    "export": {"engine", "export", "train"},
    "cli": None,  # the top: anything
    "perf": None,  # benchmark drivers, beside the CLI: they run the jobs end to end
}
"""Which parts of ``dptrack_pipeline`` each part may import (``pipelines`` is the top-level
package of Beam graphs; it may import no CLI)."""


def _modules() -> list[Path]:
    return sorted(
        p
        for root in ("dptrack_pipeline", "pipelines", "benchmarks")
        for p in (REPO / root).rglob("*.py")
        if "__pycache__" not in p.parts
    )


def _part(path: Path) -> str:
    rel = path.relative_to(REPO).parts
    if rel[0] == "pipelines":
        return "pipelines"
    if rel[0] != "dptrack_pipeline" or len(rel) == 2 and rel[1] == "__init__.py":
        return "other"
    name = rel[1].removesuffix(".py")
    return "engine" if name in ENGINE else name


def _imports(path: Path) -> set[tuple[str, int]]:
    """``(imported module, line)`` for every import of ``dptrack_pipeline``/``pipelines``,
    including those inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module, node.lineno))
    return {(m, n) for m, n in found if m.split(".")[0] in ("dptrack_pipeline", "pipelines")}


def _target(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "pipelines":
        return "pipelines"
    if len(parts) == 1:
        return "other"
    return "engine" if parts[1] in ENGINE else parts[1]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines; split it by concern"


def test_imports_go_one_way() -> None:
    """cli -> pipelines -> beam -> job packages -> shared engine, never back, and neither job
    package (propagate, pairs) imports the other."""
    broken = []
    for path in _modules():
        part = _part(path)
        allowed = ALLOWED.get(part)
        if allowed is None:
            continue
        for module, line in sorted(_imports(path)):
            target = _target(module)
            if target != "other" and target not in allowed:
                broken.append(f"{path.relative_to(REPO)}:{line} ({part}) imports {module}")
    assert not broken, "imports against the layering:\n" + "\n".join(broken)


def test_every_part_is_placed() -> None:
    """A new package must be given a place in the layering above."""
    parts = {_part(p) for p in _modules() if p.parts[-3:-1] != ("benchmarks",)}
    unplaced = parts - set(ALLOWED) - {"other"}
    assert not unplaced, f"add {sorted(unplaced)} to ENGINE or ALLOWED in tests/test_layout.py"
