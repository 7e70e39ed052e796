"""How do rows become Arrow columns of exactly the schema's types?

:func:`build_table` turns row dicts into a :class:`pyarrow.Table` of a schema from ``schemas/``,
column by column, and refuses what the schema does not allow before anything is written: a
missing, extra or null value, a string where a number belongs, a lossy integer cast (an int
column refuses 1.5, a uint8 column refuses 300), a fixed-size list of the wrong length. Errors
name the column.

List columns are built from one flat numpy array and an offsets array per column (not from
Python lists of lists), which is what keeps a shard of thousands of 100-point rows fast to build.
NumPy types are mapped by hand (:data:`_NUMPY_DTYPES`): ``DataType.to_pandas_dtype()`` would
import pandas, which dptrack does not depend on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY_DTYPES = {
    pa.bool_(): np.dtype(np.bool_),
    pa.int8(): np.dtype(np.int8),
    pa.int16(): np.dtype(np.int16),
    pa.int32(): np.dtype(np.int32),
    pa.int64(): np.dtype(np.int64),
    pa.uint8(): np.dtype(np.uint8),
    pa.uint16(): np.dtype(np.uint16),
    pa.uint32(): np.dtype(np.uint32),
    pa.uint64(): np.dtype(np.uint64),
    pa.float32(): np.dtype(np.float32),
    pa.float64(): np.dtype(np.float64),
}


def _numpy_dtype(dtype: pa.DataType, column: str) -> np.dtype:
    # Not DataType.to_pandas_dtype(): that imports pandas, which dptrack does not depend on.
    try:
        return _NUMPY_DTYPES[dtype]
    except KeyError:
        raise ValueError(f"column {column!r}: {dtype} is not a numeric type") from None


def _numeric(value: Any, dtype: pa.DataType, column: str) -> np.ndarray:
    """A flat numpy array of ``value`` in ``dtype``'s numpy type, refusing lossy integer casts."""
    target = _numpy_dtype(dtype, column)
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"column {column!r}: expected numbers, got dtype {arr.dtype}")
    arr = arr.reshape(-1)
    if target.kind in "iu" and arr.size:
        if arr.dtype.kind == "f" and not (
            np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
        ):
            raise ValueError(f"column {column!r}: expected integers, got non-integral values")
        info = np.iinfo(target)
        if arr.min() < info.min or arr.max() > info.max:
            raise ValueError(
                f"column {column!r}: values outside [{info.min}, {info.max}] of {target}"
            )
    return arr.astype(target, copy=False)


def _scalar_column(values: list[Any], field: pa.Field) -> pa.Array:
    if pa.types.is_string(field.type):
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise ValueError(f"column {field.name!r}: expected str, got {bad[0]!r}")
        return pa.array(values, type=field.type)
    if pa.types.is_floating(field.type):
        try:
            floats = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {field.name!r}: expected numbers ({exc})") from exc
        return pa.array(_numeric(floats, field.type, field.name))
    arr = np.asarray(values) if values else np.zeros((0,), np.int64)
    return pa.array(_numeric(arr, field.type, field.name), type=field.type)


def _list_column(values: list[Any], field: pa.Field) -> pa.Array:
    value_type = field.type.value_type
    if pa.types.is_string(value_type):
        for v in values:
            if not all(isinstance(s, str) for s in v):
                raise ValueError(f"column {field.name!r}: expected a list of str")
        return pa.array([list(v) for v in values], type=field.type)
    flats = [_numeric(v, value_type, field.name) for v in values]
    flat = np.concatenate(flats) if flats else np.zeros((0,), _numpy_dtype(value_type, field.name))
    child = pa.array(flat, type=value_type)
    if pa.types.is_fixed_size_list(field.type):
        size = field.type.list_size
        bad = [len(f) for f in flats if len(f) != size]
        if bad:
            raise ValueError(f"column {field.name!r}: expected {size} values, got {bad[0]}")
        return pa.FixedSizeListArray.from_arrays(child, size)
    offsets = np.zeros(len(flats) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in flats], out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"column {field.name!r}: more than 2**31 values in one shard")
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), child)


def build_table(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """An Arrow table of ``rows`` (dicts keyed by column) with exactly ``schema``.

    Raises:
        ValueError: on a missing, extra, null or badly typed value (naming the column).
    """
    columns = []
    for field in schema:
        values = [row[field.name] for row in rows]
        if not field.nullable and any(v is None for v in values):
            raise ValueError(f"column {field.name!r} is not nullable but a row holds None")
        try:
            if pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type):
                columns.append(_list_column(values, field))
            else:
                columns.append(_scalar_column(values, field))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise ValueError(f"column {field.name!r}: {exc}") from exc
    return pa.Table.from_arrays(columns, schema=schema)
