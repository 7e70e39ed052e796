"""Read a FlowNet2 checkpoint and load it strictly, with errors that name the bad tensors.

The public ``FlowNet2_checkpoint.pth.tar`` is a ``torch.save`` of a dict with ``epoch``,
``state_dict`` and ``best_EPE``. Also accepted: a bare state dict, and names prefixed with
``module.`` (saved from ``DataParallel``). Nothing else is rewritten: a checkpoint of another
architecture fails with the first missing, unexpected and mis-shaped tensors named, not with
PyTorch's list of all 220.

Safety: the file is read with ``torch.load(weights_only=True)``, which refuses arbitrary pickled
objects; numpy scalars (old checkpoints store ``best_EPE`` as one) are allowed explicitly. A file
that still needs more can be read with ``trust=True`` (``--estimator-option trust_checkpoint=true``)
— only for a file from a source you trust, since that runs its pickle.

Paths with a scheme (``gs://...``) are read through Beam's ``FileSystems`` when Beam is installed,
so Dataflow workers can read the checkpoint from a bucket.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping

import numpy as np
import torch

from dptrack_pipeline.flow.flownet2.model import FlowNet2

SHOW = 3  # how many offending names of each kind an error lists


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def _read_bytes(path: str) -> io.BytesIO:
    if "://" in path:
        try:
            from apache_beam.io.filesystems import FileSystems
        except ImportError as err:  # pragma: no cover - Beam is a dependency
            raise CheckpointError(f"{path}: reading remote paths needs apache-beam") from err
        with FileSystems.open(path) as handle:
            return io.BytesIO(handle.read())
    if not os.path.isfile(path):
        raise CheckpointError(f"FlowNet2 checkpoint not found: {path}")
    with open(path, "rb") as handle:
        return io.BytesIO(handle.read())


def _numpy_safe_globals() -> list:
    names = [np.dtype, np.float64, np.float32, np.int64]
    names += [type(np.dtype(t)) for t in ("float64", "float32", "int64")]
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return [*names, scalar]


def read_state_dict(path: str, trust: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, on the CPU, names normalised as the module docstring says.

    Raises:
        CheckpointError: unreadable file, refused pickle content, or no tensor dict inside.
    """
    data = _read_bytes(path)
    try:
        if trust:
            loaded = torch.load(data, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                loaded = torch.load(data, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line]
        if refused:
            global_name = refused[0].split("GLOBAL", 1)[-1].split(" was ")[0].strip()
            raise CheckpointError(
                f"{path}: holds a pickled object ({global_name}) that torch.load("
                "weights_only=True) refuses. If the file comes from a source you trust, pass "
                "trust_checkpoint=true."
            ) from err
        detail = [line.strip() for line in str(err).splitlines() if line.strip()][-1:]
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({' '.join(detail) or 'unpickling failed'})"
        ) from err
    except Exception as err:  # zip/pickle format errors of every kind
        detail = [line.strip() for line in str(err).splitlines() if line.strip()][-1:]
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({' '.join(detail) or 'unpickling failed'})"
        ) from err
    state = loaded.get("state_dict", loaded) if isinstance(loaded, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(
            f"{path}: expected a dict with 'state_dict' (or a state dict), "
            f"got {type(loaded).__name__}"
        )
    state = dict(state)
    if all(name.startswith("module.") for name in state):
        state = {name[len("module.") :]: value for name, value in state.items()}
    not_tensors = [name for name, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: entries are not tensors: {not_tensors[:SHOW]}")
    return state


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Name -> shape of every FlowNet2 tensor (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = FlowNet2()
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    source: str = "checkpoint",
) -> None:
    """Raise :class:`CheckpointError` unless ``state`` has exactly ``expected``'s names and shapes.

    The message names the first :data:`SHOW` missing, unexpected and mis-shaped tensors (in the
    model's order) and how many of each there are.
    """
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    misshaped = [
        f"{name} {tuple(state[name].shape)} (expected {expected[name]})"
        for name in expected
        if name in state and tuple(state[name].shape) != tuple(expected[name])
    ]
    problems = []
    kinds = (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
    for label, names in kinds:
        if names:
            more = f" and {len(names) - SHOW} more" if len(names) > SHOW else ""
            problems.append(f"{len(names)} {label}: {', '.join(names[:SHOW])}{more}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit FlowNet2 ({len(expected)} tensors expected, "
            f"{len(state)} found): " + "; ".join(problems)
        )


def load_flownet2(path: str, trust: bool = False, **model_kwargs) -> FlowNet2:
    """A :class:`FlowNet2` in eval mode on the CPU with the checkpoint's weights, loaded strictly.

    Raises:
        CheckpointError: see :func:`read_state_dict` and :func:`check_state_dict`.
    """
    state = read_state_dict(path, trust=trust)
    check_state_dict(state, expected_shapes(), source=path)
    with torch.device("meta"):
        model = FlowNet2(**model_kwargs)
    model.load_state_dict(state, strict=True, assign=True)
    for name, tensor in model.state_dict().items():
        if not tensor.dtype.is_floating_point:
            raise CheckpointError(f"{path}: tensor {name} is {tensor.dtype}, not floating point")
    return model.float().eval()


def write_random_checkpoint(path: str, seed: int = 0) -> None:
    """Write a checkpoint of FlowNet2's own random initialisation, in the public file's layout.

    For tests and benchmarks: it has exactly the public names and shapes, so it exercises the
    loader and the network; its flows mean nothing.
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = FlowNet2()
    finally:
        torch.random.set_rng_state(generator_state)
    torch.save({"epoch": 0, "state_dict": model.state_dict(), "best_EPE": 0.0}, path)
