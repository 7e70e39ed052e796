"""Time and peak memory of ``dptrack-build export`` as the number of instances grows.

Issue 15 asks that large exports stream to disk: memory flat in the number of instances.

**Data** (:func:`replicate_run`). A real ``run`` folder (the synthetic set through
``dptrack-build run``: real rows, real masks and points) is copied ``copies`` times into a new
folder, in one of two ways:

* ``spread="videos"``: copy ``c`` gets ``vid_id + c * VIDEO_STRIDE`` and image ids shifted
  likewise, so every copy is a distinct video, and the annotation file lists the copied videos'
  images: frames grow with instances, as in real data;
* ``spread="people"``: copy ``c`` keeps the videos and frames and gets new annotation and track
  ids: more people on the same frames, so frames stay fixed and only instances grow.

Annotation ids are shifted by ``c * ID_STRIDE`` either way. The copies are written as Parquet
shards of the run's own schema (about :data:`ROWS_PER_SHARD` rows each, row groups of 1024, as
``run`` writes them) with a manifest (``dataset_info.json``) whose file entries the exporter
checks. The frames are the run's own image files, so the exporter reads real image headers.

**Measured** (:func:`measure`). Each export runs in a fresh Python process
(``python -m dptrack_pipeline.perf.export FOLDER OUT``) whose own peak resident memory
(``ru_maxrss`` of :func:`os.wait4`) and wall time are recorded; the file is checked to hold
every row. :func:`report_table` prints one row per size and the slope of peak memory per 10k
instances.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dptrack_pipeline.perf.timing import markdown_table
from dptrack_pipeline.shards import naming, read_dataset_info

VIDEO_STRIDE = 100_000
ID_STRIDE = 10_000_000
ROWS_PER_SHARD = 500
"""About the rows per shard of a real run (``TARGET_INSTANCES_PER_SHARD``)."""


def _source_table(shards: Path) -> pa.Table:
    files = sorted(shards.glob(f"{naming.PREFIX_INSTANCES}-*.parquet"))
    return pa.concat_tables(pq.read_table(f) for f in files)


def _shift(table: pa.Table, copy: int, spread: str) -> pa.Table:
    shifted = {"annotation_id": pc.add(table["annotation_id"], copy * ID_STRIDE)}
    if spread == "videos":
        video = pc.add(pc.cast(table["video_id"], pa.int64()), copy * VIDEO_STRIDE)
        shifted["video_id"] = pc.cast(video, pa.string())
    else:
        shifted["track_id"] = pc.add(table["track_id"], copy * 1000)
    for name, column in shifted.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index), column.cast(table[name].type))
    return table


def replicate_run(
    shards: Path, annotations: Path, out: Path, instances: int, spread: str = "videos"
) -> Path:
    """A ``run`` folder at ``out`` with at least ``instances`` rows, copies of ``shards`` spread
    over new videos or new people (module docstring). Returns ``out``."""
    if spread not in ("videos", "people"):
        raise ValueError(f"spread must be 'videos' or 'people', got {spread!r}")
    source = _source_table(shards)
    copies = -(-instances // source.num_rows)
    out.mkdir(parents=True, exist_ok=True)
    info = read_dataset_info(str(shards))
    per_shard = -(-ROWS_PER_SHARD // source.num_rows)  # copies per shard
    num_shards = -(-copies // per_shard)
    entries = []
    for shard in range(num_shards):
        chosen = range(shard * per_shard, min(copies, (shard + 1) * per_shard))
        table = pa.concat_tables(_shift(source, c, spread) for c in chosen)
        name = naming.shard_filename(naming.PREFIX_INSTANCES, shard, num_shards, "parquet")
        pq.write_table(table, out / name, row_group_size=1024, write_page_checksum=True)
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
        entries.append({"file": name, "kind": "instances", "rows": table.num_rows,
                        "bytes": (out / name).stat().st_size, "sha256": digest,
                        "num_shards": num_shards, "shard_index": shard})  # fmt: skip
    doc = json.loads(annotations.read_text())
    images = [
        {**im, "id": im["id"] + c * ID_STRIDE, "vid_id": int(im["vid_id"]) + c * VIDEO_STRIDE}
        for c in range(copies if spread == "videos" else 1)
        for im in doc["images"]
    ]
    listed = out / "annotations.json"
    listed.write_text(json.dumps({"images": images, "annotations": [], "categories":
                                  doc["categories"]}))  # fmt: skip
    info["files"] = entries
    info["totals"] = {"instances": copies * source.num_rows, "dense": 0, "rejects": 0}
    info["config"] = {**info["config"], "annotations": str(listed), "posetrack": []}
    (out / "dataset_info.json").write_text(json.dumps(info, indent=1))
    return out


def measure(folder: Path, out_json: Path) -> dict[str, Any]:
    """Export ``folder`` in a fresh process: wall s, peak RSS MiB, rows, output MB."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dptrack_pipeline.perf.export", str(folder), str(out_json)],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"export of {folder} failed ({process.returncode})")
    counts = json.loads(output)
    return {
        "frames": counts["images_written"],
        "instances": counts["rows_exported"],
        "rows_in": counts["rows_in"],
        "s": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024.0,
        "out_mb": out_json.stat().st_size / 1e6,
    }


def slope_mib_per_10k(results: list[dict[str, Any]]) -> float:
    """Growth of peak memory from the first to the last result, MiB per 10k instances."""
    first, last = results[0], results[-1]
    return (last["peak_rss_mib"] - first["peak_rss_mib"]) / max(
        1, (last["instances"] - first["instances"]) / 10_000
    )


def report_table(results: list[dict[str, Any]]) -> str:
    """One row per spread and size, then per spread the slope of peak memory."""
    rows = [
        [r.get("spread", "videos"), f"{r['instances']:,}", f"{r.get('frames', 0):,}",
         f"{r['s']:.1f}", f"{r['instances'] / r['s']:,.0f}", f"{r['peak_rss_mib']:.0f}",
         f"{r['out_mb']:.0f}"]
        for r in results
    ]  # fmt: skip
    header = ["spread", "instances", "frames listed", "export s", "instances/s",
              "peak RSS MiB", "JSON MB"]  # fmt: skip
    lines = [markdown_table(header, rows), ""]
    for spread in dict.fromkeys(r.get("spread", "videos") for r in results):
        group = [r for r in results if r.get("spread", "videos") == spread]
        lines.append(
            f"{spread}: peak memory grows {slope_mib_per_10k(group):.2f} MiB per 10k instances"
        )
    return "\n".join(lines)


def _child(folder: str, out: str) -> None:
    from dptrack_pipeline.export.build import export_folder
    from dptrack_pipeline.export.config import ExportConfig

    result = export_folder(ExportConfig(shards=folder, out=out))
    print(json.dumps(result.counts.__dict__))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
