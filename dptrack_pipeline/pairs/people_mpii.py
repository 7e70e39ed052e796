"""People for ``pairs`` from MPII Human Pose annotations, placed in the MPII video sequences.

MPII Human Pose gives, for each of about 25k images taken from YouTube videos, the people's body
joints (training images) or a rough centre and scale (all images), and ships the 41 frames around
each image as *sequences*: one folder per image, named after it (``015601864.jpg`` ->
``015601864/``), holding the sequence's frames. Which of those frames is the annotated image is in
the image-video mapping file ``mpii_human_pose_v1_sequences_keyframes.mat``. Slim DensePose ran its
flows over these sequences, T-3..T+3 around the annotated frames, cropping "with the annotations of
rough person centre and scale".

**Inputs.** Two annotation forms, both with 1-based (MATLAB) pixel coordinates, converted here to
the project's 0-based pixel centres by subtracting 1:

* the official ``mpii_human_pose_v1_u12_1.mat`` (:func:`load_mpii_mat`, read with
  :func:`scipy.io.loadmat`): ``RELEASE.annolist(imgidx)`` with ``.image.name`` and
  ``.annorect(ridx)``, each rect with ``.scale``, ``.objpos.x/.y`` and (training images)
  ``.annopoints.point(j)`` with ``.id`` (0..15), ``.x``, ``.y``, ``.is_visible``. Fields a record
  lacks are empty arrays or absent; both are "missing". ``img_train``, ``single_person``, ``act``
  and ``video_list``/``vididx``/``frame_sec`` are not needed: both splits are used (the test images
  get their objpos/scale boxes), every rect is a person (``single_person`` only marks the
  well-separated ones), and each image has its own sequence, so the YouTube video index places
  nothing;
* the common JSON conversion (:func:`load_mpii_json`; HRNet's and mmpose's ``mpii_train.json``):
  a list of ``{"image", "center": [x, y], "scale", "joints": [[x, y] x 16], "joints_vis": [16]}``,
  one object per person.

**Placing an image in its sequence** (:func:`load_keyframes`, ``--people-keyframes``): the
keyframes file's ``annolist_keyframes(imgidx).image.name`` is ``<sequence folder>/<frame file>``
(``015601864/00000053.jpg``). An entry's video is that folder (give the sequence folders with
``--videos``: ``--videos mpii_human_pose_v1_sequences/``) and its frame is that file, found in the
folder's listing by the launcher (:func:`~dptrack_pipeline.pairs.people.resolve_frames`). An image
with no keyframe entry is rejected ``people_unknown_image``; a keyframe entry at the image's
``imgidx`` that names another image's folder is ``people_inconsistent`` (the two files do not
belong together).

**Box rule** (the person's crop is the square of side ``200 * scale * --context``):

1. the annotated joints (``.mat``: every listed point; JSON: ``joints_vis > 0``), when at least two
   are distinct: PoseTrack's keypoint box, their extent grown by 30%
   (:func:`~dptrack_pipeline.formats.posetrack18.keypoint_box`), centred there with the scale of
   its longer side (:func:`~dptrack_pipeline.pairs.people.entry_from_box`), so MPII and PoseTrack
   people are cropped alike;
2. otherwise ``objpos`` and ``scale`` as given (MPII's scale: the person is about ``200 * scale``
   px tall);
3. otherwise the person is rejected ``people_no_box``.

A joint id outside 0..15, a non-finite coordinate or a scale <= 0 is ``people_bad_value``.
People are numbered by their position in the image (``ridx - 1``; JSON: order of appearance).

Why by hand: no maintained library reads MPII's ``.mat`` layout; scipy reads the MATLAB file and
this module only walks its structs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from dptrack_pipeline.formats.posetrack18 import keypoint_box
from dptrack_pipeline.pairs.people import PeopleProblem, PersonEntry, entry_from_box
from dptrack_pipeline.rejects import (
    PEOPLE_BAD_VALUE,
    PEOPLE_INCONSISTENT,
    PEOPLE_NO_BOX,
    PEOPLE_UNKNOWN_IMAGE,
)

NUM_MPII_JOINTS = 16
"""MPII joint ids are 0..15 (0 r ankle ... 9 head top ... 15 l wrist)."""
MATLAB_OFFSET = 1.0
"""MPII coordinates are 1-based (MATLAB): pixel centre ``(1, 1)`` is our ``(0, 0)``."""

Keyframes = dict[str, tuple[str, int]]
"""Image stem -> ``(frame file name, imgidx)``; the stem is also the sequence folder."""


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _loadmat(path: str, what: str) -> dict[str, Any]:
    import scipy.io  # imported here: only MPII people need scipy

    if not os.path.isfile(path):
        raise ValueError(f"{what} not found: {path}")
    try:
        return scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)
    except (
        scipy.io.matlab.MatReadError,
        ValueError,
        TypeError,
        OSError,
        NotImplementedError,
    ) as err:
        raise ValueError(f"{path}: cannot read the {what} as a MATLAB file: {err}") from err


def _items(value: Any) -> list[Any]:
    """A MATLAB struct array, cell array or single struct as a list (empty array: ``[]``)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel()) if value.dtype == object or value.size else []
    return [value]


def _field(record: Any, name: str) -> Any:
    """``record.name``, or ``None`` when the field is absent or an empty array."""
    value = getattr(record, name, None)
    if isinstance(value, np.ndarray) and value.size == 0:
        return None
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise _Reject(PEOPLE_BAD_VALUE, f"{what} is not one number (shape {value.shape})")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise _Reject(PEOPLE_BAD_VALUE, f"{what} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _Reject(PEOPLE_BAD_VALUE, f"{what} is not finite: {number}")
    return number


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else ""
    return value if isinstance(value, str) else ""


def load_keyframes(path: str) -> Keyframes:
    """Read ``mpii_human_pose_v1_sequences_keyframes.mat`` (module docstring).

    Returns:
        sequence folder (= image stem) -> ``(frame file, imgidx)``, imgidx 1-based.

    Raises:
        ValueError: not a MATLAB file, or no ``annolist_keyframes`` in it.
    """
    mat = _loadmat(path, "MPII keyframes file")
    if "annolist_keyframes" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(
            f"{path}: no 'annolist_keyframes' variable (found {found}); expected MPII's "
            "mpii_human_pose_v1_sequences_keyframes.mat"
        )
    keyframes: Keyframes = {}
    for imgidx, record in enumerate(_items(mat["annolist_keyframes"]), start=1):
        name = _text(_field(_field(record, "image"), "name")).replace("\\", "/")
        folder, _, frame = name.rpartition("/")
        if folder and frame:
            keyframes.setdefault(os.path.basename(folder), (frame, imgidx))
    return keyframes


def _place(image: str, imgidx: int | None, keyframes: Keyframes) -> tuple[str, str]:
    """``(sequence folder, frame file)`` of annotated image ``image``."""
    stem = os.path.splitext(os.path.basename(image))[0]
    if not stem:
        raise _Reject(PEOPLE_BAD_VALUE, "the image has no name")
    if stem not in keyframes:
        raise _Reject(
            PEOPLE_UNKNOWN_IMAGE,
            f"image {image!r} has no entry in the keyframes file (no sequence folder {stem}/)",
        )
    frame, at = keyframes[stem]
    if imgidx is not None and at != imgidx:
        raise _Reject(
            PEOPLE_INCONSISTENT,
            f"image {image!r} is annolist({imgidx}) but its keyframe entry is "
            f"annolist_keyframes({at}): the keyframes file belongs to another annotation file",
        )
    return stem, frame


def _joint_box(joints: list[tuple[float, float]]) -> tuple[float, float, float, float] | None:
    if len(set(joints)) < 2:
        return None
    points = np.array([(x, y, 1.0) for x, y in joints], dtype=np.float64)
    box = keypoint_box(points)
    return box if box is not None and max(box[2], box[3]) > 0 else None


def _entry(
    video: str,
    frame: str,
    person: int,
    joints: list[tuple[float, float]],
    objpos: tuple[float, float] | None,
    scale: float | None,
) -> PersonEntry:
    box = _joint_box(joints)
    if box is not None:
        return entry_from_box(video, -1, box, person, frame)
    if objpos is not None and scale is not None:
        if scale <= 0:
            raise _Reject(PEOPLE_BAD_VALUE, f"scale must be > 0, got {scale:g}")
        return PersonEntry(video, -1, objpos[0], objpos[1], scale, person, frame)
    have = f"{len(joints)} joint{'s' if len(joints) != 1 else ''}"
    raise _Reject(
        PEOPLE_NO_BOX,
        f"{have}, {'no objpos' if objpos is None else 'objpos'} and "
        f"{'no scale' if scale is None else 'a scale'}: no box",
    )


def _mat_joints(rect: Any) -> list[tuple[float, float]]:
    joints = []
    for point in _items(_field(_field(rect, "annopoints"), "point")):
        joint = _number(_field(point, "id"), "a joint id")
        if joint != int(joint) or not 0 <= joint < NUM_MPII_JOINTS:
            raise _Reject(PEOPLE_BAD_VALUE, f"joint id {joint:g} is not an MPII joint (0..15)")
        x = _number(_field(point, "x"), f"joint {int(joint)} x")
        y = _number(_field(point, "y"), f"joint {int(joint)} y")
        joints.append((x - MATLAB_OFFSET, y - MATLAB_OFFSET))
    return joints


def _mat_people(
    release: Any, keyframes: Keyframes, label: str
) -> Iterator[PersonEntry | PeopleProblem]:
    for imgidx, record in enumerate(_items(_field(release, "annolist")), start=1):
        image = _text(_field(_field(record, "image"), "name"))
        rects = _items(_field(record, "annorect"))
        try:
            video, frame = _place(image, imgidx, keyframes) if rects else ("", "")
        except _Reject as err:
            stem = os.path.splitext(os.path.basename(image))[0]
            for ridx in range(1, len(rects) + 1):
                where = f"{label}: annolist({imgidx}).annorect({ridx}) ({image or 'no name'})"
                yield PeopleProblem(imgidx, stem, -1, ridx - 1, err.reason, f"{where}: {err}")
            continue
        for ridx, rect in enumerate(rects, start=1):
            where = f"{label}: annolist({imgidx}).annorect({ridx}) ({image})"
            try:
                pos = _field(rect, "objpos")
                objpos = None
                if (
                    pos is not None
                    and _field(pos, "x") is not None
                    and _field(pos, "y") is not None
                ):
                    objpos = (
                        _number(_field(pos, "x"), "objpos.x") - MATLAB_OFFSET,
                        _number(_field(pos, "y"), "objpos.y") - MATLAB_OFFSET,
                    )
                raw_scale = _field(rect, "scale")
                scale = None if raw_scale is None else _number(raw_scale, "scale")
                yield _entry(video, frame, ridx - 1, _mat_joints(rect), objpos, scale)
            except _Reject as err:
                yield PeopleProblem(imgidx, video, -1, ridx - 1, err.reason, f"{where}: {err}")


def _split(
    found: Iterator[PersonEntry | PeopleProblem],
) -> tuple[list[PersonEntry], list[PeopleProblem]]:
    entries: list[PersonEntry] = []
    problems: list[PeopleProblem] = []
    for item in found:
        (entries if isinstance(item, PersonEntry) else problems).append(item)  # type: ignore[arg-type]
    return entries, problems


def load_mpii_mat(path: str, keyframes: Keyframes) -> tuple[list[PersonEntry], list[PeopleProblem]]:
    """People of MPII's official annotation ``.mat`` (module docstring), placed by ``keyframes``.

    Raises:
        ValueError: not a MATLAB file, or no ``RELEASE.annolist`` in it.
    """
    mat = _loadmat(path, "MPII annotation file")
    release = mat.get("RELEASE")
    if release is None or _field(release, "annolist") is None:
        raise ValueError(
            f"{path}: no RELEASE.annolist (expected MPII's mpii_human_pose_v1_u12_1.mat)"
        )
    return _split(_mat_people(release, keyframes, os.path.basename(path)))


def _json_person(row: Mapping[str, Any], keyframes: Keyframes, person: int) -> PersonEntry:
    image = row.get("image")
    if not isinstance(image, str) or not image:
        raise _Reject(PEOPLE_BAD_VALUE, "no 'image' name")
    video, frame = _place(image, None, keyframes)
    joints = []
    raw_joints, visible = row.get("joints") or [], row.get("joints_vis") or []
    if not isinstance(raw_joints, list) or not isinstance(visible, list):
        raise _Reject(PEOPLE_BAD_VALUE, "'joints' and 'joints_vis' must be lists")
    if visible and len(visible) != len(raw_joints):
        raise _Reject(
            PEOPLE_BAD_VALUE, f"{len(raw_joints)} joints but {len(visible)} joints_vis values"
        )
    for j, joint in enumerate(raw_joints):
        if visible and not _number(visible[j], f"joints_vis[{j}]") > 0:
            continue
        if not isinstance(joint, list) or len(joint) != 2:
            raise _Reject(PEOPLE_BAD_VALUE, f"joints[{j}] is not [x, y]")
        x, y = _number(joint[0], f"joints[{j}] x"), _number(joint[1], f"joints[{j}] y")
        joints.append((x - MATLAB_OFFSET, y - MATLAB_OFFSET))
    center = row.get("center")
    objpos = None
    if isinstance(center, list) and len(center) == 2:
        objpos = (
            _number(center[0], "center x") - MATLAB_OFFSET,
            _number(center[1], "center y") - MATLAB_OFFSET,
        )
    scale = None if row.get("scale") is None else _number(row["scale"], "scale")
    return _entry(video, frame, person, joints, objpos, scale)


def load_mpii_json(
    path: str, keyframes: Keyframes
) -> tuple[list[PersonEntry], list[PeopleProblem]]:
    """People of the common MPII JSON conversion (module docstring), placed by ``keyframes``.

    Raises:
        ValueError: not JSON, or not a list.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read MPII JSON: {err}") from err
    if not isinstance(rows, list):
        raise ValueError(f"{path}: MPII JSON must be a list of people, got a {type(rows).__name__}")
    entries: list[PersonEntry] = []
    problems: list[PeopleProblem] = []
    per_image: dict[str, int] = {}
    label = os.path.basename(path)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            problems.append(
                PeopleProblem(
                    number, "", -1, -1, PEOPLE_BAD_VALUE, f"{label}: row {number} is not an object"
                )
            )
            continue
        image = str(row.get("image", ""))
        person = per_image.get(image, 0)
        per_image[image] = person + 1
        try:
            entries.append(_json_person(row, keyframes, person))
        except _Reject as err:
            problems.append(
                PeopleProblem(
                    number,
                    os.path.splitext(os.path.basename(image))[0],
                    -1,
                    person,
                    err.reason,
                    f"{label}: row {number} ({image or 'no image'}): {err}",
                )
            )
    return entries, problems
