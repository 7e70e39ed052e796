"""Exact optical flow and visibility between synthetic frames; the truth files and their readers.

**Exact flow.** A body pixel of frame ``T`` shows the surface point ``(person, I, U, V)`` (read
from the rendered labels). The same point is mapped through the same analytic body model at time
``T + k`` (:func:`dptrack_pipeline.synth.charts.chart_to_local`, then the limb's affine at
``T + k``), giving its exact position ``q``; the flow is ``q - p``. A background pixel moves with
the background plane: flow ``offset(T + k) - offset(T)``. Flow is defined for every pixel,
including points that are hidden or outside the image at ``T + k``.

**Visibility** (z-test at the destination). The point of pixel ``p`` is visible in ``T + k`` when

1. ``q`` lies inside the image (its nearest pixel centre ``round(q)`` is a pixel of the frame),
2. that nearest pixel of ``T + k`` shows the same person and the same limb (the 14 DensePose mask
   parts; the two patches of a limb are one continuous surface) -- or the background for a
   background point; anything nearer in the z-buffer (another person, another limb) fails this,
3. for body points, the surface point rendered at that pixel lies within
   :data:`VISIBILITY_TOLERANCE_PX` (1 px, measured in frame ``T + k`` pixels through the limb's
   affine) of ``q`` on the same surface, i.e. ``(U, V)`` are nearly the same. A flat limb drawn
   once satisfies this whenever 2. holds (the nearest pixel centre is at most 0.71 px away); the
   test guards against a chart or renderer inconsistency rather than deciding cases.

Points near a silhouette whose nearest destination pixel centre falls just off their limb are
therefore called hidden (a conservative half-pixel band).

**Files** (see :func:`truth_readme`, written as ``truth/README.md``): numpy ``.npz`` archives
written with a fixed zip timestamp, so the same scene gives the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.structures import normalise_video_id
from dptrack_pipeline.synth.charts import apply_affine, chart_to_local
from dptrack_pipeline.synth.limbs import LIMBS, PATCH_SLOT, PATCH_TO_LIMB
from dptrack_pipeline.synth.motion import limb_affines
from dptrack_pipeline.synth.render import BACKGROUND_DEPTH, RenderedFrame, Scene

VISIBILITY_TOLERANCE_PX = 1.0
"""Largest distance (frame pixels) between a tracked surface point and the surface point rendered
at its nearest destination pixel for the point to count as visible."""

TRUTH_FORMAT = "dptrack-synth-truth"
TRUTH_VERSION = 1
INDEX_FILE = "index.json"
README_FILE = "README.md"


def _pixel_grid(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)


def exact_flow(
    scene: Scene,
    source: RenderedFrame,
    source_time: float,
    target: RenderedFrame,
    target_time: float,
    tolerance_px: float = VISIBILITY_TOLERANCE_PX,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow ``source -> target`` for every pixel of ``source``, and its visibility.

    Args:
        scene: the scene both frames were rendered from.
        source, target: :func:`~dptrack_pipeline.synth.render.render_frame` at the two times.
        source_time, target_time: their times (frame indices).
        tolerance_px: see :data:`VISIBILITY_TOLERANCE_PX`.

    Returns:
        ``flow`` ``(H, W, 2)`` float32 (channel 0 = x, pixels, from pixel centre ``(c, r)`` of
        ``source``) and ``visible`` ``(H, W)`` bool, as described in the module docstring.
    """
    height, width = scene.height, scene.width
    for name, frame in (("source", source), ("target", target)):
        if frame.part.shape != (height, width):
            raise ValueError(
                f"{name} frame is {frame.part.shape}, expected the scene's {(height, width)}"
            )
    pixels = _pixel_grid(height, width)
    person = source.person.ravel().astype(np.int64)
    part = source.part.ravel().astype(np.int64)
    limb = PATCH_TO_LIMB[part]
    destination = pixels + (
        scene.background_motion.offset(target_time) - scene.background_motion.offset(source_time)
    )
    body = np.flatnonzero(person >= 0)
    groups = person[body] * 16 + limb[body]
    target_affines = {p.track_id: limb_affines(p, target_time) for p in scene.people}
    by_id = {p.track_id: p for p in scene.people}
    local = np.zeros((pixels.shape[0], 2), dtype=np.float64)
    for key in np.unique(groups):
        idx = body[groups == key]
        track, mask_part = divmod(int(key), 16)
        s, t = _limb_local(
            by_id[track], mask_part, part[idx], source.u.ravel()[idx], source.v.ravel()[idx]
        )
        local[idx, 0], local[idx, 1] = s, t
        destination[idx] = apply_affine(target_affines[track][mask_part], s, t)

    nearest = np.rint(destination).astype(np.int64)
    inside = (
        (nearest[:, 0] >= 0)
        & (nearest[:, 0] < width)
        & (nearest[:, 1] >= 0)
        & (nearest[:, 1] < height)
    )
    visible = np.zeros(pixels.shape[0], dtype=bool)
    cand = np.flatnonzero(inside)
    rows, cols = nearest[cand, 1], nearest[cand, 0]
    target_person = target.person[rows, cols].astype(np.int64)
    target_part = target.part[rows, cols].astype(np.int64)
    same = (target_person == person[cand]) & (PATCH_TO_LIMB[target_part] == limb[cand])
    visible[cand[same & (person[cand] < 0)]] = True

    body_same = same & (person[cand] >= 0)
    idx_all = cand[body_same]
    if idx_all.size:
        r_all, c_all = rows[body_same], cols[body_same]
        t_part = target_part[body_same]
        keys = person[idx_all] * 16 + limb[idx_all]
        for key in np.unique(keys):
            sel = keys == key
            idx = idx_all[sel]
            track, mask_part = divmod(int(key), 16)
            s2, t2 = _limb_local(
                by_id[track],
                mask_part,
                t_part[sel],
                target.u[r_all[sel], c_all[sel]],
                target.v[r_all[sel], c_all[sel]],
            )
            linear = target_affines[track][mask_part][:, :2]
            delta = np.stack([s2 - local[idx, 0], t2 - local[idx, 1]], axis=0)
            distance = np.hypot(*(linear @ delta))
            visible[idx[distance <= tolerance_px]] = True

    flow = (destination - pixels).astype(np.float32).reshape(height, width, 2)
    return flow, visible.reshape(height, width)


def _limb_local(
    person: object, mask_part: int, patches: np.ndarray, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Limb-local coordinates of surface points ``(patch, u, v)`` on limb ``mask_part`` (1..14)
    of ``person``."""
    spec = LIMBS[mask_part - 1]
    return chart_to_local(person.geometry(spec.kind), len(spec.patches), PATCH_SLOT[patches], u, v)


def chart_positions(scene: Scene, frame: RenderedFrame, time: float) -> np.ndarray:
    """Image positions of the surface points of ``frame``'s pixels mapped through the model at
    ``time``: ``(H, W, 2)`` float64; background pixels follow the background plane.

    With ``time`` equal to the frame's own time this gives back the pixel centres (a check of
    the charts); it is :func:`exact_flow` without the visibility test.
    """
    flow, _ = exact_flow(scene, frame, time, frame, time)
    return _pixel_grid(scene.height, scene.width).reshape(scene.height, scene.width, 2) + flow


# ----------------------------------------------------------------------------------------------
# Files.


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write a compressed ``.npz`` readable by :func:`numpy.load`, byte-identical for equal input.

    :func:`numpy.savez_compressed` stamps every member with the current time; here each member
    gets the fixed zip date 1980-01-01. The file is written under a temporary name and renamed.
    """
    path = Path(path)
    with atomic_write(str(path)) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=1)


def frame_truth_name(index: int) -> str:
    return f"frame_{index:06d}.npz"


def flow_truth_name(source_index: int, target_index: int) -> str:
    return f"flow_{source_index:06d}_{target_index:06d}.npz"


def save_frame_truth(path: str | os.PathLike, frame: RenderedFrame) -> None:
    """Write one frame's label maps: ``I`` uint8, ``U``/``V`` float32, ``person`` int16,
    ``depth`` float32 (all ``(H, W)``)."""
    save_npz(path, I=frame.part, U=frame.u, V=frame.v, person=frame.person, depth=frame.depth)


def save_flow_truth(path: str | os.PathLike, flow: np.ndarray, visible: np.ndarray) -> None:
    """Write one exact flow: ``flow`` ``(H, W, 2)`` float32 and ``visible`` ``(H, W)`` bool."""
    save_npz(path, flow=flow.astype(np.float32), visible=visible.astype(bool))


def truth_readme(index: dict) -> str:
    """Text of ``truth/README.md`` for a truth ``index`` (as written to ``index.json``)."""
    videos = index["videos"]
    example = videos[0] if videos else {"folder": "<video>", "labelled": [4]}
    labelled = example["labelled"][0] if example["labelled"] else 4
    lines = [
        "# Exact truth of a synthetic DensePose-Track set",
        "",
        "Written by `dptrack_pipeline.synth` (format "
        f"`{TRUTH_FORMAT}` version {TRUTH_VERSION}); read it with "
        "`dptrack_pipeline.synth.truth.load_frame_truth` and `load_flow_truth`.",
        "",
        f"Frames are {index['width']}x{index['height']} pixels; {len(videos)} videos. Pixel "
        "centres are on integer coordinates (column `c`, row `r` is the point `(x, y) = (c, r)`).",
        "",
        "## Files",
        "",
        "- `index.json`: format, version, frame size, the visibility tolerance and, per video, "
        "`video_id`, `folder`, `nframes`, the `labelled` frame indices and the `flow_pairs` "
        "`[source_index, target_index]` that have an exact flow.",
        f"- `<folder>/frame_<index:06d>.npz` (e.g. `{example['folder']}/{frame_truth_name(0)}`),"
        " one per frame, every array `(H, W)`:",
        "  - `I` uint8: DensePose surface patch 1..24 seen at the pixel, 0 = background;",
        "  - `U`, `V` float32: the patch's chart coordinates in [0, 1] (0 on the background);",
        "  - `person` int16: `track_id` of the person seen, -1 = background;",
        f"  - `depth` float32: depth of the surface seen, smaller = nearer; {BACKGROUND_DEPTH:g} "
        "on the background.",
        "- `<folder>/flow_<source:06d>_<target:06d>.npz` (e.g. "
        f"`{example['folder']}/{flow_truth_name(labelled, labelled + 1)}`), for every "
        "DensePose-labelled frame `T` and every `T+k`, `1 <= |k| <= max_offset`, inside the video:",
        "  - `flow` float32 `(H, W, 2)`, channel 0 = x: exact displacement in pixels of the "
        "surface point at each pixel centre of frame `T` to its position in frame `T+k`, "
        "defined for every pixel (also where the point is hidden or leaves the image);",
        "  - `visible` bool `(H, W)`: the point is inside frame `T+k` and not occluded there.",
        "",
        "## How the truth is made",
        "",
        "Bodies are flat limbs on an analytic kinematic tree; each limb has a chart `(U, V)`. The "
        "flow of a body pixel maps its `(person, I, U, V)` through the same body model at time "
        "`T+k`; a background pixel moves with the background plane (a pure translation). A point "
        "is `visible` when its destination's nearest pixel centre is inside the image and shows "
        "the same person and the same limb (both patches of a limb count as one surface; for "
        "background points: the background), with the surface point rendered there within "
        f"{index['visibility_tolerance_px']:g} px of the destination. Points whose destination "
        "lies within half a pixel outside their own silhouette therefore count as hidden.",
        "",
        "To look a point `(x, y)` up, use the nearest pixel `(round(x), round(y))`: the flow is "
        "exact at pixel centres and jumps across silhouettes, where interpolation would mix "
        "different surfaces.",
        "",
    ]
    return "\n".join(lines)


def write_truth_index(truth_dir: str | os.PathLike, index: dict) -> None:
    """Write ``index.json`` and the generated ``README.md`` into ``truth_dir``."""
    truth_dir = Path(truth_dir)
    (truth_dir / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")
    (truth_dir / README_FILE).write_text(truth_readme(index))


def load_truth_index(synth_dir: str | os.PathLike) -> dict:
    """Read ``<synth_dir>/truth/index.json``.

    Raises:
        FileNotFoundError: when there is no truth index.
        ValueError: when the file is not a dptrack synthetic truth index of a known version.
    """
    path = Path(synth_dir) / "truth" / INDEX_FILE
    index = json.loads(path.read_text())
    if index.get("format") != TRUTH_FORMAT or index.get("version") != TRUTH_VERSION:
        raise ValueError(
            f"{path} is not a {TRUTH_FORMAT} v{TRUTH_VERSION} index "
            f"(format={index.get('format')!r}, version={index.get('version')!r})"
        )
    return index


def _video_entry(synth_dir: str | os.PathLike, video_id: object) -> dict:
    wanted = normalise_video_id(video_id)
    for video in load_truth_index(synth_dir)["videos"]:
        if video["video_id"] == wanted:
            return video
    raise KeyError(f"video {wanted!r} is not in the truth of {synth_dir}")


def load_frame_truth(synth_dir: str | os.PathLike, video_id: object, index: int) -> dict:
    """Label maps of one synthetic frame.

    Args:
        synth_dir: the dataset folder (holding ``truth/``).
        video_id: video id (int or str, e.g. ``1001`` or ``"1001"``).
        index: 0-based frame index in the video.

    Returns:
        ``{"I": uint8, "U": float32, "V": float32, "person": int16, "depth": float32}``, each
        ``(H, W)`` (see ``truth/README.md``).

    Raises:
        KeyError: unknown video. FileNotFoundError: no such frame.
    """
    video = _video_entry(synth_dir, video_id)
    path = Path(synth_dir) / "truth" / video["folder"] / frame_truth_name(int(index))
    with np.load(path) as data:
        return {name: data[name] for name in ("I", "U", "V", "person", "depth")}


def load_flow_truth(
    synth_dir: str | os.PathLike, video_id: object, src_index: int, dst_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow from frame ``src_index`` to ``dst_index`` of a video, and its visibility.

    Returns:
        ``flow`` ``(H, W, 2)`` float32 (channel 0 = x) and ``visible`` ``(H, W)`` bool.

    Raises:
        KeyError: unknown video. FileNotFoundError: the truth has no flow for this pair (only
        labelled frames ``T`` to ``T+k``, ``1 <= |k| <= max_offset``, are stored).
    """
    video = _video_entry(synth_dir, video_id)
    pair = [int(src_index), int(dst_index)]
    if pair not in video["flow_pairs"]:
        raise FileNotFoundError(
            f"no exact flow {pair[0]} -> {pair[1]} for video {video['video_id']} in {synth_dir}"
        )
    path = Path(synth_dir) / "truth" / video["folder"] / flow_truth_name(*pair)
    with np.load(path) as data:
        return data["flow"], data["visible"]
