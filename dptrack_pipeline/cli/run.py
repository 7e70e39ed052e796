"""``dptrack-build run``: DensePose-Track labels + video -> propagated instance shards."""

from __future__ import annotations

import click

from dptrack_pipeline.cli import options as opt

RUN_PREFIXES = ("instances-", "dense-", "rejects-", "dataset_info.json")

EPILOG = (
    opt.BEAM_EPILOG
    + """
\b
Example:
  dptrack-build run --annotations posetrack_train.json \\
      --posetrack posetrack18/train/*.json --frames-root /data/posetrack \\
      --out shards/ --offsets 3 --fb-threshold 5 --num-shards 64

\b
FlowNet2 on a GPU (the public checkpoint; weights loaded once per worker process):
  dptrack-build run ... --estimator flownet2 \\
      --checkpoint FlowNet2_checkpoint.pth.tar --precision bf16 --batch-size 8
"""
)


@click.command(context_settings=opt.BEAM_PASSTHROUGH, epilog=EPILOG)
@click.option(
    "--annotations",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="DensePose-PoseTrack JSON (COCO style, with dp_* fields on labelled frames).",
)
@click.option(
    "--posetrack",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="PoseTrack18 JSON of the same videos (boxes/keypoints of unlabelled frames; "
    "used as target boxes). Repeatable.",
)
@click.option(
    "--frames-root",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder that annotation file_names are relative to. A frame is an image file "
    "there, or a frame of the video file <folder of file_name>.mp4/.avi/...",
)
@opt.output_options("Progress bar over windows (in-process runners).")
@opt.flow_options
@opt.offsets_option("K: propagate each labelled frame T to T-K..T+K.")
@opt.fb_threshold_option(
    "Forward-backward check: drop a point whose forward-then-backward flow misses "
    "its start by more than this many pixels."
)
@opt.shards_option("Number of output shards [default: about one per 500 instances].")
@opt.crop_size_option("Side of the square person crops and crop flows stored in HDF5.")
@click.pass_context
def run(ctx: click.Context, **params) -> None:
    """Propagate DensePose labels to frames T±1..K along optical flow; write shards.

    For every labelled frame T the flows T->T±k and T±k->T are computed once each, points
    failing the forward-backward check are dropped, and the moved points, keypoints, part masks
    and boxes are written as Parquet rows, with person crops and crop flows in HDF5. Bad
    annotations and frames go to rejects-*.parquet with their reason; the run goes on.
    """
    from dptrack_pipeline.propagate.config import PropagateConfig
    from dptrack_pipeline.propagate.launch import prepare
    from dptrack_pipeline.shards import counter_problems, read_dataset_info
    from dptrack_pipeline.shards.counters import KIND_RUN
    from pipelines.propagate import run as run_pipeline

    estimator = params["estimator"]
    options = opt.estimator_options(estimator, params)
    try:
        config = PropagateConfig(
            annotations=params["annotations"],
            frames_root=params["frames_root"],
            out=params["out"],
            posetrack=tuple(params["posetrack"]),
            estimator=estimator,
            estimator_options=options,
            max_offset=params["offsets"],
            fb_threshold=params["fb_threshold"],
            num_shards=params["num_shards"],
            crop_size=params["crop_size"],
            progress=params["progress"],
        )
        prepared = prepare(config)  # fail on bad files/options before touching --out
        opt.check_runtime(estimator, options, ctx.args)
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    out = config.out
    opt.prepare_out(out, params["overwrite"], RUN_PREFIXES)
    click.echo(
        f"running with Beam options: {' '.join(ctx.args) or '(defaults: DirectRunner)'}", err=True
    )
    run_pipeline(config, ctx.args, prepared)
    if "://" not in out:
        info = read_dataset_info(out)
        c = info["counters"]
        click.echo(
            f"wrote {c['instances_written']} instances ({c['instances_rejected']} rejected of "
            f"{c['instances_in']}), {c['points_kept']}/{c['points_in']} propagated points kept, "
            f"{c['flows_computed']} flows, {c['frames_decoded']} frames -> {out}"
        )
        for problem in counter_problems(c, KIND_RUN, info["totals"]):
            click.echo(f"warning: {problem}", err=True)
