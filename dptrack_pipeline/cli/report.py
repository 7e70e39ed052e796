"""``dptrack-build report``: one self-contained HTML page on a ``run`` or ``pairs`` folder."""

from __future__ import annotations

import os

import click

from dptrack_pipeline.cli import options as opt


@click.command(
    epilog="""\b
Example:
  dptrack-build report demo_out/shards --out demo_out/report.html --json demo_out/report.json
"""
)
@click.argument("shards", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "out_html",
    required=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write (images inline; opens from disk, no server, no network).",
)
@opt.output_path(
    "--json",
    "json_path",
    "Also write the report's figures (the numbers, no images) as JSON to this file.",
)
@opt.value(
    "--gallery",
    6,
    click.IntRange(0, 100),
    "run: instances shown among the worst and among the best; pairs: pairs shown.",
)
def report(shards: str, out_html: str, json_path: str | None, gallery: int) -> None:
    """Write a quality report of SHARDS, a run or pairs folder: what made it, the funnel of
    instances (or pairs) and points in, kept and rejected by reason, kept fraction by offset,
    forward-backward error and ZNCC histograms, keypoint agreement, a per-video table, and a
    gallery of the worst and best propagated instances (pairs: crop A | crop B | B warped onto A).

    Reads the shards and dataset_info.json only (crops come from the dense files; no frames).
    """
    from dptrack_pipeline.report import build_report
    from dptrack_pipeline.shards.reader import SchemaMismatchError

    try:
        figures = build_report(shards, out_html, json_path, gallery_size=gallery)
    except FileNotFoundError as err:
        raise click.ClickException(
            f"{shards} is not a finished dptrack-build output folder: {err}"
        ) from err
    except (SchemaMismatchError, ValueError) as err:
        raise click.ClickException(f"cannot report on {shards}: {err}") from err
    size = os.path.getsize(out_html) / 1e6 if "://" not in out_html else float("nan")
    click.echo(f"wrote {out_html} ({size:.1f} MB, {figures['kind']} folder)")
    if json_path:
        click.echo(f"wrote {json_path}")
