"""Beam pieces of the ``pairs`` job: thin wrappers over :mod:`dptrack_pipeline.pairs`.

* :class:`PlanVideoFn` runs :func:`~dptrack_pipeline.pairs.plan.plan_video` on a worker: it
  counts one video's frames (by decoding: the launcher never decodes), checks its people-file rows
  against them, and cuts its anchors into chunks.
* :class:`ProcessChunkFn` runs :func:`~dptrack_pipeline.pairs.worker.process_chunk`: frames are
  decoded where their flows are computed and only crop-sized arrays leave it. The worker's helper
  thread cuts each anchor's pairs and packs their HDF5 chunks while the next flows are estimated.
* :class:`PairShardWriter` is the job's :class:`~dptrack_pipeline.beam.common.ShardWriter`: one
  pairs Parquet, one dense HDF5 (each distinct crop once) and one rejects Parquet per shard, and
  the ``pairs`` manifest.

Elements are keyed by shard: ``shard_for_key("<video_id>#<chunk>")``
(:func:`~dptrack_pipeline.pairs.plan.chunk_shard`), so a long video's chunks spread over shards
and workers, and a short video (one chunk) keeps its crops in one shard where they are stored
once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import apache_beam as beam

from dptrack_pipeline.beam.common import COUNTERS_TAG, FlowWorkerFn, ShardCounts, ShardWriter
from dptrack_pipeline.pairs.config import PairsConfig
from dptrack_pipeline.pairs.people import PersonEntry
from dptrack_pipeline.pairs.plan import PairsChunk, plan_video
from dptrack_pipeline.pairs.videos import VideoSpec
from dptrack_pipeline.pairs.worker import (
    CropOutput,
    PairOutput,
    PairReject,
    process_chunk,
    settings_of,
)
from dptrack_pipeline.shards import write_rejects_shard
from dptrack_pipeline.shards.counters import KIND_PAIRS
from dptrack_pipeline.shards.hdf5_writer import CROPS, FLOWS, VALID, pack_chunk
from dptrack_pipeline.shards.pairs_writer import PairRecord, write_pairs_shard
from dptrack_pipeline.shards.progress import Progress

REJECTS_TAG = "rejects"

CROP = "crop"
PAIR = "pair"
REJECT = "reject"
PAIR_REJECT = "pair"
OTHER_REJECT = "other"
"""A reject item is ``("reject", row, PAIR_REJECT | OTHER_REJECT)``: only rejected pairs count
in ``pairs_rejected`` (rejected videos and people rows have their own counters)."""


class PlanVideoFn(beam.DoFn):
    """``(VideoSpec, entries | None) -> (shard, PairsChunk)``; rejects and counters tagged."""

    def __init__(self, config: PairsConfig, num_shards: int):
        self._config = config
        self._num_shards = num_shards

    def process(self, element: tuple[VideoSpec, tuple[PersonEntry, ...] | None]) -> Iterator[Any]:
        spec, entries = element
        for kind, payload in plan_video(spec, entries, self._config, self._num_shards):
            if kind == "chunk":
                yield payload
            elif kind == "reject":
                shard, row = payload
                yield beam.pvalue.TaggedOutput(REJECTS_TAG, (shard, (REJECT, row, OTHER_REJECT)))
            else:
                yield beam.pvalue.TaggedOutput(COUNTERS_TAG, payload)


def _pack_pair(record: PairOutput, crop_size: int) -> PairRecord:
    return PairRecord(
        record.row,
        pack_chunk(FLOWS, record.flow, crop_size, record.valid),
        pack_chunk(VALID, record.valid, crop_size),
    )


class ProcessChunkFn(FlowWorkerFn):
    """``(shard, PairsChunk) -> (shard, item)``. Items are ``("crop", key, packed)``,
    ``("pair", PairRecord)``, ``("reject", row, "pair")`` and one ``ShardCounts``."""

    def __init__(self, config: PairsConfig, progress: Progress | None = None):
        super().__init__(config, "pair", None, progress)
        self._settings = settings_of(config)

    def process(self, element: tuple[int, PairsChunk]) -> Iterator[Any]:
        shard, chunk = element
        key = f"{chunk.video.video_id}#{chunk.anchors[0] if chunk.anchors else -1}"
        yield from self.checkpointed(key, partial(self._process, shard, chunk))

    def _process(self, shard: int, chunk: PairsChunk) -> Iterator[Any]:
        counters: Counter = Counter()
        outputs = process_chunk(
            chunk, self._estimator, self._settings, counters, self._readers, self._packer,
            self._finish,
        )  # fmt: skip
        for item in outputs:
            if item[0] == PAIR and self._bar is not None:
                self._bar.update(1)
            yield shard, item
        counters["chunks_done"] += 1
        yield shard, ShardCounts(dict(counters))

    def _finish(self, out: CropOutput | PairOutput | PairReject) -> tuple[Any, ...]:
        """An output as its shard item, its arrays packed into HDF5 chunks here, on the helper
        thread of the parallel stage."""
        size = self._config.crop_size
        if isinstance(out, CropOutput):
            return CROP, out.key, pack_chunk(CROPS, out.crop, size)
        if isinstance(out, PairOutput):
            return PAIR, _pack_pair(out, size)
        assert isinstance(out, PairReject)
        return REJECT, out.row, PAIR_REJECT


class PairShardWriter(ShardWriter):
    """Writes a ``pairs`` shard from crop, pair and reject items; only the crops the pairs
    reference are stored, each once."""

    kind = KIND_PAIRS

    def write(self, shard: int, items: list[Any]) -> tuple[list[dict], dict[str, int]]:
        crops: dict[Any, Any] = {}
        pairs: list[PairRecord] = []
        rejects: list[dict] = []
        pair_rejects = 0
        for item in items:
            if item[0] == CROP:
                crops.setdefault(item[1], item[2])
            elif item[0] == PAIR:
                pairs.append(item[1])
            else:
                rejects.append(item[1])
                pair_rejects += item[2] == PAIR_REJECT
        size, n = self.config.crop_size, self.num_shards
        files = write_pairs_shard(self.out, shard, n, pairs, crops, size)
        files.append(write_rejects_shard(self.out, shard, n, rejects))
        counters = {
            "pairs_written": len(pairs),
            "pairs_rejected": pair_rejects,
            "crops_written": int(files[0]["rows"]),
        }
        return files, counters

    def job_fields(self) -> dict[str, Any]:
        return {"mode": self.config.mode, "stride": self.config.stride}
