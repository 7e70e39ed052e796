"""``dptrack-train``: train the Hourglass DensePose model on dptrack shards. Thin: it parses
flags into a :class:`~dptrack_pipeline.train.loop.TrainConfig` and runs the trainer."""

from __future__ import annotations

import json
import logging

import click

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
  # resume after an interruption (same command, plus --resume)
  dptrack-train ... --out runs/full --resume
\b
Writes OUT/config.json, OUT/metrics.jsonl (one JSON line per logged step and evaluation),
OUT/metrics.png, OUT/checkpoints/step-NNNNNNN.pt and OUT/checkpoints/last.pt.
"""


def _losses(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    from dptrack_pipeline.train.loop import SUPERVISED_LOSSES

    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = sorted(set(names) - set(SUPERVISED_LOSSES))
    if unknown:
        raise click.BadParameter(f"unknown {unknown}; choose from {', '.join(SUPERVISED_LOSSES)}")
    return names


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option(
    "--shards",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Stage-I shard folder (dptrack-build run output). Repeatable.",
)
@click.option(
    "--val-shards",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Shard folder to evaluate on (its annotated instances). Repeatable.",
)
@click.option(
    "--pairs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Flow-pair folder (dptrack-build pairs output, unlabelled video) for --equivariance "
    "real: its pairs replace the propagated rows of the shards. Repeatable.",
)
@click.option("--out", required=True, help="Run folder: config, metrics, plot, checkpoints.")
@click.option(
    "--finetune-shards",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Stage-II (paced learning) shard folder. Repeatable.",
)
@click.option(
    "--finetune-union",
    is_flag=True,
    help="Stage II on --shards plus --finetune-shards (the paper's best schedule).",
)
@click.option(
    "--steps",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="Stage-I optimiser steps.",
)
@click.option(
    "--finetune-steps",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Stage-II steps (at a tenth of the learning rate).",
)
@click.option(
    "--stacks",
    default=2,
    show_default=True,
    type=click.IntRange(1, 8),
    help="Hourglass stacks (intermediate supervision at each).",
)
@click.option(
    "--channels",
    default=64,
    show_default=True,
    type=click.IntRange(2),
    help="Feature channels of the hourglass.",
)
@click.option(
    "--depth",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Recursion depth of each hourglass; crops need >= stride * 2**depth px.",
)
@click.option(
    "--stem-stride",
    default=4,
    show_default=True,
    type=click.Choice(["1", "2", "4"]),
    help="Output stride of the network (4 for 256-px crops; 2 or 1 for tiny crops).",
)
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=click.IntRange(1),
    help="Instances per supervised batch (and per equivariance batch).",
)
@click.option(
    "--lr",
    default=1e-3,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Adam learning rate of stage I.",
)
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
@click.option(
    "--propagated-weight",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Weight of the propagated instances' losses (GT propagation).",
)
@click.option(
    "--equivariance",
    default="none",
    show_default=True,
    type=click.Choice(["none", "real", "tps"]),
    help="Siamese equivariance: real flow (propagated rows of the shards, or --pairs), "
    "random TPS warps, or none.",
)
@click.option(
    "--equivariance-weight",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Weight of the equivariance loss.",
)
@click.option(
    "--feature-level",
    default="stack_features",
    show_default=True,
    help="Where equivariance applies: stack_features (every stack, as the paper), "
    "stack:K, segmentation, uv or early.",
)
@click.option(
    "--tps-strength",
    default=0.08,
    show_default=True,
    type=click.FloatRange(0),
    help="Std of the random TPS control-point offsets, normalised (1 = half the crop side).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seeds the model initialisation, the data order and the TPS warps.",
)
@click.option(
    "--workers",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="DataLoader worker processes per data stream.",
)
@click.option(
    "--log-every",
    default=10,
    show_default=True,
    type=click.IntRange(1),
    help="Write a metrics.jsonl line every N steps.",
)
@click.option(
    "--eval-every",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Evaluate every N steps (0: at the end of each stage).",
)
@click.option(
    "--checkpoint-every",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="Save a checkpoint every N steps (and at the end of each stage).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
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
def main(**kw: object) -> None:
    """Train a stacked-Hourglass DensePose model on dptrack shards (Slim DensePose recipe).

    Losses: part cross-entropy at annotated points and against the part masks, U/V regression
    at annotated points, optional GT propagation (the propagated instances' labels) and Siamese
    equivariance 1 - cos(Psi(A), Psi(B) warped by g), with g the real flow stored in the shards
    (or in --pairs folders of unlabelled video) or a random thin-plate-spline warp. Evaluation:
    % of annotated points within 5/10/20 cm.
    """
    from dptrack_pipeline.train.loop import TrainConfig, Trainer

    logging.basicConfig(level=logging.WARNING - 10 * int(kw.pop("verbose")))
    resume, progress = bool(kw.pop("resume")), bool(kw.pop("progress"))
    kw["stem_stride"] = int(kw["stem_stride"])
    for key in ("shards", "val_shards", "finetune_shards", "pairs"):
        kw[key] = tuple(str(v) for v in kw[key])
    if kw["pairs"] and kw["equivariance"] != "real":
        raise click.UsageError(
            f"--pairs feeds the real-flow equivariance loss: add --equivariance real "
            f"(got --equivariance {kw['equivariance']})"
        )
    try:
        config = TrainConfig(**kw)
        trainer = Trainer(config)
        result = trainer.run(resume=resume, progress=progress)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"step": trainer.step, **result}, sort_keys=True))
