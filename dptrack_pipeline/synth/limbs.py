"""What a synthetic body is made of: its 14 limbs, their shapes, surface patches and depth order.

A person is a stack of 14 flat **limbs** (the 14 DensePose mask parts) on a kinematic tree:
torso -> head; torso -> upper arms -> lower arms -> hands; torso -> upper legs -> lower legs ->
feet. This module holds the static description of that body; how it moves is
:mod:`~dptrack_pipeline.synth.motion`, how a limb point maps to ``I, U, V`` and to pixels is
:mod:`~dptrack_pipeline.synth.charts`.

Conventions:

* **Canonical body frame**: units of about one pixel at scale 1, origin at the pelvis, ``y``
  down, the person facing ``+x``. The camera sees the body from its *right* side (someone
  walking to the right of the picture shows their right side), so the right limbs are the
  *near* limbs, drawn in front of the torso, and the left limbs are behind it. A person facing
  ``-x`` is the mirror image (``x -> -x``) with left and right swapped, so the near limbs are
  then the left ones.
* **Limb frame**: origin at the limb's proximal joint, ``s`` along the limb and ``t`` across it
  (canonical units; see :mod:`~dptrack_pipeline.synth.charts`).
* **Shapes** (:class:`LimbGeometry`): a ``quad`` limb covers ``s0 <= s <= s1`` and
  ``|t| <= h(s)`` with the half-width ``h`` linear from ``w0 / 2`` at ``s0`` to ``w1 / 2`` at
  ``s1``; an ``ellipse`` limb (head, hands, feet) has its axes on ``[s0, s1]`` and
  ``|t| <= w0 / 2``.
* **Patches** (:class:`Limb`): a limb carries one DensePose surface patch (hands, feet) or two,
  cut along its axis; :data:`PATCH_TO_LIMB` and :data:`PATCH_SLOT` invert that assignment.
  Patch 2 is the front of the torso and patch 1 its back, as in DensePose.
* **Depth**: each limb has a fixed depth offset (:data:`DEPTH_OFFSET`, smaller = nearer the
  camera) added to the person's base depth; people are separated by more than a body's depth
  range (:data:`PERSON_DEPTH_STEP`), so one person is wholly in front of another and the
  z-buffer decides overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.structures import NUM_MASK_PARTS

QUAD = "quad"
ELLIPSE = "ellipse"

NEAR = "near"
FAR = "far"
CENTRE = "centre"

KINDS: tuple[str, ...] = (
    "torso",
    "head",
    "upper_arm",
    "lower_arm",
    "hand",
    "upper_leg",
    "lower_leg",
    "foot",
)


@dataclass(frozen=True)
class LimbGeometry:
    """Shape of one limb kind in canonical units (see the module docstring).

    Attributes:
        shape: ``"quad"`` or ``"ellipse"``.
        length: joint-to-joint length (where the child limb is attached).
        s0, s1: drawn extent along the limb axis (``s0 < 0`` / ``s1 > length`` overlap the
            neighbours so joints look closed).
        w0, w1: full width at ``s0`` and ``s1`` (ellipses use ``w0``).
    """

    shape: str
    length: float
    s0: float
    s1: float
    w0: float
    w1: float

    def half_width(self, s: np.ndarray) -> np.ndarray:
        """``h(s)``: half-width of the chart's across coordinate at ``s`` (canonical units)."""
        if self.shape == ELLIPSE:
            return np.full(np.shape(s), self.w0 / 2.0)
        u = (np.asarray(s, dtype=np.float64) - self.s0) / (self.s1 - self.s0)
        return (self.w0 + (self.w1 - self.w0) * u) / 2.0

    def max_half_width(self) -> float:
        return max(self.w0, self.w1) / 2.0

    def scaled(self, length_factor: float, width_factor: float) -> LimbGeometry:
        return LimbGeometry(
            self.shape,
            self.length * length_factor,
            self.s0 * length_factor,
            self.s1 * length_factor,
            self.w0 * width_factor,
            self.w1 * width_factor,
        )


BASE_GEOMETRY: dict[str, LimbGeometry] = {
    "torso": LimbGeometry(QUAD, 56.0, -6.0, 60.0, 32.0, 38.0),
    "head": LimbGeometry(ELLIPSE, 30.0, -4.0, 30.0, 25.0, 25.0),
    "upper_arm": LimbGeometry(QUAD, 30.0, -5.0, 33.0, 12.0, 10.0),
    "lower_arm": LimbGeometry(QUAD, 27.0, -3.0, 29.0, 10.0, 8.0),
    "hand": LimbGeometry(ELLIPSE, 12.0, -2.0, 13.0, 10.0, 10.0),
    "upper_leg": LimbGeometry(QUAD, 42.0, -6.0, 45.0, 17.0, 13.0),
    "lower_leg": LimbGeometry(QUAD, 40.0, -3.0, 42.0, 13.0, 10.0),
    "foot": LimbGeometry(ELLIPSE, 18.0, -6.0, 17.0, 9.0, 9.0),
}
"""Geometry of each limb kind for an average person (about 175 units from foot to head top)."""

SHOULDER_S = 50.0
"""Where the arms hang on the torso axis (canonical units from the pelvis, before size jitter)."""


@dataclass(frozen=True)
class Limb:
    """One of the 14 limbs: its DensePose mask part (1..14), kind, anatomical side and patches.

    ``patches`` are the DensePose surface patch indices ``I``: one for hands and feet, else two,
    the first on the chart half ``n < 0`` and the second on ``n >= 0``.
    """

    mask_part: int
    name: str
    kind: str
    side: str  # "right", "left" or "centre"
    patches: tuple[int, ...]


LIMBS: tuple[Limb, ...] = (
    Limb(1, "Torso", "torso", "centre", (1, 2)),
    Limb(2, "Right Hand", "hand", "right", (3,)),
    Limb(3, "Left Hand", "hand", "left", (4,)),
    Limb(4, "Left Foot", "foot", "left", (5,)),
    Limb(5, "Right Foot", "foot", "right", (6,)),
    Limb(6, "Upper Leg Right", "upper_leg", "right", (7, 9)),
    Limb(7, "Upper Leg Left", "upper_leg", "left", (8, 10)),
    Limb(8, "Lower Leg Right", "lower_leg", "right", (11, 13)),
    Limb(9, "Lower Leg Left", "lower_leg", "left", (12, 14)),
    Limb(10, "Upper Arm Left", "upper_arm", "left", (15, 17)),
    Limb(11, "Upper Arm Right", "upper_arm", "right", (16, 18)),
    Limb(12, "Lower Arm Left", "lower_arm", "left", (19, 21)),
    Limb(13, "Lower Arm Right", "lower_arm", "right", (20, 22)),
    Limb(14, "Head", "head", "centre", (23, 24)),
)
"""The 14 limbs in DensePose mask-part order (``LIMBS[k - 1].mask_part == k``)."""

assert [limb.mask_part for limb in LIMBS] == list(range(1, NUM_MASK_PARTS + 1))

PATCH_TO_LIMB: np.ndarray = np.zeros(25, dtype=np.int64)
"""``(25,)``: mask part (1..14) of each surface patch 1..24; 0 for 0."""
PATCH_SLOT: np.ndarray = np.zeros(25, dtype=np.int64)
"""``(25,)``: 0 when a patch is its limb's first (or only) patch, 1 when it is the second."""
for _limb in LIMBS:
    for _slot, _patch in enumerate(_limb.patches):
        PATCH_TO_LIMB[_patch] = _limb.mask_part
        PATCH_SLOT[_patch] = _slot
PATCH_TO_LIMB.setflags(write=False)
PATCH_SLOT.setflags(write=False)

DEPTH_OFFSET: dict[tuple[str, str], float] = {
    ("hand", NEAR): 0.00,
    ("lower_arm", NEAR): 0.01,
    ("upper_arm", NEAR): 0.02,
    ("foot", NEAR): 0.03,
    ("lower_leg", NEAR): 0.04,
    ("upper_leg", NEAR): 0.05,
    ("head", CENTRE): 0.06,
    ("torso", CENTRE): 0.07,
    ("upper_arm", FAR): 0.08,
    ("lower_arm", FAR): 0.09,
    ("hand", FAR): 0.10,
    ("upper_leg", FAR): 0.11,
    ("lower_leg", FAR): 0.12,
    ("foot", FAR): 0.13,
}
"""Depth of each limb behind the person's base depth: near arm, near leg, head, torso, far arm,
far leg. Distinct values, so overlapping limbs of one person never tie in the z-buffer."""

PERSON_DEPTH_STEP = 1.0
"""Base depths of the people of a video are ``1, 2, ...`` (more than a body's 0.13 range)."""
