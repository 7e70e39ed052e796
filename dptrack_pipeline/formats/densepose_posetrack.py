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
:func:`merge_posetrack18` combines the two (see there for precedence). The records and their
merging are :mod:`dptrack_pipeline.formats.annotation_set`, the reading shared by both formats
:mod:`dptrack_pipeline.formats.coco_json`; this module re-exports the names it used to define
there (:class:`AnnotationSet`, :func:`read_annotation_json`, ...).
"""

from __future__ import annotations

from dptrack_pipeline.formats.annotation_set import (
    AnnotationSet,
    PersonKey,
    merge_annotation_sets,
    person_key,
)
from dptrack_pipeline.formats.coco_json import (
    Source,
    assemble_annotation_set,
    load_annotation_set,
    read_annotation_json,
    validation_reject,
)
from dptrack_pipeline.formats.consistency import conflicts
from dptrack_pipeline.formats.validation import (
    BBOX_OUTSIDE_TOLERANCE,
    is_int_value,
    validate_densepose_annotation,
    validate_image,
)
from dptrack_pipeline.structures import Reject

__all__ = [
    "AnnotationSet",
    "PersonKey",
    "Source",
    "assemble_annotation_set",
    "load_densepose_posetrack",
    "merge_annotation_sets",
    "merge_posetrack18",
    "person_key",
    "problems",
    "read_annotation_json",
]


def load_densepose_posetrack(
    source: Source, *, bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE
) -> AnnotationSet:
    """Read a DensePose-PoseTrack file into an :class:`AnnotationSet` (rules in the module doc).

    Arguments and errors as :func:`~dptrack_pipeline.formats.coco_json.load_annotation_set`,
    with ``keep_densepose=True``.
    """
    return load_annotation_set(
        source, "DensePose-PoseTrack", keep_densepose=True, bbox_tolerance=bbox_tolerance
    )


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
    clash = conflicts(data)
    reported: set[int] = set()
    for image in data["images"]:
        image_id = image.get("id")
        conflict = clash.image_problem(image_id)
        if conflict is not None and image_id not in reported:
            reported.add(image_id)
            found.append(validation_reject(*conflict, None, image))
        for code, detail in validate_image(image):
            found.append(validation_reject(code, detail, None, image))
        if is_int_value(image.get("id")):
            images.setdefault(image["id"], image)
    for index, ann in enumerate(data["annotations"]):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        image = images.get(image_id) if is_int_value(image_id) else None
        if index in clash.annotations:
            found.append(validation_reject(*clash.annotations[index], ann, image))
        for code, detail in validate_densepose_annotation(
            ann, image, bbox_tolerance=bbox_tolerance
        ):
            found.append(validation_reject(code, detail, ann, image))
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
