"""Folders the report tests read: a real ``run`` folder (with rejects), the same folder rewritten
as ``instances.v1`` (no quality columns), and a real ``pairs`` folder; each built once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.propagate.config import PropagateConfig
from dptrack_pipeline.shards import list_shards
from dptrack_pipeline.shards.schema import load_parquet_schema
from pipelines.propagate import build_propagate

CROP = 48
MISSING_FRAME = "frames/001001_synth/000007.png"
"""Target T+3 of video 1001's labelled frame (index 4): its two targets become rejects."""


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic videos of 12 frames, one labelled frame each (two people)."""
    out = tmp_path_factory.mktemp("report") / "synth"
    invoke("synth", str(out), "--videos", "2", "--frames", "12", "--seed", "0")
    return out


@pytest.fixture(scope="session")
def run_folder(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``run`` job in process (FnApiRunner), one target frame missing."""
    frames = tmp_path_factory.mktemp("report_frames") / "synth"
    shutil.copytree(synth, frames, ignore=shutil.ignore_patterns("truth"))
    os.remove(frames / MISSING_FRAME)
    out = tmp_path_factory.mktemp("report_run")
    config = PropagateConfig(
        annotations=str(frames / "annotations.json"),
        frames_root=str(frames),
        out=str(out),
        crop_size=CROP,
        num_shards=2,
    )
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        build_propagate(pipeline, config)
    return out


@pytest.fixture(scope="session")
def v1_folder(run_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``run_folder`` as a run before instances.v2 wrote it: v1 shards, no checks recorded."""
    out = tmp_path_factory.mktemp("report_v1")
    for name in os.listdir(run_folder):
        shutil.copy(run_folder / name, out / name)
    schema = load_parquet_schema("instances", 1)
    for path in list_shards(str(out), "instances"):
        table = pq.read_table(path).select(schema.names).cast(schema)
        pq.write_table(table, path)
    info = json.loads((out / "dataset_info.json").read_text())
    info.pop("checks", None)
    info["schemas"]["instances"] = 1
    (out / "dataset_info.json").write_text(json.dumps(info))
    return out


@pytest.fixture(scope="session")
def pairs_folder(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report_pairs") / "pairs"
    invoke(
        "pairs", "--videos", str(synth / "frames"), "--out", str(out), "--crop-size", "32",
        "--offsets", "2", "--runner", "FnApiRunner", "--no-progress",
    )  # fmt: skip
    return out


GALLERY = 3


@pytest.fixture(scope="session")
def gallery_size() -> int:
    """``--gallery`` of :func:`reports`."""
    return GALLERY


@pytest.fixture(scope="session")
def reports(
    run_folder: Path, v1_folder: Path, pairs_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Path]]:
    """``{"run" | "v1" | "pairs": (report.html, report.json)}``, written by the command."""
    out = tmp_path_factory.mktemp("report_pages")
    pages = {}
    for name, folder in (("run", run_folder), ("v1", v1_folder), ("pairs", pairs_folder)):
        page, figures = out / f"{name}.html", out / f"{name}.json"
        invoke("report", str(folder), "--out", str(page), "--json", str(figures),
               "--gallery", str(GALLERY))  # fmt: skip
        pages[name] = (page, figures)
    return pages
