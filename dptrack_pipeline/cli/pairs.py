"""``dptrack-build pairs``: unlabelled video -> person-cropped flow-pair shards."""

from __future__ import annotations

import click

from dptrack_pipeline.cli import options as opt
from dptrack_pipeline.cli.job import Job, run_job

PAIRS_PREFIXES = ("pairs-", "dense-", "rejects-", "dataset_info.json")

EPILOG = (
    opt.BEAM_EPILOG
    + """
\b
People (--people FILE or FOLDER, --people-format, default auto = detected):
  dptrack      JSON list of {"video", "frame", "x", "y", "scale"[, "person"]} or CSV with those
               columns; video = file name without extension or folder name, frame = 0-based
               index, (x, y) = centre in pixels, scale = MPII scale (person ~200*scale px tall)
  posetrack18  PoseTrack18 / DensePose-PoseTrack JSON (a file, or a folder of per-video files):
               video = the folder holding each frame (give --videos images/val), person =
               track_id, box = bbox (or PoseTrack's keypoint box)
  mpii-mat     MPII's mpii_human_pose_v1_u12_1.mat; mpii-json: its JSON conversion (image,
               center, scale, joints, joints_vis). Both need --people-keyframes
               mpii_human_pose_v1_sequences_keyframes.mat; video = the image's sequence folder
               (give --videos mpii_human_pose_v1_sequences/), box = the joints' box, else
               objpos/scale
The crop is a square of side 200*scale*--context around the centre (a dataset box: its longer
side * --context). Without --people every frame is cropped to its centred square of side
min(W, H). Entries that cannot be used go to rejects-*.parquet with their reason.

\b
Examples:
  dptrack-build pairs --videos mpii_videos/ --people mpii_people.csv --out pairs/
  dptrack-build pairs --videos posetrack/images/val --people posetrack/annotations/val \\
      --out pairs/
  dptrack-build pairs --videos mpii_human_pose_v1_sequences/ \\
      --people mpii_human_pose_v1_u12_1.mat \\
      --people-keyframes mpii_human_pose_v1_sequences_keyframes.mat --out pairs/
  dptrack-build pairs --videos clip.mp4 --out pairs/ --mode chained --stride 2
  dptrack-build pairs --videos mpii_videos/ --out gs://b/pairs --estimator flownet2 \\
      --checkpoint gs://b/FlowNet2_checkpoint.pth.tar --precision bf16 \\
      --runner DataflowRunner --project P --region R --temp_location gs://b/tmp
"""
)


def _people_inputs(config) -> list[str]:
    """The files whose bytes identify a pairs job's people (``--resume``)."""
    import os

    from dptrack_pipeline.pairs.people_posetrack import posetrack_files

    files = []
    if config.people:
        files += posetrack_files(config.people) if os.path.isdir(config.people) else [config.people]
    if config.people_keyframes:
        files.append(config.people_keyframes)
    return files


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
    type=click.Path(exists=True),
    help="Where the people are: a people file, or a folder of PoseTrack18 files (formats below).",
)
@opt.value(
    "--people-format",
    "auto",
    click.Choice(["auto", "dptrack", "posetrack18", "mpii-mat", "mpii-json"]),
    "Format of --people; auto detects it from the path and the first record.",
)
@opt.path(
    "--people-keyframes",
    "MPII's image-to-sequence mapping (mpii_human_pose_v1_sequences_keyframes.mat); needed by "
    "the MPII formats.",
)
@opt.output_options("Progress bar over pairs.")
@opt.follow_symlinks_option
@opt.offsets_option("K: pair every anchor frame T with T-K..T+K.")
@opt.value("--stride", 1, click.IntRange(1), "Anchor frames are 0, S, 2S, ... (1: every frame).")
@opt.crop_size_option("Side of the square crops and crop flows.")
@opt.value(
    "--mode",
    "direct",
    click.Choice(["direct", "chained"]),
    "direct: estimate every flow T->T+k; chained: estimate one-step flows only and compose "
    "them (2 flows per frame instead of 2K; errors add up along the chain).",
)
@opt.flow_options
@opt.fb_threshold_option(
    "Forward-backward check in pixels: a crop pixel whose round trip misses by more is invalid."
)
@opt.value(
    "--min-valid",
    0.0,
    opt.Finite(0, 1),
    "Reject pairs whose fraction of valid crop pixels is below this (pairs with none are "
    "always rejected).",
)
@opt.value(
    "--context",
    1.25,
    opt.Finite(min=0, min_open=True),
    "--people boxes: side = 200 * scale * context.",
)
@opt.value(
    "--people-reach",
    20,
    click.IntRange(0),
    "--people: a frame without rows uses the nearest frame with rows within this many frames.",
)
@opt.value(
    "--chunk-anchors",
    256,
    click.IntRange(1),
    "Anchors per parallel work item (long videos split into chunks).",
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
    from dptrack_pipeline.shards.counters import KIND_PAIRS
    from pipelines.pairs import run as run_pipeline

    job = Job(
        PairsConfig,
        prepare,
        run_pipeline,
        KIND_PAIRS,
        "pairs",
        PAIRS_PREFIXES,
        inputs=_people_inputs,
        announce=lambda prepared, beam: (
            f"{len(prepared.videos)} videos, "
            + (
                f"{prepared.counters['people_in']} people ({prepared.people_format}, "
                f"{len(prepared.launch_rejects)} set aside), "
                if prepared.people is not None
                else ""
            )
            + f"about {prepared.estimated_pairs} pairs, "
            f"{prepared.num_shards} shards; Beam options: {beam}"
        ),
        report=lambda c: (
            f"wrote {c['pairs_written']} pairs ({c['pairs_rejected']} rejected of "
            f"{c['pairs_planned']}), {c.get('crops_written', 0)} crops, {c['flows_computed']} "
            f"flows, {c['frames_decoded']} frames decoded, {c['videos_rejected']} of "
            f"{c['videos_in']} videos rejected"
        ),
    )
    run_job(job, ctx, params)
