"""Beam pieces of the ``run`` job: thin wrappers over :mod:`dptrack_pipeline.propagate`.

* :class:`ProcessWindowFn` runs :func:`~dptrack_pipeline.propagate.worker.process_windows` on
  the window tasks of an element. Frames are decoded here, where their flows are computed; only
  per-instance crops and crop-sized flows leave it, packed into their HDF5 chunks on the worker's
  helper thread (:class:`~dptrack_pipeline.beam.common.FlowWorkerFn`), which also propagates each
  source while the next source's flows are computed. Each step's flows go to the
  estimator as one batch (pairs of one video), which it splits into forward passes of its
  ``preferred_batch_size``.
* :class:`InstanceShardWriter` is the job's :class:`~dptrack_pipeline.beam.common.ShardWriter`:
  one instances Parquet, one dense HDF5 and one rejects Parquet per shard, and the ``run``
  manifest.

Rows go to shards by a salted hash of the video id, so a video's sources and propagations share a
shard.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from dptrack_pipeline.beam.common import FlowWorkerFn, ShardCounts, ShardWriter
from dptrack_pipeline.propagate.config import PropagateConfig
from dptrack_pipeline.propagate.plan import WindowTask
from dptrack_pipeline.propagate.worker import (
    InstanceOutput,
    RejectOutput,
    WindowResult,
    WindowSettings,
    process_windows,
)
from dptrack_pipeline.schedule import StepOverlap
from dptrack_pipeline.settings import worker_settings
from dptrack_pipeline.shards import (
    ShardRecord,
    pack_record,
    shard_for_key,
    write_instance_shard,
    write_rejects_shard,
)
from dptrack_pipeline.shards.progress import Progress

LOG = logging.getLogger(__name__)

INSTANCE = "instance"
REJECT = "reject"


WINDOWS_PER_ELEMENT = 8
"""Consecutive windows of one video per Beam element: a worker reads them front to back from one
open video file (one seek per element instead of one per window), and a long video still splits
into several elements that run in parallel."""


def group_windows(tasks: Sequence[WindowTask], size: int | None = None) -> list[list[WindowTask]]:
    """Runs of at most ``size`` consecutive windows of the same video, in plan order: the
    elements :class:`ProcessWindowFn` takes.

    A video's windows are cut into as few runs as ``size`` allows, of sizes that differ by at
    most one (26 windows: 7, 7, 6, 6 rather than 8, 8, 8, 2), so workers that split the elements
    get about the same work. ``size`` defaults to :data:`WINDOWS_PER_ELEMENT`.
    """
    size = size or WINDOWS_PER_ELEMENT
    runs: list[list[WindowTask]] = []
    for task in tasks:
        last = runs[-1] if runs else None
        if last and last[-1].window.video_id == task.window.video_id:
            last.append(task)
        else:
            runs.append([task])
    groups: list[list[WindowTask]] = []
    for run in runs:
        count = -(-len(run) // size)
        base, extra = divmod(len(run), count)
        start = 0
        for i in range(count):
            end = start + base + (1 if i < extra else 0)
            groups.append(run[start:end])
            start = end
    return groups


@dataclass(frozen=True)
class Ready:
    """An element of items already made (validation rejects, shard placeholders), which
    :class:`ProcessWindowFn` emits as they are."""

    items: list[Any]


class ProcessWindowFn(FlowWorkerFn):
    """``[WindowTask] -> (shard, ("instance", ShardRecord) | ("reject", row) | ShardCounts)``;
    a :class:`Ready` element's items are emitted as they are.

    An element is the windows of one video, in order: the worker keeps the video file open
    between them and so decodes a video file front to back once instead of seeking for every
    window. The last window of an element is propagated on the helper while the next element's
    first flows are computed, so its outputs come out with the next element's, or from
    ``finish_bundle`` for the bundle's last element (saved as a part when they do).
    """

    def __init__(
        self,
        config: PropagateConfig,
        num_shards: int,
        total_windows: int = 0,
        progress: Progress | None = None,
    ):
        super().__init__(config, "window", total_windows or None, progress)
        self._num_shards = num_shards
        self._show_bar = bool(total_windows)
        self._settings = worker_settings(WindowSettings, config)

    def start_bundle(self) -> None:
        self._carry = StepOverlap(self._packer, Counter())
        self._where: tuple[Any, Any] | None = None

    def process(
        self,
        tasks: Sequence[WindowTask] | Ready,
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        if isinstance(tasks, Ready):
            yield from tasks.items
            return
        self._where = (window, timestamp)
        todo = []
        for task in tasks:
            saved = self.saved_part(task.window.key)
            if saved is None:
                todo.append(task)
                continue
            yield from saved
            self._advance()
        if not todo:
            return
        try:
            results = process_windows(
                todo,
                self._estimator,
                self._settings,
                self._readers,
                finish=self._finish,
                carry=self._carry,
            )
            for result in results:
                yield from self._window_done(result)
        except BaseException:
            self._carry.discard()
            raise

    def finish_bundle(self) -> Iterator[WindowedValue]:
        """The bundle's last window, whose propagation was still on the helper when its element
        ended (see ``carry`` in :func:`process_windows`)."""
        if self._where is None:
            return
        window, timestamp = self._where
        for result in self._carry.flush():
            for out in self._window_done(result):
                yield WindowedValue(out, timestamp, (window,))

    def _window_done(self, result: WindowResult) -> list[Any]:
        window = result.task.window
        result.counters["windows_done"] += 1
        counts = ShardCounts(dict(result.counters))
        outputs = [*result.outputs, (shard_for_key(window.video_id, self._num_shards), counts)]
        self.save_part(window.key, outputs)
        LOG.debug("window %s done: %s", window.key, dict(result.counters))
        self._advance()
        return outputs

    def _advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _finish(self, out: InstanceOutput | RejectOutput) -> tuple[int, tuple[str, Any]]:
        """An output as the item of its shard. An instance's arrays are filtered and compressed
        here, on the helper thread of the parallel stage: half the bytes cross the shuffle and
        the shard writer only copies them."""
        shard = shard_for_key(out.video_id, self._num_shards)
        if isinstance(out, InstanceOutput):
            return shard, (INSTANCE, pack_record(out.record, self._config.crop_size))
        assert isinstance(out, RejectOutput)
        return shard, (REJECT, out.row)


class InstanceShardWriter(ShardWriter):
    """Writes a ``run`` shard from ``("instance", ShardRecord)`` and ``("reject", row)`` items:
    one instances Parquet, one dense HDF5, one rejects Parquet."""

    def write(self, shard: int, items: list[Any]) -> tuple[list[dict], dict[str, int]]:
        records: list[ShardRecord] = []
        rejects: list[dict] = []
        for kind, payload in items:
            (records if kind == INSTANCE else rejects).append(payload)
        size = self.config.crop_size
        files = write_instance_shard(self.out, shard, self.num_shards, records, size)
        files.append(write_rejects_shard(self.out, shard, self.num_shards, rejects))
        return files, {"instances_written": len(records), "instances_rejected": len(rejects)}

    def fb_threshold(self) -> float:
        return float(self.config.checks.fb_threshold)

    def job_fields(self) -> dict[str, Any]:
        return {"checks": {"preset": self.config.preset, **self.config.checks.to_dict()}}
