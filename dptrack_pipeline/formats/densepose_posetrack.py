"""Reader of DensePose-PoseTrack annotation files, and the :class:`AnnotationSet` they become.

A DensePose-PoseTrack file is COCO-style JSON (``images``, ``annotations``, ``categories``; see
the official ``data_format.md``): images carry ``vid_id`` (int), a global ``frame_id`` (e.g.
``10034180000``), ``nframes``, ``is_labeled`` and ``has_no_densepose``; annotations carry a person
box, 17 keypoints, a ``track_id`` and, on a few labelled frames, DensePose points (``dp_x, dp_y``
on the 256 box grid, ``dp_I, dp_U, dp_V``) and 14 part masks (``dp_masks``).

Reading rules:

* **Videos.** Valid images are grouped by :func:`~dptrack_pipeline.structures.normalise_video_id`
  of ``vid_id`` and ordered by ``(frame_id, id)``. ``FrameRef.index`` is the position in that order:
  frame ids are global ids, not positions, and files need not list frames in order.
* **Validation.** Every image and annotation is checked by
  :mod:`dptrack_pipeline.formats.validation`. An invalid annotation becomes one
  ``Reject(stage="validate")`` whose ``reason`` is its first problem's code and whose ``detail``
  joins all its problems with ``"; "``; the annotations of an invalid image are rejected with the
  image's reason. A rejected annotation is in neither ``persons`` nor ``instances``, so
  ``num_annotations == len(persons) + len(rejects)`` after loading.
* **DensePose sources.** ``persons`` holds every valid annotation (the box / keypoint lookup of
  propagation); ``instances`` those of them that carry DensePose points or at least one non-empty
  part mask. Annotations of an image with ``has_no_densepose`` true are persons with their DensePose
  fields dropped (the challenge does not consider that DensePose data). ``dp_masks`` with every
  entry empty counts as no masks (``None``); otherwise entries are normalised to
  ``{"size": [256, 256], "counts": str}`` or ``None`` for an empty part.

PoseTrack18 files (:mod:`dptrack_pipeline.formats.posetrack18`) read into the same records;
:func:`merge_posetrack18` combines the two (see there for precedence).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from dptrack_pipeline.formats.rle import is_empty_part, to_compressed_rle
from dptrack_pipeline.formats.validation import (
    BBOX_OUTSIDE_TOLERANCE,
    DP_FIELDS,
    Problem,
    is_int_value,
    validate_densepose_annotation,
    validate_image,
)
from dptrack_pipeline.structures import (
    NUM_KEYPOINTS,
    FrameRef,
    PersonInstance,
    Reject,
    Video,
    normalise_video_id,
)

PersonKey = tuple[str, int, int]
"""``(video_id, frame_id, track_id)``: one person in one frame."""

Source = str | os.PathLike | dict


@dataclass
class AnnotationSet:
    """Everything read from one or more annotation files.

    Attributes:
        videos: normalised video id -> :class:`Video` (frames ordered by ``frame_id``).
        instances: valid annotations that carry DensePose points or masks (the labels to propagate).
        persons: every valid person annotation, with or without DensePose (box / keypoint lookup);
            ``instances`` is a sub-list of it (the same objects).
        rejects: annotations set aside, with why.
        num_annotations: annotations read; equals ``len(persons) + len(rejects)``.
    """

    videos: dict[str, Video] = field(default_factory=dict)
    instances: list[PersonInstance] = field(default_factory=list)
    persons: list[PersonInstance] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    num_annotations: int = 0

    def person_index(self) -> dict[PersonKey, PersonInstance]:
        """``(video_id, frame_id, track_id)`` -> person; the first in ``persons`` wins a tie."""
        index: dict[PersonKey, PersonInstance] = {}
        for person in self.persons:
            index.setdefault(person_key(person), person)
        return index


def person_key(person: PersonInstance) -> PersonKey:
    """The ``(video_id, frame_id, track_id)`` of a person."""
    return (person.video_id, person.frame_id, person.track_id)


def read_annotation_json(source: Source, what: str) -> tuple[dict, str]:
    """Read a COCO-style annotation file (or take an already parsed dict) and check its shape.

    Args:
        source: path of a JSON file, or the parsed JSON object.
        what: name of the format, for error messages (e.g. ``"DensePose-PoseTrack"``).

    Returns:
        ``(data, label)``: the JSON object and a label for it (the path, or ``"<dict>"``).

    Raises:
        ValueError: when the file cannot be read or parsed, or is not an object with ``images``
            and ``annotations`` lists whose images are objects.
    """
    if isinstance(source, dict):
        data, label = source, "<dict>"
    else:
        label = os.fspath(source)
        try:
            with open(label, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{label}: cannot read {what} JSON: {err}") from err
    expected = f"expected a JSON object with 'images' and 'annotations' lists ({what} format)"
    if not isinstance(data, dict):
        raise ValueError(f"{label}: {expected}, got a JSON {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            found = "missing" if key not in data else f"a {type(data[key]).__name__}"
            raise ValueError(f"{label}: {expected}; '{key}' is {found}")
    for k, image in enumerate(data["images"]):
        if not isinstance(image, dict):
            raise ValueError(f"{label}: {expected}; images[{k}] is a {type(image).__name__}")
    return data, label


def load_densepose_posetrack(
    source: Source, *, bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE
) -> AnnotationSet:
    """Read a DensePose-PoseTrack file into an :class:`AnnotationSet` (rules in the module doc).

    Args:
        source: path of the JSON file, or its parsed content.
        bbox_tolerance: allowed overhang of a box beyond the image, as a fraction of its size
            (see :mod:`dptrack_pipeline.formats.validation`).

    Raises:
        ValueError: if the file is unreadable or not COCO-style JSON (the message names the path).
    """
    data, _ = read_annotation_json(source, "DensePose-PoseTrack")
    return assemble_annotation_set(data, keep_densepose=True, bbox_tolerance=bbox_tolerance)


def assemble_annotation_set(
    data: dict,
    *,
    keep_densepose: bool,
    prepare: Callable[[dict, dict | None], dict] | None = None,
    bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE,
) -> AnnotationSet:
    """Validate a parsed COCO-style file and build its records (shared by both readers).

    Args:
        data: object with ``images`` and ``annotations`` lists (checked by
            :func:`read_annotation_json`).
        keep_densepose: keep ``dp_*`` fields (DensePose-PoseTrack) or drop them (PoseTrack18).
        prepare: optional ``(annotation, image) -> annotation`` applied before validation (a copy
            with fields filled in, e.g. a box derived from keypoints); it must not mutate its input.
        bbox_tolerance: passed to :func:`validate_densepose_annotation`.
    """
    images: dict[int, dict] = {}
    image_problems: dict[int, list[Problem]] = {}
    for image in data["images"]:
        if is_int_value(image.get("id")) and image["id"] not in images:
            images[image["id"]] = image
            image_problems[image["id"]] = validate_image(image)
    videos = _videos(image for image_id, image in images.items() if not image_problems[image_id])

    result = AnnotationSet(videos=videos, num_annotations=len(data["annotations"]))
    for ann in data["annotations"]:
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        image = images.get(image_id) if is_int_value(image_id) else None
        if image is not None and image_problems[image["id"]]:
            found = image_problems[image["id"]]
            detail = "; ".join(text for _, text in found)  # the details name the image
            result.rejects.append(_reject(found[0][0], detail, ann, image))
            continue
        if prepare is not None and isinstance(ann, dict):
            ann = prepare(ann, image)
        found = validate_densepose_annotation(ann, image, bbox_tolerance=bbox_tolerance)
        if found:
            detail = "; ".join(text for _, text in found)
            result.rejects.append(_reject(found[0][0], detail, ann, image))
            continue
        assert image is not None  # a valid annotation has a known image
        densepose = keep_densepose and not image.get("has_no_densepose", False)
        person = _person(ann, image, densepose)
        result.persons.append(person)
        if person.has_densepose:
            result.instances.append(person)
    return result


def problems(source: Source, *, bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE) -> list[Reject]:
    """Everything wrong with a DensePose-PoseTrack file, one :class:`Reject` per problem.

    Unlike :func:`load_densepose_posetrack`, which rejects an annotation on its first problem, this
    lists every problem of every image (``annotation_id = -1``) and annotation, for
    ``dptrack-build validate``. Annotations of an invalid image are checked against it as far as it
    allows.

    Raises:
        ValueError: if the file is unreadable or not COCO-style JSON.
    """
    data, _ = read_annotation_json(source, "DensePose-PoseTrack")
    found: list[Reject] = []
    images: dict[int, dict] = {}
    for image in data["images"]:
        for code, detail in validate_image(image):
            found.append(_reject(code, detail, None, image))
        if is_int_value(image.get("id")):
            images.setdefault(image["id"], image)
    for ann in data["annotations"]:
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        image = images.get(image_id) if is_int_value(image_id) else None
        for code, detail in validate_densepose_annotation(
            ann, image, bbox_tolerance=bbox_tolerance
        ):
            found.append(_reject(code, detail, ann, image))
    return found


def merge_posetrack18(
    aset: AnnotationSet, posetrack: AnnotationSet, *, only_densepose_videos: bool = True
) -> AnnotationSet:
    """Add PoseTrack18 persons and frames to a DensePose-PoseTrack set.

    PoseTrack18 annotates boxes and keypoints on more frames than DensePose-PoseTrack carries
    DensePose on, and lists frames a DensePose-PoseTrack file may omit. Matching is by normalised
    video id (``"003418"`` and ``3418`` are the same video) and ``frame_id``.

    Precedence: the DensePose-PoseTrack record wins. A PoseTrack18 person with the same
    ``(video_id, frame_id, track_id)`` as a DensePose-PoseTrack person is dropped (the same
    annotation, counted once in ``num_annotations``), and a PoseTrack18 frame with the ``frame_id``
    of a listed frame is ignored; the other PoseTrack18 frames are inserted and every frame
    re-indexed by ``frame_id`` order. Where the DensePose-PoseTrack annotation was rejected, a
    valid PoseTrack18 person with its key is taken (its box and keypoints still serve the lookup;
    it is not a DensePose source), and a PoseTrack18 reject of a person the DensePose-PoseTrack
    file already has or rejected is dropped.

    Args:
        aset: the DensePose-PoseTrack set.
        posetrack: a PoseTrack18 set (from
            :func:`~dptrack_pipeline.formats.posetrack18.load_posetrack18`).
        only_densepose_videos: take PoseTrack18 videos, persons and rejects only for videos of
            ``aset`` (rejects without a known video are then dropped too).

    Returns:
        A new set; the inputs are not changed. ``num_annotations == len(persons) + len(rejects)``
        holds for it when it holds for the inputs.
    """
    video_ids = set(aset.videos) if only_densepose_videos else None
    return merge_annotation_sets(aset, posetrack, video_ids=video_ids)


def merge_annotation_sets(
    primary: AnnotationSet, secondary: AnnotationSet, *, video_ids: Collection[str] | None = None
) -> AnnotationSet:
    """Merge ``secondary`` into ``primary``; ``primary`` wins for the same person or frame.

    Args:
        primary, secondary: the sets to merge.
        video_ids: when given, only ``secondary``'s videos, persons and rejects of these videos are
            taken.

    Returns:
        A new set: ``primary``'s records, then ``secondary``'s persons whose
        ``(video_id, frame_id, track_id)`` ``primary`` has no person for (a person ``primary``
        rejected may come from ``secondary``: its box is still good for lookup), and
        ``secondary``'s rejects except those of a person ``primary`` has or rejected too (the same
        annotation, read twice). Videos are the union of frames by ``frame_id``, re-indexed.
        ``num_annotations`` is ``primary``'s plus what was taken from ``secondary``, so
        ``num_annotations == len(persons) + len(rejects)`` holds when it holds for both inputs.
    """

    def wanted(video_id: str) -> bool:
        return video_ids is None or video_id in video_ids

    videos = dict(primary.videos)
    for video_id, video in secondary.videos.items():
        if wanted(video_id):
            videos[video_id] = _merge_videos(videos.get(video_id), video)
    taken = set(primary.person_index())
    rejected = taken | {key for key in map(_reject_key, primary.rejects) if key is not None}
    persons = [p for p in secondary.persons if wanted(p.video_id) and person_key(p) not in taken]
    added = {id(p) for p in persons}
    instances = [p for p in secondary.instances if id(p) in added]
    rejects = [
        r for r in secondary.rejects if wanted(r.video_id) and _reject_key(r) not in rejected
    ]
    return AnnotationSet(
        videos=videos,
        instances=primary.instances + instances,
        persons=primary.persons + persons,
        rejects=primary.rejects + rejects,
        num_annotations=primary.num_annotations + len(persons) + len(rejects),
    )


def _reject_key(reject: Reject) -> PersonKey | None:
    """The person a reject is about, or ``None`` when its video, frame or track is unknown."""
    if not reject.video_id or reject.frame_id < 0 or reject.track_id < 0:
        return None
    return (reject.video_id, reject.frame_id, reject.track_id)


def _merge_videos(first: Video | None, second: Video) -> Video:
    if first is None:
        return second
    by_frame_id = {frame.frame_id: frame for frame in second.frames}
    by_frame_id.update({frame.frame_id: frame for frame in first.frames})
    ordered = sorted(by_frame_id.values(), key=lambda frame: (frame.frame_id, frame.image_id))
    frames = tuple(replace(frame, index=i) for i, frame in enumerate(ordered))
    return Video(video_id=first.video_id, frames=frames)


def _videos(images: Iterable[dict]) -> dict[str, Video]:
    """Group valid images into videos ordered by ``(frame_id, id)``."""
    grouped: dict[str, list[dict]] = {}
    for image in images:
        grouped.setdefault(normalise_video_id(image["vid_id"]), []).append(image)
    videos: dict[str, Video] = {}
    for video_id in sorted(grouped):
        ordered = sorted(grouped[video_id], key=lambda image: (image["frame_id"], image["id"]))
        frames = tuple(
            FrameRef(
                video_id=video_id,
                index=index,
                frame_id=int(image["frame_id"]),
                image_file=image["file_name"],
                image_id=int(image["id"]),
                width=_positive_int(image.get("width")),
                height=_positive_int(image.get("height")),
            )
            for index, image in enumerate(ordered)
        )
        videos[video_id] = Video(video_id=video_id, frames=frames)
    return videos


def _person(ann: dict, image: dict, densepose: bool) -> PersonInstance:
    """A validated annotation as a :class:`PersonInstance` (float32 arrays)."""
    keypoints = ann.get("keypoints")
    fields: dict = {}
    if keypoints is not None:
        fields["keypoints"] = np.asarray(keypoints, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
    if densepose:
        for name in DP_FIELDS:
            if ann.get(name) is not None:
                fields[name] = np.asarray(ann[name], dtype=np.float32).reshape(-1)
        masks = ann.get("dp_masks")
        if masks is not None and not all(is_empty_part(entry) for entry in masks):
            fields["dp_masks"] = tuple(
                None if is_empty_part(entry) else to_compressed_rle(entry) for entry in masks
            )
    return PersonInstance(
        annotation_id=int(ann["id"]) if is_int_value(ann.get("id")) else -1,
        video_id=normalise_video_id(image["vid_id"]),
        frame_id=int(image["frame_id"]),
        image_id=int(image["id"]),
        track_id=int(ann["track_id"]),
        bbox=tuple(float(v) for v in ann["bbox"]),
        **fields,
    )


def _reject(code: str, detail: str, ann: object, image: dict | None) -> Reject:
    """A validation reject carrying whatever ids are known."""
    ann = ann if isinstance(ann, dict) else {}
    video_id = ""
    frame_id = -1
    if image is not None:
        try:
            video_id = normalise_video_id(image.get("vid_id"))
        except ValueError:
            pass
        if is_int_value(image.get("frame_id")):
            frame_id = int(image["frame_id"])
    return Reject(
        reason=code,
        detail=detail,
        stage="validate",
        annotation_id=int(ann["id"]) if is_int_value(ann.get("id")) else -1,
        video_id=video_id,
        frame_id=frame_id,
        track_id=int(ann["track_id"]) if is_int_value(ann.get("track_id")) else -1,
    )


def _positive_int(value: object) -> int:
    return int(value) if is_int_value(value) and value > 0 else 0
