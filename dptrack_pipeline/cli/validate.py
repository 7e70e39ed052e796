"""``dptrack-build validate``: every problem of an annotation file, with id and reason."""

from __future__ import annotations

import sys

import click

from dptrack_pipeline.cli import options as opt


@click.command()
@click.argument("annotations", type=click.Path(exists=True, dir_okay=False))
@opt.value(
    "--max-lines", 200, click.IntRange(0), "Print at most this many problems (all are counted)."
)
@opt.path(
    "--frames-root",
    "Also check the frames, as run would find them under this folder: inside it, present, "
    "decodable, and of the width/height the JSON says (decodes every listed image).",
    directory=True,
)
@opt.follow_symlinks_option
def validate(
    annotations: str, max_lines: int, frames_root: str | None, follow_symlinks: bool
) -> None:
    """List every problem of a DensePose-PoseTrack file, with annotation id and reason.

    Checks the format of every image and annotation, duplicate image and annotation ids, images
    listed under two videos, and with --frames-root the frames on disk. Exits 1 when there is
    any problem, 0 when the file is clean.
    """
    from collections import Counter

    from dptrack_pipeline.formats.densepose_posetrack import load_densepose_posetrack, problems

    try:
        found = problems(annotations)
        if frames_root:
            from tqdm import tqdm

            from dptrack_pipeline.formats.on_disk import frame_problems, listed_frames

            frames = listed_frames(load_densepose_posetrack(annotations).videos)
            bar = tqdm(frames, desc="frames", unit="frame", disable=len(frames) < 200)
            found += frame_problems(bar, frames_root, follow_symlinks=follow_symlinks)
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
