"""Do an output folder's counters add up?

Counters travel through the pipeline as data and are summed exactly, so the numbers in
``dataset_info.json`` obey identities that a reader can check without trusting the writer:

* **Sums** (:data:`COUNTER_SUMS`): what came in equals what went out, e.g. for ``run``
  ``instances_in = instances_written + instances_rejected`` and
  ``points_in = points_kept + points_dropped_fb + points_dropped_outside + points_dropped_photo +
  points_dropped_chain``; for ``pairs``
  ``pairs_planned = pairs_written + pairs_rejected`` and the same for videos and people rows.
* **Row totals** (:data:`ROW_TOTALS`): the counters equal the rows the files hold, e.g.
  ``instances_written`` equals the rows of the instance shards (and the crops of the dense
  shards), ``instances_rejected`` the rows of the reject shards.

:func:`counter_problems` is the one implementation: the manifest writer logs what it finds, the
CLI prints it after a run, ``inspect`` and :func:`~dptrack_pipeline.shards.verify.verify_output`
fail on it. A missing counter counts as 0 in a part and as a problem in a total; a row total
whose counters are all absent is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dptrack_pipeline.shards import naming

KIND_RUN = "run"
KIND_PAIRS = "pairs"

REQUIRED_COUNTERS = (
    "frames_decoded",
    "flows_computed",
    "instances_in",
    "instances_written",
    "instances_rejected",
    "points_in",
    "points_kept",
    "points_dropped_fb",
    "points_dropped_outside",
)
"""Counters every ``run`` manifest must carry (integers >= 0); others may be added."""

REQUIRED_PAIRS_COUNTERS = (
    "videos_in",
    "videos_planned",
    "videos_rejected",
    "frames_in_videos",
    "frames_decoded",
    "flows_computed",
    "flows_needed",
    "pairs_planned",
    "pairs_written",
    "pairs_rejected",
    "people_in",
    "people_used",
    "people_rejected",
)
"""Counters every ``pairs`` manifest carries (``schemas/pairs_info.v1.json``)."""

COUNTER_SUMS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    KIND_RUN: (
        ("instances_in", ("instances_written", "instances_rejected")),
        (
            "points_in",
            (
                "points_kept",
                "points_dropped_fb",
                "points_dropped_outside",
                "points_dropped_photo",
                "points_dropped_chain",
            ),
        ),
    ),
    KIND_PAIRS: (
        ("pairs_planned", ("pairs_written", "pairs_rejected")),
        ("videos_in", ("videos_planned", "videos_rejected")),
        ("people_in", ("people_used", "people_rejected")),
    ),
}
"""Per folder kind, the identities ``total = part + part + ...``."""

ROW_TOTALS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    KIND_RUN: (
        (("instances_written",), naming.PREFIX_INSTANCES),
        (("instances_written",), naming.PREFIX_DENSE),
        (("instances_rejected",), naming.PREFIX_REJECTS),
    ),
    KIND_PAIRS: (
        (("pairs_written",), naming.PREFIX_PAIRS),
        (("crops_written",), naming.PREFIX_DENSE),
        (("pairs_rejected", "people_rejected", "videos_rejected"), naming.PREFIX_REJECTS),
    ),
}
"""Per folder kind, ``(counters, file kind)``: the counters' sum equals the rows of those files
(``totals`` of the manifest; for ``dense`` files the crops)."""


def _value(counters: Mapping[str, Any], name: str) -> int:
    return int(counters.get(name) or 0)


def counter_problems(
    counters: Mapping[str, Any], kind: str, totals: Mapping[str, Any] | None = None
) -> list[str]:
    """Every identity of :data:`COUNTER_SUMS` (and, given the manifest's ``totals``, of
    :data:`ROW_TOTALS`) that does not hold, as a sentence such as
    ``"pairs_planned 20 != pairs_written 18 + pairs_rejected 1"``. Empty: everything adds up.

    Args:
        counters: the manifest's ``counters``.
        kind: :data:`KIND_RUN` or :data:`KIND_PAIRS`.
        totals: rows per file kind, as in the manifest's ``totals``.
    """
    if kind not in COUNTER_SUMS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {sorted(COUNTER_SUMS)}")
    problems = []
    for total, parts in COUNTER_SUMS[kind]:
        if total not in counters:
            problems.append(f"counter {total} is missing")
            continue
        values = [_value(counters, k) for k in (total, *parts)]
        if values[0] != sum(values[1:]):
            problems.append(
                f"{total} {values[0]} != "
                + " + ".join(f"{k} {v}" for k, v in zip(parts, values[1:], strict=True))
            )
    for names, file_kind in ROW_TOTALS[kind] if totals is not None else ():
        if not any(n in counters for n in names):
            continue  # not counted (an older manifest): nothing to compare
        counted = sum(_value(counters, n) for n in names)
        rows = int(totals.get(file_kind) or 0)
        if counted != rows:
            what = " + ".join(names)
            problems.append(f"counters say {what} = {counted}, the {file_kind} files hold {rows}")
    return problems
