"""What the launcher of a ``run`` decides before any worker starts.

:func:`prepare` reads the annotation JSON once (small: the whole DensePose-PoseTrack training set
is a few hundred MB), validates it, merges PoseTrack18 boxes, plans windows per video
(:mod:`dptrack_pipeline.propagate.plan`) and fixes the shard count. The CLI calls it once, checks
the result, and hands the same :class:`PreparedRun` to the pipeline, so annotations are loaded and
validated once per run. Beam gets one :class:`~dptrack_pipeline.propagate.plan.WindowTask` per
window: ids, paths, boxes and points, never pixels.

It also fixes the numbers the run is checked against: ``instances_in`` counts every instance that
enters, i.e. each annotation rejected by validation (1 each) plus, for each valid DensePose
source, the source itself and one candidate per target frame. At the end of the run
``instances_in == instances_written + instances_rejected`` must hold.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.formats.densepose_posetrack import (
    AnnotationSet,
    load_densepose_posetrack,
    merge_posetrack18,
)
from dptrack_pipeline.formats.posetrack18 import load_many
from dptrack_pipeline.propagate.config import TARGET_INSTANCES_PER_SHARD, PropagateConfig
from dptrack_pipeline.propagate.plan import TargetPerson, WindowTask, plan_windows
from dptrack_pipeline.rejects import STAGE_PLAN
from dptrack_pipeline.schedule import target_indices
from dptrack_pipeline.shards.counters import REQUIRED_COUNTERS
from dptrack_pipeline.shards.progress import Progress
from dptrack_pipeline.structures import PersonInstance, Reject


@dataclass
class TaskPlan:
    """Windows to process, annotations already set aside, and the planned counts."""

    tasks: list[WindowTask]
    rejects: list[Reject]
    counters: dict[str, int] = field(default_factory=dict)


def build_window_tasks(aset: AnnotationSet, max_offset: int, chain: bool = False) -> TaskPlan:
    """Plan every video of ``aset`` into window tasks.

    Args:
        aset: validated annotations (DensePose sources, persons for target boxes, rejects).
        max_offset: ``K``.
        chain: plan the chain check's one-step flows too.
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
                    stage=STAGE_PLAN,
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
        for window in plan_windows(video_id, n, by_index.keys(), max_offset, chain):
            window_persons = {}
            for i in window.frames:
                ref = video.frames[i]
                for track_id in {p.track_id for s in window.sources for p in by_index[s]}:
                    person = persons.get((video_id, ref.frame_id, track_id))
                    if person is not None:
                        window_persons[(i, track_id)] = TargetPerson(
                            bbox=person.bbox, keypoints=person.keypoints, head_box=person.head_box
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
        # every counter a manifest carries, 0 until counted (an empty or all-rejected run too)
        **dict.fromkeys((*REQUIRED_COUNTERS, "points_dropped_photo", "points_dropped_chain"), 0),
        "annotations_in": int(aset.num_annotations),
        "annotations_rejected": len(rejects),
        "sources_in": sources_in,
        "instances_in": instances_in,
        "windows": len(tasks),
        "frames_planned": frames,
        "flows_planned": pairs,
    }
    return TaskPlan(tasks=tasks, rejects=rejects, counters=counters)


@dataclass(frozen=True)
class PreparedRun:
    """What the launcher decided before the pipeline starts."""

    plan: TaskPlan
    num_shards: int
    estimator_params: dict
    estimator_provenance: dict
    progress: Progress | None = None
    """Receipts to write and shards a resumed job keeps (:mod:`dptrack_pipeline.shards.progress`);
    the CLI sets it, ``None`` writes no receipts."""


def prepare(config: PropagateConfig) -> PreparedRun:
    """Load and validate annotations, plan windows, fix the shard count.

    Raises:
        ValueError: unreadable annotation files, unknown estimator or estimator options.
    """
    estimator = create_estimator(config.estimator, **dict(config.estimator_options))
    aset = load_densepose_posetrack(config.annotations)
    if config.posetrack:
        aset = merge_posetrack18(aset, load_many(list(config.posetrack)))
    plan = build_window_tasks(aset, config.max_offset, chain=config.checks.chain is not None)
    num_shards = config.num_shards or max(
        1, math.ceil(plan.counters["instances_in"] / TARGET_INSTANCES_PER_SHARD)
    )
    return PreparedRun(
        plan=plan,
        num_shards=num_shards,
        estimator_params=estimator.params(),
        estimator_provenance=estimator.provenance(),
    )
