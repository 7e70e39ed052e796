"""The reject vocabulary: one table (``schemas/rejects.v1.json``) that every writer of rejects
uses."""

from __future__ import annotations

import pytest

from dptrack_pipeline import rejects
from dptrack_pipeline.formats.validation import REASON_CODES


def test_every_named_code_is_in_the_table() -> None:
    constants = {
        name: value
        for name, value in vars(rejects).items()
        if name.isupper()
        and isinstance(value, str)
        and not name.startswith(("STAGE_", "RUN", "PAIRS"))
    }
    assert len(constants) >= 15
    assert sorted(v for v in constants.values() if v not in rejects.REASONS) == []
    stages = {v for n, v in vars(rejects).items() if n.startswith("STAGE_")}
    assert stages == set(rejects.STAGES)


def test_every_reason_has_known_stages_and_jobs() -> None:
    for reason in rejects.REASONS.values():
        assert reason.stages and set(reason.stages) <= set(rejects.STAGES), reason
        assert reason.jobs and set(reason.jobs) <= {rejects.RUN, rejects.PAIRS}, reason
        assert reason.means


def test_validation_and_decoding_use_the_table() -> None:
    assert set(REASON_CODES) == set(rejects.VALIDATION_REASONS)
    assert set(rejects.DECODE_REASONS) <= set(rejects.REASONS)
    assert rejects.reasons_of_stage(rejects.STAGE_PEOPLE)[0].startswith("people_")


def test_reject_row_refuses_what_the_table_lacks() -> None:
    row = rejects.reject_row("frame_missing", "no file", "decode", video_id="v", frame_id=3)
    assert row == {
        "reason": "frame_missing", "detail": "no file", "stage": "decode", "annotation_id": -1,
        "video_id": "v", "frame_id": 3, "track_id": -1, "offset": 0,
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown reject reason 'frame_gone'"):
        rejects.reject_row("frame_gone", "", "decode")
    with pytest.raises(ValueError, match="unknown reject stage 'later'"):
        rejects.reject_row("frame_missing", "", "later")
    with pytest.raises(ValueError, match="unknown reject stage"):
        rejects.reasons_of_stage("later")


def test_counts_by_reason_most_common_first() -> None:
    counts = rejects.count_reasons(["b", "a", "b", "c", "a", "b"])
    assert list(counts.items()) == [("b", 3), ("a", 2), ("c", 1)]
    assert rejects.count_reasons([]) == {}
