"""Crash safety, resume, concurrency and I/O errors, on real multi-process runs.

A run killed at any moment leaves a folder that cannot pass for a finished one (no
``dataset_info.json``, a ``_RUNNING`` marker); ``--resume`` finishes it and the result is
byte-identical to an uninterrupted run. A second job into a folder being written stops with a
message naming the first. A full disk or a read-only folder is one line, with no temporary files
and no manifest left behind.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dptrack_pipeline.beam.propagate import InstanceShardWriter
from dptrack_pipeline.shards.progress import MARKER, PROGRESS_DIR
from tests.reliability.conftest import invoke, make_synth

SHARDS = 6
MULTI = ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 synthetic videos of 16 frames: 6 shards of work, a few seconds per run."""
    return make_synth(tmp_path_factory.mktemp("interrupt") / "synth", 6, 16, 4)


def _args(big: Path, out: Path) -> list[str]:
    return [
        "run", "--annotations", big / "annotations.json", "--frames-root", big, "--out", out,
        "--num-shards", str(SHARDS), "--crop-size", "32", "--no-progress",
    ]  # fmt: skip


def _spawn(args: list, log: Path) -> subprocess.Popen:
    """``dptrack-build args`` in its own process group (so that a kill takes its workers too)."""
    code = "from dptrack_pipeline.cli import main; main()"
    command = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(big: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, float]:
    """An uninterrupted multi-process run: its files and how long it took."""
    out = tmp_path_factory.mktemp("reference") / "out"
    start = time.monotonic()
    process = _spawn([*_args(big, out), *MULTI], out.parent / "log")
    assert process.wait(timeout=300) == 0, (out.parent / "log").read_text()
    return _files(out), time.monotonic() - start


def _wait_for_receipt(out: Path, process: subprocess.Popen) -> None:
    while not list((out / PROGRESS_DIR).glob("shard-*.json")) and process.poll() is None:
        time.sleep(0.005)


@pytest.mark.parametrize("seed", [0, 1, 2, "first receipt"])
def test_killed_run_resumes_to_identical_bytes(
    seed: int | str, big: Path, reference: tuple[dict, float], tmp_path: Path
) -> None:
    """Killed (the whole process group, ``SIGKILL``) at a random moment, or as soon as the first
    shard is complete, then resumed."""
    files, duration = reference
    out = tmp_path / "out"
    process = _spawn([*_args(big, out), *MULTI], tmp_path / "log")
    if seed == "first receipt":
        _wait_for_receipt(out, process)
    else:
        time.sleep(random.Random(seed).uniform(0.15, 0.75) * duration)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if (out / "dataset_info.json").exists() and not (out / MARKER).exists():
        pytest.skip(f"seed {seed}: the run finished before the kill")
    receipts = len(list((out / PROGRESS_DIR).glob("shard-*"))) if out.exists() else -1
    parts = len(list((out / PROGRESS_DIR / "parts").glob("*.pkl"))) if out.exists() else -1
    print(f"seed {seed}: killed with {receipts} receipts, {parts} parts")  # noqa: T201 (with -s)
    assert (out / MARKER).exists() or not out.exists()
    assert not (out / "dataset_info.json").exists() or (out / MARKER).exists()
    if out.exists():
        code, output = invoke(_args(big, out))  # neither flag: refused, nothing touched
        assert code == 1 and "--resume" in output and "did not finish" in output, output
    code, output = invoke([*_args(big, out), "--resume", "--runner", "FnApiRunner"])
    assert code == 0, output
    assert _files(out) == files


def test_resume_keeps_complete_shards_and_redoes_the_rest(
    big: Path, reference: tuple[dict, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails while writing shard 4: the other shards it completed are kept (their
    receipts verified by SHA-256), a kept shard altered since is redone from the saved work
    parts (no window is computed again), and the result is the uninterrupted run's bytes."""
    out = tmp_path / "out"
    write = InstanceShardWriter.write

    def failing(self, shard, items):
        if shard == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, shard, items)

    monkeypatch.setattr(InstanceShardWriter, "write", failing)
    code, output = invoke([*_args(big, out), "--runner", "FnApiRunner"])
    assert code == 1 and "no space left" in output.splitlines()[-1], output
    assert not (out / "dataset_info.json").exists() and (out / MARKER).exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    receipts = sorted((out / PROGRESS_DIR).glob("shard-*.json"))
    assert 1 <= len(receipts) < SHARDS
    kept = [int(p.stem.split("-")[1]) for p in receipts]
    monkeypatch.setattr(InstanceShardWriter, "write", write)

    altered = out / f"rejects-{kept[0]:05d}-of-{SHARDS:05d}.parquet"
    altered.write_bytes(altered.read_bytes() + b"x")

    def no_flows(*args, **kwargs):
        raise AssertionError("a resumed run computed a window again")

    monkeypatch.setattr("dptrack_pipeline.beam.propagate.process_windows", no_flows)
    code, output = invoke([*_args(big, out), "--resume", "--runner", "FnApiRunner"])
    assert code == 0, output
    assert " saved work parts" in output and " with 0 saved" not in output, output
    assert f"{len(kept) - 1} of {SHARDS} shards are complete" in output, output
    assert f"redo shard {kept[0]}" in output and "bytes" in output, output
    assert _files(out) == reference[0]

    code, output = invoke([*_args(big, out), "--resume"])
    assert code == 1 and "nothing to resume" in output


def test_second_job_into_the_same_folder_is_refused(
    big: Path, reference: tuple[dict, float], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = _spawn([*_args(big, out), *MULTI], tmp_path / "log")
    try:
        deadline = time.monotonic() + 60
        while not (out / MARKER).exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        for flags in ([], ["--overwrite"], ["--resume"]):
            code, output = invoke([*_args(big, out), *flags])
            assert code == 1 and "is being written by run job (pid" in output, output
    finally:
        assert process.wait(timeout=300) == 0, (tmp_path / "log").read_text()
    assert _files(out) == reference[0]


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                            capture_output=True)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.decode().strip()}")


@pytest.fixture()
def small_disk(tmp_path: Path, reference: tuple[dict, float]):
    """A tmpfs with room for about half of the reference output."""
    path = tmp_path / "disk"
    size = sum(map(len, reference[0].values())) // 2
    _mount_tmpfs(path, f"size={size // 1024}k")
    yield path
    subprocess.run(["umount", str(path)], check=False)


def test_full_disk_is_one_line_and_resumes_after_space_is_freed(
    big: Path, reference: tuple[dict, float], small_disk: Path
) -> None:
    out = small_disk / "out"
    code, output = invoke([*_args(big, out), "--runner", "FnApiRunner"])
    lines = output.strip().splitlines()
    assert code == 1 and "no space left on the device (ENOSPC)" in lines[-1], output
    assert "Traceback" not in output and not any(line.startswith("ERROR") for line in lines)
    assert not (out / "dataset_info.json").exists() and (out / MARKER).exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    subprocess.run(["mount", "-o", "remount,size=200M", str(small_disk)], check=True)
    code, output = invoke([*_args(big, out), "--resume", "--runner", "FnApiRunner"])
    assert code == 0, output
    assert _files(out) == reference[0]


def test_read_only_out_is_one_line(big: Path, tmp_path: Path) -> None:
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "ro,size=1M")
    try:
        code, output = invoke([*_args(big, disk / "out"), "--runner", "FnApiRunner"])
        assert code == 1 and "read-only" in output.strip().splitlines()[-1], output
        assert "Traceback" not in output
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_pairs_job_resumes_to_identical_bytes(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dptrack_pipeline.beam.pairs import PairShardWriter

    def pairs_args(out: Path) -> list:
        return ["pairs", "--videos", big / "frames", "--out", out, "--offsets", "1",
                "--num-shards", "4", "--crop-size", "16", "--no-progress",
                "--runner", "FnApiRunner"]  # fmt: skip

    code, output = invoke(pairs_args(tmp_path / "clean"))
    assert code == 0, output
    write = PairShardWriter.write

    def failing(self, shard, items):
        if shard == 2:
            raise OSError(errno.EROFS, "Read-only file system")
        return write(self, shard, items)

    monkeypatch.setattr(PairShardWriter, "write", failing)
    out = tmp_path / "out"
    code, output = invoke(pairs_args(out))
    assert code == 1 and "read-only" in output.splitlines()[-1], output
    monkeypatch.setattr(PairShardWriter, "write", write)
    code, output = invoke([*pairs_args(out), "--resume"])
    assert code == 0 and "shards are complete and verified" in output, output
    assert _files(out) == _files(tmp_path / "clean")
