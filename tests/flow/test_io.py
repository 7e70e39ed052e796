"""Flow file formats: Middlebury .flo, KITTI PNG, PFM; and the EPE metric."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.flow.io import (
    FLO_MAGIC,
    known_flow_mask,
    read_flo,
    read_kitti_flow,
    read_pfm,
    write_flo,
)
from dptrack_pipeline.flow.metrics import endpoint_error, endpoint_error_map
from dptrack_pipeline.flow.sampling import warp_backward


@pytest.fixture
def fixtures(shared_data: Path) -> Path:
    return shared_data / "flow" / "io-fixtures"


@pytest.mark.parametrize("name", ["0000000-flow_01.flo", "0000000-flow_10.flo", "00001_flow.flo"])
def test_read_flo_fixtures(fixtures: Path, name: str) -> None:
    flow = read_flo(fixtures / name)
    assert flow.shape == (50, 50, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all() and np.abs(flow).max() < 50
    assert flow.std() > 0  # not a constant field


def test_read_flo_layout_against_its_images(fixtures: Path) -> None:
    """The FlyingChairs crop's second image, warped back by its flow, matches the first image;
    swapping u/v or negating the flow makes it worse (so the reader's layout is right)."""
    first = cv2.imread(str(fixtures / "00001_img1.ppm")).astype(np.float32)
    second = cv2.imread(str(fixtures / "00001_img2.ppm")).astype(np.float32)
    flow = read_flo(fixtures / "00001_flow.flo")

    def mean_abs(flow_used: np.ndarray) -> float:
        return float(np.abs(warp_backward(second, flow_used) - first).mean())

    # measured: no warp 4.88, warped 2.56, u/v swapped 11.16, negated 9.09
    assert mean_abs(flow) < 3.0
    assert mean_abs(flow) < 0.6 * float(np.abs(second - first).mean())
    assert mean_abs(np.ascontiguousarray(flow[..., ::-1])) > 2 * mean_abs(flow)
    assert mean_abs(-flow) > 2 * mean_abs(flow)


def test_flo_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 10, (7, 13, 2)).astype(np.float32)
    path = tmp_path / "x.flo"
    write_flo(path, flow)
    raw = path.read_bytes()
    assert raw[:4] == struct.pack("<f", FLO_MAGIC) and raw[4:12] == struct.pack("<ii", 13, 7)
    assert len(raw) == 12 + 7 * 13 * 2 * 4
    np.testing.assert_array_equal(read_flo(path), flow)
    # u and v are interleaved per pixel, rows first
    assert struct.unpack("<ff", raw[12:20]) == (flow[0, 0, 0], flow[0, 0, 1])
    assert struct.unpack("<f", raw[12 + 8 * 13 : 16 + 8 * 13])[0] == flow[1, 0, 0]


def test_flo_errors(tmp_path: Path) -> None:
    bad_magic = tmp_path / "bad.flo"
    bad_magic.write_bytes(struct.pack("<fii", 1.0, 2, 2) + bytes(32))
    with pytest.raises(ValueError, match="magic"):
        read_flo(bad_magic)
    truncated = tmp_path / "short.flo"
    truncated.write_bytes(struct.pack("<fii", FLO_MAGIC, 4, 4) + bytes(40))
    with pytest.raises(ValueError, match="4x4 .flo file has 140 bytes, this one has 52"):
        read_flo(truncated)
    tiny = tmp_path / "tiny.flo"
    tiny.write_bytes(b"PIEH")
    with pytest.raises(ValueError, match="too short"):
        read_flo(tiny)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        write_flo(tmp_path / "y.flo", np.zeros((4, 4, 3)))


def test_middlebury_unknown_flow(shared_data: Path) -> None:
    truth = read_flo(shared_data / "flow" / "middlebury" / "RubberWhale" / "flow10.flo")
    known = known_flow_mask(truth)
    assert 0.95 < known.mean() < 1.0  # measured 98.40 % known
    assert np.abs(truth[known]).max() < 20


def test_read_kitti_flow(shared_data: Path) -> None:
    folder = shared_data / "flow" / "kitti"
    flow, valid = read_kitti_flow(folder / "flow_gt.png")
    assert flow.shape == (375, 1242, 2) and flow.dtype == np.float32
    assert valid.shape == (375, 1242) and valid.dtype == bool
    assert 0.05 < valid.mean() < 0.6  # sparse (LiDAR) truth: measured 16.2 %
    assert np.isfinite(flow).all() and np.abs(flow).max() < 512
    assert np.all(flow[~valid] == 0)

    # Photometric check at the valid pixels: frame 2 sampled at p + flow matches frame 1.
    # measured mean abs grey difference: 14.0 with the flow as read; u/v swapped 40.5,
    # negated 54.3, zero flow 39.5, halved 29.8
    first = cv2.imread(str(folder / "frame1.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    second = cv2.imread(str(folder / "frame2.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    lands_inside = warp_backward(np.ones_like(second), flow) > 0.99
    use = valid & lands_inside
    difference = float(np.abs(warp_backward(second, flow) - first)[use].mean())
    zero_flow = float(np.abs(second - first)[use].mean())
    assert difference < 17.0 and difference < 0.5 * zero_flow


def test_read_kitti_flow_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_kitti_flow(tmp_path / "missing.png")
    eight_bit = tmp_path / "eight.png"
    cv2.imwrite(str(eight_bit), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="16-bit"):
        read_kitti_flow(eight_bit)


def test_kitti_encoding_round_trip(tmp_path: Path) -> None:
    flow = np.array([[[1.5, -2.25], [0.0, 100.0]]], np.float32)
    valid = np.array([[True, False]])
    encoded = np.zeros((1, 2, 3), np.uint16)
    encoded[..., 2] = flow[..., 0] * 64 + 2**15  # R = u
    encoded[..., 1] = flow[..., 1] * 64 + 2**15  # G = v
    encoded[..., 0] = valid  # B = valid
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), encoded)
    read, read_valid = read_kitti_flow(path)
    np.testing.assert_array_equal(read_valid, valid)
    np.testing.assert_array_equal(read[0, 0], [1.5, -2.25])
    np.testing.assert_array_equal(read[0, 1], [0.0, 0.0])


def test_read_pfm_fixture(fixtures: Path) -> None:
    weights = read_pfm(fixtures / "0000000-occ_weights_01.pfm")
    assert weights.shape == (50, 50) and weights.dtype == np.float32
    assert np.isfinite(weights).all() and weights.min() >= 0.0 and weights.max() <= 1.0
    assert 0.0 < weights.mean() < 0.2  # measured 0.0352: a few occluded pixels


def _write_pfm(path: Path, header: bytes, rows_bottom_up: np.ndarray) -> None:
    path.write_bytes(header + rows_bottom_up.tobytes())


def test_read_pfm_colour_big_endian_and_row_order(tmp_path: Path) -> None:
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    path = tmp_path / "c.pfm"
    _write_pfm(path, b"PF\n3 2\n1.0\n", np.flipud(image).astype(">f4"))
    np.testing.assert_array_equal(read_pfm(path), image)
    # header tokens may share a line
    _write_pfm(path, b"Pf 3 2 -1.0\n", np.flipud(image[..., 0]).astype("<f4"))
    np.testing.assert_array_equal(read_pfm(path), image[..., 0])


def test_read_pfm_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.pfm"
    path.write_bytes(b"P6\n3 2\n255\n" + bytes(18))
    with pytest.raises(ValueError, match="magic"):
        read_pfm(path)
    path.write_bytes(b"Pf\n3 2\n-1.0\n" + bytes(20))
    with pytest.raises(ValueError, match="24 data bytes, this one has 20"):
        read_pfm(path)
    path.write_bytes(b"Pf\n3")
    with pytest.raises(ValueError, match="truncated"):
        read_pfm(path)


def test_endpoint_error() -> None:
    gt = np.zeros((2, 2, 2), np.float32)
    pred = np.zeros((2, 2, 2), np.float32)
    pred[0, 0] = [3.0, 4.0]
    pred[1, 1] = [1.0, 0.0]
    np.testing.assert_array_equal(endpoint_error_map(pred, gt), [[5.0, 0.0], [0.0, 1.0]])
    assert endpoint_error(pred, gt) == pytest.approx(1.5)
    valid = np.array([[False, True], [True, True]])
    assert endpoint_error(pred, gt, valid) == pytest.approx(1 / 3)
    assert np.isnan(endpoint_error(pred, gt, np.zeros((2, 2), bool)))
    with pytest.raises(ValueError, match="same shape"):
        endpoint_error(pred, gt[:1])
    with pytest.raises(ValueError, match="valid must have shape"):
        endpoint_error(pred, gt, valid[:1])
