"""How are an output folder's shards read back?

* :func:`list_shards` finds the shard files of one kind by name (hidden temporary files from
  :func:`~dptrack_pipeline.shards.atomic.atomic_write` never match).
* :func:`read_instances` / :func:`read_rejects` concatenate the Parquet shards into one Arrow table
  after checking **each file's** schema against ``schemas/``: a file from another format version
  or another tool fails with the list of differences, instead of surfacing later as a confusing
  type error or silently missing column.
* :class:`DenseReader` reads single crops and flows from the HDF5 files, opening one file at a
  time and only when first needed (the training loader's access pattern: rows of one shard at a
  time, each row needing one crop and at most one flow). A chunk that fails HDF5's Fletcher-32
  check raises :class:`CorruptShardError` naming the file.

Whether a folder is complete and intact is :mod:`dptrack_pipeline.shards.verify`.

Remote folders (``gs://...``) are listed and opened through Beam's ``FileSystems`` (imported
lazily).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import deflate
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.atomic import is_remote, is_temp_name, join_path, local_path
from dptrack_pipeline.shards.dense_codec import FLOW_SCALE, decode_crop, decode_flow, decode_valid
from dptrack_pipeline.shards.fletcher32 import fletcher32
from dptrack_pipeline.shards.hdf5_writer import CROPS, FLOWS, VALID
from dptrack_pipeline.shards.schema import (
    load_parquet_schema,
    readable_versions,
    schema_differences,
)

INFO = naming.DATASET_INFO_FILENAME


class SchemaMismatchError(ValueError):
    """A shard file's schema differs from the one in ``schemas/``."""


class CorruptShardError(ValueError):
    """A shard file that is missing, not listed in ``dataset_info.json``, of the wrong size,
    altered, or that fails its format's checksums as it is read."""


# --------------------------------------------------------------------------- file access


def list_names(folder: str) -> list[str]:
    if is_remote(folder):
        from apache_beam.io.filesystems import FileSystems

        result = FileSystems.match([join_path(folder, "*")])[0]
        return [m.path.rstrip("/").rsplit("/", 1)[-1] for m in result.metadata_list]
    return os.listdir(local_path(folder))


@contextmanager
def open_binary(path: str) -> Iterator[IO[bytes]]:
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
    for name in list_names(out_dir):
        if is_temp_name(name) or not naming.is_shard_filename(name, prefix):
            continue
        if ext is not None and naming.parse_shard_filename(name)[3] != ext:
            continue
        names.append(name)
    names.sort(key=lambda n: (naming.parse_shard_filename(n)[1:3], n))
    return [join_path(out_dir, n) for n in names]


# --------------------------------------------------------------------------- Parquet


def file_schema_version(schema: pa.Schema) -> int | None:
    """The ``dptrack.schema_version`` a Parquet file's schema metadata records (``None``: none)."""
    raw = (schema.metadata or {}).get(b"dptrack.schema_version")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def check_parquet_schema(path: str, schema_name: str) -> int:
    """Check ``path`` against the version of ``schema_name`` it declares; return that version.

    Raises:
        SchemaMismatchError: a version the readers do not accept, or a schema that differs from
            the one of its version.
    """
    with open_binary(path) as f:
        actual = pq.read_schema(f)
    version = file_schema_version(actual)
    readable = readable_versions(schema_name)
    declared = (actual.metadata or {}).get(b"dptrack.schema", b"").decode("utf-8", "replace")
    if declared != schema_name:  # another file kind: compare with what this one should be
        version = readable[-1]
    if version not in readable:
        raise SchemaMismatchError(
            f"{path} is {schema_name} version {version}; this dptrack reads versions "
            f"{', '.join(map(str, readable))}"
        )
    problems = schema_differences(actual, load_parquet_schema(schema_name, version))
    if problems:
        raise SchemaMismatchError(
            f"{path} does not match schema {schema_name}.v{version}: " + "; ".join(problems)
        )
    return version


def _read_tables(out_dir: str, prefix: str, columns: Sequence[str] | None) -> pa.Table:
    paths = list_shards(out_dir, prefix)
    if not paths:
        raise FileNotFoundError(f"no {prefix}-*-of-*.parquet shards in {out_dir}")
    tables = []
    versions = set()
    for path in paths:
        version = check_parquet_schema(path, prefix)
        versions.add(version)
        if columns is not None:
            names = load_parquet_schema(prefix, version).names
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise ValueError(
                    f"unknown {prefix}.v{version} columns {unknown} in {path}; the schema has "
                    f"{names}"
                )
        with open_binary(path) as f:
            tables.append(pq.read_table(f, columns=list(columns) if columns is not None else None))
    if len(versions) > 1:
        raise SchemaMismatchError(
            f"{out_dir} mixes {prefix} versions {sorted(versions)}: one folder, one version"
        )
    return pa.concat_tables(tables)


def columns_as_arrays(table: pa.Table, *names: str) -> tuple[np.ndarray, ...]:
    """Scalar columns of a table as numpy arrays, in the order named."""
    return tuple(np.asarray(table.column(n).to_numpy(zero_copy_only=False)) for n in names)


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
        self._version = 1
        self._scale = FLOW_SCALE
        self._size = 0
        self._rows: dict[str, RowReader] = {}

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
        self._rows = {}

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
            attrs = self._file.attrs
            self._version = int(attrs.get("schema_version", 1))
            if self._version not in readable_versions("dense"):
                version = self._version
                self.close()
                raise ValueError(
                    f"{path}: dense schema version {version} is not readable by this dptrack "
                    f"(it reads versions {list(readable_versions('dense'))})"
                )
            self._scale = int(attrs.get("flow_scale", FLOW_SCALE))
            self._size = int(attrs.get("crop_size", 0))
        assert self._file is not None
        return self._file

    def _row(self, dense_file: str, name: str, index: int, what: str) -> np.ndarray:
        fh = self._h5(dense_file)
        rows = self._rows.get(name)
        if rows is None:
            rows = self._rows[name] = RowReader(fh[name])
        index = int(index)
        if not 0 <= index < rows.num_rows:
            raise IndexError(f"{what} index {index} outside [0, {rows.num_rows})")
        try:
            return rows.read(index)
        except (OSError, ValueError, deflate.DeflateError) as err:  # checksum or inflate failed
            raise CorruptShardError(
                f"{join_path(self.out_dir, self._name or '?')}: {what} {index} is damaged "
                f"({err}); check the folder with `dptrack-build inspect`, or rebuild it"
            ) from err

    def crop(self, dense_file: str, index: int, *, channels_first: bool = False) -> np.ndarray:
        """Crop ``index`` of ``dense_file``: ``(S, S, 3)`` uint8 RGB, or ``(3, S, S)``
        (C-contiguous, a tensor's layout) with ``channels_first``."""
        stored = self._row(dense_file, CROPS, index, f"{dense_file} crop")
        return decode_crop(stored, self._version, channels_first=channels_first)

    def flow(self, dense_file: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Flow ``index`` of ``dense_file``.

        Returns:
            ``(flow, valid)``: ``(S, S, 2)`` float32 (source crop to target crop, target-crop
            pixels, channel 0 = x; stored as fixed point at 1/16 px, float16 in version-1
            files) and ``(S, S)`` bool.

        Raises:
            ValueError: for ``index == -1`` (a source row has no flow).
            IndexError: for an index outside the file.
        """
        if int(index) == -1:
            raise ValueError("flow_index -1: source rows have no flow")
        flow = self._row(dense_file, FLOWS, index, f"{dense_file} flow")
        valid = self._row(dense_file, VALID, index, f"{dense_file} valid")
        return (
            decode_flow(flow, self._version, self._scale),
            decode_valid(valid, self._version, self._size or flow.shape[0]),
        )


class RowReader:
    """Reads row ``i`` of a dataset stored one row per chunk, as its stored array.

    When the dataset's filters are the ones dptrack writes (deflate, optionally byte shuffle,
    optionally Fletcher-32; ``schemas/dense.v*.json``), the chunk's bytes are read with
    ``read_direct_chunk`` and unfiltered here: the deflate stream is inflated by libdeflate (the
    ``deflate`` package, about 3x zlib's speed) and the bytes are unshuffled. Damage is still
    caught: a deflate stream ends with the Adler-32 of the data, which inflating verifies
    (``deflate.DeflateError``), a stream that inflates to another length fails too, and a
    chunk without deflate has its Fletcher-32 checked
    (:func:`~dptrack_pipeline.shards.fletcher32.fletcher32`, ``ValueError`` on a mismatch); a
    damaged Fletcher-32 of an intact deflated chunk is left to ``verify``'s SHA-256. That
    skips h5py's selection machinery and zlib: 0.44 ms instead of 0.70 ms a row (the 1,655 rows
    of ``benchmarks/bench_reader.py``). Any other layout or filter (another chunk shape, a chunk
    whose filters were skipped) is read by h5py as usual.
    """

    _KNOWN_FILTERS = {"gzip", None}

    def __init__(self, dataset: h5py.Dataset) -> None:
        self._dataset = dataset
        self.num_rows = int(dataset.shape[0])
        self._row_shape = tuple(dataset.shape[1:])
        self._dtype = dataset.dtype
        self._deflate = dataset.compression == "gzip"
        self._shuffle = bool(dataset.shuffle)
        self._fletcher = bool(dataset.fletcher32)
        self._direct = (
            dataset.chunks == (1, *self._row_shape)
            and dataset.compression in self._KNOWN_FILTERS
            and not dataset.scaleoffset
            and self._dtype.kind in "uif"
        )
        self._zeros = (0,) * len(self._row_shape)
        self._nbytes = int(np.prod(self._row_shape)) * self._dtype.itemsize

    def read(self, index: int) -> np.ndarray:
        if not self._direct:
            return self._dataset[index]
        mask, data = self._dataset.id.read_direct_chunk((index, *self._zeros))
        if mask:  # a filter was skipped for this chunk: let HDF5 undo what was applied
            return self._dataset[index]
        if self._fletcher:
            data, stored = data[:-4], int.from_bytes(data[-4:], "little")
            # A deflated chunk carries the Adler-32 of its bytes, which inflating verifies: a
            # damaged chunk fails there, so the Fletcher-32 is checked only without deflate.
            if not self._deflate and fletcher32(data) != stored:
                raise ValueError("Fletcher-32 checksum mismatch")
        if self._deflate:
            data = deflate.zlib_decompress(data, self._nbytes)
            if len(data) != self._nbytes:
                raise ValueError(f"chunk inflates to {len(data)} bytes, not {self._nbytes}")
        itemsize = self._dtype.itemsize
        if self._shuffle and itemsize > 1:
            planes = np.frombuffer(data, np.uint8).reshape(itemsize, -1)
            bytes_ = np.empty((planes.shape[1], itemsize), np.uint8)
            for k in range(itemsize):  # one plane at a time: 5x a transposed copy
                bytes_[:, k] = planes[k]
            return bytes_.view(self._dtype).reshape(self._row_shape)
        return np.frombuffer(data, self._dtype).reshape(self._row_shape)
