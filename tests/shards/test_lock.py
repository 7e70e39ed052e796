"""One job per folder: a second holder is refused with the first one named, and a killed holder
does not leave the folder locked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dptrack_pipeline.shards.lock import LOCK_NAME, FolderBusyError, lock_folder
from dptrack_pipeline.shards.progress import write_marker

HOLD = """
import sys, time
from dptrack_pipeline.shards.lock import lock_folder
from dptrack_pipeline.shards.progress import write_marker
with lock_folder(sys.argv[1]):
    write_marker(sys.argv[1], "pairs", "key", 2)
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(out: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"held"
    return process


def test_second_holder_is_refused_and_a_killed_holder_frees_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        with pytest.raises(FolderBusyError, match=rf"pairs job \(pid {holder.pid} on "):
            with lock_folder(str(out)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.05)
    with lock_folder(str(out)):
        assert (out / LOCK_NAME).exists()
    assert not (out / LOCK_NAME).exists()


def test_lock_is_reentrant_across_runs_in_one_process(tmp_path: Path) -> None:
    for _ in range(2):
        with lock_folder(str(tmp_path / "out")):
            write_marker(str(tmp_path / "out"), "run", "key", 1)
