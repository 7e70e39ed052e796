"""The records read from annotation files (:class:`AnnotationSet`), and merging two sets.

Both readers (:mod:`~dptrack_pipeline.formats.densepose_posetrack`,
:mod:`~dptrack_pipeline.formats.posetrack18`) produce an :class:`AnnotationSet`: videos with
their frames, the valid persons, the DensePose sources among them and the rejects. A person is
identified across files by its :data:`PersonKey` ``(video_id, frame_id, track_id)``, which is
what :func:`merge_annotation_sets` matches on: the primary set wins for the same person or
frame, so reading the same annotation twice (per-video files and a combined file, or a
DensePose-PoseTrack file and its PoseTrack18 original) counts it once, and the invariant
``num_annotations == len(persons) + len(rejects)`` survives merging.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from dptrack_pipeline.structures import PersonInstance, Reject, Video

PersonKey = tuple[str, int, int]
"""``(video_id, frame_id, track_id)``: one person in one frame."""


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
