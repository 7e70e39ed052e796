"""Where are a run's checkpoints, what do they hold, and how are they written?

``OUT/checkpoints/step-NNNNNNN.pt`` (the step, 7 digits) every ``checkpoint_every`` steps and at
the end of each stage; ``OUT/checkpoints/last.pt`` is a copy of the newest, which ``--resume``
reads. Both go through :func:`~dptrack_pipeline.shards.atomic.atomic_write`, so a run killed
while saving leaves the previous complete checkpoint (and at worst a hidden temporary file),
never a truncated ``last.pt``.

A checkpoint (:func:`torch.save` of a dict) holds ``model`` and ``optimizer`` state dicts, the
``step``, the ``stage``, ``streams`` (each data stream's position, see :mod:`.streams`), ``rng``
(the global torch RNG and the TPS generator) and ``config`` (:meth:`TrainConfig.to_dict`), so
a resumed run draws the same batches and TPS warps as an uninterrupted one, and a resume into a
model of another shape is refused (:func:`check_resumable`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.train.config import TrainConfig

FOLDER = "checkpoints"
LAST = "last.pt"
MODEL_FIELDS = ("stacks", "channels", "depth", "stem_stride")
"""The :class:`TrainConfig` fields that fix the model's parameter shapes."""


def checkpoint_folder(out: str) -> str:
    """``OUT/checkpoints``."""
    return os.path.join(out, FOLDER)


def step_name(step: int) -> str:
    """``step-NNNNNNN.pt``."""
    return f"step-{step:07d}.pt"


def latest_checkpoint(out: str) -> str | None:
    """Path of ``OUT/checkpoints/last.pt`` if it exists."""
    path = os.path.join(checkpoint_folder(out), LAST)
    return path if os.path.exists(path) else None


def save_checkpoint(out: str, state: dict[str, Any]) -> str:
    """Write ``state`` as ``step-NNNNNNN.pt`` (``state["step"]``) and as ``last.pt`` under
    ``OUT/checkpoints`` (which must exist), each all or nothing; returns the step file's path."""
    folder = checkpoint_folder(out)
    path = os.path.join(folder, step_name(int(state["step"])))
    for target in (path, os.path.join(folder, LAST)):
        with atomic_write(target) as tmp:
            torch.save(state, tmp)
    return path


def load_checkpoint(path: str, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The dict :func:`save_checkpoint` wrote, tensors on ``device``."""
    return torch.load(path, map_location=device, weights_only=False)


def check_resumable(state: dict[str, Any], config: TrainConfig, path: str) -> None:
    """Refuse to resume checkpoint ``state`` (read from ``path``) into a run of ``config`` whose
    model has another shape.

    Raises:
        ValueError: naming the first of :data:`MODEL_FIELDS` that differs.
    """
    saved = TrainConfig.from_dict(state["config"])
    for key in MODEL_FIELDS:
        if getattr(saved, key) != getattr(config, key):
            raise ValueError(
                f"cannot resume {path}: it has {key}={getattr(saved, key)}, "
                f"this run {getattr(config, key)}"
            )


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The random state a resume restores: the global torch RNG and the TPS ``generator``."""
    return {"torch": torch.random.get_rng_state(), "tps": generator.get_state()}


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Inverse of :func:`rng_state`."""
    torch.random.set_rng_state(state["torch"])
    generator.set_state(state["tps"])
