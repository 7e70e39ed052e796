"""The baseline the shard reader is measured against: the same samples from JPEG frames + JSON.

**The format.** :func:`export_jpeg_json` writes the frames the instance rows of a ``run``
folder live on as JPEG (``cv2.imwrite``, quality 95, full 1280x720 frames under ``frames/``)
and the rows themselves (read with :func:`dptrack_pipeline.shards.read_instances`) as one JSON
file: per row the image path, ``bbox``, ``crop_box``, ``dp_x/dp_y/dp_I/dp_U/dp_V``, the
``dp_masks`` counts, ``offset`` and provenance, its place in the shards (``shard``, ``row``) and
its ``source``: the image and crop box of the annotated row it was propagated from in the same
shard (``None`` for annotated rows, or when that row is not in the shard, as
:class:`~dptrack_pipeline.train.dataset.ShardDataset` has no partner image then either).

**The loader.** :class:`JpegJsonDataset` (map-style) decodes the row's JPEG, crops ``crop_box``
to 256 px with :func:`dptrack_pipeline.crops.crop_image` (as the pipeline does), computes
the crop-pixel points and the part mask with the training package's own functions and, for
propagated rows, decodes the source frame's JPEG and crops the source crop (the partner image).
It **cannot produce the stored crop flows** (a JPEG + JSON loader would have to recompute them:
a forward and a backward 720p flow per propagated sample): it returns zero flows marked
invalid, so the comparison favours the baseline. It returns the keys and dtypes of
``ShardDataset`` samples, so the same ``collate`` batches both. Masks are decoded with the
validating :func:`~dptrack_pipeline.formats.rle.decode_part_masks`, as a loader of
DensePose JSON would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dptrack_pipeline.crops import crop_image
from dptrack_pipeline.formats.rle import decode_part_masks
from dptrack_pipeline.frames import iter_video_frames
from dptrack_pipeline.perf.annotations import video_frame
from dptrack_pipeline.perf.images import read_rgb
from dptrack_pipeline.shards import read_instances
from dptrack_pipeline.structures import DP_GRID
from dptrack_pipeline.train.crop_labels import dp_to_crop, mask_on_crop
from dptrack_pipeline.train.shard_index import COLUMNS, list_shard_files

JPEG_QUALITY = 95
INDEX_FILE = "instances.json"
FRAMES_DIR = "frames"

_IN_THE_SHARDS_ONLY = ("estimator", "dense_file", "crop_index", "flow_index")
LABEL_COLUMNS = tuple(c for c in COLUMNS if c not in _IN_THE_SHARDS_ONLY)
"""The columns of a training sample that the JSON carries: provenance, boxes, labels."""
META_KEYS = LABEL_COLUMNS[: LABEL_COLUMNS.index("bbox")]
"""The provenance columns copied into a sample's ``meta`` (those before the boxes)."""


def _frame_path(image_file: str) -> str:
    """The JPEG (relative to the export folder) of the frame an instance row lives on."""
    return f"{FRAMES_DIR}/{video_frame(image_file):06d}.jpg"


def _write_frames(video: Path, needed: list[int], out: Path) -> None:
    """The frames ``needed`` (sorted) of ``video`` as JPEGs under ``out/frames``."""
    (out / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    wanted = set(needed)
    for index, rgb in iter_video_frames(str(video), 0, needed[-1] + 1):
        if index in wanted:
            path = out / FRAMES_DIR / f"{index:06d}.jpg"
            if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
                raise RuntimeError(f"cannot write {path}")


def export_jpeg_json(shards: Path, video: Path, out: Path, crop_size: int) -> Path:
    """Write the frames of every instance row of ``shards`` as JPEG and the rows as one JSON
    file (the format of the module docstring), in ``out``; ``crop_size`` is the shards' crop
    side in pixels (what the loader crops to).

    Returns:
        The JSON path.
    """
    table = read_instances(str(shards), columns=[*LABEL_COLUMNS, "image_file"])
    rows = table.to_pylist()
    files = list_shard_files([str(shards)])
    if sum(f.num_rows for f in files) != len(rows):
        raise RuntimeError("shard row counts do not add up to read_instances' rows")
    places = [(f.name, r) for f in files for r in range(f.num_rows)]
    _write_frames(video, sorted({video_frame(r["image_file"]) for r in rows}), out)
    sources = {
        (shard, r["annotation_id"]): r
        for (shard, _), r in zip(places, rows, strict=True)
        if r["offset"] == 0
    }
    entries = []
    for (shard, row), r in zip(places, rows, strict=True):
        entry = {key: r[key] for key in LABEL_COLUMNS}
        entry["image"] = _frame_path(r["image_file"])
        entry["shard"], entry["row"] = shard, row
        source = sources.get((shard, r["annotation_id"])) if r["offset"] != 0 else None
        entry["source"] = (
            None
            if source is None
            else {"image": _frame_path(source["image_file"]), "crop_box": source["crop_box"]}
        )
        entries.append(entry)
    path = out / INDEX_FILE
    path.write_text(json.dumps({"crop_size": crop_size, "instances": entries}))
    return path


def _chw(image: np.ndarray) -> torch.Tensor:
    """``(S, S, 3)`` -> ``(3, S, S)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class JpegJsonDataset(Dataset):
    """The JPEG + JSON loader: samples with :class:`ShardDataset`'s keys, from frames and labels.

    Args:
        index: the JSON written by :func:`export_jpeg_json` (image paths relative to its folder).
        with_flow_source: decode the source frame of propagated rows and crop the partner image.

    A sample holds ``image`` ``(3, S, S)`` uint8, ``points`` ``(P, 2)`` float32 crop pixels,
    ``point_I`` ``(P,)`` int64, ``point_U``/``point_V`` float32, ``part_mask`` ``(S, S)`` int64
    (``-1`` without masks), ``has_flow`` (propagated row with its source) and then
    ``flow_source_image`` ``(3, S, S)`` uint8 and ``flow`` ``(S, S, 2)`` float32 **zeros** with
    ``flow_valid`` all ``False``: the stored crop flows do not exist in this format.
    """

    def __init__(self, index: Path | str, *, with_flow_source: bool = True) -> None:
        index = Path(index)
        data = json.loads(index.read_text())
        self.root = str(index.parent)
        self.crop_size = int(data["crop_size"])
        self.entries: list[dict[str, Any]] = data["instances"]
        self.with_flow_source = with_flow_source

    def __len__(self) -> int:
        return len(self.entries)

    def _crop(self, image: str, crop_box: list[float]) -> torch.Tensor:
        """The ``(3, S, S)`` crop ``crop_box`` of the JPEG ``image`` (relative to the index)."""
        frame = read_rgb(os.path.join(self.root, image))
        return _chw(crop_image(frame, crop_box, self.crop_size))

    def __getitem__(self, i: int) -> dict[str, Any]:
        entry, size = self.entries[i], self.crop_size
        bbox, crop_box = entry["bbox"], entry["crop_box"]
        points = dp_to_crop(entry["dp_x"], entry["dp_y"], bbox, crop_box, size)
        sample: dict[str, Any] = {
            "image": self._crop(entry["image"], crop_box),
            "points": torch.from_numpy(points),
            "point_I": torch.as_tensor(np.asarray(entry["dp_I"], dtype=np.int64)),
            "point_U": torch.as_tensor(np.asarray(entry["dp_U"], dtype=np.float32)),
            "point_V": torch.as_tensor(np.asarray(entry["dp_V"], dtype=np.float32)),
        }
        masks = entry["dp_masks"]
        if masks:
            rles = [{"size": [DP_GRID, DP_GRID], "counts": c} if c else None for c in masks]
            labels = decode_part_masks(rles)
            sample["part_mask"] = torch.from_numpy(mask_on_crop(labels, bbox, crop_box, size))
        else:
            sample["part_mask"] = torch.full((size, size), -1, dtype=torch.int64)
        source = entry["source"]
        sample["has_flow"] = source is not None
        if source is not None:
            sample["flow"] = torch.zeros(size, size, 2)
            sample["flow_valid"] = torch.zeros(size, size, dtype=torch.bool)
            if self.with_flow_source:
                sample["flow_source_image"] = self._crop(source["image"], source["crop_box"])
        sample["meta"] = {key: entry[key] for key in META_KEYS}
        sample["meta"].update(
            estimator="", folder=self.root, shard=entry["shard"], row=entry["row"]
        )
        return sample
