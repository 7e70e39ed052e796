"""People for ``pairs`` from PoseTrack18 (or DensePose-PoseTrack) annotation files.

PoseTrack18 ships one COCO-style JSON per video (``annotations/val/003418_mpii_test.json``) with
per-frame person boxes and ``track_id`` s; DensePose-PoseTrack files (and ``dptrack-build export
--format densepose-posetrack`` output) have the same images and boxes. Reading is
:func:`dptrack_pipeline.formats.posetrack18.load_posetrack18`, the reader ``run`` uses, so the same
records are valid or rejected for the same reasons, and a person without ``bbox`` gets PoseTrack's
own keypoint box (visible keypoints' extent grown by 30%). ``--people`` may be one file or a folder
of them (every ``*.json`` directly in it, natural order; the first file that has a person wins,
see :func:`~dptrack_pipeline.formats.posetrack18.load_many`).

**Mapping to pairs entries** (:func:`posetrack_people`):

* video id: the folder that holds the frame, the parent of ``file_name``
  (``images/val/003418_mpii_test/000000.jpg`` -> ``003418_mpii_test``: give ``--videos
  images/val`` and the folders line up); a ``file_name`` without a folder uses the normalised
  ``vid_id``;
* frame: the frame file ``000000.jpg`` is looked up in the video folder's listing by the
  launcher (:func:`~dptrack_pipeline.pairs.people.resolve_frames`); for a video file its number
  (the file name's digits, PoseTrack numbers frames from 0) or else the frame's position in the
  annotation file;
* person: ``track_id``, so crop B of a pair is the same person's box at ``T+k``;
* box: ``bbox`` is the tight box, so the crop is the square of side ``max(w, h) * --context``
  around its centre (:func:`~dptrack_pipeline.pairs.people.entry_from_box`).

**Rejects.** Annotations the reader sets aside keep their validation code in the detail and get a
people reason: no usable box (``bbox_*``, a missing ``bbox`` without visible keypoints) ->
``people_no_box``; an ``image_id`` that names no image -> ``people_unknown_image``; ids or files
that clash (``duplicate_image_id``, ``image_in_two_videos``) or one video's frames spread over
several folders -> ``people_inconsistent``; a second annotation id -> ``people_duplicate``;
anything else -> ``people_bad_value``. Files that are not COCO-style JSON raise ``ValueError``.
"""

from __future__ import annotations

import os
from collections import defaultdict

from dptrack_pipeline.formats.annotation_set import AnnotationSet
from dptrack_pipeline.formats.posetrack18 import load_many, load_posetrack18
from dptrack_pipeline.frames import natural_key
from dptrack_pipeline.pairs.people import PeopleProblem, PersonEntry, entry_from_box
from dptrack_pipeline.rejects import (
    PEOPLE_BAD_VALUE,
    PEOPLE_DUPLICATE,
    PEOPLE_INCONSISTENT,
    PEOPLE_NO_BOX,
    PEOPLE_UNKNOWN_IMAGE,
)
from dptrack_pipeline.structures import FrameRef, Reject

_REASONS = {
    "bbox_invalid": PEOPLE_NO_BOX,
    "bbox_outside_image": PEOPLE_NO_BOX,
    "unknown_image": PEOPLE_UNKNOWN_IMAGE,
    "duplicate_image_id": PEOPLE_INCONSISTENT,
    "image_in_two_videos": PEOPLE_INCONSISTENT,
    "duplicate_annotation_id": PEOPLE_DUPLICATE,
}
"""People reason of each validation code (others: ``people_bad_value``)."""


def posetrack_files(path: str) -> list[str]:
    """``path`` itself, or the ``*.json`` files directly in the folder ``path`` (natural order).

    Raises:
        ValueError: the path does not exist, or the folder holds no ``.json`` file.
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise ValueError(f"people file not found: {path}")
    names = sorted((n for n in os.listdir(path) if n.lower().endswith(".json")), key=natural_key)
    if not names:
        raise ValueError(f"{path}: a PoseTrack18 people folder must hold .json files; none found")
    return [os.path.join(path, n) for n in names]


def load_posetrack_people(path: str) -> tuple[list[PersonEntry], list[PeopleProblem]]:
    """Read a PoseTrack18 / DensePose-PoseTrack file or folder of files (module docstring).

    Raises:
        ValueError: a path that does not exist or a file that is not COCO-style JSON.
    """
    files = posetrack_files(path)
    annotations = load_posetrack18(files[0]) if len(files) == 1 else load_many(files)
    return posetrack_people(annotations, path)


def _frame_number(frame: FrameRef) -> int:
    stem = os.path.splitext(os.path.basename(frame.image_file))[0]
    return int(stem) if stem.isdigit() else frame.index


def _folder(frame: FrameRef) -> str:
    parent = os.path.basename(os.path.dirname(frame.image_file.replace("\\", "/")))
    return parent or frame.video_id


def posetrack_people(
    annotations: AnnotationSet, label: str
) -> tuple[list[PersonEntry], list[PeopleProblem]]:
    """Pairs entries of every person of ``annotations``, and problems for its rejects.

    ``label`` names the source in problem details. Entries are in annotation order.
    """
    frames: dict[tuple[str, int], FrameRef] = {}
    folders: dict[str, set[str]] = defaultdict(set)
    for video in annotations.videos.values():
        for frame in video.frames:
            frames[(video.video_id, frame.frame_id)] = frame
            folders[video.video_id].add(_folder(frame))
    entries: list[PersonEntry] = []
    problems = [_problem(r, frames, label) for r in annotations.rejects]
    for number, person in enumerate(annotations.persons, start=1):
        frame = frames[(person.video_id, person.frame_id)]
        video = _folder(frame)
        if len(folders[person.video_id]) > 1:
            problems.append(
                PeopleProblem(
                    number,
                    video,
                    _frame_number(frame),
                    person.track_id,
                    PEOPLE_INCONSISTENT,
                    f"{label}: annotation {person.annotation_id}: the frames of vid_id "
                    f"{person.video_id} lie in {len(folders[person.video_id])} folders "
                    f"({', '.join(sorted(folders[person.video_id])[:3])}): which one is the video?",
                )
            )
            continue
        entries.append(
            entry_from_box(
                video,
                _frame_number(frame),
                person.bbox,
                person.track_id,
                os.path.basename(frame.image_file),
            )
        )
    return entries, problems


def _problem(reject: Reject, frames: dict[tuple[str, int], FrameRef], label: str) -> PeopleProblem:
    reason = _REASONS.get(reject.reason, PEOPLE_BAD_VALUE)
    if reject.reason == "missing_field" and "bbox" in reject.detail:
        reason = PEOPLE_NO_BOX
    frame = frames.get((reject.video_id, reject.frame_id))
    video = _folder(frame) if frame is not None else reject.video_id
    number = _frame_number(frame) if frame is not None else -1
    return PeopleProblem(
        0,
        video,
        number,
        reject.track_id,
        reason,
        f"{label}: annotation {reject.annotation_id}: {reject.reason}: {reject.detail}",
    )
