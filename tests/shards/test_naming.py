"""Shard names: format, parsing, limits."""

from __future__ import annotations

import pytest

from dptrack_pipeline.shards.naming import (
    PREFIX_DENSE,
    PREFIX_INSTANCES,
    PREFIX_REJECTS,
    is_shard_filename,
    parse_shard_filename,
    shard_filename,
)


def test_format_and_parse():
    assert shard_filename(PREFIX_INSTANCES, 3, 8, "parquet") == "instances-00003-of-00008.parquet"
    assert shard_filename(PREFIX_DENSE, 0, 1, ".h5") == "dense-00000-of-00001.h5"
    assert parse_shard_filename("rejects-00007-of-00008.parquet") == (
        PREFIX_REJECTS,
        7,
        8,
        "parquet",
    )
    assert parse_shard_filename("/a/b/dense-00000-of-00002.h5") == ("dense", 0, 2, "h5")
    assert parse_shard_filename("my-set-00001-of-00002.tar.gz") == ("my-set", 1, 2, "tar.gz")


def test_lexicographic_order_is_shard_order():
    names = [shard_filename("instances", i, 120, "parquet") for i in range(120)]
    assert sorted(names) == names


@pytest.mark.parametrize(
    "args", [("instances", 8, 8, "parquet"), ("instances", -1, 8, "parquet"),
             ("instances", 0, 0, "parquet"), ("instances", 0, 100000, "parquet"),
             ("bad/prefix", 0, 1, "parquet"), ("instances", 0, 1, "")],
)  # fmt: skip
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        shard_filename(*args)


@pytest.mark.parametrize(
    "name",
    ["instances-3-of-8.parquet", "instances-00008-of-00008.parquet", ".instances-00000-of-00001",
     "instances-00000-of-00001"],
)  # fmt: skip
def test_parse_rejects_non_shard_names(name):
    with pytest.raises(ValueError):
        parse_shard_filename(name)
    assert not is_shard_filename(name)


def test_is_shard_filename_with_prefix():
    assert is_shard_filename("dense-00000-of-00001.h5", "dense")
    assert not is_shard_filename("dense-00000-of-00001.h5", "instances")
