"""Readers (and a writer) for the flow file formats of the public benchmarks.

* Middlebury ``.flo`` (also Sintel, FlyingChairs): ``float32`` magic ``202021.25``, ``int32``
  width, ``int32`` height, then ``H*W*2`` ``float32`` values row-major with u, v interleaved; all
  little-endian. Values above ``1e9`` (:data:`UNKNOWN_FLOW_THRESHOLD`) mark unknown flow.
* KITTI flow PNG: 16-bit 3-channel, ``u = (R - 2**15) / 64``, ``v = (G - 2**15) / 64``, ``B > 0``
  where the flow is valid. OpenCV loads the channels as BGR.
* PFM (FlyingThings3D flow, disparity, occlusion weights): text header ``PF`` (3 channels) or
  ``Pf`` (1), ``width height``, a scale whose sign gives the byte order (negative = little-endian),
  then float32 rows stored **bottom to top**.

The ``.flo`` and PFM codecs are hand-written: they are a dozen lines of numpy, OpenCV reads
neither (``cv2.readOpticalFlow`` exists only in opencv-contrib), and the libraries that do
(mmflow, flowiz) would be heavyweight dependencies for it.

All flows returned are ``(H, W, 2)`` float32 in pixels, channel 0 = x (u).
"""

from __future__ import annotations

import os
from typing import BinaryIO

import cv2
import numpy as np

FLO_MAGIC = 202021.25
UNKNOWN_FLOW_THRESHOLD = 1e9
"""Middlebury: flow components with absolute value above this are 'unknown'."""

_FLO_HEADER_BYTES = 12


def read_flo(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a Middlebury ``.flo`` file.

    Returns:
        ``(H, W, 2)`` float32 flow (unknown values are kept as stored; see
        :func:`known_flow_mask`).

    Raises:
        ValueError: on a bad magic number, non-positive size or a size that disagrees with the
            file length.
    """
    data = np.fromfile(path, dtype=np.uint8)
    if data.size < _FLO_HEADER_BYTES:
        raise ValueError(f"{path}: too short for a .flo file ({data.size} bytes)")
    magic = float(data[:4].view("<f4")[0])
    if magic != FLO_MAGIC:
        raise ValueError(f"{path}: bad .flo magic number {magic!r}, expected {FLO_MAGIC}")
    width, height = (int(v) for v in data[4:12].view("<i4"))
    if width <= 0 or height <= 0:
        raise ValueError(f"{path}: bad .flo size {width}x{height}")
    expected = _FLO_HEADER_BYTES + 8 * width * height
    if data.size != expected:
        raise ValueError(
            f"{path}: a {width}x{height} .flo file has {expected} bytes, this one has {data.size}"
        )
    values = data[_FLO_HEADER_BYTES:].view("<f4")
    return values.reshape(height, width, 2).astype(np.float32)


def write_flo(path: str | os.PathLike[str], flow: np.ndarray) -> None:
    """Write ``flow`` (``(H, W, 2)``, any real dtype, stored as float32) as a ``.flo`` file."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] < 1 or flow.shape[1] < 1:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    with open(path, "wb") as handle:
        handle.write(np.array([FLO_MAGIC], dtype="<f4").tobytes())
        handle.write(np.array([width, height], dtype="<i4").tobytes())
        handle.write(np.ascontiguousarray(flow, dtype="<f4").tobytes())


def known_flow_mask(flow: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: both components finite and not above :data:`UNKNOWN_FLOW_THRESHOLD`."""
    flow = np.asarray(flow)
    with np.errstate(invalid="ignore"):
        return np.all(np.isfinite(flow) & (np.abs(flow) <= UNKNOWN_FLOW_THRESHOLD), axis=-1)


def read_kitti_flow(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI 2012/2015 flow PNG.

    Returns:
        ``(flow, valid)``: ``(H, W, 2)`` float32 flow (zero where not valid) and ``(H, W)`` bool.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it is not a 16-bit 3-channel PNG.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such KITTI flow file: {path}")
    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"{path}: not a readable image")
    if raw.dtype != np.uint16 or raw.ndim != 3 or raw.shape[2] != 3:
        raise ValueError(
            f"{path}: a KITTI flow PNG is 16-bit with 3 channels, got {raw.dtype} {raw.shape}"
        )
    valid = raw[:, :, 0] > 0  # B
    flow = (raw[:, :, 2:0:-1].astype(np.float32) - 2.0**15) / 64.0  # R, G -> u, v
    flow[~valid] = 0.0
    return flow, valid


def _read_header_tokens(handle: BinaryIO, count: int) -> list[bytes]:
    """Read ``count`` whitespace-separated tokens and the single whitespace byte after the last."""
    tokens: list[bytes] = []
    current = b""
    while len(tokens) < count:
        byte = handle.read(1)
        if not byte:
            raise ValueError("PFM header is truncated")
        if byte.isspace():
            if current:
                tokens.append(current)
                current = b""
        else:
            current += byte
            if len(current) > 32:
                raise ValueError(f"PFM header token too long: {current[:32]!r}")
    return tokens


def read_pfm(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PFM file.

    Returns:
        ``(H, W)`` float32 for ``Pf`` or ``(H, W, 3)`` float32 for ``PF``, rows top to bottom.
        (FlyingThings3D flow PFMs are ``PF`` with a zero third channel: take ``[..., :2]``.)

    Raises:
        ValueError: on a bad magic, header or data size.
    """
    with open(path, "rb") as handle:
        try:
            magic, width_text, height_text, scale_text = _read_header_tokens(handle, 4)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if magic not in (b"PF", b"Pf"):
            raise ValueError(f"{path}: bad PFM magic {magic!r}, expected b'PF' or b'Pf'")
        try:
            width, height, scale = int(width_text), int(height_text), float(scale_text)
        except ValueError:
            raise ValueError(
                f"{path}: bad PFM header {width_text!r} {height_text!r} {scale_text!r}"
            ) from None
        if width <= 0 or height <= 0 or scale == 0.0:
            raise ValueError(f"{path}: bad PFM size {width}x{height} or scale {scale}")
        channels = 3 if magic == b"PF" else 1
        dtype = "<f4" if scale < 0 else ">f4"
        expected = width * height * channels
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    if data.size != 4 * expected:
        raise ValueError(
            f"{path}: a {width}x{height}x{channels} PFM has {4 * expected} data bytes, "
            f"this one has {data.size}"
        )
    values = data.view(dtype).astype(np.float32)
    shape = (height, width, channels) if channels == 3 else (height, width)
    return np.ascontiguousarray(np.flipud(values.reshape(shape)))
