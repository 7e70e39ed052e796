"""The dense storage measurement (``benchmarks/bench_dense.py``) on a small written file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dptrack_pipeline.perf import dense
from dptrack_pipeline.shards.hdf5_writer import write_dense_file


def test_measure_covers_every_option_and_decodes_what_it_wrote(tmp_path: Path) -> None:
    size = 32
    yy, xx = np.mgrid[0:size, 0:size]
    crops = [np.stack([xx * 4 + k, yy * 4, (xx + yy) * 2], -1).astype(np.uint8) for k in range(4)]
    flows = [np.stack([xx * 0.1, yy * -0.05], -1).astype(np.float32) for _ in range(3)]
    valid = [(xx + yy + k) % 5 > 0 for k in range(3)]
    name = "dense-00000-of-00001.h5"
    write_dense_file(
        str(tmp_path / name), crops, flows, valid, crop_size=size, shard_index=0, num_shards=1
    )
    rows = dense.sample_rows(str(tmp_path), name, 10)
    assert (len(rows["crops"]), len(rows["flows"])) == (4, 3)
    np.testing.assert_array_equal(rows["crops"][1], crops[1])
    results = dense.measure(rows)
    options = {(r["dataset"], r["encoding"]) for r in results}
    assert len(options) == 7 and {r["filter"] for r in results} >= {"gzip 1", "gzip 4", "gzip 6"}
    assert all(r["kB_per_row"] > 0 and r["write_ms"] > 0 and r["read_ms"] > 0 for r in results)
    by = {(r["dataset"], r["encoding"], r["filter"]): r["kB_per_row"] for r in results}
    # Smooth gradients: row deltas are constant, so they deflate to almost nothing.
    assert by[("crops", "row deltas (v2)", "gzip 1")] < by[("crops", "as is (v1)", "gzip 1")]
    assert (
        by[("valid", "packed bits (v2)", "gzip 1")]
        <= by[("valid", "one byte per pixel (v1)", "gzip 1")]
    )
    assert "| dataset | encoding |" in dense.report_table(results)
