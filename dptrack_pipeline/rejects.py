"""Why an input was set aside: every reject reason and stage, in one table.

Bad input loses nothing: an annotation, frame, video, people row or planned output that cannot be
used becomes one row of ``rejects-*.parquet`` (``schemas/rejects.v1.json``) with a machine-readable
``reason``, the ``stage`` that found it and a sentence (``detail``). This module is the vocabulary
of those rows, and the one place it is written down:

* The table itself is part of the rejects schema, ``schemas/rejects.v1.json`` (its ``stages``
  and ``reasons`` lists), the single source of truth for output files; :data:`STAGES` and
  :data:`REASONS` are that table loaded, with each reason's meaning, the stages that find it and
  the jobs (``run``, ``pairs``) that can write it. Validation
  (:mod:`dptrack_pipeline.formats.validation`), frame decoding
  (:class:`~dptrack_pipeline.frames.FrameDecodeError`), both jobs' workers and the README's table
  use these codes; ``tests/test_docs.py`` fails when the README or a constant below names a code
  the table lacks, or the README omits one it has.
* :func:`reject_row` builds a ``rejects.v1`` row and refuses a code that is not in the table, so a
  new reason cannot reach a file without being documented.

Codes are short ``snake_case`` strings and never change meaning; a reason may be found at more
than one stage (``frame_size_mismatch`` at decoding in ``run``, while pairing in ``pairs``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dptrack_pipeline.shards.schema import load_document

RUN = "run"
PAIRS = "pairs"

STAGE_VALIDATE = "validate"
STAGE_PLAN = "plan"
STAGE_DECODE = "decode"
STAGE_PROPAGATE = "propagate"
STAGE_PEOPLE = "people"
STAGE_PAIRS = "pairs"

UNKNOWN_FRAME = "unknown_frame"
DUPLICATE_IMAGE_ID = "duplicate_image_id"
IMAGE_IN_TWO_VIDEOS = "image_in_two_videos"
DUPLICATE_ANNOTATION_ID = "duplicate_annotation_id"
PATH_OUTSIDE_ROOT = "path_outside_root"
FRAME_MISSING = "frame_missing"
FRAME_UNREADABLE = "frame_unreadable"
FRAME_INDEX_OUT_OF_RANGE = "frame_index_out_of_range"
FRAME_SIZE_MISMATCH = "frame_size_mismatch"
CHAIN_BROKEN = "chain_broken"
SOURCE_FRAME_UNREADABLE = "source_frame_unreadable"
NOTHING_SURVIVED = "nothing_survived"
NO_POINTS_KEPT = "no_points_kept"
PEOPLE_BAD_VALUE = "people_bad_value"
PEOPLE_UNKNOWN_VIDEO = "people_unknown_video"
PEOPLE_FRAME_OUT_OF_RANGE = "people_frame_out_of_range"
PEOPLE_OUTSIDE_FRAME = "people_outside_frame"
PEOPLE_DUPLICATE = "people_duplicate"
PEOPLE_VIDEO_UNREADABLE = "people_video_unreadable"
PEOPLE_NO_BOX = "people_no_box"
PEOPLE_UNKNOWN_IMAGE = "people_unknown_image"
PEOPLE_INCONSISTENT = "people_inconsistent"
TOO_FEW_VALID = "too_few_valid_pixels"
"""Codes the workers and readers write by name (the validation codes are in the table only);
``tests/test_rejects.py`` checks that each is in the table."""


@dataclass(frozen=True)
class RejectReason:
    """One reject reason: its ``code``, the ``stages`` that find it, the ``jobs`` that write it
    and what it ``means`` (what to fix)."""

    code: str
    stages: tuple[str, ...]
    jobs: tuple[str, ...]
    means: str


def _load_table() -> tuple[dict[str, str], dict[str, RejectReason]]:
    doc = load_document("rejects")
    stages = {entry["stage"]: entry["means"] for entry in doc["stages"]}
    reasons = {
        entry["reason"]: RejectReason(
            entry["reason"], tuple(entry["stages"]), tuple(entry["jobs"]), entry["means"]
        )
        for entry in doc["reasons"]
    }
    return stages, reasons


STAGES, REASONS = _load_table()
"""Every stage a reject can come from (with what happens there), and every reason by code."""


def reasons_of_stage(stage: str) -> tuple[str, ...]:
    """Codes that ``stage`` can find, in table order."""
    if stage not in STAGES:
        raise ValueError(f"unknown reject stage {stage!r}; stages: {', '.join(STAGES)}")
    return tuple(r.code for r in REASONS.values() if stage in r.stages)


VALIDATION_REASONS = reasons_of_stage(STAGE_VALIDATE)
DECODE_REASONS = (
    FRAME_MISSING,
    FRAME_UNREADABLE,
    FRAME_INDEX_OUT_OF_RANGE,
    FRAME_SIZE_MISMATCH,
    PATH_OUTSIDE_ROOT,
)
"""Reasons a frame cannot be used: not decoded, or decoded but unusable (``FrameDecodeError``)."""


def reject_row(
    reason: str,
    detail: str,
    stage: str,
    *,
    annotation_id: int = -1,
    video_id: str = "",
    frame_id: int = -1,
    track_id: int = -1,
    offset: int = 0,
) -> dict[str, Any]:
    """A ``rejects.v1`` row.

    ``pairs`` rows use ``frame_id`` for the anchor frame index and ``track_id`` for the person.

    Raises:
        ValueError: for a reason or stage that is not in :data:`REASONS` / :data:`STAGES`.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown reject reason {reason!r}: add it to dptrack_pipeline.rejects")
    if stage not in STAGES:
        raise ValueError(f"unknown reject stage {stage!r}; stages: {', '.join(STAGES)}")
    return {
        "reason": reason,
        "detail": str(detail),
        "stage": stage,
        "annotation_id": int(annotation_id),
        "video_id": str(video_id),
        "frame_id": int(frame_id),
        "track_id": int(track_id),
        "offset": int(offset),
    }


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    """How many rejects each reason has, most common first (ties by code)."""
    counts = Counter(reasons)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
