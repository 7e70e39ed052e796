"""Which labels does a consumer keep? :class:`LabelFilter`, applied to instance rows as read.

Since instances schema v2 every propagated row carries the quality of its labels
(``schemas/instances.v2.json``): per kept point ``dp_fb_error`` (forward-backward error, pixels)
and ``dp_photo`` (ZNCC of the patches around the point before and after the move, in
``[-1, 1]``); per row ``pckh`` (PCKh@0.5 of the propagated keypoints against annotated ones).
Sources (``offset == 0``) have NaN quality: they are the annotations. A :class:`LabelFilter`
turns thresholds on these scores into a decision per point and per row:

* **Point filters** drop points of a propagated row: ``max_fb_error`` drops a point whose
  ``dp_fb_error`` is above it, ``min_photo`` one whose ``dp_photo`` is below it. Every per-point
  column of the row (:data:`POINT_COLUMNS` present in the record: positions ``dp_x``/``dp_y``,
  ``dp_I``, ``dp_U``, ``dp_V``, ``dp_source_index`` and the scores) is cut with the same mask, so
  they stay aligned. The part masks (``dp_masks``) are propagated separately and are not cut.
* **Row filters**: ``offsets`` keeps only rows whose ``|offset|`` is in the set (0 = sources);
  ``min_pckh`` drops propagated rows whose ``pckh`` is below it; ``min_points`` drops propagated
  rows left with fewer points after the point filters.
* **NaN passes.** A NaN score means "not computed" (no comparable keypoint, a check that was
  off), which is no evidence against the label.
* **Sources are annotations**: never point-filtered, never dropped by ``min_pckh`` or
  ``min_points``; only ``offsets`` can leave them out.

**Where filtering happens.** :class:`~dptrack_pipeline.train.dataset.ShardDataset` applies the
filter *after* :mod:`.partition` has assigned the rows: each consumer (rank x DataLoader worker)
takes its share of all the rows, as without a filter, and drops those the filter refuses. So the
split stays a split of the same rows (the consumers' kept rows are disjoint and together are
exactly the rows the filter keeps), the order is the unfiltered order with rows left out, and
nothing in the split or in a resumed stream's position depends on the scores. The price is the
one of ``include``: consumers may keep unequal numbers of rows.

**Counting.** :meth:`LabelFilter.apply` adds what it judged and dropped to a
:class:`FilterStats`: each row under the first row test it fails (in the order ``offsets``,
``min_pckh``, ``min_points``), each point under the first point test it fails (``max_fb_error``,
then ``min_photo``).

This module is pure (records in, records out); which columns a folder holds is
:mod:`.shard_index`'s question.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["POINT_COLUMNS", "FilterStats", "LabelFilter"]

POINT_COLUMNS = (
    "dp_x",
    "dp_y",
    "dp_I",
    "dp_U",
    "dp_V",
    "dp_source_index",
    "dp_fb_error",
    "dp_photo",
    "dp_chain_error",
)
"""The per-point columns of ``instances-*.parquet``: one value per kept DensePose point, in the
same order; a point filter cuts every one of them present in a record with the same mask."""


@dataclass
class FilterStats:
    """What a :class:`LabelFilter` judged and dropped (counts, for one consumer).

    Attributes:
        rows_in: rows the filter judged.
        rows_dropped_offset, rows_dropped_pckh, rows_dropped_min_points: rows dropped, each
            under the first row test it failed.
        points_in: points of the propagated rows that reached the point filters (rows past the
            ``offsets`` and ``min_pckh`` tests).
        points_dropped_fb_error, points_dropped_photo: points dropped, each under the first
            point test it failed.
    """

    rows_in: int = 0
    rows_dropped_offset: int = 0
    rows_dropped_pckh: int = 0
    rows_dropped_min_points: int = 0
    points_in: int = 0
    points_dropped_fb_error: int = 0
    points_dropped_photo: int = 0

    @property
    def rows_kept(self) -> int:
        """Rows that passed every test."""
        dropped = self.rows_dropped_offset + self.rows_dropped_pckh + self.rows_dropped_min_points
        return self.rows_in - dropped

    def as_dict(self) -> dict[str, int]:
        """The counts, with ``rows_kept``, as a JSON-ready dict."""
        return {**dataclasses.asdict(self), "rows_kept": self.rows_kept}

    def __add__(self, other: FilterStats) -> FilterStats:
        """The counts of two consumers together."""
        return FilterStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in _STAT_FIELDS}
        )


_STAT_FIELDS = dataclasses.fields(FilterStats)


def _threshold(name: str, value: float | None, low: float, high: float) -> float | None:
    """``value`` as a float if it is ``None`` or in ``[low, high]``."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return value


@dataclass(frozen=True)
class LabelFilter:
    """Which labels a consumer keeps (module docstring: semantics, where it applies).

    Every criterion is off by default (``None``, ``0``); a filter with none on keeps everything.

    Attributes:
        max_fb_error: drop points of propagated rows whose ``dp_fb_error`` (forward-backward
            error, source-frame pixels) is above this; NaN passes.
        min_photo: drop points of propagated rows whose ``dp_photo`` (ZNCC, ``[-1, 1]``) is below
            this; NaN passes.
        min_pckh: drop propagated rows whose ``pckh`` (PCKh@0.5 in ``[0, 1]``) is below this; a
            NaN ``pckh`` (no keypoint was comparable) passes.
        offsets: keep only rows whose ``|offset|`` (frames) is in this set, 0 = the sources;
            ``None`` keeps every offset. Stored as a sorted tuple.
        min_points: drop propagated rows left with fewer DensePose points than this after the
            point filters (0 keeps rows without points).

    Example:
        >>> LabelFilter(max_fb_error=1.0, offsets=[2, 0, 1]).offsets
        (0, 1, 2)
    """

    max_fb_error: float | None = None
    min_photo: float | None = None
    min_pckh: float | None = None
    offsets: tuple[int, ...] | None = None
    min_points: int = 0

    def __post_init__(self) -> None:
        fields = {
            "max_fb_error": _threshold("max_fb_error", self.max_fb_error, 0.0, math.inf),
            "min_photo": _threshold("min_photo", self.min_photo, -1.0, 1.0),
            "min_pckh": _threshold("min_pckh", self.min_pckh, 0.0, 1.0),
            "offsets": None if self.offsets is None else _offsets(self.offsets),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        if int(self.min_points) != self.min_points or self.min_points < 0:
            raise ValueError(f"min_points must be an integer >= 0, got {self.min_points!r}")
        object.__setattr__(self, "min_points", int(self.min_points))

    @property
    def active(self) -> bool:
        """Whether any criterion is on."""
        return self != LabelFilter()

    @property
    def filters_points(self) -> bool:
        """Whether a point filter is on."""
        return self.max_fb_error is not None or self.min_photo is not None

    @property
    def needs_labels(self) -> bool:
        """Whether a criterion other than ``offsets`` is on (one that judges labels)."""
        return self.filters_points or self.min_pckh is not None or self.min_points > 0

    def required_columns(self) -> dict[str, str]:
        """``column -> the criterion that reads it`` for the quality columns (instances v2) this
        filter needs; ``offset`` and the point columns are read anyway."""
        needs = {
            "dp_fb_error": ("max_fb_error", self.max_fb_error),
            "dp_photo": ("min_photo", self.min_photo),
            "pckh": ("min_pckh", self.min_pckh),
        }
        return {
            column: f"{name}={value}"
            for column, (name, value) in needs.items()
            if value is not None
        }

    def describe(self) -> str:
        """The criteria that are on, for messages (``"no label filter"`` when none)."""
        on = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return ", ".join(on) if on else "no label filter"

    def apply(
        self, record: dict[str, Any], stats: FilterStats | None = None
    ) -> dict[str, Any] | None:
        """``record`` (one instance row as a dict) with the points the filter refuses left out,
        or ``None`` when the row itself is refused; counts into ``stats`` when given.

        ``record`` needs ``offset``, the columns of :meth:`required_columns` and, for
        ``min_points``, ``dp_I``; it is not changed (a cut row is a new dict).
        """
        stats = FilterStats() if stats is None else stats
        stats.rows_in += 1
        offset = int(record["offset"])
        if self.offsets is not None and abs(offset) not in self.offsets:
            stats.rows_dropped_offset += 1
            return None
        if offset == 0:
            return record
        pckh = record["pckh"] if self.min_pckh is not None else None
        if pckh is not None and pckh < self.min_pckh:  # NaN (not compared) passes
            stats.rows_dropped_pckh += 1
            return None
        if self.filters_points:
            record = self._cut_points(record, stats)
        if self.min_points and len(record["dp_I"]) < self.min_points:
            stats.rows_dropped_min_points += 1
            return None
        return record

    def _cut_points(self, record: dict[str, Any], stats: FilterStats) -> dict[str, Any]:
        """``record`` without the points failing the point tests (see :meth:`apply`)."""
        keep = np.ones(len(record["dp_I"]), dtype=bool)
        stats.points_in += keep.size
        for column, limit, fails, counter in (
            ("dp_fb_error", self.max_fb_error, np.greater, "points_dropped_fb_error"),
            ("dp_photo", self.min_photo, np.less, "points_dropped_photo"),
        ):
            if limit is not None:
                scores = np.asarray(record[column], dtype=np.float64)
                if scores.shape != keep.shape:
                    raise ValueError(
                        f"{column} has {scores.size} values for {keep.size} points (dp_I)"
                    )
                failed = keep & fails(scores, limit)  # a NaN score compares False: it passes
                keep &= ~failed
                setattr(stats, counter, getattr(stats, counter) + int(failed.sum()))
        if keep.all():
            return record
        cut = {
            column: list(itertools.compress(record[column], keep))
            for column in POINT_COLUMNS
            if record.get(column) is not None
        }
        return {**record, **cut}


def _offsets(values: Iterable[int]) -> tuple[int, ...]:
    """``values`` as a sorted tuple of distinct ``|offset|`` values (integers >= 0)."""
    values = list(values)
    if not values:
        raise ValueError("offsets is empty: it would keep no row (None keeps every offset)")
    for value in values:
        if int(value) != value or value < 0:
            raise ValueError(
                f"offsets are |offset| values, integers >= 0 (0 = sources), got {value!r}"
            )
    return tuple(sorted({int(v) for v in values}))
