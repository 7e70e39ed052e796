"""Why an input was set aside: every reject reason and stage, in one table.

Bad input loses nothing: an annotation, frame, video, people row or planned output that cannot be
used becomes one row of ``rejects-*.parquet`` (``schemas/rejects.v1.json``) with a machine-readable
``reason``, the ``stage`` that found it and a sentence (``detail``). This module is the vocabulary
of those rows, and the one place it is written down:

* :data:`STAGES` and :data:`REASONS` list every stage and reason with its meaning and the jobs
  (``run``, ``pairs``) that can write it. Validation (:mod:`dptrack_pipeline.formats.validation`),
  frame decoding (:class:`~dptrack_pipeline.frames.FrameDecodeError`), both jobs' workers, the
  rejects schema (its ``reasons`` and ``stages`` tables) and the README's table take their codes
  from here, and ``tests/test_docs.py`` fails when any of them names a code this table lacks, or
  omits one it has.
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

RUN = "run"
PAIRS = "pairs"

STAGE_VALIDATE = "validate"
STAGE_PLAN = "plan"
STAGE_DECODE = "decode"
STAGE_PROPAGATE = "propagate"
STAGE_PEOPLE = "people"
STAGE_PAIRS = "pairs"

UNKNOWN_FRAME = "unknown_frame"
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
TOO_FEW_VALID = "too_few_valid_pixels"
"""Codes the workers and readers write by name (the validation codes are in the table only)."""

STAGES: dict[str, str] = {
    STAGE_VALIDATE: "reading the annotation file: a record breaks the DensePose-PoseTrack format",
    STAGE_PLAN: "planning: an annotation names a frame its video does not have",
    STAGE_DECODE: "decoding a frame or video, or checking a decoded frame",
    STAGE_PROPAGATE: "moving a labelled person into a target frame along the flow",
    STAGE_PEOPLE: "reading the pairs --people file against the videos",
    STAGE_PAIRS: "making one crop pair from two frames and their flows",
}
"""Every stage a reject can come from, with what happens there."""


@dataclass(frozen=True)
class RejectReason:
    """One reject reason: its ``code``, the ``stages`` that find it, the ``jobs`` that write it
    and what it ``means`` (what to fix)."""

    code: str
    stages: tuple[str, ...]
    jobs: tuple[str, ...]
    means: str


_BOTH = (RUN, PAIRS)
_TABLE = (
    # validate (formats/validation.py): one annotation, its first problem's code
    RejectReason(
        "unknown_image",
        (STAGE_VALIDATE,),
        (RUN,),
        "the annotation's image_id names no listed image",
    ),
    RejectReason(
        "unknown_video",
        (STAGE_VALIDATE,),
        (RUN,),
        "the image's vid_id is missing or not an int / non-empty str",
    ),
    RejectReason(
        "missing_field",
        (STAGE_VALIDATE,),
        (RUN,),
        "a required field (bbox, track_id, image_id; id, file_name, frame_id) is missing or "
        "not an integer",
    ),
    RejectReason(
        "bbox_invalid",
        (STAGE_VALIDATE,),
        (RUN,),
        "bbox is not 4 finite numbers with w > 0 and h > 0",
    ),
    RejectReason(
        "bbox_outside_image",
        (STAGE_VALIDATE,),
        (RUN,),
        "the box lies outside the image, or overhangs an edge by more than 25% of its size",
    ),
    RejectReason(
        "keypoints_malformed",
        (STAGE_VALIDATE,),
        (RUN,),
        "keypoints present but not 51 finite numbers",
    ),
    RejectReason(
        "dp_length_mismatch",
        (STAGE_VALIDATE,),
        (RUN,),
        "dp_x, dp_y, dp_I, dp_U, dp_V differ in length or one is not a list",
    ),
    RejectReason(
        "non_finite", (STAGE_VALIDATE,), (RUN,), "a dp_* value is NaN, infinite or not a number"
    ),
    RejectReason(
        "dp_I_out_of_range", (STAGE_VALIDATE,), (RUN,), "a dp_I value is not an integer in 1..24"
    ),
    RejectReason(
        "dp_UV_out_of_range", (STAGE_VALIDATE,), (RUN,), "a dp_U or dp_V value is outside [0, 1]"
    ),
    RejectReason(
        "dp_xy_out_of_range", (STAGE_VALIDATE,), (RUN,), "a dp_x or dp_y value is outside [0, 256]"
    ),
    RejectReason(
        "bad_rle",
        (STAGE_VALIDATE,),
        (RUN,),
        "dp_masks is not 14 entries, or an entry is not a 256x256 COCO RLE",
    ),
    # plan
    RejectReason(
        UNKNOWN_FRAME,
        (STAGE_PLAN,),
        (RUN,),
        "the annotation's frame_id is not a frame of its video",
    ),
    # decode (frames/): a frame, or a whole video for pairs
    RejectReason(
        FRAME_MISSING, (STAGE_DECODE,), _BOTH, "the frame's image or video file does not exist"
    ),
    RejectReason(FRAME_UNREADABLE, (STAGE_DECODE,), _BOTH, "the file exists but cannot be decoded"),
    RejectReason(
        FRAME_INDEX_OUT_OF_RANGE,
        (STAGE_DECODE,),
        _BOTH,
        "the video file has fewer frames than the frame's position",
    ),
    RejectReason(
        FRAME_SIZE_MISMATCH,
        (STAGE_DECODE, STAGE_PAIRS),
        _BOTH,
        "run: the decoded frame's size differs from the annotated width/height; pairs: the "
        "two frames of a pair differ in size",
    ),
    RejectReason(
        CHAIN_BROKEN,
        (STAGE_DECODE,),
        (PAIRS,),
        "chained mode: a frame between the two frames of a pair could not be decoded",
    ),
    # propagate
    RejectReason(
        SOURCE_FRAME_UNREADABLE,
        (STAGE_PROPAGATE,),
        (RUN,),
        "the labelled source frame could not be decoded, so none of its targets can be made",
    ),
    RejectReason(
        NOTHING_SURVIVED,
        (STAGE_PROPAGATE,),
        (RUN,),
        "no point or mask cell passed the checks, so no target box can be derived",
    ),
    RejectReason(
        NO_POINTS_KEPT,
        (STAGE_PROPAGATE,),
        (RUN,),
        "every DensePose point was dropped (forward-backward check or outside)",
    ),
    # people (pairs --people)
    RejectReason(
        PEOPLE_BAD_VALUE,
        (STAGE_PEOPLE,),
        (PAIRS,),
        "a people row is not an object or holds a value that is not a number",
    ),
    RejectReason(
        PEOPLE_UNKNOWN_VIDEO,
        (STAGE_PEOPLE,),
        (PAIRS,),
        "a people row names a video that is not an input",
    ),
    RejectReason(
        PEOPLE_FRAME_OUT_OF_RANGE,
        (STAGE_PEOPLE,),
        (PAIRS,),
        "a people row's frame is not a frame of its video",
    ),
    RejectReason(
        PEOPLE_OUTSIDE_FRAME,
        (STAGE_PEOPLE,),
        (PAIRS,),
        "a people row's centre lies outside the frame",
    ),
    RejectReason(
        PEOPLE_DUPLICATE,
        (STAGE_PEOPLE,),
        (PAIRS,),
        "two people rows for the same video, frame and person",
    ),
    RejectReason(
        PEOPLE_VIDEO_UNREADABLE,
        (STAGE_PEOPLE,),
        (PAIRS,),
        "a people row's video could not be read",
    ),
    # pairs
    RejectReason(
        TOO_FEW_VALID,
        (STAGE_PAIRS,),
        (PAIRS,),
        "no crop pixel (or fewer than --min-valid) passed the forward-backward check inside crop B",
    ),
)

REASONS: dict[str, RejectReason] = {r.code: r for r in _TABLE}
"""Every reject reason by code."""


def reasons_of_stage(stage: str) -> tuple[str, ...]:
    """Codes that ``stage`` can find, in table order."""
    if stage not in STAGES:
        raise ValueError(f"unknown reject stage {stage!r}; stages: {', '.join(STAGES)}")
    return tuple(r.code for r in _TABLE if stage in r.stages)


VALIDATION_REASONS = reasons_of_stage(STAGE_VALIDATE)
DECODE_REASONS = (FRAME_MISSING, FRAME_UNREADABLE, FRAME_INDEX_OUT_OF_RANGE, FRAME_SIZE_MISMATCH)
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
