"""Packaging: what an installed worker (e.g. a Dataflow container) gets."""

from __future__ import annotations

from pathlib import Path


def test_every_package_ships() -> None:
    """pyproject.toml lists packages explicitly; a new subpackage must be added there."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for base in ("dptrack_pipeline", "pipelines")
        for init in (root / base).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
