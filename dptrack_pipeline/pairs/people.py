"""Where the people are: the optional ``--people`` file of ``dptrack-build pairs``, and crop boxes.

This module holds the record every people reader produces (:class:`PersonEntry`), the project's
own file format, the box rules and the frame lookup. Files users already have are read by
:mod:`~dptrack_pipeline.pairs.people_posetrack` (PoseTrack18 and DensePose-PoseTrack JSON) and
:mod:`~dptrack_pipeline.pairs.people_mpii` (MPII Human Pose ``.mat`` and its common JSON
conversion); :mod:`~dptrack_pipeline.pairs.people_formats` tells them apart.

**Own file format** (MPII style: a rough centre and scale per person and frame). Either

* JSON: a list of objects, or ``{"people": [...]}``, each
  ``{"video": "clip01", "frame": 12, "x": 640.5, "y": 360.0, "scale": 1.8, "person": 0}``; or
* CSV with a header row holding at least ``video,frame,x,y,scale`` (and optionally ``person``).

``video`` is the video id (file name without extension, or folder name; see
:mod:`dptrack_pipeline.pairs.videos`), ``frame`` the 0-based frame index in that video, ``(x, y)``
the person centre in frame pixels (pixel centres on integers), ``scale`` the MPII scale: the
person is about ``200 * scale`` pixels tall. ``person`` (default 0) tells people of one frame
apart and links a person across frames; it need not be a real track id.

**Frames named by file.** Readers of dataset files also record the frame's file name
(:attr:`PersonEntry.image`, e.g. ``000012.jpg``). For a frame-folder video the launcher finds the
frame by that name in the folder listing (:func:`resolve_frames`), so a folder holding only some
of a sequence's frames still lines up; for a video file the frame number is used.

**Crop boxes.** A person's box is the square of side ``200 * scale * context`` centred on
``(x, y)`` (:func:`person_box`; ``context`` = 1.25 by default, the margin pose estimators crop
MPII people with). Without a people file every frame gets one box, the centred square of side
``min(W, H)`` (:func:`default_box`): the largest square crop of the frame, which for a landscape
video is the full height around the middle, where a filmed person usually is. Boxes may extend past
the frame; crops are black there and the flow is invalid there.

**Which frames get people.** An anchor frame ``T`` (a frame pairs start from) takes the rows of
frame ``T``; a frame without rows takes those of the nearest frame with rows within ``reach``
frames (ties: the earlier frame), so an MPII-style file that locates people on one frame of a
41-frame snippet covers the snippet with ``reach`` = 20. A frame with no rows in reach gets no
pairs.

Bad rows are not errors for the whole file: :func:`load_people` returns them as
:class:`PeopleProblem` s with a reason, and the job writes them to the rejects. A file that cannot
be parsed at all, or lacks a column, raises ``ValueError``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dptrack_pipeline.rejects import (
    PEOPLE_BAD_VALUE,
    PEOPLE_DUPLICATE,
    PEOPLE_FRAME_OUT_OF_RANGE,
    PEOPLE_OUTSIDE_FRAME,
    PEOPLE_UNKNOWN_IMAGE,
)
from dptrack_pipeline.structures import Box

MPII_SCALE_PIXELS = 200.0
"""MPII convention: a person of scale ``s`` is about ``200 * s`` pixels tall."""
DEFAULT_CONTEXT = 1.25
DEFAULT_REACH = 20
REQUIRED_FIELDS = ("video", "frame", "x", "y", "scale")


@dataclass(frozen=True)
class PersonEntry:
    """One row of a people file: person ``person`` at ``(x, y)`` with MPII ``scale``."""

    video: str
    frame: int
    x: float
    y: float
    scale: float
    person: int = 0
    image: str = ""
    """The frame's file name in its video folder (``""``: not known, use ``frame``); ``frame``
    is -1 when only the name is known (then a video file cannot place the entry)."""


@dataclass(frozen=True)
class PeopleProblem:
    """A people-file row set aside: ``row`` is its 1-based position in the file."""

    row: int
    video: str
    frame: int
    person: int
    reason: str
    detail: str


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return float(value)  # type: ignore[arg-type]


def _integer(value: object) -> int:
    number = _number(value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _read_rows(path: str) -> list[Mapping[str, object]]:
    if path.lower().endswith(".csv"):
        # utf-8-sig: spreadsheet programs start CSV files with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [f for f in REQUIRED_FIELDS if f not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(
                    f"{path}: the CSV header {reader.fieldnames} lacks {missing}; expected "
                    "video,frame,x,y,scale[,person]"
                )
            return list(reader)
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); use .csv for CSV files") from err
    rows = doc.get("people") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of people or {{'people': [...]}}")
    return rows


def load_people(path: str) -> tuple[list[PersonEntry], list[PeopleProblem]]:
    """Read a people file (format in the module docstring).

    Returns:
        ``(entries, problems)``: good rows, in file order, and rows set aside (``people_bad_value``:
        a missing, non-numeric or non-finite value, a negative frame or a scale <= 0;
        ``people_duplicate``: a second row for the same video, frame and person).

    Raises:
        ValueError: the file is missing, not JSON/CSV, or lacks a required column.
    """
    if not os.path.isfile(path):
        raise ValueError(f"people file not found: {path}")
    entries: list[PersonEntry] = []
    problems: list[PeopleProblem] = []
    seen: set[tuple[str, int, int]] = set()
    for number, row in enumerate(_read_rows(path), start=1):
        if not isinstance(row, Mapping):
            problems.append(
                PeopleProblem(
                    number, "", -1, -1, PEOPLE_BAD_VALUE, f"row {number} is not an object"
                )
            )
            continue
        video = str(row.get("video", ""))
        try:
            missing = [f for f in REQUIRED_FIELDS if row.get(f) in (None, "")]
            if missing:
                raise ValueError(f"missing {missing}")
            frame = _integer(row["frame"])
            person = _integer(row.get("person") if row.get("person") not in (None, "") else 0)
            x, y, scale = _number(row["x"]), _number(row["y"]), _number(row["scale"])
            if not all(math.isfinite(v) for v in (x, y, scale)):
                raise ValueError(f"non-finite value in x={x}, y={y}, scale={scale}")
            if frame < 0:
                raise ValueError(f"negative frame {frame}")
            if scale <= 0:
                raise ValueError(f"scale must be > 0, got {scale}")
        except (ValueError, TypeError) as err:
            problems.append(
                PeopleProblem(number, video, -1, -1, PEOPLE_BAD_VALUE, f"row {number}: {err}")
            )
            continue
        key = (video, frame, person)
        if key in seen:
            problems.append(
                PeopleProblem(
                    number,
                    video,
                    frame,
                    person,
                    PEOPLE_DUPLICATE,
                    f"row {number}: a second row for video {video!r}, frame {frame}, person "
                    f"{person}; the first is used",
                )
            )
            continue
        seen.add(key)
        entries.append(PersonEntry(video, frame, x, y, scale, person))
    return entries, problems


def entry_from_box(video: str, frame: int, box: Box, person: int, image: str = "") -> PersonEntry:
    """The entry of a person whose tight box ``(x, y, w, h)`` (frame pixels) is known: centred on
    the box, with the MPII scale of its longer side (``max(w, h) / 200``), so that
    :func:`person_box` gives the square of side ``max(w, h) * context`` around it."""
    x, y, w, h = box
    return PersonEntry(
        video, frame, x + w / 2, y + h / 2, max(w, h) / MPII_SCALE_PIXELS, person, image
    )


def resolve_frames(
    entries: Sequence[PersonEntry], frame_names: Sequence[str] | None
) -> tuple[list[PersonEntry], list[tuple[PersonEntry, str, str]]]:
    """Place entries that name their frame file (``image``) in one video.

    Args:
        entries: one video's entries.
        frame_names: file names of the video's frames in order (a frame folder), or ``None``
            for a video file.

    Returns:
        ``(placed, bad)``: entries with ``frame`` set to the position of ``image`` in
        ``frame_names`` (entries without ``image`` unchanged), and ``(entry, reason, detail)``
        rejects, ``people_unknown_image``: the name is not in the folder, or the video is a file
        and the entry has no frame number.
    """
    index = None if frame_names is None else {n: i for i, n in enumerate(frame_names)}
    placed, bad = [], []
    for e in entries:
        if not e.image:
            placed.append(e)
        elif index is not None and e.image in index:
            placed.append(replace(e, frame=index[e.image]))
        elif index is not None:
            bad.append(
                (
                    e,
                    PEOPLE_UNKNOWN_IMAGE,
                    f"frame file {e.image!r} is not in the frame folder of video {e.video!r} "
                    f"({len(index)} images)",
                )
            )
        elif e.frame >= 0:
            placed.append(e)
        else:
            bad.append(
                (
                    e,
                    PEOPLE_UNKNOWN_IMAGE,
                    f"video {e.video!r} is a file and the entry names only the frame file "
                    f"{e.image!r}; give the sequence's frame folder with --videos",
                )
            )
    return placed, bad


def drop_duplicates(
    entries: Sequence[PersonEntry],
) -> tuple[list[PersonEntry], list[tuple[PersonEntry, str, str]]]:
    """Keep the first entry of each ``(video, frame, person)``; later ones are
    ``people_duplicate`` rejects (two PoseTrack annotations with one ``track_id`` in a frame)."""
    seen: set[tuple[str, int, int]] = set()
    kept, bad = [], []
    for e in entries:
        key = (e.video, e.frame, e.person)
        if key in seen:
            bad.append(
                (
                    e,
                    PEOPLE_DUPLICATE,
                    f"a second entry for video {e.video!r}, frame {e.frame}, person {e.person}; "
                    "the first is used",
                )
            )
        else:
            seen.add(key)
            kept.append(e)
    return kept, bad


def check_entries(
    entries: Sequence[PersonEntry], num_frames: int, width: int, height: int
) -> tuple[list[PersonEntry], list[tuple[PersonEntry, str, str]]]:
    """Split one video's entries into usable ones and ``(entry, reason, detail)`` rejects:
    ``people_frame_out_of_range`` (frame >= ``num_frames``) and ``people_outside_frame`` (the centre
    is not inside the ``width x height`` frame)."""
    good, bad = [], []
    for e in entries:
        if e.frame < 0:
            bad.append(
                (
                    e,
                    PEOPLE_FRAME_OUT_OF_RANGE,
                    f"frame file {e.image!r} of video {e.video!r} could not be placed",
                )
            )
        elif e.frame >= num_frames:
            bad.append(
                (
                    e,
                    PEOPLE_FRAME_OUT_OF_RANGE,
                    f"frame {e.frame} of video {e.video!r}, which has {num_frames} frames",
                )
            )
        elif not (0 <= e.x <= width - 1 and 0 <= e.y <= height - 1):
            bad.append(
                (
                    e,
                    PEOPLE_OUTSIDE_FRAME,
                    f"centre ({e.x:g}, {e.y:g}) outside the {width}x{height} frame {e.frame}",
                )
            )
        else:
            good.append(e)
    return good, bad


def people_for_frames(
    entries: Sequence[PersonEntry], frames: Sequence[int], reach: int
) -> dict[int, tuple[tuple[PersonEntry, bool], ...]]:
    """The people of each frame in ``frames``: ``frame -> ((entry, exact), ...)`` sorted by person.

    ``exact`` is false when the entries come from the nearest frame with rows (within ``reach``
    frames; ties go to the earlier frame). Frames with nobody in reach are left out.
    """
    by_frame: dict[int, list[PersonEntry]] = {}
    for e in entries:
        by_frame.setdefault(e.frame, []).append(e)
    known = np.array(sorted(by_frame), dtype=np.int64)
    out: dict[int, tuple[tuple[PersonEntry, bool], ...]] = {}
    if known.size == 0:
        return out
    for frame in frames:
        i = int(np.searchsorted(known, frame))
        candidates = [known[j] for j in (i - 1, i) if 0 <= j < known.size]
        best = min(candidates, key=lambda f: (abs(int(f) - frame), int(f)))
        if abs(int(best) - frame) > reach:
            continue
        rows = sorted(by_frame[int(best)], key=lambda e: e.person)
        out[frame] = tuple((e, int(best) == frame) for e in rows)
    return out


def person_box(entry: PersonEntry, context: float = DEFAULT_CONTEXT) -> Box:
    """The square ``(x, y, w, h)`` of side ``200 * scale * context`` centred on the person.

    Boxes follow the crop convention: frame pixel centres on integers, so the box's centre
    ``(x + w / 2, y + h / 2)`` is the person's ``(x, y)``.
    """
    side = MPII_SCALE_PIXELS * entry.scale * context
    return (entry.x - side / 2, entry.y - side / 2, side, side)


def default_box(width: int, height: int) -> Box:
    """The centred square of side ``min(width, height)``: ``(x, y, w, h)`` in frame pixels.

    Frame pixel centres are on integers, so the whole frame is ``(-0.5, -0.5, W, H)`` and this
    box covers whole pixels: for 1280x720, ``(279.5, -0.5, 720, 720)``.
    """
    side = float(min(width, height))
    return ((width - side) / 2 - 0.5, (height - side) / 2 - 0.5, side, side)
