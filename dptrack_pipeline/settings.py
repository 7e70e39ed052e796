"""Settings both jobs share: their defaults and the one check of their values.

``run`` (:class:`~dptrack_pipeline.propagate.config.PropagateConfig`) and ``pairs``
(:class:`~dptrack_pipeline.pairs.config.PairsConfig`) both take an estimator, ``K``, a
forward-backward threshold, a crop size and a shard count. Their defaults live here once, and
:func:`check_common` refuses the same bad values with the same words for both, so a flag means
one thing whichever command it is given to.

Both configs are recorded in ``dataset_info.json`` by :func:`manifest_config`.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

from dptrack_pipeline.flow.consistency import DEFAULT_FB_THRESHOLD

DEFAULT_ESTIMATOR = "dis"
"""OpenCV DIS (preset medium): the embedded CPU default."""
DEFAULT_MAX_OFFSET = 3
"""``K``: frames ``T ± 1..3``, as in Slim DensePose."""
DEFAULT_CROP_SIZE = 256
"""Side of the square person crops and crop flows, in pixels."""
MIN_CROP_SIZE = 8

__all__ = [
    "DEFAULT_CROP_SIZE",
    "DEFAULT_ESTIMATOR",
    "DEFAULT_FB_THRESHOLD",
    "DEFAULT_MAX_OFFSET",
    "check_common",
    "manifest_config",
    "worker_settings",
]

_S = TypeVar("_S")


def check_common(
    *, max_offset: int, fb_threshold: float, crop_size: int, num_shards: int | None
) -> None:
    """Refuse values no job can use.

    Raises:
        ValueError: ``max_offset < 1``, ``fb_threshold`` not > 0, ``crop_size < 8`` or
            ``num_shards < 1``, each naming the flag.
    """
    if max_offset < 1:
        raise ValueError(f"max_offset (--offsets) must be >= 1, got {max_offset}")
    if not fb_threshold > 0:
        raise ValueError(f"fb_threshold must be > 0 pixels, got {fb_threshold}")
    if num_shards is not None and num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if crop_size < MIN_CROP_SIZE:
        raise ValueError(f"crop_size must be >= {MIN_CROP_SIZE} pixels, got {crop_size}")


NOT_RECORDED = ("out", "progress")
"""Config fields left out of ``dataset_info.json``: where a run writes and whether it shows bars do
not change its result, and two runs into different folders must write identical files."""


def manifest_config(config: Any) -> dict[str, Any]:
    """A job config (a dataclass) as recorded in ``dataset_info.json`` (``config``): every field
    but :data:`NOT_RECORDED`, tuples as lists, ``estimator_options`` sorted by key."""
    d = asdict(config)
    for name in NOT_RECORDED:
        d.pop(name, None)
    for name, value in d.items():
        if isinstance(value, tuple):
            d[name] = list(value)
    d["estimator_options"] = dict(sorted(d["estimator_options"].items()))
    return d


def worker_settings(cls: type[_S], config: Any) -> _S:
    """The part of a job config a worker needs: a dataclass ``cls`` whose fields are filled from
    the config's attributes of the same names (a worker's settings are a subset of its job's)."""
    return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})
