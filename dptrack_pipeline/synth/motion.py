"""How a synthetic person moves: random walkers, and their limb frames at any time ``t``.

Every quantity is an analytic function of continuous time ``t`` (in frames), so the image
position of any surface point is known exactly at any time; that is what makes the optical-flow
truth of :mod:`dptrack_pipeline.synth.truth` exact rather than estimated.

Motion is walking-like: the hips and shoulders swing as sinusoids of one gait phase with random
frequency and phase, knees and elbows bend with the gait, the pelvis bobs, moves sideways along a
slow sinusoid (nearly straight within a few dozen frames) and the scale breathes by a few percent.
All random draws happen once, in :func:`random_people`; a :class:`PersonMotion` then fixes the
pose at every ``t``.

Frames: :func:`canonical_pose` gives each limb's origin and angle in the canonical body frame
(:mod:`~dptrack_pipeline.synth.limbs`); :func:`limb_affines` maps them to image pixels, one
``(2, 3)`` affine per limb (the limb-frame convention of :mod:`~dptrack_pipeline.synth.charts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.structures import NUM_MASK_PARTS
from dptrack_pipeline.synth.limbs import (
    BASE_GEOMETRY,
    CENTRE,
    DEPTH_OFFSET,
    FAR,
    KINDS,
    LIMBS,
    NEAR,
    PERSON_DEPTH_STEP,
    SHOULDER_S,
    Limb,
    LimbGeometry,
)


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
