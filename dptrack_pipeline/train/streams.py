"""Which batches does the trainer draw, and how does a resumed run draw the same ones?

The supervised stream is :class:`~dptrack_pipeline.train.dataset.ShardDataset` with
``include="sources"`` (the annotated instances), or ``"all"`` with GT propagation (annotated and
propagated instances). Equivariance with real flow reads a second stream of pairs: each gives a
source crop ``A``, a target crop ``B`` and the flow ``A -> B``; only images and flow are used,
never labels. The pairs are the propagated rows of the stage's shard folders
(``include="propagated"``), or, when ``pairs`` folders are given (``dptrack-build pairs`` output:
unlabelled video), a :class:`~dptrack_pipeline.train.dataset.PairDataset` over those, in every
stage. So "equivariance" adds motion without adding labels, and every configuration sees the same
supervised batches per step unless GT propagation is on.

**Label filters** (:meth:`TrainConfig.label_filter`: ``--max-fb-error``, ``--min-photo``,
``--min-pckh``, ``--offsets``, ``--min-points``) apply where labels are consumed: the supervised
stream of every stage. The pairs stream uses no labels and stays unfiltered; evaluation
(``val_shards``, :mod:`.validate`) reads the annotated instances, never filtered. A filter is a
pure function of each row, so it changes which batches an epoch holds but not how a position
resumes.

A :class:`Stream` is endless and its position is two integers (epoch, batches consumed), so a
checkpoint stores it and a resumed stream skips to the same next batch: epoch ``e`` is the
dataset's seeded order for ``e`` (:mod:`.partition`), identical in every process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import DataLoader

from dptrack_pipeline.train.config import TrainConfig
from dptrack_pipeline.train.dataset import PairDataset, ShardDataset
from dptrack_pipeline.train.samples import collate


class Stream:
    """An endless, resumable iterator of batches over a :class:`ShardDataset` (or a
    :class:`PairDataset`).

    Epoch ``e`` is the dataset's seeded order for ``e``; the position is ``(epoch, batches
    consumed in it)``, so a stream rebuilt from :meth:`state` yields the same next batch.
    """

    def __init__(self, dataset: ShardDataset, batch_size: int, workers: int) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.workers = workers
        self.epoch = 0
        self.consumed = 0
        self._iterator: Iterator[dict[str, Any]] | None = None

    def _start(self, skip: int) -> None:
        self.dataset.set_epoch(self.epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            num_workers=self.workers,
            collate_fn=collate,
            drop_last=True,
            persistent_workers=False,
        )
        self._iterator = iter(loader)
        for _ in range(skip):
            next(self._iterator)

    def next(self) -> dict[str, Any]:
        """The next batch (:func:`~.samples.collate`'s dict); starts the next epoch when one
        ends."""
        if self._iterator is None:
            self._start(self.consumed)
        for _ in range(2):
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.epoch += 1
                self.consumed = 0
                self._start(0)
                continue
            self.consumed += 1
            return batch
        raise RuntimeError(
            f"no batch of {self.batch_size} in {self.dataset.folders} "
            f"({self.dataset.describe()}): too few samples for one batch"
        )

    def state(self) -> dict[str, int]:
        """The position, for a checkpoint."""
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state`; the next :meth:`next` replays the skipped batches."""
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
        self._iterator = None


def build_streams(config: TrainConfig, folders: Sequence[str], seed: int) -> dict[str, Stream]:
    """The streams of one stage over ``folders``: ``"supervised"``, and ``"pairs"`` with real-flow
    equivariance (seeded ``seed + 1``)."""
    include = "all" if config.gt_propagation else "sources"
    streams = {
        "supervised": Stream(
            ShardDataset(
                folders,
                include=include,
                seed=seed,
                with_flow_source=False,
                label_filter=config.label_filter(),
            ),
            config.batch_size,
            config.workers,
        )
    }
    if config.equivariance == "real":
        pairs: ShardDataset
        if config.pairs:
            pairs = PairDataset(config.pairs, seed=seed + 1)
        else:
            pairs = ShardDataset(folders, include="propagated", seed=seed + 1)
        streams["pairs"] = Stream(pairs, config.batch_size, config.workers)
    return streams
