"""Surface distances on synthetic bodies: hand-computed paths, metric properties, the truth.

Hand computations use a person with all size factors 1, i.e. the base geometry of
:data:`dptrack_pipeline.synth.limbs.BASE_GEOMETRY`: torso ``s0=-6, s1=60, w0=32, w1=38``,
length 56, arms on it at ``s=50``; upper arm length 30, lower arm 27; hand ellipse ``s0=-2,
s1=13``; upper leg ``s0=-6, s1=45, w0=17, w1=13``, length 42; lower leg length 40; foot
ellipse ``s0=-6, s1=17, w0=9``; head ellipse ``s0=-4, s1=30``. Standing height
``4.5 + 40 + 42 + 56 + 30 = 172.5`` units = 170 cm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dptrack_pipeline.synth.charts import apply_affine
from dptrack_pipeline.synth.dataset import generate_dataset
from dptrack_pipeline.synth.limbs import KINDS, PATCH_TO_LIMB
from dptrack_pipeline.synth.motion import body_scale, limb_affines
from dptrack_pipeline.synth.render import make_scene, render_frame
from dptrack_pipeline.synth.truth import load_frame_truth
from dptrack_pipeline.train.synth_surface import (
    BODY_HEIGHT_CM,
    SynthSurface,
    chart_to_limb_local,
    joints_in_parent,
    limb_parents,
    standing_height_units,
    synth_people,
)

UNITS_TO_CM = 170.0 / 172.5


@pytest.fixture(scope="module")
def base_person():
    person = make_scene(0, 0).people[0]
    ones = tuple((kind, 1.0) for kind in KINDS)
    return dataclasses.replace(person, length_factor=ones, width_factor=ones)


@pytest.fixture(scope="module")
def base_surface(base_person) -> SynthSurface:
    return SynthSurface(base_person)


def _distance(surface: SynthSurface, a: tuple, b: tuple) -> float:
    return float(surface.distance_cm(*a, *b))


# Chart points (I, U, V) with their limb-local (s, t) worked out by hand.
TORSO_FRONT = (2, 0.5, 0.5)  # s = -6 + 0.5 * 66 = 27, h = (32 + 0.5 * 6) / 2 = 17.5, t = 8.75
TORSO_BACK = (1, 0.5, 0.5)  # the same s, n = V - 1 = -0.5: t = -8.75
UPPER_LEG_R = (9, 0.2, 0.0)  # s = -6 + 0.2 * 51 = 4.2, t = 0
RIGHT_HAND = (3, 0.5, 0.5)  # s = -2 + 0.5 * 15 = 5.5, n = 2 V - 1 = 0
LEFT_HAND = (4, 0.5, 0.5)
HEAD_TOP = (24, 1.0, 0.0)  # s = 30, t = 0
RIGHT_SOLE = (6, 6.0 / 23.0, 0.0)  # s = 0 (under the ankle), n = -1: t = -4.5


def test_chart_to_limb_local_by_hand(base_person) -> None:
    points = [TORSO_FRONT, TORSO_BACK, UPPER_LEG_R, RIGHT_HAND, HEAD_TOP, RIGHT_SOLE, (0, 0.5, 0.5)]
    I, U, V = (np.array(column, dtype=np.float64) for column in zip(*points, strict=True))
    limb, s, t = chart_to_limb_local(base_person, I, U, V)
    assert limb.tolist() == [1, 1, 6, 2, 14, 5, 0]
    np.testing.assert_allclose(s, [27.0, 27.0, 4.2, 5.5, 30.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(t, [8.75, -8.75, 0.0, 0.0, 0.0, -4.5, 0.0], atol=1e-12)


def test_scale_to_centimetres(base_person, base_surface: SynthSurface) -> None:
    assert standing_height_units(base_person) == pytest.approx(172.5)
    assert base_surface.cm_per_unit == pytest.approx(UNITS_TO_CM)
    # Head top to the sole of a foot runs the whole standing height: 30 + 56 + 42 + 40 + 4.5.
    assert _distance(base_surface, HEAD_TOP, RIGHT_SOLE) == pytest.approx(BODY_HEIGHT_CM)
    assert SynthSurface(base_person, height_cm=180.0).cm_per_unit == pytest.approx(180 / 172.5)


def test_same_limb_is_euclidean_in_the_limb_plane(base_surface: SynthSurface) -> None:
    # The two torso patches are the two halves of one flat limb: 2 * 8.75 apart.
    assert _distance(base_surface, TORSO_FRONT, TORSO_BACK) == pytest.approx(17.5 * UNITS_TO_CM)
    # Torso (27, 8.75) to the shoulder-high torso point (U = 56 / 66 -> s = 50, V = 0 -> t = 0).
    shoulder_level = (2, 56.0 / 66.0, 0.0)
    expected = np.hypot(23.0, 8.75) * UNITS_TO_CM
    assert _distance(base_surface, TORSO_FRONT, shoulder_level) == pytest.approx(expected)


def test_cross_limb_paths_go_through_the_joints(base_surface: SynthSurface) -> None:
    # Torso to upper leg: through the hip joint at the pelvis (both limbs' origin).
    expected = (np.hypot(27.0, 8.75) + 4.2) * UNITS_TO_CM
    assert _distance(base_surface, TORSO_FRONT, UPPER_LEG_R) == pytest.approx(expected)
    # Hand to torso: hand -> wrist 5.5, along the lower arm 27 and the upper arm 30, shoulder
    # (torso s = 50) -> (27, 8.75).
    expected = (5.5 + 27.0 + 30.0 + np.hypot(23.0, 8.75)) * UNITS_TO_CM
    assert _distance(base_surface, RIGHT_HAND, TORSO_FRONT) == pytest.approx(expected)
    # Hand to hand: both arms hang from one shoulder point, so the torso adds nothing.
    expected = 2 * (5.5 + 27.0 + 30.0) * UNITS_TO_CM
    assert _distance(base_surface, RIGHT_HAND, LEFT_HAND) == pytest.approx(expected)
    # The tabulated pieces: leaving the hand by the wrist, 57 units of arm to the shoulder.
    np.testing.assert_allclose(base_surface.exit_joint[2, 1], [0.0, 0.0])
    np.testing.assert_allclose(base_surface.exit_joint[1, 2], [50.0, 0.0])
    assert base_surface.through[2, 1] == pytest.approx(57.0)


def test_identity_symmetry_background_and_broadcasting(base_surface: SynthSurface) -> None:
    rng = np.random.default_rng(0)
    n = 500
    a = (rng.integers(1, 25, n), rng.random(n), rng.random(n))
    b = (rng.integers(1, 25, n), rng.random(n), rng.random(n))
    np.testing.assert_array_equal(base_surface.distance_cm(*a, *a), np.zeros(n))
    forward = base_surface.distance_cm(*a, *b)
    np.testing.assert_allclose(forward, base_surface.distance_cm(*b, *a), rtol=1e-12)
    assert np.all(np.isfinite(forward)) and np.all(forward > 0)
    # Background or padding on either side is infinitely far.
    out = base_surface.distance_cm(np.array([0, 3, -1]), 0.5, 0.5, np.array([3, 0, 3]), 0.5, 0.5)
    assert np.all(np.isinf(out))
    # One point against many, and a 2-D grid of points keep their shapes.
    assert base_surface.distance_cm(3, 0.5, 0.5, *b).shape == (n,)
    grid = base_surface.distance_cm(
        *(x.reshape(20, 25) for x in a), *(x.reshape(20, 25) for x in b)
    )
    np.testing.assert_allclose(grid.ravel(), forward)


def test_triangle_inequality(base_surface: SynthSurface) -> None:
    rng = np.random.default_rng(1)
    n = 2000
    a, b, c = ((rng.integers(1, 25, n), rng.random(n), rng.random(n)) for _ in range(3))
    ab = base_surface.distance_cm(*a, *b)
    bc = base_surface.distance_cm(*b, *c)
    ac = base_surface.distance_cm(*a, *c)
    assert np.all(ac <= ab + bc + 1e-9)


def test_joints_are_fixed_in_the_limb_frames() -> None:
    """The metric needs no rest pose: every joint sits at one local position at all times, where
    the parent's and the child's affines agree."""
    person = make_scene(5, 2).people[1]
    parents = limb_parents()
    assert parents[1] == 0 and sorted(parents[1:].tolist()).count(1) == 5  # head, arms, legs
    reference = joints_in_parent(person, 0.0)
    for time in (0.0, 3.3, 17.0, 40.5):
        np.testing.assert_allclose(joints_in_parent(person, time), reference, atol=1e-9)
        affines = limb_affines(person, time)
        for child in range(2, 15):
            parent = int(parents[child])
            joint = reference[child]
            in_parent = apply_affine(affines[parent], np.array([joint[0]]), np.array([joint[1]]))
            in_child = apply_affine(affines[child], np.zeros(1), np.zeros(1))
            np.testing.assert_allclose(in_parent, in_child, atol=1e-9)


def _body_pixels(frame, track: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(frame.person == track)
    return rows, cols


def test_distances_against_a_rendered_frame() -> None:
    """On one limb the surface distance is the pixel distance over the body scale; across limbs
    it is never shorter than the straight line in the picture."""
    scene = make_scene(2, 0)
    time = 5.0
    frame = render_frame(scene, time)
    person = scene.people[0]
    surface = SynthSurface(person)
    scale = body_scale(person, time)
    rows, cols = _body_pixels(frame, person.track_id)
    assert rows.size > 500
    rng = np.random.default_rng(2)
    pick_a = rng.integers(0, rows.size, 3000)
    pick_b = rng.integers(0, rows.size, 3000)
    ra, ca, rb, cb = rows[pick_a], cols[pick_a], rows[pick_b], cols[pick_b]
    label = (frame.part, frame.u, frame.v)
    dist_cm = surface.distance_cm(*(m[ra, ca] for m in label), *(m[rb, cb] for m in label))
    dist_px = scale * dist_cm / surface.cm_per_unit  # canonical units, then frame pixels
    straight = np.hypot(ca - cb, ra - rb)
    same_limb = PATCH_TO_LIMB[frame.part[ra, ca]] == PATCH_TO_LIMB[frame.part[rb, cb]]
    assert same_limb.sum() > 100 and (~same_limb).sum() > 100
    np.testing.assert_allclose(dist_px[same_limb], straight[same_limb], rtol=1e-4, atol=1e-3)
    assert np.all(dist_px[~same_limb] >= straight[~same_limb] - 1e-3)


def test_synth_people_rebuilds_the_people_of_a_dataset(tmp_path) -> None:
    settings = {"videos": 2, "frames": 2, "seed": 4, "width": 96, "height": 72, "people": 2}
    generate_dataset(str(tmp_path), label_every=2, max_offset=1, **settings)
    people = synth_people(tmp_path, "001002")
    expected = make_scene(4, 1, width=96, height=72, frames=2, people=2).people
    assert people == {person.track_id: person for person in expected}
    # The rebuilt bodies reproduce the stored labels: every body pixel's (I, U, V) maps back to
    # its own pixel centre through that person's limb affines.
    truth = load_frame_truth(tmp_path, 1002, 1)
    checked = 0
    for track, person in people.items():
        rows, cols = np.nonzero(truth["person"] == track)
        limb, s, t = chart_to_limb_local(
            person, truth["I"][rows, cols], truth["U"][rows, cols], truth["V"][rows, cols]
        )
        affines = limb_affines(person, 1.0)
        for part in np.unique(limb):
            sel = limb == part
            position = apply_affine(affines[part], s[sel], t[sel])
            np.testing.assert_allclose(position, np.stack([cols[sel], rows[sel]], -1), atol=2e-3)
            checked += int(sel.sum())
    assert checked > 100
    with pytest.raises(KeyError, match="1003"):
        synth_people(tmp_path, 1003)
