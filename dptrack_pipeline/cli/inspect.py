"""``dptrack-build inspect``: what a ``run`` or ``pairs`` folder holds, and is it intact?"""

from __future__ import annotations

import json
import sys

import click

from dptrack_pipeline.cli import options as opt


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@opt.output_path(
    "--render",
    "render_dir",
    "Write PNG overlays (source vs propagated points and masks) and crop-flow pictures here.",
    directory=True,
)
@opt.path(
    "--frames-root",
    "Frames folder for --render [default: the one recorded in dataset_info.json].",
    directory=True,
)
@opt.value(
    "--max-render", 12, click.IntRange(1), "How many propagated instances (or pairs) to render."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(
    out: str, render_dir: str | None, frames_root: str | None, max_render: int, as_json: bool
) -> None:
    """Summarise a run or pairs folder: counts per offset, rejects by reason, and a check of every
    file against dataset_info.json and the schemas; optionally render pictures.

    Exits 1 when a file is missing, altered or malformed, or the counters do not add up.
    """
    from dptrack_pipeline.rejects import count_reasons
    from dptrack_pipeline.shards import read_dataset_info, read_rejects, verify_output
    from dptrack_pipeline.shards.counters import KIND_PAIRS
    from dptrack_pipeline.shards.manifest import folder_kind

    try:
        info = read_dataset_info(out)
    except FileNotFoundError as err:
        raise click.ClickException(
            f"{out} has no dataset_info.json: it is not a finished dptrack-build output folder "
            "(a run still going, or one that stopped early)"
        ) from err
    except ValueError as err:
        raise click.ClickException(f"{out}/dataset_info.json is not valid JSON: {err}") from err
    kind = folder_kind(info)
    if kind == KIND_PAIRS:
        from dptrack_pipeline.pairs.render import render_pairs
        from dptrack_pipeline.pairs.summary import format_pairs_summary, pairs_offset_summary
        from dptrack_pipeline.shards import read_pairs

        table = read_pairs(out)
        offsets = pairs_offset_summary(table)
        text = format_pairs_summary
    else:
        from dptrack_pipeline.propagate.summary import (
            format_summary,
            offset_summary,
            quality_summary,
        )
        from dptrack_pipeline.shards import read_instances

        table = read_instances(out)
        offsets = offset_summary(table)
        quality = quality_summary(table)

        def text(info: dict, offsets: list, rejects: dict) -> str:
            return format_summary(info, offsets, rejects, quality)

    rejects = count_reasons(read_rejects(out).column("reason").to_pylist())
    problems = verify_output(out)
    if as_json:
        summary = {"counters": info["counters"], "offsets": offsets, "rejects": rejects}
        if kind != KIND_PAIRS:
            summary["quality"] = quality
        click.echo(json.dumps({**summary, "problems": problems}, indent=2))
    else:
        click.echo(text(info, offsets, rejects))
        click.echo(
            "files verified against dataset_info.json and schemas"
            if not problems
            else "FILE PROBLEMS:\n  " + "\n  ".join(problems)
        )
    if render_dir:
        rows = table.to_pylist()
        if kind == KIND_PAIRS:
            written = render_pairs(out, rows, render_dir, max_render)
        else:
            from dptrack_pipeline.propagate.render import render_instances

            config = info.get("config", {})
            root = frames_root or config.get("frames_root")
            follow = bool(config.get("follow_symlinks", False))
            written = render_instances(out, rows, root, render_dir, max_render, follow)
        click.echo(f"rendered {written} pictures into {render_dir}")
    if problems:
        sys.exit(1)
