"""What defines a training run? :class:`TrainConfig`, its validation and its JSON form.

A frozen dataclass (change it with :func:`dataclasses.replace`): a run is reproducible from its
``OUT/config.json`` alone, and a checkpoint carries the same dict so that a resume can refuse a
model of another shape. Validation happens at construction, so a bad flag fails before any data
is read. Sequence fields are tuples in Python (hashable, immutable) and lists in JSON;
:meth:`TrainConfig.to_dict` and :meth:`TrainConfig.from_dict` convert, and round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.train.filters import LabelFilter
from dptrack_pipeline.train.model import FEATURE_LEVELS

SUPERVISED_LOSSES = ("part_sparse", "part_dense", "uv")
"""The supervised loss names ``TrainConfig.losses`` (and ``--losses``) choose from."""
EQUIVARIANCE = ("none", "real", "tps")
"""The values of ``TrainConfig.equivariance``."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (recorded in ``OUT/config.json``).

    Attributes:
        shards: stage-I shard folders (``dptrack-build run`` outputs).
        out: run folder.
        val_shards: shard folders to evaluate on (their annotated instances).
        finetune_shards: stage-II shard folders; no stage II when empty.
        finetune_union: stage II on ``shards + finetune_shards`` instead of ``finetune_shards``.
        steps, finetune_steps: optimiser steps of stage I and II.
        stacks, channels, depth, stem_stride: the model (see :class:`HourglassDensePose`).
        batch_size: instances per supervised batch (and per equivariance batch).
        lr: Adam learning rate of stage I (stage II uses a tenth).
        losses: supervised losses, a subset of ``part_sparse``, ``part_dense``, ``uv``.
        gt_propagation: train on propagated instances too (GT propagation).
        propagated_weight: weight of the propagated instances' losses.
        equivariance: ``none``, ``real`` (flow from the shards, or from ``pairs``) or ``tps``
            (synthetic warps).
        pairs: ``dptrack-build pairs`` folders; with ``equivariance="real"`` the pairs stream
            reads these instead of the propagated rows of the shards (only with ``real``).
        equivariance_weight: weight of the equivariance loss.
        feature_level: where equivariance applies (``stack_features``, ``stack:K``,
            ``segmentation``, ``uv``, ``early``).
        tps_strength: standard deviation of the random TPS control-point offsets, in normalised
            units (1 = half the crop side; 0.08 is about 2.6 px on a 64-px crop).
        seed: seeds the model, the data order and the TPS warps.
        workers: DataLoader worker processes per stream.
        log_every, eval_every, checkpoint_every: in steps (``eval_every = 0``: end of stages).
        device: ``cpu`` or ``cuda``.
        truth: the ``dptrack-build synth`` folder behind ``val_shards``, to score in centimetres
            on the synthetic bodies' surface.
        geodesic_assets: DensePose evaluation assets (folder or ``.npz``) for real data.
        max_fb_error, min_photo, min_pckh, offsets, min_points: the label filter of the
            supervised stream on the training shards (stage I and II, never ``val_shards``;
            :class:`~.filters.LabelFilter`, :meth:`label_filter`): drop propagated points with
            a forward-backward error above ``max_fb_error`` px or a ZNCC below ``min_photo``,
            propagated rows with a PCKh below ``min_pckh`` or fewer than ``min_points`` points
            left, and rows whose ``|offset|`` is not in ``offsets`` (empty: every offset; stored
            sorted). They judge propagated labels, so they need ``gt_propagation``.
    """

    shards: tuple[str, ...]
    out: str
    val_shards: tuple[str, ...] = ()
    finetune_shards: tuple[str, ...] = ()
    finetune_union: bool = False
    steps: int = 1000
    finetune_steps: int = 0
    stacks: int = 2
    channels: int = 64
    depth: int = 4
    stem_stride: int = 4
    batch_size: int = 8
    lr: float = 1e-3
    losses: tuple[str, ...] = SUPERVISED_LOSSES
    gt_propagation: bool = False
    propagated_weight: float = 1.0
    equivariance: str = "none"
    equivariance_weight: float = 1.0
    feature_level: str = "stack_features"
    tps_strength: float = 0.08
    seed: int = 0
    workers: int = 0
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 200
    device: str = "cpu"
    truth: str | None = None
    geodesic_assets: str | None = None
    pairs: tuple[str, ...] = ()
    max_fb_error: float | None = None
    min_photo: float | None = None
    min_pckh: float | None = None
    offsets: tuple[int, ...] = ()
    min_points: int = 0

    def __post_init__(self) -> None:
        if not self.shards:
            raise ValueError("at least one --shards folder is needed")
        unknown = sorted(set(self.losses) - set(SUPERVISED_LOSSES))
        if unknown:
            raise ValueError(f"unknown loss(es) {unknown}; choose from {SUPERVISED_LOSSES}")
        if self.equivariance not in EQUIVARIANCE:
            raise ValueError(f"equivariance must be one of {EQUIVARIANCE}")
        if self.pairs and self.equivariance != "real":
            raise ValueError(
                f"pairs folders feed only the real-flow equivariance loss; "
                f"equivariance is {self.equivariance!r}, use 'real' or drop the pairs"
            )
        level = self.feature_level
        if level not in FEATURE_LEVELS and not level.startswith("stack:"):
            raise ValueError(f"feature_level must be one of {FEATURE_LEVELS} or stack:K")
        if self.steps < 0 or self.finetune_steps < 0 or self.batch_size < 1:
            raise ValueError("steps must be >= 0 and batch_size >= 1")
        if not (self.losses or self.equivariance != "none"):
            raise ValueError("nothing to train: no supervised loss and no equivariance")
        label_filter = self.label_filter()  # checks the thresholds
        object.__setattr__(self, "offsets", label_filter.offsets or ())
        if label_filter.active and not self.gt_propagation:
            raise ValueError(
                f"label filters judge propagated labels ({label_filter.describe()}), but "
                f"without GT propagation the supervised stream reads only the annotated "
                f"instances: add --gt-propagation or drop the filters"
            )

    def label_filter(self) -> LabelFilter:
        """The :class:`~.filters.LabelFilter` of the supervised stream on the training shards."""
        return LabelFilter(
            max_fb_error=self.max_fb_error,
            min_photo=self.min_photo,
            min_pckh=self.min_pckh,
            offsets=self.offsets or None,
            min_points=self.min_points,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: a dict of the fields, tuples as lists."""
        d = dataclasses.asdict(self)
        return {**d, **{key: list(d[key]) for key in _SEQUENCE_FIELDS}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; any sequence (or a missing one: empty) becomes a tuple."""
        return cls(**{**d, **{key: tuple(d.get(key, ())) for key in _SEQUENCE_FIELDS}})

    def write_json(self, path: str) -> None:
        """Write :meth:`to_dict` to ``path`` (all or nothing)."""
        with atomic_write(path) as tmp, open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)


_SEQUENCE_FIELDS = tuple(
    f.name for f in dataclasses.fields(TrainConfig) if str(f.type).startswith("tuple")
)
"""The tuple-valued fields (``shards``, ``val_shards``, ...): lists in the JSON form."""
