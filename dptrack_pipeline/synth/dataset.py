"""Write a synthetic DensePose-PoseTrack dataset with exact truth to disk.

Layout of ``out_dir`` (all paths in ``annotations.json`` are relative to it)::

    frames/<folder>/<index:06d>.png     RGB frames, <folder> = f"{vid_id:06d}_synth"
    annotations.json                    DensePose-PoseTrack format (images, annotations, categories)
    truth/                              exact labels and flows, see truth/README.md

``annotations.json`` follows the DensePose-PoseTrack data format:

* ``images`` lists every frame: ``id == frame_id == vid_id * 10000 + index`` (PoseTrack style),
  ``vid_id`` ints from 1001, ``nframes``, ``is_labeled`` (true on the DensePose-labelled frames
  ``index % label_every == label_every // 2``), ``has_no_densepose`` false, empty ignore regions.
* ``annotations`` hold every person with at least :data:`MIN_VISIBLE_PIXELS` visible pixels in
  every frame: ``track_id``, ``bbox`` (tight box of the visible pixel centres padded by
  :data:`BOX_PAD` px and clipped to the frame), ``area`` (visible pixels), ``segmentation`` (COCO
  RLE of the visible pixels, full frame) and 17 COCO ``keypoints`` from the skeleton (``v = 2``
  seen on their own limb, ``1`` inside the frame but hidden, ``0`` outside, then ``x = y = 0``).
* On labelled frames they also hold DensePose points and part masks, taken from the exact render:
  about :data:`POINTS_PER_PERSON` points per person at visible pixel centres, stratified over the
  visible surface patches (equal shares, water-filled when a patch is small) and drawn from
  interior pixels (all four neighbours on the same patch) like annotators who click inside a
  part; ``dp_x, dp_y`` box-relative on the 256 grid, ``dp_I, dp_U, dp_V`` the exact labels there.
  ``dp_masks`` are the 14 part masks of the person's visible part map resampled (nearest) onto the
  256x256 box grid (cell ``(i, j)`` centre at pixel ``box_x + (j + 0.5) / 256 * box_w``).

Everything is a deterministic function of the arguments: the same seed gives byte-identical PNGs,
``annotations.json`` and truth files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils
from tqdm import tqdm

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART, encode_part_masks
from dptrack_pipeline.schedule import target_indices
from dptrack_pipeline.structures import DP_GRID, NUM_KEYPOINTS
from dptrack_pipeline.synth.bodies import (
    COCO_KEYPOINT_NAMES,
    COCO_SKELETON,
    PATCH_TO_LIMB,
    PersonMotion,
    keypoints_at,
)
from dptrack_pipeline.synth.render import RenderedFrame, Scene, make_scene, render_frame
from dptrack_pipeline.synth.truth import (
    TRUTH_FORMAT,
    TRUTH_VERSION,
    VISIBILITY_TOLERANCE_PX,
    exact_flow,
    flow_truth_name,
    frame_truth_name,
    save_flow_truth,
    save_frame_truth,
    write_truth_index,
)

FIRST_VIDEO_ID = 1001
FRAME_ID_STRIDE = 10000
MIN_VISIBLE_PIXELS = 20
BOX_PAD = 2.0
POINTS_PER_PERSON = 100
ANNOTATIONS_FILE = "annotations.json"

PERSON_CATEGORY = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": list(COCO_KEYPOINT_NAMES),
    "skeleton": [list(edge) for edge in COCO_SKELETON],
}


def video_folder(vid_id: int) -> str:
    """Folder name of a synthetic video under ``frames/`` and ``truth/``."""
    return f"{vid_id:06d}_synth"


def is_labelled_index(index: int, label_every: int) -> bool:
    """Whether frame ``index`` carries DensePose labels (``index % label_every ==
    label_every // 2``)."""
    return index % label_every == label_every // 2


def person_box(mask: np.ndarray, pad: float = BOX_PAD) -> tuple[float, float, float, float]:
    """Tight ``xywh`` box of the ``True`` pixel centres of ``(H, W)`` ``mask``, padded by ``pad``
    pixels on every side and clipped to ``[0, W - 1] x [0, H - 1]``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    x0 = max(float(cols[0]) - pad, 0.0)
    y0 = max(float(rows[0]) - pad, 0.0)
    x1 = min(float(cols[-1]) + pad, width - 1.0)
    y1 = min(float(rows[-1]) + pad, height - 1.0)
    return (x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0))


def keypoint_annotation(person: PersonMotion, frame: RenderedFrame, time: float) -> np.ndarray:
    """COCO keypoints ``(17, 3)`` float64 ``(x, y, v)`` of ``person`` in a rendered frame.

    ``v = 2`` when the pixel nearest the joint shows this person on a limb the joint belongs to,
    ``v = 1`` when the joint is inside the frame but hidden (the far ear always is, behind the
    head), ``v = 0`` with ``x = y = 0`` when it is outside the frame.
    """
    positions, seen_on, far_ear = keypoints_at(person, time)
    height, width = frame.part.shape
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    for k in range(NUM_KEYPOINTS):
        col, row = (int(v) for v in np.rint(positions[k]))
        if not (0 <= col < width and 0 <= row < height):
            continue
        seen = (
            k != far_ear
            and frame.person[row, col] == person.track_id
            and int(PATCH_TO_LIMB[frame.part[row, col]]) in seen_on[k]
        )
        out[k] = (positions[k, 0], positions[k, 1], 2.0 if seen else 1.0)
    return out


def sample_dp_pixels(
    mask: np.ndarray, part: np.ndarray, rng: np.random.Generator, count: int = POINTS_PER_PERSON
) -> tuple[np.ndarray, np.ndarray]:
    """Pick about ``count`` pixels of a person, stratified over its visible surface patches.

    Args:
        mask: ``(H, W)`` bool, the person's visible pixels.
        part: ``(H, W)`` uint8 surface patch map of the frame.
        rng: random generator (the only source of randomness).
        count: wanted number of points (fewer when the person has fewer usable pixels).

    Returns:
        ``rows, cols`` (N,) int64, grouped by patch (ascending) and in raster order within one.
    """
    labels = np.where(mask, part.astype(np.int64), -1)
    padded = np.pad(labels, 1, constant_values=-2)
    interior = mask.copy()
    for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
        interior &= padded[dr : dr + labels.shape[0], dc : dc + labels.shape[1]] == labels
    flat_labels = labels.ravel()
    flat_interior = interior.ravel()
    candidates = []
    for patch in np.unique(flat_labels[flat_labels > 0]):
        on_patch = flat_labels == patch
        inner = np.flatnonzero(on_patch & flat_interior)
        candidates.append(inner if inner.size >= 3 else np.flatnonzero(on_patch))
    # Water-filling: smallest patches first, each gets an equal share of what is left.
    order = sorted(range(len(candidates)), key=lambda i: (candidates[i].size, i))
    quota = [0] * len(candidates)
    left = count
    for rank, i in enumerate(order):
        quota[i] = min(candidates[i].size, left // (len(order) - rank))
        left -= quota[i]
    chosen = [
        np.sort(rng.choice(cands, size=q, replace=False))
        for cands, q in zip(candidates, quota, strict=True)
        if q > 0
    ]
    flat = np.concatenate(chosen) if chosen else np.zeros((0,), dtype=np.int64)
    return np.divmod(flat, mask.shape[1])


def part_label_grid(
    mask: np.ndarray, part: np.ndarray, box: tuple[float, float, float, float]
) -> np.ndarray:
    """The person's visible mask-part map (0..14) resampled (nearest) on the 256x256 box grid.

    Grid cell ``(i, j)`` takes the pixel nearest to its centre
    ``(box_x + (j + 0.5) / 256 * box_w, box_y + (i + 0.5) / 256 * box_h)``.
    """
    height, width = mask.shape
    x0, y0, w, h = box
    centres = (np.arange(DP_GRID, dtype=np.float64) + 0.5) / DP_GRID
    cols = np.clip(np.rint(x0 + centres * w).astype(np.int64), 0, width - 1)
    rows = np.clip(np.rint(y0 + centres * h).astype(np.int64), 0, height - 1)
    labels = np.where(mask, SURFACE_TO_MASK_PART[part], 0).astype(np.uint8)
    return labels[np.ix_(rows, cols)]


def _round_list(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


def person_annotation(
    person: PersonMotion,
    frame: RenderedFrame,
    index: int,
    *,
    labelled: bool,
    rng: np.random.Generator,
) -> dict | None:
    """One DensePose-PoseTrack annotation of ``person`` in ``frame`` (without ``id`` and
    ``image_id``), or ``None`` when fewer than :data:`MIN_VISIBLE_PIXELS` pixels show it."""
    mask = frame.person == person.track_id
    area = int(mask.sum())
    if area < MIN_VISIBLE_PIXELS:
        return None
    box = person_box(mask)
    keypoints = keypoint_annotation(person, frame, float(index))
    segmentation = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    annotation = {
        "track_id": int(person.track_id),
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [round(v, 4) for v in box],
        "area": float(area),
        "segmentation": {
            "size": [int(v) for v in segmentation["size"]],
            "counts": segmentation["counts"].decode("ascii"),
        },
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
        "keypoints": _round_list(keypoints, 3),
    }
    if labelled:
        rows, cols = sample_dp_pixels(mask, frame.part, rng)
        x0, y0, w, h = box
        annotation.update(
            {
                "dp_x": _round_list((cols - x0) / w * DP_GRID, 5),
                "dp_y": _round_list((rows - y0) / h * DP_GRID, 5),
                "dp_I": [float(v) for v in frame.part[rows, cols]],
                "dp_U": _round_list(frame.u[rows, cols], 6),
                "dp_V": _round_list(frame.v[rows, cols], 6),
                "dp_masks": list(encode_part_masks(part_label_grid(mask, frame.part, box))),
            }
        )
    return annotation


def _write_png(path: Path, image_rgb: np.ndarray) -> None:
    ok = cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not write {path}")


class _FrameWindow:
    """Rendered frames of one scene, each rendered once, keeping only the last few.

    Frames are visited in order; a labelled frame also needs its next ``max_offset`` frames for
    the exact flows, so frames older than ``index - max_offset`` are released.
    """

    def __init__(self, scene: Scene, max_offset: int) -> None:
        self.scene = scene
        self.max_offset = max_offset
        self.frames: dict[int, RenderedFrame] = {}

    def __getitem__(self, index: int) -> RenderedFrame:
        if index not in self.frames:
            self.frames[index] = render_frame(self.scene, float(index))
        return self.frames[index]

    def release_before(self, index: int) -> None:
        for old in [i for i in self.frames if i < index - self.max_offset]:
            del self.frames[old]


def _write_video(
    out: Path,
    scene: Scene,
    vid_id: int,
    *,
    seed: int,
    video_index: int,
    label_every: int,
    max_offset: int,
    first_annotation_id: int,
    bar: tqdm,
) -> tuple[list[dict], list[dict], dict]:
    """Write one video's frames and truth; return its ``images``, ``annotations`` and its
    entry of the truth index."""
    folder = video_folder(vid_id)
    truth_dir = out / "truth" / folder
    (out / "frames" / folder).mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    window = _FrameWindow(scene, max_offset)
    images: list[dict] = []
    annotations: list[dict] = []
    labelled_indices: list[int] = []
    flow_pairs: list[list[int]] = []
    for index in range(scene.frames):
        window.release_before(index)
        frame = window[index]
        labelled = is_labelled_index(index, label_every)
        frame_id = vid_id * FRAME_ID_STRIDE + index
        file_name = f"frames/{folder}/{index:06d}.png"
        _write_png(out / file_name, frame.image)
        save_frame_truth(truth_dir / frame_truth_name(index), frame)
        images.append(
            {
                "id": frame_id,
                "file_name": file_name,
                "width": scene.width,
                "height": scene.height,
                "vid_id": vid_id,
                "frame_id": frame_id,
                "nframes": scene.frames,
                "is_labeled": labelled,
                "has_no_densepose": False,
                "ignore_regions_x": [],
                "ignore_regions_y": [],
            }
        )
        for person in scene.people:
            rng = np.random.default_rng(
                np.random.SeedSequence([seed, video_index, index, person.track_id, 17])
            )
            annotation = person_annotation(person, frame, index, labelled=labelled, rng=rng)
            if annotation is not None:
                annotation_id = first_annotation_id + len(annotations)
                annotations.append({"id": annotation_id, "image_id": frame_id, **annotation})
        if labelled:
            labelled_indices.append(index)
            for target in target_indices(index, scene.frames, max_offset):
                flow, visible = exact_flow(scene, frame, index, window[target], target)
                save_flow_truth(truth_dir / flow_truth_name(index, target), flow, visible)
                flow_pairs.append([index, target])
        bar.update(1)
    entry = {
        "video_id": str(vid_id),
        "folder": folder,
        "nframes": scene.frames,
        "labelled": labelled_indices,
        "flow_pairs": flow_pairs,
    }
    return images, annotations, entry


def generate_dataset(
    out_dir: str,
    *,
    videos: int = 3,
    frames: int = 24,
    seed: int = 0,
    width: int = 320,
    height: int = 240,
    people: int = 2,
    label_every: int = 8,
    max_offset: int = 3,
    progress: bool = False,
) -> dict:
    """Render a synthetic DensePose-PoseTrack dataset with exact truth into ``out_dir``.

    Args:
        out_dir: output folder (created; files already there are overwritten).
        videos: number of videos (ids 1001, 1002, ...).
        frames: frames per video.
        seed: random seed; the output is a deterministic function of all arguments.
        width, height: frame size in pixels.
        people: people per video.
        label_every: one frame in ``label_every`` carries DensePose labels (``index %
            label_every == label_every // 2``).
        max_offset: exact flows are written from every labelled frame ``T`` to ``T ± 1..K``.
        progress: show a tqdm progress bar.

    Returns:
        Summary: ``out_dir``, ``annotations`` (path of annotations.json), ``frames_dir``,
        ``truth_dir``, ``video_ids``, and counts ``num_videos``, ``num_frames``,
        ``num_labelled_frames``, ``num_annotations``, ``num_densepose_annotations``,
        ``num_dp_points``, ``num_flows``.

    Raises:
        ValueError: on arguments out of range.
    """
    if videos < 1 or frames < 1 or people < 1 or label_every < 1 or max_offset < 0:
        raise ValueError("videos, frames, people and label_every must be >= 1, max_offset >= 0")
    if frames > FRAME_ID_STRIDE:
        raise ValueError(f"frames must be <= {FRAME_ID_STRIDE} (frame_id = vid_id * 10000 + index)")
    if width < 32 or height < 32:
        raise ValueError(f"frames must be at least 32x32, got {width}x{height}")
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    images: list[dict] = []
    annotations: list[dict] = []
    truth_videos: list[dict] = []
    with tqdm(total=videos * frames, disable=not progress, desc="synth", unit="frame") as bar:
        for video_index in range(videos):
            scene = make_scene(
                seed, video_index, width=width, height=height, frames=frames, people=people
            )
            video_images, video_annotations, entry = _write_video(
                out,
                scene,
                FIRST_VIDEO_ID + video_index,
                seed=seed,
                video_index=video_index,
                label_every=label_every,
                max_offset=max_offset,
                first_annotation_id=len(annotations) + 1,
                bar=bar,
            )
            images.extend(video_images)
            annotations.extend(video_annotations)
            truth_videos.append(entry)

    annotations_path = out / ANNOTATIONS_FILE
    document = {"images": images, "annotations": annotations, "categories": [PERSON_CATEGORY]}
    tmp = annotations_path.with_name(ANNOTATIONS_FILE + ".tmp")
    tmp.write_text(json.dumps(document, separators=(",", ":")))
    os.replace(tmp, annotations_path)
    write_truth_index(
        out / "truth",
        {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "width": width,
            "height": height,
            "seed": seed,
            "people": people,
            "label_every": label_every,
            "max_offset": max_offset,
            "visibility_tolerance_px": VISIBILITY_TOLERANCE_PX,
            "videos": truth_videos,
        },
    )
    with_dp = [ann for ann in annotations if "dp_x" in ann]
    return {
        "out_dir": str(out),
        "annotations": str(annotations_path),
        "frames_dir": str(out / "frames"),
        "truth_dir": str(out / "truth"),
        "video_ids": [FIRST_VIDEO_ID + v for v in range(videos)],
        "num_videos": videos,
        "num_frames": len(images),
        "num_labelled_frames": sum(len(entry["labelled"]) for entry in truth_videos),
        "num_annotations": len(annotations),
        "num_densepose_annotations": len(with_dp),
        "num_dp_points": sum(len(ann["dp_x"]) for ann in with_dp),
        "num_flows": sum(len(entry["flow_pairs"]) for entry in truth_videos),
    }
