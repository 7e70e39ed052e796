"""Beam DoFns of the ``run`` pipeline: thin wrappers over the library, no maths here.

* :class:`ProcessWindowFn` loads the flow estimator once per worker (``setup``) and runs
  :func:`dptrack_pipeline.window.process_window` on each window task. Frames are decoded here,
  where their flows are computed; only per-instance crops and crop-sized flows leave it. Each
  step's flows go to the estimator as one batch (pairs of one video), which it splits into
  forward passes of its ``preferred_batch_size``.
* A GPU network is loaded **once per worker process**, not once per DoFn instance: Beam runs
  one DoFn instance per worker thread, and the ``flownet2`` estimator keeps loaded models in a
  process-wide table (:mod:`dptrack_pipeline.flow.flownet2.estimator`), so every instance with
  the same options gets the same model and a lock that runs one batch at a time on the device.
  This is what Beam's ``RunInference`` does with ``Shared`` handles; it lives in the estimator
  rather than in Beam so direct (non-Beam) use shares the same way.
* :class:`WriteShardFn` writes one shard (instances Parquet, dense HDF5, rejects Parquet).
* :class:`WriteManifestFn` writes ``dataset_info.json`` once every shard is written.

Counters travel as data (dicts summed with :class:`SumCounters`), not as Beam metrics: metrics
are best-effort on some runners, and the manifest must hold exact numbers on all of them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam

from dptrack_pipeline.config import PropagateConfig
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.frames.sources import VideoReaders
from dptrack_pipeline.shards import (
    ShardRecord,
    build_dataset_info,
    pack_record,
    shard_for_key,
    write_dataset_info,
    write_instance_shard,
    write_rejects_shard,
)
from dptrack_pipeline.window import (
    InstanceOutput,
    RejectOutput,
    WindowSettings,
    WindowTask,
    process_window,
)

COUNTERS_TAG = "counters"
LOG = logging.getLogger(__name__)


class FlowWorkerFn(beam.DoFn):
    """What a DoFn that decodes frames and estimates flow holds per worker thread: the estimator
    (loaded in ``setup``), open video files (:class:`VideoReaders`), a one-thread packer and an
    optional progress bar. ``config`` needs ``estimator``, ``estimator_options`` and
    ``progress``; subclasses write ``process``."""

    def __init__(self, config: Any, unit: str, total: int | None = None):
        self._config = config
        self._unit = unit
        self._total = total
        self._show_bar = True
        self._estimator = None
        self._readers = None
        self._packer = None
        self._bar = None

    def setup(self) -> None:
        self._estimator = create_estimator(
            self._config.estimator, **dict(self._config.estimator_options)
        )
        self._estimator.setup()
        self._readers = VideoReaders()
        self._packer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dptrack-pack")
        if self._config.progress and self._show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, desc=f"{self._unit}s", unit=self._unit, leave=False)

    def teardown(self) -> None:
        if self._packer is not None:
            self._packer.shutdown(wait=True)
        if self._readers is not None:
            self._readers.close()
        if self._bar is not None:
            self._bar.close()


class ProcessWindowFn(FlowWorkerFn):
    """``[WindowTask] -> (shard, ("instance", ShardRecord) | ("reject", row))``; counters tagged.

    An element is the windows of one video, in order: the worker keeps the video file open
    between them (:class:`~dptrack_pipeline.frames.sources.VideoReaders`) and so decodes a video
    file front to back once instead of seeking for every window.

    Records are packed (filtered and deflated, :func:`~dptrack_pipeline.shards.pack_record`) on a
    helper thread while the estimator computes the next flows: zlib and OpenCV both release the
    GIL, so the compression overlaps the flow computation instead of adding to it.
    """

    def __init__(self, config: PropagateConfig, num_shards: int, total_windows: int = 0):
        super().__init__(config, "window", total_windows or None)
        self._num_shards = num_shards
        self._show_bar = bool(total_windows)

    def process(self, tasks: Sequence[WindowTask]) -> Iterator[Any]:
        for task in tasks:
            yield from self._process_window(task)

    def _process_window(self, task: WindowTask) -> Iterator[Any]:
        settings = WindowSettings(
            frames_root=self._config.frames_root,
            max_offset=self._config.max_offset,
            fb_threshold=self._config.fb_threshold,
            crop_size=self._config.crop_size,
            estimator_name=self._config.estimator,
        )
        counters: Counter = Counter()
        pending: list[tuple[int, str, Any]] = []
        for out in process_window(task, self._estimator, settings, counters, self._readers):
            shard = shard_for_key(out.video_id, self._num_shards)
            if isinstance(out, InstanceOutput):
                # Filter and compress the arrays here, in the parallel stage: half the bytes
                # cross the shuffle and the shard writer only copies them.
                job = self._packer.submit(pack_record, out.record, self._config.crop_size)
                pending.append((shard, "instance", job))
            else:
                assert isinstance(out, RejectOutput)
                pending.append((shard, "reject", out.row))
        for shard, kind, payload in pending:
            yield shard, (kind, payload.result() if kind == "instance" else payload)
        counters["windows_done"] += 1
        yield beam.pvalue.TaggedOutput(COUNTERS_TAG, dict(counters))
        if self._bar is not None:
            self._bar.update(1)
        LOG.debug("window %s done: %s", task.window.key, dict(counters))


class WriteShardFn(beam.DoFn):
    """``(shard, [items]) -> file info dicts``; counters of written/rejected rows tagged."""

    def __init__(self, out: str, num_shards: int, crop_size: int):
        self._out = out
        self._num_shards = num_shards
        self._crop_size = crop_size

    def process(self, element: tuple[int, Iterable[Any]]) -> Iterator[Any]:
        shard, items = element
        records: list[ShardRecord] = []
        rejects: list[dict] = []
        for item in items:
            if item is None:  # the placeholder that makes empty shards exist
                continue
            kind, payload = item
            (records if kind == "instance" else rejects).append(payload)
        infos = write_instance_shard(self._out, shard, self._num_shards, records, self._crop_size)
        infos.append(write_rejects_shard(self._out, shard, self._num_shards, rejects))
        yield from infos
        yield beam.pvalue.TaggedOutput(
            COUNTERS_TAG,
            {"instances_written": len(records), "instances_rejected": len(rejects)},
        )


class SumCounters(beam.CombineFn):
    """Sum dicts of integer counters key by key."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, acc: Counter, value: dict) -> Counter:
        acc.update(value)
        return acc

    def merge_accumulators(self, accs: Iterable[Counter]) -> Counter:
        out: Counter = Counter()
        for acc in accs:
            out.update(acc)
        return out

    def extract_output(self, acc: Counter) -> dict:
        return {k: int(v) for k, v in sorted(acc.items())}


class WriteManifestFn(beam.DoFn):
    """Write ``dataset_info.json`` from every shard's file info and the summed counters."""

    def __init__(
        self,
        config: PropagateConfig,
        num_shards: int,
        estimator_params: dict,
        extra: dict | None = None,
    ):
        self._config = config
        self._num_shards = num_shards
        self._estimator_params = estimator_params
        self._extra = extra or {}

    def process(self, _: Any, files: list[dict], counters: dict) -> Iterator[str]:
        info = build_dataset_info(
            files=sorted(files, key=lambda f: f["file"]),
            counters=counters,
            estimator=self._config.estimator,
            estimator_params=self._estimator_params,
            extra=self._extra,
            fb_threshold=self._config.fb_threshold,
            offsets=[k for d in range(1, self._config.max_offset + 1) for k in (-d, d)],
            crop_size=self._config.crop_size,
            num_shards=self._num_shards,
            config=self._config.to_dict(),
        )
        yield write_dataset_info(self._config.out, info)
