"""Fixtures of the fault tests: a small synthetic set, and a job runner that checks, on every
run, what must hold whatever the input: no traceback, a finished folder whose counters reconcile
with themselves and with the files, and an exit code that says whether rows were written.

``outcome = run_job(...)`` runs a job command in this process (``--runner FnApiRunner``);
``outcome.info`` is the manifest (``None`` when the command refused to start),
``outcome.rejects`` the reject rows.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.cli.job import NOTHING_WRITTEN
from dptrack_pipeline.shards import counter_problems
from dptrack_pipeline.shards.manifest import folder_kind

FAST = ("--no-progress", "--runner", "FnApiRunner", "--crop-size", "16")
"""Flags every fault-test job gets: in-process runner, no bars, tiny crops."""


@dataclass
class Outcome:
    """What one command did."""

    exit_code: int
    output: str
    info: dict[str, Any] | None
    rejects: list[dict[str, Any]]

    @property
    def reasons(self) -> set[str]:
        return {r["reason"] for r in self.rejects}


def invoke(args: list[str]) -> tuple[int, str]:
    """Run ``dptrack-build args``; fail the test on a traceback (any exception but an exit)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"traceback from dptrack-build {' '.join(map(str, args))}:\n{tb}")
    return result.exit_code, result.output


def run_job(command: str, out: Path, *args: Any) -> Outcome:
    """Run a job command into ``out`` and check the invariants of a finished folder.

    Exit 0 or 3 (:data:`NOTHING_WRITTEN`): a manifest whose counters reconcile (with each other
    and with the files' rows) and whose exit code matches whether rows were written. Any other
    exit: no manifest (a refused start, or a failure that must not look finished), and the
    error is one ``Error: ...`` line, not a traceback.
    """
    code, output = invoke([command, "--out", out, *FAST, *args])
    info_path = out / "dataset_info.json"
    if code not in (0, NOTHING_WRITTEN):
        assert not info_path.exists(), f"exit {code} left a complete-looking folder:\n{output}"
        assert "Traceback" not in output, output
        assert output.strip().splitlines()[-1].startswith("Error: "), output
        return Outcome(code, output, None, [])
    info = json.loads(info_path.read_text())
    kind = folder_kind(info)
    table = "instances" if command == "run" else "pairs"
    assert counter_problems(info["counters"], kind, info["totals"]) == [], output
    assert (code == NOTHING_WRITTEN) == (info["totals"].get(table, 0) == 0), output
    rejects: list[dict[str, Any]] = []
    for f in sorted(out.glob("rejects-*.parquet")):
        rejects.extend(pq.read_table(f).to_pylist())
    return Outcome(code, output, info, rejects)


def make_synth(out: Path, videos: int, frames: int, seed: int) -> Path:
    """``dptrack-build synth out`` (two people per video, one labelled frame per 8)."""
    code, output = invoke(["synth", out, "--videos", videos, "--frames", frames, "--seed", seed])
    assert code == 0, output
    return out


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic DensePose-Track set: 1 video of 8 frames, one labelled, two people."""
    return make_synth(tmp_path_factory.mktemp("reliability") / "synth", 1, 8, 5)


@pytest.fixture()
def annotations(synth: Path) -> dict[str, Any]:
    """A fresh copy of the synthetic annotation file, to mutate."""
    return json.loads((synth / "annotations.json").read_text())


def labelled_image(doc: dict[str, Any]) -> dict[str, Any]:
    """The (first) labelled image entry of an annotation document."""
    labelled = {a["image_id"] for a in doc["annotations"] if "dp_x" in a}
    return next(i for i in doc["images"] if i["id"] in labelled)


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path
