"""The shared tail of both graphs, :class:`WriteShards`, on Beam's local runner: every shard file
exists (empty ones too), rows are sorted inside a shard whatever the arrival order, counters are
summed exactly, ``dataset_info.json`` comes last and verifies, and a failing writer leaves no
manifest and no temporary file."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from dptrack_pipeline.beam.common import COUNTERS_TAG, ShardWriter, SumCounters, WriteShards
from dptrack_pipeline.rejects import reject_row
from dptrack_pipeline.settings import manifest_config
from dptrack_pipeline.shards import (
    read_dataset_info,
    read_rejects,
    shard_for_key,
    verify_output,
    write_instance_shard,
    write_rejects_shard,
)

NUM_SHARDS = 3


@dataclass(frozen=True)
class _Config:
    out: str
    estimator: str = "dis"
    estimator_options: dict = field(default_factory=dict)
    fb_threshold: float = 5.0
    max_offset: int = 2
    crop_size: int = 8
    progress: bool = False

    def to_dict(self) -> dict:
        return manifest_config(self)


class _RejectsOnly(ShardWriter):
    """A ``run``-kind writer whose items are reject rows (empty instance and dense files)."""

    def write(self, shard: int, items: list[Any]) -> tuple[list[dict], dict[str, int]]:
        if any(row["detail"] == "explode" for row in items):
            raise RuntimeError("writer failed on purpose")
        files = write_instance_shard(self.out, shard, self.num_shards, [], self.config.crop_size)
        files.append(write_rejects_shard(self.out, shard, self.num_shards, items))
        return files, {"instances_rejected": len(items), "instances_written": 0}


def _rows(n: int) -> list[dict]:
    return [
        reject_row(
            "frame_missing", f"frame {i} is missing", "decode", video_id=f"v{i % 4}", frame_id=i
        )
        for i in range(n)
    ]


def _run(out: Path, rows: list[dict], counters: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)  # the CLI makes --out
    writer = _RejectsOnly(_Config(out=str(out)), NUM_SHARDS, {"preset": "medium"}, {})
    options = PipelineOptions(["--runner", "FnApiRunner"])
    with beam.Pipeline(options=options) as pipeline:
        items = pipeline | "Items" >> beam.Create(
            [(shard_for_key(r["video_id"], NUM_SHARDS), r) for r in rows], reshuffle=False
        )
        sums = pipeline | "Counters" >> beam.Create(counters, reshuffle=False)
        (items, sums) | WriteShards(writer)


def _required(**values: int) -> dict[str, int]:
    base = dict.fromkeys(
        ["frames_decoded", "flows_computed", "points_in", "points_kept", "points_dropped_fb"], 0
    )
    return {**base, "points_dropped_outside": 0, **values}


def test_writes_every_shard_sorted_with_exact_counters(tmp_path: Path) -> None:
    rows = _rows(10)
    counters = [_required(instances_in=6), {"instances_in": 4}, {"frames_decoded": 7}]
    _run(tmp_path / "a", rows, counters)
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == sorted(
        ["dataset_info.json"]
        + [f"{k}-{i:05d}-of-{NUM_SHARDS:05d}.{e}" for i in range(NUM_SHARDS)
           for k, e in (("instances", "parquet"), ("dense", "h5"), ("rejects", "parquet"))]
    )  # fmt: skip
    info = read_dataset_info(str(tmp_path / "a"))
    c = info["counters"]
    assert (c["instances_in"], c["instances_rejected"], c["frames_decoded"]) == (10, 10, 7)
    assert info["totals"] == {"instances": 0, "dense": 0, "rejects": 10}
    assert verify_output(str(tmp_path / "a")) == []
    table = read_rejects(str(tmp_path / "a"))
    assert table.num_rows == 10
    for shard in range(NUM_SHARDS):
        mine = [r for r in rows if shard_for_key(r["video_id"], NUM_SHARDS) == shard]
        expected = sorted((r["video_id"], r["frame_id"]) for r in mine)
        path = tmp_path / "a" / f"rejects-{shard:05d}-of-{NUM_SHARDS:05d}.parquet"
        got = pq.read_table(path, columns=["video_id", "frame_id"]).to_pylist()
        assert [(g["video_id"], g["frame_id"]) for g in got] == expected


def test_arrival_order_does_not_change_a_byte(tmp_path: Path) -> None:
    rows = _rows(12)
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    counters = [_required(instances_in=12)]
    _run(tmp_path / "a", rows, counters)
    _run(tmp_path / "b", shuffled, counters)
    for name in sorted(os.listdir(tmp_path / "a")):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_counters_that_do_not_add_up_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _run(tmp_path / "a", _rows(3), [_required(instances_in=5)])
    assert "counters do not add up: instances_in 5 != instances_written 0" in caplog.text
    problems = verify_output(str(tmp_path / "a"))
    assert any(p.startswith("counters do not add up: instances_in 5") for p in problems)


def test_a_failing_writer_leaves_no_manifest_and_no_temporary_file(tmp_path: Path) -> None:
    rows = _rows(4)
    rows[2] = {**rows[2], "detail": "explode"}
    with pytest.raises(Exception, match="writer failed on purpose"):
        _run(tmp_path / "a", rows, [_required(instances_in=4)])
    left = os.listdir(tmp_path / "a") if (tmp_path / "a").exists() else []
    assert "dataset_info.json" not in left
    assert [n for n in left if n.startswith(".")] == []


def test_sum_counters_merges_key_by_key() -> None:
    combine = SumCounters()
    a = combine.add_input(combine.create_accumulator(), {"x": 1, "y": 2})
    b = combine.add_input(combine.create_accumulator(), {"x": 3})
    assert combine.extract_output(combine.merge_accumulators([a, b])) == {"x": 4, "y": 2}
    assert COUNTERS_TAG == "counters"
