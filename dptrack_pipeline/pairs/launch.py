"""What the launcher of a ``pairs`` job decides before any worker starts.

:func:`prepare` lists the input videos (:func:`~dptrack_pipeline.pairs.videos.discover_videos`),
reads the people file once (:func:`~dptrack_pipeline.pairs.people_formats.read_people`), sets
aside the rows it can already tell are bad (unparsable rows, unknown videos, frame files a video
folder lacks), places entries that name their frame file in the folder listing
(:func:`~dptrack_pipeline.pairs.people.resolve_frames`), and sizes the shards from a
cheap frame-count estimate (container headers or folder listings: the launcher never decodes;
frames are counted exactly on the workers by :func:`~dptrack_pipeline.pairs.plan.plan_video`).
The CLI calls it once and hands the same :class:`PreparedPairs` to the pipeline.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2

from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.frames import list_image_frames
from dptrack_pipeline.pairs.config import TARGET_PAIRS_PER_SHARD, PairsConfig
from dptrack_pipeline.pairs.people import PersonEntry, drop_duplicates, resolve_frames
from dptrack_pipeline.pairs.people_formats import read_people
from dptrack_pipeline.pairs.plan import expected_pair_count, pair_reject_row
from dptrack_pipeline.pairs.videos import KIND_FOLDER, VideoSpec, discover_videos
from dptrack_pipeline.rejects import PEOPLE_UNKNOWN_VIDEO, STAGE_PEOPLE
from dptrack_pipeline.shards.counters import REQUIRED_PAIRS_COUNTERS
from dptrack_pipeline.shards.progress import Progress


@dataclass(frozen=True)
class PreparedPairs:
    """What the launcher decided before the pipeline starts."""

    videos: tuple[VideoSpec, ...]
    people: dict[str, tuple[PersonEntry, ...]] | None
    launch_rejects: tuple[dict, ...]
    counters: dict[str, int]
    num_shards: int
    estimated_pairs: int
    estimator_params: dict
    estimator_provenance: dict
    people_format: str = ""
    """The format the people file was read as (``""`` without one)."""
    progress: Progress | None = None
    """Receipts to write and shards a resumed job keeps (:mod:`dptrack_pipeline.shards.progress`);
    the CLI sets it, ``None`` writes no receipts."""


def _frame_names(spec: VideoSpec) -> list[str] | None:
    """File names of a frame folder's images in order; ``None`` for a video file or a folder
    that cannot be listed (planning rejects that video)."""
    if spec.kind != KIND_FOLDER or spec.refused:
        return None
    try:
        return [os.path.basename(p) for p in list_image_frames(spec.path)]
    except OSError:
        return None


def _header_frames(spec: VideoSpec, names: list[str] | None) -> int:
    """A cheap frame-count estimate (container header, or images in the folder) for sizing."""
    if spec.kind == KIND_FOLDER:
        return len(names or ())
    capture = cv2.VideoCapture(spec.path)
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        capture.release()


def prepare(config: PairsConfig) -> PreparedPairs:
    """List videos, read the people file, size the shards.

    Raises:
        ValueError: a missing or unusable input path, duplicate video ids, an unreadable people
            file, or an unknown estimator or estimator option.
    """
    estimator = create_estimator(config.estimator, **dict(config.estimator_options))
    videos = tuple(discover_videos(list(config.videos), config.follow_symlinks))
    ids = {v.video_id for v in videos}
    counters = dict.fromkeys(REQUIRED_PAIRS_COUNTERS, 0)  # every required counter, even if 0
    counters["videos_in"] = len(videos)
    rejects: list[dict] = []
    people = None
    people_format = ""
    names = {spec.video_id: _frame_names(spec) for spec in videos}
    if config.people is not None:
        people_format, entries, problems = read_people(
            config.people, config.people_format, config.people_keyframes
        )
        counters["people_in"] = len(entries) + len(problems)
        for p in problems:
            rejects.append(
                pair_reject_row(p.video, p.reason, p.detail, STAGE_PEOPLE, p.frame, p.person)
            )
        grouped: dict[str, list[PersonEntry]] = {vid: [] for vid in ids}
        for e in entries:
            if e.video in ids:
                grouped[e.video].append(e)
            else:
                rejects.append(
                    pair_reject_row(
                        e.video,
                        PEOPLE_UNKNOWN_VIDEO,
                        f"no input video has the id {e.video!r} (ids: "
                        f"{', '.join(sorted(ids)[:5])}{', ...' if len(ids) > 5 else ''})",
                        STAGE_PEOPLE,
                        e.frame,
                        e.person,
                    )
                )
        people = {}
        for spec in videos:
            rows = grouped[spec.video_id]
            bad: list[tuple[PersonEntry, str, str]] = []
            if any(e.image for e in rows) and not (
                spec.kind == KIND_FOLDER and names[spec.video_id] is None
            ):
                rows, bad = resolve_frames(rows, names[spec.video_id])
            rows, twice = drop_duplicates(rows)
            for e, reason, detail in bad + twice:
                rejects.append(
                    pair_reject_row(e.video, reason, detail, STAGE_PEOPLE, e.frame, e.person)
                )
            people[spec.video_id] = tuple(rows)
        counters["people_rejected"] = len(rejects)
    estimated = 0
    for spec in videos:
        frames = _header_frames(spec, names[spec.video_id])
        persons = 1 if people is None else len({e.person for e in people[spec.video_id]})
        estimated += persons * expected_pair_count(frames, config.max_offset, config.stride)
    num_shards = config.num_shards or max(1, math.ceil(estimated / TARGET_PAIRS_PER_SHARD))
    return PreparedPairs(
        videos=videos,
        people=people,
        launch_rejects=tuple(rejects),
        counters=counters,
        num_shards=num_shards,
        estimated_pairs=estimated,
        estimator_params=estimator.params(),
        estimator_provenance=estimator.provenance(),
        people_format=people_format,
    )
