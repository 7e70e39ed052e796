"""Which index shards does a folder hold, and which Parquet columns does training read?

A ``dptrack-build run`` folder holds ``instances-SSSSS-of-NNNNN.parquet`` index shards, a
``dptrack-build pairs`` folder ``pairs-SSSSS-of-NNNNN.parquet`` (names:
:mod:`dptrack_pipeline.shards.naming`); the arrays they point at live in ``dense-*.h5``
(read by :class:`~dptrack_pipeline.shards.reader.DenseReader`). Only the Parquet footers are read
here (row counts), so listing a folder is cheap and the result pickles small: the datasets of
:mod:`.dataset` hold these :class:`ShardFile` records, never open files.

A folder of the wrong kind is the common mistake (a ``run`` folder passed as ``--pairs``), so the
error names the shard files the folder does hold and which dataset reads them. The other one is a
folder of an older format: :func:`require_columns` says which column a label filter
(:mod:`.filters`) needs, which folder lacks it, and that re-running ``dptrack-build run`` writes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow.parquet as pq

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.reader import file_schema_version, list_shards

META_COLUMNS = (
    "video_id",
    "frame_index",
    "source_frame_index",
    "offset",
    "annotation_id",
    "track_id",
    "estimator",
)
"""Provenance columns of ``instances-*.parquet`` copied into a sample's ``meta``."""

COLUMNS = (
    *META_COLUMNS,
    "bbox",
    "crop_box",
    "dp_x",
    "dp_y",
    "dp_I",
    "dp_U",
    "dp_V",
    "dp_masks",
    "dense_file",
    "crop_index",
    "flow_index",
)
"""Columns of ``instances-*.parquet`` a training sample needs (all in ``schemas/instances.v1.json``,
so every readable folder has them; a label filter reads quality columns of v2 besides)."""

PAIR_COLUMNS = (
    "video_id",
    "frame_a",
    "frame_b",
    "offset",
    "person",
    "estimator",
    "valid_fraction",
    "dense_file",
    "crop_a_index",
    "crop_b_index",
    "flow_index",
)
"""Columns of ``pairs-*.parquet`` (``schemas/pairs.v1.json``) a pair sample needs."""


@dataclass(frozen=True)
class ShardFile:
    """One index Parquet file (instances or pairs): its folder, file name and row count."""

    folder: str
    name: str
    num_rows: int


_FOLDER_KINDS = {
    naming.PREFIX_INSTANCES: "a `dptrack-build run` folder: read it with ShardDataset (--shards)",
    naming.PREFIX_PAIRS: "a `dptrack-build pairs` folder: read it with PairDataset (--pairs)",
}


def _missing_shards_message(folder: str, prefix: str) -> str:
    """Why ``folder`` has nothing to read: the shard files it does hold, and what it looks like."""
    counts = {kind: len(list_shards(folder, kind)) for kind in naming.EXT_FOR_PREFIX}
    found = [f"{n} {kind}-*.{naming.EXT_FOR_PREFIX[kind]}" for kind, n in counts.items() if n]
    message = f"no {prefix}-*.parquet shards in {folder}; it holds "
    message += ", ".join(found) if found else "no shard files"
    hints = [hint for kind, hint in _FOLDER_KINDS.items() if kind != prefix and counts[kind]]
    return message + (f" ({hints[0]})" if hints else "")


def list_shard_files(
    folders: Sequence[str], prefix: str = naming.PREFIX_INSTANCES
) -> list[ShardFile]:
    """Every ``<prefix>-*.parquet`` shard of ``folders``, in folder then shard order, with row
    counts (``prefix``: :data:`~dptrack_pipeline.shards.naming.PREFIX_INSTANCES` or
    ``PREFIX_PAIRS``).

    Raises:
        FileNotFoundError: a folder without such shards; the message names the shard files it
            does hold (e.g. a ``run`` folder given where a ``pairs`` folder is needed).
    """
    files = []
    for folder in folders:
        paths = list_shards(str(folder), prefix)
        if not paths:
            raise FileNotFoundError(_missing_shards_message(str(folder), prefix))
        for path in paths:
            rows = pq.ParquetFile(path).metadata.num_rows
            files.append(ShardFile(str(folder), os.path.basename(path), rows))
    return files


def require_columns(files: Sequence[ShardFile], needed: Mapping[str, str]) -> None:
    """Check that every file of ``files`` has the columns of ``needed`` (``column -> what needs
    it``, e.g. ``{"pckh": "min_pckh=0.5"}``); only Parquet footers are read.

    Raises:
        ValueError: naming the first folder, column and file that lacks one, the file's schema
            version, and what to do (re-run ``dptrack-build run``: instances schema v2 carries
            the quality of every propagated label).
    """
    if not needed:
        return
    for shard in files:
        path = os.path.join(shard.folder, shard.name)
        schema = pq.read_schema(path)
        missing = [column for column in needed if column not in schema.names]
        if missing:
            column = missing[0]
            version = file_schema_version(schema)
            written = f"instances schema v{version}" if version else "an older instances schema"
            raise ValueError(
                f"{shard.folder} has no column {column!r} (needed by {needed[column]}): "
                f"{shard.name} is {written}, written before the shards "
                f"carried the quality of their labels (v2). Re-run `dptrack-build run` into a "
                f"new folder to write it, or drop the filter"
            )
