"""``dptrack-build export``: a ``run`` folder's labels as DensePose-COCO or DensePose-PoseTrack
JSON (what detectron2's DensePose project and the original DensePose tools load)."""

from __future__ import annotations

import click

from dptrack_pipeline.cli import options as opt

_FILTERS = "Same filter as dptrack-train"


@click.command(
    epilog="""\b
Formats:
  densepose-coco       one JSON: images (the frames with an exported annotation), annotations,
                       the COCO person category; what detectron2 DensePose registers.
  densepose-posetrack  the DensePose-PoseTrack layout: every frame of each exported video listed,
                       has_no_densepose / ignore_regions_x/y carried over; one file, or with
                       --per-video a folder of <video_id>.json. dptrack-build run reads it back.

\b
What the exporter makes hold (counted in the summary and the file's info.dptrack):
  dp_x/dp_y clipped to [0, 255] (rows can carry up to 256 at the box edge), dp_U/dp_V to [0, 1];
  rows without part masks get no DensePose keys (detectron2 needs dp_masks with the points);
  image width/height are the real file's; no 'ignore' key.
Rows whose frame lives only inside a video file are refused unless --write-frames extracts them
(JPEG quality 95, <DIR>/<video_id>/<frame_index:06d>.jpg, DIR inside --frames-root).

\b
Examples:
  dptrack-build export demo_out/shards --out demo_out/export/coco.json
  dptrack-build export demo_out/shards --format densepose-posetrack --per-video \\
      --out demo_out/export/posetrack --no-include-sources --offsets 1,2 --max-fb-error 1
  dptrack-build export run_out --out run_out.json --write-frames frames/extracted
"""
)
@click.argument("shards", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="The JSON file to write (with --per-video: a folder of <video_id>.json files).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["densepose-coco", "densepose-posetrack"]),
    default="densepose-coco",
    show_default=True,
    help="Layout of the JSON (below).",
)
@click.option(
    "--per-video",
    is_flag=True,
    help="densepose-posetrack: one file per video in the folder --out, as PoseTrack ships.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="--per-video: reuse a folder that holds files, removing its *.json first. (A single "
    "--out file is always replaced, atomically.)",
)
@click.option(
    "--annotations",
    "annotations",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The run's input annotation files (repeat for PoseTrack18 files) [default: the paths "
    "dataset_info.json records]; read again for image sizes and the PoseTrack image fields.",
)
@opt.path(
    "--frames-root",
    "The run's --frames-root [default: the recorded one]; file_names are relative to it.",
    directory=True,
)
@click.option(
    "--write-frames",
    type=click.Path(file_okay=False),
    default=None,
    help="Extract frames that live only inside video files into this folder (inside "
    "--frames-root) and point file_name at them; only the frames the export references.",
)
@click.option(
    "--include-sources/--no-include-sources",
    default=True,
    show_default=True,
    help="Export the annotated instances (offset 0) together with the propagated ones.",
)
@opt.label_filter_options(_FILTERS)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)
def export(
    shards: str,
    out: str,
    fmt: str,
    per_video: bool,
    overwrite: bool,
    annotations: tuple[str, ...],
    frames_root: str | None,
    write_frames: str | None,
    include_sources: bool,
    progress: bool,
    **filters: object,
) -> None:
    """Export the labels of SHARDS, a finished `dptrack-build run` folder, as JSON that other
    trainers load unchanged (detectron2 DensePose: see the README section "Train detectron2
    DensePose on the propagated set").

    Every row is exported, filtered out, or refused with a reason; the summary line adds them
    up. Exits 1 on an unusable folder or input, with one line saying why.
    """
    from tqdm import tqdm

    from dptrack_pipeline.export.build import export_folder
    from dptrack_pipeline.export.config import ExportConfig
    from dptrack_pipeline.shards.reader import CorruptShardError

    try:
        config = ExportConfig(
            shards=shards,
            out=out,
            format=fmt,
            annotations=annotations,
            frames_root=frames_root,
            label_filter=opt.label_filter_from(filters),
            include_sources=include_sources,
            write_frames=write_frames,
            per_video=per_video,
            overwrite=overwrite,
        )
        with tqdm(desc="export", unit="row", disable=not progress) as bar:
            result = export_folder(config, bar.update)
    except (CorruptShardError, ValueError, OSError) as err:
        raise click.ClickException(f"cannot export {shards}: {err}") from err
    c = result.counts
    refused = ", ".join(f"{k} {v}" for k, v in sorted(c.rows_refused.items())) or "none"
    fixes = ", ".join(f"{k} {v}" for k, v in result.fixes.as_dict().items())
    for path in result.paths[:5]:
        click.echo(f"wrote {path}")
    if len(result.paths) > 5:
        click.echo(f"... and {len(result.paths) - 5} more files")
    click.echo(
        f"rows: {c.rows_in} in = {c.rows_exported} exported + {c.rows_filtered} filtered + "
        f"{sum(c.rows_refused.values())} refused ({refused}); images {c.images_written}, "
        f"frames extracted {c.frames_extracted}; fixes: {fixes}"
    )
    for reason, count in sorted(c.rows_refused.items()):
        click.echo(f"refused {count} rows: {reason}: {REFUSAL_HELP.get(reason, '')}", err=True)


REFUSAL_HELP = {
    "frame_not_in_inputs": "their frame is not in the images of the annotation files given "
    "(pass the run's --annotations)",
    "frame_in_video_file": "their frame exists only inside a video file; pass --write-frames DIR "
    "(inside --frames-root) to extract those frames as JPEG",
    "frame_unreadable": "their frame cannot be read under --frames-root",
    "frame_size_mismatch": "their frame's real size differs from the annotation file's "
    "width/height (the frames changed since the run)",
}
