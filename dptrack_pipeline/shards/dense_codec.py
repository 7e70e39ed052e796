"""How a dense row is stored and read back, per version of ``schemas/dense.v*.json``.

Version 1 stored arrays as they are (crops uint8, flows float16, validity one byte per pixel).
Version 2 encodes each row before the HDF5 filters (byte shuffle, deflate, Fletcher-32), which
halves the bytes and the deflate time (README, "Dense shards, version 2"):

* **crops, row deltas** (``row_delta``): ``stored[r, c] = crop[r, c] - crop[r, c - 1]`` (mod 256,
  per channel; column 0 keeps its value). Neighbouring pixels are alike, so the deltas are mostly
  small and deflate finds them; lossless, undone by a cumulative sum along the row.
* **flows, fixed point** (``fixed_point``): ``stored = round(flow * scale)`` as int16, ``0`` where
  the pixel is not valid; ``flow = stored / scale``. With ``scale`` = 16 the step is 1/16 crop px
  (the error at most 1/32, far below any estimator's), the range +-2048 crop px (clipped beyond).
  Invalid pixels carry whatever the estimator said there, which no consumer may use; zeros
  compress.
* **validity, bits** (``packbits``): :func:`numpy.packbits` along each row, ``(S, ceil(S / 8))``.

Pure functions on one row; the writer (:mod:`~dptrack_pipeline.shards.hdf5_writer`) and the reader
(:class:`~dptrack_pipeline.shards.reader.DenseReader`) call them by the file's version.
"""

from __future__ import annotations

import numpy as np

FLOW_SCALE = 16
"""Fixed-point scale of version-2 flows: 1/16 crop pixel steps."""
_INT16 = np.iinfo(np.int16)


def packed_width(crop_size: int) -> int:
    """``B``: bytes of one packed validity row of ``crop_size`` pixels."""
    return (int(crop_size) + 7) // 8


def encode_crop(crop: np.ndarray, version: int) -> np.ndarray:
    """``(S, S, 3)`` uint8 RGB -> the stored row (version 2: row deltas)."""
    if version == 1:
        return crop
    stored = crop.copy()
    np.subtract(crop[:, 1:], crop[:, :-1], out=stored[:, 1:])  # uint8 wraps mod 256
    return stored


def decode_crop(stored: np.ndarray, version: int, *, channels_first: bool = False) -> np.ndarray:
    """The stored row -> ``(S, S, 3)`` uint8 RGB, or ``(3, S, S)`` C-contiguous with
    ``channels_first`` (the sum runs straight into that layout: one pass instead of a sum and
    a transposed copy, 0.10 against 0.16 ms a 256-px crop)."""
    if version == 1:
        return np.ascontiguousarray(stored.transpose(2, 0, 1)) if channels_first else stored
    if not channels_first:
        return np.cumsum(stored, axis=1, dtype=np.uint8)
    out = np.empty((stored.shape[2], *stored.shape[:2]), dtype=np.uint8)
    return np.cumsum(stored.transpose(2, 0, 1), axis=2, dtype=np.uint8, out=out)


def encode_flow(
    flow: np.ndarray, valid: np.ndarray, version: int, scale: int = FLOW_SCALE
) -> np.ndarray:
    """``(S, S, 2)`` float flow and its ``(S, S)`` validity -> the stored row."""
    if version == 1:
        return flow.astype(np.float16)
    fixed = np.rint(np.asarray(flow, np.float32) * scale)
    np.clip(fixed, _INT16.min, _INT16.max, out=fixed)
    fixed[~np.asarray(valid, bool)] = 0
    return fixed.astype(np.int16)


def decode_flow(stored: np.ndarray, version: int, scale: int = FLOW_SCALE) -> np.ndarray:
    """The stored row -> ``(S, S, 2)`` float32 flow in crop pixels."""
    if version == 1:
        return stored.astype(np.float32)
    return stored.astype(np.float32) * np.float32(1.0 / scale)


def encode_valid(valid: np.ndarray, version: int) -> np.ndarray:
    """``(S, S)`` bool or 0/1 -> the stored row (version 2: ``(S, B)`` packed bits)."""
    mask = np.asarray(valid).astype(bool)
    if version == 1:
        return mask.astype(np.uint8)
    return np.packbits(mask, axis=-1)


def decode_valid(stored: np.ndarray, version: int, crop_size: int) -> np.ndarray:
    """The stored row -> ``(S, S)`` bool."""
    if version == 1:
        return stored.astype(bool)
    return np.unpackbits(stored, axis=-1, count=int(crop_size)).astype(bool)
