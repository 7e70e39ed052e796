"""``dptrack-build synth``: a small DensePose-Track-like dataset with exact truth."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--videos", default=3, show_default=True, type=click.IntRange(1))
@click.option(
    "--frames", default=24, show_default=True, type=click.IntRange(2), help="Frames per video."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--width", default=320, show_default=True, type=click.IntRange(64))
@click.option("--height", default=240, show_default=True, type=click.IntRange(64))
@click.option(
    "--people", default=2, show_default=True, type=click.IntRange(1), help="People per video."
)
@click.option(
    "--label-every",
    default=8,
    show_default=True,
    type=click.IntRange(1),
    help="One frame in this many carries DensePose labels.",
)
@click.option(
    "--max-offset",
    default=3,
    show_default=True,
    type=click.IntRange(1),
    help="Exact flow truth is saved for T±1..this around labelled frames.",
)
def synth(
    out: str,
    videos: int,
    frames: int,
    seed: int,
    width: int,
    height: int,
    people: int,
    label_every: int,
    max_offset: int,
) -> None:
    """Render a small DensePose-Track-like dataset with exact truth.

    Writes OUT/annotations.json (DensePose-PoseTrack format, file_names relative to OUT, so
    `run --frames-root OUT` works), OUT/frames/, and exact part/U/V, flow and visibility under
    OUT/truth/ (see OUT/truth/README.md).
    """
    from dptrack_pipeline.synth.dataset import generate_dataset

    summary = generate_dataset(
        out,
        videos=videos,
        frames=frames,
        seed=seed,
        width=width,
        height=height,
        people=people,
        label_every=label_every,
        max_offset=max_offset,
        progress=True,
    )
    click.echo(json.dumps(summary, indent=2, default=str))
