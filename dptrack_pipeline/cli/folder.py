"""The output folder of a job command: refused before any work when it cannot be one, made ready
under the folder lock (interrupted, finished or foreign contents), and one clear line when
writing into it fails.

* :func:`check_out`: ``--out`` that is a file, or inside one, is refused first.
* :func:`prepare_folder` (called holding :func:`~dptrack_pipeline.shards.lock.lock_folder`):
  removes temporary files a killed job left; refuses a folder with shards or an interrupted job
  unless ``--overwrite`` (start over) or ``--resume`` (keep the verified shards, see
  :mod:`dptrack_pipeline.shards.progress`, and the saved work parts,
  :mod:`dptrack_pipeline.shards.parts`); writes the ``_RUNNING`` marker.
* :func:`describe_failure`: a run that failed on an I/O error (disk full, read-only, permission)
  as one sentence naming the folder and what to do; ``None`` for other failures (bugs keep their
  traceback).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Sequence

import click

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.parts import PartStore
from dptrack_pipeline.shards.progress import (
    Progress,
    clear_progress,
    completed_shards,
    read_marker,
    remove_temp_files,
    write_marker,
)


def check_out(out: str) -> None:
    """Refuse an ``--out`` that cannot be a folder, before any work.

    Raises:
        click.UsageError: it names an existing file, or a folder inside a file.
    """
    if "://" in out:
        return
    path = os.path.abspath(out)
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    if path and not os.path.isdir(path):
        raise click.UsageError(f"--out {out}: {path} is a file, not a folder; choose another --out")


def _interrupted(out: str, marker: dict) -> str:
    return (
        f"{out} holds a {marker.get('kind', '?')} job that did not finish (started "
        f"{marker.get('started')}, pid {marker.get('pid')} on {marker.get('host')})"
    )


def prepare_folder(
    out: str,
    kind: str,
    key: str,
    num_shards: int,
    prefixes: Sequence[str],
    *,
    overwrite: bool,
    resume: bool,
) -> Progress:
    """Make ``out`` ready for a job (hold its lock) and return what the job records and keeps.

    Args:
        out: the folder (local or remote; remote folders are neither cleaned nor resumed).
        kind: the job's folder kind; key, num_shards: its run key and shard count.
        prefixes: names of the files the job writes (``--overwrite`` removes them).
        overwrite: start over in a folder that holds shards or an interrupted job.
        resume: keep the complete, verified shards of an interrupted job of the same run key.

    Raises:
        click.ClickException: the folder holds shards or an interrupted job and neither flag
            says what to do; ``--resume`` on a folder that cannot be resumed.
        click.UsageError: ``--resume`` with a remote ``--out``.
    """
    if "://" in out:
        if resume:
            raise click.UsageError("--resume needs a local --out")
        write_marker(out, kind, key, num_shards)
        return Progress(key)
    os.makedirs(out, exist_ok=True)
    removed = remove_temp_files(out)
    if removed:
        click.echo(f"removed {removed} temporary files of an interrupted job", err=True)
    marker = read_marker(out)
    old = sorted(f for f in os.listdir(out) if f.startswith(tuple(prefixes)))
    done: dict = {}
    if resume:
        if marker is None:
            if old:
                finished = naming.DATASET_INFO_FILENAME in old
                raise click.ClickException(
                    f"{out}: nothing to resume (no _RUNNING marker: "
                    f"{'the job finished' if finished else 'no job left it'}); pass "
                    "--overwrite to start over, or choose another --out"
                )
        elif marker.get("kind") != kind:
            raise click.ClickException(f"{_interrupted(out, marker)}; this is a {kind} job")
        else:
            done, notes = completed_shards(out, key, num_shards)
            parts = PartStore(out, key).count()
            click.echo(
                f"resuming: {len(done)} of {num_shards} shards are complete and verified, "
                f"redoing {num_shards - len(done)} with {parts} saved work parts",
                err=True,
            )
            for note in notes:
                click.echo(f"  redo {note}", err=True)
        info = os.path.join(out, naming.DATASET_INFO_FILENAME)
        if os.path.exists(info):
            os.remove(info)
    elif overwrite:
        for name in old:
            os.remove(os.path.join(out, name))
        clear_progress(out)
    elif marker is not None:
        raise click.ClickException(
            f"{_interrupted(out, marker)}; pass --resume to finish it (complete shards are "
            "kept) or --overwrite to start over"
        )
    elif old:
        raise click.ClickException(
            f"{out} already holds shards ({len(old)} files such as {old[0]}); "
            "pass --overwrite to replace them or choose another --out"
        )
    write_marker(out, kind, key, num_shards)
    return Progress(key, done)


_IO_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an input/output error from the device",
}
_ERRNO_RE = re.compile(r"\[Errno (\d+)\]")


def _errno_of(err: BaseException) -> int | None:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _IO_ERRORS:
            return current.errno
        current = current.__cause__ or current.__context__
    # Beam re-raises a worker's error as a RuntimeError whose text holds the original
    match = _ERRNO_RE.search(str(err))
    return int(match[1]) if match and int(match[1]) in _IO_ERRORS else None


def describe_failure(err: BaseException, out: str) -> str | None:
    """One line for a job that failed on an I/O error while writing ``out``, else ``None``."""
    code = _errno_of(err)
    if code is None:
        return None
    what = _IO_ERRORS[code]
    fix = {
        errno.ENOSPC: "free space (or choose another --out)",
        errno.EDQUOT: "free space (or choose another --out)",
        errno.EROFS: "choose a writable --out",
        errno.EACCES: "choose a --out you can write",
        errno.EPERM: "choose a --out you can write",
    }.get(code, "check the device")
    return (
        f"writing {out} failed: {what} ({errno.errorcode.get(code, code)}). Nothing was "
        f"published: no dataset_info.json, temporary files removed. {fix.capitalize()}, then "
        "rerun with --resume to keep the shards already complete"
    )
