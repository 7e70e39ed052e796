"""``dptrack-build``: the command line. Thin: it parses flags and calls the library.

Commands: ``run`` (the main job), ``pairs`` (flow pairs from unlabelled video), ``inspect`` (what a
run wrote), ``validate`` (what is wrong with an annotation file), ``synth`` (a small dataset with
exact truth), ``score`` (a run against that truth). ``dptrack-build COMMAND --help`` explains each.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click
import numpy as np

EPILOG_RUN = """\b
Any option not listed above is passed to Apache Beam's PipelineOptions, e.g.
  --direct_num_workers 2 --direct_running_mode multi_processing
  --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
(the DirectRunner runs by default, on this machine).

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


def _parse_option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _estimator_options(items: tuple[str, ...]) -> dict[str, Any]:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected KEY=VALUE, got {item!r}", param_hint="--estimator-option"
            )
        options[key.replace("-", "_")] = _parse_option_value(value)
    return options


_LOCAL_RUNNERS = {"", "directrunner", "fnapirunner", "bundlebaseddirectrunner", "prismrunner"}


def _runs_here(beam_args: list[str]) -> bool:
    """Whether the Beam options leave the work on this machine (the default DirectRunner)."""
    runner = ""
    for index, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and index + 1 < len(beam_args):
            runner = beam_args[index + 1]
    return runner.lower() in _LOCAL_RUNNERS


_SHARD_PREFIXES = ("instances-", "dense-", "rejects-", "dataset_info.json")


def _prepare_out(out: str, overwrite: bool, prefixes: tuple[str, ...] = _SHARD_PREFIXES) -> None:
    if "://" in out:
        return  # remote filesystems: Beam's FileSystems handles them in the writers
    if os.path.isdir(out):
        old = [f for f in os.listdir(out) if f.startswith(prefixes)]
        if old and not overwrite:
            raise click.UsageError(
                f"{out} already holds shards ({len(old)} files such as {sorted(old)[0]}); "
                "pass --overwrite to replace them or choose another --out"
            )
        for name in old:
            os.remove(os.path.join(out, name))
    os.makedirs(out, exist_ok=True)


_FLOW_OPTIONS = [
    click.option(
        "--estimator",
        default="dis",
        show_default=True,
        help="Optical flow estimator: dis (OpenCV DIS, preset medium, CPU), farneback (CPU) or "
        "flownet2 (FlowNet2, needs --checkpoint; GPU by default).",
    ),
    click.option(
        "--estimator-option",
        "estimator_option",
        multiple=True,
        metavar="KEY=VALUE",
        help="Estimator option, e.g. preset=fast (dis), fit=pad or compile=true (flownet2). "
        "Repeatable.",
    ),
    click.option(
        "--checkpoint",
        default=None,
        help="flownet2: the public FlowNet2_checkpoint.pth.tar (local path, or gs://... read by "
        "each worker).",
    ),
    click.option(
        "--device",
        default=None,
        metavar="cuda|cuda:N|cpu",
        help="flownet2: where the network runs [default: cuda]. A CUDA device that is not usable "
        "is an error, never a silent CPU fallback.",
    ),
    click.option(
        "--precision",
        type=click.Choice(["fp32", "bf16", "fp16"]),
        default=None,
        help="flownet2: weights and convolutions in this dtype [default: fp32, the published "
        "model]; bf16 is the fast choice on recent GPUs.",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(1),
        default=None,
        help="flownet2: frame pairs per forward pass [default: 8]; pairs of one video go together.",
    ),
]
"""The flow-estimator flags shared by ``run`` and ``pairs``."""


def _flow_options(command: Any) -> Any:
    """Add :data:`_FLOW_OPTIONS` to a command (in their listed order in ``--help``)."""
    for option in reversed(_FLOW_OPTIONS):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="dptrack")
def main(verbose: int) -> None:
    """dptrack: DensePose-Track derivatives from a few labelled frames and optical flow.

    \b
    Typical session:
      dptrack-build synth demo/synth --videos 3 --frames 24     # data with exact truth
      dptrack-build run --annotations demo/synth/annotations.json \\
          --frames-root demo/synth --out demo/shards            # propagate labels T±1..3
      dptrack-build inspect demo/shards --render demo/render    # counts and pictures
      dptrack-build score demo/shards --truth demo/synth        # accuracy vs truth
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=EPILOG_RUN,
)
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
@click.option("--out", required=True, help="Output folder for shards and dataset_info.json.")
@_flow_options
@click.option(
    "--offsets",
    default=3,
    show_default=True,
    type=click.IntRange(1, 30),
    help="K: propagate each labelled frame T to T-K..T+K.",
)
@click.option(
    "--fb-threshold",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Forward-backward check: drop a point whose forward-then-backward flow misses "
    "its start by more than this many pixels.",
)
@click.option(
    "--num-shards",
    type=click.IntRange(1),
    default=None,
    help="Number of output shards [default: about one per 500 instances].",
)
@click.option(
    "--crop-size",
    default=256,
    show_default=True,
    type=click.IntRange(8, 1024),
    help="Side of the square person crops and crop flows stored in HDF5.",
)
@click.option("--overwrite", is_flag=True, help="Replace shards already in --out.")
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Progress bar over windows (in-process runners).",
)
@click.pass_context
def run(
    ctx: click.Context,
    annotations: str,
    posetrack: tuple[str, ...],
    frames_root: str,
    out: str,
    estimator: str,
    estimator_option: tuple[str, ...],
    checkpoint: str | None,
    device: str | None,
    precision: str | None,
    batch_size: int | None,
    offsets: int,
    fb_threshold: float,
    num_shards: int | None,
    crop_size: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Propagate DensePose labels to frames T±1..K along optical flow; write shards.

    For every labelled frame T the flows T->T±k and T±k->T are computed once each, points
    failing the forward-backward check are dropped, and the moved points, keypoints, part masks
    and boxes are written as Parquet rows, with person crops and crop flows in HDF5. Bad
    annotations and frames go to rejects-*.parquet with their reason; the run goes on.
    """
    from dptrack_pipeline.config import PropagateConfig
    from dptrack_pipeline.flow.registry import create_estimator
    from pipelines.propagate import prepare
    from pipelines.propagate import run as run_pipeline

    flags = {"checkpoint": checkpoint, "device": device, "precision": precision}
    flags["batch_size"] = batch_size
    options = _flownet2_options(estimator, estimator_option, flags)
    try:
        config = PropagateConfig(
            annotations=annotations,
            frames_root=frames_root,
            out=out,
            posetrack=tuple(posetrack),
            estimator=estimator,
            estimator_options=options,
            max_offset=offsets,
            fb_threshold=fb_threshold,
            num_shards=num_shards,
            crop_size=crop_size,
            progress=progress,
        )
        prepare(config)  # fail on bad files/options before touching --out
        if _runs_here(ctx.args):
            create_estimator(estimator, **options).check_runtime()
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    _prepare_out(out, overwrite)
    click.echo(
        f"running with Beam options: {' '.join(ctx.args) or '(defaults: DirectRunner)'}", err=True
    )
    run_pipeline(config, ctx.args)
    from dptrack_pipeline.inspect import counters_add_up
    from dptrack_pipeline.shards import read_dataset_info

    if "://" not in out:
        info = read_dataset_info(out)
        c = info["counters"]
        click.echo(
            f"wrote {c['instances_written']} instances ({c['instances_rejected']} rejected of "
            f"{c['instances_in']}), {c['points_kept']}/{c['points_in']} propagated points kept, "
            f"{c['flows_computed']} flows, {c['frames_decoded']} frames -> {out}"
        )
        for problem in counters_add_up(c):
            click.echo(f"warning: {problem}", err=True)


EPILOG_PAIRS = """\b
Any option not listed above is passed to Apache Beam's PipelineOptions, e.g.
  --direct_num_workers 2 --direct_running_mode multi_processing
  --runner DataflowRunner --project P --region R --temp_location gs://B/tmp

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


def _flownet2_options(
    estimator: str, estimator_option: tuple[str, ...], flags: dict[str, Any]
) -> dict[str, Any]:
    """Estimator options from ``--estimator-option`` and the FlowNet2-only flags."""
    from dptrack_pipeline.flow.registry import available_estimators

    if estimator not in available_estimators():
        raise click.BadParameter(
            f"unknown estimator {estimator!r}; available: {', '.join(available_estimators())}",
            param_hint="--estimator",
        )
    options = _estimator_options(estimator_option)
    given = {key: value for key, value in flags.items() if value is not None}
    if given and estimator != "flownet2":
        names = ", ".join("--" + key.replace("_", "-") for key in given)
        raise click.UsageError(
            f"{names}: only for --estimator flownet2 (got --estimator {estimator})"
        )
    options.update(given)
    return options


_PAIRS_PREFIXES = ("pairs-", "dense-", "rejects-", "dataset_info.json")


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog=EPILOG_PAIRS,
)
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
@click.option("--out", required=True, help="Output folder for shards and dataset_info.json.")
@click.option(
    "--offsets",
    default=3,
    show_default=True,
    type=click.IntRange(1, 30),
    help="K: pair every anchor frame T with T-K..T+K.",
)
@click.option(
    "--stride",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Anchor frames are 0, S, 2S, ... (1: every frame).",
)
@click.option(
    "--crop-size",
    default=256,
    show_default=True,
    type=click.IntRange(8, 1024),
    help="Side of the square crops and crop flows.",
)
@click.option(
    "--mode",
    type=click.Choice(["direct", "chained"]),
    default="direct",
    show_default=True,
    help="direct: estimate every flow T->T+k; chained: estimate one-step flows only and "
    "compose them (2 flows per frame instead of 2K; errors add up along the chain).",
)
@_flow_options
@click.option(
    "--fb-threshold",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Forward-backward check in pixels: a crop pixel whose round trip misses by more is "
    "invalid.",
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
@click.option(
    "--num-shards",
    type=click.IntRange(1),
    default=None,
    help="Number of output shards [default: about one per 1000 pairs]. The pairs of one "
    "chunk (--chunk-anchors anchors of a video) stay in one shard, so use more chunks than "
    "shards to fill them all.",
)
@click.option("--overwrite", is_flag=True, help="Replace shards already in --out.")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar over pairs."
)
@click.pass_context
def pairs(
    ctx: click.Context,
    videos: tuple[str, ...],
    people: str | None,
    out: str,
    offsets: int,
    stride: int,
    crop_size: int,
    mode: str,
    estimator: str,
    estimator_option: tuple[str, ...],
    checkpoint: str | None,
    device: str | None,
    precision: str | None,
    batch_size: int | None,
    fb_threshold: float,
    min_valid: float,
    context: float,
    people_reach: int,
    chunk_anchors: int,
    num_shards: int | None,
    overwrite: bool,
    progress: bool,
) -> None:
    """Unlabelled video -> person-cropped flow pairs T -> T±1..K for equivariance training.

    For every anchor frame T (0, S, 2S, ...) and k in ±1..K, both frames are cropped around the
    person, the flow T->T+k is computed (direct) or composed from one-step flows (chained),
    checked forward-backward, and written in crop coordinates with its validity mask: HDF5
    crops/flows/valid and a Parquet index (pairs-*.parquet), read by dptrack-train --pairs.
    Unreadable videos or frames and bad people rows go to rejects-*.parquet with their reason.
    """
    from dptrack_pipeline.config import PairsConfig
    from dptrack_pipeline.flow.registry import create_estimator
    from pipelines.pairs import prepare
    from pipelines.pairs import run as run_pipeline

    flags = {"checkpoint": checkpoint, "device": device, "precision": precision}
    flags["batch_size"] = batch_size
    options = _flownet2_options(estimator, estimator_option, flags)
    try:
        config = PairsConfig(
            videos=tuple(videos),
            out=out,
            people=people,
            max_offset=offsets,
            stride=stride,
            crop_size=crop_size,
            mode=mode,
            estimator=estimator,
            estimator_options=options,
            fb_threshold=fb_threshold,
            min_valid=min_valid,
            context=context,
            people_reach=people_reach,
            chunk_anchors=chunk_anchors,
            num_shards=num_shards,
            progress=progress,
        )
        prepared = prepare(config)
        if _runs_here(ctx.args):
            create_estimator(estimator, **options).check_runtime()
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    _prepare_out(out, overwrite, _PAIRS_PREFIXES)
    click.echo(
        f"{len(prepared.videos)} videos, about {prepared.estimated_pairs} pairs, "
        f"{prepared.num_shards} shards; Beam options: {' '.join(ctx.args) or '(DirectRunner)'}",
        err=True,
    )
    run_pipeline(config, ctx.args, prepared)
    from dptrack_pipeline.shards import read_dataset_info

    if "://" not in out:
        c = read_dataset_info(out)["counters"]
        click.echo(
            f"wrote {c['pairs_written']} pairs ({c['pairs_rejected']} rejected of "
            f"{c['pairs_planned']}), {c.get('crops_written', 0)} crops, {c['flows_computed']} "
            f"flows, {c['frames_decoded']} frames decoded, {c['videos_rejected']} of "
            f"{c['videos_in']} videos rejected -> {out}"
        )
        if c["pairs_planned"] != c["pairs_written"] + c["pairs_rejected"]:
            click.echo("warning: pairs_planned != pairs_written + pairs_rejected", err=True)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--render",
    "render_dir",
    type=click.Path(file_okay=False),
    help="Write PNG overlays (source vs propagated points and masks) and crop-flow pictures here.",
)
@click.option(
    "--frames-root",
    type=click.Path(exists=True, file_okay=False),
    help="Frames folder for --render [default: the one recorded in dataset_info.json].",
)
@click.option(
    "--max-render",
    default=12,
    show_default=True,
    type=click.IntRange(1),
    help="How many propagated instances to render.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(
    out: str, render_dir: str | None, frames_root: str | None, max_render: int, as_json: bool
) -> None:
    """Summarise a run: counts, kept ratio per offset, rejects by reason; optionally render."""
    from dptrack_pipeline.inspect import format_summary, offset_summary, reject_summary
    from dptrack_pipeline.shards import (
        read_dataset_info,
        read_instances,
        read_rejects,
        verify_output,
    )

    info = read_dataset_info(out)
    if info.get("kind") == "pairs":
        _inspect_pairs(out, info, render_dir, max_render, as_json)
        return
    table = read_instances(out)
    offsets = offset_summary(table)
    rejects = reject_summary(read_rejects(out))
    problems = verify_output(out)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "counters": info["counters"],
                    "offsets": offsets,
                    "rejects": rejects,
                    "problems": problems,
                },
                indent=2,
            )
        )
    else:
        click.echo(format_summary(info, offsets, rejects))
        click.echo(
            "files verified against dataset_info.json and schemas"
            if not problems
            else "FILE PROBLEMS:\n  " + "\n  ".join(problems)
        )
    if render_dir:
        root = frames_root or info.get("config", {}).get("frames_root")
        written = _render(out, table, root, render_dir, max_render)
        click.echo(f"rendered {written} pictures into {render_dir}")
    if problems:
        sys.exit(1)


def _inspect_pairs(
    out: str, info: dict, render_dir: str | None, max_render: int, as_json: bool
) -> None:
    from dptrack_pipeline.inspect import format_pairs_summary, pairs_offset_summary, reject_summary
    from dptrack_pipeline.shards import read_pairs, read_rejects, verify_output

    table = read_pairs(out)
    offsets = pairs_offset_summary(table)
    rejects = reject_summary(read_rejects(out))
    problems = verify_output(out)
    if as_json:
        summary = {"counters": info["counters"], "offsets": offsets, "rejects": rejects}
        click.echo(json.dumps({**summary, "problems": problems}, indent=2))
    else:
        click.echo(format_pairs_summary(info, offsets, rejects))
        click.echo(
            "files verified against dataset_info.json and schemas"
            if not problems
            else "FILE PROBLEMS:\n  " + "\n  ".join(problems)
        )
    if render_dir:
        written = _render_pairs(out, table.to_pylist(), render_dir, max_render)
        click.echo(f"rendered {written} pictures into {render_dir}")
    if problems:
        sys.exit(1)


def _render_pairs(out: str, rows: list[dict], render_dir: str, max_render: int) -> int:
    """PNG per pair: crop A | crop B | crop B warped back onto A by the flow | flow picture."""
    import cv2

    from dptrack_pipeline.render import flow_picture, write_png
    from dptrack_pipeline.shards import DenseReader

    by_offset: dict[int, list[dict]] = {}
    for r in sorted(rows, key=lambda r: (abs(r["offset"]), r["video_id"], r["frame_a"])):
        by_offset.setdefault(r["offset"], []).append(r)
    chosen: list[dict] = []
    while len(chosen) < max_render and any(by_offset.values()):
        for k in sorted(by_offset):
            if by_offset[k] and len(chosen) < max_render:
                chosen.append(by_offset[k].pop(0))
    with DenseReader(out) as dense:
        for r in chosen:
            crop_a = dense.crop(r["dense_file"], r["crop_a_index"])
            crop_b = dense.crop(r["dense_file"], r["crop_b_index"])
            flow, valid = dense.flow(r["dense_file"], r["flow_index"])
            size = flow.shape[0]
            grid = np.mgrid[0:size, 0:size][::-1].transpose(1, 2, 0).astype(np.float32) + flow
            warped = cv2.remap(crop_b, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR)
            warped[~valid] = warped[~valid] // 3  # dim where the flow is not valid
            name = f"{r['video_id']}_{r['frame_a']:06d}_p{r['person']}_off{r['offset']:+d}.png"
            picture = np.concatenate([crop_a, crop_b, warped, flow_picture(flow, valid)], axis=1)
            write_png(os.path.join(render_dir, name), picture)
    return len(chosen)


def _render(out: str, table: Any, frames_root: str, render_dir: str, max_render: int) -> int:
    from dptrack_pipeline.frames.sources import FrameDecodeError, decode_frames, resolve_frame
    from dptrack_pipeline.render import flow_picture, overlay_instance, side_by_side, write_png
    from dptrack_pipeline.shards import DenseReader

    rows = table.to_pylist()
    sources = {(r["video_id"], r["annotation_id"]): r for r in rows if r["offset"] == 0}
    # A spread of examples: cycle over offsets so every |k| shows up.
    propagated = sorted(
        (r for r in rows if r["offset"] != 0),
        key=lambda r: (abs(r["offset"]), r["video_id"], r["annotation_id"]),
    )
    by_offset: dict[int, list[dict]] = {}
    for r in propagated:
        by_offset.setdefault(r["offset"], []).append(r)
    chosen: list[dict] = []
    while len(chosen) < max_render and any(by_offset.values()):
        for k in sorted(by_offset):
            if by_offset[k] and len(chosen) < max_render:
                chosen.append(by_offset[k].pop(0))
    written = 0
    with DenseReader(out) as dense:
        for r in chosen:
            src = sources.get((r["video_id"], r["annotation_id"]))
            if src is None:
                continue
            images = decode_frames(
                [
                    resolve_frame(frames_root, src["image_file"], src["frame_index"]),
                    resolve_frame(frames_root, r["image_file"], r["frame_index"]),
                ]
            )
            if any(isinstance(i, FrameDecodeError) for i in images):
                continue
            name = f"{r['video_id']}_a{r['annotation_id']}_off{r['offset']:+d}"
            write_png(
                os.path.join(render_dir, f"{name}_overlay.png"),
                side_by_side(
                    overlay_instance(images[0], src),
                    overlay_instance(images[1], r),
                    (f"source frame {src['frame_index']}", f"propagated to {r['frame_index']}"),
                ),
            )
            flow, valid = dense.flow(r["dense_file"], r["flow_index"])
            crops = np.concatenate(
                [
                    dense.crop(src["dense_file"], src["crop_index"]),
                    dense.crop(r["dense_file"], r["crop_index"]),
                    flow_picture(flow, valid),
                ],
                axis=1,
            )
            write_png(os.path.join(render_dir, f"{name}_crops_flow.png"), crops)
            written += 2
    return written


@main.command()
@click.argument("annotations", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--max-lines",
    default=200,
    show_default=True,
    type=click.IntRange(0),
    help="Print at most this many problems (all are counted).",
)
def validate(annotations: str, max_lines: int) -> None:
    """List every problem of a DensePose-PoseTrack file, with annotation id and reason.

    Exits 1 when there is any problem, 0 when the file is clean.
    """
    from collections import Counter

    from dptrack_pipeline.formats.densepose_posetrack import problems

    try:
        found = problems(annotations)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    for p in found[:max_lines]:
        click.echo(
            f"annotation {p.annotation_id} (video {p.video_id or '?'}, frame "
            f"{p.frame_id}, track {p.track_id}): {p.reason}: {p.detail}"
        )
    if len(found) > max_lines:
        click.echo(f"... and {len(found) - max_lines} more")
    if found:
        by_reason = Counter(p.reason for p in found)
        click.echo(
            f"{len(found)} problems: " + ", ".join(f"{k} {v}" for k, v in by_reason.most_common())
        )
        sys.exit(1)
    click.echo(f"{annotations}: no problems found")


@main.command()
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


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--truth",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The `synth` folder the run was built from.",
)
@click.option(
    "--near",
    default=3.0,
    show_default=True,
    type=float,
    help="A kept point is correct when within this many pixels of the truth.",
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


if __name__ == "__main__":  # pragma: no cover
    main()
