"""Articulated 2D human bodies: the kinematic tree, its walking motion and its surface charts.

A person is a stack of 14 flat **limbs** (the 14 DensePose mask parts) on a kinematic tree:
torso -> head; torso -> upper arms -> lower arms -> hands; torso -> upper legs -> lower legs ->
feet. Every quantity is an analytic function of continuous time ``t`` (in frames), so the image
position of any surface point is known exactly at any time; that is what makes the optical-flow
truth of :mod:`dptrack_pipeline.synth.truth` exact rather than estimated.

Conventions:

* **Canonical body frame**: units of about one pixel at scale 1, origin at the pelvis, ``y``
  down, the person facing ``+x``. The camera sees the body from its *right* side (someone
  walking to the right of the picture shows their right side), so the right limbs are the
  *near* limbs, drawn in front of the torso, and the left limbs are behind it. A person facing
  ``-x`` is the mirror image (``x -> -x``) with left and right swapped, so the near limbs are
  then the left ones.
* **Limb frame**: origin at the limb's proximal joint, axis ``e_s = (cos a, sin a)`` along the
  limb (angle ``a`` in the canonical frame, radians, measured from ``+x`` towards ``+y``) and
  ``e_t = (-sin a, cos a)`` across it. A limb point with local coordinates ``(s, t)`` is at
  canonical ``o + s e_s + t e_t`` and at image pixel
  ``root + scale * diag(facing, 1) @ (o + s e_s + t e_t)``: one 2x3 affine per limb and time
  (:func:`limb_affines`). Image coordinates follow :mod:`dptrack_pipeline.structures` (pixel
  centres on integers, ``x`` right, ``y`` down).
* **Shapes**: a ``quad`` limb covers ``s0 <= s <= s1`` and ``|t| <= h(s)`` with the half-width
  ``h`` linear from ``w0 / 2`` at ``s0`` to ``w1 / 2`` at ``s1``; an ``ellipse`` limb (head,
  hands, feet) has its axes on ``[s0, s1]`` and ``|t| <= w0 / 2``.
* **Surface charts** (DensePose ``I, U, V``): ``U = (s - s0) / (s1 - s0)`` runs along the limb.
  The across coordinate is ``n = t / h(s)`` for quads and ``n = 2 t / w0`` for ellipses, in
  ``[-1, 1]``. A limb with two DensePose patches (e.g. 7 and 9, upper leg right) is cut along
  its axis: the half ``n < 0`` is the first patch with ``V = n + 1`` and the half ``n >= 0`` the
  second with ``V = n``; a one-patch limb (hands, feet) has ``V = (n + 1) / 2``. ``U, V`` lie in
  ``[0, 1]``. In the canonical frame the ``n >= 0`` half of the torso faces forward, so patch 2
  is the front of the torso and patch 1 its back, as in DensePose.
* **Depth**: each limb has a fixed depth offset (smaller = nearer the camera) added to the
  person's base depth; people are separated by more than a body's depth range, so one person is
  wholly in front of another and the z-buffer decides overlaps.

Motion is walking-like: the hips and shoulders swing as sinusoids of one gait phase with random
frequency and phase, knees and elbows bend with the gait, the pelvis bobs, moves sideways along a
slow sinusoid (nearly straight within a few dozen frames) and the scale breathes by a few percent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.structures import NUM_KEYPOINTS, NUM_MASK_PARTS

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

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)
"""COCO person skeleton, 1-based keypoint indices (as in ``person_keypoints`` categories)."""

assert len(COCO_KEYPOINT_NAMES) == NUM_KEYPOINTS


@dataclass(frozen=True)
class PersonMotion:
    """All random parameters of one person; every pose follows from these and ``t``.

    Attributes:
        track_id: the person's track id inside its video (0, 1, ...).
        facing: ``+1`` walks towards ``+x`` (right side visible), ``-1`` mirrored.
        depth: base depth (smaller = nearer); limb offsets of :data:`DEPTH_OFFSET` are added.
        x_centre, x_amp, x_omega, t_centre: pelvis ``x(t) = x_centre + facing * x_amp *
            sin(x_omega * (t - t_centre))`` (pixels, frames).
        y_base, bob_amp: pelvis ``y(t) = y_base + bob_amp * cos(2 * gait(t))``.
        scale0, scale_amp, scale_omega, scale_phase: ``scale(t) = scale0 * (1 + scale_amp *
            sin(scale_omega * t + scale_phase))`` (pixels per canonical unit).
        gait_omega, gait_phase: gait phase ``gait(t) = gait_omega * t + gait_phase`` (radians).
        lean: forward lean of the torso (radians).
        hip_amp, shoulder_amp: swing amplitudes of the legs and arms (radians).
        knee_amp, elbow_base, elbow_amp: bending of knees and elbows (radians).
        length_factor, width_factor: per-kind size jitter, ``{kind: factor}`` as sorted tuples.
    """

    track_id: int
    facing: int
    depth: float
    x_centre: float
    x_amp: float
    x_omega: float
    t_centre: float
    y_base: float
    bob_amp: float
    scale0: float
    scale_amp: float
    scale_omega: float
    scale_phase: float
    gait_omega: float
    gait_phase: float
    lean: float
    hip_amp: float
    shoulder_amp: float
    knee_amp: float
    elbow_base: float
    elbow_amp: float
    length_factor: tuple[tuple[str, float], ...]
    width_factor: tuple[tuple[str, float], ...]

    def geometry(self, kind: str) -> LimbGeometry:
        """The person's own geometry of a limb kind (base geometry with size jitter)."""
        return BASE_GEOMETRY[kind].scaled(
            dict(self.length_factor)[kind], dict(self.width_factor)[kind]
        )

    def near_side(self) -> str:
        """Anatomical side facing the camera: ``"right"`` when facing ``+x``, else ``"left"``."""
        return "right" if self.facing > 0 else "left"

    def depth_of(self, limb: Limb) -> float:
        """Absolute depth of one limb of this person (smaller = nearer)."""
        if limb.side == "centre":
            rank = CENTRE
        else:
            rank = NEAR if limb.side == self.near_side() else FAR
        return self.depth + DEPTH_OFFSET[(limb.kind, rank)]


def random_people(
    rng: np.random.Generator, count: int, width: int, height: int, frames: int
) -> tuple[PersonMotion, ...]:
    """Draw ``count`` people for one video of ``frames`` frames at ``width x height``.

    People are about 0.55-0.65 of the image height, walk at 1.2-2.8 px/frame (at 240 rows,
    proportionally otherwise) and, with two people, in opposite directions so that they cross
    somewhere in the middle part of the video (occlusions).
    """
    unit = height / 240.0
    order = rng.permutation(count)
    first_facing = int(rng.choice([-1, 1]))
    people = []
    for index in range(count):
        facing = first_facing if index % 2 == 0 else -first_facing
        speed = rng.uniform(1.2, 2.8) * unit
        x_omega = 2.0 * np.pi / rng.uniform(160.0, 240.0)
        if count <= 2:
            x_centre = width / 2.0 + rng.uniform(-0.1, 0.1) * width
            t_centre = (frames - 1) / 2.0 + rng.uniform(-0.35, 0.35) * frames
        else:
            x_centre = rng.uniform(0.25, 0.75) * width
            t_centre = rng.uniform(0.0, frames)
        lengths = tuple((kind, float(rng.uniform(0.93, 1.07))) for kind in KINDS)
        widths = tuple((kind, float(rng.uniform(0.88, 1.12))) for kind in KINDS)
        people.append(
            PersonMotion(
                track_id=index,
                facing=facing,
                depth=PERSON_DEPTH_STEP * (1 + int(order[index])),
                x_centre=float(x_centre),
                x_amp=float(speed / x_omega),
                x_omega=float(x_omega),
                t_centre=float(t_centre),
                y_base=float(height * rng.uniform(0.55, 0.6)),
                bob_amp=float(rng.uniform(1.0, 2.0) * unit),
                scale0=float(rng.uniform(0.75, 0.88) * unit),
                scale_amp=float(rng.uniform(0.03, 0.06)),
                scale_omega=float(2.0 * np.pi / rng.uniform(30.0, 60.0)),
                scale_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
                gait_omega=float(2.0 * np.pi / rng.uniform(28.0, 40.0)),
                gait_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
                lean=float(rng.uniform(0.03, 0.12)),
                hip_amp=float(rng.uniform(0.28, 0.4)),
                shoulder_amp=float(rng.uniform(0.25, 0.4)),
                knee_amp=float(rng.uniform(0.3, 0.55)),
                elbow_base=float(rng.uniform(0.15, 0.35)),
                elbow_amp=float(rng.uniform(0.2, 0.4)),
                length_factor=lengths,
                width_factor=widths,
            )
        )
    return tuple(people)


def root_position(person: PersonMotion, t: float) -> np.ndarray:
    """Pelvis position in image pixels at time ``t`` (frames): ``(2,)`` float64 ``(x, y)``."""
    gait = person.gait_omega * t + person.gait_phase
    x = person.x_centre + person.facing * person.x_amp * np.sin(
        person.x_omega * (t - person.t_centre)
    )
    y = person.y_base + person.bob_amp * np.cos(2.0 * gait)
    return np.array([x, y], dtype=np.float64)


def body_scale(person: PersonMotion, t: float) -> float:
    """Pixels per canonical unit at time ``t``."""
    return person.scale0 * (
        1.0 + person.scale_amp * np.sin(person.scale_omega * t + person.scale_phase)
    )


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float64)


def canonical_pose(person: PersonMotion, t: float) -> dict[int, tuple[np.ndarray, float]]:
    """Limb frames in the canonical body frame at time ``t``.

    Returns:
        ``{mask_part: (origin (2,) float64, angle)}`` for the 14 limbs, origin in canonical units
        relative to the pelvis, angle in radians (see the module docstring).
    """
    gait = person.gait_omega * t + person.gait_phase
    near = person.near_side()
    torso_angle = -np.pi / 2 + person.lean + 0.03 * np.sin(2.0 * gait)
    head_angle = torso_angle + 0.06 * np.sin(gait + 1.0)
    torso = person.geometry("torso")
    pelvis = np.zeros(2)
    torso_axis = _unit(torso_angle)
    neck = pelvis + torso.length * torso_axis
    shoulder = pelvis + SHOULDER_S * dict(person.length_factor)["torso"] * torso_axis
    pose: dict[int, tuple[np.ndarray, float]] = {1: (pelvis, torso_angle), 14: (neck, head_angle)}

    for side in ("right", "left"):
        phase = gait if side == near else gait + np.pi
        # Legs: forward swing lowers the angle from pi/2 (pointing down) towards 0 (forward).
        hip_angle = np.pi / 2 - person.hip_amp * np.sin(phase)
        knee_bend = 0.05 + person.knee_amp * 0.5 * (1.0 + np.cos(phase - 0.3))
        shin_angle = hip_angle + knee_bend
        foot_angle = shin_angle - np.pi / 2 + 0.12 * np.sin(phase + 0.8)
        # Arms swing against the leg of the same side; elbows bend forward.
        arm_angle = np.pi / 2 + person.shoulder_amp * np.sin(phase)
        elbow_bend = person.elbow_base + person.elbow_amp * 0.5 * (1.0 + np.sin(phase + 0.5))
        forearm_angle = arm_angle - elbow_bend
        hand_angle = forearm_angle - 0.1
        knee = pelvis + person.geometry("upper_leg").length * _unit(hip_angle)
        ankle = knee + person.geometry("lower_leg").length * _unit(shin_angle)
        elbow = shoulder + person.geometry("upper_arm").length * _unit(arm_angle)
        wrist = elbow + person.geometry("lower_arm").length * _unit(forearm_angle)
        parts = {
            "upper_leg": (pelvis, hip_angle),
            "lower_leg": (knee, shin_angle),
            "foot": (ankle, foot_angle),
            "upper_arm": (shoulder, arm_angle),
            "lower_arm": (elbow, forearm_angle),
            "hand": (wrist, hand_angle),
        }
        for limb in LIMBS:
            if limb.side == side:
                pose[limb.mask_part] = parts[limb.kind]
    return pose


def limb_affines(person: PersonMotion, t: float) -> np.ndarray:
    """Image affines of the 14 limbs at time ``t``.

    Returns:
        ``(15, 2, 3)`` float64; entry ``k`` (mask part 1..14; entry 0 is unused and zero) maps
        limb-local ``(s, t, 1)`` to image pixels ``(x, y)``.
    """
    root = root_position(person, t)
    scale = body_scale(person, t)
    mirror = np.diag([float(person.facing), 1.0])
    out = np.zeros((NUM_MASK_PARTS + 1, 2, 3), dtype=np.float64)
    for part, (origin, angle) in canonical_pose(person, t).items():
        c, s = np.cos(angle), np.sin(angle)
        rotation = np.array([[c, -s], [s, c]])
        out[part, :, :2] = scale * mirror @ rotation
        out[part, :, 2] = root + scale * mirror @ origin
    return out


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine (image pixels -> limb-local ``(s, t)``)."""
    linear = np.linalg.inv(affine[:, :2])
    return np.concatenate([linear, -linear @ affine[:, 2:3]], axis=1)


def local_to_chart(
    geometry: LimbGeometry, num_patches: int, s: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Limb-local coordinates to the surface chart.

    Args:
        geometry: the limb's geometry.
        num_patches: 1 or 2 (patches of the limb).
        s, t: ``(N,)`` local coordinates (canonical units).

    Returns:
        ``inside`` (N,) bool (the point lies on the limb), ``slot`` (N,) int64 (0 = first patch,
        1 = second), ``U`` and ``V`` (N,) float64 in ``[0, 1]`` (meaningful where ``inside``).
    """
    s = np.asarray(s, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    u = (s - geometry.s0) / (geometry.s1 - geometry.s0)
    if geometry.shape == ELLIPSE:
        half = geometry.w0 / 2.0
        inside = (2.0 * u - 1.0) ** 2 + (t / half) ** 2 <= 1.0
        n = t / half
    else:
        half = geometry.half_width(s)
        inside = (u >= 0.0) & (u <= 1.0) & (np.abs(t) <= half)
        n = t / np.maximum(half, 1e-9)
    n = np.clip(n, -1.0, 1.0)
    u = np.clip(u, 0.0, 1.0)
    if num_patches == 1:
        slot = np.zeros(s.shape, dtype=np.int64)
        v = (n + 1.0) / 2.0
    else:
        slot = (n >= 0.0).astype(np.int64)
        v = np.where(slot == 0, n + 1.0, n)
    return inside, slot, u, v


def chart_to_local(
    geometry: LimbGeometry, num_patches: int, slot: np.ndarray, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`local_to_chart`: ``(slot, U, V)`` to limb-local ``(s, t)`` (N,) each."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    s = geometry.s0 + u * (geometry.s1 - geometry.s0)
    if num_patches == 1:
        n = 2.0 * v - 1.0
    else:
        n = np.where(np.asarray(slot) == 0, v - 1.0, v)
    return s, n * geometry.half_width(s)


def apply_affine(affine: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Map ``(N,)`` coordinates ``a, b`` through a ``(2, 3)`` affine: ``(N, 2)`` float64."""
    x = affine[0, 0] * a + affine[0, 1] * b + affine[0, 2]
    y = affine[1, 0] * a + affine[1, 1] * b + affine[1, 2]
    return np.stack([x, y], axis=-1)


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
