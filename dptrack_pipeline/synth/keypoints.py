"""Where a synthetic person's COCO keypoints are, and on which limbs they can be seen.

The 17 COCO keypoints are fixed points of the body's limb frames
(:mod:`~dptrack_pipeline.synth.charts`): the face points (nose, eyes, ears) sit on the head at
fixed fractions of its length and width, forward being ``t > 0``; shoulders and hips are the
proximal joints of the upper arms and legs, elbows, wrists, knees and ankles the distal ends of
the limb before them. Because they move with the limbs, their image positions are as exact as
the surface's. A keypoint counts as visible where one of the limbs it may be seen on is the
front-most surface at its pixel (decided by the renderer's z-buffer); the far ear is hidden by
the head itself.
"""

from __future__ import annotations

import numpy as np

from dptrack_pipeline.structures import COCO_KEYPOINT_NAMES, NUM_KEYPOINTS
from dptrack_pipeline.synth.charts import apply_affine
from dptrack_pipeline.synth.limbs import LIMBS
from dptrack_pipeline.synth.motion import PersonMotion, limb_affines


def _keypoint_limbs(person: PersonMotion) -> list[tuple[int, tuple[int, ...], float, float]]:
    """Per COCO keypoint: the limb (mask part) whose frame defines it, the limbs it may be
    seen on, and its local ``(s, t)``."""
    near = person.near_side()
    far = "left" if near == "right" else "right"
    part = {(limb.kind, limb.side): limb.mask_part for limb in LIMBS}
    head = person.geometry("head")
    hs, hw = head.s1 - head.s0, head.w0
    out: list[tuple[int, tuple[int, ...], float, float]] = []
    # nose, eyes, ears on the head (forward is t > 0 in the canonical frame).
    face = {
        "nose": (head.s0 + 0.45 * hs, 0.45 * hw),
        f"{near}_eye": (head.s0 + 0.62 * hs, 0.30 * hw),
        f"{far}_eye": (head.s0 + 0.64 * hs, 0.40 * hw),
        f"{near}_ear": (head.s0 + 0.55 * hs, -0.02 * hw),
        f"{far}_ear": (head.s0 + 0.57 * hs, 0.02 * hw),
    }
    for name in COCO_KEYPOINT_NAMES[:5]:
        s, t = face[name]
        out.append((14, (14,), s, t))
    joints = [
        ("shoulder", "upper_arm", 0.0, ("upper_arm",)),
        ("elbow", "upper_arm", 1.0, ("upper_arm", "lower_arm")),
        ("wrist", "lower_arm", 1.0, ("lower_arm", "hand")),
        ("hip", "upper_leg", 0.0, ("upper_leg",)),
        ("knee", "upper_leg", 1.0, ("upper_leg", "lower_leg")),
        ("ankle", "lower_leg", 1.0, ("lower_leg", "foot")),
    ]
    for _joint, kind, frac, seen_on in joints:
        for side in ("left", "right"):
            frame_part = part[(kind, side)]
            length = person.geometry(kind).length
            out.append((frame_part, tuple(part[(k, side)] for k in seen_on), frac * length, 0.0))
    # Joints were appended left then right per joint: COCO order 5..16.
    return out


def keypoints_at(person: PersonMotion, t: float) -> tuple[np.ndarray, list[tuple[int, ...]], int]:
    """COCO keypoints of a person at time ``t``.

    Returns:
        ``(17, 2)`` float64 image positions (COCO order), for each keypoint the mask parts it may
        be seen on (for the visibility test), and the index of the far ear (hidden by the head
        itself, so never visible).
    """
    affines = limb_affines(person, t)
    specs = _keypoint_limbs(person)
    positions = np.zeros((NUM_KEYPOINTS, 2), dtype=np.float64)
    seen_on: list[tuple[int, ...]] = []
    for index, (frame_part, parts, s, t_local) in enumerate(specs):
        positions[index] = apply_affine(affines[frame_part], np.array(s), np.array(t_local))
        seen_on.append(parts)
    far_ear = 3 if person.near_side() == "right" else 4
    return positions, seen_on, far_ear
