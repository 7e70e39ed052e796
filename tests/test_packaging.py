"""Packaging: what an installed worker (e.g. a Dataflow container) gets."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_ships() -> None:
    """pyproject.toml lists packages explicitly; a new subpackage must be added there."""
    import tomllib

    root = ROOT
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for base in ("dptrack_pipeline", "pipelines")
        for init in (root / base).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in the package (lazy imports included)."""
    ours = {"dptrack_pipeline", "pipelines", "dptrack_schemas", "__future__"}
    found: dict[str, set[str]] = {}
    for base in ("dptrack_pipeline", "pipelines"):
        for path in (ROOT / base).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ours:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _normal(name: str) -> str:
    """A distribution name in PEP 503 form (``flow_vis`` and ``flow-vis`` are one name)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(specs: list[str]) -> set[str]:
    return {_normal(re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0]) for spec in specs}


def test_every_imported_third_party_module_is_declared() -> None:
    """A module the package imports must come from a distribution in pyproject.toml's
    dependencies and in requirements.txt (what an installed worker and make install get)."""
    import tomllib

    project = _declared(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements = _declared([line for line in lines if line.strip() and not line.startswith("#")])
    distributions = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"numpy", "apache_beam", "torch"} <= set(imports)
    undeclared = []
    for module, files in sorted(imports.items()):
        names = {_normal(d) for d in distributions.get(module, [module])}
        if not names & project or not names & requirements:
            undeclared.append(
                f"{module} (imported by {sorted(files)[0]}; distributions {sorted(names)})"
            )
    assert not undeclared, "declare in pyproject.toml and requirements.txt: " + "; ".join(
        undeclared
    )
