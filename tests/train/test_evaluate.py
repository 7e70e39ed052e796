"""The 5/10/20 cm ratios and reading predictions at annotated points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dptrack_pipeline.synth.render import make_scene, render_frame
from dptrack_pipeline.train.evaluate import predictions_at_points, ratio_within
from dptrack_pipeline.train.synth_surface import SynthSurface


def test_ratio_within_by_hand() -> None:
    distances = np.array([0.0, 5.0, 5.01, 9.0, 19.9, 20.0, 35.0, np.inf])
    out = ratio_within(distances)
    assert out == {
        "within_5cm": 25.0,  # 0 and 5.0 (the thresholds are inclusive)
        "within_10cm": 50.0,
        "within_20cm": 75.0,
        "num_points": 8.0,
    }


def test_ratio_within_skips_nan_and_takes_tensors() -> None:
    out = ratio_within(torch.tensor([[1.0, float("nan")], [12.0, float("inf")]]), (2.5, 15))
    assert out == pytest.approx({"within_2.5cm": 100 / 3, "within_15cm": 200 / 3, "num_points": 3})
    empty = ratio_within(np.array([np.nan]))
    assert math.isnan(empty["within_5cm"]) and empty["num_points"] == 0.0


def _maps(batch: int, side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps whose winning part in cell (i, j) is ``1 + (i * side + j) % 24``, with that part's U
    equal to ``i / 10`` and V to ``j / 10`` (other channels hold decoys)."""
    logits = torch.zeros(batch, 25, side, side)
    u = torch.full((batch, 25, side, side), -1.0)
    v = torch.full((batch, 25, side, side), -1.0)
    for i in range(side):
        for j in range(side):
            part = 1 + (i * side + j) % 24
            logits[:, part, i, j] = 5.0
            u[:, part, i, j] = i / 10
            v[:, part, i, j] = j / 10
    return logits, u, v


def test_predictions_at_cell_centres_are_exact() -> None:
    stride, side = 4, 4
    logits, u, v = _maps(2, side)
    # Cell (i, j) covers crop pixels [4j, 4j + 4) x [4i, 4i + 4): centre (4j + 1.5, 4i + 1.5).
    cells = [(0, 0), (1, 2), (3, 3), (2, 1)]
    points = torch.tensor([[(4 * j + 1.5, 4 * i + 1.5) for i, j in cells]] * 2)
    parts, pu, pv = predictions_at_points(
        logits, u[:, 1:], v[:, 1:], points, crop_size=16, stride=stride
    )
    assert parts.dtype == torch.int64 and parts.shape == (2, 4)
    assert parts[0].tolist() == [1 + (i * side + j) % 24 for i, j in cells]
    torch.testing.assert_close(pu[0], torch.tensor([i / 10 for i, _ in cells]))
    torch.testing.assert_close(pv[0], torch.tensor([j / 10 for _, j in cells]))
    torch.testing.assert_close(pu[1], pu[0])


def test_predictions_between_cells_and_at_the_border() -> None:
    logits = torch.zeros(1, 25, 2, 2)
    u = torch.zeros(1, 25, 2, 2)
    v = torch.zeros(1, 25, 2, 2)
    logits[0, 3, :, 0] = 2.0  # part 3 on the left column, part 7 on the right, 7 a bit stronger
    logits[0, 7, :, 1] = 3.0
    u[0, 3] = torch.tensor([[0.2, 0.6], [0.2, 0.6]])
    u[0, 7] = torch.tensor([[0.1, 0.9], [0.1, 0.9]])
    v[0, 7] = 0.5
    # stride 2, crop 4: cell centres at x = 0.5 and 2.5. A quarter of the way (x = 1.0): part 3
    # logit 1.5 vs part 7 0.75 -> 3, U = 0.2 * 0.75 + 0.6 * 0.25 = 0.3. Half way (x = 1.5):
    # 1.0 vs 1.5 -> part 7, U = 0.5. Pixel (0, 0) lies before the first centre: clamped.
    points = torch.tensor([[[1.0, 0.5], [1.5, 1.0], [0.0, 0.0], [3.0, 3.0]]])
    parts, pu, pv = predictions_at_points(logits, u[:, 1:], v[:, 1:], points, crop_size=4, stride=2)
    assert parts[0].tolist() == [3, 7, 3, 7]
    torch.testing.assert_close(pu[0], torch.tensor([0.3, 0.5, 0.2, 0.9]))
    torch.testing.assert_close(pv[0, [1, 3]], torch.tensor([0.5, 0.5]))


def _bilinear(maps: torch.Tensor, x0: int, y0: int, fx: float, fy: float) -> torch.Tensor:
    """``(C,)`` values of ``(C, h, w)`` maps between cells ``(y0, x0)`` and ``(y0 + 1, x0 + 1)``."""
    top = maps[:, y0, x0] * (1 - fx) + maps[:, y0, x0 + 1] * fx
    bottom = maps[:, y0 + 1, x0] * (1 - fx) + maps[:, y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def test_predictions_match_a_hand_written_bilinear_sampler() -> None:
    torch.manual_seed(0)
    stride, side = 4, 8
    logits = torch.randn(2, 25, side, side)
    u, v = torch.rand(2, 25, side, side), torch.rand(2, 25, side, side)
    points = torch.rand(2, 50, 2) * (side * stride - 1)
    parts, pu, _ = predictions_at_points(
        logits, u[:, 1:], v[:, 1:], points, crop_size=side * stride, stride=stride
    )
    for b in range(2):
        for p in range(50):
            x, y = ((points[b, p] + 0.5) / stride - 0.5).clamp(0, side - 1).tolist()
            x0, y0 = min(int(x), side - 2), min(int(y), side - 2)
            fx, fy = x - x0, y - y0
            part = int(_bilinear(logits[b], x0, y0, fx, fy).argmax())
            assert int(parts[b, p]) == part
            if part == 0:
                continue  # U is meaningless on the background (no channel for it)
            expected_u = float(_bilinear(u[b], x0, y0, fx, fy)[part])
            assert float(pu[b, p]) == pytest.approx(expected_u, abs=1e-5)


def test_predictions_check_shapes() -> None:
    logits, u, v = _maps(1, 4)
    points = torch.zeros(1, 3, 2)
    with pytest.raises(ValueError, match="part_logits"):
        predictions_at_points(logits[:, :24], u[:, 1:], v[:, 1:], points, 16, 4)
    with pytest.raises(ValueError, match="must match"):
        predictions_at_points(logits, u[:, 1:, :2], v[:, 1:], points, 16, 4)
    with pytest.raises(ValueError, match="points"):
        predictions_at_points(logits, u[:, 1:], v[:, 1:], torch.zeros(2, 3, 2), 16, 4)
    with pytest.raises(ValueError, match="tile"):
        predictions_at_points(logits, u[:, 1:], v[:, 1:], points, 30, 8)
    with pytest.raises(ValueError, match="stride"):
        predictions_at_points(logits, u[:, 1:], v[:, 1:], points, 16, 2)


def test_predictions_read_non_finite_padding_at_the_origin() -> None:
    logits, u, v = _maps(1, 4)
    points = torch.tensor([[[1.5, 1.5], [float("nan"), float("inf")], [0.0, 0.0]]])
    parts, pu, pv = predictions_at_points(logits, u[:, 1:], v[:, 1:], points, 16, 4)
    assert torch.isfinite(pu).all() and torch.isfinite(pv).all()
    assert parts[0, 1] == parts[0, 2] == parts[0, 0]


def test_perfect_and_background_predictions_on_a_synthetic_body() -> None:
    """Maps equal to the exact labels of a rendered person score 100 %; a point predicted as
    background is a miss."""
    scene = make_scene(1, 0, width=64, height=64)
    frame = render_frame(scene, 0.0)
    person = scene.people[0]
    rows, cols = np.nonzero((frame.person == person.track_id) & (frame.part > 0))
    assert rows.size > 20
    logits = torch.zeros(1, 25, 64, 64)
    logits[0, 0] = 1.0
    part = torch.from_numpy(frame.part.astype(np.int64))
    logits[0].scatter_(0, part[None], 10.0)
    u = torch.from_numpy(frame.u)[None, None].expand(1, 25, 64, 64).contiguous()
    v = torch.from_numpy(frame.v)[None, None].expand(1, 25, 64, 64).contiguous()
    points = torch.from_numpy(np.stack([cols, rows], -1).astype(np.float32))[None]
    pred_I, pred_U, pred_V = predictions_at_points(
        logits, u[:, 1:], v[:, 1:], points, crop_size=64, stride=1
    )
    gt = (frame.part[rows, cols], frame.u[rows, cols], frame.v[rows, cols])
    distances = SynthSurface(person).distance_cm(*gt, pred_I[0], pred_U[0], pred_V[0])
    assert ratio_within(distances) == {
        "within_5cm": 100.0,
        "within_10cm": 100.0,
        "within_20cm": 100.0,
        "num_points": float(rows.size),
    }
    pred_I[0, 0] = 0
    distances = SynthSurface(person).distance_cm(*gt, pred_I[0], pred_U[0], pred_V[0])
    assert ratio_within(distances)["within_20cm"] == pytest.approx(
        100 * (rows.size - 1) / rows.size
    )
