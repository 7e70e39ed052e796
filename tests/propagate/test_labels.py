"""Propagation maths on flows with known answers (translations, inconsistent regions)."""

from __future__ import annotations

import numpy as np
import pytest

from dptrack_pipeline.crops import crop_flow, crop_image
from dptrack_pipeline.propagate.checks import Checks
from dptrack_pipeline.propagate.labels import fit_box_motion, propagate_person, warp_part_labels
from dptrack_pipeline.propagate.points import (
    DROPPED_FB,
    DROPPED_OUTSIDE,
    KEPT,
    move_keypoints,
    move_points,
)

FB5 = Checks(fb_threshold=5.0)

H, W = 120, 160


def translation(dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    fwd = np.zeros((H, W, 2), np.float32)
    fwd[..., 0], fwd[..., 1] = dx, dy
    return fwd, -fwd


def test_translation_moves_points_exactly() -> None:
    fwd, bwd = translation(3.0, -2.0)
    pts = np.array([[10.0, 20.0], [50.5, 60.25], [100.0, 100.0]], np.float32)
    res = move_points(pts, fwd, bwd, FB5)
    np.testing.assert_allclose(res.moved, pts + [3.0, -2.0], atol=1e-5)
    assert (res.status == KEPT).all()
    np.testing.assert_allclose(res.error, 0.0, atol=1e-5)


def test_inconsistent_backward_flow_drops_points_and_outside_is_outside() -> None:
    fwd, bwd = translation(3.0, 0.0)
    bwd[:, 80:] = 5.0  # backward flow wrong on the right half: round trip misses by > 5 px
    pts = np.array([[10.0, 10.0], [100.0, 10.0], [158.0, 10.0]], np.float32)
    res = move_points(pts, fwd, bwd, FB5)
    assert res.status.tolist() == [KEPT, DROPPED_FB, DROPPED_OUTSIDE]
    boxed = move_points(pts[:1], fwd, bwd, FB5, target_box=(0.0, 0.0, 12.0, 12.0))
    assert boxed.status.tolist() == [DROPPED_OUTSIDE]


def test_keypoints_absent_and_dropped_become_zero() -> None:
    fwd, bwd = translation(2.0, 2.0)
    bwd[:50, :50] = 9.0
    kps = np.zeros((17, 3), np.float32)
    kps[0] = [100, 100, 2]
    kps[1] = [10, 10, 1]  # lands in the inconsistent corner
    out = move_keypoints(kps, fwd, bwd, FB5).keypoints
    np.testing.assert_allclose(out[0], [102, 102, 2])
    assert out[1].tolist() == [0, 0, 0] and out[2:].sum() == 0


def test_part_labels_follow_a_translation() -> None:
    fwd, bwd = translation(4.0, 3.0)
    labels = np.zeros((256, 256), np.uint8)
    labels[40:200, 60:120] = 1
    labels[10:40, 70:110] = 14
    src = (20.0, 30.0, 64.0, 64.0)
    dst = (24.0, 33.0, 64.0, 64.0)
    np.testing.assert_array_equal(warp_part_labels(labels, src, dst, fwd, bwd, 5.0), labels)
    bad = bwd.copy()
    bad[...] = 20.0  # nothing passes the check: all background
    assert warp_part_labels(labels, src, dst, fwd, bad, 5.0).sum() == 0


def test_fit_box_motion_translation_and_scale() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform([20, 20], [80, 100], size=(200, 2))
    box = (20.0, 20.0, 60.0, 80.0)
    moved = src + [5.0, -3.0]
    np.testing.assert_allclose(fit_box_motion(box, src, moved, (W, H)), (25, 17, 60, 80), atol=1e-4)
    scaled = (src - 50) * 1.1 + 50
    x, y, w, h = fit_box_motion(box, src, scaled, (W, H))
    assert w == pytest.approx(66.0, rel=1e-3) and h == pytest.approx(88.0, rel=1e-3)
    assert fit_box_motion(box, src[:1], moved[:1], (W, H)) is None


def test_propagate_person_with_derived_and_given_box() -> None:
    fwd, bwd = translation(6.0, 4.0)
    rng = np.random.default_rng(1)
    n = 50
    dp_x, dp_y = (
        rng.uniform(10, 246, n).astype(np.float32),
        rng.uniform(10, 246, n).astype(np.float32),
    )
    dp_i = rng.integers(1, 25, n).astype(np.float32)
    dp_u, dp_v = rng.uniform(0, 1, n).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32)
    labels = np.zeros((256, 256), np.uint8)
    labels[20:230, 30:220] = 3
    kps = np.zeros((17, 3), np.float32)
    kps[5] = [60, 50, 2]
    box = (40.0, 30.0, 50.0, 70.0)
    person = dict(
        source_box=box, keypoints=kps, dp_x=dp_x, dp_y=dp_y, dp_I=dp_i, dp_U=dp_u, dp_V=dp_v,
        flow_fwd=fwd, flow_bwd=bwd, checks=FB5,
    )  # fmt: skip
    out = propagate_person(**person, part_labels=labels)
    assert out is not None and out.box_source == "derived"
    np.testing.assert_allclose(out.bbox, (46, 34, 50, 70), atol=1e-3)
    # The box moved with the person: box-relative coordinates are unchanged.
    np.testing.assert_allclose(out.dp_x, dp_x, atol=1e-3)
    np.testing.assert_allclose(out.dp_y, dp_y, atol=1e-3)
    np.testing.assert_array_equal(out.dp_source_index, np.arange(n))
    np.testing.assert_array_equal(out.dp_I, dp_i)
    np.testing.assert_array_equal(out.part_labels, labels)
    assert (out.points_in, out.points_kept, out.points_dropped_fb) == (n, n, 0)
    np.testing.assert_allclose(out.keypoints[5], [66, 54, 2])

    given = propagate_person(
        **person,
        part_labels=None,
        target_box=(46.0, 34.0, 25.0, 70.0),  # a box half as wide: right half falls outside
    )
    assert given.box_source == "posetrack" and given.part_labels is None
    inside = (dp_x / 256 * 50 + 46) <= 46 + 25
    assert given.points_kept == inside.sum() and given.points_dropped_outside == (~inside).sum()
    np.testing.assert_allclose(given.dp_x, dp_x[inside] * 2, atol=1e-2)


def test_propagate_person_returns_none_when_nothing_survives() -> None:
    fwd, bwd = translation(2.0, 0.0)
    bwd[...] = 30.0
    out = propagate_person(
        source_box=(10.0, 10.0, 40.0, 40.0),
        keypoints=np.zeros((17, 3), np.float32),
        dp_x=np.array([128.0], np.float32),
        dp_y=np.array([128.0], np.float32),
        dp_I=np.array([1.0], np.float32),
        dp_U=np.array([0.5], np.float32),
        dp_V=np.array([0.5], np.float32),
        part_labels=None,
        flow_fwd=fwd,
        flow_bwd=bwd,
        checks=FB5,
    )
    assert out is None


def test_crop_samples_the_box_at_grid_cell_centres() -> None:
    # A ramp image: value = x + 1000 y, so a bilinear sample returns its own position.
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    ramp = np.dstack([xs, ys, xs + ys])
    crop = crop_image(ramp, (30.0, 20.0, 32.0, 64.0), 16)
    c = np.arange(16, dtype=np.float32)
    np.testing.assert_allclose(crop[0, :, 0], 30.0 + (c + 0.5) * 2.0, atol=1e-3)
    np.testing.assert_allclose(crop[:, 0, 1], 20.0 + (c + 0.5) * 4.0, atol=1e-3)


def test_crop_flow_is_zero_when_the_box_follows_a_translation() -> None:
    fwd, bwd = translation(5.0, -3.0)
    src, dst = (30.0, 40.0, 40.0, 50.0), (35.0, 37.0, 40.0, 50.0)
    flow, valid = crop_flow(fwd, bwd, src, dst, 64, 5.0)
    assert flow.shape == (64, 64, 2) and valid.all()
    np.testing.assert_allclose(flow, 0.0, atol=1e-3)
    # A fixed target box: the crop flow is the translation in crop pixels (64 px per 40/50 px).
    flow, valid = crop_flow(fwd, bwd, src, src, 64, 5.0)
    np.testing.assert_allclose(flow[..., 0], 5.0 * 64 / 40, atol=1e-3)
    np.testing.assert_allclose(flow[..., 1], -3.0 * 64 / 50, atol=1e-3)
