"""Surface distances on the synthetic bodies of ``dptrack-build synth`` (in centimetres).

The synthetic people (:mod:`dptrack_pipeline.synth.limbs`) are flat limbs on a kinematic tree,
each with a DensePose chart. A DensePose-style evaluation needs, like the SMPL geodesic matrix of
real data (:mod:`dptrack_pipeline.train.geodesic`), a distance between two chart points
``(I, U, V)`` of the same person along the body surface. It is defined here as follows.

* **Chart to limb.** ``I`` (1..24) names the limb (``PATCH_TO_LIMB``) and the half of it
  (``PATCH_SLOT``); :func:`~dptrack_pipeline.synth.charts.chart_to_local` turns ``(U, V)`` into
  the limb-local ``(s, t)`` (canonical units, ``s`` along the limb from its proximal joint).
  The two patches of a limb are the two halves of one flat shape, so they are adjacent across the
  limb's axis.
* **Same limb.** The Euclidean distance in the limb's plane (every limb shape is convex, so the
  straight segment stays on the limb).
* **Different limbs.** The path through the joints of the kinematic tree (a tree, so the path is
  unique and no graph search is needed): from point ``a`` straight to the joint by which its limb
  leads towards the other limb, across every intermediate limb from the joint it is entered by to
  the joint it is left by (straight, in that limb's plane), and from the last joint straight to
  ``b``. Joints are points: both legs hang from the pelvis (the torso's origin) and both arms
  from one shoulder point on the torso's axis, exactly as the bodies are drawn.
* **No rest pose is needed.** Every term is measured in a limb's own frame, where joints sit at
  fixed local positions (a child limb's origin is its joint; the joint's position in the parent's
  frame is read from :func:`~dptrack_pipeline.synth.motion.canonical_pose` and is the same at
  every time, as the limbs are rigidly attached), so the distance is intrinsic to the surface and
  does not change with the pose, as a geodesic on a body surface should not.
* **Centimetres.** Canonical units are converted with one scale per person such that the
  person's standing height is :data:`BODY_HEIGHT_CM` (170 cm): the standing height in units is
  foot sole to head top with straight legs and an upright torso, ``foot.w0 / 2 + lower_leg.length
  + upper_leg.length + torso.length + head.s1`` (about 172 units for the average body). Like
  DensePose's single SMPL template, every body is thereby measured at one standard size, so the
  5/10/20 cm thresholds mean the same fraction of the body for everyone.
* A point with ``I`` outside ``1..24`` (background, padding) is infinitely far from anything.

The people of a synthetic dataset are rebuilt from its truth index with :func:`synth_people`: the
dataset seed, frame size, people per video and each video's frame count determine them exactly
(:func:`~dptrack_pipeline.synth.render.make_scene`).
"""

from __future__ import annotations

import os

import numpy as np

from dptrack_pipeline.structures import NUM_MASK_PARTS, normalise_video_id
from dptrack_pipeline.synth.charts import chart_to_local
from dptrack_pipeline.synth.dataset import FIRST_VIDEO_ID
from dptrack_pipeline.synth.limbs import LIMBS, PATCH_SLOT, PATCH_TO_LIMB
from dptrack_pipeline.synth.motion import PersonMotion, canonical_pose
from dptrack_pipeline.synth.render import make_scene
from dptrack_pipeline.synth.truth import load_truth_index

BODY_HEIGHT_CM = 170.0
"""Standing height every synthetic body is scaled to when converting to centimetres."""

PARENT_KIND: dict[str, str] = {
    "head": "torso",
    "upper_arm": "torso",
    "upper_leg": "torso",
    "lower_arm": "upper_arm",
    "hand": "lower_arm",
    "lower_leg": "upper_leg",
    "foot": "lower_leg",
}
"""The kinematic tree by limb kind (a child hangs on the parent kind of its own side)."""

_NUM_LIMBS = NUM_MASK_PARTS + 1  # tables are indexed by mask part 1..14; entry 0 is unused


def limb_parents() -> np.ndarray:
    """``(15,)`` int64: the parent limb (mask part) of each limb 1..14; 0 for the torso and for the
    unused entry 0."""
    by_kind_side = {(limb.kind, limb.side): limb.mask_part for limb in LIMBS}
    parents = np.zeros(_NUM_LIMBS, dtype=np.int64)
    for limb in LIMBS:
        if limb.kind in PARENT_KIND:
            kind = PARENT_KIND[limb.kind]
            side = "centre" if kind == "torso" else limb.side
            parents[limb.mask_part] = by_kind_side[(kind, side)]
    return parents


def joints_in_parent(person: PersonMotion, t: float = 0.0) -> np.ndarray:
    """``(15, 2)`` float64: for each limb 1..14 the position of its proximal joint (its own local
    origin) in its parent's local frame ``(s, t)``, canonical units; zero for the torso.

    Read from the pose at time ``t``; the result does not depend on ``t`` (rigid attachment).
    """
    pose = canonical_pose(person, t)
    parents = limb_parents()
    out = np.zeros((_NUM_LIMBS, 2), dtype=np.float64)
    for child in range(1, _NUM_LIMBS):
        parent = int(parents[child])
        if parent == 0:
            continue
        origin, angle = pose[parent]
        c, s = np.cos(angle), np.sin(angle)
        offset = pose[child][0] - origin
        out[child] = (c * offset[0] + s * offset[1], -s * offset[0] + c * offset[1])
    return out


def standing_height_units(person: PersonMotion) -> float:
    """Foot sole to head top of ``person`` standing straight, in canonical units (see the module
    docstring)."""
    return float(
        person.geometry("foot").w0 / 2.0
        + person.geometry("lower_leg").length
        + person.geometry("upper_leg").length
        + person.geometry("torso").length
        + person.geometry("head").s1
    )


def chart_to_limb_local(
    person: PersonMotion, I: np.ndarray, U: np.ndarray, V: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chart points of ``person`` to their limb and limb-local coordinates.

    Args:
        person: the synthetic person.
        I: ``(N,)`` integer surface patch; ``1..24`` on the body, anything else is off the body.
        U, V: ``(N,)`` chart coordinates in ``[0, 1]``.

    Returns:
        ``limb`` ``(N,)`` int64 mask part 1..14 (0 off the body) and ``s``, ``t`` ``(N,)`` float64
        limb-local coordinates in canonical units (0 off the body).
    """
    I = np.asarray(I).astype(np.int64)
    U = np.asarray(U, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    on_body = (I >= 1) & (I <= 24)
    patch = np.where(on_body, I, 0)
    limb = PATCH_TO_LIMB[patch]
    s = np.zeros(I.shape, dtype=np.float64)
    t = np.zeros(I.shape, dtype=np.float64)
    for part in np.unique(limb[limb > 0]):
        sel = limb == part
        spec = LIMBS[int(part) - 1]
        s[sel], t[sel] = chart_to_local(
            person.geometry(spec.kind), len(spec.patches), PATCH_SLOT[patch[sel]], U[sel], V[sel]
        )
    return limb, s, t


class SynthSurface:
    """The surface metric of one synthetic person (see the module docstring).

    Args:
        person: the person (e.g. from :func:`synth_people`).
        height_cm: the standing height the body is scaled to.

    Attributes:
        person: the person.
        cm_per_unit: centimetres per canonical unit.
        exit_joint: ``(15, 15, 2)``, ``exit_joint[a, b]`` is the joint (in limb ``a``'s frame) by
            which a path from limb ``a`` to limb ``b != a`` leaves ``a``.
        through: ``(15, 15)``, the path length (canonical units) between the joint leaving ``a``
            and the joint entering ``b``, across the limbs in between (0 for neighbours).

    Example:
        >>> from dptrack_pipeline.synth.render import make_scene
        >>> surface = SynthSurface(make_scene(0, 0).people[0])
        >>> float(surface.distance_cm(2, 0.5, 0.5, 2, 0.5, 0.5))
        0.0
    """

    def __init__(self, person: PersonMotion, height_cm: float = BODY_HEIGHT_CM) -> None:
        self.person = person
        self.cm_per_unit = float(height_cm) / standing_height_units(person)
        parents = limb_parents()
        joints = joints_in_parent(person)
        self.exit_joint = np.zeros((_NUM_LIMBS, _NUM_LIMBS, 2), dtype=np.float64)
        self.through = np.zeros((_NUM_LIMBS, _NUM_LIMBS), dtype=np.float64)
        for a in range(1, _NUM_LIMBS):
            for b in range(1, _NUM_LIMBS):
                if a != b:
                    self._tabulate(a, b, parents, joints)

    def _tabulate(self, a: int, b: int, parents: np.ndarray, joints: np.ndarray) -> None:
        """Fill ``exit_joint[a, b]`` and ``through[a, b]``: walk the tree from ``a`` to ``b``."""

        def chain(limb: int) -> list[int]:
            out = [limb]
            while parents[out[-1]]:
                out.append(int(parents[out[-1]]))
            return out

        up, down = chain(a), chain(b)
        common = next(limb for limb in up if limb in down)
        path = up[: up.index(common) + 1] + down[: down.index(common)][::-1]
        # Each step x -> y crosses one joint: at x's origin when y is x's parent, else at y's.
        steps = []
        for x, y in zip(path[:-1], path[1:], strict=True):
            if parents[x] == y:
                steps.append((np.zeros(2), joints[x]))  # (joint in x's frame, in y's frame)
            else:
                steps.append((joints[y], np.zeros(2)))
        self.exit_joint[a, b] = steps[0][0]
        self.through[a, b] = sum(
            float(np.hypot(*(steps[i - 1][1] - steps[i][0]))) for i in range(1, len(steps))
        )

    def distance_cm(
        self,
        I_a: np.ndarray,
        U_a: np.ndarray,
        V_a: np.ndarray,
        I_b: np.ndarray,
        U_b: np.ndarray,
        V_b: np.ndarray,
    ) -> np.ndarray:
        """Surface distance between chart points ``a`` and ``b`` in centimetres.

        Args:
            I_a, U_a, V_a: surface patch (1..24; anything else is off the body) and chart
                coordinates of the first points.
            I_b, U_b, V_b: the same for the second points.

        Returns:
            Float64 array of the arguments' broadcast shape; symmetric in ``a`` and ``b``, ``0``
            for equal points, ``inf`` where either point is off the body. Divide by
            :attr:`cm_per_unit` for canonical units.
        """
        arrays = np.broadcast_arrays(*(np.asarray(x) for x in (I_a, U_a, V_a, I_b, U_b, V_b)))
        shape = arrays[0].shape
        flat = [x.reshape(-1) for x in arrays]
        limb_a, s_a, t_a = chart_to_limb_local(self.person, *flat[:3])
        limb_b, s_b, t_b = chart_to_limb_local(self.person, *flat[3:])
        point_a = np.stack([s_a, t_a], axis=-1)
        point_b = np.stack([s_b, t_b], axis=-1)
        direct = np.hypot(*(point_a - point_b).T)
        via_joints = (
            np.hypot(*(point_a - self.exit_joint[limb_a, limb_b]).T)
            + self.through[limb_a, limb_b]
            + np.hypot(*(point_b - self.exit_joint[limb_b, limb_a]).T)
        )
        out = np.where(limb_a == limb_b, direct, via_joints)
        out[(limb_a == 0) | (limb_b == 0)] = np.inf
        return self.cm_per_unit * out.reshape(shape)


def synth_people(synth_dir: str | os.PathLike, video_id: object) -> dict[int, PersonMotion]:
    """The people of one video of a synthetic dataset, keyed by ``track_id``.

    Rebuilt from ``<synth_dir>/truth/index.json`` (seed, frame size, people per video, the video's
    frame count and its position, which is its ``video_index`` for
    :func:`~dptrack_pipeline.synth.render.make_scene`).

    Raises:
        KeyError: the video is not in the dataset. ValueError: the index is not one
        ``dptrack-build synth`` wrote (see :func:`~dptrack_pipeline.synth.truth.load_truth_index`),
        or its video ids are not numbered from 1001 in order.
    """
    index = load_truth_index(synth_dir)
    wanted = normalise_video_id(video_id)
    for video_index, video in enumerate(index["videos"]):
        if video["video_id"] != wanted:
            continue
        if int(wanted) != FIRST_VIDEO_ID + video_index:
            raise ValueError(
                f"video {wanted} is entry {video_index} of the truth index of {synth_dir}; "
                f"expected id {FIRST_VIDEO_ID + video_index} (ids are numbered from "
                f"{FIRST_VIDEO_ID} in order)"
            )
        scene = make_scene(
            int(index["seed"]),
            video_index,
            width=int(index["width"]),
            height=int(index["height"]),
            frames=int(video["nframes"]),
            people=int(index["people"]),
        )
        return {person.track_id: person for person in scene.people}
    raise KeyError(f"video {wanted!r} is not in the truth of {synth_dir}")
