"""How a COCO-style annotation file becomes an :class:`AnnotationSet` (shared by both readers).

DensePose-PoseTrack and PoseTrack18 files are both COCO-style JSON: ``images`` and
``annotations`` lists (plus ``categories``). Reading one is the same for both formats
(:func:`load_annotation_set`): :func:`read_annotation_json` parses the file and checks its
shape, raising ``ValueError`` naming the path when it is not such a file; then
:func:`assemble_annotation_set` validates every record
(:mod:`dptrack_pipeline.formats.validation`), groups the valid images into videos and builds
the person records, turning each invalid annotation into a
:class:`~dptrack_pipeline.structures.Reject` (:func:`validation_reject`) instead of failing.
What differs between the formats is a parameter: whether the ``dp_*`` fields are kept, and an
optional ``prepare`` step that fills fields in before validation (PoseTrack18's keypoint boxes).
The reading rules themselves are stated in :mod:`~dptrack_pipeline.formats.densepose_posetrack`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable

import numpy as np

from dptrack_pipeline.formats.annotation_set import AnnotationSet
from dptrack_pipeline.formats.consistency import conflicts
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

Source = str | os.PathLike | dict


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


def load_annotation_set(
    source: Source,
    what: str,
    *,
    keep_densepose: bool,
    prepare: Callable[[dict, dict | None], dict] | None = None,
    bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE,
) -> AnnotationSet:
    """Read a COCO-style annotation file into an :class:`AnnotationSet`.

    :func:`read_annotation_json`, then :func:`assemble_annotation_set`.

    Args:
        source: path of the JSON file, or its parsed content.
        what: name of the format, for error messages (e.g. ``"DensePose-PoseTrack"``).
        keep_densepose, prepare: as in :func:`assemble_annotation_set`.
        bbox_tolerance: allowed overhang of a box beyond the image, as a fraction of its size
            (see :mod:`dptrack_pipeline.formats.validation`).

    Raises:
        ValueError: if the file is unreadable or not COCO-style JSON (the message names the path).
    """
    data, _ = read_annotation_json(source, what)
    return assemble_annotation_set(
        data, keep_densepose=keep_densepose, prepare=prepare, bbox_tolerance=bbox_tolerance
    )


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
    clash = conflicts(data)
    for image in data["images"]:
        if is_int_value(image.get("id")) and image["id"] not in images:
            images[image["id"]] = image
            conflict = clash.image_problem(image["id"])
            image_problems[image["id"]] = [conflict] if conflict else validate_image(image)
    videos = _videos(image for image_id, image in images.items() if not image_problems[image_id])

    result = AnnotationSet(videos=videos, num_annotations=len(data["annotations"]))
    for index, ann in enumerate(data["annotations"]):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        image = images.get(image_id) if is_int_value(image_id) else None
        if index in clash.annotations:
            code, detail = clash.annotations[index]
            result.rejects.append(validation_reject(code, detail, ann, image))
            continue
        if image is not None and image_problems[image["id"]]:
            found = image_problems[image["id"]]
            detail = "; ".join(text for _, text in found)  # the details name the image
            result.rejects.append(validation_reject(found[0][0], detail, ann, image))
            continue
        if prepare is not None and isinstance(ann, dict):
            ann = prepare(ann, image)
        found = validate_densepose_annotation(ann, image, bbox_tolerance=bbox_tolerance)
        if found:
            detail = "; ".join(text for _, text in found)
            result.rejects.append(validation_reject(found[0][0], detail, ann, image))
            continue
        assert image is not None  # a valid annotation has a known image
        densepose = keep_densepose and not image.get("has_no_densepose", False)
        person = _person(ann, image, densepose)
        result.persons.append(person)
        if person.has_densepose:
            result.instances.append(person)
    return result


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
    head = ann.get("bbox_head")
    if (
        isinstance(head, (list, tuple))
        and len(head) == 4
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in head)
        and head[2] > 0
        and head[3] > 0
    ):
        fields["head_box"] = tuple(float(v) for v in head)
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


def validation_reject(code: str, detail: str, ann: object, image: dict | None) -> Reject:
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
