"""``dptrack-build pairs``: unlabelled video -> person-cropped flow-pair shards."""

from __future__ import annotations

import click

from dptrack_pipeline.cli import options as opt

PAIRS_PREFIXES = ("pairs-", "dense-", "rejects-", "dataset_info.json")

EPILOG = (
    opt.BEAM_EPILOG
    + """
\b
People file (--people): JSON list of {"video", "frame", "x", "y", "scale"[, "person"]} or a CSV
with those columns; video = file name without extension or folder name, frame = 0-based index,
(x, y) = person centre in pixels, scale = MPII scale (person about 200*scale px tall). The crop
is a square of side 200*scale*--context around the centre. Without --people every frame is
cropped to its centred square of side min(W, H).

\b
Examples:
  dptrack-build pairs --videos mpii_videos/ --people mpii_people.csv --out pairs/
  dptrack-build pairs --videos clip.mp4 --out pairs/ --mode chained --stride 2
  dptrack-build pairs --videos mpii_videos/ --out gs://b/pairs --estimator flownet2 \\
      --checkpoint gs://b/FlowNet2_checkpoint.pth.tar --precision bf16 \\
      --runner DataflowRunner --project P --region R --temp_location gs://b/tmp
"""
)


@click.command(context_settings=opt.BEAM_PASSTHROUGH, epilog=EPILOG)
@click.option(
    "--videos",
    "videos",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="A video file, a folder of frame images, or a folder of those (one level). Repeatable.",
)
@click.option(
    "--people",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Person centres and scales per frame (JSON or CSV, format below).",
)
@opt.output_options("Progress bar over pairs.")
@opt.offsets_option("K: pair every anchor frame T with T-K..T+K.")
@click.option(
    "--stride",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Anchor frames are 0, S, 2S, ... (1: every frame).",
)
@opt.crop_size_option("Side of the square crops and crop flows.")
@click.option(
    "--mode",
    type=click.Choice(["direct", "chained"]),
    default="direct",
    show_default=True,
    help="direct: estimate every flow T->T+k; chained: estimate one-step flows only and "
    "compose them (2 flows per frame instead of 2K; errors add up along the chain).",
)
@opt.flow_options
@opt.fb_threshold_option(
    "Forward-backward check in pixels: a crop pixel whose round trip misses by more is invalid."
)
@click.option(
    "--min-valid",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Reject pairs whose fraction of valid crop pixels is below this (pairs with none are "
    "always rejected).",
)
@click.option(
    "--context",
    default=1.25,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="--people boxes: side = 200 * scale * context.",
)
@click.option(
    "--people-reach",
    default=20,
    show_default=True,
    type=click.IntRange(0),
    help="--people: a frame without rows uses the nearest frame with rows within this many frames.",
)
@click.option(
    "--chunk-anchors",
    default=256,
    show_default=True,
    type=click.IntRange(1),
    help="Anchors per parallel work item (long videos split into chunks).",
)
@opt.shards_option(
    "Number of output shards [default: about one per 1000 pairs]. The pairs of one "
    "chunk (--chunk-anchors anchors of a video) stay in one shard, so use more chunks than "
    "shards to fill them all."
)
@click.pass_context
def pairs(ctx: click.Context, **params) -> None:
    """Unlabelled video -> person-cropped flow pairs T -> T±1..K for equivariance training.

    For every anchor frame T (0, S, 2S, ...) and k in ±1..K, both frames are cropped around the
    person, the flow T->T+k is computed (direct) or composed from one-step flows (chained),
    checked forward-backward, and written in crop coordinates with its validity mask: HDF5
    crops/flows/valid and a Parquet index (pairs-*.parquet), read by dptrack-train --pairs.
    Unreadable videos or frames and bad people rows go to rejects-*.parquet with their reason.
    """
    from dptrack_pipeline.pairs.config import PairsConfig
    from dptrack_pipeline.pairs.launch import prepare
    from dptrack_pipeline.shards import counter_problems, read_dataset_info
    from dptrack_pipeline.shards.counters import KIND_PAIRS
    from pipelines.pairs import run as run_pipeline

    estimator = params["estimator"]
    options = opt.estimator_options(estimator, params)
    try:
        config = PairsConfig(
            videos=tuple(params["videos"]),
            out=params["out"],
            people=params["people"],
            max_offset=params["offsets"],
            stride=params["stride"],
            crop_size=params["crop_size"],
            mode=params["mode"],
            estimator=estimator,
            estimator_options=options,
            fb_threshold=params["fb_threshold"],
            min_valid=params["min_valid"],
            context=params["context"],
            people_reach=params["people_reach"],
            chunk_anchors=params["chunk_anchors"],
            num_shards=params["num_shards"],
            progress=params["progress"],
        )
        prepared = prepare(config)
        opt.check_runtime(estimator, options, ctx.args)
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    out = config.out
    opt.prepare_out(out, params["overwrite"], PAIRS_PREFIXES)
    click.echo(
        f"{len(prepared.videos)} videos, about {prepared.estimated_pairs} pairs, "
        f"{prepared.num_shards} shards; Beam options: {' '.join(ctx.args) or '(DirectRunner)'}",
        err=True,
    )
    run_pipeline(config, ctx.args, prepared)
    if "://" not in out:
        info = read_dataset_info(out)
        c = info["counters"]
        click.echo(
            f"wrote {c['pairs_written']} pairs ({c['pairs_rejected']} rejected of "
            f"{c['pairs_planned']}), {c.get('crops_written', 0)} crops, {c['flows_computed']} "
            f"flows, {c['frames_decoded']} frames decoded, {c['videos_rejected']} of "
            f"{c['videos_in']} videos rejected -> {out}"
        )
        for problem in counter_problems(c, KIND_PAIRS, info["totals"]):
            click.echo(f"warning: {problem}", err=True)
