"""Work checkpoints: what a worker computed for one element, kept until the job finishes, so that
``--resume`` does not compute it again. :class:`PartStore`.

Beam writes shards only after its last shuffle, so a job killed while flows are still being
computed has no complete shard (:mod:`dptrack_pipeline.shards.progress`) and would start over.
So each flow worker saves the outputs of each element it finishes (a run of one video's windows,
or one chunk of anchors: packed crops and flows, reject rows, the element's counters) as a
*part* in ``<out>/.dptrack-progress/parts/``, and a resumed job's worker loads the part instead
of decoding and estimating again. Outputs are a function of the element and the run key only, so
a loaded part yields exactly what computing would: the resumed folder stays byte-identical to an
uninterrupted run. Parts are removed with the rest of the progress folder when the manifest is
written; while a job runs they take about as much disk as its shards.

A part is named by the SHA-256 of the run key and the element's key (another run's parts never
match) and written atomically. It is a pickle read back with an allow-list unpickler: only
numpy arrays and dtypes, built-in containers and ``dptrack_pipeline`` classes can be built from
it, so a file planted in the folder cannot run code on ``--resume``. An unreadable part is
computed again. Local folders only (a ``gs://`` job keeps no parts).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
from typing import Any

from dptrack_pipeline.shards.atomic import atomic_write, is_remote, local_path
from dptrack_pipeline.shards.progress import PROGRESS_DIR

PARTS_DIR = "parts"

_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_BUILTINS = {"tuple", "list", "dict", "set", "frozenset", "bytes", "bytearray", "int", "float",
             "str", "bool", "complex", "slice"}  # fmt: skip


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY or (module == "builtins" and name in _BUILTINS):
            return super().find_class(module, name)
        if module.startswith("numpy.dtypes") or module.split(".")[0] == "dptrack_pipeline":
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"a work part may not hold {module}.{name}")


class PartStore:
    """The parts of one job (``out``, ``run_key``); ``enabled`` is false for remote folders."""

    def __init__(self, out: str, run_key: str) -> None:
        self.run_key = run_key
        self.enabled = not is_remote(out)
        self.folder = os.path.join(local_path(out), PROGRESS_DIR, PARTS_DIR)

    def _path(self, key: str) -> str:
        name = hashlib.sha256(f"{self.run_key}\0{key}".encode()).hexdigest()[:40]
        return os.path.join(self.folder, f"{name}.pkl")

    def load(self, key: str) -> list[Any] | None:
        """The saved outputs of element ``key``, or ``None`` (none, or unreadable)."""
        if not self.enabled:
            return None
        try:
            with open(self._path(key), "rb") as f:
                data = f.read()
        except OSError:
            return None
        try:
            outputs = _Unpickler(io.BytesIO(data)).load()
        except Exception:  # a damaged or foreign part: compute the element again
            return None
        return outputs if isinstance(outputs, list) else None

    def save(self, key: str, outputs: list[Any]) -> None:
        """Keep the outputs of element ``key`` (atomically)."""
        if not self.enabled:
            return
        os.makedirs(self.folder, exist_ok=True)
        with atomic_write(self._path(key)) as tmp, open(tmp, "wb") as f:
            pickle.dump(outputs, f, protocol=pickle.HIGHEST_PROTOCOL)

    def count(self) -> int:
        """How many parts are saved (any run key)."""
        with contextlib.suppress(FileNotFoundError):
            return sum(n.endswith(".pkl") for n in os.listdir(self.folder))
        return 0
