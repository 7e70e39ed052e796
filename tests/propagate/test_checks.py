"""The point checks: presets, overrides, and what a point is dropped for."""

from __future__ import annotations

import numpy as np
import pytest

from dptrack_pipeline.propagate.agreement import head_size, keypoint_agreement
from dptrack_pipeline.propagate.checks import (
    MEASURED,
    PAPER,
    Checks,
    parse_photometric,
    resolve_checks,
)
from dptrack_pipeline.propagate.config import PropagateConfig
from dptrack_pipeline.propagate.plan import chain_neighbour, plan_windows, source_pairs
from dptrack_pipeline.propagate.points import (
    DROPPED_CHAIN,
    DROPPED_FB,
    DROPPED_OUTSIDE,
    DROPPED_PHOTO,
    KEPT,
    Evidence,
    move_points,
)


def test_presets_and_overrides() -> None:
    assert resolve_checks("paper", "dis") == PAPER == Checks(5.0)
    assert resolve_checks("measured", "dis") == MEASURED["dis"]
    assert resolve_checks("measured", "flownet2") == PAPER  # not measured here
    assert resolve_checks("measured", "dis", chain="none").chain is None
    assert resolve_checks("paper", "dis", photometric="zncc:0.7", chain="2") == Checks(
        5.0, 0.7, 2.0
    )
    assert resolve_checks("measured", "dis", fb_threshold=3).fb_threshold == 3.0
    assert parse_photometric("none") is None and parse_photometric("ZNCC:0.5") == 0.5
    for bad in ("census:0.5", "zncc", "zncc:2", "zncc:x"):
        with pytest.raises(ValueError):
            parse_photometric(bad)
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_checks("best", "dis")
    for kwargs in ({"fb_threshold": 0}, {"fb_threshold": float("inf")}, {"chain": -1.0}):
        with pytest.raises(ValueError):
            Checks(**kwargs)


def test_config_resolves_the_checks_and_refuses_bad_ones() -> None:
    config = PropagateConfig(annotations="a.json", frames_root="f", out="o")
    assert config.checks == MEASURED["dis"]
    assert PropagateConfig("a", "f", "o", preset="paper").checks == PAPER
    with pytest.raises(ValueError):
        PropagateConfig("a", "f", "o", photometric_check="zncc:5")
    with pytest.raises(ValueError):
        PropagateConfig("a", "f", "o", fb_threshold=float("nan"))


def test_each_point_is_dropped_for_the_first_check_it_fails() -> None:
    h, w = 60, 80
    rng = np.random.default_rng(1)
    image = (rng.random((h, w)) * 255).astype(np.float32)
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = 2.0
    bwd = -fwd
    bwd[:, 60:] = 9.0  # the round trip misses on the right
    target = np.roll(image, 2, axis=1)
    target[:, 30:40] = 255 - target[:, 30:40]  # the target looks different there
    first = fwd.copy()
    second = np.zeros_like(fwd)
    second[40:, :, 1] = 5.0  # the chain disagrees at the bottom
    pts = np.array([[10, 10], [65, 10], [33, 10], [10, 45], [79, 20]], np.float32)
    evidence = Evidence(image, target, first, second)
    checks = Checks(fb_threshold=1.0, photometric=0.5, chain=2.0)
    res = move_points(pts, fwd, bwd, checks, evidence=evidence)
    assert res.status.tolist() == [KEPT, DROPPED_FB, DROPPED_PHOTO, DROPPED_CHAIN, DROPPED_OUTSIDE]
    assert res.photo[0] > 0.99 and res.chain[3] == pytest.approx(5.0)
    # Off checks and missing evidence pass every point (scores NaN).
    res = move_points(pts[:4], fwd, bwd, Checks(fb_threshold=50.0))
    assert (res.status == KEPT).all() and np.isnan(res.photo).all() and np.isnan(res.chain).all()


def test_chain_neighbours_and_planned_flows() -> None:
    assert [chain_neighbour(10, t, 30, 3) for t in (11, 12, 13, 9, 8, 7)] == [12, 11, 12, 8, 9, 8]
    assert chain_neighbour(10, 11, 30, 1) is None  # K = 1: no other target
    assert chain_neighbour(0, 1, 30, 3) == 2 and chain_neighbour(29, 28, 30, 3) == 27
    extra = set(source_pairs(10, 30, 3, chain=True)) - set(source_pairs(10, 30, 3))
    assert extra == {(12, 11), (11, 12), (12, 13), (8, 9), (9, 8), (8, 7)}
    (window,) = plan_windows("v", 30, [10], 3, chain=True)
    assert len(window.pairs) == 18 and set(window.frames) == set(range(7, 14))


def test_keypoint_agreement_and_head_size() -> None:
    assert head_size((0, 0, 30, 40), (0, 0, 100, 300)) == pytest.approx(0.6 * 50)
    assert head_size(None, (0, 0, 30, 40)) == pytest.approx(0.6 * 0.213 * 50)
    moved = np.zeros((17, 3), np.float32)
    truth = np.zeros((17, 3), np.float32)
    moved[:3] = [[10, 10, 2], [20, 20, 2], [30, 30, 2]]
    truth[:3] = [[10, 13, 2], [20, 40, 2], [0, 0, 0]]  # the third is not annotated
    agreement = keypoint_agreement(moved, truth, size=10.0)
    np.testing.assert_allclose(agreement.errors[:2], [3.0, 20.0])
    assert np.isnan(agreement.errors[2:]).all() and agreement.pckh == 0.5
    assert np.isnan(keypoint_agreement(moved, np.zeros((17, 3)), 10.0).pckh)
