"""Samples/s of the shard dataset (ShardDataset + collate) against JPEG + JSON loading.

Builds shards from the first ``--frames`` frames of ``../shared/data/video/street_people_720p.avi``
(1280x720) with made-up people and part masks (the real ``dptrack-build run`` pipeline, 256-px
crops, 4 shards), writes the same rows as JPEG (q95) frames + one JSON file, then times one
shuffled ``DataLoader`` pass of each loader per ``--workers`` value (and both without the
partner image at the first), prints a Markdown table with the ratio against the 3x goal, and
checks that both loaders yield the same samples. What is measured and why:
:mod:`dptrack_pipeline.perf.reader`.

    python benchmarks/bench_reader.py [--frames 128] [--people 4] [--workers 0 2]
        [--batch-size 16] [--work DIR] [--json OUT.json]

``--work DIR`` keeps the shards, the JPEGs and the JSON there and reuses them when their settings
match. The default run takes about 1.5 minutes on 2 cores, 40 s of it building the shards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.perf import reader  # noqa: E402
from dptrack_pipeline.perf.jpeg_json import JPEG_QUALITY  # noqa: E402
from dptrack_pipeline.perf.results import write_json  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "street_people_720p.avi"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="A small run: --frames 12 --people 2 --segment 12 --workers 0 (about 15 s). "
        "What is measured and why: the docstring of dptrack_pipeline/perf/reader.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="the 720p video")
    parser.add_argument("--frames", type=int, default=128, help="first frames of the video used")
    parser.add_argument("--people", type=int, default=4, help="labelled people per frame")
    parser.add_argument("--segment", type=int, default=16, help="frames per made-up video")
    parser.add_argument(
        "--workers",
        "--workers-list",
        dest="workers_list",
        type=int,
        nargs="+",
        default=[0, 2],
        help="DataLoader worker counts, one run of each loader per value",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="samples per batch")
    parser.add_argument("--warmup-batches", type=int, default=2, help="untimed batches first")
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="timed passes (epochs) over the data, one after the other",
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed of both loaders")
    parser.add_argument("--check-rows", type=int, default=8, help="rows compared across loaders")
    parser.add_argument("--work", type=Path, default=None, help="keep (and reuse) the data here")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the report (also written with ``--json``)."""
    args = build_parser().parse_args(argv)
    if not args.video.exists():
        sys.exit(f"{args.video} not found: this benchmark reads ../shared/data")
    if args.frames < 8 or args.segment < 8:
        sys.exit("--frames and --segment must be >= 8 (one labelled frame every 8)")
    work = args.work or Path(tempfile.mkdtemp(prefix="dptrack_bench_reader_"))
    work.mkdir(parents=True, exist_ok=True)

    data = reader.prepare_data(work, args.video, args.frames, args.people, args.segment)
    shards, index = data["shards"], data["index"]
    summary = reader.data_summary(shards, index)
    env = reader.environment()
    print(
        f"machine: {env['cores']} cores ({env['processor']}), torch {env['torch']}, "
        f"OpenCV {env['opencv']}"
    )
    built = "reused" if data["reused"] else f"built in {data['build_s']:.0f} s"
    print(
        f"data ({built}, {work}): {args.video.name} 1280x720, {args.frames} frames, "
        f"{summary['rows']} instances ({summary['annotated_rows']} annotated, "
        f"{summary['propagated_rows']} propagated), {reader.CROP_SIZE}-px crops, rows per "
        f"shard {summary['rows_per_shard']}; shards {summary['shard_mb']:.1f} MB, "
        f"{summary['jpeg_frames']} JPEGs + JSON {summary['jpeg_json_mb']:.1f} MB",
        flush=True,
    )
    results = []
    for name, workers, with_source in reader.plan_runs(args.workers_list):
        result = reader.measure(
            shards, index, name, workers, with_source, args.batch_size, args.seed,
            args.warmup_batches, args.passes,
        )  # fmt: skip
        results.append(result)
        print(reader.run_line(result), flush=True)
    reader.add_ratios(results)
    check = reader.compare_samples(shards, index, args.check_rows)
    goal = reader.goal_by_workers(results, args.workers_list)

    print("\n" + reader.results_table(results) + "\n")
    print("\n".join([*reader.goal_lines(goal), reader.FAVOURS_BASELINE]))
    print(reader.same_samples_line(check))
    report = {
        "schema": reader.SCHEMA,
        "environment": env,
        "settings": {
            "video": str(args.video),
            "frames": args.frames,
            "people": args.people,
            "segment": args.segment,
            "crop_size": reader.CROP_SIZE,
            "num_shards": reader.NUM_SHARDS,
            "jpeg_quality": JPEG_QUALITY,
            "batch_size": args.batch_size,
            "workers_list": list(args.workers_list),
            "warmup_batches": args.warmup_batches,
            "passes": args.passes,
            "seed": args.seed,
            "work": str(work),
        },
        "data": {**summary, "reused": data["reused"], "build_s": data["build_s"]},
        "results": results,
        "goal": {"ratio": reader.GOAL, "by_workers": goal},
        "same_samples": check,
    }
    if args.json:
        write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
