"""Stream dptrack shards into PyTorch: two ``IterableDataset`` classes any training job can import.

:class:`ShardDataset` reads ``dptrack-build run`` folders, one sample per instance row;
:class:`PairDataset` reads ``dptrack-build pairs`` folders (unlabelled video), one sample per flow
pair. Both yield dicts with the same keys (:mod:`.samples` lists them, with shapes, dtypes and
coordinate conventions), batched by :func:`~.samples.collate`:

    >>> from torch.utils.data import DataLoader  # doctest: +SKIP
    >>> loader = DataLoader(ShardDataset(["shards/"]), batch_size=8, collate_fn=collate)

This module answers "how do the rows of some folders become an iterator of samples": it lists
the index shards (:mod:`.shard_index`), asks :mod:`.partition` which rows this consumer reads in
this epoch (files or rows split across ranks and DataLoader workers, without overlap or loss;
seeded shuffling; call :meth:`ShardDataset.set_epoch` each epoch), reads each Parquet file once
and builds the samples (:mod:`.samples`). A ``shuffle_buffer`` mixes samples across the files of
one worker.

**Label filters** (``label_filter``, a :class:`~.filters.LabelFilter`: points and rows whose
quality scores fail thresholds) apply to the rows this consumer was assigned, as they are read,
after ``include``: the split is computed on all the rows, so it stays a split of the same rows
and the consumers' kept rows are disjoint and together exactly the rows the filter keeps
(:mod:`.filters` says why). :meth:`ShardDataset.filter_stats` counts what was dropped.

**HDF5 is opened lazily in each worker** (h5py handles must not cross ``fork``): the dataset
object holds only paths and row counts, so it pickles small and is safe with any start method.

Names kept importable from here for existing callers: :func:`collate`, :func:`crop_coordinates`,
:func:`mask_on_crop`, :func:`list_shard_files`, :class:`ShardFile`, :data:`COLUMNS`,
:data:`PAIR_COLUMNS`, :data:`SPLITS`, :data:`DP_GRID`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import IterableDataset

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.reader import DenseReader
from dptrack_pipeline.train.filters import FilterStats, LabelFilter
from dptrack_pipeline.train.partition import assign, check_split, consumer_position
from dptrack_pipeline.train.samples import instance_sample, pair_sample
from dptrack_pipeline.train.shard_index import (
    COLUMNS,
    PAIR_COLUMNS,
    ShardFile,
    list_shard_files,
    read_index_file,
    require_columns,
)

__all__ = ["INCLUDE", "PairDataset", "ShardDataset"]

INCLUDE = ("all", "sources", "propagated")
SampleBuilder = Callable[[int, dict[str, Any]], dict[str, Any]]
"""``build(row, record) -> sample`` for the rows of one open shard file."""


class ShardDataset(IterableDataset):
    """Samples of one or more shard folders; see the module docstring for keys and splitting.

    Subclasses read another kind of index shard by setting :attr:`prefix` and :attr:`columns`
    and overriding :meth:`_keeps` (which rows) and :meth:`_sample_builder` (how a row becomes a
    sample; see :class:`PairDataset`); listing, splitting, shuffling and HDF5 access are shared.

    Args:
        folders: output folders of ``dptrack-build run``.
        include: ``"all"`` rows, only ``"sources"`` (offset 0, the annotated instances) or only
            ``"propagated"`` rows.
        shuffle: permute files and rows each epoch (seeded); ``False`` keeps shard order.
        seed: base seed of the permutations.
        with_flow_source: load the source crop of propagated rows (``flow_source_image``); off
            saves a crop read per propagated sample when no equivariance loss needs it.
        shuffle_buffer: samples held to mix across files (0 = off).
        split: ``"auto"``, ``"files"`` or ``"rows"`` (see :mod:`.partition`).
        rank, world_size: distributed position; from ``torch.distributed`` when ``None``.
        label_filter: which labels to keep (:class:`~.filters.LabelFilter`: point filters on
            ``dp_fb_error`` / ``dp_photo``, row filters on ``|offset|``, ``pckh`` and the points
            left); ``None`` keeps every row and point.
        verify: check every file's SHA-256 against ``dataset_info.json`` first (reads every
            byte once). Without it, files are size-checked at listing and when opened, and
            damage is caught as rows are read (Parquet page CRCs, HDF5 Fletcher-32).

    Raises:
        FileNotFoundError: a folder without instance shards or without ``dataset_info.json``.
        CorruptShardError: a file missing, extra, resized or (``verify``) altered; while
            iterating, a file that fails its checksums.
        ValueError: a bad ``include`` or ``split``, or a ``label_filter`` that needs a quality
            column a folder lacks (instances schema v1; the message says to re-run
            ``dptrack-build run``).
    """

    prefix: ClassVar[str] = naming.PREFIX_INSTANCES
    """The index shards read: ``<prefix>-SSSSS-of-NNNNN.parquet``."""
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    """The Parquet columns :meth:`_file_samples` needs."""

    def __init__(
        self,
        folders: Sequence[str] | str,
        *,
        include: str = "all",
        shuffle: bool = True,
        seed: int = 0,
        with_flow_source: bool = True,
        shuffle_buffer: int = 0,
        split: str = "auto",
        rank: int | None = None,
        world_size: int | None = None,
        label_filter: LabelFilter | None = None,
        verify: bool = False,
    ) -> None:
        super().__init__()
        if include not in INCLUDE:
            raise ValueError(f"include must be one of {INCLUDE}, got {include!r}")
        check_split(split)
        self.folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
        self.files = list_shard_files([str(f) for f in self.folders], self.prefix, verify=verify)
        self.include = include
        self.shuffle = shuffle
        self.seed = seed
        self.with_flow_source = with_flow_source
        self.shuffle_buffer = shuffle_buffer
        self.split = split
        self._rank, self._world = rank, world_size
        self.epoch = 0
        self.label_filter = LabelFilter() if label_filter is None else label_filter
        require_columns(self.files, self.label_filter.required_columns())
        self._filter_stats = FilterStats()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iterator follows (call it in every process)."""
        self.epoch = int(epoch)

    @property
    def num_rows(self) -> int:
        """Rows in all files, before ``include`` filtering."""
        return sum(f.num_rows for f in self.files)

    def describe(self) -> str:
        """Which rows this dataset yields, for messages."""
        return f"include={self.include!r}, {self.label_filter.describe()}"

    def filter_stats(self) -> FilterStats:
        """What the label filter judged and dropped in this process's current (or last) pass
        over the data, rows read so far; a copy.

        Counted where the rows are read: in the main process for ``num_workers=0``; with
        DataLoader workers each worker's copy of the dataset counts its own rows (read it in the
        worker, ``torch.utils.data.get_worker_info().dataset.filter_stats()``), and the counts
        of all consumers add up (``+``) to those of one consumer reading everything.
        """
        return dataclasses.replace(self._filter_stats)

    def _position(self) -> tuple[int, int]:
        return consumer_position(self._rank, self._world)

    def assignment(self) -> list[tuple[int, np.ndarray]]:
        """This consumer's ``(file index, row indices)``, in reading order (before ``include``).

        Exposed so tests and jobs can check that consumers partition the data.
        """
        consumer, consumers = self._position()
        return assign(
            [f.num_rows for f in self.files],
            consumer,
            consumers,
            split=self.split,
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
        )

    def __len__(self) -> int:
        """An upper bound for one consumer (DataLoader progress); exact when ``include="all"``
        and no label filter is on."""
        _, consumers = self._position()
        return math.ceil(self.num_rows / consumers)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        samples = self._samples()
        if self.shuffle_buffer <= 1:
            yield from samples
            return
        consumer, _ = self._position()
        rng = random.Random(f"{self.seed}/{self.epoch}/buffer/{consumer}")
        buffer: list[dict[str, Any]] = []
        for sample in samples:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(sample)
                continue
            index = rng.randrange(len(buffer))
            buffer[index], sample = sample, buffer[index]
            yield sample
        rng.shuffle(buffer)
        yield from buffer

    def _samples(self) -> Iterator[dict[str, Any]]:
        readers: dict[str, DenseReader] = {}
        self._filter_stats = FilterStats()
        columns = list(dict.fromkeys([*self.columns, *self.label_filter.required_columns()]))
        try:
            for file_index, rows in self.assignment():
                if len(rows) == 0:
                    continue
                shard = self.files[file_index]
                reader = readers.get(shard.folder)
                if reader is None:
                    reader = readers[shard.folder] = DenseReader(shard.folder)
                records = read_index_file(shard, columns)
                yield from self._file_samples(reader, shard, records, rows)
        finally:
            for reader in readers.values():
                reader.close()

    def _file_samples(
        self,
        reader: DenseReader,
        shard: ShardFile,
        records: list[dict[str, Any]],
        rows: np.ndarray,
    ) -> Iterator[dict[str, Any]]:
        """The samples of ``rows`` (indices into ``records``, one file's rows) in that order,
        leaving out the rows :meth:`_keeps` or the label filter refuses."""
        build = self._sample_builder(reader, shard, records)
        label_filter = self.label_filter if self.label_filter.active else None
        for row in rows:
            record = records[int(row)]
            if not self._keeps(record):
                continue
            if label_filter is not None:
                record = label_filter.apply(record, self._filter_stats)
                if record is None:
                    continue
            yield build(int(row), record)

    def _keeps(self, record: dict[str, Any]) -> bool:
        """Whether row ``record`` is yielded (``include``)."""
        if self.include == "all":
            return True
        return (record["offset"] == 0) == (self.include == "sources")

    def _sample_builder(
        self, reader: DenseReader, shard: ShardFile, records: list[dict[str, Any]]
    ) -> SampleBuilder:
        """How a row of this file becomes a sample: ``build(row, record)``."""
        sources = {r["annotation_id"]: r["crop_index"] for r in records if r["offset"] == 0}
        return functools.partial(
            instance_sample,
            reader,
            shard,
            sources=sources,
            with_flow_source=self.with_flow_source,
        )


class PairDataset(ShardDataset):
    """Flow pairs of one or more ``dptrack-build pairs`` folders, for equivariance training.

    One sample per row of ``pairs-*.parquet``: crop B as ``image``, crop A as
    ``flow_source_image``, the flow A -> B and its validity, no labels (keys in :mod:`.samples`).
    Splitting across ranks and workers, shuffling, ``set_epoch`` and the shuffle buffer are
    :class:`ShardDataset`'s.

    Args:
        folders: output folders of ``dptrack-build pairs``.
        min_valid: skip rows whose ``valid_fraction`` (share of crop-A pixels with a valid flow)
            is below this, in ``[0, 1]``; 0 keeps every row.
        label_filter: only its ``offsets`` (keep pairs whose ``|offset|`` is in the set); pairs
            carry no labels, so the other criteria are refused.
        shuffle, seed, shuffle_buffer, split, rank, world_size: as for :class:`ShardDataset`.

    Raises:
        FileNotFoundError: a folder without ``pairs-*.parquet`` (the message says what it holds,
            e.g. the instance shards of a ``dptrack-build run`` folder).
        ValueError: a ``label_filter`` with a criterion other than ``offsets``.
    """

    prefix: ClassVar[str] = naming.PREFIX_PAIRS
    columns: ClassVar[tuple[str, ...]] = PAIR_COLUMNS

    def __init__(
        self,
        folders: Sequence[str] | str,
        *,
        min_valid: float = 0.0,
        label_filter: LabelFilter | None = None,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 0,
        split: str = "auto",
        rank: int | None = None,
        world_size: int | None = None,
        verify: bool = False,
    ) -> None:
        if not 0.0 <= min_valid <= 1.0:
            raise ValueError(f"min_valid must be in [0, 1], got {min_valid!r}")
        if label_filter is not None and label_filter.needs_labels:
            raise ValueError(
                f"pairs carry no labels: a PairDataset filters only by offsets, got "
                f"{label_filter.describe()}"
            )
        super().__init__(
            folders,
            include="all",
            shuffle=shuffle,
            seed=seed,
            with_flow_source=True,
            shuffle_buffer=shuffle_buffer,
            split=split,
            rank=rank,
            world_size=world_size,
            label_filter=label_filter,
            verify=verify,
        )
        self.min_valid = float(min_valid)

    def describe(self) -> str:
        return f"pairs with valid_fraction >= {self.min_valid}, {self.label_filter.describe()}"

    def _keeps(self, record: dict[str, Any]) -> bool:
        return not record["valid_fraction"] < self.min_valid  # (NaN is kept)

    def _sample_builder(
        self, reader: DenseReader, shard: ShardFile, records: list[dict[str, Any]]
    ) -> SampleBuilder:
        return functools.partial(pair_sample, reader, shard)
