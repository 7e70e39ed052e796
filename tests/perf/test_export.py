"""The export benchmark's data: replicated run folders the exporter accepts, ids distinct."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from dptrack_pipeline.perf import export


def test_replicated_folders_export_every_row(
    tmp_path: Path, build_synth_shards: Callable[..., tuple[Path, Path]]
) -> None:
    synth, shards = build_synth_shards(
        tmp_path, ["--videos", "1", "--frames", "9", "--width", "96", "--height", "80"],
        ["--crop-size", "32"],
    )  # fmt: skip
    folder = export.replicate_run(shards, synth / "annotations.json", tmp_path / "big", 100)
    result = export.measure(folder, tmp_path / "big.json")
    doc = json.loads((tmp_path / "big.json").read_text())
    assert result["instances"] == result["rows_in"] == len(doc["annotations"]) >= 100
    assert len({im["id"] for im in doc["images"]}) == len(doc["images"])
    assert len({im["vid_id"] for im in doc["images"]}) > 1
    assert result["peak_rss_mib"] > 0 and "per 10k instances" in export.report_table([result])
