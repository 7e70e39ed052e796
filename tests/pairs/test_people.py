"""The ``--people`` file of ``dptrack-build pairs`` and the crop-box policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dptrack_pipeline.pairs.people import (
    PEOPLE_BAD_VALUE,
    PEOPLE_DUPLICATE,
    PEOPLE_FRAME_OUT_OF_RANGE,
    PEOPLE_OUTSIDE_FRAME,
    PEOPLE_UNKNOWN_IMAGE,
    PersonEntry,
    check_entries,
    default_box,
    drop_duplicates,
    entry_from_box,
    load_people,
    people_for_frames,
    person_box,
    resolve_frames,
)

ROWS = [
    {"video": "clip01", "frame": 12, "x": 640.5, "y": 360.0, "scale": 1.8, "person": 0},
    {"video": "clip01", "frame": 12, "x": 100.0, "y": 200.0, "scale": 0.9, "person": 3},
    {"video": "clip02", "frame": 0, "x": 10.0, "y": 20.0, "scale": 1.0, "person": 1},
]
ENTRIES = [
    PersonEntry("clip01", 12, 640.5, 360.0, 1.8, 0),
    PersonEntry("clip01", 12, 100.0, 200.0, 0.9, 3),
    PersonEntry("clip02", 0, 10.0, 20.0, 1.0, 1),
]


def _write_json(path: Path, doc: object) -> str:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def _write_csv(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- reading


def test_load_json_list(tmp_path: Path) -> None:
    entries, problems = load_people(_write_json(tmp_path / "people.json", ROWS))
    assert entries == ENTRIES
    assert problems == []


def test_load_json_people_object(tmp_path: Path) -> None:
    entries, problems = load_people(_write_json(tmp_path / "people.json", {"people": ROWS}))
    assert entries == ENTRIES
    assert problems == []


def test_load_json_person_defaults_to_zero(tmp_path: Path) -> None:
    row = {k: v for k, v in ROWS[0].items() if k != "person"}
    entries, problems = load_people(_write_json(tmp_path / "people.json", [row]))
    assert entries == [PersonEntry("clip01", 12, 640.5, 360.0, 1.8, 0)]
    assert problems == []


def test_load_csv_with_person(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "people.csv",
        [
            "video,frame,x,y,scale,person",
            "clip01,12,640.5,360.0,1.8,0",
            "clip01,12,100,200,0.9,3",
            "clip02,0,10,20,1.0,1",
        ],
    )
    entries, problems = load_people(path)
    assert entries == ENTRIES
    assert problems == []
    assert all(isinstance(e.frame, int) and isinstance(e.person, int) for e in entries)


def test_load_csv_without_person_column(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "PEOPLE.CSV",  # the extension is matched case-insensitively
        ["scale,video,y,x,frame", "1.8,clip01,360,640.5,12", "1.0,clip02,20,10,0"],
    )
    entries, problems = load_people(path)
    assert entries == [
        PersonEntry("clip01", 12, 640.5, 360.0, 1.8, 0),
        PersonEntry("clip02", 0, 10.0, 20.0, 1.0, 0),
    ]
    assert problems == []


def test_load_csv_integral_float_frame(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "p.csv", ["video,frame,x,y,scale", "a,7.0,1,2,1"])
    entries, _ = load_people(path)
    assert entries == [PersonEntry("a", 7, 1.0, 2.0, 1.0, 0)]


def test_bad_json_rows_become_problems(tmp_path: Path) -> None:
    good = {"video": "v", "frame": 3, "x": 5.0, "y": 6.0, "scale": 1.0}
    rows = [
        good,  # 1: kept
        {k: v for k, v in good.items() if k != "x"},  # 2: missing x
        {**good, "frame": 4, "scale": float("nan")},  # 3: NaN (json.dumps writes NaN)
        {**good, "frame": 5, "scale": 0.0},  # 4: scale 0
        {**good, "frame": 6, "scale": -1.0},  # 5: negative scale
        {**good, "frame": -1},  # 6: negative frame
        {**good, "frame": 2.5},  # 7: non-integer frame
        {**good, "x": "left"},  # 8: not a number
        {**good, "frame": True},  # 9: a boolean is not a number
        {**good, "person": 1.5},  # 10: non-integer person
        "not a row",  # 11: not an object
        {**good, "x": 9.0},  # 12: second row for (v, 3, 0)
        {**good, "person": 1},  # 13: kept (another person)
        {**good, "frame": 8, "y": float("inf")},  # 14: infinite
        {**good, "frame": ""},  # 15: empty value counts as missing
    ]
    entries, problems = load_people(_write_json(tmp_path / "people.json", rows))
    assert entries == [PersonEntry("v", 3, 5.0, 6.0, 1.0, 0), PersonEntry("v", 3, 5.0, 6.0, 1.0, 1)]
    by_row = {p.row: p for p in problems}
    assert sorted(by_row) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15]
    for row in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15):
        assert by_row[row].reason == PEOPLE_BAD_VALUE, row
        assert by_row[row].detail.startswith(f"row {row}"), by_row[row].detail
        assert (by_row[row].frame, by_row[row].person) == (-1, -1)
    assert "missing" in by_row[2].detail and "x" in by_row[2].detail
    assert "non-finite" in by_row[3].detail
    assert "scale" in by_row[4].detail and "scale" in by_row[5].detail
    assert "negative frame" in by_row[6].detail
    assert "integer" in by_row[7].detail
    assert "missing" in by_row[15].detail
    assert by_row[2].video == "v"
    assert by_row[11].video == ""
    duplicate = by_row[12]
    assert duplicate.reason == PEOPLE_DUPLICATE
    assert (duplicate.video, duplicate.frame, duplicate.person) == ("v", 3, 0)
    assert "first is used" in duplicate.detail


def test_bad_csv_rows_become_problems(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "people.csv",
        [
            "video,frame,x,y,scale,person",
            "a,0,10,10,1.0,0",  # 1: kept
            "a,1,,10,1.0,0",  # 2: missing x
            "a,2,nan,10,1.0,0",  # 3: NaN
            "a,3,10,10,0,0",  # 4: scale 0
            "a,-4,10,10,1.0,0",  # 5: negative frame
            "a,4.5,10,10,1.0,0",  # 6: non-integer frame
            "a,0,11,11,1.0,0",  # 7: duplicate of row 1
            "a,0,12,12,1.0,",  # 8: empty person -> 0 -> duplicate too
            "b,0,10,10,2.0,0",  # 9: kept (another video)
        ],
    )
    entries, problems = load_people(path)
    assert entries == [
        PersonEntry("a", 0, 10.0, 10.0, 1.0, 0),
        PersonEntry("b", 0, 10.0, 10.0, 2.0),
    ]
    reasons = {p.row: p.reason for p in problems}
    assert reasons == {
        2: PEOPLE_BAD_VALUE,
        3: PEOPLE_BAD_VALUE,
        4: PEOPLE_BAD_VALUE,
        5: PEOPLE_BAD_VALUE,
        6: PEOPLE_BAD_VALUE,
        7: PEOPLE_DUPLICATE,
        8: PEOPLE_DUPLICATE,
    }


def test_csv_missing_column_raises(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "people.csv", ["video,frame,x,y", "a,0,1,2"])
    with pytest.raises(ValueError, match=r"lacks \['scale'\]"):
        load_people(path)


def test_empty_csv_raises(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "people.csv", [])
    with pytest.raises(ValueError, match="lacks"):
        load_people(path)


def test_bad_json_raises(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text("video,frame,x,y,scale\na,0,1,2,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_people(str(path))


@pytest.mark.parametrize("doc", [{"persons": []}, {"people": {"a": 1}}, 3, "people"])
def test_json_of_the_wrong_shape_raises(tmp_path: Path, doc: object) -> None:
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_people(_write_json(tmp_path / "people.json", doc))


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_people(str(tmp_path / "nobody.json"))


def test_empty_list_is_no_people(tmp_path: Path) -> None:
    assert load_people(_write_json(tmp_path / "people.json", [])) == ([], [])


# --------------------------------------------------------------------------- checking


def test_check_entries() -> None:
    width, height, frames = 64, 48, 10
    inside = [
        PersonEntry("v", 0, 0.0, 0.0, 1.0),
        PersonEntry("v", 9, 63.0, 47.0, 1.0),  # last frame, last pixel centre
        PersonEntry("v", 5, 31.5, 20.25, 1.0),
    ]
    out_of_range = [PersonEntry("v", 10, 5.0, 5.0, 1.0), PersonEntry("v", 99, 5.0, 5.0, 1.0)]
    outside = [
        PersonEntry("v", 1, -0.5, 5.0, 1.0),
        PersonEntry("v", 1, 63.5, 5.0, 1.0),
        PersonEntry("v", 1, 5.0, -1.0, 1.0),
        PersonEntry("v", 1, 5.0, 47.01, 1.0),
    ]
    good, bad = check_entries(inside + out_of_range + outside, frames, width, height)
    assert good == inside
    assert [e for e, _, _ in bad] == out_of_range + outside
    assert [r for _, r, _ in bad] == [PEOPLE_FRAME_OUT_OF_RANGE] * 2 + [PEOPLE_OUTSIDE_FRAME] * 4
    assert "10 frames" in bad[0][2]
    assert "64x48" in bad[2][2]


def test_check_entries_out_of_range_wins() -> None:
    entry = PersonEntry("v", 10, -5.0, -5.0, 1.0)
    _, bad = check_entries([entry], 10, 64, 48)
    assert bad[0][1] == PEOPLE_FRAME_OUT_OF_RANGE


# --------------------------------------------------------------------------- nearest frame


def _rows(frame: int, *persons: int) -> list[PersonEntry]:
    return [PersonEntry("v", frame, 10.0 + p, 20.0, 1.0, p) for p in persons]


def test_people_for_frames_exact_and_nearest() -> None:
    entries = _rows(10, 2, 0) + _rows(20, 1)
    out = people_for_frames(entries, [10, 11, 15, 16, 20, 25], reach=20)
    assert out[10] == ((entries[1], True), (entries[0], True))  # sorted by person
    assert out[11] == ((entries[1], False), (entries[0], False))
    assert out[15] == out[11]  # tie: the earlier frame
    assert out[16] == ((entries[2], False),)
    assert out[20] == ((entries[2], True),)
    assert out[25] == ((entries[2], False),)


def test_people_for_frames_reach() -> None:
    entries = _rows(10, 0)
    out = people_for_frames(entries, [0, 3, 4, 16, 17, 100], reach=6)
    assert sorted(out) == [4, 16]
    assert people_for_frames(entries, [10, 11], reach=0) == {10: ((entries[0], True),)}


def test_people_for_frames_one_row_covers_a_snippet() -> None:
    # MPII style: one annotated frame in the middle of a 41-frame snippet, reach 20
    entries = _rows(20, 0)
    out = people_for_frames(entries, range(41), reach=20)
    assert sorted(out) == list(range(41))
    assert [f for f, rows in out.items() if rows[0][1]] == [20]
    assert 41 not in people_for_frames(entries, [41], reach=20)


def test_people_for_frames_without_entries() -> None:
    assert people_for_frames([], [0, 1, 2], reach=20) == {}


# --------------------------------------------------------------------------- boxes


@pytest.mark.parametrize("context", [1.0, 1.25, 2.0])
def test_person_box_is_centred(context: float) -> None:
    entry = PersonEntry("v", 0, 640.5, 360.0, 1.8)
    x, y, w, h = person_box(entry, context)
    assert w == h == pytest.approx(200 * 1.8 * context)
    assert (x + w / 2, y + h / 2) == pytest.approx((640.5, 360.0))


def test_person_box_default_context() -> None:
    assert person_box(PersonEntry("v", 0, 100.0, 50.0, 0.4)) == pytest.approx(
        (50.0, 0.0, 100.0, 100.0)
    )


def test_default_box_landscape() -> None:
    assert default_box(1280, 720) == (279.5, -0.5, 720.0, 720.0)
    x, y, w, h = default_box(1280, 720)
    # centred on the frame's centre (639.5, 359.5), whole pixels 280..999
    assert (x + w / 2, y + h / 2) == (639.5, 359.5)
    assert (x + 0.5, x + w - 0.5) == (280.0, 999.0)


def test_default_box_portrait_and_square() -> None:
    assert default_box(720, 1280) == (-0.5, 279.5, 720.0, 720.0)
    assert default_box(64, 64) == (-0.5, -0.5, 64.0, 64.0)
    # an odd difference puts the box on half a pixel
    assert default_box(65, 64) == (0.0, -0.5, 64.0, 64.0)


# --------------------------------------------------------------------------- frames named by file


def test_resolve_frames_by_name_in_a_folder_and_by_number_in_a_file() -> None:
    named = PersonEntry("seq", -1, 10.0, 10.0, 1.0, 0, "00000005.jpg")
    numbered = PersonEntry("seq", 3, 10.0, 10.0, 1.0, 1, "000003.jpg")
    plain = PersonEntry("seq", 7, 10.0, 10.0, 1.0, 2)
    folder = ["00000004.jpg", "00000005.jpg", "000003.jpg"]
    placed, bad = resolve_frames([named, numbered, plain], folder)
    assert [e.frame for e in placed] == [1, 2, 7] and bad == []
    # In a folder that lacks the file, and in a video file without a frame number: rejected.
    placed, bad = resolve_frames([named, numbered, plain], ["other.jpg"])
    assert placed == [plain] and [r for _, r, _ in bad] == [PEOPLE_UNKNOWN_IMAGE] * 2
    assert "not in the frame folder" in bad[0][2]
    placed, bad = resolve_frames([named, numbered, plain], None)
    assert placed == [numbered, plain] and [e for e, _, _ in bad] == [named]
    assert "is a file" in bad[0][2]


def test_unplaced_entries_and_duplicates_are_set_aside() -> None:
    unplaced = PersonEntry("seq", -1, 10.0, 10.0, 1.0, 0, "x.jpg")
    good, bad = check_entries([unplaced], 10, 64, 64)
    assert good == [] and bad[0][1] == PEOPLE_FRAME_OUT_OF_RANGE
    first = PersonEntry("seq", 2, 10.0, 10.0, 1.0, 4)
    kept, twice = drop_duplicates([first, PersonEntry("seq", 2, 30.0, 30.0, 1.0, 4), unplaced])
    assert kept == [first, unplaced] and [r for _, r, _ in twice] == [PEOPLE_DUPLICATE]


def test_entry_from_box_crops_the_longer_side_times_the_context() -> None:
    entry = entry_from_box("v", 0, (100.0, 50.0, 40.0, 200.0), 3, "000000.jpg")
    assert (entry.x, entry.y, entry.scale, entry.person) == (120.0, 150.0, 1.0, 3)
    assert person_box(entry, context=1.25) == (-5.0, 25.0, 250.0, 250.0)
