"""Which index shards does a folder hold, and which Parquet columns does training read?

A ``dptrack-build run`` folder holds ``instances-SSSSS-of-NNNNN.parquet`` index shards, a
``dptrack-build pairs`` folder ``pairs-SSSSS-of-NNNNN.parquet`` (names:
:mod:`dptrack_pipeline.shards.naming`); the arrays they point at live in ``dense-*.h5``
(read by :class:`~dptrack_pipeline.shards.reader.DenseReader`). Only the Parquet footers are read
here (row counts), so listing a folder is cheap and the result pickles small: the datasets of
:mod:`.dataset` hold these :class:`ShardFile` records, never open files.

The readers trust the manifest, not the folder: the file list is ``dataset_info.json``'s, every
file must be there at its recorded size, a shard the manifest does not list is an error, and
``verify=True`` checks every SHA-256. Damage inside a file is caught as it is read by the formats'
own checksums (Parquet page CRCs, HDF5 Fletcher-32 per chunk); the datasets turn such a read
error into :class:`CorruptShardError` naming the file.

A folder of the wrong kind is the common mistake (a ``run`` folder passed as ``--pairs``), so the
error names the shard files the folder does hold and which dataset reads them. The other one is a
folder of an older format: :func:`require_columns` says which column a label filter
(:mod:`.filters`) needs, which folder lacks it, and that re-running ``dptrack-build run`` writes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.manifest import read_dataset_info
from dptrack_pipeline.shards.reader import CorruptShardError, file_schema_version, list_shards

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
    """One index Parquet file (instances or pairs): its folder, file name and row count, and its
    size as ``dataset_info.json`` records it (checked again when the file is opened)."""

    folder: str
    name: str
    num_rows: int
    num_bytes: int = -1


_FOLDER_KINDS = {
    naming.PREFIX_INSTANCES: "a `dptrack-build run` folder: read it with ShardDataset (--shards)",
    naming.PREFIX_PAIRS: "a `dptrack-build pairs` folder: read it with PairDataset (--pairs)",
}

_CHECK = "check the folder with `dptrack-build inspect`, or rebuild it"


def _missing_shards_message(folder: str, prefix: str) -> str:
    """Why ``folder`` has nothing to read: the shard files it does hold, and what it looks like."""
    counts = {kind: len(list_shards(folder, kind)) for kind in naming.EXT_FOR_PREFIX}
    found = [f"{n} {kind}-*.{naming.EXT_FOR_PREFIX[kind]}" for kind, n in counts.items() if n]
    message = f"no {prefix}-*.parquet shards in {folder}; it holds "
    message += ", ".join(found) if found else "no shard files"
    hints = [hint for kind, hint in _FOLDER_KINDS.items() if kind != prefix and counts[kind]]
    return message + (f" ({hints[0]})" if hints else "")


def _manifest(folder: str, prefix: str) -> dict[str, Any]:
    try:
        info = read_dataset_info(folder)
    except FileNotFoundError:
        if not list_shards(folder, prefix):
            raise FileNotFoundError(_missing_shards_message(folder, prefix)) from None
        raise FileNotFoundError(
            f"{folder} has no dataset_info.json: it is not a finished dptrack-build folder (a job "
            "still writing it, or one that was interrupted: finish it with --resume)"
        ) from None
    except ValueError as err:
        raise CorruptShardError(f"{folder}/dataset_info.json is not valid JSON ({err})") from None
    if not isinstance(info, dict) or not isinstance(info.get("files"), list):
        raise CorruptShardError(f"{folder}/dataset_info.json has no file list; {_CHECK}")
    return info


def check_file(folder: str, entry: Mapping[str, Any], *, verify: bool = False) -> None:
    """Check one file of a folder against its ``dataset_info.json`` entry: present, of the
    recorded size, and with ``verify`` of the recorded SHA-256 (reads the whole file).

    Raises:
        CorruptShardError: naming the file and what is wrong.
    """
    name = str(entry.get("file"))
    path = os.path.join(folder, name)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise CorruptShardError(
            f"{path} is listed in dataset_info.json but missing; {_CHECK}"
        ) from None
    if size != entry.get("bytes"):
        raise CorruptShardError(
            f"{path} is {size} bytes, dataset_info.json says {entry.get('bytes')} (truncated or "
            f"replaced); {_CHECK}"
        )
    if verify and file_digest(path)[0] != entry.get("sha256"):
        raise CorruptShardError(f"{path}: SHA-256 differs from dataset_info.json; {_CHECK}")


def list_shard_files(
    folders: Sequence[str], prefix: str = naming.PREFIX_INSTANCES, *, verify: bool = False
) -> list[ShardFile]:
    """Every ``<prefix>-*.parquet`` shard of ``folders``, in folder then shard order, with row
    counts (``prefix``: :data:`~dptrack_pipeline.shards.naming.PREFIX_INSTANCES` or
    ``PREFIX_PAIRS``).

    The file list comes from each folder's ``dataset_info.json``, not from the names on disk:
    a listed file that is missing or of another size, or a shard file on disk that the manifest
    does not list, is an error. Every file of the folder (index and dense) is size-checked; with
    ``verify`` its SHA-256 is checked too (reads every byte once).

    Raises:
        FileNotFoundError: a folder without such shards (the message names the shard files it
            does hold, e.g. a ``run`` folder given where a ``pairs`` folder is needed), or
            without ``dataset_info.json``.
        CorruptShardError: a file missing, extra, resized or (``verify``) altered.
    """
    files = []
    for folder in map(str, folders):
        info = _manifest(folder, prefix)
        entries = [e for e in info["files"] if isinstance(e, dict) and "file" in e]
        listed = sorted(
            (e for e in entries if naming.is_shard_filename(str(e["file"]), prefix)),
            key=lambda e: str(e["file"]),
        )
        if not listed:
            raise FileNotFoundError(_missing_shards_message(folder, prefix))
        known = {str(e["file"]) for e in entries}
        for kind in (prefix, naming.PREFIX_DENSE):
            for path in list_shards(folder, kind):
                if os.path.basename(path) not in known:
                    raise CorruptShardError(
                        f"{path} is not listed in {folder}/dataset_info.json (a file of another "
                        f"run?); remove it or {_CHECK}"
                    )
        for entry in entries:
            if naming.is_shard_filename(str(entry["file"]), naming.PREFIX_DENSE) or entry in listed:
                check_file(folder, entry, verify=verify)
        for entry in listed:
            name = str(entry["file"])
            rows = int(pq.ParquetFile(os.path.join(folder, name)).metadata.num_rows)
            if rows != entry.get("rows"):
                raise CorruptShardError(
                    f"{folder}/{name} has {rows} rows, dataset_info.json says {entry.get('rows')}"
                )
            files.append(ShardFile(folder, name, rows, int(entry["bytes"])))
    return files


def read_index_file(shard: ShardFile, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of one index file (``columns`` only) as dicts, with its size checked again and
    every Parquet page's CRC verified.

    Raises:
        CorruptShardError: the file changed size since it was listed, or fails to read.
    """
    path = os.path.join(shard.folder, shard.name)
    try:
        size = os.path.getsize(path)
        if shard.num_bytes >= 0 and size != shard.num_bytes:
            raise CorruptShardError(
                f"{path} is {size} bytes, dataset_info.json says {shard.num_bytes}; {_CHECK}"
            )
        table = pq.read_table(path, columns=list(columns), page_checksum_verification=True)
    except (OSError, pa.ArrowException) as err:
        raise CorruptShardError(f"{path} cannot be read ({err}); {_CHECK}") from err
    return table.to_pylist()


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
