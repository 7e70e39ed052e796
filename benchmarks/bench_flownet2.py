"""Speed, FLOPs, memory and bf16 accuracy of the pure-PyTorch FlowNet2, made for one GPU run.

Measures, in order: the environment, the card's bf16 matmul rate, FLOPs per pair, bf16 against
fp32 on three Sintel pairs, pairs/s of the network alone and of the estimator end to end at
each size x precision x batch (with peak GPU memory and achieved TFLOP/s), and the tiled
correlation against the loop; then prints a Markdown table for the README and the comparison
with the public port (214 ms/pair at 500x1000 fp32 on an RTX 3090; goal >= 10x faster). What
each number means: :mod:`dptrack_pipeline.perf.flownet2_suite`. With ``--json`` the results
file is rewritten after every step, so a run cut short keeps what it did.

    # on the GPU machine, with the public weights (a few minutes on an H100; capped at 420 s):
    python benchmarks/bench_flownet2.py --checkpoint FlowNet2_checkpoint.pth.tar \\
        --json flownet2_bench.json
    # the CPU smoke run (tiny sizes, 1 iteration, random weights; about a minute):
    python benchmarks/bench_flownet2.py --device cpu --smoke --json /tmp/flownet2_smoke.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.perf.device import check_device  # noqa: E402
from dptrack_pipeline.perf.flownet2_report import final_report  # noqa: E402
from dptrack_pipeline.perf.flownet2_settings import (  # noqa: E402
    DEFAULT_MAX_SECONDS,
    DEFAULT_SIZES,
    PRECISIONS,
    SMOKE_SINTEL_CROP,
    default_sintel,
    parse_size,
    resolve_settings,
)
from dptrack_pipeline.perf.flownet2_suite import run_benchmark  # noqa: E402

EPILOG = """\
Sizes are input frame sizes WxH; the network runs at the next multiples of 64 (1000x500 ->
1024x512, 1280x720 -> 1280x768). Without --checkpoint a random checkpoint with the public names
and shapes is written to a temporary folder (650 MB): timings, FLOPs and memory are valid, the
flow accuracy numbers are not. --smoke checks the script, it does not measure: 60x40 frames
(network 64x64), batches 1 2, no warm-up, 1 iteration, a 1024 matmul, Sintel cropped to 64x64.
Explicit options win over the --smoke defaults. Output: progress lines, then a Markdown table,
the anchor comparison and the bf16 accuracy; --json has every number. What each number means:
the docstring of dptrack_pipeline/perf/flownet2_suite.py."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the public FlowNet2_checkpoint.pth.tar (default: random weights, accuracy invalid)",
    )
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=None,
        help=f"input frame sizes WxH (default: {' '.join(DEFAULT_SIZES)})",
    )
    parser.add_argument(
        "--batches", nargs="+", type=int, default=None, help="batch sizes (default: 1 4 16)"
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=sorted(PRECISIONS),
        default=None,
        help="precisions (default: fp32 bf16)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 3)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default 10)")
    parser.add_argument(
        "--matmul-size", type=int, default=None, help="N of the bf16 matmul (default 8192 on CUDA)"
    )
    parser.add_argument(
        "--sintel",
        type=Path,
        default=None,
        help="Sintel folder with alley_1, cave_2, market_5 (default: ../shared/data/flow/sintel)",
    )
    parser.add_argument(
        "--sintel-crop",
        type=parse_size,
        default=None,
        help=f"centre crop WxH of the Sintel pairs (default: none; {SMOKE_SINTEL_CROP} in --smoke)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run for CI/CPU: size 60x40 (network 64x64), batches 1 2, 1 iteration, "
        "no warm-up, a 1024 matmul, Sintel cropped",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all results to this file")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="skip configurations that would start after this many seconds (default 420)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results (also written with ``--json``)."""
    args = build_parser().parse_args(argv)
    try:
        device = check_device(args.device, "bench_flownet2")
        options = {k: v for k, v in vars(args).items() if k not in ("checkpoint", "device", "json")}
        options["sintel"] = args.sintel or default_sintel(REPO)
        settings = resolve_settings(device.type, **options)
    except ValueError as error:  # DeviceError too
        raise SystemExit(str(error)) from None
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise SystemExit(f"bench_flownet2: checkpoint not found: {args.checkpoint}")
    command = [sys.executable, *sys.argv] if argv is None else list(argv)
    run = run_benchmark(settings, device, args.checkpoint, args.json, command)
    print(final_report(run.results), flush=True)
    run.log("done" + (f"; results in {args.json}" if args.json else ""))
    return run.results


if __name__ == "__main__":
    main()
