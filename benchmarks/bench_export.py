"""Time and peak memory of ``dptrack-build export`` (DensePose-COCO) at growing sizes.

Builds a small real ``run`` folder (``dptrack-build synth`` then ``run``, the default checks),
replicates its rows into folders of ``--sizes`` instances, spread over new videos (frames grow
with instances) and over new people on the same frames (frames fixed), exports each in a fresh
process and prints a Markdown table: seconds, instances/s, peak resident memory, JSON size, and
how much peak memory grows per 10k instances (the goal: flat). What is measured and why:
:mod:`dptrack_pipeline.perf.export`.

    python benchmarks/bench_export.py [--sizes 10000,30000,100000] [--work DIR]

About 6 minutes on 2 cores at the default sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.perf import export  # noqa: E402


def _source_run(work: Path) -> tuple[Path, Path]:
    synth, shards = work / "synth", work / "shards"
    if not (shards / "dataset_info.json").exists():
        cli = [sys.executable, "-m", "dptrack_pipeline.cli"]
        subprocess.run([*cli, "synth", str(synth), "--videos", "3", "--frames", "24"], check=True)
        subprocess.run([*cli, "run", "--annotations", str(synth / "annotations.json"),
                        "--frames-root", str(synth), "--out", str(shards), "--no-progress",
                        "--runner", "FnApiRunner"], check=True)  # fmt: skip
    return synth / "annotations.json", shards


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,30000,100000", help="instances per export")
    parser.add_argument("--work", type=Path, default=None, help="keep (and reuse) the data here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="dptrack_bench_export_"))
    work.mkdir(parents=True, exist_ok=True)
    annotations, shards = _source_run(work)
    results = []
    for spread in ("videos", "people"):
        for size in (int(s) for s in args.sizes.split(",")):
            folder = export.replicate_run(
                shards, annotations, work / f"run_{spread}_{size}", size, spread
            )
            result = export.measure(folder, work / f"export_{spread}_{size}.json")
            assert result["rows_in"] == result["instances"], result
            result["spread"] = spread
            print(json.dumps(result), flush=True)
            results.append(result)
            (work / f"export_{spread}_{size}.json").unlink()
    print(f"\nsource run: {shards}\n")
    print(export.report_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
