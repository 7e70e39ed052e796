"""Stream dptrack shards into PyTorch: two ``IterableDataset`` classes any training job can import.

:class:`ShardDataset` reads ``dptrack-build run`` folders: one sample is one instance row of
``instances-*.parquet`` with its arrays from the paired ``dense-*.h5`` (layout:
``schemas/instances.v1.json``, ``schemas/dense.v1.json``):

=====================  ======================================================================
key                    value
=====================  ======================================================================
``image``              ``(3, S, S)`` uint8 RGB person crop (divide by 255 for the model)
``points``             ``(P, 2)`` float32 DensePose points in crop pixels ``(x, y)``, pixel
                       centres on integers: the point at frame ``(X, Y)`` is at
                       ``((X - crop_x) / crop_w * S - 0.5, (Y - crop_y) / crop_h * S - 0.5)``
``point_I``            ``(P,)`` int64 fine part 1..24; ``point_U``, ``point_V`` ``(P,)`` float32
``part_mask``          ``(S, S)`` int64 coarse part 0..14 on the crop grid, all ``-1`` when the
                       row has no masks (nearest: crop pixel centre -> the 256-grid cell of bbox
                       that holds it; outside the bbox is background)
``has_flow``           ``bool``: the row was propagated and carries a flow
``flow_source_image``  ``(3, S, S)`` uint8: the crop of the *source* instance the row was
                       propagated from (only when ``has_flow``)
``flow``               ``(S, S, 2)`` float32: at source-crop pixel ``p``, the position of the same
                       point in ``image`` minus ``p`` (so ``image`` sampled at ``p + flow(p)``
                       looks like ``flow_source_image`` at ``p``); ``flow_valid`` ``(S, S)`` bool
``meta``               provenance dict: ``video_id``, ``frame_index``, ``source_frame_index``,
                       ``offset``, ``annotation_id``, ``track_id``, ``estimator``, ``shard``,
                       ``row``, ``folder``
=====================  ======================================================================

:class:`PairDataset` reads ``dptrack-build pairs`` folders (unlabelled video): one sample is one
row of ``pairs-*.parquet`` (``schemas/pairs.v1.json``), a directed pair ``frame_a -> frame_b`` of
one person, with the same keys, so the same :func:`collate` and training code take it:

=====================  ======================================================================
key                    value
=====================  ======================================================================
``image``              ``(3, S, S)`` uint8: crop B (``frame_b`` over ``crop_box_b``)
``flow_source_image``  ``(3, S, S)`` uint8: crop A (``frame_a`` over ``crop_box_a``)
``flow``               ``(S, S, 2)`` float32, A -> B as above: at crop-A pixel ``p``, the position
                       of the same point in crop B minus ``p``, in crop-B pixels (channel 0 = x);
                       ``flow_valid`` ``(S, S)`` bool (forward-backward check passed)
``has_flow``           always ``True``
``points`` ...         no labels: ``points`` ``(0, 2)`` float32, ``point_I`` ``(0,)`` int64,
                       ``point_U``, ``point_V`` ``(0,)`` float32, ``part_mask`` all ``-1``
``meta``               ``video_id``, ``frame_index`` (= ``frame_b``), ``source_frame_index``
                       (= ``frame_a``), ``offset``, ``annotation_id`` (-1), ``track_id``
                       (= ``person``), ``estimator``, ``shard``, ``row``, ``folder``
=====================  ======================================================================

:func:`collate` batches samples of either kind: points padded with ``point_I = -1``, flow fields
zero-filled where ``has_flow`` is false.

**Splitting, without overlap or loss.** Every consumer (DataLoader worker ``w`` of ``W`` on rank
``r`` of ``R``; ``k = r * W + w`` of ``K = R * W``) computes the same epoch order, then takes its
part: whole shard files ``k, k + K, ...`` when there are at least ``K`` files (``split="files"``:
each worker reads only its own files), else every ``K``-th row of the global row order
(``split="rows"``: exact balance; every worker opens every file). ``split="auto"`` picks the first
when it can. Ranks come from ``torch.distributed`` when it is initialised, or are given.

**Shuffling** is seeded: the epoch order permutes the files with ``(seed, epoch)`` and the rows
of each file with ``(seed, epoch, file)``; call :meth:`ShardDataset.set_epoch` each epoch. Rows
of one file stay together, so a worker reads each HDF5 file front to back-ish and opens it once;
a ``shuffle_buffer`` mixes samples across the files of one worker.

**HDF5 is opened lazily in each worker** (h5py handles must not cross ``fork``): the dataset
object holds only paths and row counts, so it pickles small and is safe with any start method.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from dptrack_pipeline.formats.rle import labels_from_counts
from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.reader import DenseReader, list_shards

DP_GRID = 256
COLUMNS = (
    "video_id",
    "frame_index",
    "source_frame_index",
    "offset",
    "annotation_id",
    "track_id",
    "estimator",
    "bbox",
    "crop_box",
    "dp_x",
    "dp_y",
    "dp_I",
    "dp_U",
    "dp_V",
    "dp_masks",
    "dense_file",
    "crop_index",
    "flow_index",
)
PAIR_COLUMNS = (
    "video_id",
    "frame_a",
    "frame_b",
    "offset",
    "person",
    "estimator",
    "valid_fraction",
    "dense_file",
    "crop_a_index",
    "crop_b_index",
    "flow_index",
)
INCLUDE = ("all", "sources", "propagated")
SPLITS = ("auto", "files", "rows")


@dataclass(frozen=True)
class ShardFile:
    """One index Parquet file (instances or pairs): its folder, file name and row count."""

    folder: str
    name: str
    num_rows: int


_FOLDER_KINDS = {
    naming.PREFIX_INSTANCES: "a `dptrack-build run` folder: read it with ShardDataset (--shards)",
    naming.PREFIX_PAIRS: "a `dptrack-build pairs` folder: read it with PairDataset (--pairs)",
}


def _missing_shards_message(folder: str, prefix: str) -> str:
    """Why ``folder`` has nothing to read: the shard files it does hold, and what it looks like."""
    counts = {kind: len(list_shards(folder, kind)) for kind in naming.EXT_FOR_PREFIX}
    found = [f"{n} {kind}-*.{naming.EXT_FOR_PREFIX[kind]}" for kind, n in counts.items() if n]
    message = f"no {prefix}-*.parquet shards in {folder}; it holds "
    message += ", ".join(found) if found else "no shard files"
    hints = [hint for kind, hint in _FOLDER_KINDS.items() if kind != prefix and counts[kind]]
    return message + (f" ({hints[0]})" if hints else "")


def list_shard_files(
    folders: Sequence[str], prefix: str = naming.PREFIX_INSTANCES
) -> list[ShardFile]:
    """Every ``<prefix>-*.parquet`` shard of ``folders``, in folder then shard order, with row
    counts (``prefix``: :data:`~dptrack_pipeline.shards.naming.PREFIX_INSTANCES` or
    ``PREFIX_PAIRS``).

    Raises:
        FileNotFoundError: a folder without such shards; the message names the shard files it
            does hold (e.g. a ``run`` folder given where a ``pairs`` folder is needed).
    """
    files = []
    for folder in folders:
        paths = list_shards(str(folder), prefix)
        if not paths:
            raise FileNotFoundError(_missing_shards_message(str(folder), prefix))
        for path in paths:
            rows = pq.ParquetFile(path).metadata.num_rows
            files.append(ShardFile(str(folder), os.path.basename(path), rows))
    return files


def crop_coordinates(frame_xy: np.ndarray, crop_box: Sequence[float], crop_size: int) -> np.ndarray:
    """Frame pixel coordinates ``(N, 2)`` -> crop pixel coordinates (pixel centres on integers)."""
    x0, y0, w, h = (float(v) for v in crop_box)
    out = np.empty_like(frame_xy, dtype=np.float32)
    out[:, 0] = (frame_xy[:, 0] - x0) / w * crop_size - 0.5
    out[:, 1] = (frame_xy[:, 1] - y0) / h * crop_size - 0.5
    return out


def mask_on_crop(
    labels: np.ndarray, bbox: Sequence[float], crop_box: Sequence[float], crop_size: int
) -> np.ndarray:
    """Resample a ``(256, 256)`` part label grid spanning ``bbox`` onto the crop grid (nearest).

    Crop pixel ``(c, r)`` is centred on frame point ``crop_x + (c + 0.5) / S * crop_w``; the
    label grid cell ``j`` covers ``bbox_x + [j, j + 1) / 256 * bbox_w``. Outside the bbox: 0.
    """
    bx, by, bw, bh = (float(v) for v in bbox)
    cx, cy, cw, ch = (float(v) for v in crop_box)
    centres = (np.arange(crop_size) + 0.5) / crop_size
    cols = np.floor((cx + centres * cw - bx) / bw * DP_GRID).astype(np.int64)
    rows = np.floor((cy + centres * ch - by) / bh * DP_GRID).astype(np.int64)
    inside = (rows[:, None] >= 0) & (rows[:, None] < DP_GRID) & (cols >= 0) & (cols < DP_GRID)
    out = labels[np.clip(rows, 0, DP_GRID - 1)][:, np.clip(cols, 0, DP_GRID - 1)]
    return np.where(inside, out, 0).astype(np.int64)


def _chw(crop: np.ndarray) -> torch.Tensor:
    """``(S, S, 3)`` -> ``(3, S, S)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))


def _consumer() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(IterableDataset):
    """Samples of one or more shard folders; see the module docstring for keys and splitting.

    Subclasses read another kind of index shard by setting :attr:`prefix` and :attr:`columns`
    and overriding :meth:`_file_samples` (see :class:`PairDataset`); listing, splitting,
    shuffling and HDF5 access are shared.

    Args:
        folders: output folders of ``dptrack-build run``.
        include: ``"all"`` rows, only ``"sources"`` (offset 0, the annotated instances) or only
            ``"propagated"`` rows.
        shuffle: permute files and rows each epoch (seeded); ``False`` keeps shard order.
        seed: base seed of the permutations.
        with_flow_source: load the source crop of propagated rows (``flow_source_image``); off
            saves a crop read per propagated sample when no equivariance loss needs it.
        shuffle_buffer: samples held to mix across files (0 = off).
        split: ``"auto"``, ``"files"`` or ``"rows"``.
        rank, world_size: distributed position; from ``torch.distributed`` when ``None``.
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
    ) -> None:
        super().__init__()
        if include not in INCLUDE:
            raise ValueError(f"include must be one of {INCLUDE}, got {include!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
        self.files = list_shard_files([str(f) for f in self.folders], self.prefix)
        self.include = include
        self.shuffle = shuffle
        self.seed = seed
        self.with_flow_source = with_flow_source
        self.shuffle_buffer = shuffle_buffer
        self.split = split
        self._rank, self._world = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iterator follows (call it in every process)."""
        self.epoch = int(epoch)

    @property
    def num_rows(self) -> int:
        """Rows in all files, before ``include`` filtering."""
        return sum(f.num_rows for f in self.files)

    def describe(self) -> str:
        """Which rows this dataset yields, for messages."""
        return f"include={self.include!r}"

    def _position(self) -> tuple[int, int]:
        rank, world = _distributed()
        rank = self._rank if self._rank is not None else rank
        world = self._world if self._world is not None else world
        worker, workers = _consumer()
        return rank * workers + worker, world * workers

    def _file_order(self) -> list[int]:
        order = list(range(len(self.files)))
        if self.shuffle:
            random.Random(f"{self.seed}/{self.epoch}").shuffle(order)
        return order

    def _row_order(self, file_index: int, num_rows: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(num_rows)
        rng = np.random.default_rng([self.seed, self.epoch, file_index])
        return rng.permutation(num_rows)

    def assignment(self) -> list[tuple[int, np.ndarray]]:
        """This consumer's ``(file index, row indices)``, in reading order (before ``include``).

        Exposed so tests and jobs can check that consumers partition the data.
        """
        consumer, consumers = self._position()
        split = self.split
        if split == "auto":
            split = "files" if len(self.files) >= consumers else "rows"
        order = self._file_order()
        if split == "files":
            return [
                (i, self._row_order(i, self.files[i].num_rows)) for i in order[consumer::consumers]
            ]
        out, start = [], 0
        for i in order:
            rows = self._row_order(i, self.files[i].num_rows)
            first = (consumer - start) % consumers
            out.append((i, rows[first::consumers]))
            start += len(rows)
        return out

    def __len__(self) -> int:
        """An upper bound for one consumer (DataLoader progress); exact when ``include="all"``."""
        consumer, consumers = self._position()
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
        try:
            for file_index, rows in self.assignment():
                if len(rows) == 0:
                    continue
                shard = self.files[file_index]
                reader = readers.get(shard.folder)
                if reader is None:
                    reader = readers[shard.folder] = DenseReader(shard.folder)
                path = os.path.join(shard.folder, shard.name)
                records = pq.read_table(path, columns=list(self.columns)).to_pylist()
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
        """The samples of ``rows`` (indices into ``records``, one file's rows) in that order."""
        sources = {r["annotation_id"]: r["crop_index"] for r in records if r["offset"] == 0}
        for row in rows:
            record = records[int(row)]
            propagated = record["offset"] != 0
            if (self.include == "sources" and propagated) or (
                self.include == "propagated" and not propagated
            ):
                continue
            yield self._sample(reader, shard, int(row), record, sources)

    def _sample(
        self,
        reader: DenseReader,
        shard: ShardFile,
        row: int,
        record: dict[str, Any],
        sources: dict[int, int],
    ) -> dict[str, Any]:
        dense_file = record["dense_file"]
        crop = reader.crop(dense_file, record["crop_index"])
        size = crop.shape[0]
        bbox, crop_box = record["bbox"], record["crop_box"]
        bx, by, bw, bh = (float(v) for v in bbox)
        dp_x = np.asarray(record["dp_x"], dtype=np.float32)
        dp_y = np.asarray(record["dp_y"], dtype=np.float32)
        frame_xy = np.stack([bx + dp_x / DP_GRID * bw, by + dp_y / DP_GRID * bh], axis=1)
        sample: dict[str, Any] = {
            "image": _chw(crop),
            "points": torch.from_numpy(crop_coordinates(frame_xy, crop_box, size)),
            "point_I": torch.as_tensor(np.asarray(record["dp_I"], dtype=np.int64)),
            "point_U": torch.as_tensor(np.asarray(record["dp_U"], dtype=np.float32)),
            "point_V": torch.as_tensor(np.asarray(record["dp_V"], dtype=np.float32)),
        }
        masks = record["dp_masks"]
        if masks:
            labels = labels_from_counts(masks)
            sample["part_mask"] = torch.from_numpy(mask_on_crop(labels, bbox, crop_box, size))
        else:
            sample["part_mask"] = torch.full((size, size), -1, dtype=torch.int64)
        has_flow = record["flow_index"] >= 0
        sample["has_flow"] = has_flow
        if has_flow:
            flow, valid = reader.flow(dense_file, record["flow_index"])
            sample["flow"] = torch.from_numpy(flow)
            sample["flow_valid"] = torch.from_numpy(valid)
            if self.with_flow_source:
                source = sources.get(record["annotation_id"])
                if source is None:  # the source row is not in this shard: no partner image
                    sample["has_flow"] = False
                    del sample["flow"], sample["flow_valid"]
                else:
                    partner = reader.crop(dense_file, source)
                    sample["flow_source_image"] = _chw(partner)
        sample["meta"] = {
            "video_id": record["video_id"],
            "frame_index": record["frame_index"],
            "source_frame_index": record["source_frame_index"],
            "offset": record["offset"],
            "annotation_id": record["annotation_id"],
            "track_id": record["track_id"],
            "estimator": record["estimator"],
            "folder": shard.folder,
            "shard": shard.name,
            "row": row,
        }
        return sample


class PairDataset(ShardDataset):
    """Flow pairs of one or more ``dptrack-build pairs`` folders, for equivariance training.

    One sample per row of ``pairs-*.parquet``: crop B as ``image``, crop A as
    ``flow_source_image``, the flow A -> B and its validity, no labels (keys in the module
    docstring). Splitting across ranks and workers, shuffling, ``set_epoch`` and the shuffle
    buffer are :class:`ShardDataset`'s.

    Args:
        folders: output folders of ``dptrack-build pairs``.
        min_valid: skip rows whose ``valid_fraction`` (share of crop-A pixels with a valid flow)
            is below this, in ``[0, 1]``; 0 keeps every row.
        shuffle, seed, shuffle_buffer, split, rank, world_size: as for :class:`ShardDataset`.

    Raises:
        FileNotFoundError: a folder without ``pairs-*.parquet`` (the message says what it holds,
            e.g. the instance shards of a ``dptrack-build run`` folder).
    """

    prefix: ClassVar[str] = naming.PREFIX_PAIRS
    columns: ClassVar[tuple[str, ...]] = PAIR_COLUMNS

    def __init__(
        self,
        folders: Sequence[str] | str,
        *,
        min_valid: float = 0.0,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 0,
        split: str = "auto",
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if not 0.0 <= min_valid <= 1.0:
            raise ValueError(f"min_valid must be in [0, 1], got {min_valid!r}")
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
        )
        self.min_valid = float(min_valid)

    def describe(self) -> str:
        return f"pairs with valid_fraction >= {self.min_valid}"

    def _file_samples(
        self,
        reader: DenseReader,
        shard: ShardFile,
        records: list[dict[str, Any]],
        rows: np.ndarray,
    ) -> Iterator[dict[str, Any]]:
        for row in rows:
            record = records[int(row)]
            if record["valid_fraction"] < self.min_valid:
                continue
            yield self._pair_sample(reader, shard, int(row), record)

    @staticmethod
    def _pair_sample(
        reader: DenseReader, shard: ShardFile, row: int, record: dict[str, Any]
    ) -> dict[str, Any]:
        dense_file = record["dense_file"]
        crop_a = reader.crop(dense_file, record["crop_a_index"])
        crop_b = reader.crop(dense_file, record["crop_b_index"])
        flow, valid = reader.flow(dense_file, record["flow_index"])
        size = crop_b.shape[0]
        return {
            "image": _chw(crop_b),
            "flow_source_image": _chw(crop_a),
            "flow": torch.from_numpy(flow),
            "flow_valid": torch.from_numpy(valid),
            "has_flow": True,
            "points": torch.zeros((0, 2), dtype=torch.float32),
            "point_I": torch.zeros((0,), dtype=torch.int64),
            "point_U": torch.zeros((0,), dtype=torch.float32),
            "point_V": torch.zeros((0,), dtype=torch.float32),
            "part_mask": torch.full((size, size), -1, dtype=torch.int64),
            "meta": {
                "video_id": record["video_id"],
                "frame_index": record["frame_b"],
                "source_frame_index": record["frame_a"],
                "offset": record["offset"],
                "annotation_id": -1,
                "track_id": record["person"],
                "estimator": record["estimator"],
                "folder": shard.folder,
                "shard": shard.name,
                "row": row,
            },
        }


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples of :class:`ShardDataset` or :class:`PairDataset` (use as a DataLoader's
    ``collate_fn``).

    Returns a dict of stacked tensors: ``image`` ``(B, 3, S, S)`` uint8; ``points`` ``(B, P, 2)``,
    ``point_I`` ``(B, P)`` (``-1`` = padding), ``point_U``, ``point_V``; ``part_mask``
    ``(B, S, S)``; ``has_flow`` ``(B,)`` bool; ``flow`` ``(B, S, S, 2)``, ``flow_valid``
    ``(B, S, S)``, ``flow_source_image`` ``(B, 3, S, S)`` (zeros where ``has_flow`` is false);
    ``offset`` ``(B,)`` int64; ``meta`` a list of the samples' dicts.
    """
    if not samples:
        raise ValueError("empty batch")
    batch = len(samples)
    size = samples[0]["image"].shape[-1]
    most = max(1, max(s["point_I"].shape[0] for s in samples))
    points = torch.zeros(batch, most, 2)
    point_i = torch.full((batch, most), -1, dtype=torch.int64)
    point_u = torch.zeros(batch, most)
    point_v = torch.zeros(batch, most)
    flow = torch.zeros(batch, size, size, 2)
    valid = torch.zeros(batch, size, size, dtype=torch.bool)
    partner = torch.zeros(batch, 3, size, size, dtype=torch.uint8)
    has_flow = torch.zeros(batch, dtype=torch.bool)
    for b, s in enumerate(samples):
        n = s["point_I"].shape[0]
        points[b, :n], point_i[b, :n] = s["points"], s["point_I"]
        point_u[b, :n], point_v[b, :n] = s["point_U"], s["point_V"]
        if s["has_flow"]:
            has_flow[b] = True
            flow[b], valid[b] = s["flow"], s["flow_valid"]
            if "flow_source_image" in s:
                partner[b] = s["flow_source_image"]
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "points": points,
        "point_I": point_i,
        "point_U": point_u,
        "point_V": point_v,
        "part_mask": torch.stack([s["part_mask"] for s in samples]),
        "has_flow": has_flow,
        "flow": flow,
        "flow_valid": valid,
        "flow_source_image": partner,
        "offset": torch.tensor([s["meta"]["offset"] for s in samples], dtype=torch.int64),
        "meta": [s["meta"] for s in samples],
    }
