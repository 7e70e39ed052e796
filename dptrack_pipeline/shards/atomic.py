"""How is a file written so that readers never see half of it?

:func:`atomic_write` hands the writer a temporary path; only when the ``with`` block ends without an
exception is the temporary file moved onto the final name. A crashed or retried Beam worker
therefore leaves either the complete old file, the complete new file, or a hidden temporary file,
never a truncated shard under a real shard name. This is what TFDS and Beam's own file sinks do.

Local paths: the temporary file sits **in the same folder** (same filesystem, so the final
:func:`os.replace` is an atomic ``rename(2)``) and is named ``.<name>.tmp-<random hex>``: the
leading dot hides it from globs such as ``instances-*.parquet`` and
:func:`~dptrack_pipeline.shards.reader.list_shards`; the random part keeps two workers writing the
same shard (Beam may run a bundle twice) from trampling each other. The data are flushed to disk
(``fsync``) before the rename so a power loss cannot leave the new name pointing at empty blocks.
On failure the temporary file is removed and an existing file at ``path`` is left untouched.

Remote paths (anything with a scheme, e.g. ``gs://bucket/out/x.parquet``): the libraries that write
shards (pyarrow, h5py) want a local, seekable file, so the caller writes a local temporary file (in
the system temp folder); on success it is uploaded through
:class:`apache_beam.io.filesystems.FileSystems` (imported lazily; Beam must have that scheme's
filesystem installed, e.g. ``apache-beam[gcp]``) to a hidden temporary object beside ``path`` and
then renamed onto ``path``. The upload does not go straight to ``path`` because closing a Beam
writer after a failed copy would publish the partial object; a rename (server-side copy on GCS)
publishes only complete bytes. On failure the temporary object is deleted, best effort.
``file://`` paths are treated as local.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator

_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
TEMP_MARKER = ".tmp-"
"""Substring of every temporary name (``.<name>.tmp-<hex>``)."""


def path_scheme(path: str) -> str | None:
    """The URL scheme of ``path`` (``"gs"``), or ``None`` for a local path."""
    match = _SCHEME_RE.match(str(path))
    return match["scheme"].lower() if match else None


def is_remote(path: str) -> bool:
    """Whether ``path`` names a non-local filesystem (has a scheme other than ``file``)."""
    scheme = path_scheme(path)
    return scheme is not None and scheme != "file"


def local_path(path: str) -> str:
    """``path`` without a ``file://`` prefix; other paths unchanged."""
    path = os.fspath(path)
    return path[len("file://") :] if path_scheme(path) == "file" else path


def join_path(folder: str, name: str) -> str:
    """``folder/name`` for a local folder (:func:`os.path.join`) or a remote one (``gs://b/x``)."""
    folder = os.fspath(folder)
    if is_remote(folder):
        return folder + name if folder.endswith("/") else f"{folder}/{name}"
    return os.path.join(folder, name)


def is_temp_name(name: str) -> bool:
    """Whether a file name looks like one of :func:`atomic_write`'s temporary files."""
    base = os.path.basename(name)
    return base.startswith(".") and TEMP_MARKER in base


def _temp_name(final_name: str) -> str:
    return f".{final_name}{TEMP_MARKER}{secrets.token_hex(8)}"


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[str]:
    """Write ``path`` all-or-nothing through a temporary file.

    Args:
        path: final file path, local or remote (``gs://...``). Its folder must exist for local
            paths.

    Yields:
        A local temporary path for the caller to create and close (e.g. pass it to
        :func:`pyarrow.parquet.write_table` or :class:`h5py.File`).

    Raises:
        FileNotFoundError: when the block ends without having created the temporary file.
        Any exception raised inside the block, after the temporary file has been removed.

    Example:
        >>> with atomic_write(os.path.join(folder, "x.json")) as tmp:  # doctest: +SKIP
        ...     with open(tmp, "w") as f:
        ...         f.write("{}")
    """
    path = os.fspath(path)
    if is_remote(path):
        with _atomic_write_remote(path) as tmp:
            yield tmp
        return
    path = local_path(path)
    folder, name = os.path.split(os.path.abspath(path))
    if not name:
        raise ValueError(f"atomic_write needs a file path, got {path!r}")
    tmp = os.path.join(folder, _temp_name(name))
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise FileNotFoundError(f"atomic_write: the block did not create {tmp!r}")
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def _atomic_write_remote(path: str) -> Iterator[str]:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    parent, name = path.rsplit("/", 1)
    if not name:
        raise ValueError(f"atomic_write needs a file path, got {path!r}")
    remote_tmp = f"{parent}/{_temp_name(name)}"
    folder = tempfile.mkdtemp(prefix="dptrack-atomic-")
    tmp = os.path.join(folder, _temp_name(name))
    uploaded = False
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise FileNotFoundError(f"atomic_write: the block did not create {tmp!r}")
        # UNCOMPRESSED: Beam's default (AUTO) would gzip a name ending in .gz behind our back.
        uploaded = True
        with (
            open(tmp, "rb") as src,
            FileSystems.create(
                remote_tmp,
                mime_type="application/octet-stream",
                compression_type=CompressionTypes.UNCOMPRESSED,
            ) as dst,
        ):
            shutil.copyfileobj(src, dst, length=8 << 20)
        FileSystems.rename([remote_tmp], [path])
    except BaseException:
        if uploaded:
            with contextlib.suppress(Exception):
                FileSystems.delete([remote_tmp])
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
