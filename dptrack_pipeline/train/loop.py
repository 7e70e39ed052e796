"""The ``dptrack-train`` loop: data streams, loss composition, two-stage schedule, checkpoints,
resume, metrics and evaluation. The maths lives in :mod:`.losses`, :mod:`.warps`, :mod:`.model`
and :mod:`.evaluate`; this module only wires them.

**Data.** The supervised stream is :class:`~dptrack_pipeline.train.dataset.ShardDataset` with
``include="sources"`` (the annotated instances), or ``"all"`` with GT propagation (annotated and
propagated instances; the propagated ones weighted by ``propagated_weight``). Equivariance with
real flow reads a second stream of pairs: each gives a source crop ``A``, a target crop ``B`` and
the flow ``A -> B``; only images and flow are used, never labels. The pairs are the propagated
rows of the stage's shard folders (``include="propagated"``), or, when ``pairs`` folders are given
(``dptrack-build pairs`` output: unlabelled video), a
:class:`~dptrack_pipeline.train.dataset.PairDataset` over those, in every stage. So
"equivariance" adds motion without adding labels, and every configuration sees the same
supervised batches per step unless GT propagation is on.

**Losses**, summed over the stacks (intermediate supervision), each switched by name:
``part_sparse`` (CE of the 25-way part head at annotated points), ``part_dense`` (CE of the
coarse parts aggregated from the part head against the 14-part masks), ``uv`` (smooth L1 on U, V
of the annotated part at annotated points). Equivariance (Slim DensePose eq. 2 and sec. 3.2.2):
``1 - cos(Psi(A)[p], Psi(B)[p + g(p)])`` over valid ``p``, with ``g`` the shards' flow
(``real``) or a random thin-plate-spline warp of the supervised images (``tps``: ``A`` = the
warped image, ``B`` = the image), ``Psi`` the chosen ``feature_level``; ``stack_features`` applies
it to every stack's features, as the paper does.

**Schedule.** Stage I trains on ``shards`` for ``steps``; stage II (paced learning, paper sec.
5.3), when ``finetune_shards`` is given, continues for ``finetune_steps`` on those (or on the
union with ``finetune_union``). Adam with a constant rate, then a 10x lower rate in stage II.

**Checkpoints and resume.** ``OUT/checkpoints/step-NNNNNNN.pt`` every ``checkpoint_every`` steps
and at the end of each stage, written to a temporary name and renamed; ``OUT/checkpoints/last.pt``
points at the newest. A checkpoint holds the model, the optimiser, the step, the stage, the
position in each data stream (epoch and batches consumed) and the RNG states, so a resumed run
draws the same batches and TPS warps as an uninterrupted one. ``OUT/metrics.jsonl`` gets one JSON
line per logged step and per evaluation (resuming truncates lines beyond the checkpoint's step);
``OUT/metrics.png`` plots them; ``OUT/config.json`` records the configuration.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from dptrack_pipeline.train import losses as L
from dptrack_pipeline.train.dataset import PairDataset, ShardDataset, collate
from dptrack_pipeline.train.model import FEATURE_LEVELS, HourglassDensePose, feature_level
from dptrack_pipeline.train.warps import apply_tps

LOG = logging.getLogger(__name__)
SUPERVISED_LOSSES = ("part_sparse", "part_dense", "uv")
EQUIVARIANCE = ("none", "real", "tps")


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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("shards", "val_shards", "finetune_shards", "losses", "pairs"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        for key in ("shards", "val_shards", "finetune_shards", "losses", "pairs"):
            d[key] = tuple(d.get(key, ()))
        return cls(**d)


# --------------------------------------------------------------------------- data streams


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
        """The next batch; starts the next epoch when one ends."""
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
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
        self._iterator = None


def _streams(config: TrainConfig, folders: Sequence[str], seed: int) -> dict[str, Stream]:
    include = "all" if config.gt_propagation else "sources"
    streams = {
        "supervised": Stream(
            ShardDataset(folders, include=include, seed=seed, with_flow_source=False),
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


# --------------------------------------------------------------------------- losses


def _as_images(uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return uint8.to(device, non_blocking=True).float().div_(255.0)


def supervised_losses(
    outputs: Sequence[Any],
    batch: dict[str, Any],
    config: TrainConfig,
    crop_size: int,
    stride: int,
) -> dict[str, torch.Tensor]:
    """Each supervised loss summed over stacks.

    Annotated and propagated rows are two groups, each averaged on its own, then combined as
    ``(L_annotated + w * L_propagated) / (1 + w)`` with ``w = propagated_weight`` (only the groups
    present in the batch count), so the loss scale does not depend on the batch's mix. Without
    GT propagation the propagated rows carry no supervised loss.
    """
    propagated = (batch["offset"] != 0).to(outputs[-1].part_logits.device)
    groups = [(~propagated, 1.0)]
    if config.gt_propagation and config.propagated_weight > 0:
        groups.append((propagated, config.propagated_weight))
    point_i = batch["point_I"]
    part_mask = batch["part_mask"]
    groups = [(rows, weight) for rows, weight in groups if bool(rows.any())]
    norm = sum(weight for _, weight in groups) or 1.0
    out: dict[str, torch.Tensor] = {}
    for name in config.losses:
        total = outputs[-1].part_logits.new_zeros(())
        for rows, weight in groups:
            ids = torch.where(rows[:, None], point_i, torch.full_like(point_i, -1))
            masks = torch.where(rows[:, None, None], part_mask, torch.full_like(part_mask, -1))
            for stack in outputs:
                if name == "part_sparse":
                    value = L.part_ce_sparse(
                        stack.part_logits, batch["points"], ids, crop_size, stride
                    )
                elif name == "part_dense":
                    value = L.part_ce_dense(stack.part_logits, masks)
                else:
                    value = L.uv_loss(
                        stack.u, stack.v, batch["points"], ids, batch["point_U"],
                        batch["point_V"], crop_size, stride,
                    )  # fmt: skip
                total = total + (weight / norm) * value
        out[name] = total
    return out


def _levels(outputs: Any, level: str) -> list[torch.Tensor]:
    if level == "stack_features":
        return [stack.features for stack in outputs]
    return [feature_level(outputs, level)]


def equivariance_term(
    outputs_a: Any,
    outputs_b: Any,
    flow: torch.Tensor,
    valid: torch.Tensor,
    level: str,
    crop_size: int,
) -> torch.Tensor:
    """Mean over the chosen levels of :func:`~dptrack_pipeline.train.losses.equivariance_loss`."""
    terms = [
        L.equivariance_loss(a, b, flow, valid, crop_size)
        for a, b in zip(_levels(outputs_a, level), _levels(outputs_b, level), strict=True)
    ]
    return torch.stack(terms).mean()


def _split(outputs: Any, sizes: Sequence[int]) -> list[Any]:
    """Split a model output over a concatenated batch into per-part outputs."""
    from dptrack_pipeline.train.model import HourglassOutputs, StackOutput

    parts = []
    start = 0
    for size in sizes:
        sl = slice(start, start + size)
        stacks = [StackOutput(s.features[sl], s.part_logits[sl], s.u[sl], s.v[sl]) for s in outputs]
        parts.append(HourglassOutputs(stacks, outputs.stem_features[sl]))
        start += size
    return parts


# --------------------------------------------------------------------------- checkpoints


def _atomic_save(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def latest_checkpoint(out: str) -> str | None:
    """Path of ``OUT/checkpoints/last.pt`` if it exists."""
    path = os.path.join(out, "checkpoints", "last.pt")
    return path if os.path.exists(path) else None


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    return {"torch": torch.random.get_rng_state(), "tps": generator.get_state()}


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """Runs a :class:`TrainConfig`; :meth:`run` trains (resuming when asked) and evaluates."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but CUDA is not usable here")
        torch.manual_seed(config.seed)
        self.model = HourglassDensePose(
            num_stacks=config.stacks,
            channels=config.channels,
            depth=config.depth,
            stem_stride=config.stem_stride,
        ).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed + 12345)
        self.step = 0
        self.stage = 1
        self.streams: dict[str, Stream] = {}
        os.makedirs(os.path.join(config.out, "checkpoints"), exist_ok=True)
        self.metrics_path = os.path.join(config.out, "metrics.jsonl")

    # -- stages --------------------------------------------------------------------------

    def stages(self) -> list[tuple[int, tuple[str, ...], int, float]]:
        """``(stage, folders, last step of the stage, learning rate)`` for each stage."""
        c = self.config
        out = [(1, c.shards, c.steps, c.lr)]
        if c.finetune_shards and c.finetune_steps:
            folders = c.shards + c.finetune_shards if c.finetune_union else c.finetune_shards
            out.append((2, tuple(folders), c.steps + c.finetune_steps, c.lr / 10))
        return out

    def _enter_stage(self, stage: int, folders: Sequence[str], lr: float) -> None:
        self.stage = stage
        self.streams = _streams(self.config, folders, self.config.seed + 1000 * stage)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # -- checkpointing --------------------------------------------------------------------

    def save(self) -> str:
        folder = os.path.join(self.config.out, "checkpoints")
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "stage": self.stage,
            "streams": {name: s.state() for name, s in self.streams.items()},
            "rng": _rng_state(self.generator),
            "config": self.config.to_dict(),
        }
        path = os.path.join(folder, f"step-{self.step:07d}.pt")
        _atomic_save(state, path)
        _atomic_save(state, os.path.join(folder, "last.pt"))
        return path

    def resume(self, path: str) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved = TrainConfig.from_dict(state["config"])
        for key in ("stacks", "channels", "depth", "stem_stride"):
            if getattr(saved, key) != getattr(self.config, key):
                raise ValueError(
                    f"cannot resume {path}: it has {key}={getattr(saved, key)}, "
                    f"this run {getattr(self.config, key)}"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.stage = int(state["step"]), int(state["stage"])
        _, folders, _, lr = self.stages()[self.stage - 1]
        self._enter_stage(self.stage, folders, lr)
        for name, stream_state in state["streams"].items():
            if name in self.streams:
                self.streams[name].load_state(stream_state)
        torch.random.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["tps"])
        self._truncate_metrics(self.step)
        LOG.info("resumed from %s at step %d (stage %d)", path, self.step, self.stage)

    def _truncate_metrics(self, step: int) -> None:
        if not os.path.exists(self.metrics_path):
            return
        with open(self.metrics_path) as f:
            lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
        with open(self.metrics_path, "w") as f:
            f.writelines(lines)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    # -- one step -------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        c = self.config
        self.model.train()
        batch = self.streams["supervised"].next()
        images = _as_images(batch["image"], self.device)
        size = images.shape[-1]
        stride = self.model.stem_stride
        batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        inputs, sizes = [images], [images.shape[0]]
        if c.equivariance == "tps":
            warped, tps_flow, tps_valid = apply_tps(images, self.generator, c.tps_strength)
            inputs.append(warped)
            sizes.append(warped.shape[0])
        if c.equivariance == "real":
            pairs = self.streams["pairs"].next()
            if pairs["image"].shape[-1] != size:
                raise ValueError(
                    f"pair crops are {pairs['image'].shape[-1]} px but the supervised crops "
                    f"{size} px: build the pairs with --crop-size {size}"
                )
            inputs += [
                _as_images(pairs["flow_source_image"], self.device),
                _as_images(pairs["image"], self.device),
            ]
            sizes += [pairs["image"].shape[0]] * 2
        parts = _split(self.model(torch.cat(inputs)), sizes)
        terms = supervised_losses(parts[0], batch, c, size, stride)
        if c.equivariance == "tps":
            terms["equivariance"] = c.equivariance_weight * equivariance_term(
                parts[1], parts[0], tps_flow, tps_valid, c.feature_level, size
            )
        elif c.equivariance == "real":
            flow = pairs["flow"].to(self.device)
            valid = pairs["flow_valid"].to(self.device)
            terms["equivariance"] = c.equivariance_weight * equivariance_term(
                parts[1], parts[2], flow, valid, c.feature_level, size
            )
        total = torch.stack(list(terms.values())).sum()
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is {total.item()} at step {self.step}: {terms}")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.step += 1
        return {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        from dptrack_pipeline.train.validate import evaluate_model

        return evaluate_model(
            self.model,
            self.config.val_shards,
            device=self.device,
            truth=self.config.truth,
            geodesic_assets=self.config.geodesic_assets,
        )

    # -- the run --------------------------------------------------------------------------

    def run(self, resume: bool = False, progress: bool = True) -> dict[str, Any]:
        """Train every stage, evaluate, plot; returns the last evaluation (or losses)."""
        c = self.config
        with open(os.path.join(c.out, "config.json"), "w") as f:
            json.dump(c.to_dict(), f, indent=2, sort_keys=True)
        checkpoint = latest_checkpoint(c.out) if resume else None
        if checkpoint:
            self.resume(checkpoint)
        elif os.path.exists(self.metrics_path):
            os.remove(self.metrics_path)
        result: dict[str, Any] = {}
        bar = None
        total_steps = self.stages()[-1][2]
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total_steps, initial=self.step, desc="train", unit="step")
        started, seen = time.perf_counter(), 0
        for stage, folders, last, lr in self.stages():
            if self.step >= last:
                continue
            if not self.streams or self.stage != stage:
                self._enter_stage(stage, folders, lr)
            while self.step < last:
                losses = self.train_step()
                seen += c.batch_size
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses['loss']:.3f}", stage=stage)
                if self.step % c.log_every == 0 or self.step == last:
                    rate = seen / max(time.perf_counter() - started, 1e-9)
                    self._log({"step": self.step, "stage": stage, "kind": "train",
                               "samples_per_s": rate, **losses})  # fmt: skip
                    result = losses
                if c.eval_every and self.step % c.eval_every == 0 and c.val_shards:
                    self._log({"step": self.step, "stage": stage, "kind": "eval",
                               **self.evaluate()})  # fmt: skip
                if self.step % c.checkpoint_every == 0:
                    self.save()
            self.save()
            if c.val_shards and not (c.eval_every and self.step % c.eval_every == 0):
                result = self.evaluate()
                self._log({"step": self.step, "stage": stage, "kind": "eval", **result})
        if bar is not None:
            bar.close()
        plot_metrics(self.metrics_path, os.path.join(c.out, "metrics.png"))
        return result


# --------------------------------------------------------------------------- plotting


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_metrics(metrics_path: str, png_path: str) -> None:
    """Plot training losses (left) and evaluation ratios (right) of a run into a PNG."""
    if not os.path.exists(metrics_path):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    keys = sorted({k for r in train for k in r} - {"step", "stage", "kind", "samples_per_s"})
    for key in keys:
        points = [(r["step"], r[key]) for r in train if key in r and math.isfinite(r[key])]
        if points:
            left.plot(*zip(*points, strict=True), label=key)
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.set_yscale("log")
    left.set_title("training losses")
    if keys:
        left.legend(fontsize=8)
    metric_keys = sorted({k for r in evals for k in r if k.startswith(("within_", "part_acc"))})
    for key in metric_keys:
        points = [(r["step"], r[key]) for r in evals if isinstance(r.get(key), (int, float))]
        if points:
            right.plot(*zip(*points, strict=True), marker="o", label=key)
    right.set_xlabel("step")
    right.set_ylabel("% of points")
    right.set_title("evaluation")
    if metric_keys:
        right.legend(fontsize=8)
    fig.tight_layout()
    tmp = f"{png_path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png_path)
