"""How are an output folder's shards read back, and is the folder complete and intact?

* :func:`list_shards` finds the shard files of one kind by name (hidden temporary files from
  :func:`~dptrack_pipeline.shards.atomic.atomic_write` never match).
* :func:`read_instances` / :func:`read_rejects` concatenate the Parquet shards into one Arrow table
  after checking **each file's** schema against ``schemas/``: a file from another format version
  or another tool fails with the list of differences, instead of surfacing later as a confusing
  type error or silently missing column.
* :class:`DenseReader` reads single crops and flows from the HDF5 files, opening one file at a
  time and only when first needed (the training loader's access pattern: rows of one shard at a
  time, each row needing one crop and at most one flow).
* :func:`verify_output` is the folder-level check run after a build and before publishing: every
  shard index present, each file's size, SHA-256 and row count equal to ``dataset_info.json``,
  schemas right, and every ``crop_index``/``flow_index`` pointing inside its dense file. It returns
  problems as sentences rather than raising at the first, so one run reports everything.

Remote folders (``gs://...``) are listed and opened through Beam's ``FileSystems`` (imported
lazily).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.atomic import is_remote, is_temp_name, join_path, local_path
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.hdf5_writer import CROPS, FLOWS, VALID
from dptrack_pipeline.shards.manifest import (
    dataset_info_errors,
    is_pairs_info,
    pairs_counter_problems,
    read_dataset_info,
)
from dptrack_pipeline.shards.schema import (
    SCHEMA_VERSION,
    load_hdf5_schema,
    load_parquet_schema,
    resolve_shape,
    schema_differences,
)

INFO = naming.DATASET_INFO_FILENAME


class SchemaMismatchError(ValueError):
    """A shard file's schema differs from the one in ``schemas/``."""


# --------------------------------------------------------------------------- file access


def _list_names(folder: str) -> list[str]:
    if is_remote(folder):
        from apache_beam.io.filesystems import FileSystems

        result = FileSystems.match([join_path(folder, "*")])[0]
        return [m.path.rstrip("/").rsplit("/", 1)[-1] for m in result.metadata_list]
    return os.listdir(local_path(folder))


@contextmanager
def _open_binary(path: str) -> Iterator[IO[bytes]]:
    if is_remote(path):
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            yield f
    else:
        with open(local_path(path), "rb") as f:
            yield f


def list_shards(out_dir: str, prefix: str) -> list[str]:
    """Paths of the shard files of one kind in ``out_dir``, in shard order.

    Args:
        out_dir: output folder (local or remote).
        prefix: :data:`~dptrack_pipeline.shards.naming.PREFIX_INSTANCES`, ``PREFIX_DENSE`` or
            ``PREFIX_REJECTS``.

    Returns:
        Sorted paths of files named ``<prefix>-SSSSS-of-NNNNN.<ext>`` (ext as written for the kind).
    """
    ext = naming.EXT_FOR_PREFIX.get(prefix)
    names = []
    for name in _list_names(out_dir):
        if is_temp_name(name) or not naming.is_shard_filename(name, prefix):
            continue
        if ext is not None and naming.parse_shard_filename(name)[3] != ext:
            continue
        names.append(name)
    names.sort(key=lambda n: (naming.parse_shard_filename(n)[1:3], n))
    return [join_path(out_dir, n) for n in names]


# --------------------------------------------------------------------------- Parquet


def check_parquet_schema(path: str, schema_name: str) -> None:
    """Raise :class:`SchemaMismatchError` unless ``path``'s schema matches ``schema_name``."""
    expected = load_parquet_schema(schema_name, SCHEMA_VERSION)
    with _open_binary(path) as f:
        actual = pq.read_schema(f)
    problems = schema_differences(actual, expected)
    if problems:
        raise SchemaMismatchError(
            f"{path} does not match schema {schema_name}.v{SCHEMA_VERSION}: " + "; ".join(problems)
        )


def _read_tables(out_dir: str, prefix: str, columns: Sequence[str] | None) -> pa.Table:
    paths = list_shards(out_dir, prefix)
    if not paths:
        raise FileNotFoundError(f"no {prefix}-*-of-*.parquet shards in {out_dir}")
    expected = load_parquet_schema(prefix, SCHEMA_VERSION)
    if columns is not None:
        unknown = [c for c in columns if c not in expected.names]
        if unknown:
            raise ValueError(f"unknown {prefix} columns {unknown}; the schema has {expected.names}")
    tables = []
    for path in paths:
        check_parquet_schema(path, prefix)
        with _open_binary(path) as f:
            tables.append(pq.read_table(f, columns=list(columns) if columns is not None else None))
    return pa.concat_tables(tables)


def read_instances(out_dir: str, columns: Sequence[str] | None = None) -> pa.Table:
    """All instance shards of ``out_dir`` as one Arrow table, in shard order.

    Args:
        out_dir: output folder.
        columns: a subset of ``instances.v1`` columns to read (all when ``None``).

    Raises:
        FileNotFoundError: when there is no instance shard.
        SchemaMismatchError: when a file's schema differs from ``instances.v1``.
    """
    return _read_tables(out_dir, naming.PREFIX_INSTANCES, columns)


def read_pairs(out_dir: str, columns: Sequence[str] | None = None) -> pa.Table:
    """All pair shards of a ``dptrack-build pairs`` folder as one table (``pairs.v1``), in shard
    order (see :func:`read_instances`)."""
    return _read_tables(out_dir, naming.PREFIX_PAIRS, columns)


def read_rejects(out_dir: str) -> pa.Table:
    """All reject shards of ``out_dir`` as one Arrow table (see :func:`read_instances`)."""
    return _read_tables(out_dir, naming.PREFIX_REJECTS, None)


# --------------------------------------------------------------------------- HDF5


class DenseReader:
    """Random access to crops and flows of the dense HDF5 files of one folder.

    Keeps at most one HDF5 file open, opened on first use and switched when a row of another shard
    is requested, so iterating over an instance table in shard order opens each file once.

    Example:
        >>> table = read_instances(out_dir)  # doctest: +SKIP
        >>> with DenseReader(out_dir) as dense:  # doctest: +SKIP
        ...     row = table.slice(0, 1).to_pylist()[0]
        ...     crop = dense.crop(row["dense_file"], row["crop_index"])
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self._name: str | None = None
        self._file: h5py.File | None = None
        self._stream: Any = None

    def __enter__(self) -> DenseReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the open file, if any."""
        if self._file is not None:
            self._file.close()
        if self._stream is not None:
            self._stream.close()
        self._name, self._file, self._stream = None, None, None

    def _h5(self, dense_file: str) -> h5py.File:
        if os.path.basename(dense_file) != dense_file or not naming.is_shard_filename(
            dense_file, naming.PREFIX_DENSE
        ):
            raise ValueError(f"{dense_file!r} is not a dense shard file name")
        if self._name != dense_file:
            self.close()
            path = join_path(self.out_dir, dense_file)
            if is_remote(path):
                from apache_beam.io.filesystem import CompressionTypes
                from apache_beam.io.filesystems import FileSystems

                self._stream = FileSystems.open(
                    path, compression_type=CompressionTypes.UNCOMPRESSED
                )
                self._file = h5py.File(self._stream, "r")
            else:
                self._file = h5py.File(local_path(path), "r")
            self._name = dense_file
        assert self._file is not None
        return self._file

    @staticmethod
    def _row(dataset: h5py.Dataset, index: int, what: str) -> np.ndarray:
        index = int(index)
        if not 0 <= index < dataset.shape[0]:
            raise IndexError(f"{what} index {index} outside [0, {dataset.shape[0]})")
        return dataset[index]

    def crop(self, dense_file: str, index: int) -> np.ndarray:
        """Crop ``index`` of ``dense_file``: ``(S, S, 3)`` uint8 RGB."""
        return self._row(self._h5(dense_file)[CROPS], index, f"{dense_file} crop")

    def flow(self, dense_file: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Flow ``index`` of ``dense_file``.

        Returns:
            ``(flow, valid)``: ``(S, S, 2)`` float32 (stored as float16; source crop to target
            crop, target-crop pixels, channel 0 = x) and ``(S, S)`` bool.

        Raises:
            ValueError: for ``index == -1`` (a source row has no flow).
            IndexError: for an index outside the file.
        """
        if int(index) == -1:
            raise ValueError("flow_index -1: source rows have no flow")
        fh = self._h5(dense_file)
        flow = self._row(fh[FLOWS], index, f"{dense_file} flow")
        valid = self._row(fh[VALID], index, f"{dense_file} valid")
        return flow.astype(np.float32), valid.astype(bool)


# --------------------------------------------------------------------------- verification


def _digest(path: str) -> tuple[str, int]:
    if not is_remote(path):
        return file_digest(local_path(path))
    digest, size = hashlib.sha256(), 0
    with _open_binary(path) as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@contextmanager
def _open_h5(path: str) -> Iterator[h5py.File]:
    if is_remote(path):
        with _open_binary(path) as stream, h5py.File(stream, "r") as fh:
            yield fh
    else:
        with h5py.File(local_path(path), "r") as fh:
            yield fh


def _parquet_rows(path: str) -> int:
    with _open_binary(path) as f:
        return pq.read_metadata(f).num_rows


def _check_dense_file(path: str, crop_size: int | None) -> tuple[list[str], dict[str, int]]:
    """Problems of one dense file against ``dense.v1``, and its dataset lengths."""
    problems: list[str] = []
    lengths: dict[str, int] = {}
    doc = load_hdf5_schema("dense", SCHEMA_VERSION)
    name = os.path.basename(path)
    try:
        with _open_h5(path) as fh:
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
                dims = {"N": ds.shape[0], "M": ds.shape[0], "S": size}
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
    with _open_binary(path) as f:
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
    from the manifest and no leftover temporary file lies around; Parquet schemas and HDF5 layouts
    match ``schemas/``; every instance row's ``crop_index``/``flow_index`` points inside its dense
    file (and ``flow_index == -1`` exactly for sources). A ``pairs`` folder (manifest
    ``kind == "pairs"``) is checked the same way with ``pairs-*.parquet`` in place of the instance
    shards, its ``crop_a_index``/``crop_b_index``/``flow_index`` references, and its counters
    (``pairs_planned = pairs_written + pairs_rejected``, same for videos and people rows).

    Returns:
        Problems as sentences; an empty list means the folder is complete and intact.
    """
    problems: list[str] = []
    info = _load_info(out_dir, problems)
    problems.extend(
        f"leftover temporary file {n}" for n in sorted(_list_names(out_dir)) if is_temp_name(n)
    )
    pairs = info is not None and is_pairs_info(info)
    table_kind = naming.PREFIX_PAIRS if pairs else naming.PREFIX_INSTANCES
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
    if pairs:
        problems.extend(
            f"counters do not add up: {p}" for p in pairs_counter_problems(info.get("counters", {}))
        )
        written = info.get("counters", {}).get("pairs_written")
        on_file = sum(
            int(rows or 0) for name, rows in rows_in_info.items() if name.startswith("pairs-")
        )
        if written != on_file:
            problems.append(f"counters say {written} pairs written, the pair shards hold {on_file}")
    return problems
