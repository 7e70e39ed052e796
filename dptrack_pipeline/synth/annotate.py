"""How one rendered person becomes a DensePose-PoseTrack annotation.

:func:`person_annotation` reads everything from the exact render
(:class:`~dptrack_pipeline.synth.render.RenderedFrame`), so the labels are the truth itself:

* a person is annotated when at least :data:`MIN_VISIBLE_PIXELS` pixels show them;
* ``bbox`` is the tight ``xywh`` box of the visible pixel centres padded by :data:`BOX_PAD` px and
  clipped to the frame (:func:`person_box`); ``area`` counts the visible pixels and
  ``segmentation`` is their COCO RLE over the full frame;
* the 17 COCO ``keypoints`` (:func:`keypoint_annotation`) come from the skeleton
  (:mod:`~dptrack_pipeline.synth.keypoints`): ``v = 2`` seen on their own limb, ``1`` inside the
  frame but hidden, ``0`` outside, then ``x = y = 0``;
* on labelled frames, about :data:`POINTS_PER_PERSON` DensePose points at visible pixel centres,
  stratified over the visible surface patches (:func:`sample_dp_pixels`: equal shares,
  water-filled when a patch is small) and drawn from interior pixels (all four neighbours on the
  same patch) like annotators who click inside a part; ``dp_x, dp_y`` box-relative on the 256
  grid, ``dp_I, dp_U, dp_V`` the exact labels there. ``dp_masks`` are the 14 part masks of the
  person's visible part map resampled (nearest) onto the 256x256 box grid
  (:func:`part_label_grid`).

The only randomness is the point sampling, drawn from the generator the caller passes, so the
caller decides how annotations are seeded. Coordinates are image pixels with pixel centres on
integers (:mod:`dptrack_pipeline.structures`).
"""

from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART, encode_part_masks
from dptrack_pipeline.structures import DP_GRID, NUM_KEYPOINTS
from dptrack_pipeline.synth.keypoints import keypoints_at
from dptrack_pipeline.synth.limbs import PATCH_TO_LIMB
from dptrack_pipeline.synth.motion import PersonMotion
from dptrack_pipeline.synth.render import RenderedFrame

MIN_VISIBLE_PIXELS = 20
BOX_PAD = 2.0
POINTS_PER_PERSON = 100


def person_box(mask: np.ndarray, pad: float = BOX_PAD) -> tuple[float, float, float, float]:
    """Tight ``xywh`` box of the ``True`` pixel centres of ``(H, W)`` ``mask``, padded by ``pad``
    pixels on every side and clipped to ``[0, W - 1] x [0, H - 1]``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    x0 = max(float(cols[0]) - pad, 0.0)
    y0 = max(float(rows[0]) - pad, 0.0)
    x1 = min(float(cols[-1]) + pad, width - 1.0)
    y1 = min(float(rows[-1]) + pad, height - 1.0)
    return (x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0))


def keypoint_annotation(person: PersonMotion, frame: RenderedFrame, time: float) -> np.ndarray:
    """COCO keypoints ``(17, 3)`` float64 ``(x, y, v)`` of ``person`` in a rendered frame.

    ``v = 2`` when the pixel nearest the joint shows this person on a limb the joint belongs to,
    ``v = 1`` when the joint is inside the frame but hidden (the far ear always is, behind the
    head), ``v = 0`` with ``x = y = 0`` when it is outside the frame.
    """
    positions, seen_on, far_ear = keypoints_at(person, time)
    height, width = frame.part.shape
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    for k in range(NUM_KEYPOINTS):
        col, row = (int(v) for v in np.rint(positions[k]))
        if not (0 <= col < width and 0 <= row < height):
            continue
        seen = (
            k != far_ear
            and frame.person[row, col] == person.track_id
            and int(PATCH_TO_LIMB[frame.part[row, col]]) in seen_on[k]
        )
        out[k] = (positions[k, 0], positions[k, 1], 2.0 if seen else 1.0)
    return out


def sample_dp_pixels(
    mask: np.ndarray, part: np.ndarray, rng: np.random.Generator, count: int = POINTS_PER_PERSON
) -> tuple[np.ndarray, np.ndarray]:
    """Pick about ``count`` pixels of a person, stratified over its visible surface patches.

    Args:
        mask: ``(H, W)`` bool, the person's visible pixels.
        part: ``(H, W)`` uint8 surface patch map of the frame.
        rng: random generator (the only source of randomness).
        count: wanted number of points (fewer when the person has fewer usable pixels).

    Returns:
        ``rows, cols`` (N,) int64, grouped by patch (ascending) and in raster order within one.
    """
    labels = np.where(mask, part.astype(np.int64), -1)
    padded = np.pad(labels, 1, constant_values=-2)
    interior = mask.copy()
    for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
        interior &= padded[dr : dr + labels.shape[0], dc : dc + labels.shape[1]] == labels
    flat_labels = labels.ravel()
    flat_interior = interior.ravel()
    candidates = []
    for patch in np.unique(flat_labels[flat_labels > 0]):
        on_patch = flat_labels == patch
        inner = np.flatnonzero(on_patch & flat_interior)
        candidates.append(inner if inner.size >= 3 else np.flatnonzero(on_patch))
    # Water-filling: smallest patches first, each gets an equal share of what is left.
    order = sorted(range(len(candidates)), key=lambda i: (candidates[i].size, i))
    quota = [0] * len(candidates)
    left = count
    for rank, i in enumerate(order):
        quota[i] = min(candidates[i].size, left // (len(order) - rank))
        left -= quota[i]
    chosen = [
        np.sort(rng.choice(cands, size=q, replace=False))
        for cands, q in zip(candidates, quota, strict=True)
        if q > 0
    ]
    flat = np.concatenate(chosen) if chosen else np.zeros((0,), dtype=np.int64)
    return np.divmod(flat, mask.shape[1])


def part_label_grid(
    mask: np.ndarray, part: np.ndarray, box: tuple[float, float, float, float]
) -> np.ndarray:
    """The person's visible mask-part map (0..14) resampled (nearest) on the 256x256 box grid.

    Grid cell ``(i, j)`` takes the pixel nearest to its centre
    ``(box_x + (j + 0.5) / 256 * box_w, box_y + (i + 0.5) / 256 * box_h)``.
    """
    height, width = mask.shape
    x0, y0, w, h = box
    centres = (np.arange(DP_GRID, dtype=np.float64) + 0.5) / DP_GRID
    cols = np.clip(np.rint(x0 + centres * w).astype(np.int64), 0, width - 1)
    rows = np.clip(np.rint(y0 + centres * h).astype(np.int64), 0, height - 1)
    labels = np.where(mask, SURFACE_TO_MASK_PART[part], 0).astype(np.uint8)
    return labels[np.ix_(rows, cols)]


def _round_list(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


def person_annotation(
    person: PersonMotion,
    frame: RenderedFrame,
    index: int,
    *,
    labelled: bool,
    rng: np.random.Generator,
) -> dict | None:
    """One DensePose-PoseTrack annotation of ``person`` in ``frame`` (without ``id`` and
    ``image_id``), or ``None`` when fewer than :data:`MIN_VISIBLE_PIXELS` pixels show it."""
    mask = frame.person == person.track_id
    area = int(mask.sum())
    if area < MIN_VISIBLE_PIXELS:
        return None
    box = person_box(mask)
    keypoints = keypoint_annotation(person, frame, float(index))
    segmentation = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    annotation = {
        "track_id": int(person.track_id),
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [round(v, 4) for v in box],
        "area": float(area),
        "segmentation": {
            "size": [int(v) for v in segmentation["size"]],
            "counts": segmentation["counts"].decode("ascii"),
        },
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
        "keypoints": _round_list(keypoints, 3),
    }
    if labelled:
        rows, cols = sample_dp_pixels(mask, frame.part, rng)
        x0, y0, w, h = box
        annotation.update(
            {
                "dp_x": _round_list((cols - x0) / w * DP_GRID, 5),
                "dp_y": _round_list((rows - y0) / h * DP_GRID, 5),
                "dp_I": [float(v) for v in frame.part[rows, cols]],
                "dp_U": _round_list(frame.u[rows, cols], 6),
                "dp_V": _round_list(frame.v[rows, cols], 6),
                "dp_masks": list(encode_part_masks(part_label_grid(mask, frame.part, box))),
            }
        )
    return annotation
