"""Which rows does each consumer of a shard dataset read, and in what order?

**Splitting, without overlap or loss.** Every consumer (DataLoader worker ``w`` of ``W`` on rank
``r`` of ``R``; ``k = r * W + w`` of ``K = R * W``) computes the same epoch order, then takes its
part: whole shard files (``split="files"``: each worker reads only its own files), or every
``K``-th row of the global row order (``split="rows"``: exact balance; every worker opens every
file). Files are dealt by row count, not in turn: largest first, each to the consumer holding
the fewest rows so far (ties to the lowest ``k``), and each consumer reads its files in the epoch
order. That matters because a ``DataLoader`` takes batches from its workers in turn: a worker
with fewer rows runs dry early and the rest of the epoch runs on the others (4 files of 56-168
rows dealt in turn to 2 workers gave one of them 40% idle in ``benchmarks/bench_reader.py``).
``split="auto"`` takes files when there are at least ``K`` and dealing them leaves no consumer
more than :data:`AUTO_FILES_SLACK` above an even share, rows otherwise. Ranks come from
``torch.distributed`` when it is initialised, or are given.

**Shuffling** is seeded: the epoch order permutes the files with ``(seed, epoch)`` and the rows
of each file with ``(seed, epoch, file)``. Rows of one file stay together, so a worker reads each
HDF5 file front to back-ish and opens it once. Nothing here depends on which process computes it
(no global RNG), which is what makes the consumers agree without talking to each other.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import get_worker_info

SPLITS = ("auto", "files", "rows")

AUTO_FILES_SLACK = 0.05
"""``split="auto"`` splits by files only if no consumer gets more than 5% above ``rows / K``."""


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`.

    Raises:
        ValueError: otherwise.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _consumer() -> tuple[int, int]:
    """``(worker id, workers)`` of the current DataLoader process; ``(0, 1)`` outside one."""
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _distributed() -> tuple[int, int]:
    """``(rank, world size)`` from ``torch.distributed``; ``(0, 1)`` when it is not initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def consumer_position(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(k, K)``: this consumer's index and the number of consumers (ranks times workers);
    ``rank`` / ``world_size`` override ``torch.distributed`` when not ``None``."""
    dist_rank, dist_world = _distributed()
    rank = dist_rank if rank is None else rank
    world = dist_world if world_size is None else world_size
    worker, workers = _consumer()
    return rank * workers + worker, world * workers


def file_order(num_files: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The epoch's order of the file indices ``0 .. num_files - 1``."""
    order = list(range(num_files))
    if shuffle:
        random.Random(f"{seed}/{epoch}").shuffle(order)
    return order


def row_order(num_rows: int, seed: int, epoch: int, file_index: int, shuffle: bool) -> np.ndarray:
    """The epoch's order of the rows of file ``file_index``."""
    if not shuffle:
        return np.arange(num_rows)
    rng = np.random.default_rng([seed, epoch, file_index])
    return rng.permutation(num_rows)


def assign(
    rows_per_file: Sequence[int],
    consumer: int,
    consumers: int,
    *,
    split: str,
    seed: int,
    epoch: int,
    shuffle: bool,
) -> list[tuple[int, np.ndarray]]:
    """Consumer ``consumer`` of ``consumers``'s ``(file index, row indices)``, in reading order.

    Args:
        rows_per_file: row count of each file.
        split: ``"auto"``, ``"files"`` or ``"rows"`` (module docstring).
        seed, epoch, shuffle: the epoch order.
    """
    order = file_order(len(rows_per_file), seed, epoch, shuffle)
    if check_split(split) == "auto":
        split = "rows"
        if len(rows_per_file) >= consumers:
            dealt = deal_files(order, rows_per_file, consumers)
            most = max(sum(rows_per_file[i] for i in files) for files in dealt)
            if most <= sum(rows_per_file) / consumers * (1 + AUTO_FILES_SLACK):
                split = "files"

    def rows_of(i: int) -> np.ndarray:
        return row_order(rows_per_file[i], seed, epoch, i, shuffle)

    if split == "files":
        return [(i, rows_of(i)) for i in deal_files(order, rows_per_file, consumers)[consumer]]
    out, start = [], 0
    for i in order:
        rows = rows_of(i)
        first = (consumer - start) % consumers
        out.append((i, rows[first::consumers]))
        start += len(rows)
    return out


def deal_files(
    order: Sequence[int], rows_per_file: Sequence[int], consumers: int
) -> list[list[int]]:
    """The files of each consumer for ``split="files"``: largest first (ties in ``order``), each
    to the consumer with the fewest rows so far (ties to the lowest index); each consumer's files
    in ``order``. Deterministic, so every consumer computes the same deal."""
    position = {f: n for n, f in enumerate(order)}
    loads = [0] * consumers
    mine: list[list[int]] = [[] for _ in range(consumers)]
    for f in sorted(order, key=lambda f: (-rows_per_file[f], position[f])):
        k = min(range(consumers), key=lambda c: (loads[c], c))
        loads[k] += rows_per_file[f]
        mine[k].append(f)
    return [sorted(files, key=position.__getitem__) for files in mine]
