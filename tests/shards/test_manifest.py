"""dataset_info.json: validates, is deterministic, refuses what the schema refuses."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from dptrack_pipeline.shards import (
    REQUIRED_COUNTERS,
    build_dataset_info,
    read_dataset_info,
    validate_dataset_info,
    write_dataset_info,
)
from dptrack_pipeline.shards.manifest import dataset_info_errors, dumps_dataset_info

SHA = "0" * 64


def _files(num_shards=2):
    files = []
    for i in reversed(range(num_shards)):
        for kind, ext in (("rejects", "parquet"), ("instances", "parquet"), ("dense", "h5")):
            name = f"{kind}-{i:05d}-of-{num_shards:05d}.{ext}"
            files.append({"file": name, "kind": kind, "rows": i + 1, "bytes": 10, "sha256": SHA})
    return files


def _info(**overrides):
    kwargs = dict(
        files=_files(),
        counters={name: 1 for name in REQUIRED_COUNTERS} | {"extra_counter": np.int64(4)},
        estimator="opencv_dis",
        estimator_params={"preset": "medium", "scale": np.float32(0.5), "levels": (1, 2)},
        fb_threshold=5,
        offsets=[3, -1, 1, -3],
        crop_size=256,
        num_shards=2,
        config={"annotations": "annotations.json", "num_shards": 2},
    )
    kwargs.update(overrides)
    return build_dataset_info(**kwargs)


def test_build_validates_and_has_the_documented_fields():
    info = _info()
    validate_dataset_info(info)
    assert info["schema_version"] == 1
    assert info["code_version"] == info["versions"]["dptrack"]
    assert set(info["versions"]) >= {"apache_beam", "pyarrow", "h5py", "hdf5", "opencv", "numpy"}
    assert info["dp_x_convention"] == "pixel_x = bbox_x + dp_x / 256 * bbox_w (same for y)"
    assert "channel 0 = x" in info["flow_convention"]
    assert "(x, y, w, h)" in info["box_convention"]
    assert [f["file"] for f in info["files"]] == sorted(f["file"] for f in _files())
    assert info["files"][0]["shard_index"] == 0 and info["files"][0]["num_shards"] == 2
    assert info["offsets"] == [-3, -1, 1, 3]
    assert info["totals"] == {"instances": 3, "dense": 3, "rejects": 3}
    assert info["estimator_params"] == {"preset": "medium", "scale": 0.5, "levels": [1, 2]}
    assert info["counters"]["extra_counter"] == 4
    assert info["extra"] == {}


def test_beam_version_is_the_installed_one():
    import importlib.metadata

    assert _info()["versions"]["apache_beam"] == importlib.metadata.version("apache-beam")


def test_no_timestamps_or_paths_two_builds_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write_dataset_info(str(a), _info())
    files = _files()[::-1]
    write_dataset_info(str(b), _info(files=files))
    text = (a / "dataset_info.json").read_text()
    assert text == (b / "dataset_info.json").read_text()
    assert str(tmp_path) not in text
    assert text == dumps_dataset_info(json.loads(text))  # sorted keys, indent 2
    assert read_dataset_info(str(a)) == json.loads(text)
    assert sorted(p.name for p in a.iterdir()) == ["dataset_info.json"]


@pytest.mark.parametrize("counter", ["points_dropped_fb", "frames_decoded"])
def test_missing_counter_fails_validation(tmp_path, counter):
    info = _info()
    del info["counters"][counter]
    errors = dataset_info_errors(info)
    assert errors and counter in errors[0]
    with pytest.raises(ValueError, match=counter):
        write_dataset_info(str(tmp_path), info)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda i: i["counters"].__setitem__("points_in", -1), "counters/points_in"),
        (lambda i: i["counters"].__setitem__("points_in", 1.5), "counters/points_in"),
        (lambda i: i["files"][0].__setitem__("sha256", "xyz"), "files/0/sha256"),
        (
            lambda i: i["files"][0].__setitem__("file", "/abs/dense-00000-of-00002.h5"),
            "files/0/file",
        ),
        (lambda i: i.__setitem__("created_at", "2024-01-01"), "<root>"),
        (lambda i: i.__setitem__("offsets", [0, 1]), "offsets/0"),
        (lambda i: i.pop("flow_convention"), "<root>"),
    ],
)
def test_schema_violations_are_reported(mutate, where):
    info = copy.deepcopy(_info())
    mutate(info)
    errors = dataset_info_errors(info)
    assert errors and errors[0].startswith(where), errors


def test_build_refuses_inconsistent_input():
    with pytest.raises(ValueError, match="one of 2 shards, expected 3"):
        _info(num_shards=3)
    with pytest.raises(ValueError, match="duplicate file entries"):
        _info(files=_files() + _files()[:1])
    with pytest.raises(ValueError, match="does not match its kind"):
        _info(files=[{**_files()[0], "kind": "instances"}])
    with pytest.raises(ValueError, match="duplicate offsets"):
        _info(offsets=[1, 1])
    with pytest.raises(ValueError, match="cannot be written to JSON"):
        _info(config={"x": float("nan")})
    with pytest.raises(TypeError, match="config.x"):
        _info(config={"x": object()})
