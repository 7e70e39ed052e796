"""Slim DensePose's motion experiment (Table 6, rows i-iv) on synthetic data, on a CPU.

Five configurations of ``dptrack-train``, each over several seeds, on the same data:

1. labelled frames only (the annotated instances);
2. + GT propagation (the instances propagated along DIS flow to T-3..T+3, same losses);
3. + equivariance with real flow (the shards' crop flows, Siamese cosine loss on every stack's
   features; no propagated labels);
4. + equivariance with random TPS warps instead;
5. GT propagation + equivariance with real flow.

Data: ``dptrack-build synth`` (exact labels and exact surfaces) then ``dptrack-build run``
(OpenCV DIS, K = 3, 5 px check, 64-px crops). Training set and validation set come from
different seeds (different people, motions and textures). Score: the percentage of annotated
validation points whose predicted surface point lies within 5, 10 and 20 cm of the truth along
the synthetic body (:mod:`dptrack_pipeline.train.synth_surface`), plus part accuracy.

    python benchmarks/train_experiment.py [--steps 400] [--lr 2e-3] [--seeds 0 1 2] [--work DIR]

Prints a Markdown table (mean and spread over seeds) and writes ``WORK/results.json``. The data
is built once per ``--work`` folder and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from click.testing import CliRunner  # noqa: E402

from dptrack_pipeline.cli import main as build  # noqa: E402
from dptrack_pipeline.train.config import TrainConfig  # noqa: E402
from dptrack_pipeline.train.loop import Trainer  # noqa: E402

CONFIGS: dict[str, dict] = {
    "labelled frames only": {},
    "+ GT propagation": {"gt_propagation": True},
    "+ equivariance (real flow)": {"equivariance": "real"},
    "+ equivariance (TPS)": {"equivariance": "tps"},
    "GT propagation + equivariance (real flow)": {"gt_propagation": True, "equivariance": "real"},
}


def _invoke(args: list[str]) -> None:
    result = CliRunner().invoke(build, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"dptrack-build {' '.join(args[:2])} failed:\n{result.output}")


def build_data(work: Path, name: str, seed: int, videos: int, frames: int, every: int) -> Path:
    """``dptrack-build synth`` + ``run``; returns the synth folder (shards in ``<name>/shards``)."""
    root = work / name
    synth, shards = root / "synth", root / "shards"
    if (shards / "dataset_info.json").exists():
        return synth
    _invoke(["synth", str(synth), "--videos", str(videos), "--frames", str(frames),
             "--width", "192", "--height", "144", "--seed", str(seed),
             "--label-every", str(every)])  # fmt: skip
    _invoke(["run", "--annotations", str(synth / "annotations.json"), "--frames-root",
             str(synth), "--out", str(shards), "--crop-size", "64", "--num-shards", "4",
             "--no-progress", "--overwrite"])  # fmt: skip
    return synth


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("experiment_out"))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--train-videos", type=int, default=8)
    parser.add_argument("--train-frames", type=int, default=40)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_synth = build_data(args.work, "train", 101, args.train_videos, args.train_frames, 8)
    val_synth = build_data(args.work, "val", 202, 4, 12, 2)
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, list[dict]] = {}
    for name in args.configs:
        for seed in args.seeds:
            config = TrainConfig(
                shards=(str(train_synth.parent / "shards"),),
                val_shards=(str(val_synth.parent / "shards"),),
                truth=str(val_synth),
                out=str(args.work / "runs" / f"{name.replace(' ', '_')}-{seed}"),
                steps=args.steps,
                stacks=args.stacks,
                channels=args.channels,
                depth=3,
                stem_stride=2,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=seed,
                checkpoint_every=10**9,
                log_every=25,
                **CONFIGS[name],
            )
            t0 = time.perf_counter()
            scores = Trainer(config).run(progress=False)
            scores["seconds"] = time.perf_counter() - t0
            results.setdefault(name, []).append(scores)
            print(f"{name} seed {seed}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(scores.items())
                if isinstance(v, float)), flush=True)  # fmt: skip
            (args.work / "results.json").write_text(json.dumps(results, indent=2))
    print()
    print(table(results, args))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return results


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def table(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    keys = ["within_5cm", "within_10cm", "within_20cm", "part_accuracy"]
    lines = [
        f"| configuration ({len(args.seeds)} seeds, {args.steps} steps, lr {args.lr:g}) "
        "| 5 cm | 10 cm | 20 cm "
        "| part accuracy | s per run |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        cells = [_cell([r[k] for r in runs]) for k in keys]
        seconds = statistics.mean(r["seconds"] for r in runs)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
