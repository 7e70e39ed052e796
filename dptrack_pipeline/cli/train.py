"""``dptrack-build train`` (also ``dptrack-train``): train the Hourglass DensePose model on dptrack
shards. Thin: it parses flags into a :class:`~dptrack_pipeline.train.config.TrainConfig` and runs
the trainer.

:data:`train` is the click command, a command of ``dptrack-build``; :func:`main` runs it
standalone as ``dptrack-train`` (the console script). The defaults shown here are
:class:`TrainConfig`'s; the config module is imported only when a command runs, so ``--help``
does not import torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from dptrack_pipeline.cli import options as opt

_F = TypeVar("_F", bound=Callable[..., Any])

EPILOG = """\b
Examples:
  # labelled frames only, then + GT propagation + equivariance on real flow
  dptrack-train --shards shards/ --val-shards val_shards/ --truth val_synth/ --out runs/base
  dptrack-train --shards shards/ --val-shards val_shards/ --truth val_synth/ \\
      --out runs/full --gt-propagation --equivariance real
\b
  # equivariance on unlabelled video: flow pairs from dptrack-build pairs (same --crop-size)
  dptrack-build pairs --videos mpii_videos/ --people mpii_people.csv --out pairs/
  dptrack-train --shards shards/ --pairs pairs/ --equivariance real --out runs/video_eq
\b
  # paced learning: stage I on one set, stage II on the union with another
  dptrack-train --shards coco_like/ --finetune-shards track/ --finetune-union \\
      --steps 20000 --finetune-steps 5000 --out runs/paced
\b
  # GT propagation on trusted labels only: points within 1 px forward-backward and ZNCC >= 0.5,
  # instances with PCKh >= 0.8, offsets up to 2 frames (needs instances schema v2 shards)
  dptrack-train --shards shards/ --out runs/trusted --gt-propagation \\
      --max-fb-error 1 --min-photo 0.5 --min-pckh 0.8 --offsets 0,1,2
\b
  # resume after an interruption (same command, plus --resume)
  dptrack-train ... --out runs/full --resume
\b
Label filters (--max-fb-error, --min-photo, --min-pckh, --offsets, --min-points) choose which
propagated labels the supervised stream trains on, in the training shards of both stages (never
--val-shards, never the equivariance pairs). They need --gt-propagation; sources (offset 0) are
never point-filtered and only --offsets drops them; a NaN score (not computed) passes. The three
score filters need instances schema v2 shards: re-run dptrack-build run on older folders.
\b
Writes OUT/config.json, OUT/metrics.jsonl (one JSON line per logged step and evaluation),
OUT/metrics.png, OUT/checkpoints/step-NNNNNNN.pt and OUT/checkpoints/last.pt.
"""
_FILTERS = "Label filter (below)"


def _losses(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    from dptrack_pipeline.train.config import SUPERVISED_LOSSES

    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = sorted(set(names) - set(SUPERVISED_LOSSES))
    if unknown:
        raise click.BadParameter(f"unknown {unknown}; choose from {', '.join(SUPERVISED_LOSSES)}")
    return names


def _folders(flag: str, help: str, required: bool = False) -> Callable[[_F], _F]:
    """A repeatable option naming existing folders."""
    return opt.path(flag, help, directory=True, multiple=True, required=required)


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@_folders("--shards", "Stage-I shard folder (dptrack-build run output). Repeatable.", True)
@_folders("--val-shards", "Shard folder to evaluate on (its annotated instances). Repeatable.")
@_folders(
    "--pairs",
    "Flow-pair folder (dptrack-build pairs output, unlabelled video) for --equivariance "
    "real: its pairs replace the propagated rows of the shards. Repeatable.",
)
@click.option("--out", required=True, help="Run folder: config, metrics, plot, checkpoints.")
@_folders("--finetune-shards", "Stage-II (paced learning) shard folder. Repeatable.")
@click.option(
    "--finetune-union",
    is_flag=True,
    help="Stage II on --shards plus --finetune-shards (the paper's best schedule).",
)
@opt.value("--steps", 1000, click.IntRange(0), "Stage-I optimiser steps.")
@opt.value(
    "--finetune-steps", 0, click.IntRange(0), "Stage-II steps (at a tenth of the learning rate)."
)
@opt.value(
    "--stacks", 2, click.IntRange(1, 8), "Hourglass stacks (intermediate supervision at each)."
)
@opt.value("--channels", 64, click.IntRange(2), "Feature channels of the hourglass.")
@opt.value(
    "--depth",
    4,
    click.IntRange(1),
    "Recursion depth of each hourglass; crops need >= stride * 2**depth px.",
)
@opt.value(
    "--stem-stride",
    "4",
    click.Choice(["1", "2", "4"]),
    "Output stride of the network (4 for 256-px crops; 2 or 1 for tiny crops).",
)
@opt.value(
    "--batch-size",
    8,
    click.IntRange(1),
    "Instances per supervised batch (and per equivariance batch).",
)
@opt.value("--lr", 1e-3, opt.Finite(min=0, min_open=True), "Adam learning rate of stage I.")
@click.option(
    "--losses",
    default="part_sparse,part_dense,uv",
    show_default=True,
    callback=_losses,
    help="Supervised losses, comma-separated.",
)
@click.option(
    "--gt-propagation/--no-gt-propagation",
    default=False,
    show_default=True,
    help="Also train on the propagated instances' labels.",
)
@opt.value(
    "--propagated-weight",
    1.0,
    opt.Finite(0),
    "Weight of the propagated instances' losses (GT propagation).",
)
@opt.label_filter_options(f"{_FILTERS}")
@opt.value(
    "--equivariance",
    "none",
    click.Choice(["none", "real", "tps"]),
    "Siamese equivariance: real flow (propagated rows of the shards, or --pairs), "
    "random TPS warps, or none.",
)
@opt.value("--equivariance-weight", 1.0, opt.Finite(0), "Weight of the equivariance loss.")
@opt.value(
    "--feature-level",
    "stack_features",
    str,
    "Where equivariance applies: stack_features (every stack, as the paper), "
    "stack:K, segmentation, uv or early.",
)
@opt.value(
    "--tps-strength",
    0.08,
    opt.Finite(0),
    "Std of the random TPS control-point offsets, normalised (1 = half the crop side).",
)
@opt.value("--seed", 0, int, "Seeds the model initialisation, the data order and the TPS warps.")
@opt.value("--workers", 0, click.IntRange(0), "DataLoader worker processes per data stream.")
@opt.value("--log-every", 10, click.IntRange(1), "Write a metrics.jsonl line every N steps.")
@opt.value(
    "--eval-every", 0, click.IntRange(0), "Evaluate every N steps (0: at the end of each stage)."
)
@opt.value(
    "--checkpoint-every",
    200,
    click.IntRange(1),
    "Save a checkpoint every N steps (and at the end of each stage).",
)
@opt.value("--device", "cpu", str, "cpu or cuda.")
@click.option(
    "--truth",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="dptrack-build synth folder behind --val-shards: score in cm on its bodies.",
)
@click.option(
    "--geodesic-assets",
    type=click.Path(exists=True),
    default=None,
    help="DensePose evaluation assets (folder with SMPL_subdiv.mat, "
    "SMPL_SUBDIV_TRANSFORM.mat, Pdist_matrix.pkl, or a converted .npz).",
)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def train(**kw: Any) -> None:
    """Train a stacked-Hourglass DensePose model on dptrack shards (Slim DensePose recipe).

    Losses: part cross-entropy at annotated points and against the part masks, U/V regression
    at annotated points, optional GT propagation (the propagated instances' labels) and Siamese
    equivariance 1 - cos(Psi(A), Psi(B) warped by g), with g the real flow stored in the shards
    (or in --pairs folders of unlabelled video) or a random thin-plate-spline warp. Evaluation:
    % of annotated points within 5/10/20 cm.
    """
    from dptrack_pipeline.train.config import TrainConfig
    from dptrack_pipeline.train.loop import Trainer

    logging.basicConfig(level=logging.WARNING - 10 * int(kw.pop("verbose")))
    resume, progress = bool(kw.pop("resume")), bool(kw.pop("progress"))
    kw["stem_stride"] = int(kw["stem_stride"])
    if kw["pairs"] and kw["equivariance"] != "real":
        raise click.UsageError(
            f"--pairs feeds the real-flow equivariance loss: add --equivariance real "
            f"(got --equivariance {kw['equivariance']})"
        )
    try:
        config = TrainConfig.from_dict(kw)
        trainer = Trainer(config)
        result = trainer.run(resume=resume, progress=progress)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"step": trainer.step, **result}, sort_keys=True))


def main(args: list[str] | None = None) -> None:
    """The ``dptrack-train`` console script: run :data:`train` on ``args`` (default: the command
    line)."""
    train.main(args=args, prog_name="dptrack-train")
