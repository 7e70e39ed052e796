"""How is a folder's report made? Read the folder, compute the figures, draw, write one file.

:func:`build_report` is the whole of ``dptrack-build report``: it reads ``dataset_info.json`` and
the index and reject shards (:mod:`dptrack_pipeline.shards.reader`), computes the figures
(:mod:`~dptrack_pipeline.report.figures` for a ``run`` folder,
:mod:`~dptrack_pipeline.report.pairs_figures` for a ``pairs`` one), draws the charts and the
gallery (the gallery's crops and flows come from the dense HDF5 files; frames are not needed),
and writes the HTML page and optionally the figures as JSON, each atomically.

The manifest holds no timestamp by design (two runs write the same bytes); the report shows the
manifest file's modification time as when the folder was written.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from dptrack_pipeline.report import charts, gallery
from dptrack_pipeline.report.columns import json_ready
from dptrack_pipeline.report.figures import run_figures
from dptrack_pipeline.report.pages import run_page
from dptrack_pipeline.report.pairs_figures import pairs_figures
from dptrack_pipeline.report.pairs_page import pairs_page
from dptrack_pipeline.shards import DenseReader, read_dataset_info, read_rejects
from dptrack_pipeline.shards.atomic import atomic_write, is_remote, join_path, local_path
from dptrack_pipeline.shards.counters import KIND_PAIRS
from dptrack_pipeline.shards.manifest import folder_kind
from dptrack_pipeline.shards.naming import DATASET_INFO_FILENAME
from dptrack_pipeline.shards.reader import read_instances, read_pairs


def manifest_written(folder: str) -> str | None:
    """The modification time of the folder's ``dataset_info.json`` as ``YYYY-MM-DD HH:MM:SS
    UTC``, or ``None`` when the file system does not say."""
    path = join_path(folder, DATASET_INFO_FILENAME)
    try:
        if is_remote(path):
            from apache_beam.io.filesystems import FileSystems

            seconds = FileSystems.last_updated(path)
        else:
            seconds = os.path.getmtime(local_path(path))
    except Exception:  # a missing time is shown as unknown, not an error
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pngs(panels: dict[str, Any]) -> dict[str, bytes]:
    return {name: gallery.encode_png(picture) for name, picture in panels.items()}


def _common(folder: str, gallery_size: int) -> dict[str, Any]:
    """The arguments both folder kinds' figures take besides the manifest and the index."""
    return {
        "rejects": read_rejects(folder),
        "written": manifest_written(folder),
        "gallery_size": gallery_size,
    }


def _run_report(folder: str, info: dict[str, Any], gallery_size: int) -> tuple[dict, str]:
    instances = read_instances(folder)
    figures = run_figures(info, instances, **_common(folder, gallery_size))
    drawn = {"kept": charts.kept_fraction_chart(figures["offsets"])}
    if figures["distributions"] is not None:
        drawn["fb_error"] = charts.histogram_chart(
            figures["distributions"],
            "fb_error_px",
            "forward-backward error (px)",
            "forward-backward error of kept points",
        )
        drawn["photo"] = charts.histogram_chart(
            figures["distributions"], "photo_zncc", "ZNCC", "photometric agreement of kept points"
        )
    top = float((info.get("checks") or {}).get("fb_threshold") or info.get("fb_threshold") or 5.0)
    keys = list(
        zip(
            instances.column("video_id").to_pylist(),
            instances.column("annotation_id").to_pylist(),
            instances.column("offset").to_pylist(),
            strict=True,
        )
    )
    source_of = {(v, a): i for i, (v, a, o) in enumerate(keys) if o == 0}
    tiles: dict[str, list] = {"worst": [], "best": []}
    with DenseReader(folder) as dense:
        for side in ("worst", "best"):
            for entry in figures["gallery"][side]:
                source_row = source_of.get((entry["video_id"], entry["annotation_id"]))
                if source_row is None:
                    continue
                target, source = instances.take([entry["row"], source_row]).to_pylist()
                panels = gallery.instance_panels(dense, source, target, top)
                tiles[side].append((entry, _pngs(panels)))
    bar = gallery.encode_png(gallery.colour_bar())
    return figures, run_page(folder, figures, drawn, tiles, bar, top)


def _pairs_report(folder: str, info: dict[str, Any], gallery_size: int) -> tuple[dict, str]:
    pairs = read_pairs(folder)
    figures = pairs_figures(info, pairs, **_common(folder, gallery_size))
    chart = charts.pairs_offset_chart(figures["offsets"])
    tiles = []
    with DenseReader(folder) as dense:
        for entry in figures["gallery"]:
            row = pairs.slice(entry["row"], 1).to_pylist()[0]
            tiles.append((entry, _pngs(gallery.pair_panels(dense, row))))
    return figures, pairs_page(folder, figures, chart, tiles)


def build_report(
    folder: str, html_path: str, json_path: str | None = None, gallery_size: int = 6
) -> dict[str, Any]:
    """Write the quality report of a ``run`` or ``pairs`` folder.

    Args:
        folder: the output folder (``dataset_info.json`` says which job wrote it).
        html_path: the HTML file to write (one self-contained file).
        json_path: where to write the figures as JSON too, or ``None``.
        gallery_size: ``run``: instances shown among the worst and among the best; ``pairs``:
            pairs shown.

    Returns:
        The figures, JSON-ready (what ``json_path`` receives).

    Raises:
        FileNotFoundError: no ``dataset_info.json`` or no index shard.
        ValueError: a malformed manifest; SchemaMismatchError (a ValueError) for a shard of
            another format.
    """
    info = read_dataset_info(folder)
    if folder_kind(info) == KIND_PAIRS:
        figures, page = _pairs_report(folder, info, gallery_size)
    else:
        figures, page = _run_report(folder, info, gallery_size)
    figures = json_ready(figures)
    outputs = [(html_path, page)]
    if json_path:
        outputs.append((json_path, json.dumps(figures, indent=2, allow_nan=False) + "\n"))
    for path, content in outputs:
        if not is_remote(path):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(content)
    return figures
