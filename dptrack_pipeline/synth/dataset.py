"""Write a synthetic DensePose-PoseTrack dataset with exact truth to disk.

Layout of ``out_dir`` (all paths in ``annotations.json`` are relative to it)::

    frames/<folder>/<index:06d>.png     RGB frames, <folder> = f"{vid_id:06d}_synth"
    annotations.json                    DensePose-PoseTrack format (images, annotations, categories)
    truth/                              exact labels and flows, see truth/README.md

``annotations.json`` follows the DensePose-PoseTrack data format:

* ``images`` lists every frame: ``id == frame_id == vid_id * 10000 + index`` (PoseTrack style),
  ``vid_id`` ints from 1001, ``nframes``, ``is_labeled`` (true on the DensePose-labelled frames
  ``index % label_every == label_every // 2``), ``has_no_densepose`` false, empty ignore regions.
* ``annotations`` hold every person visible enough in every frame, with boxes, masks and
  keypoints and, on labelled frames, DensePose points and part masks taken from the exact render
  (rules in :mod:`dptrack_pipeline.synth.annotate`). Ids count from 1 over the whole file.

Everything is a deterministic function of the arguments: the same seed gives byte-identical PNGs,
``annotations.json`` and truth files. The point sampling of each person in each frame draws from
its own generator, seeded by ``(seed, video, frame, track)``, so it does not depend on the order
in which people or videos are written. Frames are rendered once each and kept only while a flow
from a labelled frame still needs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dptrack_pipeline.schedule import target_indices
from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.structures import PERSON_CATEGORY
from dptrack_pipeline.synth.annotate import person_annotation
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
ANNOTATIONS_FILE = "annotations.json"


def video_folder(vid_id: int) -> str:
    """Folder name of a synthetic video under ``frames/`` and ``truth/``."""
    return f"{vid_id:06d}_synth"


def is_labelled_index(index: int, label_every: int) -> bool:
    """Whether frame ``index`` carries DensePose labels (``index % label_every ==
    label_every // 2``)."""
    return index % label_every == label_every // 2


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
    with atomic_write(str(annotations_path)) as tmp:
        Path(tmp).write_text(json.dumps(document, separators=(",", ":")))
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
