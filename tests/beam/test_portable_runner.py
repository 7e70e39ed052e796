"""``run`` and ``pairs`` through Beam's portable path: job service, Fn API, external worker pool.

Flink, Spark and Dataflow Runner v2 all run a Python pipeline the same way: the launcher submits
the pipeline *proto* to a job service (``--runner PortableRunner --job_endpoint``), which stages
its artifacts and asks an SDK worker pool (``--environment_type EXTERNAL``) for SDK harness
processes that execute the DoFns over the Fn API's gRPC data, state and control planes. Here that
is Beam's own local job service (``apache_beam.runners.portability.local_job_service_main``)
with an external worker pool (``apache_beam.runners.worker.worker_pool_main``), both started as
separate processes. The output must be byte-identical to the in-process runner's.

Beam 2.77's local job service runs the job with one SDK harness per environment (its
``FnApiRunner.run_via_runner_api`` does not read ``--direct_num_workers``), so the pool is asked
for one worker; the two-worker Fn API path is ``--direct_running_mode multi_processing``
(``tests/pipelines/test_pairs_pipeline.py::test_multi_processing_workers_write_the_same_bytes``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"service exited ({process.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(
        f"service on port {port} did not start in {timeout:.0f} s: {log.read_text()[-2000:]}"
    )


def _start(module: str, args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    # The pool starts SDK harnesses as `python -c ...`: this venv's python must come first.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    handle = open(log, "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: the pool's harnesses stop with it
    )


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Beam options that submit to a local job service whose workers come from a pool."""
    logs = tmp_path_factory.mktemp("portable")
    job_port, pool_port = _free_port(), _free_port()
    pool = _start(
        "apache_beam.runners.worker.worker_pool_main",
        ["--service_port", str(pool_port)],
        logs / "pool.log",
    )
    jobs = _start(
        "apache_beam.runners.portability.local_job_service_main",
        ["--port", str(job_port), "--staging_dir", str(logs / "staging")],
        logs / "jobs.log",
    )
    try:
        _wait_for(pool_port, pool, logs / "pool.log")
        _wait_for(job_port, jobs, logs / "jobs.log")
        yield [
            "--runner", "PortableRunner", "--job_endpoint", f"localhost:{job_port}",
            "--environment_type", "EXTERNAL", "--environment_config", f"localhost:{pool_port}",
        ]  # fmt: skip
        assert "Starting worker" in (logs / "pool.log").read_text(), "no worker from the pool"
    finally:
        _stop(jobs)
        _stop(pool)


def _cli(*args: str) -> str:
    process = subprocess.run(
        [sys.executable, "-m", "dptrack_pipeline.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-4000:]
    return process.stdout + process.stderr


def _same_files(first: Path, second: Path) -> None:
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    different = [n for n in names if (first / n).read_bytes() != (second / n).read_bytes()]
    assert different == [], f"files differ between runners: {different}"


def _same_bytes_both_ways(common: list[str], portable: list[str], tmp_path: Path) -> None:
    """The job in-process and through the portable runner: the same files, byte for byte."""
    _cli(*common, "--out", str(tmp_path / "default"), "--runner", "FnApiRunner")
    output = _cli(*common, "--out", str(tmp_path / "portable"), *portable)
    assert "PortableRunner" in output
    _same_files(tmp_path / "default", tmp_path / "portable")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    _cli("synth", str(root), "--videos", "2", "--frames", "10", "--seed", "4")
    return root


def test_run_through_the_portable_runner_writes_the_same_bytes(synth: Path, portable, tmp_path):
    common = [
        "run", "--annotations", str(synth / "annotations.json"), "--frames-root", str(synth),
        "--num-shards", "2", "--no-progress",
    ]  # fmt: skip
    _same_bytes_both_ways(common, portable, tmp_path)


def test_pairs_through_the_portable_runner_writes_the_same_bytes(synth: Path, portable, tmp_path):
    common = [
        "pairs", "--videos", str(synth / "frames"), "--crop-size", "32", "--offsets", "2",
        "--num-shards", "2", "--no-progress",
    ]  # fmt: skip
    _same_bytes_both_ways(common, portable, tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        ["--runner", "PortableRunner", "--job_endpoint", "localhost:8099", "--environment_type",
         "DOCKER", "--environment_config", "REGISTRY/dptrack:TAG", "--parallelism", "16"],
        ["--runner", "FlinkRunner", "--flink_master", "FLINK_JM:8081", "--flink_version", "1.19"],
        ["--runner", "SparkRunner", "--spark_master_url", "spark://MASTER:7077"],
        ["--environment_type", "EXTERNAL", "--environment_config", "localhost:50000",
         "--sdk_worker_parallelism", "2", "--number_of_worker_harness_threads", "4"],
    ],
)  # fmt: skip
def test_the_readme_cluster_options_are_beam_options(args: list[str]) -> None:
    """The README's Flink / Spark / pool flags are options this Beam knows (none left over)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parsed = PipelineOptions(args).get_all_options()  # unknown flags are dropped
    names = {a[2:] for a in args if a.startswith("--")}
    assert names <= set(parsed), names - set(parsed)
