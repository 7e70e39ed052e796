"""How one shard of flow pairs is written: the pair index (Parquet) and its arrays (HDF5).

:func:`write_pairs_shard` writes ``dense-SSSSS-of-NNNNN.h5`` (``schemas/dense.v1.json``: ``crops``,
``flows``, ``valid``) then ``pairs-SSSSS-of-NNNNN.parquet`` (``schemas/pairs.v1.json``), each
through :func:`~dptrack_pipeline.shards.atomic.atomic_write`, the dense file first so an index
never exists without its arrays. Both files are written even for an empty shard.

**Crops are stored once.** A pair reads two crops, and most crops serve several pairs: with the
default boxes and stride 1, crop A of anchor ``T`` is crop B of the six pairs ``(T±k, T)``. Crops
are keyed by ``(video_id, frame, crop box)`` and written once per shard (a video's pairs all go to
one shard, so nothing is lost across shards), which divides crop storage by up to 6 at ``K = 3``.

**Order.** Rows are sorted by :data:`PAIR_SORT_KEY` ``(video_id, frame_a, person, offset)``, which
is unique per pair; crops are numbered in order of first reference (crop A, then crop B, row by
row) and flows in row order. So the bytes are a function of the pairs alone, whatever order Beam
delivers them in. The same pinned Parquet options and HDF5 settings as the ``run`` shards are used
(:mod:`~dptrack_pipeline.shards.parquet_writer`, :mod:`~dptrack_pipeline.shards.hdf5_writer`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.columns import build_table
from dptrack_pipeline.shards.files import write_parquet_table, write_shard_file
from dptrack_pipeline.shards.hdf5_writer import write_dense_file
from dptrack_pipeline.shards.schema import load_parquet_schema

PAIRS_SCHEMA = "pairs"
PAIR_SORT_KEY = ("video_id", "frame_a", "person", "offset")
WRITER_COLUMNS = ("dense_file", "crop_a_index", "crop_b_index", "flow_index")
"""Pair columns filled by :func:`write_pairs_shard`, not by the caller."""

CropKey = tuple[str, int, tuple[float, ...]]
"""``(video_id, frame, crop box)``: what identifies a crop."""


@dataclasses.dataclass(frozen=True, eq=False)
class PairRecord:
    """A pair to write: its row (``pairs.v1`` columns except :data:`WRITER_COLUMNS`), its crop
    flow ``(S, S, 2)`` and validity ``(S, S)`` (arrays or
    :class:`~dptrack_pipeline.shards.hdf5_writer.PackedChunk` s)."""

    row: dict[str, Any]
    flow: Any
    valid: Any


def pair_sort_key(row: Mapping[str, Any]) -> tuple[str, int, int, int]:
    """The sort key of a pair row (see :data:`PAIR_SORT_KEY`)."""
    return (str(row["video_id"]), int(row["frame_a"]), int(row["person"]), int(row["offset"]))


def crop_keys(row: Mapping[str, Any]) -> tuple[CropKey, CropKey]:
    """The keys of a pair's crop A and crop B."""
    vid = str(row["video_id"])
    return (
        (vid, int(row["frame_a"]), tuple(float(v) for v in row["crop_box_a"])),
        (vid, int(row["frame_b"]), tuple(float(v) for v in row["crop_box_b"])),
    )


def write_pairs_shard(
    out_dir: str,
    shard_index: int,
    num_shards: int,
    pairs: Sequence[PairRecord],
    crops: Mapping[CropKey, Any],
    crop_size: int,
) -> list[dict]:
    """Write ``dense-i-of-n.h5`` and ``pairs-i-of-n.parquet`` for one shard.

    Args:
        out_dir: output folder (local, must exist; or a remote URL).
        shard_index, num_shards: which shard.
        pairs: the shard's pairs, any order, may be empty.
        crops: every crop the pairs reference, keyed by :func:`crop_keys` (``(S, S, 3)`` uint8
            RGB arrays or packed chunks); crops no pair references are not written.
        crop_size: S.

    Returns:
        ``[dense_info, pairs_info]``, each ``{"file", "kind", "rows", "bytes", "sha256"}``.

    Raises:
        ValueError: a missing crop, a duplicate sort key, or a malformed row (nothing written).
    """
    schema = load_parquet_schema(PAIRS_SCHEMA)
    caller_columns = [c for c in schema.names if c not in WRITER_COLUMNS]
    dense_name = naming.shard_filename(
        naming.PREFIX_DENSE, shard_index, num_shards, naming.EXT_HDF5
    )
    table_name = naming.shard_filename(
        naming.PREFIX_PAIRS, shard_index, num_shards, naming.EXT_PARQUET
    )
    for i, record in enumerate(pairs):
        missing = [c for c in caller_columns if c not in record.row]
        extra = sorted(set(record.row) - set(caller_columns))
        if missing or extra:
            raise ValueError(f"pairs[{i}]: missing columns {missing}, unexpected columns {extra}")
    order = sorted(range(len(pairs)), key=lambda i: pair_sort_key(pairs[i].row))
    for a, b in zip(order[:-1], order[1:], strict=True):
        if pair_sort_key(pairs[a].row) == pair_sort_key(pairs[b].row):
            raise ValueError(
                f"pairs[{a}] and pairs[{b}] share the key {pair_sort_key(pairs[a].row)}; "
                "a pair must be written once"
            )
    crop_index: dict[CropKey, int] = {}
    crop_list: list[Any] = []
    flows: list[Any] = []
    valids: list[Any] = []
    rows = []
    for flow_index, i in enumerate(order):
        record = pairs[i]
        row = dict(record.row)
        indices = []
        for key in crop_keys(row):
            if key not in crop_index:
                if key not in crops:
                    raise ValueError(f"pair {pair_sort_key(row)} references a missing crop {key}")
                crop_index[key] = len(crop_list)
                crop_list.append(crops[key])
            indices.append(crop_index[key])
        row.update(
            dense_file=dense_name,
            crop_a_index=indices[0],
            crop_b_index=indices[1],
            flow_index=flow_index,
        )
        rows.append(row)
        flows.append(record.flow)
        valids.append(record.valid)
    table = build_table(rows, schema)

    def write_dense(tmp: str) -> None:
        write_dense_file(
            tmp,
            crop_list,
            flows,
            valids,
            crop_size=crop_size,
            shard_index=shard_index,
            num_shards=num_shards,
        )

    dense_info = write_shard_file(
        out_dir, dense_name, naming.PREFIX_DENSE, len(crop_list), write_dense
    )
    table_info = write_shard_file(
        out_dir,
        table_name,
        naming.PREFIX_PAIRS,
        table.num_rows,
        lambda tmp: write_parquet_table(tmp, table),
    )
    return [dense_info, table_info]


__all__ = [
    "PAIR_SORT_KEY",
    "PairRecord",
    "crop_keys",
    "pair_sort_key",
    "write_pairs_shard",
]
