"""Checks of DensePose-PoseTrack (and PoseTrack18) image and annotation records.

Each check returns every problem it finds as ``(reason_code, detail)`` pairs, an empty list meaning
valid, so the same code serves the loaders (which reject an annotation on its first problem) and
``dptrack-build validate`` (which lists them all). Reason codes are the vocabulary of the rejects
output; the detail names the offending field, index and value.

Reason codes:

* ``unknown_image``: the annotation's image is not listed.
* ``unknown_video``: the image's ``vid_id`` is missing or not an int / non-empty str.
* ``missing_field``: ``bbox``, ``track_id``, ``image_id`` (annotation) or ``id``, ``file_name``,
  ``frame_id`` (image) missing, or an id that is not an integer.
* ``bbox_invalid``: ``bbox`` is not 4 finite numbers, or ``w <= 0`` or ``h <= 0``.
* ``bbox_outside_image``: the box lies entirely outside the image, or reaches beyond an image edge
  by more than :data:`BBOX_OUTSIDE_TOLERANCE` (25%) of the box size along that axis. The image is
  ``[0, width] x [0, height]`` (COCO boxes are measured from the top-left image corner); the check
  is skipped when the image has no positive ``width``/``height``.

  Why 25%: PoseTrack boxes are the visible keypoints' extent enlarged by 30% about its centre,
  never clipped (all 14 boxes of the shared PoseTrack18 val sample are exactly that). A person whose
  joints reach the frame edge therefore overhangs it by 15% of the extent, 11.5% of the box, and
  annotators place joints of cut-off people outside the frame: in video 012834, track 10 has its
  head-top joint at y = -25 and its box reaches 21% of its height above the frame. A tolerance of
  10% would reject such people (1 of the 14 sample persons); 25% keeps them and still catches a box
  whose image size is wrong (a box half outside the frame). Callers may pass ``bbox_tolerance``.
* ``keypoints_malformed``: ``keypoints`` present but not 51 finite numbers.
* ``dp_length_mismatch``: ``dp_x, dp_y, dp_I, dp_U, dp_V`` not all of one length (an absent one
  counts as length 0 when any other is present) or one is not a list.
* ``non_finite``: a ``dp_*`` value that is NaN, infinite or not a number.
* ``dp_I_out_of_range``: a ``dp_I`` value that is not an integer in 1..24.
* ``dp_UV_out_of_range``: a ``dp_U`` or ``dp_V`` value outside ``[0, 1]``.
* ``dp_xy_out_of_range``: a ``dp_x`` or ``dp_y`` value outside ``[0, 256]`` (box-relative grid).
* ``bad_rle``: ``dp_masks`` present but not a list of 14 entries, or a non-empty entry that is not
  a valid 256x256 COCO RLE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dptrack_pipeline.formats.rle import MASK_PART_NAMES, is_empty_part, to_compressed_rle
from dptrack_pipeline.rejects import VALIDATION_REASONS
from dptrack_pipeline.structures import (
    DP_GRID,
    NUM_KEYPOINTS,
    NUM_MASK_PARTS,
    NUM_SURFACE_PARTS,
    normalise_video_id,
)

Problem = tuple[str, str]
"""``(reason_code, detail)``."""

BBOX_OUTSIDE_TOLERANCE = 0.25
"""How far (fraction of the box width/height) a box may reach beyond an image edge."""

DP_FIELDS: tuple[str, ...] = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")

REASON_CODES: tuple[str, ...] = VALIDATION_REASONS
"""The codes above, from the reject table (``schemas/rejects.v1.json``)."""


def is_int_value(value: object) -> bool:
    """Whether ``value`` is an integer (not a bool); integral floats like ``3.0`` are not."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def validate_image(image: dict) -> list[Problem]:
    """Problems of one ``images[]`` record (``unknown_video``, ``missing_field``)."""
    if not isinstance(image, dict):
        return [("missing_field", f"image record is not a JSON object: {type(image).__name__}")]
    problems: list[Problem] = []
    try:
        normalise_video_id(image.get("vid_id"))
    except ValueError as err:
        problems.append(("unknown_video", f"image {image.get('id')!r}: {err}"))
    for name in ("id", "frame_id"):
        if name not in image:
            problems.append(("missing_field", f"image {image.get('id')!r}: {name} is missing"))
        elif not is_int_value(image[name]):
            problems.append(
                (
                    "missing_field",
                    f"image {image.get('id')!r}: {name} = {image[name]!r} is not an integer",
                )
            )
    file_name = image.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        problems.append(("missing_field", f"image {image.get('id')!r}: file_name is missing"))
    flag = image.get("has_no_densepose", False)
    if flag not in (True, False, None) or isinstance(flag, float):
        # 0/1 pass (== False/True); anything else would silently drop or keep the image's labels
        problems.append(
            (
                "missing_field",
                f"image {image.get('id')!r}: has_no_densepose = {flag!r:.40} is not true/false",
            )
        )
    return problems


def validate_densepose_annotation(
    ann: dict, image: dict | None, *, bbox_tolerance: float = BBOX_OUTSIDE_TOLERANCE
) -> list[Problem]:
    """Problems of one ``annotations[]`` record, checked against its image.

    Args:
        ann: the annotation as read from JSON.
        image: its ``images[]`` record, or ``None`` when ``image_id`` names no listed image.
        bbox_tolerance: how far, as a fraction of the box size, the box may reach beyond an image
            edge before it is ``bbox_outside_image``.

    Returns:
        ``(reason_code, detail)`` for every problem found (see the module docstring), in the order
        image, ids, box, keypoints, DensePose points, part masks; empty when valid.
    """
    if not isinstance(ann, dict):
        return [("missing_field", f"annotation is not a JSON object: {type(ann).__name__}")]
    problems: list[Problem] = []
    if image is None:
        problems.append(("unknown_image", f"image_id {ann.get('image_id')!r} is not in images"))
    for name in ("bbox", "track_id", "image_id"):
        if ann.get(name) is None:
            problems.append(("missing_field", f"{name} is missing"))
        elif name != "bbox" and not is_int_value(ann[name]):
            problems.append(("missing_field", f"{name} = {ann[name]!r} is not an integer"))
    if ann.get("bbox") is not None:
        box_problems = check_bbox(ann["bbox"])
        problems += box_problems
        if not box_problems and image is not None:
            problems += check_bbox_in_image(
                ann["bbox"], image.get("width"), image.get("height"), bbox_tolerance
            )
    if ann.get("keypoints") is not None:
        problems += check_keypoints(ann["keypoints"])
    problems += check_dp_points({name: ann.get(name) for name in DP_FIELDS})
    if ann.get("dp_masks") is not None:
        problems += check_dp_masks(ann["dp_masks"])
    return problems


def check_bbox(bbox: object) -> list[Problem]:
    """``bbox_invalid`` unless ``bbox`` is ``[x, y, w, h]``: 4 finite numbers with ``w, h > 0``."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return [("bbox_invalid", f"bbox = {_short(bbox)}, expected [x, y, w, h]")]
    for k, value in enumerate(bbox):
        if not _is_number(value) or not math.isfinite(value):
            return [("bbox_invalid", f"bbox[{k}] = {value!r} is not a finite number")]
    if bbox[2] <= 0 or bbox[3] <= 0:
        return [("bbox_invalid", f"bbox = {list(bbox)} has w <= 0 or h <= 0")]
    return []


def check_bbox_in_image(
    bbox: Sequence[float], width: object, height: object, tolerance: float = BBOX_OUTSIDE_TOLERANCE
) -> list[Problem]:
    """``bbox_outside_image`` for a valid xywh box entirely outside ``[0, width] x [0, height]``
    or reaching more than ``tolerance`` of its size beyond an edge; ``[]`` if the size is unknown.
    """
    if not (_is_number(width) and _is_number(height) and width > 0 and height > 0):
        return []
    x, y, w, h = (float(v) for v in bbox)
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return [
            ("bbox_outside_image", f"bbox {list(bbox)} lies outside the {width}x{height} image")
        ]
    overhangs = {
        "left": (-x, w),
        "right": (x + w - width, w),
        "top": (-y, h),
        "bottom": (y + h - height, h),
    }
    for side, (overhang, extent) in overhangs.items():
        if overhang > tolerance * extent:
            return [
                (
                    "bbox_outside_image",
                    f"bbox {list(bbox)} reaches {overhang:.1f} px past the {side} edge of the "
                    f"{width}x{height} image (more than {tolerance:.0%} of its size {extent:g})",
                )
            ]
    return []


def check_keypoints(keypoints: object) -> list[Problem]:
    """``keypoints_malformed`` unless ``keypoints`` is 51 finite numbers (17 x ``x, y, v``)."""
    expected = NUM_KEYPOINTS * 3
    if not isinstance(keypoints, (list, tuple)) or len(keypoints) != expected:
        count = len(keypoints) if isinstance(keypoints, (list, tuple)) else _short(keypoints)
        return [("keypoints_malformed", f"keypoints has {count} values, expected {expected}")]
    for k, value in enumerate(keypoints):
        if not _is_number(value) or not math.isfinite(value):
            return [("keypoints_malformed", f"keypoints[{k}] = {value!r} is not a finite number")]
    return []


def check_dp_points(fields: dict[str, object]) -> list[Problem]:
    """Problems of the DensePose point arrays ``dp_x, dp_y, dp_I, dp_U, dp_V``.

    Args:
        fields: name -> value as read from JSON (``None`` = absent). All absent is valid (a person
            without DensePose points).
    """
    present = {name: value for name, value in fields.items() if value is not None}
    if not present:
        return []
    problems: list[Problem] = []
    arrays: dict[str, np.ndarray] = {}
    for name in DP_FIELDS:
        value = present.get(name)
        if value is None:
            continue
        if not isinstance(value, (list, tuple)):
            problems.append(("dp_length_mismatch", f"{name} is {_short(value)}, expected a list"))
            continue
        array = np.full(len(value), np.nan)
        for k, item in enumerate(value):
            if _is_number(item):
                array[k] = float(item)
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            first = int(bad[0])
            problems.append(
                (
                    "non_finite",
                    f"{name}[{first}] = {value[first]!r} is not a finite number" + _more(bad.size),
                )
            )
        arrays[name] = array
    # A present field that is not a list was reported above; compare the lengths of the others.
    lengths = {name: len(arrays[name]) if name in arrays else 0 for name in DP_FIELDS}
    all_lists = all(name in arrays for name in present)
    if all_lists and len(set(lengths.values())) > 1:
        listing = ", ".join(
            f"{name}: {length if name in present else 'absent'}" for name, length in lengths.items()
        )
        problems.append(
            ("dp_length_mismatch", f"DensePose point arrays differ in length ({listing})")
        )
    if "dp_I" in arrays:
        values = arrays["dp_I"]
        bad = np.flatnonzero(
            np.isfinite(values)
            & ((values != np.round(values)) | (values < 1) | (values > NUM_SURFACE_PARTS))
        )
        if bad.size:
            problems.append(
                (
                    "dp_I_out_of_range",
                    f"dp_I[{bad[0]}] = {_num(values[bad[0]])}, expected an integer in "
                    f"1..{NUM_SURFACE_PARTS}" + _more(bad.size),
                )
            )
    for name, low, high, code in (
        ("dp_U", 0.0, 1.0, "dp_UV_out_of_range"),
        ("dp_V", 0.0, 1.0, "dp_UV_out_of_range"),
        ("dp_x", 0.0, float(DP_GRID), "dp_xy_out_of_range"),
        ("dp_y", 0.0, float(DP_GRID), "dp_xy_out_of_range"),
    ):
        if name not in arrays:
            continue
        values = arrays[name]
        bad = np.flatnonzero(np.isfinite(values) & ((values < low) | (values > high)))
        if bad.size:
            problems.append(
                (
                    code,
                    f"{name}[{bad[0]}] = {_num(values[bad[0]])}, expected a value in "
                    f"[{low:g}, {high:g}]" + _more(bad.size),
                )
            )
    return problems


def check_dp_masks(dp_masks: object) -> list[Problem]:
    """``bad_rle`` for each problem of ``dp_masks``: 14 entries, each empty or a 256x256 RLE."""
    if not isinstance(dp_masks, (list, tuple)) or len(dp_masks) != NUM_MASK_PARTS:
        count = len(dp_masks) if isinstance(dp_masks, (list, tuple)) else _short(dp_masks)
        return [("bad_rle", f"dp_masks has {count} entries, expected {NUM_MASK_PARTS}")]
    problems: list[Problem] = []
    for k, entry in enumerate(dp_masks):
        if is_empty_part(entry):
            continue
        try:
            to_compressed_rle(entry)
        except ValueError as err:
            problems.append(("bad_rle", f"dp_masks[{k}] ({MASK_PART_NAMES[k]}): {err}"))
    return problems


def _more(count: int) -> str:
    return f" ({count} values in all)" if count > 1 else ""


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
