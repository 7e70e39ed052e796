"""How is a shard file named?

Every output file of a shard kind is ``<prefix>-<index>-of-<num_shards>.<ext>`` with both numbers
zero-padded to 5 digits, e.g. ``instances-00003-of-00008.parquet`` (the TFDS / Beam
``-SSSSS-of-NNNNN`` convention). The design reasons:

* The name alone says whether a folder is complete: all of ``00000..N-1`` must be present, which
  :func:`dptrack_pipeline.shards.reader.verify_output` checks, and an incomplete glob is obvious.
* Fixed-width numbers make a plain lexicographic sort the shard order. The width is fixed at 5,
  so ``num_shards`` is capped at 99999 rather than letting wider numbers break that sort.
* The instance table and the dense arrays of a shard share the index (``instances-00003-...``
  points into ``dense-00003-...``), so a reader of one shard opens exactly two files.
* Names carry no timestamps, hosts or worker ids: two runs write the same names.
"""

from __future__ import annotations

import re

PREFIX_INSTANCES = "instances"
PREFIX_DENSE = "dense"
PREFIX_REJECTS = "rejects"
PREFIX_PAIRS = "pairs"

EXT_PARQUET = "parquet"
EXT_HDF5 = "h5"

EXT_FOR_PREFIX = {
    PREFIX_INSTANCES: EXT_PARQUET,
    PREFIX_DENSE: EXT_HDF5,
    PREFIX_REJECTS: EXT_PARQUET,
    PREFIX_PAIRS: EXT_PARQUET,
}
"""The extension each shard kind is written with."""

DATASET_INFO_FILENAME = "dataset_info.json"

MAX_SHARDS = 99999
_WIDTH = 5
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*$")
_EXT_RE = re.compile(r"^[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*$")
_NAME_RE = re.compile(
    r"^(?P<prefix>.+)-(?P<index>[0-9]{5})-of-(?P<num>[0-9]{5})\.(?P<ext>[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)$"
)


def shard_filename(prefix: str, index: int, num_shards: int, ext: str) -> str:
    """Name of shard ``index`` of ``num_shards``.

    Args:
        prefix: shard kind, e.g. :data:`PREFIX_INSTANCES`; letters, digits, ``_``, ``.``, ``-``.
        index: 0-based shard index, ``0 <= index < num_shards``.
        num_shards: total number of shards, ``1 <= num_shards <= 99999``.
        ext: extension without the dot (a leading dot is tolerated), e.g. ``"parquet"``.

    Returns:
        e.g. ``"instances-00003-of-00008.parquet"``.

    Raises:
        ValueError: on an out-of-range index or count, or a malformed prefix or extension.

    Example:
        >>> shard_filename("instances", 3, 8, "parquet")
        'instances-00003-of-00008.parquet'
    """
    ext = ext[1:] if ext.startswith(".") else ext
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"bad shard prefix {prefix!r}")
    if not _EXT_RE.match(ext):
        raise ValueError(f"bad shard extension {ext!r}")
    if isinstance(num_shards, bool) or not 1 <= int(num_shards) <= MAX_SHARDS:
        raise ValueError(f"num_shards must be in [1, {MAX_SHARDS}], got {num_shards!r}")
    if isinstance(index, bool) or not 0 <= int(index) < int(num_shards):
        raise ValueError(f"shard index must be in [0, {num_shards}), got {index!r}")
    return f"{prefix}-{int(index):0{_WIDTH}d}-of-{int(num_shards):0{_WIDTH}d}.{ext}"


def parse_shard_filename(name: str) -> tuple[str, int, int, str]:
    """Inverse of :func:`shard_filename`.

    Args:
        name: a file name (a leading folder is ignored).

    Returns:
        ``(prefix, index, num_shards, ext)``.

    Raises:
        ValueError: when ``name`` is not a shard name or its numbers are inconsistent.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _NAME_RE.match(base)
    if not match:
        raise ValueError(
            f"{name!r} is not a shard file name like 'instances-00003-of-00008.parquet'"
        )
    index, num = int(match["index"]), int(match["num"])
    if not 0 <= index < num:
        raise ValueError(f"{name!r}: shard index {index} is not in [0, {num})")
    return match["prefix"], index, num, match["ext"]


def is_shard_filename(name: str, prefix: str | None = None) -> bool:
    """Whether ``name`` parses as a shard name (with the given prefix, if any)."""
    try:
        parsed_prefix, _, _, _ = parse_shard_filename(name)
    except ValueError:
        return False
    return prefix is None or parsed_prefix == prefix
