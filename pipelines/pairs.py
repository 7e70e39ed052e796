"""The ``pairs`` pipeline: unlabelled video -> person-cropped flow pairs ``T -> T±1..K`` in
Parquet/HDF5 shards, for Siamese equivariance training (Slim DensePose, Sec. 5).

Graph (every arrow a PCollection; ids and paths travel, pixels only as packed crop-sized arrays)::

    videos (+ their people rows) --Reshuffle--> PlanVideoFn --(shard, chunk)--Reshuffle-->
        ProcessChunkFn --(shard, crop | pair | reject)--+
    people-file rejects found at launch ----------------+--> GroupByKey --> WritePairShardFn
    plan rejects (unreadable videos, bad people rows) ---+          |
    one placeholder per shard ---------------------------+   file infos, counters
                                                                    |
                                  WritePairsManifestFn (dataset_info.json, once)

Frames are counted on the workers (``PlanVideoFn``), not by the launcher, which only lists the
inputs and reads the people file. ``build_pairs(pipeline, config)`` adds the graph to a pipeline
(tests, embedding); ``run(config, beam_args)`` runs it with any Beam options.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
import cv2
from apache_beam.options.pipeline_options import PipelineOptions

from dptrack_pipeline.beam.dofns import SumCounters
from dptrack_pipeline.beam.pairs_dofns import (
    COUNTERS_TAG,
    REJECTS_TAG,
    PlanVideoFn,
    ProcessChunkFn,
    WritePairShardFn,
    WritePairsManifestFn,
)
from dptrack_pipeline.config import TARGET_PAIRS_PER_SHARD, PairsConfig
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.frames.sources import list_image_frames
from dptrack_pipeline.pairs.compute import STAGE_PEOPLE, reject_row
from dptrack_pipeline.pairs.people import PEOPLE_UNKNOWN_VIDEO, PersonEntry, load_people
from dptrack_pipeline.pairs.plan import expected_pair_count
from dptrack_pipeline.pairs.videos import KIND_FOLDER, VideoSpec, discover_videos
from dptrack_pipeline.shards import shard_for_key
from dptrack_pipeline.shards.manifest import REQUIRED_PAIRS_COUNTERS

LOG = logging.getLogger(__name__)


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


def _header_frames(spec: VideoSpec) -> int:
    """A cheap frame-count estimate (container header, or images in the folder) for sizing."""
    if spec.kind == KIND_FOLDER:
        return len(list_image_frames(spec.path))
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
    videos = tuple(discover_videos(list(config.videos)))
    ids = {v.video_id for v in videos}
    counters = dict.fromkeys(REQUIRED_PAIRS_COUNTERS, 0)  # every required counter, even if 0
    counters["videos_in"] = len(videos)
    rejects: list[dict] = []
    people = None
    if config.people is not None:
        entries, problems = load_people(config.people)
        counters["people_in"] = len(entries) + len(problems)
        for p in problems:
            rejects.append(reject_row(p.video, p.reason, p.detail, STAGE_PEOPLE, p.frame, p.person))
        people = {vid: [] for vid in ids}
        for e in entries:
            if e.video in ids:
                people[e.video].append(e)
            else:
                rejects.append(
                    reject_row(
                        e.video,
                        PEOPLE_UNKNOWN_VIDEO,
                        f"no input video has the id {e.video!r} (ids: "
                        f"{', '.join(sorted(ids)[:5])}{', ...' if len(ids) > 5 else ''})",
                        STAGE_PEOPLE,
                        e.frame,
                        e.person,
                    )
                )
        counters["people_rejected"] = len(rejects)
        people = {vid: tuple(rows) for vid, rows in people.items()}
    estimated = 0
    for spec in videos:
        frames = _header_frames(spec)
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
    )


def build_pairs(
    pipeline: beam.Pipeline, config: PairsConfig, prepared: PreparedPairs | None = None
) -> beam.PCollection:
    """Add the ``pairs`` graph to ``pipeline``; returns the PCollection of the manifest path."""
    prepared = prepared or prepare(config)
    n = prepared.num_shards
    inputs = [
        (spec, None if prepared.people is None else prepared.people[spec.video_id])
        for spec in prepared.videos
    ]
    planned = (
        pipeline
        | "Videos" >> beam.Create(inputs, reshuffle=False)
        | "DistributeVideos" >> beam.Reshuffle()
        | "PlanVideos"
        >> beam.ParDo(PlanVideoFn(config, n)).with_outputs(COUNTERS_TAG, REJECTS_TAG, main="chunks")
    )
    processed = (
        planned.chunks
        | "DistributeChunks" >> beam.Reshuffle()
        | "ProcessChunks"
        >> beam.ParDo(ProcessChunkFn(config)).with_outputs(COUNTERS_TAG, main="items")
    )
    launch_rejects = pipeline | "LaunchRejects" >> beam.Create(
        [
            (shard_for_key(r["video_id"], n), ("reject", r, "other"))
            for r in prepared.launch_rejects
        ],
        reshuffle=False,
    )
    placeholders = pipeline | "ShardPlaceholders" >> beam.Create(
        [(i, None) for i in range(n)], reshuffle=False
    )
    written = (
        (processed.items, planned[REJECTS_TAG], launch_rejects, placeholders)
        | "AllItems" >> beam.Flatten()
        | "ByShard" >> beam.GroupByKey()
        | "WriteShards"
        >> beam.ParDo(WritePairShardFn(config.out, n, config.crop_size)).with_outputs(
            COUNTERS_TAG, main="files"
        )
    )
    launch_counters = pipeline | "LaunchCounters" >> beam.Create(
        [prepared.counters], reshuffle=False
    )
    counters = (
        (planned[COUNTERS_TAG], processed[COUNTERS_TAG], written[COUNTERS_TAG], launch_counters)
        | "AllCounters" >> beam.Flatten()
        | "SumCounters" >> beam.CombineGlobally(SumCounters())
    )
    files = written.files | "FileList" >> beam.combiners.ToList()
    extra = {
        "estimator_provenance": prepared.estimator_provenance,
        "video_ids": sorted(v.video_id for v in prepared.videos),
    }
    return (
        pipeline
        | "Once" >> beam.Create([None], reshuffle=False)
        | "WriteManifest"
        >> beam.ParDo(
            WritePairsManifestFn(config, n, prepared.estimator_params, extra),
            files=beam.pvalue.AsSingleton(files),
            counters=beam.pvalue.AsSingleton(counters),
        )
    )


def run(
    config: PairsConfig, beam_args: Sequence[str] = (), prepared: PreparedPairs | None = None
) -> str:
    """Run the pipeline with Beam options ``beam_args`` (DirectRunner unless told otherwise).

    Returns:
        The output folder.
    """
    prepared = prepared or prepare(config)
    LOG.info(
        "%d videos, about %d pairs (from container headers), %d shards",
        len(prepared.videos),
        prepared.estimated_pairs,
        prepared.num_shards,
    )
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        build_pairs(pipeline, config, prepared)
    return config.out
