"""The ``run`` pipeline: DensePose-Track labels + video -> flow T±1..K -> forward-backward check ->
propagated instances in Parquet/HDF5 shards.

Graph (every arrow a PCollection; ids and paths travel, pixels do not)::

    runs of a video's windows --Reshuffle--> ProcessWindowFn --(shard, item)--+
    validation rejects ------------(shard, reject)---------------+--> GroupByKey --> WriteShardFn
    one placeholder per shard (so empty shards exist) -----------+         |
                                                                     file infos, counters
                                                                           |
                                            WriteManifestFn (dataset_info.json, once)

``build_propagate(pipeline, config)`` adds the graph to a pipeline (for tests and embedding);
``run(config, beam_args)`` launches it with the given Beam options (any runner).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from dptrack_pipeline.beam.dofns import (
    COUNTERS_TAG,
    ProcessWindowFn,
    SumCounters,
    WriteManifestFn,
    WriteShardFn,
)
from dptrack_pipeline.config import TARGET_INSTANCES_PER_SHARD, PropagateConfig
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.formats.densepose_posetrack import load_densepose_posetrack, merge_posetrack18
from dptrack_pipeline.formats.posetrack18 import load_many
from dptrack_pipeline.shards import shard_for_key
from dptrack_pipeline.tasks import TaskPlan, build_window_tasks
from dptrack_pipeline.window import WindowTask, reject_row

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedRun:
    """What the launcher decided before the pipeline starts."""

    plan: TaskPlan
    num_shards: int
    estimator_params: dict
    estimator_provenance: dict


def prepare(config: PropagateConfig) -> PreparedRun:
    """Load and validate annotations, plan windows, fix the shard count.

    Raises:
        ValueError: unreadable annotation files, unknown estimator or estimator options.
    """
    estimator = create_estimator(config.estimator, **dict(config.estimator_options))
    aset = load_densepose_posetrack(config.annotations)
    if config.posetrack:
        aset = merge_posetrack18(aset, load_many(list(config.posetrack)))
    plan = build_window_tasks(aset, config.max_offset)
    num_shards = config.num_shards or max(
        1, math.ceil(plan.counters["instances_in"] / TARGET_INSTANCES_PER_SHARD)
    )
    return PreparedRun(
        plan=plan,
        num_shards=num_shards,
        estimator_params=estimator.params(),
        estimator_provenance=estimator.provenance(),
    )


WINDOWS_PER_ELEMENT = 8
"""Consecutive windows of one video per Beam element: a worker reads them front to back from one
open video file (one seek per element instead of one per window), and a long video still splits
into several elements that run in parallel."""


def group_windows(tasks: Sequence[WindowTask], size: int = WINDOWS_PER_ELEMENT) -> list[list]:
    """Runs of at most ``size`` consecutive windows of the same video, in plan order."""
    groups: list[list[WindowTask]] = []
    for task in tasks:
        last = groups[-1] if groups else None
        if last and last[-1].window.video_id == task.window.video_id and len(last) < size:
            last.append(task)
        else:
            groups.append([task])
    return groups


def build_propagate(
    pipeline: beam.Pipeline, config: PropagateConfig, prepared: PreparedRun | None = None
) -> beam.PCollection:
    """Add the ``run`` graph to ``pipeline``; returns the PCollection of the manifest path."""
    prepared = prepared or prepare(config)
    plan, num_shards = prepared.plan, prepared.num_shards

    processed = (
        pipeline
        | "VideoTasks" >> beam.Create(group_windows(plan.tasks), reshuffle=False)
        | "Distribute" >> beam.Reshuffle()
        | "ProcessWindows"
        >> beam.ParDo(ProcessWindowFn(config, num_shards, len(plan.tasks))).with_outputs(
            COUNTERS_TAG, main="items"
        )
    )
    validation_rejects = pipeline | "ValidationRejects" >> beam.Create(
        [(shard_for_key(r.video_id, num_shards), ("reject", reject_row(r))) for r in plan.rejects],
        reshuffle=False,
    )
    placeholders = pipeline | "ShardPlaceholders" >> beam.Create(
        [(i, None) for i in range(num_shards)], reshuffle=False
    )
    written = (
        (processed.items, validation_rejects, placeholders)
        | "AllItems" >> beam.Flatten()
        | "ByShard" >> beam.GroupByKey()
        | "WriteShards"
        >> beam.ParDo(WriteShardFn(config.out, num_shards, config.crop_size)).with_outputs(
            COUNTERS_TAG, main="files"
        )
    )
    planned = pipeline | "PlannedCounters" >> beam.Create([plan.counters], reshuffle=False)
    counters = (
        (processed[COUNTERS_TAG], written[COUNTERS_TAG], planned)
        | "AllCounters" >> beam.Flatten()
        | "SumCounters" >> beam.CombineGlobally(SumCounters())
    )
    files = written.files | "FileList" >> beam.combiners.ToList()
    return (
        pipeline
        | "Once" >> beam.Create([None], reshuffle=False)
        | "WriteManifest"
        >> beam.ParDo(
            WriteManifestFn(
                config,
                num_shards,
                prepared.estimator_params,
                {"estimator_provenance": prepared.estimator_provenance},
            ),
            files=beam.pvalue.AsSingleton(files),
            counters=beam.pvalue.AsSingleton(counters),
        )
    )


def run(config: PropagateConfig, beam_args: Sequence[str] = ()) -> str:
    """Run the pipeline with Beam options ``beam_args`` (DirectRunner unless told otherwise).

    Returns:
        The output folder.
    """
    prepared = prepare(config)
    counters = prepared.plan.counters
    LOG.info(
        "planned %d windows: %d frames to decode, %d flows, %d instances in, %d shards",
        counters["windows"],
        counters["frames_planned"],
        counters["flows_planned"],
        counters["instances_in"],
        prepared.num_shards,
    )
    options = PipelineOptions(list(beam_args))
    with beam.Pipeline(options=options) as pipeline:
        build_propagate(pipeline, config, prepared)
    return config.out
