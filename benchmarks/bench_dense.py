"""Dense-row storage options: bytes per row, write and read time (the basis of dense.v2).

Reads ``--rows`` crops and flows of a real dense file (a ``run`` folder, v1 or v2; default:
``--folder`` of ``benchmarks/bench_pipeline.py --out DIR``, the 720p street video) and writes them
back with each encoding and HDF5 filter, one row per chunk, then reads them one row at a time.
Prints a Markdown table. What is measured and why: :mod:`dptrack_pipeline.perf.dense`. The
plugin filters appear only where ``hdf5plugin`` is installed (it is not a dependency).

    python benchmarks/bench_dense.py --folder DIR [--rows 120]

About 40 s on 2 cores at 120 rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.perf import dense  # noqa: E402


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True, help="a run folder with dense-*.h5")
    parser.add_argument("--rows", type=int, default=120, help="crops and flows sampled")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    files = sorted(p.name for p in args.folder.glob("dense-*.h5"))
    if not files:
        sys.exit(f"no dense-*.h5 in {args.folder}")
    rows = dense.sample_rows(str(args.folder), files[0], args.rows)
    results = dense.measure(rows)
    print(f"{files[0]}: {len(rows['crops'])} crops, {len(rows['flows'])} flows sampled\n")
    print(dense.report_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
