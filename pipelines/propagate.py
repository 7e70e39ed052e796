"""The ``run`` pipeline: DensePose-Track labels + video -> flow T±1..K -> forward-backward check ->
propagated instances in Parquet/HDF5 shards.

Graph (every arrow a PCollection; ids and paths travel, pixels do not)::

    runs of a video's windows --Reshuffle--> ProcessWindowFn --(shard, item | counts)--+
    validation rejects ---------------(shard, reject)-----------------------------------+
    planned counters -------------------------------------------------------------------+
        --> WriteShards (shards and their receipts, then dataset_info.json)

A resumed run (``prepared.progress`` with kept shards) plans every window but processes only
those of shards it does not keep.

``build_propagate(pipeline, config, prepared)`` adds the graph to a pipeline (for tests and
embedding); ``run(config, beam_args, prepared)`` launches it with the given Beam options (any
runner). What the launcher decides first (annotations read and validated once, windows, shard
count) is :func:`dptrack_pipeline.propagate.launch.prepare`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from dptrack_pipeline.beam import propagate as steps
from dptrack_pipeline.beam.common import WriteShards
from dptrack_pipeline.propagate.config import PropagateConfig
from dptrack_pipeline.propagate.launch import PreparedRun, prepare
from dptrack_pipeline.rejects import reject_row
from dptrack_pipeline.shards import shard_for_key

LOG = logging.getLogger(__name__)


def build_propagate(
    pipeline: beam.Pipeline, config: PropagateConfig, prepared: PreparedRun | None = None
) -> beam.PCollection:
    """Add the ``run`` graph to ``pipeline``; returns the PCollection of the manifest path."""
    prepared = prepared or prepare(config)
    plan, num_shards, progress = prepared.plan, prepared.num_shards, prepared.progress
    kept = set(progress.done) if progress is not None else set()
    tasks = [t for t in plan.tasks if shard_for_key(t.window.video_id, num_shards) not in kept]
    writer = steps.InstanceShardWriter(
        config,
        num_shards,
        prepared.estimator_params,
        {"estimator_provenance": prepared.estimator_provenance},
    )
    # The validation rejects and the shard placeholders ride in the same Create as the windows
    # (one Ready element), so the GroupByKey reads ProcessWindows' output without a Flatten.
    ready = [
        (shard_for_key(r.video_id, num_shards), (steps.REJECT, reject_row(**dataclasses.asdict(r))))
        for r in plan.rejects
    ]
    ready += WriteShards.placeholders(num_shards, progress)
    processed = (
        pipeline
        | "VideoTasks"
        >> beam.Create([*steps.group_windows(tasks), steps.Ready(ready)], reshuffle=False)
        | "Distribute" >> beam.Reshuffle()
        | "ProcessWindows"
        >> beam.ParDo(steps.ProcessWindowFn(config, num_shards, len(tasks), progress))
    )
    planned = pipeline | "PlannedCounters" >> beam.Create([plan.counters], reshuffle=False)
    return (processed, planned) | "WriteShards" >> WriteShards(writer, progress, placeholders=False)


def run(
    config: PropagateConfig, beam_args: Sequence[str] = (), prepared: PreparedRun | None = None
) -> str:
    """Run the pipeline with Beam options ``beam_args`` (DirectRunner unless told otherwise).

    Args:
        config: the job.
        beam_args: options for Beam's ``PipelineOptions``.
        prepared: the launcher's plan, when already made (the CLI makes it once, to check the
            inputs before anything is written).

    Returns:
        The output folder.
    """
    prepared = prepared or prepare(config)
    counters = prepared.plan.counters
    LOG.info(
        "planned %d windows: %d frames to decode, %d flows, %d instances in, %d shards",
        counters["windows"],
        counters["frames_planned"],
        counters["flows_planned"],
        counters["instances_in"],
        prepared.num_shards,
    )
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        build_propagate(pipeline, config, prepared)
    return config.out
