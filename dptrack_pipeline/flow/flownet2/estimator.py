"""The ``"flownet2"`` flow estimator: FlowNet2 with the public checkpoint, batched, GPU first.

Options (``--checkpoint``, ``--device``, ``--precision``, ``--batch-size`` on the command line;
the rest with ``--estimator-option KEY=VALUE``):

* ``checkpoint`` (required): the public ``FlowNet2_checkpoint.pth.tar``, a local path or a
  ``gs://`` / other Beam filesystem path (read on each worker). A local path is checked by
  :meth:`FlowNet2Estimator.check_runtime` (the launcher calls it for in-process runners) and on
  load; a path that exists only inside the workers' image is fine for remote runners.
* ``device``: ``"cuda"`` (default), ``"cuda:N"`` or ``"cpu"``. Asking for CUDA where it is not
  usable is an error, never a silent CPU fallback: a CPU run of FlowNet2 is about 100x slower
  and should be chosen, not stumbled into.
* ``precision``: ``"fp32"`` (default, the published model), ``"bf16"`` or ``"fp16"``: the weights
  and convolutions in that dtype; mean subtraction, warps and the output stay fp32.
* ``batch_size``: pairs per forward pass (default 8); the pipeline hands batches of this size.
* ``fit``: ``"resize"`` (default) or ``"pad"`` to reach multiples of 64
  (:mod:`~dptrack_pipeline.flow.flownet2.inference`).
* ``correlation``: ``"matmul"`` (default, tiled matmul) or ``"loop"`` (the reference loop).
* ``channels_last``: ``None`` (default: on for CUDA), ``true`` or ``false``: NHWC activations,
  which cuDNN runs faster on tensor cores.
* ``compile``: ``torch.compile`` the network (default ``false``); worth it for long runs of one
  frame size, costs a compile per new size.
* ``trust_checkpoint``: read a checkpoint that ``weights_only`` loading refuses (see
  :mod:`~dptrack_pipeline.flow.flownet2.checkpoint`).

**One model per process.** Loaded models are kept in a process-wide table keyed by everything
that shapes them (file, device, precision, correlation, layout, compile). Every estimator in the
process with the same options (Beam makes one per DoFn instance, one per worker thread) shares
one copy of the 650 MB of weights, and a per-model lock runs one batch at a time on the device,
while the other threads decode frames and propagate labels. The table holds weak references: the
model is freed when the last estimator using it goes.

This module imports torch only in :meth:`FlowNet2Estimator._setup`, so registering the estimator
costs nothing to users of the OpenCV ones.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from dptrack_pipeline.flow.registry import FlowEstimator, ImagePair, register_estimator

PRECISIONS = ("fp32", "bf16", "fp16")
CORRELATIONS = ("matmul", "loop")


class _SharedModel:
    """A loaded network, its device and the lock that serialises its use."""

    def __init__(self, model: Any, device: Any) -> None:
        self.model = model
        self.device = device
        self.lock = threading.Lock()


_MODELS: weakref.WeakValueDictionary[tuple, _SharedModel] = weakref.WeakValueDictionary()
_MODELS_LOCK = threading.Lock()


def resolve_device(name: str) -> Any:
    """``torch.device`` for ``name``; ``RuntimeError`` when CUDA is asked for and unusable."""
    import torch

    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            reason = (
                "this torch was built without CUDA"
                if torch.version.cuda is None
                else "no CUDA device is visible (driver, CUDA_VISIBLE_DEVICES?)"
            )
            raise RuntimeError(
                f"flownet2: device {name!r} was asked for but CUDA is not usable: {reason} "
                f"(torch {torch.__version__}). Run on a GPU machine or image, or pass "
                "--device cpu to run FlowNet2 on the CPU (about 100x slower)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"flownet2: device {name!r} does not exist; "
                f"{torch.cuda.device_count()} CUDA device(s) visible"
            )
    elif device.type != "cpu":
        raise RuntimeError(f"flownet2: device must be cuda, cuda:N or cpu, got {name!r}")
    return device


@register_estimator("flownet2")
class FlowNet2Estimator(FlowEstimator):
    """FlowNet2 (Ilg et al. 2017) from the public checkpoint; see the module docstring."""

    default_options = {
        "checkpoint": None,
        "device": "cuda",
        "precision": "fp32",
        "batch_size": 8,
        "fit": "resize",
        "correlation": "matmul",
        "channels_last": None,
        "compile": False,
        "trust_checkpoint": False,
    }
    transient_attributes = ("_shared",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._shared: _SharedModel | None = None

    @property
    def preferred_batch_size(self) -> int:  # type: ignore[override]
        return int(self._options["batch_size"])

    def _validate_options(self, options: dict[str, Any]) -> None:
        checkpoint = options["checkpoint"]
        if not checkpoint or not isinstance(checkpoint, str):
            raise ValueError(
                "flownet2 needs a checkpoint: --checkpoint PATH to the public "
                "FlowNet2_checkpoint.pth.tar (a local path or gs://...)"
            )
        device = options["device"]
        if not isinstance(device, str) or not (
            device in ("cuda", "cpu") or (device.startswith("cuda:") and device[5:].isdigit())
        ):
            raise ValueError(f"option 'device' must be cuda, cuda:N or cpu, got {device!r}")
        if options["precision"] not in PRECISIONS:
            raise ValueError(
                f"option 'precision' must be one of {PRECISIONS}, got {options['precision']!r}"
            )
        size = options["batch_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"option 'batch_size' must be an int >= 1, got {size!r}")
        if options["fit"] not in ("resize", "pad"):
            raise ValueError(f"option 'fit' must be resize or pad, got {options['fit']!r}")
        if options["correlation"] not in CORRELATIONS:
            raise ValueError(
                f"option 'correlation' must be one of {CORRELATIONS}, "
                f"got {options['correlation']!r}"
            )
        for flag in ("compile", "trust_checkpoint"):
            if not isinstance(options[flag], bool):
                raise ValueError(f"option {flag!r} must be true or false, got {options[flag]!r}")
        if options["channels_last"] not in (None, True, False):
            raise ValueError(
                f"option 'channels_last' must be null, true or false, "
                f"got {options['channels_last']!r}"
            )

    def provenance(self) -> dict[str, Any]:
        """The checkpoint's SHA-256 and size when it is a local file (remote paths: not hashed,
        to keep the launcher from downloading 650 MB)."""
        import hashlib

        checkpoint = self._options["checkpoint"]
        if "://" in checkpoint or not os.path.isfile(checkpoint):
            return {"checkpoint": checkpoint, "checkpoint_sha256": None}
        digest = hashlib.sha256()
        with open(checkpoint, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        return {
            "checkpoint": checkpoint,
            "checkpoint_sha256": digest.hexdigest(),
            "checkpoint_bytes": os.path.getsize(checkpoint),
        }

    def check_runtime(self) -> None:
        """Fail now, with the reason, if this process cannot read the checkpoint or use the device.

        Not done at construction: a launcher for remote workers may have neither the GPU nor a
        checkpoint that is baked into the workers' image.
        """
        checkpoint = self._options["checkpoint"]
        if "://" not in checkpoint and not os.path.isfile(checkpoint):
            raise RuntimeError(f"flownet2 checkpoint not found: {checkpoint}")
        resolve_device(self._options["device"])

    def _setup(self) -> None:
        device = resolve_device(self._options["device"])
        channels_last = self._options["channels_last"]
        if channels_last is None:
            channels_last = device.type == "cuda"
        key = (
            self._options["checkpoint"],
            str(device),
            self._options["precision"],
            self._options["correlation"],
            bool(channels_last),
            self._options["compile"],
        )
        with _MODELS_LOCK:
            shared = _MODELS.get(key)
            if shared is None:
                shared = _SharedModel(self._load(device, bool(channels_last)), device)
                _MODELS[key] = shared
        self._shared = shared

    def _load(self, device: Any, channels_last: bool) -> Any:
        import torch

        from dptrack_pipeline.flow.flownet2.checkpoint import load_flownet2
        from dptrack_pipeline.flow.flownet2.correlation import correlation, correlation_reference

        correlation_fn = (
            correlation if self._options["correlation"] == "matmul" else (correlation_reference)
        )
        model = load_flownet2(
            self._options["checkpoint"],
            trust=self._options["trust_checkpoint"],
            correlation_fn=correlation_fn,
        )
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            self._options["precision"]
        ]
        model = model.to(device=device, dtype=dtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self._options["compile"]:
            model = torch.compile(model)
        return model

    def estimate_batch(self, pairs: Sequence[ImagePair]) -> list[np.ndarray]:
        from dptrack_pipeline.flow.flownet2.inference import run_network

        checked = self.check_pairs(pairs)
        self.setup()
        assert self._shared is not None
        flows: list[np.ndarray | None] = [None] * len(checked)
        # One forward pass per run of same-size pairs, at most batch_size long.
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, (first, _) in enumerate(checked):
            by_size.setdefault(first.shape, []).append(index)
        size = self.preferred_batch_size
        for indices in by_size.values():
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                with self._shared.lock:
                    out = run_network(
                        self._shared.model,
                        [checked[i] for i in chunk],
                        self._shared.device,
                        self._options["fit"],
                    )
                for i, flow in zip(chunk, out, strict=True):
                    flows[i] = flow
        return self.check_flows(flows, checked)
