"""Is an output folder complete and intact?

:func:`verify_output` is the folder-level check run after a build, before publishing and by
``dptrack-build inspect``: every shard index present, each file's size, SHA-256 and row count
equal to ``dataset_info.json``, schemas right, every ``crop_index``/``flow_index`` pointing inside
its dense file, no leftover temporary file, and the counters adding up
(:func:`~dptrack_pipeline.shards.counters.counter_problems`, sums and row totals). It returns
problems as sentences rather than raising at the first, so one run reports everything.

Remote folders (``gs://...``) are read through Beam's ``FileSystems`` (imported lazily).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.atomic import is_remote, is_temp_name, join_path, local_path
from dptrack_pipeline.shards.counters import counter_problems
from dptrack_pipeline.shards.dense_codec import packed_width
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.hdf5_writer import CROPS, FLOWS, VALID
from dptrack_pipeline.shards.manifest import (
    dataset_info_errors,
    folder_kind,
    read_dataset_info,
    table_prefix,
)
from dptrack_pipeline.shards.progress import MARKER
from dptrack_pipeline.shards.reader import (
    SchemaMismatchError,
    check_parquet_schema,
    list_names,
    list_shards,
    open_binary,
)
from dptrack_pipeline.shards.schema import load_hdf5_schema, readable_versions, resolve_shape

INFO = naming.DATASET_INFO_FILENAME


def _digest(path: str) -> tuple[str, int]:
    if not is_remote(path):
        return file_digest(local_path(path))
    digest, size = hashlib.sha256(), 0
    with open_binary(path) as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@contextmanager
def _open_h5(path: str) -> Iterator[h5py.File]:
    if is_remote(path):
        with open_binary(path) as stream, h5py.File(stream, "r") as fh:
            yield fh
    else:
        with h5py.File(local_path(path), "r") as fh:
            yield fh


def _parquet_rows(path: str) -> int:
    with open_binary(path) as f:
        return pq.read_metadata(f).num_rows


def _check_dense_file(path: str, crop_size: int | None) -> tuple[list[str], dict[str, int]]:
    """Problems of one dense file against its version of ``schemas/dense.v*.json``, and its
    dataset lengths."""
    problems: list[str] = []
    lengths: dict[str, int] = {}
    name = os.path.basename(path)
    try:
        with _open_h5(path) as fh:
            version = int(fh.attrs.get("schema_version", 1))
            if version not in readable_versions("dense"):
                return [f"{name}: dense schema version {version} is not readable"], lengths
            doc = load_hdf5_schema("dense", version)
            size = int(fh.attrs.get("crop_size", -1))
            if crop_size is not None and size != crop_size:
                problems.append(
                    f"{name}: attribute crop_size {size}, dataset_info says {crop_size}"
                )
            for spec in doc["datasets"]:
                ds_name = spec["name"]
                if ds_name not in fh:
                    problems.append(f"{name}: dataset {ds_name!r} missing")
                    continue
                ds = fh[ds_name]
                lengths[ds_name] = ds.shape[0]
                dims = {"N": ds.shape[0], "M": ds.shape[0], "S": size, "B": packed_width(size)}
                expected = resolve_shape(spec["shape"], dims)
                if ds.shape != expected or ds.dtype != np.dtype(spec["dtype"]):
                    problems.append(
                        f"{name}: dataset {ds_name!r} is {ds.shape} {ds.dtype}, "
                        f"expected {expected} {spec['dtype']}"
                    )
            for spec in doc["attrs"]:
                if spec["name"] not in fh.attrs:
                    problems.append(f"{name}: attribute {spec['name']!r} missing")
            if FLOWS in lengths and VALID in lengths and lengths[FLOWS] != lengths[VALID]:
                problems.append(f"{name}: {lengths[FLOWS]} flows but {lengths[VALID]} valid masks")
            for ds_name, attr in ((CROPS, "num_crops"), (FLOWS, "num_flows")):
                if ds_name in lengths and int(fh.attrs.get(attr, -1)) != lengths[ds_name]:
                    problems.append(
                        f"{name}: attribute {attr} {fh.attrs.get(attr)} != {lengths[ds_name]} rows"
                    )
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        problems.append(f"{name}: cannot be read as HDF5 ({exc})")
    return problems, lengths


_REFERENCES = {
    naming.PREFIX_INSTANCES: (("crop_index", 0, CROPS), ("flow_index", -1, FLOWS)),
    naming.PREFIX_PAIRS: (
        ("crop_a_index", 0, CROPS),
        ("crop_b_index", 0, CROPS),
        ("flow_index", 0, FLOWS),
    ),
}
"""Per table kind: ``(column, lowest allowed value, dense dataset it indexes)``."""


def _offset_rule(kind: str, rows: pa.Table) -> str | None:
    """The offset rule of a table kind, broken by how many rows (``None`` when it holds)."""
    offset = rows.column("offset").to_numpy()
    if kind == naming.PREFIX_INSTANCES:
        bad = int(np.sum((rows.column("flow_index").to_numpy() == -1) != (offset == 0)))
        return f"{bad} rows break 'flow_index == -1 exactly when offset == 0'" if bad else None
    bad = int(np.sum(offset == 0))
    return f"{bad} rows have offset 0" if bad else None


def _check_references(
    path: str, dense_lengths: dict[str, dict[str, int]], kind: str = naming.PREFIX_INSTANCES
) -> list[str]:
    """Problems of the crop/flow references of one instance or pairs shard."""
    name = os.path.basename(path)
    spec = _REFERENCES[kind]
    with open_binary(path) as f:
        table = pq.read_table(f, columns=["dense_file", "offset", *(c for c, _, _ in spec)])
    problems = []
    for dense_file in sorted(set(table.column("dense_file").to_pylist())):
        rows = table.filter(pc.equal(table.column("dense_file"), dense_file))
        lengths = dense_lengths.get(dense_file)
        if lengths is None:
            problems.append(f"{name}: {rows.num_rows} rows reference missing {dense_file!r}")
            continue
        for column, low, dataset in spec:
            limit = (
                lengths.get(CROPS, 0)
                if dataset == CROPS
                else min(lengths.get(FLOWS, 0), lengths.get(VALID, 0))
            )
            index = rows.column(column).to_numpy()
            bad = int(np.sum((index < low) | (index >= limit)))
            if bad:
                problems.append(
                    f"{name}: {bad} rows have {column} outside [{low}, {limit}) of {dense_file}"
                )
        broken = _offset_rule(kind, rows)
        if broken:
            problems.append(f"{name}: {broken}")
    return problems


def _load_info(out_dir: str, problems: list[str]) -> dict[str, Any] | None:
    """The manifest, or ``None`` (with the reason in ``problems``) when it cannot be used."""
    try:
        info = read_dataset_info(out_dir)
    except FileNotFoundError:
        problems.append(f"{INFO} is missing")
        return None
    except ValueError as exc:
        problems.append(f"{INFO} is not valid JSON ({exc})")
        return None
    if not isinstance(info, dict):
        problems.append(f"{INFO} does not hold a JSON object")
        return None
    problems.extend(f"{INFO}: {e}" for e in dataset_info_errors(info))
    if not isinstance(info.get("files"), list):
        return None
    info["files"] = [e for e in info["files"] if isinstance(e, dict) and "file" in e]
    return info


def _check_completeness(
    on_disk: dict[str, list[str]], num_shards: int, problems: list[str]
) -> set[str]:
    """Report shard files of another shard count and missing indices; return the missing names."""
    missing: set[str] = set()
    for kind, names in on_disk.items():
        present = set()
        for name in names:
            _, index, count, _ = naming.parse_shard_filename(name)
            if count == num_shards:
                present.add(index)
            else:
                problems.append(f"{name} does not belong to a {num_shards}-shard dataset")
        for index in range(num_shards):
            if index not in present:
                name = naming.shard_filename(kind, index, num_shards, naming.EXT_FOR_PREFIX[kind])
                missing.add(name)
                problems.append(f"missing shard {name}")
    return missing


def _check_manifest_files(
    out_dir: str, info: dict[str, Any], disk_names: set[str], missing: set[str]
) -> list[str]:
    """Size and SHA-256 of every listed file; files on disk the manifest does not list."""
    problems = []
    listed = set()
    for entry in info["files"]:
        name = str(entry["file"])
        listed.add(name)
        if name not in disk_names:
            if name not in missing:
                problems.append(f"{name} is listed in {INFO} but absent")
            continue
        sha256, nbytes = _digest(join_path(out_dir, name))
        if nbytes != entry.get("bytes"):
            problems.append(f"{name}: {nbytes} bytes, {INFO} says {entry.get('bytes')}")
        if sha256 != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from {INFO}")
    problems.extend(f"{n} is not listed in {INFO}" for n in sorted(disk_names - listed))
    return problems


def _check_contents(
    out_dir: str,
    on_disk: dict[str, list[str]],
    rows_in_info: dict[str, Any],
    crop_size: int | None,
    table_kind: str = naming.PREFIX_INSTANCES,
) -> list[str]:
    """Schemas, HDF5 layouts, row counts against the manifest, and crop/flow references."""
    problems: list[str] = []
    dense_lengths: dict[str, dict[str, int]] = {}
    for name in on_disk[naming.PREFIX_DENSE]:
        dense_problems, lengths = _check_dense_file(join_path(out_dir, name), crop_size)
        problems.extend(dense_problems)
        dense_lengths[name] = lengths
        if name in rows_in_info and lengths.get(CROPS) != rows_in_info[name]:
            problems.append(f"{name}: {lengths.get(CROPS)} crops, {INFO} says {rows_in_info[name]}")
    for kind in (table_kind, naming.PREFIX_REJECTS):
        for name in on_disk[kind]:
            path = join_path(out_dir, name)
            try:
                check_parquet_schema(path, kind)
                rows = _parquet_rows(path)
                if name in rows_in_info and rows != rows_in_info[name]:
                    problems.append(f"{name}: {rows} rows, {INFO} says {rows_in_info[name]}")
                if kind in _REFERENCES:
                    problems.extend(_check_references(path, dense_lengths, kind))
            except SchemaMismatchError as exc:
                problems.append(str(exc).replace(path, name))
            except (OSError, pa.ArrowException) as exc:
                problems.append(f"{name}: cannot be read as Parquet ({exc})")
    return problems


def verify_output(out_dir: str) -> list[str]:
    """Check an output folder against its ``dataset_info.json`` and ``schemas/``.

    Checks: the manifest exists and validates; every shard index ``0..num_shards-1`` of every kind
    exists; no file disagrees with the manifest on size, SHA-256 or rows; no shard file is missing
    from the manifest and no leftover temporary file or ``_RUNNING`` marker lies around; Parquet
    schemas and HDF5 layouts match ``schemas/``; every instance row's ``crop_index``/``flow_index``
    points inside its dense file (and ``flow_index == -1`` exactly for sources); the counters'
    sums and row totals
    (:func:`~dptrack_pipeline.shards.counters.counter_problems`). A ``pairs`` folder (manifest
    ``kind == "pairs"``) is checked the same way with ``pairs-*.parquet`` in place of the instance
    shards and its ``crop_a_index``/``crop_b_index``/``flow_index`` references.

    Returns:
        Problems as sentences; an empty list means the folder is complete and intact.
    """
    problems: list[str] = []
    info = _load_info(out_dir, problems)
    names = sorted(list_names(out_dir))
    problems.extend(f"leftover temporary file {n}" for n in names if is_temp_name(n))
    if MARKER in names:
        problems.append(
            f"{MARKER} marker: a job is writing this folder, or was interrupted (finish it with "
            "--resume)"
        )
    table_kind = table_prefix(info) if info is not None else naming.PREFIX_INSTANCES
    kinds = (table_kind, naming.PREFIX_DENSE, naming.PREFIX_REJECTS)
    on_disk = {kind: [os.path.basename(p) for p in list_shards(out_dir, kind)] for kind in kinds}

    num_shards = info.get("num_shards") if info is not None else None
    if num_shards is None:  # no usable manifest: trust the names if they agree
        counts = {naming.parse_shard_filename(n)[2] for names in on_disk.values() for n in names}
        num_shards = counts.pop() if len(counts) == 1 else None
    if not isinstance(num_shards, int) or num_shards < 1:
        problems.append("cannot tell the number of shards")
        return problems
    missing = _check_completeness(on_disk, num_shards, problems)

    rows_in_info: dict[str, Any] = {}
    crop_size = None
    if info is not None:
        disk_names = {n for names in on_disk.values() for n in names}
        problems.extend(_check_manifest_files(out_dir, info, disk_names, missing))
        rows_in_info = {str(e["file"]): e.get("rows") for e in info["files"]}
        crop_size = info.get("crop_size")
    problems.extend(_check_contents(out_dir, on_disk, rows_in_info, crop_size, table_kind))
    if info is not None:
        totals = dict.fromkeys(kinds, 0)
        for name, rows in rows_in_info.items():
            prefix = name.split("-", 1)[0]
            if prefix in totals:
                totals[prefix] += int(rows or 0)
        counters = info.get("counters") if isinstance(info.get("counters"), dict) else {}
        problems.extend(
            f"counters do not add up: {p}"
            for p in counter_problems(counters, folder_kind(info), totals)
        )
    return problems
