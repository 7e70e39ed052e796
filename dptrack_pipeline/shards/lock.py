"""One job at a time per output folder: :func:`lock_folder`.

Two jobs writing into one folder at once would each "succeed" and leave shards of both datasets
under one manifest. So a job holds an exclusive ``flock(2)`` on ``<out>/.dptrack.lock`` from
before it touches the folder until after its manifest is written; a second job finds the lock
taken and stops with a message naming the holder (from the ``_RUNNING`` marker,
:mod:`dptrack_pipeline.shards.progress`). The kernel releases the lock when the holder exits, even
on ``kill -9``, so a stale lock cannot block a later run; the lock file is removed on release.

Scope: local folders, on one machine (``flock`` on NFS depends on the server). Remote folders
(``gs://``) are not locked: give each job its own ``--out``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator

from dptrack_pipeline.shards.atomic import is_remote, local_path
from dptrack_pipeline.shards.progress import read_marker

LOCK_NAME = ".dptrack.lock"


class FolderBusyError(RuntimeError):
    """Another job holds the folder's lock."""


@contextlib.contextmanager
def lock_folder(out: str) -> Iterator[None]:
    """Hold the folder's lock for the ``with`` block (creates the folder; no-op when remote).

    Raises:
        FolderBusyError: another process holds it; the message names it when it can.
    """
    if is_remote(out):
        yield
        return
    folder = local_path(out)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            marker = read_marker(out) or {}
            holder = (
                f"{marker.get('kind', 'a')} job (pid {marker.get('pid')} on {marker.get('host')}, "
                f"started {marker.get('started')})"
                if marker
                else "another dptrack-build job"
            )
            raise FolderBusyError(
                f"{out} is being written by {holder}; wait for it to finish or choose another --out"
            ) from None
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    finally:
        os.close(fd)
