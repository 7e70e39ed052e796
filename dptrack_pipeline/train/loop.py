"""The ``dptrack-train`` loop: how the stages, steps, checkpoints, resume, logging and
evaluation of a run fit together. Each part answers its own question elsewhere:
:mod:`.config` (what defines a run), :mod:`.streams` (which batches), :mod:`.objective` (what one
step minimises), :mod:`.checkpoint` (what is saved, where, how), :mod:`.metrics` (what is
logged and plotted), :mod:`.validate` (the evaluation); the maths is in :mod:`.losses`,
:mod:`.warps` and :mod:`.model`. This module only wires them.

**Schedule.** Stage I trains on ``shards`` for ``steps``; stage II (paced learning, paper sec.
5.3), when ``finetune_shards`` is given, continues for ``finetune_steps`` on those (or on the
union with ``finetune_union``). Adam with a constant rate, then a 10x lower rate in stage II.
Each stage's streams are seeded ``seed + 1000 * stage``.

**One step** draws a supervised batch (and, with equivariance, a TPS warp of it or a batch of
flow pairs), runs the model once over all of them concatenated, and minimises the sum of the
supervised terms and ``equivariance_weight`` times the equivariance term (:mod:`.objective`); a
non-finite total stops the run with the terms in the message.

**Checkpoints and resume.** A checkpoint every ``checkpoint_every`` steps and at the end of each
stage (:mod:`.checkpoint`); ``run(resume=True)`` continues from ``OUT/checkpoints/last.pt`` with
the same model, optimiser, data positions and RNG states, so it ends where an uninterrupted run
ends. ``OUT/metrics.jsonl`` gets a line every ``log_every`` steps and per evaluation,
``OUT/metrics.png`` plots it at the end, ``OUT/config.json`` records the configuration.

Names kept importable from here for existing callers: :class:`TrainConfig`,
:data:`SUPERVISED_LOSSES`, :data:`EQUIVARIANCE`, :class:`Stream`, :func:`supervised_losses`,
:func:`equivariance_term`, :func:`latest_checkpoint`, :func:`read_metrics`,
:func:`plot_metrics`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import torch

from dptrack_pipeline.train.checkpoint import (
    check_resumable,
    checkpoint_folder,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from dptrack_pipeline.train.config import TrainConfig
from dptrack_pipeline.train.metrics import (
    append_metrics,
    plot_metrics,
    truncate_metrics,
)
from dptrack_pipeline.train.model import HourglassDensePose
from dptrack_pipeline.train.objective import (
    as_images,
    equivariance_term,
    split_outputs,
    supervised_losses,
)
from dptrack_pipeline.train.shard_index import list_shard_files, require_columns
from dptrack_pipeline.train.streams import Stream, build_streams
from dptrack_pipeline.train.warps import apply_tps

__all__ = ["Trainer"]

LOG = logging.getLogger(__name__)


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
        self._check_filter_columns()
        os.makedirs(checkpoint_folder(config.out), exist_ok=True)
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

    def _check_filter_columns(self) -> None:
        """Refuse, before any training, a label filter that needs a quality column one of the
        training folders (of any stage) lacks (:func:`~.shard_index.require_columns`)."""
        needed = self.config.label_filter().required_columns()
        if needed:
            folders = dict.fromkeys(f for _, stage, _, _ in self.stages() for f in stage)
            require_columns(list_shard_files(list(folders)), needed)

    def _enter_stage(self, stage: int, folders: Sequence[str], lr: float) -> None:
        self.stage = stage
        self.streams = build_streams(self.config, folders, self.config.seed + 1000 * stage)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # -- checkpointing --------------------------------------------------------------------

    def save(self) -> str:
        """Checkpoint the current step (see :mod:`.checkpoint`); returns the step file's path."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "stage": self.stage,
            "streams": {name: s.state() for name, s in self.streams.items()},
            "rng": rng_state(self.generator),
            "config": self.config.to_dict(),
        }
        return save_checkpoint(self.config.out, state)

    def resume(self, path: str) -> None:
        """Continue from the checkpoint at ``path``; drops metrics lines beyond its step."""
        state = load_checkpoint(path, self.device)
        check_resumable(state, self.config, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.stage = int(state["step"]), int(state["stage"])
        _, folders, _, lr = self.stages()[self.stage - 1]
        self._enter_stage(self.stage, folders, lr)
        for name, stream_state in state["streams"].items():
            if name in self.streams:
                self.streams[name].load_state(stream_state)
        restore_rng(state["rng"], self.generator)
        truncate_metrics(self.metrics_path, self.step)
        LOG.info("resumed from %s at step %d (stage %d)", path, self.step, self.stage)

    def _log(self, record: dict[str, Any]) -> None:
        append_metrics(self.metrics_path, record)

    # -- one step -------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One optimiser step; returns ``loss`` (the total) and each term, as floats."""
        c = self.config
        self.model.train()
        batch = self.streams["supervised"].next()
        images = as_images(batch["image"], self.device)
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
                as_images(pairs["flow_source_image"], self.device),
                as_images(pairs["image"], self.device),
            ]
            sizes += [pairs["image"].shape[0]] * 2
        parts = split_outputs(self.model(torch.cat(inputs)), sizes)
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
        """Score the model on ``val_shards`` (:func:`~.validate.evaluate_model`)."""
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
        c.write_json(os.path.join(c.out, "config.json"))
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
