"""Throughput of the ``run`` pipeline against its flow estimator alone, on real 720p video.

Measures, in one process and one run (the machines are noisy, so compare ratios):

1. ``estimator``: pairs/s of the estimator alone on frames already decoded in memory, over exactly
   the directed pairs the pipeline will compute;
2. ``pipeline``: pairs/s of the whole ``run`` pipeline (plan, decode from the video file, flow,
   forward-backward check, propagation, crops, crop flows, Parquet/HDF5 writing, manifest) on
   the same frames with the same number of workers (``flows_computed / wall time``);
3. their ratio (goal >= 0.85) and the peak RSS of this process and of its children
   (``--pipeline-only`` skips 1, so the peak is the pipeline's alone).

Input: ``../shared/data/video/street_people_720p.avi`` (1280x720). The annotations are made up
here: every 8th frame "labelled" with ``--people`` boxes carrying 100 DensePose points each (the
numbers of a real DensePose-PoseTrack frame); the estimator does not care what the labels are.

    python benchmarks/bench_pipeline.py [--frames 205] [--workers 1] [--estimator dis]
        [--threads T] [--pipeline-only] [--out DIR] [--phases]

``--phases`` also times the estimator's batches inside the pipeline, to split its wall time into
the job's fixed start (Beam's graph, the runner, the first frames), the time from the first flow
to the last, and the fixed end (the last propagation, the shard writer, the manifest).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.flow.registry import create_estimator  # noqa: E402
from dptrack_pipeline.frames import iter_video_frames  # noqa: E402
from dptrack_pipeline.perf.annotations import make_annotations  # noqa: E402
from dptrack_pipeline.perf.timing import peak_rss_mib  # noqa: E402
from dptrack_pipeline.propagate.config import PropagateConfig  # noqa: E402
from dptrack_pipeline.propagate.plan import plan_windows  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "street_people_720p.avi"


def _flow_chunk(args: tuple[str, dict, list[tuple[np.ndarray, np.ndarray]]]) -> int:
    name, options, pairs = args
    est = create_estimator(name, **options)
    est.setup()
    for a, b in pairs:
        est.estimate_batch([(a, b)])
    return len(pairs)


def bench_estimator(
    name: str, options: dict, frames: dict[int, np.ndarray], pairs: list, workers: int
) -> float:
    """Pairs/s of the estimator alone over ``pairs`` on decoded frames."""
    work = [(frames[a], frames[b]) for a, b in pairs]
    if workers == 1:
        est = create_estimator(name, **options)
        est.setup()
        est.estimate_batch(work[:1])  # warm-up
        t0 = time.perf_counter()
        for pair in work:
            est.estimate_batch([pair])
        return len(work) / (time.perf_counter() - t0)
    chunks = [(name, options, work[i::workers]) for i in range(workers)]
    # spawn, not fork: a forked child inherits OpenCV's thread pool in a locked state and hangs.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_flow_chunk, [(name, options, work[:1])] * workers)  # warm-up
        t0 = time.perf_counter()
        done = sum(pool.map(_flow_chunk, chunks))
        return done / (time.perf_counter() - t0)


def record_batches(name: str) -> list[tuple[float, float]]:
    """Make every ``estimate_batch`` of estimator ``name``'s class (in this process) append its
    ``(start, end)`` ``perf_counter`` times to the returned list."""
    cls = type(create_estimator(name))
    original = cls.estimate_batch
    times: list[tuple[float, float]] = []

    def timed(self, pairs):
        start = time.perf_counter()
        flows = original(self, pairs)
        times.append((start, time.perf_counter()))
        return flows

    cls.estimate_batch = timed
    return times


def phase_lines(t0: float, t1: float, batches: list[tuple[float, float]], flows: int) -> list[str]:
    """Where the pipeline's wall time went around the estimator's batches."""
    first, last = batches[0][0], batches[-1][1]
    inside = sum(end - start for start, end in batches)
    return [
        f"phases          : {first - t0:5.2f} s before the first flow, {last - first:5.2f} s "
        f"from first to last ({inside:5.2f} s in {len(batches)} estimator batches, "
        f"{last - first - inside:4.2f} s between them), {t1 - last:5.2f} s after the last",
        f"first to last   : {flows / (last - first):7.2f} pairs/s",
    ]


def bench_pipeline(
    config: PropagateConfig, workers: int, batches: list | None = None
) -> tuple[float, dict, list[str]]:
    """Pairs/s of the whole pipeline (DirectRunner), its counters, and (when ``batches``
    records the estimator's batches in this process) the phase lines."""
    from pipelines.propagate import run

    out = Path(config.out)
    args = [f"--direct_num_workers={workers}"]
    if workers > 1:
        args.append("--direct_running_mode=multi_processing")
    t0 = time.perf_counter()
    run(config, args)
    t1 = time.perf_counter()
    info = json.loads((out / "dataset_info.json").read_text())
    flows = info["counters"]["flows_computed"]
    lines = phase_lines(t0, t1, batches, flows) if batches else []
    return flows / (t1 - t0), info["counters"], lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=205, help="frames of the video to use")
    parser.add_argument("--people", type=int, default=3, help="labelled people per frame")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--estimator", default="dis")
    parser.add_argument("--preset", default=None, help="DIS preset (ultrafast|fast|medium)")
    parser.add_argument(
        "--checks",
        default="measured",
        choices=["measured", "paper"],
        help="point checks preset of the run (measured adds the chain check's one-step flows, "
        "which the estimator-alone measurement computes too)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="OpenCV threads per worker (default: OpenCV's)"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the shards here")
    parser.add_argument(
        "--pipeline-only",
        action="store_true",
        help="skip the estimator-alone run: the peak RSS printed is then the pipeline's alone "
        "(the estimator-alone run holds every decoded frame in this process)",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also time the estimator's batches inside the pipeline (1 worker only): the time "
        "before the first flow, between the first and the last, and after the last",
    )
    args = parser.parse_args()
    if args.phases and args.workers != 1:
        parser.error("--phases times the estimator in this process: use it with --workers 1")
    if not args.video.exists():
        sys.exit(f"{args.video} not found: this benchmark reads ../shared/data")
    options = {"preset": args.preset} if args.preset else {}
    if args.threads is not None:
        options["threads"] = args.threads

    tmp = Path(tempfile.mkdtemp(prefix="dptrack_bench_"))
    annotations = tmp / "annotations.json"
    labelled = make_annotations(annotations, args.video, args.frames, args.people)
    out = args.out or tmp / "shards"
    out.mkdir(parents=True, exist_ok=True)
    config = PropagateConfig(
        annotations=str(annotations),
        frames_root=str(args.video.parent),
        out=str(out),
        estimator=args.estimator,
        estimator_options=options,
        num_shards=max(1, args.workers),
        preset=args.checks,
    )
    windows = plan_windows("1", args.frames, labelled, 3, chain=config.checks.chain is not None)
    pairs = [p for w in windows for p in w.pairs]
    needed = sorted({f for w in windows for f in w.frames})
    est_rate = float("nan")
    if not args.pipeline_only:
        frames = {
            i: img
            for i, img in iter_video_frames(str(args.video), 0, needed[-1] + 1)
            if i in needed
        }
        est_rate = bench_estimator(args.estimator, options, frames, pairs, args.workers)
        del frames
    batches = record_batches(args.estimator) if args.phases else None
    pipe_rate, counters, phases = bench_pipeline(config, args.workers, batches)
    own, children = peak_rss_mib(), peak_rss_mib(children=True)
    h5 = sum(f.stat().st_size for f in out.glob("dense-*.h5")) / 1e6
    print(f"video: {args.video.name} 1280x720, {args.frames} frames, {len(labelled)} labelled")
    print(
        f"estimator: {args.estimator} {options or ''}  checks: {args.checks}  "
        f"workers: {args.workers}"
    )
    print(
        f"pairs: {len(pairs)}  instances written: {counters['instances_written']}  "
        f"dense HDF5: {h5:.1f} MB"
    )
    if args.pipeline_only:
        print("estimator alone : skipped (--pipeline-only)")
    else:
        print(f"estimator alone : {est_rate:7.2f} pairs/s")
    print(f"whole pipeline  : {pipe_rate:7.2f} pairs/s")
    if not args.pipeline_only:
        print(f"ratio           : {pipe_rate / est_rate:7.3f}  (goal >= 0.85)")
    for line in phases:
        print(line)
    if phases and not args.pipeline_only:
        steady = float(phases[-1].split(":")[1].split()[0])
        print(
            f"ratio first-last: {steady / est_rate:7.3f}  (the job's fixed start and end left out)"
        )
    print(f"peak RSS        : {own:7.0f} MB (this process), {children:.0f} MB (largest child)")
    if counters["flows_computed"] != len(pairs):
        print(
            f"WARNING: pipeline computed {counters['flows_computed']} flows, planned {len(pairs)}"
        )


if __name__ == "__main__":
    main()
