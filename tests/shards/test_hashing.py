"""Stable key hashing: same value in every process, roughly uniform shards."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from dptrack_pipeline.shards.hashing import file_digest, shard_for_key, stable_hash

# Computed once (sha256 of "dptrack\0<key>", first 8 bytes big-endian); must never change, or
# every dataset would be re-sharded.
EXPECTED = {
    ("3418/1003418000012", "dptrack"): 14825127897009034211,
    ("", "dptrack"): 3565936198184971704,
    ("a", "other"): 18104450232524785120,
}


def test_hard_coded_values():
    for (key, salt), value in EXPECTED.items():
        assert stable_hash(key, salt=salt) == value
    assert shard_for_key("3418/1003418000012", 8) == 14825127897009034211 % 8 == 3


def test_same_value_in_another_process_with_another_hash_seed():
    code = (
        "from dptrack_pipeline.shards.hashing import stable_hash;"
        "print(stable_hash('3418/1003418000012'), hash('3418/1003418000012'))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        outputs.append(out)
    assert outputs[0][0] == outputs[1][0] == str(EXPECTED[("3418/1003418000012", "dptrack")])
    assert outputs[0][1] != outputs[1][1]  # Python's own hash() differs: why we do not use it


def test_salt_and_separator_matter():
    assert stable_hash("k", salt="a") != stable_hash("k", salt="b")
    assert stable_hash("bc", salt="a") != stable_hash("c", salt="ab")
    assert 0 <= stable_hash("x") < 2**64


def test_roughly_uniform_over_1000_keys():
    num_shards = 8
    counts = np.bincount(
        [shard_for_key(f"video{v}/ann{a}", num_shards) for v in range(40) for a in range(25)],
        minlength=num_shards,
    )
    expected = 1000 / num_shards
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 7 degrees of freedom: P(chi2 > 24.3) = 0.001.
    assert chi2 < 24.3, counts
    assert counts.min() > 0


def test_bad_inputs():
    with pytest.raises(ValueError):
        shard_for_key("k", 0)
    with pytest.raises(TypeError):
        stable_hash(12)  # type: ignore[arg-type]


def test_file_digest(tmp_path):
    data = os.urandom(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_digest(str(path)) == (hashlib.sha256(data).hexdigest(), len(data))
