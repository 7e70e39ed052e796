"""How are a shard table's columns turned into numbers? Small helpers the figures share.

* :func:`flat_values` - a list column (one value per point or joint) as one array, with the row
  of each value, so per-offset or per-video pools are a mask away.
* :func:`kept_points` - the kept DensePose points of each row.
* :func:`median` / :func:`mean` - over the finite values, NaN when there is none.
* :func:`split_by` - the rows of each group, by one sort.
* :func:`json_ready` - plain JSON data (NaN becomes ``null``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers and NaN/inf floats ``None`` (JSON has no
    NaN), recursively through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flat_values(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column's values and, for each value, the index of its row: ``(values, rows)``."""
    column = table.column(name).combine_chunks()
    values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    rows = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64), np.asarray(rows, dtype=np.int64)


def kept_points(table: pa.Table) -> np.ndarray:
    """Kept DensePose points of each row (the length of ``dp_x``), int64."""
    lengths = pc.list_value_length(table.column("dp_x")).to_numpy(zero_copy_only=False)
    return np.nan_to_num(np.asarray(lengths, dtype=np.float64)).astype(np.int64)


def median(values: np.ndarray) -> float:
    """Median of the finite values; NaN when there is none."""
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN when there is none."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def split_by(group: np.ndarray, count: int) -> list[np.ndarray]:
    """For each group ``0..count-1``, the indices of the elements of ``group`` in it (one sort,
    not one scan per group: a folder can hold thousands of videos)."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(count + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(count)]
