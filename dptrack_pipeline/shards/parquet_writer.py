"""How is one shard written: the instance table (Parquet), its dense arrays (HDF5), the rejects?

:func:`write_instance_shard` is the one function the Beam layer calls per shard of instances. It
takes :class:`ShardRecord` s (a row of ``schemas/instances.v1.json`` plus the crop, flow and
validity arrays) and writes two files, ``dense-SSSSS-of-NNNNN.h5`` then
``instances-SSSSS-of-NNNNN.parquet``, each through
:func:`~dptrack_pipeline.shards.atomic.atomic_write`. The dense file goes first, so an instance
table never exists without the arrays it points to. Both files are always written, even for an
empty shard, so a complete dataset has every index ``0..N-1`` of every kind.

**Order inside a shard.** Records are sorted by :data:`RECORD_SORT_KEY`, i.e.
``(video_id, source_frame_index, track_id, annotation_id, offset, frame_index)``: Beam delivers a
shard's records in arbitrary order, the sort makes the bytes a function of the records alone
(TFDS sorts by hashed key for the same reason). This key also keeps a source and its propagations
(offsets ``-3..+3``) adjacent and in time order, and videos in contiguous runs, which is the order a
reader browsing a track wants. The key must be unique within a shard (it is, for one annotation
propagated once per offset); a duplicate would make the order, hence the bytes, depend on arrival
order, so it is an error. ``crop_index`` is then the record's position and ``flow_index`` the
running count of records that carry a flow (``-1`` for sources, which have none).

Every file goes through :func:`~dptrack_pipeline.shards.files.write_shard_file` (atomic, digested)
with the pinned Parquet options of :mod:`dptrack_pipeline.shards.files`.

**Checks at the boundary.** Every row is checked before anything is written: the set of columns,
the types (an int column refuses 1.5, a uint8 column refuses 300), the lengths (51 keypoint values,
equal ``dp_*`` lengths, 0 or 14 masks), ``offset == frame_index - source_frame_index``, "flow
present iff ``offset != 0``" and the array shapes. Errors name the record (video, annotation,
offset) and the column.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.columns import build_table
from dptrack_pipeline.shards.files import write_parquet_table, write_shard_file
from dptrack_pipeline.shards.hdf5_writer import (
    CROPS,
    FLOWS,
    VALID,
    PackedChunk,
    check_crop,
    check_flow,
    check_valid,
    pack_chunk,
    write_dense_file,
)
from dptrack_pipeline.shards.schema import load_parquet_schema

INSTANCES_SCHEMA = "instances"
REJECTS_SCHEMA = "rejects"

WRITER_COLUMNS = ("dense_file", "crop_index", "flow_index")
"""Instance columns filled by :func:`write_instance_shard`, not by the caller."""

RECORD_SORT_KEY = (
    "video_id",
    "source_frame_index",
    "track_id",
    "annotation_id",
    "offset",
    "frame_index",
)
"""Columns, in order, by which a shard's instance rows are sorted."""

REJECT_SORT_KEY = (
    "video_id",
    "frame_id",
    "annotation_id",
    "offset",
    "reason",
    "detail",
    "stage",
    "track_id",
)
"""Columns by which reject rows are sorted (all of them, so ties are identical rows)."""

BOX_SOURCES = ("annotation", "posetrack", "derived")
NUM_KEYPOINT_VALUES = 51
NUM_MASKS = 14
MAX_PART_INDEX = 24
DP_COLUMNS = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V", "dp_source_index")
DP_QUALITY_COLUMNS = ("dp_fb_error", "dp_photo", "dp_chain_error")
"""Per-point quality (instances v2): one value per kept point, like :data:`DP_COLUMNS`."""
KEYPOINT_QUALITY_COLUMNS = ("kp_fb_error", "kp_photo", "kp_posetrack_error")
"""Per-keypoint quality (instances v2): 17 values each."""

EMPTY_MASK_COUNTS = "PPP2"
"""COCO compressed RLE ``counts`` of an all-zero 256x256 mask (what ``pycocotools.mask.encode``
gives); used for a part given as ``None`` or ``{}``."""


@dataclasses.dataclass(frozen=True, eq=False)
class ShardRecord:
    """One instance row with its dense arrays, as handed to :func:`write_instance_shard`.

    Attributes:
        row: values of every ``instances.v1`` column except ``dense_file``, ``crop_index`` and
            ``flow_index`` (the writer fills those). List columns may be numpy arrays
            (``keypoints`` may be ``(17, 3)``); ``dp_masks`` entries may be COCO RLE dicts.
        crop: ``(S, S, 3)`` uint8 RGB crop of ``row["crop_box"]``.
        flow: ``(S, S, 2)`` float32 flow from the source crop to this crop, in this crop's pixels,
            channel 0 = x; ``None`` for sources (``offset == 0``).
        valid: ``(S, S)`` bool, True where the forward-backward check passed and the target is
            inside the frame; ``None`` exactly when ``flow`` is.
    """

    row: dict[str, Any]
    crop: np.ndarray | PackedChunk
    flow: np.ndarray | PackedChunk | None = None
    valid: np.ndarray | PackedChunk | None = None


def pack_record(record: ShardRecord, crop_size: int) -> ShardRecord:
    """The same record with its arrays packed into stored HDF5 chunks
    (:func:`~dptrack_pipeline.shards.hdf5_writer.pack_chunk`): smaller to ship to the writer,
    which then only copies bytes. Already packed arrays are kept."""

    def pack(name: str, value: Any, valid: Any = None) -> Any:
        if value is None or isinstance(value, PackedChunk):
            return value
        return pack_chunk(name, value, crop_size, valid)

    if isinstance(record.flow, np.ndarray) and isinstance(record.valid, PackedChunk):
        raise ValueError("a record's flow is unpacked but its valid mask is packed")
    return ShardRecord(
        row=record.row,
        crop=pack(CROPS, record.crop),
        flow=pack(FLOWS, record.flow, record.valid),
        valid=pack(VALID, record.valid),
    )


def instance_row_columns() -> tuple[str, ...]:
    """Columns a :attr:`ShardRecord.row` must have, in schema order."""
    names = load_parquet_schema(INSTANCES_SCHEMA).names
    return tuple(n for n in names if n not in WRITER_COLUMNS)


def record_sort_key(row: dict[str, Any]) -> tuple[str, int, int, int, int, int]:
    """The sort key of an instance row (see :data:`RECORD_SORT_KEY`: the video id, then ints)."""
    video_id, *numbers = (row[column] for column in RECORD_SORT_KEY)
    return (str(video_id), *(int(n) for n in numbers))  # type: ignore[return-value]


# --------------------------------------------------------------------------- instances


def _record_label(row: dict[str, Any]) -> str:
    return (
        f"video {row.get('video_id')!r} annotation {row.get('annotation_id')!r} "
        f"offset {row.get('offset')!r}"
    )


def _mask_counts(entry: Any, label: str) -> str:
    if entry is None or (isinstance(entry, dict) and not entry):
        return EMPTY_MASK_COUNTS
    if isinstance(entry, dict):
        size = entry.get("size")
        if size is not None and [int(s) for s in size] != [256, 256]:
            raise ValueError(f"{label}: dp_masks RLE size must be [256, 256], got {size}")
        entry = entry.get("counts")
    if isinstance(entry, bytes):
        entry = entry.decode("ascii")
    if not isinstance(entry, str) or not entry:
        raise ValueError(f"{label}: dp_masks entries must be non-empty RLE counts, got {entry!r}")
    return entry


def _normalise_row(index: int, record: ShardRecord, columns: tuple[str, ...], crop_size: int):
    if not isinstance(record, ShardRecord):
        raise TypeError(f"records[{index}] is a {type(record).__name__}, expected ShardRecord")
    row = record.row
    label = f"records[{index}] ({_record_label(row)})"
    missing = [c for c in columns if c not in row]
    extra = sorted(set(row) - set(columns))
    if missing or extra:
        raise ValueError(f"{label}: missing columns {missing}, unexpected columns {extra}")
    nulls = [c for c in columns if row[c] is None and c != "dp_masks"]
    if nulls:
        raise ValueError(f"{label}: columns {nulls} are None but not nullable")
    row = dict(row)
    masks = [] if row["dp_masks"] is None else list(row["dp_masks"])
    row["dp_masks"] = [_mask_counts(m, label) for m in masks]
    if len(row["dp_masks"]) not in (0, NUM_MASKS):
        raise ValueError(
            f"{label}: dp_masks must hold 0 or {NUM_MASKS} RLEs, got {len(row['dp_masks'])}"
        )
    if np.size(row["keypoints"]) != NUM_KEYPOINT_VALUES:
        raise ValueError(
            f"{label}: keypoints must hold 17 x (x, y, v) = {NUM_KEYPOINT_VALUES} values, "
            f"got {np.size(row['keypoints'])}"
        )
    for column in KEYPOINT_QUALITY_COLUMNS:
        if column in row and np.size(row[column]) != NUM_KEYPOINT_VALUES // 3:
            raise ValueError(
                f"{label}: {column} must hold one value per keypoint (17), "
                f"got {np.size(row[column])}"
            )
    lengths = {c: int(np.size(row[c])) for c in (*DP_COLUMNS, *DP_QUALITY_COLUMNS) if c in row}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{label}: DensePose point columns differ in length: {lengths}")
    dp_i = np.asarray(row["dp_I"]).reshape(-1)
    if dp_i.size and (dp_i.min() < 0 or dp_i.max() > MAX_PART_INDEX):
        raise ValueError(f"{label}: dp_I values must be in [0, {MAX_PART_INDEX}]")
    if row["box_source"] not in BOX_SOURCES:
        raise ValueError(
            f"{label}: box_source must be one of {BOX_SOURCES}, got {row['box_source']!r}"
        )
    if int(row["offset"]) != int(row["frame_index"]) - int(row["source_frame_index"]):
        raise ValueError(
            f"{label}: offset {row['offset']} != frame_index {row['frame_index']} - "
            f"source_frame_index {row['source_frame_index']}"
        )
    crop_box = np.asarray(row["crop_box"], dtype=np.float64).reshape(-1)
    if crop_box.size != 4 or not np.all(np.isfinite(crop_box)) or min(crop_box[2:]) <= 0:
        raise ValueError(
            f"{label}: crop_box must be a finite (x, y, w, h) with w, h > 0, got {crop_box}"
        )
    if not isinstance(record.crop, PackedChunk):
        check_crop(record.crop, crop_size, what=f"{label}: crop")
    is_source = int(row["offset"]) == 0
    if (record.flow is None) != is_source:
        raise ValueError(
            f"{label}: a record has a flow iff it is propagated (offset != 0); "
            f"got offset {row['offset']} and flow {'None' if record.flow is None else 'given'}"
        )
    if (record.valid is None) != (record.flow is None):
        raise ValueError(f"{label}: flow and valid must both be given or both be None")
    if record.flow is not None and not isinstance(record.flow, PackedChunk):
        check_flow(record.flow, crop_size, what=f"{label}: flow")
    if record.valid is not None and not isinstance(record.valid, PackedChunk):
        check_valid(record.valid, crop_size, what=f"{label}: valid")
    fraction = float(row["flow_valid_fraction"])
    if is_source and not math.isnan(fraction):
        raise ValueError(f"{label}: flow_valid_fraction must be NaN for a source, got {fraction}")
    if not is_source and not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{label}: flow_valid_fraction must be in [0, 1], got {fraction}")
    return row


def write_instance_shard(
    out_dir: str,
    shard_index: int,
    num_shards: int,
    records: Sequence[ShardRecord],
    crop_size: int,
) -> list[dict]:
    """Write ``dense-i-of-n.h5`` and ``instances-i-of-n.parquet`` for one shard.

    Args:
        out_dir: output folder (local, must exist; or a remote URL such as ``gs://...``).
        shard_index, num_shards: which shard (``0 <= shard_index < num_shards``).
        records: the shard's instances, in any order; may be empty.
        crop_size: S, the side of every crop and flow.

    Returns:
        ``[dense_info, instances_info]`` (sorted by file name), each
        ``{"file", "kind", "rows", "bytes", "sha256"}`` for the manifest.

    Raises:
        ValueError, TypeError: on a malformed record, before any file is written.
    """
    if isinstance(crop_size, bool) or int(crop_size) < 1:
        raise ValueError(f"crop_size must be a positive int, got {crop_size!r}")
    crop_size = int(crop_size)
    dense_name = naming.shard_filename(
        naming.PREFIX_DENSE, shard_index, num_shards, naming.EXT_HDF5
    )
    table_name = naming.shard_filename(
        naming.PREFIX_INSTANCES, shard_index, num_shards, naming.EXT_PARQUET
    )
    columns = instance_row_columns()
    rows = [_normalise_row(i, r, columns, crop_size) for i, r in enumerate(records)]
    order = sorted(range(len(rows)), key=lambda i: record_sort_key(rows[i]))
    for a, b in zip(order[:-1], order[1:], strict=True):
        if record_sort_key(rows[a]) == record_sort_key(rows[b]):
            raise ValueError(
                f"records[{a}] and records[{b}] share the sort key {record_sort_key(rows[a])}; "
                "the key must be unique within a shard for the output to be deterministic"
            )

    crops, flows, valids, sorted_rows = [], [], [], []
    for crop_index, i in enumerate(order):
        record, row = records[i], rows[i]
        row["dense_file"] = dense_name
        row["crop_index"] = crop_index
        if record.flow is None:
            row["flow_index"] = -1
        else:
            row["flow_index"] = len(flows)
            flows.append(record.flow)
            valids.append(record.valid)
        crops.append(record.crop)
        sorted_rows.append(row)
    table = build_table(sorted_rows, load_parquet_schema(INSTANCES_SCHEMA))

    def write_dense(tmp: str) -> None:
        write_dense_file(
            tmp,
            crops,
            flows,
            valids,
            crop_size=crop_size,
            shard_index=shard_index,
            num_shards=num_shards,
        )

    dense_info = write_shard_file(out_dir, dense_name, naming.PREFIX_DENSE, len(crops), write_dense)
    table_info = write_shard_file(
        out_dir,
        table_name,
        naming.PREFIX_INSTANCES,
        table.num_rows,
        lambda tmp: write_parquet_table(tmp, table),
    )
    return [dense_info, table_info]


# --------------------------------------------------------------------------- rejects


def reject_sort_key(row: dict[str, Any]) -> tuple:
    """The sort key of a reject row (see :data:`REJECT_SORT_KEY`)."""
    return tuple(
        str(row[c]) if c in ("video_id", "reason", "detail", "stage") else int(row[c])
        for c in REJECT_SORT_KEY
    )


def write_rejects_shard(
    out_dir: str, shard_index: int, num_shards: int, rejects: Sequence[Any]
) -> dict:
    """Write ``rejects-i-of-n.parquet``.

    Args:
        out_dir: output folder (as for :func:`write_instance_shard`).
        shard_index, num_shards: which shard.
        rejects: dicts with exactly the ``rejects.v1`` columns, or
            :class:`dptrack_pipeline.structures.Reject` (any dataclass with those fields); any
            order, may be empty. Rows are sorted by :data:`REJECT_SORT_KEY`.

    Returns:
        ``{"file", "kind": "rejects", "rows", "bytes", "sha256"}``.
    """
    schema = load_parquet_schema(REJECTS_SCHEMA)
    name = naming.shard_filename(naming.PREFIX_REJECTS, shard_index, num_shards, naming.EXT_PARQUET)
    rows = []
    for i, item in enumerate(rejects):
        row = dataclasses.asdict(item) if dataclasses.is_dataclass(item) else dict(item)
        missing = [c for c in schema.names if c not in row]
        extra = sorted(set(row) - set(schema.names))
        if missing or extra:
            raise ValueError(f"rejects[{i}]: missing columns {missing}, unexpected columns {extra}")
        rows.append(row)
    rows.sort(key=reject_sort_key)
    table = build_table(rows, schema)
    return write_shard_file(
        out_dir,
        name,
        naming.PREFIX_REJECTS,
        table.num_rows,
        lambda tmp: write_parquet_table(tmp, table),
    )
