"""Estimator plugins: entry points of the group ``dptrack.estimators`` found lazily, once per
process; built-in names kept; a broken plugin an error only when its name is asked for.

The unit tests put hand-written distributions (a ``.dist-info`` with ``entry_points.txt``) on
``sys.path``. The end-to-end test builds a real plugin distribution, installs it with pip into a
temporary folder (never into the venv) and runs ``dptrack-build run`` with it in a subprocess.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.flow import plugins
from dptrack_pipeline.flow.opencv import DISFlowEstimator
from dptrack_pipeline.flow.plugins import (
    ENTRY_POINT_GROUP,
    EstimatorPluginError,
    EstimatorPluginWarning,
    broken_estimators,
)
from dptrack_pipeline.flow.registry import available_estimators, create_estimator
from dptrack_pipeline.shards.reader import read_instances

SHIFT_MODULE = '''
"""A plugin estimator: the same displacement (dx, dy) everywhere."""

from collections.abc import Sequence

import numpy as np

from dptrack_pipeline.flow.registry import FlowEstimator, ImagePair


class ShiftEstimator(FlowEstimator):
    default_options = {"dx": 2.0, "dy": -1.0}
    preferred_batch_size = 4
    transient_attributes = ("_displacement",)

    def _setup(self) -> None:
        self._displacement = np.array([self.options["dx"], self.options["dy"]], np.float32)

    def provenance(self) -> dict:
        return {"plugin": "shift 0.1"}

    def estimate_batch(self, pairs: Sequence[ImagePair]) -> list[np.ndarray]:
        checked = self.check_pairs(pairs)
        self.setup()
        flows = [np.broadcast_to(self._displacement, (*a.shape[:2], 2)) for a, _ in checked]
        return self.check_flows(flows, checked)
'''

MODULE_PREFIX = "dptrack_test_plugin_"

WriteDist = Callable[..., None]


@pytest.fixture
def write_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteDist]:
    """``write_dist(dist_name, entry_points, modules)``: a hand-written distribution on
    ``sys.path``. The registry forgets its plugins before and after the test."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_PLUGINS", None)

    def write(dist_name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        for module, source in modules.items():
            (site / f"{module}.py").write_text(source)
        info = site / f"{dist_name.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
        lines = [f"{name} = {value}" for name, value in entry_points.items()]
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines))
        importlib.invalidate_caches()

    yield write
    for module in [m for m in sys.modules if m.startswith(MODULE_PREFIX)]:
        del sys.modules[module]


def test_plugin_is_discovered_once_and_imported_on_request(
    write_dist: WriteDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = MODULE_PREFIX + "shift"
    write_dist("dptrack-shift", {"shift": f"{module}:ShiftEstimator"}, {module: SHIFT_MODULE})
    calls = []
    real_entry_points = importlib.metadata.entry_points

    def counting_entry_points(**params: str) -> importlib.metadata.EntryPoints:
        calls.append(params)
        return real_entry_points(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting_entry_points)

    assert {"dis", "farneback", "flownet2", "shift"} <= set(available_estimators())
    assert module not in sys.modules  # listed, not imported
    estimator = create_estimator("shift", dy=3.0)
    assert type(estimator).__module__ == module and estimator.name == "shift"
    assert estimator.params() == {"dx": 2.0, "dy": 3.0} and estimator.preferred_batch_size == 4
    image = np.zeros((5, 7, 3), np.uint8)
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(restored.estimate(image, image)[4, 6], [2.0, 3.0])
    assert isinstance(create_estimator("dis"), DISFlowEstimator)
    assert broken_estimators() == {}
    assert calls == [{"group": ENTRY_POINT_GROUP}]


def test_broken_plugins_fail_only_when_requested(write_dist: WriteDist) -> None:
    module = MODULE_PREFIX + "broken"
    write_dist(
        "dptrack-broken",
        {
            "no_module": f"{module}_missing:Estimator",
            "raises": f"{MODULE_PREFIX}raises:Estimator",
            "not_estimator": f"{module}:NOT_A_CLASS",
            "abstract": f"{module}:Abstract",
            "dis_again": "dptrack_pipeline.flow.opencv:DISFlowEstimator",
        },
        {
            module: "from dptrack_pipeline.flow.registry import FlowEstimator\n"
            "NOT_A_CLASS = 42\n"
            "class Abstract(FlowEstimator):\n    pass\n",
            MODULE_PREFIX + "raises": "raise RuntimeError('weights package missing')\n",
        },
    )
    names = available_estimators()  # listing imports nothing, so nothing fails
    assert {"no_module", "raises", "not_estimator", "abstract", "dis_again", "dis"} <= set(names)
    assert create_estimator("dis").name == "dis"

    with pytest.raises(EstimatorPluginError) as info:
        create_estimator("no_module")
    message = str(info.value)
    assert "'dptrack-broken'" in message and "entry point 'no_module'" in message
    assert "ModuleNotFoundError" in message
    assert isinstance(info.value, ValueError)  # the CLI reports it as one line
    with pytest.raises(EstimatorPluginError, match="RuntimeError: weights package missing"):
        create_estimator("raises")
    with pytest.raises(EstimatorPluginError, match="loads to 42, which is not a FlowEstimator"):
        create_estimator("not_estimator")
    with pytest.raises(EstimatorPluginError, match="is abstract; implement estimate_batch"):
        create_estimator("abstract")
    with pytest.raises(EstimatorPluginError, match="already the estimator 'dis'"):
        create_estimator("dis_again")
    assert DISFlowEstimator.name == "dis"

    broken = broken_estimators()
    assert sorted(broken) == ["abstract", "dis_again", "no_module", "not_estimator", "raises"]
    assert all("dptrack-broken" in reason for reason in broken.values())
    with pytest.raises(EstimatorPluginError, match="no_module"):  # the outcome is kept
        create_estimator("no_module")


def test_builtin_names_cannot_be_overridden(write_dist: WriteDist) -> None:
    module = MODULE_PREFIX + "impostor"
    write_dist("dptrack-impostor", {"dis": f"{module}:ShiftEstimator"}, {module: SHIFT_MODULE})
    with pytest.warns(EstimatorPluginWarning, match="'dptrack-impostor'.*built-in estimator"):
        assert "dis" in available_estimators()
    assert isinstance(create_estimator("dis"), DISFlowEstimator)
    assert module not in sys.modules
    assert broken_estimators() == {}


def test_a_name_claimed_twice_names_both_distributions(write_dist: WriteDist) -> None:
    module = MODULE_PREFIX + "twin"
    write_dist("dptrack-twin-a", {"twin": f"{module}:ShiftEstimator"}, {module: SHIFT_MODULE})
    write_dist("dptrack-twin-b", {"twin": f"{module}:ShiftEstimator"}, {})
    assert "twin" in available_estimators()
    with pytest.raises(EstimatorPluginError, match="claimed by 2 plugins") as info:
        create_estimator("twin")
    assert "'dptrack-twin-a'" in str(info.value) and "'dptrack-twin-b'" in str(info.value)
    assert module not in sys.modules


# -- end to end: a pip-installed plugin drives `dptrack-build run` ------------------------------

PLUGIN_PYPROJECT = f"""
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "dptrack-shift-plugin"
version = "0.1"

[project.entry-points."{ENTRY_POINT_GROUP}"]
shift = "shift_plugin:ShiftEstimator"
broken = "shift_plugin.missing:Estimator"

[tool.setuptools]
packages = ["shift_plugin"]
"""


def _dptrack(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real plugin distribution built and pip-installed (offline) into its own folder."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "src" / "shift_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SHIFT_MODULE)
    (root / "src" / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    pip += ["--no-build-isolation", "--disable-pip-version-check", "--target", str(site)]
    result = subprocess.run([*pip, str(root / "src")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "shift_plugin" / "__init__.py").exists()
    return site


def test_installed_plugin_drives_run(plugin_site: Path, tmp_path: Path) -> None:
    synth = tmp_path / "synth"
    result = CliRunner().invoke(
        main, ["synth", str(synth), "--videos", "1", "--frames", "10", "--seed", "0"]
    )
    assert result.exit_code == 0, result.output
    run = [
        "-m", "dptrack_pipeline.cli", "run", "--annotations", str(synth / "annotations.json"),
        "--frames-root", str(synth), "--crop-size", "32", "--no-progress",
        "--runner", "FnApiRunner", "--offsets", "1",
    ]  # fmt: skip
    # A constant flow misses the forward-backward check by |2 * (dx, dy)|: a loose threshold, and
    # the forward-backward check alone (preset 'paper': no photometric or chain check).
    out = tmp_path / "shards"
    result = _dptrack(
        plugin_site, *run, "--out", str(out), "--estimator", "shift",
        "--estimator-option", "dy=1.5", "--preset", "paper", "--fb-threshold", "50",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["estimator"] == "shift"
    assert info["estimator_params"] == {"dx": 2.0, "dy": 1.5}
    assert info["extra"]["estimator_provenance"] == {"plugin": "shift 0.1"}

    rows = read_instances(str(out)).to_pylist()
    sources = {row["annotation_id"]: row for row in rows if row["offset"] == 0}
    moved = [row for row in rows if row["offset"] != 0]
    assert sources and len(moved) == 2 * len(sources)
    for row in moved:
        source = sources[row["annotation_id"]]
        assert row["estimator"] == "shift"
        kept = [j for j in range(17) if row["keypoints"][3 * j + 2] > 0]
        assert kept
        for j in kept:
            np.testing.assert_allclose(
                row["keypoints"][3 * j : 3 * j + 2],
                np.add(source["keypoints"][3 * j : 3 * j + 2], [2.0, 1.5]),
                atol=1e-3,
            )
        assert len(row["dp_x"]) > 0.9 * len(source["dp_x"])
        for axis, (coordinate, step) in enumerate((("dp_x", 2.0), ("dp_y", 1.5))):
            index = np.asarray(row["dp_source_index"])
            start = np.asarray(source[coordinate])[index] / 256 * source["bbox"][axis + 2]
            end = np.asarray(row[coordinate]) / 256 * row["bbox"][axis + 2]
            np.testing.assert_allclose(
                row["bbox"][axis] + end, source["bbox"][axis] + start + step, atol=1e-2
            )

    # The broken entry point of the same distribution: one clear line, nothing written.
    result = _dptrack(plugin_site, *run, "--out", str(tmp_path / "b"), "--estimator", "broken")
    assert result.returncode != 0
    assert "entry point 'broken'" in result.stderr and "'dptrack-shift-plugin'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "b").exists()


def test_import_and_help_leave_plugins_alone(plugin_site: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from dptrack_pipeline.cli import main
        from dptrack_pipeline.flow import available_estimators, plugins
        assert main(["run", "--help"], standalone_mode=False) == 0
        assert plugins._PLUGINS is None, "plugins discovered at import or --help"
        assert {"shift", "broken"} <= set(available_estimators())
        assert "shift_plugin" not in sys.modules, "a plugin imported before it was asked for"
        """
    )
    result = _dptrack(plugin_site, "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
