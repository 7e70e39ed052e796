"""Turn loaded annotations into independent window tasks (the launcher's side of ``run``).

The launcher reads the annotation JSON (small: the whole DensePose-PoseTrack training set is a few
hundred MB), validates it, plans windows per video (:mod:`dptrack_pipeline.planning`) and hands
Beam one :class:`~dptrack_pipeline.window.WindowTask` per window: ids, paths, boxes and points,
never pixels.

It also fixes the numbers the run is checked against: ``instances_in`` counts every instance that
enters, i.e. each annotation rejected by validation (1 each) plus, for each valid DensePose
source, the source itself and one candidate per target frame. At the end of the run
``instances_in == instances_written + instances_rejected`` must hold.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from dptrack_pipeline.formats.densepose_posetrack import AnnotationSet
from dptrack_pipeline.planning import plan_windows, target_indices
from dptrack_pipeline.structures import PersonInstance, Reject
from dptrack_pipeline.window import TargetPerson, WindowTask


@dataclass
class TaskPlan:
    """Windows to process, annotations already set aside, and the planned counts."""

    tasks: list[WindowTask]
    rejects: list[Reject]
    counters: dict[str, int] = field(default_factory=dict)


def build_window_tasks(aset: AnnotationSet, max_offset: int) -> TaskPlan:
    """Plan every video of ``aset`` into window tasks.

    Args:
        aset: validated annotations (DensePose sources, persons for target boxes, rejects).
        max_offset: ``K``.
    """
    rejects = list(aset.rejects)
    persons = aset.person_index()
    sources_by_video: dict[str, dict[int, list[PersonInstance]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for person in aset.instances:
        video = aset.videos.get(person.video_id)
        frame = video.frame_by_id(person.frame_id) if video is not None else None
        if frame is None:
            rejects.append(
                Reject(
                    reason="unknown_frame",
                    detail=f"frame_id {person.frame_id} is not a frame of video "
                    f"{person.video_id!r}",
                    stage="plan",
                    annotation_id=person.annotation_id,
                    video_id=person.video_id,
                    frame_id=person.frame_id,
                    track_id=person.track_id,
                )
            )
            continue
        sources_by_video[person.video_id][frame.index].append(person)

    tasks: list[WindowTask] = []
    instances_in = len(rejects)
    sources_in = 0
    pairs = 0
    frames = 0
    for video_id in sorted(sources_by_video):
        video = aset.videos[video_id]
        by_index = sources_by_video[video_id]
        n = len(video.frames)
        for window in plan_windows(video_id, n, by_index.keys(), max_offset):
            window_persons = {}
            for i in window.frames:
                ref = video.frames[i]
                for track_id in {p.track_id for s in window.sources for p in by_index[s]}:
                    person = persons.get((video_id, ref.frame_id, track_id))
                    if person is not None:
                        window_persons[(i, track_id)] = TargetPerson(
                            bbox=person.bbox, keypoints=person.keypoints
                        )
            window_sources = {
                s: tuple(sorted(by_index[s], key=lambda p: (p.track_id, p.annotation_id)))
                for s in window.sources
            }
            for s, people in window_sources.items():
                sources_in += len(people)
                instances_in += len(people) * (1 + len(target_indices(s, n, max_offset)))
            pairs += len(window.pairs)
            frames += len(window.frames)
            tasks.append(
                WindowTask(
                    window=window,
                    num_frames=n,
                    frames={i: video.frames[i] for i in window.frames},
                    sources=window_sources,
                    persons=window_persons,
                )
            )
    counters = {
        "annotations_in": int(aset.num_annotations),
        "annotations_rejected": len(rejects),
        "sources_in": sources_in,
        "instances_in": instances_in,
        "windows": len(tasks),
        "frames_planned": frames,
        "flows_planned": pairs,
    }
    return TaskPlan(tasks=tasks, rejects=rejects, counters=counters)
