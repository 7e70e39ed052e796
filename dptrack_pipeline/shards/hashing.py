"""Which shard does an example go to?

An example is assigned to a shard by a salted hash of a **stable key** (for dptrack: the source
annotation's ``video_id`` and ``annotation_id``, chosen by the Beam layer), never by arrival order,
worker or bundle. Together with the sort inside each shard
(:func:`dptrack_pipeline.shards.parquet_writer.write_instance_shard`) this makes the output bytes
a function of the input only, as in TFDS' ``hashing`` + ``shuffle`` modules.

Why SHA-256 and not Python's :func:`hash`: ``hash(str)`` is randomised per process
(``PYTHONHASHSEED``), so two Beam workers, or two runs, would disagree. SHA-256 from :mod:`hashlib`
is in the standard library, identical on every platform and Python version, and fast enough
(about 2 us per short key, Python call included, on the 2-core dev machine) next to decoding a
frame. Only its first 8 bytes are used, read big-endian, giving an unsigned 64-bit integer;
``value % num_shards`` then has a modulo bias below ``num_shards / 2**64``, i.e. none that matters.

The salt namespaces the hash: changing it reshuffles every example across shards without touching
the keys (useful to decorrelate two datasets built from the same keys). The key and salt are
joined with a NUL byte so that ``("ab", "c")`` and ``("a", "bc")`` cannot collide.

The same module digests whole files (:func:`file_digest`): the manifest records a SHA-256 and a
size per shard so that :func:`~dptrack_pipeline.shards.reader.verify_output` can tell a complete,
untouched folder from a truncated or altered one.
"""

from __future__ import annotations

import hashlib

DEFAULT_SALT = "dptrack"
_READ_BLOCK = 1 << 20


def stable_hash(key: str, salt: str = DEFAULT_SALT) -> int:
    """Deterministic unsigned 64-bit hash of ``key``.

    Args:
        key: the stable example key, e.g. ``"3418/1003418000012"``.
        salt: namespace of the hash.

    Returns:
        An int in ``[0, 2**64)``: the first 8 bytes, big-endian, of
        ``sha256(salt + "\\0" + key)`` (UTF-8).

    Example:
        >>> stable_hash("a") == stable_hash("a")
        True
    """
    if not isinstance(key, str) or not isinstance(salt, str):
        raise TypeError(
            f"key and salt must be str, got {type(key).__name__}, {type(salt).__name__}"
        )
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=False)


def shard_for_key(key: str, num_shards: int, salt: str = DEFAULT_SALT) -> int:
    """Shard index in ``[0, num_shards)`` for an example key (``stable_hash(key) % num_shards``).

    Raises:
        ValueError: when ``num_shards < 1``.
    """
    if isinstance(num_shards, bool) or int(num_shards) < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards!r}")
    return stable_hash(key, salt) % int(num_shards)


def file_digest(path: str) -> tuple[str, int]:
    """SHA-256 (lowercase hex) and size in bytes of a local file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
