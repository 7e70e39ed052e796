"""Beam DoFns of the ``pairs`` pipeline: thin wrappers over :mod:`dptrack_pipeline.pairs`.

* :class:`PlanVideoFn` counts one video's frames (by decoding, on a worker: the launcher never
  decodes), checks its people-file rows against them, and cuts its anchors into chunks.
* :class:`ProcessChunkFn` loads the flow estimator once per worker (``setup``) and runs
  :func:`~dptrack_pipeline.pairs.compute.process_chunk`: frames are decoded where their flows are
  computed and only crop-sized arrays leave it, filtered and deflated
  (:func:`~dptrack_pipeline.shards.hdf5_writer.pack_chunk`) on a helper thread while the next
  flows are estimated.
* :class:`WritePairShardFn` writes one shard (pairs Parquet, dense HDF5, rejects Parquet).
* :class:`WritePairsManifestFn` writes ``dataset_info.json`` once every shard is written.

Elements are keyed by shard: ``shard_for_key("<video_id>#<chunk>")``, so a long video's chunks
spread over shards and workers, and a short video (one chunk) keeps its crops in one shard where
they are stored once. Counters travel as data and are summed with
:class:`~dptrack_pipeline.beam.dofns.SumCounters`, so the manifest holds exact numbers on every
runner.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam

from dptrack_pipeline.beam.dofns import COUNTERS_TAG, FlowWorkerFn
from dptrack_pipeline.config import PairsConfig
from dptrack_pipeline.frames.sources import FrameDecodeError
from dptrack_pipeline.pairs.compute import (
    STAGE_DECODE,
    STAGE_PEOPLE,
    CropOutput,
    PairOutput,
    PairReject,
    PairsChunk,
    PairSettings,
    process_chunk,
    reject_row,
)
from dptrack_pipeline.pairs.people import PersonEntry, check_entries, people_for_frames
from dptrack_pipeline.pairs.plan import anchor_frames, chunk_anchors, flows_needed
from dptrack_pipeline.pairs.videos import KIND_FOLDER, VideoSpec, count_frames
from dptrack_pipeline.shards import shard_for_key, write_dataset_info, write_rejects_shard
from dptrack_pipeline.shards.hdf5_writer import CROPS, FLOWS, VALID, pack_chunk
from dptrack_pipeline.shards.manifest import build_pairs_info
from dptrack_pipeline.shards.pairs_writer import PairRecord, write_pairs_shard

REJECTS_TAG = "rejects"
LOG = logging.getLogger(__name__)


def chunk_shard(video_id: str, chunk_index: int, num_shards: int) -> int:
    """The shard of a video's ``chunk_index``-th chunk."""
    return shard_for_key(f"{video_id}#{chunk_index}", num_shards)


def settings_of(config: PairsConfig) -> PairSettings:
    return PairSettings(
        max_offset=config.max_offset,
        mode=config.mode,
        fb_threshold=config.fb_threshold,
        crop_size=config.crop_size,
        min_valid=config.min_valid,
        context=config.context,
        estimator_name=config.estimator,
    )


def plan_video(
    spec: VideoSpec, entries: Sequence[PersonEntry] | None, config: PairsConfig, num_shards: int
) -> Iterator[tuple[str, Any]]:
    """Plan one video: yields ``("chunk", (shard, PairsChunk))``, ``("reject", (shard, row))``
    and one ``("counters", dict)``. ``entries`` is ``None`` without a people file."""
    counters: Counter = Counter()
    shard0 = chunk_shard(spec.video_id, 0, num_shards)
    try:
        frames = count_frames(spec)
    except FrameDecodeError as err:
        counters["videos_rejected"] += 1
        yield "reject", (shard0, reject_row(spec.video_id, err.reason, str(err), STAGE_DECODE))
        for e in entries or ():
            counters["people_rejected"] += 1
            yield (
                "reject",
                (
                    shard0,
                    reject_row(
                        spec.video_id,
                        "people_video_unreadable",
                        f"video {spec.path} could not be read ({err.reason})",
                        STAGE_PEOPLE,
                        e.frame,
                        e.person,
                    ),
                ),
            )
        yield "counters", dict(counters)
        return
    n, big_k = frames.num_frames, config.max_offset
    counters["videos_planned"] += 1
    counters["frames_in_videos"] += n
    anchors = anchor_frames(n, config.stride)
    people = None
    targets: dict[tuple[int, int], PersonEntry] = {}
    if entries is not None:
        good, bad = check_entries(entries, n, frames.width, frames.height)
        counters["people_used"] += len(good)
        for e, reason, detail in bad:
            counters["people_rejected"] += 1
            yield (
                "reject",
                (
                    shard0,
                    reject_row(spec.video_id, reason, detail, STAGE_PEOPLE, e.frame, e.person),
                ),
            )
        people = people_for_frames(good, anchors, config.people_reach)
        targets = {(e.frame, e.person): e for e in good}
    planned_anchors = anchors if people is None else [a for a in anchors if people.get(a)]
    counters["flows_needed"] += len(flows_needed(planned_anchors, n, big_k, config.mode))
    for index, run in enumerate(chunk_anchors(anchors, config.chunk_anchors)):
        first, last = max(0, run[0] - big_k), min(n - 1, run[-1] + big_k)
        chunk = PairsChunk(
            video=spec,
            num_frames=n,
            anchors=run,
            people=None if people is None else {a: people[a] for a in run if a in people},
            targets={k: e for k, e in targets.items() if first <= k[0] <= last},
            frame_files=frames.frame_files[first : last + 1] if spec.kind == KIND_FOLDER else (),
            files_start=first if spec.kind == KIND_FOLDER else 0,
        )
        planned = chunk.planned_pairs(big_k)
        if planned == 0:
            continue
        counters["pairs_planned"] += planned
        counters["chunks"] += 1
        yield "chunk", (chunk_shard(spec.video_id, index, num_shards), chunk)
    yield "counters", dict(counters)


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
                yield beam.pvalue.TaggedOutput(REJECTS_TAG, (shard, ("reject", row, "other")))
            else:
                yield beam.pvalue.TaggedOutput(COUNTERS_TAG, payload)


def _pack_pair(record: PairOutput, crop_size: int) -> PairRecord:
    return PairRecord(
        record.row,
        pack_chunk(FLOWS, record.flow, crop_size),
        pack_chunk(VALID, record.valid, crop_size),
    )


class ProcessChunkFn(FlowWorkerFn):
    """``(shard, PairsChunk) -> (shard, item)``; counters tagged. Items are
    ``("crop", key, packed)``, ``("pair", PairRecord)`` and ``("reject", row, "pair")``."""

    def __init__(self, config: PairsConfig):
        super().__init__(config, "pair")
        self._settings = settings_of(config)

    def process(self, element: tuple[int, PairsChunk]) -> Iterator[Any]:
        shard, chunk = element
        size = self._config.crop_size
        counters: Counter = Counter()
        pending: list[tuple[str, Any, Any]] = []
        for out in process_chunk(chunk, self._estimator, self._settings, counters, self._readers):
            if isinstance(out, CropOutput):
                job = self._packer.submit(pack_chunk, CROPS, out.crop, size)
                pending.append(("crop", out.key, job))
            elif isinstance(out, PairOutput):
                pending.append(("pair", None, self._packer.submit(_pack_pair, out, size)))
                if self._bar is not None:
                    self._bar.update(1)
            else:
                assert isinstance(out, PairReject)
                pending.append(("reject", out.row, None))
        for kind, key, job in pending:
            if kind == "crop":
                yield shard, ("crop", key, job.result())
            elif kind == "pair":
                yield shard, ("pair", job.result())
            else:
                yield shard, ("reject", key, "pair")
        counters["chunks_done"] += 1
        yield beam.pvalue.TaggedOutput(COUNTERS_TAG, dict(counters))


class WritePairShardFn(beam.DoFn):
    """``(shard, [items]) -> file info dicts``; counters tagged."""

    def __init__(self, out: str, num_shards: int, crop_size: int):
        self._out = out
        self._num_shards = num_shards
        self._crop_size = crop_size

    def process(self, element: tuple[int, Iterable[Any]]) -> Iterator[Any]:
        shard, items = element
        crops: dict[Any, Any] = {}
        pairs: list[PairRecord] = []
        rejects: list[dict] = []
        pair_rejects = 0
        for item in items:
            if item is None:  # the placeholder that makes empty shards exist
                continue
            if item[0] == "crop":
                crops.setdefault(item[1], item[2])
            elif item[0] == "pair":
                pairs.append(item[1])
            else:
                rejects.append(item[1])
                pair_rejects += item[2] == "pair"
        # write_pairs_shard stores only the crops the pairs reference.
        infos = write_pairs_shard(self._out, shard, self._num_shards, pairs, crops, self._crop_size)
        infos.append(write_rejects_shard(self._out, shard, self._num_shards, rejects))
        yield from infos
        yield beam.pvalue.TaggedOutput(
            COUNTERS_TAG,
            {
                "pairs_written": len(pairs),
                "pairs_rejected": pair_rejects,
                "crops_written": int(infos[0]["rows"]),
            },
        )


class WritePairsManifestFn(beam.DoFn):
    """Write ``dataset_info.json`` from every shard's file info and the summed counters."""

    def __init__(self, config: PairsConfig, num_shards: int, estimator_params: dict, extra: dict):
        self._config = config
        self._num_shards = num_shards
        self._estimator_params = estimator_params
        self._extra = extra

    def process(self, _: Any, files: list[dict], counters: dict) -> Iterator[str]:
        c = self._config
        info = build_pairs_info(
            files=sorted(files, key=lambda f: f["file"]),
            counters=counters,
            estimator=c.estimator,
            estimator_params=self._estimator_params,
            fb_threshold=c.fb_threshold,
            offsets=[k for d in range(1, c.max_offset + 1) for k in (-d, d)],
            crop_size=c.crop_size,
            num_shards=self._num_shards,
            mode=c.mode,
            stride=c.stride,
            config=c.to_dict(),
            extra=self._extra,
        )
        yield write_dataset_info(c.out, info)
