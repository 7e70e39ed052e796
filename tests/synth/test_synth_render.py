"""Bodies and rendering: determinism, label ranges, charts, depth order."""

from __future__ import annotations

import numpy as np
import pytest

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART
from dptrack_pipeline.synth.charts import (
    apply_affine,
    chart_to_local,
    invert_affine,
    local_to_chart,
)
from dptrack_pipeline.synth.limbs import BASE_GEOMETRY, LIMBS, PATCH_TO_LIMB
from dptrack_pipeline.synth.motion import limb_affines
from dptrack_pipeline.synth.render import BACKGROUND_DEPTH, make_scene, render_frame
from dptrack_pipeline.synth.truth import chart_positions


@pytest.fixture(scope="module")
def scene():
    return make_scene(5, 0, width=320, height=240, frames=24, people=2)


def test_limb_table_matches_densepose_mask_parts() -> None:
    # Our own patch -> limb table must agree with the DensePose mapping of formats.rle.
    assert np.array_equal(PATCH_TO_LIMB, SURFACE_TO_MASK_PART.astype(np.int64))
    patches = sorted(p for limb in LIMBS for p in limb.patches)
    assert patches == list(range(1, 25))


def test_render_is_deterministic(scene) -> None:
    again = make_scene(5, 0, width=320, height=240, frames=24, people=2)
    a, b = render_frame(scene, 7.0), render_frame(again, 7.0)
    for name in ("image", "part", "u", "v", "person", "depth"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    other = render_frame(make_scene(6, 0, width=320, height=240, frames=24, people=2), 7.0)
    assert not np.array_equal(a.image, other.image)


def test_label_maps_are_valid(scene) -> None:
    seen = set()
    for t in range(0, 24, 3):
        frame = render_frame(scene, float(t))
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
        assert frame.part.dtype == np.uint8 and frame.part.max() <= 24
        body = frame.part > 0
        assert np.array_equal(body, frame.person >= 0)
        assert set(np.unique(frame.person)) <= {-1, 0, 1}
        assert frame.u[body].min() >= 0 and frame.u[body].max() <= 1
        assert frame.v[body].min() >= 0 and frame.v[body].max() <= 1
        assert not frame.u[~body].any() and not frame.v[~body].any()
        assert np.all(frame.depth[~body] == BACKGROUND_DEPTH)
        assert np.all(frame.depth[body] < 3.0)
        # People of 0.55-0.65 of the image height.
        rows = np.flatnonzero((frame.person == 0).any(axis=1))
        assert 100 < rows[-1] - rows[0] < 200
        seen |= set(np.unique(frame.part[body]).tolist())
    assert seen == set(range(1, 25)), f"patches never seen: {set(range(1, 25)) - seen}"


def test_charts_invert_exactly() -> None:
    rng = np.random.default_rng(0)
    for kind, geometry in BASE_GEOMETRY.items():
        for patches in (1, 2):
            slot = rng.integers(0, patches, size=500)
            u, v = rng.uniform(0, 1, 500), rng.uniform(0, 1, 500)
            s, t = chart_to_local(geometry, patches, slot, u, v)
            inside, slot2, u2, v2 = local_to_chart(geometry, patches, s, t)
            if geometry.shape == "quad":
                assert inside.all(), kind
            keep = inside & (np.abs(v - (0.0 if patches == 2 else 0.5)) > 1e-6)
            assert np.array_equal(slot2[keep], slot[keep]), kind
            assert np.allclose(u2[keep], u[keep], atol=1e-9) and np.allclose(
                v2[keep], v[keep], atol=1e-9
            )


def test_rendered_labels_map_back_to_their_pixel(scene) -> None:
    # (person, I, U, V) at every pixel, pushed through the model at the same time, lands on
    # that pixel's centre: the renderer and the charts agree.
    frame = render_frame(scene, 9.0)
    positions = chart_positions(scene, frame, 9.0)
    ys, xs = np.mgrid[0:240, 0:320]
    error = np.hypot(positions[..., 0] - xs, positions[..., 1] - ys)
    assert error.max() < 1e-3


def _covers(person, limb, t: float) -> np.ndarray:
    """(240, 320) bool: pixel centres inside ``limb`` of ``person`` at time ``t``."""
    ys, xs = np.mgrid[0:240, 0:320].astype(np.float64)
    affine = limb_affines(person, t)[limb.mask_part]
    local = apply_affine(invert_affine(affine), xs.ravel(), ys.ravel())
    geometry = person.geometry(limb.kind)
    inside, *_ = local_to_chart(geometry, len(limb.patches), local[:, 0], local[:, 1])
    return inside.reshape(240, 320)


def test_z_buffer_puts_far_limbs_behind_and_near_limbs_in_front_of_the_torso(scene) -> None:
    person = scene.people[0]
    near = person.near_side()
    torso = LIMBS[0]
    far_arm = next(limb for limb in LIMBS if limb.kind == "upper_arm" and limb.side != near)
    near_arm = next(limb for limb in LIMBS if limb.kind == "upper_arm" and limb.side == near)
    assert person.depth_of(near_arm) < person.depth_of(torso) < person.depth_of(far_arm)
    behind = in_front = 0
    for t in range(0, 24, 4):
        frame = render_frame(scene, float(t))
        limb_seen = PATCH_TO_LIMB[frame.part]
        mine = frame.person == person.track_id
        torso_area = _covers(person, torso, t) & mine
        both_far = torso_area & _covers(person, far_arm, t)
        both_near = torso_area & _covers(person, near_arm, t)
        assert not (limb_seen[both_far] == far_arm.mask_part).any()
        assert not (limb_seen[both_near] == torso.mask_part).any()
        behind += int(both_far.sum())
        in_front += int(both_near.sum())
    assert behind > 50 and in_front > 50
