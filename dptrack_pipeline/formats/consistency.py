"""Do the records of an annotation file agree with each other?

Each image and annotation can be valid on its own (:mod:`dptrack_pipeline.formats.validation`)
and still make the file ambiguous, which would label one frame with another frame's people:

* ``duplicate_image_id``: two ``images[]`` records share an ``id``. An annotation's ``image_id``
  then names either frame, so every image with that id, and every annotation on it, is set aside.
* ``image_in_two_videos``: one ``file_name`` is listed under two different videos (normalised
  ``vid_id``). The frame's position, hence the offsets T ± k, depends on which video is meant, so
  those images and their annotations are set aside.
* ``duplicate_annotation_id``: two annotations share an ``id``. Propagated rows, rejects and
  exports are keyed by it, so all of them are set aside.

:func:`conflicts` finds them; the reader rejects what it names before any other check, and
``dptrack-build validate`` lists them. Pure functions on the parsed JSON.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from dptrack_pipeline.formats.validation import Problem, is_int_value
from dptrack_pipeline.rejects import (
    DUPLICATE_ANNOTATION_ID,
    DUPLICATE_IMAGE_ID,
    IMAGE_IN_TWO_VIDEOS,
)
from dptrack_pipeline.structures import normalise_video_id


@dataclass
class Conflicts:
    """Records set aside for a conflict: ``images`` by image id and ``annotations`` by position in
    ``annotations[]``, each with its :data:`~dptrack_pipeline.formats.validation.Problem`."""

    images: dict[int, Problem] = field(default_factory=dict)
    annotations: dict[int, Problem] = field(default_factory=dict)

    def image_problem(self, image_id: object) -> Problem | None:
        return self.images.get(image_id) if is_int_value(image_id) else None  # type: ignore[arg-type]


def _video(image: dict) -> str | None:
    try:
        return normalise_video_id(image.get("vid_id"))
    except ValueError:
        return None


def conflicts(data: dict) -> Conflicts:
    """Every duplicate image id, image under two videos and duplicate annotation id of a parsed
    COCO-style file (``images`` and ``annotations`` lists; see the module docstring)."""
    found = Conflicts()
    ids = Counter(im["id"] for im in data["images"] if is_int_value(im.get("id")))
    for image_id, count in sorted(ids.items()):
        if count > 1:
            found.images[image_id] = (
                DUPLICATE_IMAGE_ID,
                f"image id {image_id} is listed {count} times: its annotations could belong to "
                "any of those frames; give each image its own id",
            )
    videos_of: dict[str, set[str]] = defaultdict(set)
    for image in data["images"]:
        video = _video(image)
        if isinstance(image.get("file_name"), str) and video is not None:
            videos_of[image["file_name"]].add(video)
    for image in data["images"]:
        videos = videos_of.get(image.get("file_name"), set())
        image_id = image.get("id")
        if len(videos) > 1 and is_int_value(image_id) and image_id not in found.images:
            found.images[image_id] = (
                IMAGE_IN_TWO_VIDEOS,
                f"image {image_id}: file_name {image['file_name']!r} is listed under videos "
                f"{sorted(videos)}; a frame belongs to one video",
            )
    annotations = data["annotations"]
    ann_ids = Counter(
        a["id"] for a in annotations if isinstance(a, dict) and is_int_value(a.get("id"))
    )
    for index, ann in enumerate(annotations):
        if isinstance(ann, dict) and is_int_value(ann.get("id")) and ann_ids[ann["id"]] > 1:
            found.annotations[index] = (
                DUPLICATE_ANNOTATION_ID,
                f"annotation id {ann['id']} is used by {ann_ids[ann['id']]} annotations; give "
                "each annotation its own id",
            )
    return found
