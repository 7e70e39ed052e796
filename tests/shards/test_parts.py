"""Work parts: saved and loaded exactly, keyed by run key and element, and a planted pickle that
would run code is refused (the element is computed again)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from dptrack_pipeline.beam.common import ShardCounts
from dptrack_pipeline.shards.hdf5_writer import PackedChunk
from dptrack_pipeline.shards.parts import PartStore


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch planted",))


def test_parts_round_trip_and_are_keyed(tmp_path: Path) -> None:
    store = PartStore(str(tmp_path), "key")
    outputs = [
        (3, ("instance", PackedChunk("crops", b"\x00\x01"))),
        (3, ("reject", {"reason": "frame_missing", "offset": -1})),
        (3, ShardCounts({"frames_decoded": 2})),
        (1, np.arange(6, dtype=np.float16).reshape(2, 3)),
    ]
    assert store.load("a") is None
    store.save("a", outputs)
    loaded = store.load("a")
    assert loaded[:3] == outputs[:3]
    np.testing.assert_array_equal(loaded[3][1], outputs[3][1])
    assert loaded[3][1].dtype == np.float16
    assert PartStore(str(tmp_path), "other key").load("a") is None
    assert store.load("b") is None and store.count() == 1


def test_a_planted_pickle_is_not_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = PartStore(str(tmp_path), "key")
    store.save("a", [1])
    path = next(Path(store.folder).glob("*.pkl"))
    path.write_bytes(pickle.dumps([_Evil()]))
    assert store.load("a") is None
    assert not (tmp_path / "planted").exists()
