"""What a job leaves in its folder while it runs: the run key, receipts that a resumed job keeps
only when every file they list is intact, the marker, and the clean-up."""

from __future__ import annotations

import json
from pathlib import Path

from dptrack_pipeline.shards.files import write_shard_file
from dptrack_pipeline.shards.progress import (
    MARKER,
    PROGRESS_DIR,
    clear_progress,
    completed_shards,
    read_marker,
    remove_temp_files,
    run_key,
    write_marker,
    write_receipt,
)


def test_run_key_covers_config_shards_and_input_bytes(tmp_path: Path) -> None:
    source = tmp_path / "a.json"
    source.write_text("{}")
    key = run_key("run", {"max_offset": 3}, 4, [str(source)])
    assert key == run_key("run", {"max_offset": 3}, 4, [str(source)])
    assert key != run_key("run", {"max_offset": 2}, 4, [str(source)])
    assert key != run_key("run", {"max_offset": 3}, 5, [str(source)])
    assert key != run_key("pairs", {"max_offset": 3}, 4, [str(source)])
    source.write_text("{ }")
    assert key != run_key("run", {"max_offset": 3}, 4, [str(source)])


def _shard(out: Path, shard: int, text: bytes) -> dict:
    name = f"rejects-{shard:05d}-of-00003.parquet"
    return write_shard_file(str(out), name, "rejects", 1, lambda tmp: Path(tmp).write_bytes(text))


def test_completed_shards_keeps_only_intact_receipts_of_this_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for shard in range(3):
        entry = _shard(out, shard, b"shard %d" % shard)
        write_receipt(str(out), "key", 3, shard, [entry], {"instances_written": shard})
    (out / "rejects-00001-of-00003.parquet").write_bytes(b"shard 9")  # same size, altered
    done, notes = completed_shards(str(out), "key", 3)
    assert sorted(done) == [0, 2] and done[2].counters == {"instances_written": 2}
    assert notes == ["shard 1: rejects-00001-of-00003.parquet: SHA-256 differs from its receipt"]
    assert completed_shards(str(out), "other key", 3)[0] == {}
    assert completed_shards(str(out), "key", 4)[0] == {}
    (out / "rejects-00002-of-00003.parquet").unlink()
    assert sorted(completed_shards(str(out), "key", 3)[0]) == [0]


def test_marker_temp_files_and_clear(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert read_marker(str(out)) is None
    write_marker(str(out), "run", "key", 3)
    marker = read_marker(str(out))
    assert marker["kind"] == "run" and marker["run_key"] == "key" and marker["num_shards"] == 3
    assert json.loads((out / MARKER).read_text())["pid"] > 0
    (out / ".dense-00000-of-00003.h5.tmp-abcd").write_bytes(b"x")
    (out / PROGRESS_DIR).mkdir()
    (out / PROGRESS_DIR / ".shard-00000.json.tmp-ef01").write_bytes(b"x")
    (out / "keep.txt").write_text("x")
    assert remove_temp_files(str(out)) == 2
    clear_progress(str(out))
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
