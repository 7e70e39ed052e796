"""Where do the output schemas come from, and how do they become Arrow schemas?

``schemas/`` at the repository root is the single source of truth for every output file: plain,
language-neutral JSON that a reader in any language can use without importing dptrack. This module
is the only place that reads it:

* Parquet files (``instances``, ``rejects``) are described by a list of columns, each with an
  Arrow type string (``"int64"``, ``"list<float32>"``, ``"fixed_size_list<float32>[4]"``),
  ``nullable``, ``description`` and an optional ``unit``. :func:`load_parquet_schema` turns that
  into a :class:`pyarrow.Schema`, with each column's description (and unit) as field metadata and
  the schema's name and version as schema metadata, so a Parquet file carries its own docs.
* The HDF5 file (``dense``) is described by datasets with symbolic shapes (``["N", "S", "S", 3]``),
  chunking, compression and attributes; :func:`load_hdf5_schema` returns the document as a dict and
  :func:`resolve_shape` turns a symbolic shape into numbers.
* ``dataset_info`` is a JSON Schema (draft 2020-12) returned by :func:`load_json_schema`.

Locating the files: ``schemas/`` is installed as the package ``dptrack_schemas`` (see
``pyproject.toml``), so an installed worker (Dataflow) finds it with
:func:`importlib.resources.files`. An editable install made before ``schemas/__init__.py`` existed,
or running from a plain checkout, has no such package; the loader then falls back to the
``schemas/`` folder beside the ``dptrack_pipeline`` package.

The Arrow type strings are parsed by hand (:func:`parse_arrow_type`) because Arrow has no public
parser for nested type strings: :func:`pyarrow.type_for_alias` handles primitives only, and
``str(pa.list_(pa.float32()))`` prints ``list<item: float>``, which is Arrow-version specific and
not what a non-Python reader would want to parse. The grammar is deliberately tiny::

    type := primitive | "list<" type ">" | "fixed_size_list<" type ">[" int "]"
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

CURRENT_VERSIONS: dict[str, int] = {
    "instances": 2,
    "dense": 2,
    "rejects": 1,
    "pairs": 1,
    "dataset_info": 1,
    "pairs_info": 1,
}
"""The version of each schema that dptrack writes. A new version of a file kind gets a new
``schemas/<name>.v<version>.json`` beside the old one, which stays readable."""

READABLE_VERSIONS: dict[str, tuple[int, ...]] = {"instances": (1, 2), "dense": (1, 2)}
"""Older versions of a file kind the readers still accept (others: only the current one)."""


def current_version(name: str) -> int:
    """The version of schema ``name`` that dptrack writes.

    Raises:
        KeyError: an unknown schema name.
    """
    try:
        return CURRENT_VERSIONS[name]
    except KeyError:
        raise KeyError(f"unknown schema {name!r}; schemas: {sorted(CURRENT_VERSIONS)}") from None


def readable_versions(name: str) -> tuple[int, ...]:
    """Every version of schema ``name`` the readers accept."""
    return READABLE_VERSIONS.get(name, (current_version(name),))


SCHEMA_PACKAGE = "dptrack_schemas"
_FALLBACK_DIR = Path(__file__).resolve().parents[2] / "schemas"

_PRIMITIVES = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
}
_PRIMITIVE_NAMES = {v: k for k, v in _PRIMITIVES.items()}
_FIXED_RE = re.compile(r"^fixed_size_list<(?P<inner>.+)>\[(?P<size>[0-9]+)\]$")
_LIST_RE = re.compile(r"^list<(?P<inner>.+)>$")


def parse_arrow_type(text: str) -> pa.DataType:
    """Parse a schema type string into an Arrow type.

    Args:
        text: e.g. ``"float32"``, ``"list<uint8>"``, ``"fixed_size_list<float32>[4]"``.

    Returns:
        The Arrow type; list items are nullable (Arrow's default), which matches what
        :func:`pyarrow.parquet.read_table` returns.

    Raises:
        ValueError: for anything outside the grammar in the module docstring.

    Example:
        >>> parse_arrow_type("fixed_size_list<float32>[4]")
        FixedSizeListType(fixed_size_list<item: float>[4])
    """
    s = text.strip()
    if s in _PRIMITIVES:
        return _PRIMITIVES[s]
    match = _FIXED_RE.match(s)
    if match:
        size = int(match["size"])
        if size < 1:
            raise ValueError(f"fixed_size_list size must be >= 1 in {text!r}")
        return pa.list_(parse_arrow_type(match["inner"]), size)
    match = _LIST_RE.match(s)
    if match:
        return pa.list_(parse_arrow_type(match["inner"]))
    raise ValueError(
        f"unknown Arrow type string {text!r}; expected one of {sorted(_PRIMITIVES)}, "
        "'list<T>' or 'fixed_size_list<T>[n]'"
    )


def arrow_type_to_string(dtype: pa.DataType) -> str:
    """Inverse of :func:`parse_arrow_type` (used in error messages and tests)."""
    if dtype in _PRIMITIVE_NAMES:
        return _PRIMITIVE_NAMES[dtype]
    if pa.types.is_fixed_size_list(dtype):
        return f"fixed_size_list<{arrow_type_to_string(dtype.value_type)}>[{dtype.list_size}]"
    if pa.types.is_list(dtype):
        return f"list<{arrow_type_to_string(dtype.value_type)}>"
    return str(dtype)


def _schema_file_text(filename: str) -> str:
    try:
        resource = importlib.resources.files(SCHEMA_PACKAGE).joinpath(filename)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except ModuleNotFoundError:
        pass
    path = _FALLBACK_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"schema file {filename!r} is neither in package {SCHEMA_PACKAGE!r} "
            f"nor in {_FALLBACK_DIR}"
        )
    return path.read_text(encoding="utf-8")


@functools.cache
def _load_document(name: str, version: int) -> str:
    # Cached as text so every caller gets its own fresh dict from json.loads.
    return _schema_file_text(f"{name}.v{int(version)}.json")


def load_document(name: str, version: int | None = None) -> dict[str, Any]:
    """The raw JSON document ``schemas/<name>.v<version>.json`` as a new dict (``version``
    ``None``: the current one)."""
    return json.loads(_load_document(name, current_version(name) if version is None else version))


def load_parquet_columns(name: str, version: int | None = None) -> list[dict[str, Any]]:
    """The ``columns`` list of a Parquet schema document, in file order."""
    version = current_version(name) if version is None else version
    doc = load_document(name, version)
    if "columns" not in doc:
        raise ValueError(f"schema {name}.v{version} is not a Parquet schema (no 'columns')")
    return doc["columns"]


@functools.cache
def load_parquet_schema(name: str, version: int | None = None) -> pa.Schema:
    """Arrow schema of a Parquet file kind (``"instances"`` or ``"rejects"``).

    Field metadata holds ``description`` (and ``unit`` when given); schema metadata holds
    ``dptrack.schema`` (the name) and ``dptrack.schema_version``. ``version`` ``None``: the
    current one.
    """
    version = current_version(name) if version is None else version
    doc = load_document(name, version)
    if doc.get("name") != name or doc.get("version") != version:
        raise ValueError(
            f"schema file {name}.v{version}.json declares name={doc.get('name')!r}, "
            f"version={doc.get('version')!r}"
        )
    fields = []
    for column in load_parquet_columns(name, version):
        metadata = {"description": column["description"]}
        if column.get("unit"):
            metadata["unit"] = column["unit"]
        fields.append(
            pa.field(
                column["name"],
                parse_arrow_type(column["type"]),
                nullable=bool(column["nullable"]),
                metadata=metadata,
            )
        )
    return pa.schema(
        fields,
        metadata={"dptrack.schema": name, "dptrack.schema_version": str(version)},
    )


def load_hdf5_schema(name: str = "dense", version: int | None = None) -> dict[str, Any]:
    """The HDF5 schema document (``datasets`` and ``attrs``) as a new dict."""
    version = current_version(name) if version is None else version
    doc = load_document(name, version)
    if "datasets" not in doc:
        raise ValueError(f"schema {name}.v{version} is not an HDF5 schema (no 'datasets')")
    return doc


def load_json_schema(name: str = "dataset_info", version: int | None = None) -> dict[str, Any]:
    """A JSON Schema document (draft 2020-12), e.g. the one for ``dataset_info.json``."""
    return load_document(name, version)


def resolve_shape(shape: list[Any], dims: dict[str, int]) -> tuple[int | None, ...]:
    """Replace symbolic dimensions of an HDF5 schema shape by numbers.

    Args:
        shape: e.g. ``["N", "S", "S", 3]``; ``None`` (JSON ``null``) stays ``None`` (unlimited).
        dims: values for the symbols, e.g. ``{"N": 10, "S": 256}``.

    Raises:
        KeyError: when a symbol has no value.
    """
    out: list[int | None] = []
    for dim in shape:
        if dim is None or isinstance(dim, int):
            out.append(dim)
        elif dim in dims:
            out.append(int(dims[dim]))
        else:
            raise KeyError(f"no value for symbolic dimension {dim!r} of shape {shape}")
    return tuple(out)


def schema_differences(actual: pa.Schema, expected: pa.Schema) -> list[str]:
    """Human-readable differences between two Arrow schemas (names, order, types, nullability).

    Metadata is ignored. Returns an empty list when the schemas match.
    """
    problems: list[str] = []
    actual_names, expected_names = actual.names, expected.names
    missing = [n for n in expected_names if n not in actual_names]
    extra = [n for n in actual_names if n not in expected_names]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    common_actual = [n for n in actual_names if n in expected_names]
    common_expected = [n for n in expected_names if n in actual_names]
    if common_actual != common_expected:
        problems.append(f"column order {common_actual} differs from the schema's {common_expected}")
    for name in common_expected:
        a, e = actual.field(name), expected.field(name)
        if not a.type.equals(e.type):
            problems.append(
                f"column {name!r} has type {arrow_type_to_string(a.type)}, "
                f"expected {arrow_type_to_string(e.type)}"
            )
        if a.nullable != e.nullable:
            problems.append(f"column {name!r} has nullable={a.nullable}, expected {e.nullable}")
    return problems
