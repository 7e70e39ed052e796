"""``dptrack-build score``: a ``run`` on synth data against the exact truth."""

from __future__ import annotations

import json

import click

from dptrack_pipeline.cli import options as opt


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@opt.path("--truth", "The `synth` folder the run was built from.", directory=True, required=True)
@opt.value(
    "--near", 3.0, float, "A kept point is correct when within this many pixels of the truth."
)
@click.option("--json", "as_json", is_flag=True, help="Print the score as JSON.")
def score(out: str, truth: str, near: float, as_json: bool) -> None:
    """Score a run on synth data against the exact truth, per |offset|.

    Prints the median error of kept points, the precision of the forward-backward check (kept
    points within --near px of the truth) and its recall (truly visible points kept).
    """
    from dptrack_pipeline.shards import read_instances
    from dptrack_pipeline.synth.score import format_score_table, score_propagation

    result = score_propagation(read_instances(out), truth, near_px=near)
    click.echo(
        json.dumps(result, indent=2, default=float) if as_json else format_score_table(result)
    )
