"""Pictures of a ``pairs`` folder (``dptrack-build inspect --render``): do crops and flow agree?

One PNG per pair: crop A | crop B | crop B warped back onto A by the stored flow (dimmed where the
flow is not valid) | the flow (:func:`~dptrack_pipeline.pictures.flow_picture`). Where the flow is
right, the third panel looks like the first.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from dptrack_pipeline.pictures import flow_picture, spread_over_offsets, write_png
from dptrack_pipeline.shards import DenseReader


def render_pairs(out: str, rows: list[dict[str, Any]], render_dir: str, max_render: int) -> int:
    """Draw up to ``max_render`` pairs of the folder ``out`` (a spread over offsets) into
    ``render_dir``; returns the number of pictures written."""
    chosen = spread_over_offsets(
        rows, lambda r: (abs(r["offset"]), r["video_id"], r["frame_a"]), max_render
    )
    with DenseReader(out) as dense:
        for r in chosen:
            p = pair_pictures(dense, r)
            name = f"{r['video_id']}_{r['frame_a']:06d}_p{r['person']}_off{r['offset']:+d}.png"
            picture = np.concatenate([p["a"], p["b"], p["warped"], p["flow"]], axis=1)
            write_png(os.path.join(render_dir, name), picture)
    return len(chosen)


def pair_pictures(dense: DenseReader, row: dict[str, Any]) -> dict[str, np.ndarray]:
    """One ``pairs`` row's pictures, ``(S, S, 3)`` uint8 RGB each: ``a`` and ``b`` (the crops),
    ``warped`` (crop B sampled at ``p + flow(p)``, dimmed where the flow is not valid) and
    ``flow`` (the flow's colours, grey where not valid)."""
    crop_a = dense.crop(row["dense_file"], row["crop_a_index"])
    crop_b = dense.crop(row["dense_file"], row["crop_b_index"])
    flow, valid = dense.flow(row["dense_file"], row["flow_index"])
    size = flow.shape[0]
    grid = np.mgrid[0:size, 0:size][::-1].transpose(1, 2, 0).astype(np.float32) + flow
    warped = cv2.remap(crop_b, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR)
    warped[~valid] = warped[~valid] // 3  # dim where the flow is not valid
    return {"a": crop_a, "b": crop_b, "warped": warped, "flow": flow_picture(flow, valid)}
