"""Photometric agreement, chain error and the AUC, on images and flows with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from dptrack_pipeline.flow.quality import census, chain_error, grey, roc_auc, zncc


def _texture(h: int = 80, w: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((h, w)) * 255).astype(np.float32)


def test_zncc_is_one_on_the_same_surface_up_to_gain_and_offset() -> None:
    a = _texture()
    b = np.roll(a, (3, 5), axis=(0, 1)) * 0.5 + 40  # moved by (x=5, y=3), darker, brighter
    pts = np.array([[30.0, 30.0], [50.0, 40.0], [70.0, 50.0]], np.float32)
    np.testing.assert_allclose(zncc(a, b, pts, pts + [5, 3]), 1.0, atol=1e-4)
    wrong = zncc(a, b, pts, pts + [12, -7])
    assert (np.abs(wrong) < 0.4).all()
    np.testing.assert_allclose(census(a, b, pts, pts + [5, 3]), 0.0)
    assert (census(a, b, pts, pts + [12, -7]) > 0.2).all()


def test_zncc_of_a_flat_patch_is_near_zero_not_nan() -> None:
    flat = np.full((40, 40), 100.0, np.float32)
    score = zncc(flat, flat, np.array([[20.0, 20.0]]), np.array([[20.0, 20.0]]))
    assert np.isfinite(score).all() and abs(score[0]) < 1e-3


def test_grey_and_shapes_are_checked() -> None:
    assert grey(np.zeros((4, 5, 3), np.uint8)).shape == (4, 5)
    with pytest.raises(ValueError, match="RGB"):
        grey(np.zeros((4, 5), np.uint8))


def test_chain_error_is_zero_for_consistent_legs_and_the_disagreement_otherwise() -> None:
    first = np.zeros((50, 60, 2), np.float32)
    first[..., 0] = 2.0  # T -> d: +2 in x
    second = np.zeros((50, 60, 2), np.float32)
    second[..., 1] = 1.0  # d -> t: +1 in y
    pts = np.array([[10.0, 10.0], [30.0, 20.0]])
    np.testing.assert_allclose(chain_error(pts, pts + [2, 1], first, second), 0.0, atol=1e-5)
    np.testing.assert_allclose(chain_error(pts, pts + [2, 4], first, second), 3.0, atol=1e-5)


def test_roc_auc() -> None:
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5  # ties count half
    assert np.isnan(roc_auc(np.array([]), np.array([1.0])))
