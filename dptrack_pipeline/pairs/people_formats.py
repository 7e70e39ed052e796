"""Which reader a ``pairs --people`` file needs, and reading it (``--people-format``).

* ``dptrack``: this project's JSON list or CSV of centres and scales
  (:func:`~dptrack_pipeline.pairs.people.load_people`);
* ``posetrack18``: PoseTrack18 or DensePose-PoseTrack JSON, one file or a folder of them
  (:mod:`~dptrack_pipeline.pairs.people_posetrack`);
* ``mpii-mat``: MPII's ``mpii_human_pose_v1_u12_1.mat``
  (:func:`~dptrack_pipeline.pairs.people_mpii.load_mpii_mat`);
* ``mpii-json``: the common MPII JSON conversion
  (:func:`~dptrack_pipeline.pairs.people_mpii.load_mpii_json`).

``auto`` (the default, :func:`detect_format`) decides from the path and, for JSON, the first
record: a folder is ``posetrack18``; ``.mat`` is ``mpii-mat``; ``.csv`` is ``dptrack``; a JSON
object with ``images`` and ``annotations`` is ``posetrack18``; a JSON list whose first object has
``joints`` or ``center`` is ``mpii-json``; any other JSON is ``dptrack`` (whose reader then says
what is wrong). Both MPII formats need the keyframes file (``--people-keyframes``) to place an
image in its video sequence.
"""

from __future__ import annotations

import json
import os

from dptrack_pipeline.pairs.people import PeopleProblem, PersonEntry, load_people

FORMAT_AUTO = "auto"
FORMAT_DPTRACK = "dptrack"
FORMAT_POSETRACK18 = "posetrack18"
FORMAT_MPII_MAT = "mpii-mat"
FORMAT_MPII_JSON = "mpii-json"
PEOPLE_FORMATS = (
    FORMAT_AUTO,
    FORMAT_DPTRACK,
    FORMAT_POSETRACK18,
    FORMAT_MPII_MAT,
    FORMAT_MPII_JSON,
)
MPII_FORMATS = (FORMAT_MPII_MAT, FORMAT_MPII_JSON)


def _read_json(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); use .csv for CSV files") from err


def _format_of_document(doc: object) -> str:
    if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
        return FORMAT_POSETRACK18
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        if "joints" in doc[0] or "center" in doc[0]:
            return FORMAT_MPII_JSON
    return FORMAT_DPTRACK


def detect_format(path: str) -> str:
    """The format of ``path`` by the rules in the module docstring.

    Raises:
        ValueError: the path does not exist, or a ``.json`` file is not JSON.
    """
    if os.path.isdir(path):
        return FORMAT_POSETRACK18
    if not os.path.isfile(path):
        raise ValueError(f"people file not found: {path}")
    lower = path.lower()
    if lower.endswith(".mat"):
        return FORMAT_MPII_MAT
    if lower.endswith(".csv"):
        return FORMAT_DPTRACK
    return _format_of_document(_read_json(path))


def read_people(
    path: str, people_format: str = FORMAT_AUTO, keyframes: str | None = None
) -> tuple[str, list[PersonEntry], list[PeopleProblem]]:
    """Read a people file in ``people_format`` (``auto``: detected).

    Returns:
        ``(format, entries, problems)``: the format read, the usable entries and the records set
        aside with their reason.

    Raises:
        ValueError: an unknown format, a file that is not of its format, an MPII format without
            ``keyframes``, or a folder given for a format other than ``posetrack18``.
    """
    from dptrack_pipeline.pairs import people_mpii, people_posetrack

    if people_format not in PEOPLE_FORMATS:
        raise ValueError(
            f"unknown people format {people_format!r}; choose one of {', '.join(PEOPLE_FORMATS)}"
        )
    chosen = detect_format(path) if people_format == FORMAT_AUTO else people_format
    if os.path.isdir(path) and chosen != FORMAT_POSETRACK18:
        raise ValueError(f"{path} is a folder: only --people-format posetrack18 reads folders")
    if chosen in MPII_FORMATS:
        if keyframes is None:
            raise ValueError(
                f"{path} is MPII ({chosen}): give --people-keyframes "
                "mpii_human_pose_v1_sequences_keyframes.mat, which places each annotated image "
                "in its video sequence"
            )
        frames = people_mpii.load_keyframes(keyframes)
        if chosen == FORMAT_MPII_MAT:
            return (chosen, *people_mpii.load_mpii_mat(path, frames))
        return (chosen, *people_mpii.load_mpii_json(path, frames))
    if chosen == FORMAT_POSETRACK18:
        return (chosen, *people_posetrack.load_posetrack_people(path))
    return (chosen, *load_people(path))
