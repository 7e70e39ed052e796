"""``benchmarks/bench_integrity.py``'s measurements on a tiny synthetic folder: the plain copy
holds the same arrays without Fletcher-32, and every timing is positive (not what it is)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.perf import integrity


def test_checksum_timings_on_a_small_folder(tmp_path: Path) -> None:
    synth, out = tmp_path / "synth", tmp_path / "out"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["synth", str(synth), "--videos", "1", "--frames", "8"]).exit_code == 0
    )
    args = ["run", "--annotations", str(synth / "annotations.json"), "--frames-root", str(synth),
            "--out", str(out), "--crop-size", "16", "--no-progress",
            "--runner", "FnApiRunner"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    dense = integrity.time_dense(out, tmp_path / "work", repeats=1)
    assert dense["rows"] > 0 and dense["ratio"] > 0 and dense["bytes_added"] == 4 * dense["rows"]
    original = next(out.glob("dense-*.h5"))
    with h5py.File(original) as a, h5py.File(tmp_path / "work/no_fletcher32" / original.name) as b:
        for name in integrity.DATASETS:
            assert a[name].fletcher32 and not b[name].fletcher32
            np.testing.assert_array_equal(a[name][()], b[name][()])
    parquet = integrity.time_parquet(out, repeats=1)
    sha = integrity.time_sha256(out, read_s=1.0)
    assert parquet["ms_verified"] > 0 and sha["bytes"] > 0
    assert "Fletcher-32" in integrity.report_table(dense, parquet, sha)
    books = integrity.time_bookkeeping(
        synth / "annotations.json", synth, tmp_path / "books", 16, 2, repeats=1
    )
    assert books["identical_files"] and books["ratio"] > 0
