"""``dptrack-build run``: DensePose-Track labels + video -> propagated instance shards."""

from __future__ import annotations

import click

from dptrack_pipeline.cli import options as opt
from dptrack_pipeline.cli.job import Job, run_job

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
@opt.path(
    "--annotations",
    "DensePose-PoseTrack JSON (COCO style, with dp_* fields on labelled frames).",
    required=True,
)
@opt.path(
    "--posetrack",
    "PoseTrack18 JSON of the same videos (boxes/keypoints of unlabelled frames; used as target "
    "boxes). Repeatable.",
    multiple=True,
)
@opt.path(
    "--frames-root",
    "Folder that annotation file_names are relative to. A frame is an image file there, or a "
    "frame of the video file <folder of file_name>.mp4/.avi/...",
    directory=True,
    required=True,
)
@opt.output_options("Progress bar over windows (in-process runners).")
@opt.follow_symlinks_option
@opt.flow_options
@opt.offsets_option("K: propagate each labelled frame T to T-K..T+K.")
@opt.value(
    "--preset",
    "measured",
    click.Choice(["measured", "paper"]),
    "Point checks: 'measured' = the setting measured best for the estimator on MPI-Sintel (DIS: "
    "forward-backward 1 px + ZNCC >= 0 + chain 2 px; Farneback: forward-backward 4 px + ZNCC >= "
    "0.2; others: as paper); 'paper' = Slim DensePose's 5 px forward-backward check alone. The "
    "flags below override it.",
)
@opt.fb_threshold_option(
    "Forward-backward check: drop a point whose forward-then-backward flow misses its start by "
    "more than this many pixels [default: the preset's].",
    default=None,
)
@click.option(
    "--photometric-check",
    default=None,
    metavar="zncc:T|none",
    help="Drop a point whose 11x11 grey patches at T and at its moved position correlate "
    "(ZNCC) below T, e.g. zncc:0.5 [default: the preset's].",
)
@click.option(
    "--chain-check",
    default=None,
    metavar="PX|none",
    help="Drop a point that lands more than PX pixels from where two legs through the "
    "neighbouring target frame put it (adds one-step flows between targets) [default: the "
    "preset's].",
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
    from dptrack_pipeline.shards.counters import KIND_RUN
    from pipelines.propagate import run as run_pipeline

    job = Job(
        PropagateConfig,
        prepare,
        run_pipeline,
        KIND_RUN,
        "instances",
        RUN_PREFIXES,
        inputs=lambda c: [c.annotations, *c.posetrack],
        announce=lambda _, beam: f"running with Beam options: {beam}",
        report=lambda c: (
            f"wrote {c['instances_written']} instances ({c['instances_rejected']} rejected of "
            f"{c['instances_in']}), {c['points_kept']}/{c['points_in']} propagated points kept, "
            f"{c['flows_computed']} flows, {c['frames_decoded']} frames"
        ),
    )
    run_job(job, ctx, params)
