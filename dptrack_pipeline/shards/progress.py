"""What a job leaves in its folder while it runs, so that an interrupted folder can never pass for
a finished one, and so that ``--resume`` redoes only what is missing.

A finished folder is one with ``dataset_info.json`` (written last, atomically, by the pipeline's
final step). While a job runs, its folder also holds:

* ``_RUNNING`` (:data:`MARKER`): JSON naming the job (``kind``), its :func:`run_key`, shard
  count, process id, host and start time (UTC). Written before the first shard, removed right
  after ``dataset_info.json``. A folder with ``_RUNNING`` and no live job (see
  :mod:`dptrack_pipeline.shards.lock`) was interrupted: killed, out of memory, out of disk.
* ``.dptrack-progress/shard-SSSSS.json`` (:data:`PROGRESS_DIR`): one **receipt** per shard whose
  files are all written: the files' manifest entries (name, rows, bytes, SHA-256) and the shard's
  counters (its workers' and its writer's). Written atomically after the shard's last file.

``--resume`` (:func:`completed_shards`) keeps a shard when its receipt has the same run key and
shard count as the new run and every file it lists is on disk with that size and SHA-256; the
pipeline then skips that shard's work (windows, chunks) and writes the manifest from the kept
receipts plus the new shards. Shards are a function of the input only (salted hash of a video id,
rows sorted inside), and counters are summed per shard, so the resumed folder is byte-identical
to an uninterrupted run. Receipts and marker are removed with the marker, so a finished folder
holds only its shards and manifest.

The **run key** is a SHA-256 over the job kind, its recorded configuration (as in
``dataset_info.json``), the shard count and the SHA-256 of each input file the caller names
(annotation, PoseTrack and people files): resuming with other flags or edited annotations
refuses the old shards. Frames and videos are not hashed (too big); do not change them under an
interrupted run.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dptrack_pipeline.shards.atomic import (
    atomic_write,
    is_remote,
    is_temp_name,
    join_path,
    local_path,
)
from dptrack_pipeline.shards.hashing import file_digest

MARKER = "_RUNNING"
PROGRESS_DIR = ".dptrack-progress"


@dataclass(frozen=True)
class Receipt:
    """A shard whose files are complete: their manifest entries and the shard's counters."""

    shard: int
    files: tuple[dict[str, Any], ...]
    counters: dict[str, int]


@dataclass(frozen=True)
class Progress:
    """What a job records as it goes (``run_key``) and the shards a resumed job keeps."""

    run_key: str
    done: Mapping[int, Receipt] = field(default_factory=dict)


def run_key(
    kind: str, config: Mapping[str, Any], num_shards: int, input_files: Sequence[str] = ()
) -> str:
    """The identity of a job's output (see the module docstring), as 64 hex digits."""
    digest = hashlib.sha256()
    head = {"kind": kind, "config": config, "num_shards": int(num_shards)}
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for path in input_files:
        digest.update(b"\0" + file_digest(path)[0].encode())
    return digest.hexdigest()


def _write_json(path: str, doc: Mapping[str, Any]) -> None:
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(local_path(path), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def write_marker(out: str, kind: str, key: str, num_shards: int) -> None:
    """Write ``out/_RUNNING`` (the folder is being written by this process)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    doc = {
        "kind": kind,
        "run_key": key,
        "num_shards": int(num_shards),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": now,
    }
    _write_json(join_path(out, MARKER), doc)


def read_marker(out: str) -> dict[str, Any] | None:
    """The ``_RUNNING`` marker of a local folder, or ``None`` when there is none (or it is
    unreadable: a marker is only ever written whole, so that means no marker)."""
    if is_remote(out):
        return None
    return _read_json(os.path.join(local_path(out), MARKER))


def receipt_path(out: str, shard: int) -> str:
    return join_path(join_path(out, PROGRESS_DIR), f"shard-{shard:05d}.json")


def write_receipt(
    out: str,
    key: str,
    num_shards: int,
    shard: int,
    files: Sequence[Mapping[str, Any]],
    counters: Mapping[str, int],
) -> None:
    """Record that shard ``shard`` is complete (call after its last file is in place)."""
    if not is_remote(out):
        os.makedirs(os.path.join(local_path(out), PROGRESS_DIR), exist_ok=True)
    doc = {
        "run_key": key,
        "num_shards": int(num_shards),
        "shard": int(shard),
        "files": [dict(f) for f in files],
        "counters": {k: int(v) for k, v in counters.items()},
    }
    _write_json(receipt_path(out, shard), doc)


def _intact(folder: str, entry: Mapping[str, Any]) -> str | None:
    path = os.path.join(folder, str(entry.get("file", "")))
    if not os.path.isfile(path):
        return f"{entry.get('file')} is missing"
    if os.path.getsize(path) != entry.get("bytes"):
        return (
            f"{entry['file']} is {os.path.getsize(path)} bytes, its receipt says {entry['bytes']}"
        )
    if file_digest(path)[0] != entry.get("sha256"):
        return f"{entry['file']}: SHA-256 differs from its receipt"
    return None


def completed_shards(out: str, key: str, num_shards: int) -> tuple[dict[int, Receipt], list[str]]:
    """The shards of an interrupted local folder that a resumed job can keep.

    Returns:
        ``(done, notes)``: the receipts of shards kept, by shard index, and one sentence per
        receipt that is not kept (other run key or shard count, a file missing, resized or
        altered). Files are hashed in full.
    """
    folder = local_path(out)
    progress = os.path.join(folder, PROGRESS_DIR)
    done: dict[int, Receipt] = {}
    notes: list[str] = []
    names = sorted(os.listdir(progress)) if os.path.isdir(progress) else []
    for name in names:
        if is_temp_name(name) or not name.endswith(".json"):
            continue
        doc = _read_json(os.path.join(progress, name))
        if doc is None:
            notes.append(f"{name}: unreadable receipt")
            continue
        shard = doc.get("shard")
        if doc.get("run_key") != key or doc.get("num_shards") != num_shards:
            notes.append(f"shard {shard}: written by a run with other inputs or settings")
            continue
        problem = next((p for p in map(lambda e: _intact(folder, e), doc["files"]) if p), None)
        if problem:
            notes.append(f"shard {shard}: {problem}")
            continue
        done[int(shard)] = Receipt(int(shard), tuple(doc["files"]), dict(doc["counters"]))
    return done, notes


def remove_temp_files(out: str) -> int:
    """Remove the hidden temporary files (:func:`~dptrack_pipeline.shards.atomic.atomic_write`)
    a killed job left in a local folder and its progress folder; returns how many."""
    if is_remote(out):
        return 0
    removed = 0
    progress = os.path.join(local_path(out), PROGRESS_DIR)
    for folder in (local_path(out), progress, os.path.join(progress, "parts")):
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if is_temp_name(name):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
                    removed += 1
    return removed


def clear_progress(out: str) -> None:
    """Remove the receipts and the ``_RUNNING`` marker (the job finished, or starts over)."""
    if is_remote(out):
        from apache_beam.io.filesystems import FileSystems

        for path in (join_path(out, PROGRESS_DIR), join_path(out, MARKER)):
            with contextlib.suppress(Exception):
                FileSystems.delete([path])
        return
    folder = local_path(out)
    shutil.rmtree(os.path.join(folder, PROGRESS_DIR), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(folder, MARKER))
