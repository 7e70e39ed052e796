"""What integrity costs: the readers' checksums (Parquet page CRCs, HDF5 Fletcher-32, SHA-256)
and the writer's crash-safety bookkeeping (work parts, receipts, marker, lock).

Builds real shards (the first ``--frames`` frames of
``../shared/data/video/street_people_720p.avi``, made-up people, the real ``dptrack-build run``,
256-px crops, 4 shards; the reader benchmark's data), then times reading them with and without
each check in one run and prints a Markdown table of ratios, then one ``run`` with and without
the crash-safety bookkeeping. What is measured and why: :mod:`dptrack_pipeline.perf.integrity`.

    python benchmarks/bench_integrity.py [--frames 64] [--people 4] [--work DIR]

About 80 s on 2 cores: 15 s to build the shards (reused from ``--work``), 70 s for six runs.
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

from dptrack_pipeline.perf import integrity, reader  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "street_people_720p.avi"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="the 720p video")
    parser.add_argument("--frames", type=int, default=64, help="first frames of the video used")
    parser.add_argument("--people", type=int, default=4, help="labelled people per frame")
    parser.add_argument("--segment", type=int, default=16, help="frames per made-up video")
    parser.add_argument("--work", type=Path, default=None, help="keep (and reuse) the data here")
    args = parser.parse_args(argv)
    if not args.video.exists():
        sys.exit(f"{args.video} not found: this benchmark reads ../shared/data")
    work = args.work or Path(tempfile.mkdtemp(prefix="dptrack_bench_integrity_"))
    work.mkdir(parents=True, exist_ok=True)
    shards = work / reader.SHARDS_DIR
    if not (shards / "dataset_info.json").exists():
        reader.build_shards(work, args.video, args.frames, args.people, args.segment)
    dense = integrity.time_dense(shards, work)
    parquet = integrity.time_parquet(shards)
    read_s = dense["ms_per_row_fletcher32"] * dense["rows"] / 1000 + parquet["ms_verified"] / 1000
    sha = integrity.time_sha256(shards, read_s)
    print(f"shards: {shards} ({args.video.name}, {args.frames} frames, {args.people} people)")
    print(integrity.report_table(dense, parquet, sha))
    books = integrity.time_bookkeeping(
        work / "annotations.json", args.video.parent, work, reader.CROP_SIZE, reader.NUM_SHARDS
    )
    print(
        f"\nrun with crash-safety bookkeeping {books['s_with']:.2f} s, without "
        f"{books['s_without']:.2f} s: {books['ratio']:.3f}x (best of 3 each, alternating); "
        f"identical files: {books['identical_files']}"
    )
    return {"dense": dense, "parquet": parquet, "sha256": sha, "bookkeeping": books}


if __name__ == "__main__":
    main()
