"""Our Fletcher-32 is HDF5's: checked against chunks HDF5 itself wrote (deflated and raw, odd
lengths, and all-0xFF data, where the 32-bit sums come closest to overflowing)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from dptrack_pipeline.shards.fletcher32 import fletcher32, with_fletcher32


@pytest.mark.parametrize("side", [1, 7, 16, 31, 120, 255])
@pytest.mark.parametrize("fill", ["random", "ones", "zeros"])
@pytest.mark.parametrize("deflate", [True, False])
def test_matches_the_checksum_hdf5_stores(
    side: int, fill: str, deflate: bool, tmp_path: Path
) -> None:
    rng = np.random.default_rng(side)
    shape = (1, side, side, 3)
    data = {
        "random": rng.integers(0, 256, shape, dtype=np.uint8),
        "ones": np.full(shape, 255, np.uint8),
        "zeros": np.zeros(shape, np.uint8),
    }[fill]
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("x", data=data, chunks=shape, fletcher32=True,
                          compression="gzip" if deflate else None)  # fmt: skip
    with h5py.File(path, "r") as fh:
        _, stored = fh["x"].id.read_direct_chunk((0, 0, 0, 0))
    assert with_fletcher32(stored[:-4]) == stored


def test_empty_and_tiny_inputs() -> None:
    assert fletcher32(b"") == 0
    assert fletcher32(b"\x01") == (0x0100 << 16) | 0x0100
    assert fletcher32(b"\x01\x02") == (0x0102 << 16) | 0x0102
