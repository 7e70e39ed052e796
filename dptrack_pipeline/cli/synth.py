"""``dptrack-build synth``: a small DensePose-Track-like dataset with exact truth."""

from __future__ import annotations

import json

import click

from dptrack_pipeline.cli import options as opt


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@opt.value("--videos", 3, click.IntRange(1), "Videos to render.")
@opt.value("--frames", 24, click.IntRange(2), "Frames per video.")
@opt.value("--seed", 0, int, "Random seed (the same seed renders the same bytes).")
@opt.value("--width", 320, click.IntRange(64), "Frame width in pixels.")
@opt.value("--height", 240, click.IntRange(64), "Frame height in pixels.")
@opt.value("--people", 2, click.IntRange(1), "People per video.")
@opt.value(
    "--label-every", 8, click.IntRange(1), "One frame in this many carries DensePose labels."
)
@opt.value(
    "--max-offset",
    3,
    click.IntRange(1),
    "Exact flow truth is saved for T±1..this around labelled frames.",
)
def synth(out: str, **params: int) -> None:
    """Render a small DensePose-Track-like dataset with exact truth.

    Writes OUT/annotations.json (DensePose-PoseTrack format, file_names relative to OUT, so
    `run --frames-root OUT` works), OUT/frames/, and exact part/U/V, flow and visibility under
    OUT/truth/ (see OUT/truth/README.md).
    """
    from dptrack_pipeline.synth.dataset import generate_dataset

    summary = generate_dataset(out, progress=True, **params)
    click.echo(json.dumps(summary, indent=2, default=str))
