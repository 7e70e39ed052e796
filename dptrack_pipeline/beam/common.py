"""What both jobs' Beam graphs share: the flow worker, exact counters, and the shard-writing tail.

* :class:`FlowWorkerFn` is the base of every DoFn that decodes frames and estimates flow. It loads
  the estimator once per worker thread (``setup``), keeps video files open between elements
  (:class:`~dptrack_pipeline.frames.VideoReaders`), and owns a one-thread helper on which each
  source's labels are moved and its HDF5 chunks filtered and deflated while the estimator
  computes the next flows (OpenCV's estimators release the GIL, so that work overlaps the flow
  computation instead of adding to it; :func:`~dptrack_pipeline.schedule.overlap_steps`).
  A GPU network is loaded **once per worker process**, not once per DoFn instance: Beam runs one
  DoFn instance per worker thread, and the ``flownet2`` estimator keeps loaded models in a
  process-wide table (:mod:`dptrack_pipeline.flow.flownet2.estimator`), so every instance with the
  same options gets the same model and a lock that runs one batch at a time on the device. This is
  what Beam's ``RunInference`` does with ``Shared`` handles; it lives in the estimator rather than
  in Beam so direct (non-Beam) use shares the same way.
* **Counters travel as data**, not as Beam metrics: metrics are best-effort on some runners, and
  the manifest must hold exact numbers on all of them. A worker's counters are an item of the
  shard its outputs go to (``(shard, ShardCounts)``), so each shard knows its own counts; counters
  of no shard (the launcher's plan, video planning) are dicts tagged :data:`COUNTERS_TAG`. Both
  are summed with :class:`SumCounters`.
* :class:`WriteShards` is the one tail of both graphs: ``(shard, item)`` elements plus one
  placeholder per shard (so empty shards exist) are grouped by shard, each shard is written by the
  job's :class:`ShardWriter` (rows sorted inside the shard, files written atomically) and, with a
  :class:`~dptrack_pipeline.shards.progress.Progress`, gets its receipt; the counters are summed,
  and ``dataset_info.json`` is written once, last, from every shard's file entries, after which
  the in-progress marker is removed. Shards a resumed job keeps are not written again: their
  items are dropped and their receipts stand in for them. Which shard an element goes to is the
  job's choice (a salted hash of a stable key, :func:`~dptrack_pipeline.shards.shard_for_key`),
  made where the element is produced.
"""

from __future__ import annotations

import abc
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.frames import VideoReaders
from dptrack_pipeline.shards import build_dataset_info, counter_problems, write_dataset_info
from dptrack_pipeline.shards.counters import KIND_RUN
from dptrack_pipeline.shards.manifest import folder_kind
from dptrack_pipeline.shards.parts import PartStore
from dptrack_pipeline.shards.progress import Progress, clear_progress, write_receipt

COUNTERS_TAG = "counters"
LOG = logging.getLogger(__name__)


class FlowWorkerFn(beam.DoFn):
    """What a DoFn that decodes frames and estimates flow holds per worker thread: the estimator
    (loaded in ``setup``), open video files (:class:`VideoReaders`), a one-thread packer and an
    optional progress bar. ``config`` needs ``estimator``, ``estimator_options`` and
    ``progress``; subclasses write ``process``."""

    def __init__(
        self, config: Any, unit: str, total: int | None = None, progress: Progress | None = None
    ):
        self._config = config
        self._unit = unit
        self._total = total
        self._show_bar = True
        self._estimator = None
        self._readers = None
        self._packer = None
        self._bar = None
        self._parts = PartStore(config.out, progress.run_key) if progress is not None else None

    def checkpointed(self, key: str, compute: Callable[[], Iterable[Any]]) -> list[Any]:
        """The outputs of element ``key``: saved ones when a part is there (a resumed job),
        else ``compute()``'s, saved as a part (:mod:`dptrack_pipeline.shards.parts`)."""
        outputs = self.saved_part(key)
        if outputs is None:
            outputs = list(compute())
            self.save_part(key, outputs)
        return outputs

    def saved_part(self, key: str) -> list[Any] | None:
        """The outputs a resumed job saved for ``key``; ``None`` when there are none, or when
        the job keeps no parts."""
        return self._parts.load(key) if self._parts is not None else None

    def save_part(self, key: str, outputs: list[Any]) -> None:
        """Save ``key``'s outputs for a resumed job (nothing when the job keeps no parts)."""
        if self._parts is not None:
            self._parts.save(key, outputs)

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


@dataclass(frozen=True)
class ShardCounts:
    """A worker's counters, as an item of the shard its outputs went to."""

    counters: dict[str, int]


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


class ShardWriter(abc.ABC):
    """How one job writes a shard and its manifest (picklable: it travels to the workers).

    Subclasses set :attr:`kind` and implement :meth:`write`; :meth:`manifest` records the job's
    configuration (any config with ``estimator``, ``fb_threshold``, ``max_offset``,
    ``crop_size``, ``out`` and ``to_dict()``) plus :meth:`job_fields`.

    Args:
        config: the job's configuration.
        num_shards: shards per file kind.
        estimator_params: the estimator's resolved parameters.
        extra: free-form manifest additions (estimator provenance, ...).
    """

    kind: str = KIND_RUN

    def __init__(self, config: Any, num_shards: int, estimator_params: dict, extra: dict):
        self.out: str = config.out
        self.num_shards = num_shards
        self.config = config
        self._estimator_params = estimator_params
        self._extra = extra

    @abc.abstractmethod
    def write(self, shard: int, items: list[Any]) -> tuple[list[dict], dict[str, int]]:
        """Write every file of shard ``shard`` from its items (any order); return the files'
        manifest entries and the counters of what was written."""

    def job_fields(self) -> dict[str, Any]:
        """Top-level manifest fields of this job's schema besides the shared ones."""
        return {}

    def fb_threshold(self) -> float:
        """The forward-backward threshold the manifest records, in pixels."""
        return float(self.config.fb_threshold)

    def manifest(self, files: list[dict], counters: dict[str, int]) -> dict:
        """``dataset_info.json`` from every file entry (sorted by name) and the summed counters."""
        c = self.config
        return build_dataset_info(
            kind=self.kind,
            files=files,
            counters=counters,
            estimator=c.estimator,
            estimator_params=self._estimator_params,
            fb_threshold=self.fb_threshold(),
            offsets=[k for d in range(1, c.max_offset + 1) for k in (-d, d)],
            crop_size=c.crop_size,
            num_shards=self.num_shards,
            config=c.to_dict(),
            extra=self._extra,
            **self.job_fields(),
        )


class _WriteShardFn(beam.DoFn):
    """``(shard, [items]) -> file entries``; the shard's counters (workers' and writer's)
    tagged. With a ``progress``, the shard's receipt is written after its files."""

    def __init__(self, writer: ShardWriter, progress: Progress | None):
        self._writer = writer
        self._progress = progress

    def process(self, element: tuple[int, Iterable[Any]]) -> Iterator[Any]:
        shard, items = element
        counts: Counter = Counter()
        rows = []
        for item in items:
            if isinstance(item, ShardCounts):
                counts.update(item.counters)
            elif item is not None:
                rows.append(item)
        files, written = self._writer.write(shard, rows)
        counts.update(written)
        counters = {k: int(v) for k, v in sorted(counts.items())}
        if self._progress is not None:
            w = self._writer
            write_receipt(w.out, self._progress.run_key, w.num_shards, shard, files, counters)
        yield from files
        yield beam.pvalue.TaggedOutput(COUNTERS_TAG, counters)


class _WriteManifestFn(beam.DoFn):
    """Write ``dataset_info.json`` once, from every file entry and the summed counters; then
    remove the in-progress marker and receipts (when the job keeps them)."""

    def __init__(self, writer: ShardWriter, progress: Progress | None):
        self._writer = writer
        self._progress = progress

    def process(self, _: Any, files: list[dict], counters: dict) -> Iterator[str]:
        kept = self._progress.done.values() if self._progress is not None else ()
        files = [*files, *(f for receipt in kept for f in receipt.files)]
        total = Counter(counters)
        for receipt in kept:
            total.update(receipt.counters)
        counters = {k: int(v) for k, v in sorted(total.items())}
        info = self._writer.manifest(sorted(files, key=lambda f: f["file"]), counters)
        for problem in counter_problems(info["counters"], folder_kind(info), info["totals"]):
            LOG.warning("counters do not add up: %s", problem)
        path = write_dataset_info(self._writer.out, info)
        if self._progress is not None:
            clear_progress(self._writer.out)
        yield path


class WriteShards(beam.PTransform):
    """``(items, counters) -> manifest path``: the shared tail of both jobs' graphs.

    Input: a pair, the ``(shard, item)`` elements to write (``ShardCounts`` among them) as one
    PCollection or a tuple of them, and a PCollection of the counter dicts of no shard. A tuple
    goes into the same ``Flatten`` as the shard placeholders, right before the ``GroupByKey``:
    each ``Flatten`` costs the in-process runner a pass over every item (on the benchmark run,
    0.3 s of 58 MB of packed chunks decoded and encoded again), so a job that can emit all its
    items from one ParDo does so, placeholders included (:meth:`placeholders`), and passes
    ``placeholders=False``. Every shard index ``0..num_shards - 1`` is
    written, empty or not, except those ``progress.done`` keeps; ``dataset_info.json`` is written
    after every shard, with all counters summed.
    """

    def __init__(
        self, writer: ShardWriter, progress: Progress | None = None, placeholders: bool = True
    ):
        super().__init__()
        self._writer = writer
        self._progress = progress
        self._placeholders = placeholders

    @staticmethod
    def placeholders(num_shards: int, progress: Progress | None = None) -> list[tuple[int, None]]:
        """The ``(shard, None)`` items that make every shard be written, empty or not (not those
        ``progress.done`` keeps). A job whose items come from one ParDo emits these there and
        builds ``WriteShards(..., placeholders=False)``: the ``GroupByKey`` then reads that
        ParDo's output directly, without a ``Flatten``, which this runner (FnApiRunner)
        materializes: one pass less over every item."""
        done = set(progress.done) if progress is not None else set()
        return [(i, None) for i in range(num_shards) if i not in done]

    def expand(
        self,
        inputs: tuple[beam.PCollection | tuple[beam.PCollection, ...], beam.PCollection],
    ) -> beam.PCollection:
        items, counters = inputs
        parts = list(items) if isinstance(items, (tuple, list)) else [items]
        pipeline = parts[0].pipeline
        done = set(self._progress.done) if self._progress is not None else set()
        if self._placeholders:
            parts.append(
                pipeline
                | "ShardPlaceholders"
                >> beam.Create(
                    self.placeholders(self._writer.num_shards, self._progress), reshuffle=False
                )
            )
        if done:
            parts = [
                part | f"SkipKeptShards{i}" >> beam.Filter(lambda e: e[0] not in done)
                for i, part in enumerate(parts)
            ]
        grouped = parts[0] if len(parts) == 1 else parts | "WithPlaceholders" >> beam.Flatten()
        written = (
            grouped
            | "ByShard" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(_WriteShardFn(self._writer, self._progress)).with_outputs(
                COUNTERS_TAG, main="files"
            )
        )
        total = (
            (counters, written[COUNTERS_TAG])
            | "AllCounters" >> beam.Flatten()
            | "SumCounters" >> beam.CombineGlobally(SumCounters())
        )
        files = written.files | "FileList" >> beam.combiners.ToList()
        return (
            pipeline
            | "Once" >> beam.Create([None], reshuffle=False)
            | "WriteManifest"
            >> beam.ParDo(
                _WriteManifestFn(self._writer, self._progress),
                files=beam.pvalue.AsSingleton(files),
                counters=beam.pvalue.AsSingleton(total),
            )
        )
