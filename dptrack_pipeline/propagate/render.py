"""Pictures of a ``run`` folder (``dptrack-build inspect --render``): see what propagation did.

For a propagated instance :func:`render_instances` writes one PNG with, side by side, the source
frame with the annotated points and part mask, and the target frame with the propagated points and
warped mask (points coloured by their ``U`` value, as in the paper's figure 3). For the same
instance it writes the crop pair and the crop flow
(:func:`~dptrack_pipeline.pictures.flow_picture`), with pixels that failed the forward-backward
check in grey.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from dptrack_pipeline.formats.rle import decode_part_masks
from dptrack_pipeline.frames import FrameDecodeError, decode_frames, resolve_frame
from dptrack_pipeline.pictures import flow_picture, side_by_side, spread_over_offsets, write_png
from dptrack_pipeline.shards import DenseReader
from dptrack_pipeline.structures import DP_GRID, dp_to_pixels

_PART_COLOURS = cv2.applyColorMap(
    np.linspace(0, 255, 15).astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_HSV
).reshape(-1, 3)[:, ::-1]


def overlay_instance(image: np.ndarray, row: dict[str, Any], alpha: float = 0.45) -> np.ndarray:
    """Draw one instance row (instances.v1) on its ``(H, W, 3)`` uint8 RGB frame."""
    out = image.copy()
    x0, y0, w, h = row["bbox"]
    if row.get("dp_masks"):
        labels = decode_part_masks(
            [{"size": [DP_GRID, DP_GRID], "counts": c} for c in row["dp_masks"]]
        )
        # Paint each grid cell's part colour over the box region of the frame.
        xi0, yi0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        xi1 = min(int(np.ceil(x0 + w)), image.shape[1])
        yi1 = min(int(np.ceil(y0 + h)), image.shape[0])
        if xi1 > xi0 and yi1 > yi0:
            cols = ((np.arange(xi0, xi1) - x0) / w * DP_GRID).astype(int).clip(0, DP_GRID - 1)
            rws = ((np.arange(yi0, yi1) - y0) / h * DP_GRID).astype(int).clip(0, DP_GRID - 1)
            lab = labels[np.ix_(rws, cols)]
            region = out[yi0:yi1, xi0:xi1].astype(np.float32)
            colour = _PART_COLOURS[lab].astype(np.float32)
            m = (lab > 0)[..., None]
            out[yi0:yi1, xi0:xi1] = np.where(m, (1 - alpha) * region + alpha * colour, region)
    cv2.rectangle(out, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), (255, 255, 0), 1)
    if len(row["dp_x"]):
        pts = dp_to_pixels(np.asarray(row["dp_x"]), np.asarray(row["dp_y"]), row["bbox"])
        u = (np.asarray(row["dp_U"]) * 255).clip(0, 255).astype(np.uint8).reshape(-1, 1)
        colours = cv2.applyColorMap(u, cv2.COLORMAP_JET).reshape(-1, 3)[:, ::-1]
        for (px, py), c in zip(pts, colours, strict=True):
            cv2.circle(out, (int(round(px)), int(round(py))), 2, tuple(int(v) for v in c), -1)
    kps = np.asarray(row["keypoints"], np.float32).reshape(-1, 3)
    for x, y, v in kps:
        if v > 0:
            cv2.drawMarker(out, (int(x), int(y)), (255, 255, 255), cv2.MARKER_CROSS, 6, 1)
    return out


def render_instances(
    out: str,
    rows: list[dict[str, Any]],
    frames_root: str,
    render_dir: str,
    max_render: int,
    follow_symlinks: bool = False,
) -> int:
    """Draw up to ``max_render`` propagated instances of the folder ``out`` (a spread over
    offsets) into ``render_dir``; returns the number of pictures written (two per instance).

    Args:
        out: the ``run`` folder (its dense files hold the crops and flows).
        rows: its instance rows (``instances.v1`` dicts).
        frames_root: where the frames are (as for ``run --frames-root``).
        render_dir: output folder for the PNG files.
        max_render: how many instances to draw.
        follow_symlinks: as the run's ``--follow-symlinks`` (frames that leave ``frames_root``
            are skipped otherwise).
    """
    sources = {(r["video_id"], r["annotation_id"]): r for r in rows if r["offset"] == 0}
    chosen = spread_over_offsets(
        (r for r in rows if r["offset"] != 0),
        lambda r: (abs(r["offset"]), r["video_id"], r["annotation_id"]),
        max_render,
    )
    written, follow = 0, {"follow_symlinks": follow_symlinks}
    with DenseReader(out) as dense:
        for r in chosen:
            src = sources.get((r["video_id"], r["annotation_id"]))
            if src is None:
                continue
            images = decode_frames(
                [
                    resolve_frame(frames_root, row["image_file"], row["frame_index"], **follow)
                    for row in (src, r)
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
