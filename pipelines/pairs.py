"""The ``pairs`` pipeline: unlabelled video -> person-cropped flow pairs ``T -> T±1..K`` in
Parquet/HDF5 shards, for Siamese equivariance training (Slim DensePose, Sec. 5).

Graph (every arrow a PCollection; ids and paths travel, pixels only as packed crop-sized arrays)::

    videos (+ their people rows) --Reshuffle--> PlanVideoFn --(shard, chunk)--Reshuffle-->
        ProcessChunkFn --(shard, crop | pair | reject)--+
    plan rejects (unreadable videos, bad people rows) ---+--> WriteShards (shards, then
    people-file rejects found at launch ----------------+     dataset_info.json)
    launch and plan counters ---------------------------+

Frames are counted on the workers (``PlanVideoFn``), not by the launcher, which only lists the
inputs and reads the people file (:func:`dptrack_pipeline.pairs.launch.prepare`).
``build_pairs(pipeline, config, prepared)`` adds the graph to a pipeline (tests, embedding);
``run(config, beam_args, prepared)`` runs it with any Beam options. A resumed job
(``prepared.progress`` with kept shards) plans every video again but processes only the chunks
of shards it does not keep.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from dptrack_pipeline.beam import pairs as steps
from dptrack_pipeline.beam.common import COUNTERS_TAG, WriteShards
from dptrack_pipeline.pairs.config import PairsConfig
from dptrack_pipeline.pairs.launch import PreparedPairs, prepare
from dptrack_pipeline.shards import shard_for_key

LOG = logging.getLogger(__name__)


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
        >> beam.ParDo(steps.PlanVideoFn(config, n)).with_outputs(
            COUNTERS_TAG, steps.REJECTS_TAG, main="chunks"
        )
    )
    chunks = planned.chunks
    progress = prepared.progress
    if progress is not None and progress.done:
        kept = set(progress.done)
        chunks = chunks | "SkipKeptChunks" >> beam.Filter(lambda e: e[0] not in kept)
    processed = (
        chunks
        | "DistributeChunks" >> beam.Reshuffle()
        | "ProcessChunks" >> beam.ParDo(steps.ProcessChunkFn(config, progress))
    )
    launch_rejects = pipeline | "LaunchRejects" >> beam.Create(
        [
            (shard_for_key(r["video_id"], n), (steps.REJECT, r, steps.OTHER_REJECT))
            for r in prepared.launch_rejects
        ],
        reshuffle=False,
    )
    launch_counters = pipeline | "LaunchCounters" >> beam.Create(
        [prepared.counters], reshuffle=False
    )
    items = (processed, planned[steps.REJECTS_TAG], launch_rejects)
    counters = (planned[COUNTERS_TAG], launch_counters) | "PlanCounters" >> beam.Flatten()
    extra = {
        "estimator_provenance": prepared.estimator_provenance,
        "video_ids": sorted(v.video_id for v in prepared.videos),
    }
    writer = steps.PairShardWriter(config, n, prepared.estimator_params, extra)
    return (items, counters) | "WriteShards" >> WriteShards(writer, progress)


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
