"""Reading a folder back and verifying it against dataset_info.json and schemas/."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq
import pytest

from dptrack_pipeline.shards import (
    SchemaMismatchError,
    list_shards,
    load_parquet_schema,
    read_instances,
    read_rejects,
    verify_output,
)


def test_list_shards_sorted_and_ignores_other_files(built_output):
    (built_output / ".instances-00000-of-00003.parquet.tmp-abc").write_bytes(b"")
    (built_output / "notes.txt").write_text("x")
    paths = list_shards(str(built_output), "instances")
    assert [os.path.basename(p) for p in paths] == [
        f"instances-{i:05d}-of-00003.parquet" for i in range(3)
    ]
    assert len(list_shards(str(built_output), "dense")) == 3


def test_complete_folder_verifies(built_output):
    assert verify_output(str(built_output)) == []
    assert read_instances(str(built_output)).num_rows == 19
    assert read_rejects(str(built_output)).num_rows == 1


def test_flipped_byte_is_caught(built_output):
    path = built_output / "dense-00000-of-00003.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = verify_output(str(built_output))
    assert "dense-00000-of-00003.h5: SHA-256 differs from dataset_info.json" in problems


def test_truncated_parquet_is_caught(built_output):
    path = built_output / "instances-00002-of-00003.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    problems = "\n".join(verify_output(str(built_output)))
    assert (
        "instances-00002-of-00003.parquet: " in problems
        and "bytes, dataset_info.json says" in problems
    )
    assert "cannot be read as Parquet" in problems


def test_missing_shard_is_caught(built_output):
    (built_output / "rejects-00001-of-00003.parquet").unlink()
    assert verify_output(str(built_output)) == ["missing shard rejects-00001-of-00003.parquet"]


def test_missing_manifest_and_unlisted_and_temp_files(built_output):
    (built_output / ".dense-00000-of-00003.h5.tmp-0123").write_bytes(b"x")
    problems = verify_output(str(built_output))
    assert problems == ["leftover temporary file .dense-00000-of-00003.h5.tmp-0123"]
    (built_output / "dataset_info.json").unlink()
    problems = verify_output(str(built_output))
    assert "dataset_info.json is missing" in problems


def test_crop_index_out_of_range_is_caught(built_output):
    path = built_output / "instances-00002-of-00003.parquet"
    table = pq.read_table(path)
    crop_index = table.column("crop_index").to_numpy().copy()
    crop_index[-1] = 99
    flow_index = table.column("flow_index").to_numpy().copy()
    flow_index[flow_index >= 0] += 5
    table = table.set_column(
        table.schema.get_field_index("crop_index"),
        table.schema.field("crop_index"),
        pa.array(crop_index),
    ).set_column(
        table.schema.get_field_index("flow_index"),
        table.schema.field("flow_index"),
        pa.array(flow_index),
    )
    pq.write_table(table, path)
    problems = "\n".join(verify_output(str(built_output)))
    assert "1 rows have crop_index outside [0, 4)" in problems
    assert "2 rows have flow_index outside [-1, 2)" in problems


def test_hdf5_layout_problems_are_caught(built_output):
    with h5py.File(built_output / "dense-00001-of-00003.h5", "a") as fh:
        del fh["valid"]
        fh.attrs["crop_size"] = 8
    problems = "\n".join(verify_output(str(built_output)))
    assert "dense-00001-of-00003.h5: dataset 'valid' missing" in problems
    assert "attribute crop_size 8, dataset_info says 16" in problems


def test_wrong_schema_is_refused_with_a_clear_message(built_output):
    path = built_output / "instances-00001-of-00003.parquet"
    schema = load_parquet_schema("instances")
    fields = [schema.field(n) for n in schema.names if n != "dp_masks"]
    fields[schema.get_field_index("offset")] = pa.field("offset", pa.int64(), nullable=False)
    wrong = pa.schema(fields)
    pq.write_table(wrong.empty_table(), path)
    with pytest.raises(SchemaMismatchError) as err:
        read_instances(str(built_output))
    message = str(err.value)
    assert "instances-00001-of-00003.parquet does not match schema instances.v2" in message
    assert "missing columns ['dp_masks']" in message
    assert "column 'offset' has type int64, expected int32" in message
    assert any("does not match schema" in p for p in verify_output(str(built_output)))


def test_read_errors(tmp_path, built_output):
    with pytest.raises(FileNotFoundError, match="no instances"):
        read_instances(str(tmp_path))
    with pytest.raises(ValueError, match="unknown instances.v2 columns \\['nope'\\]"):
        read_instances(str(built_output), columns=["nope"])


def test_dense_reader_switches_files(built_output):
    from dptrack_pipeline.shards import DenseReader

    table = read_instances(str(built_output), columns=["dense_file", "crop_index"])
    with DenseReader(str(built_output)) as dense:
        crops = [dense.crop(f, i) for f, i in zip(*table.to_pydict().values(), strict=True)]
        with pytest.raises(ValueError, match="not a dense shard"):
            dense.crop("../etc/passwd", 0)
    assert len(crops) == 19 and all(c.shape == (16, 16, 3) and c.dtype == np.uint8 for c in crops)
    assert dense._file is None


def test_remote_folder_round_trip(remote_folder, make_records):
    """Write, read and verify a folder through Beam's FileSystems (the gs:// code paths)."""
    from dptrack_pipeline.shards import (
        REQUIRED_COUNTERS,
        DenseReader,
        build_dataset_info,
        read_dataset_info,
        write_dataset_info,
        write_instance_shard,
        write_rejects_shard,
    )

    root, calls = remote_folder
    out = "dptracktest://"
    records = make_records(2, 2, offsets=(0, 1))
    files = write_instance_shard(out, 0, 1, records, 16)
    files.append(write_rejects_shard(out, 0, 1, []))
    info = build_dataset_info(
        files=files, counters={**dict.fromkeys(REQUIRED_COUNTERS, 0), "instances_in": 4,
        "instances_written": 4}, estimator="opencv_dis",
        estimator_params={}, fb_threshold=5.0, offsets=[1], crop_size=16, num_shards=1, config={},
    )  # fmt: skip
    write_dataset_info(out, info)
    assert sorted(os.listdir(root)) == [
        "dataset_info.json", "dense-00000-of-00001.h5", "instances-00000-of-00001.parquet",
        "rejects-00000-of-00001.parquet",
    ]  # fmt: skip
    assert read_dataset_info(out) == info
    assert verify_output(out) == []
    table = read_instances(out)
    assert table.num_rows == 4
    with DenseReader(out) as dense:
        row = table.filter(pa.compute.equal(table.column("offset"), 1)).to_pylist()[0]
        flow, valid = dense.flow(row["dense_file"], row["flow_index"])
        assert flow.shape == (16, 16, 2) and valid.dtype == bool
    assert {c[0] for c in calls} >= {"create", "rename", "open", "match"}


def _as_v1(path: Path) -> None:
    """Rewrite an instance shard in the version-1 schema (as written before the quality)."""
    from dptrack_pipeline.shards.files import write_parquet_table

    schema = load_parquet_schema("instances", 1)
    table = pq.read_table(path, columns=schema.names)
    write_parquet_table(str(path), pa.Table.from_arrays(table.columns, schema=schema))


def test_version_1_folders_stay_readable_and_versions_do_not_mix(built_output) -> None:
    paths = sorted(built_output.glob("instances-*.parquet"))
    for path in paths:
        _as_v1(path)
    table = read_instances(str(built_output))
    assert "dp_photo" not in table.column_names and table.num_rows == 19
    assert read_instances(str(built_output), columns=["offset"]).num_rows == 19
    with pytest.raises(ValueError, match="unknown instances.v1 columns \\['dp_photo'\\]"):
        read_instances(str(built_output), columns=["dp_photo"])
    pq.write_table(pq.read_table(paths[0]).slice(0, 0), paths[0])  # empty, still v1
    path = paths[1]
    pq.write_table(load_parquet_schema("instances").empty_table(), path)  # v2 among v1
    with pytest.raises(SchemaMismatchError, match="mixes instances versions \\[1, 2\\]"):
        read_instances(str(built_output))
