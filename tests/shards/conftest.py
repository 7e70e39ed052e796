"""Fixtures for the shard tests: random but valid shard records and a finished output folder."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dptrack_pipeline.shards import (
    REQUIRED_COUNTERS,
    ShardRecord,
    build_dataset_info,
    write_dataset_info,
    write_instance_shard,
    write_rejects_shard,
)

CROP_SIZE = 16
EMPTY_RLE = "PPP2"  # all-zero 256x256 mask, as pycocotools encodes it
# rows 40..119, columns 60..99 of a 256x256 mask, as pycocotools encodes it
BOX_RLE = "XQ?`2`500000000000000000000000000000000000000000000000000000000000000000000000000000hnV1"


def random_record(
    rng: np.random.Generator,
    *,
    video_id: str = "3418",
    annotation_id: int = 1,
    source_index: int = 10,
    offset: int = 0,
    num_points: int | None = None,
    with_masks: bool = True,
    crop_size: int = CROP_SIZE,
) -> ShardRecord:
    """A valid record: a source (offset 0, no flow) or a propagated row (with flow and valid)."""
    n = int(rng.integers(0, 40)) if num_points is None else num_points

    def quality(count: int, low: float, high: float) -> np.ndarray:
        values = rng.uniform(low, high, count).astype(np.float32)
        return np.full(count, np.nan, np.float32) if offset == 0 else values

    frame_index = source_index + offset
    row = {
        "video_id": video_id,
        "frame_id": 10_034_180_000 + frame_index,
        "frame_index": frame_index,
        "image_file": f"images/val/{video_id}/{frame_index:06d}.jpg",
        "image_id": -1 if offset else 10_034_180_000 + frame_index,
        "track_id": annotation_id % 5,
        "annotation_id": annotation_id,
        "source_frame_id": 10_034_180_000 + source_index,
        "source_frame_index": source_index,
        "offset": offset,
        "bbox": rng.uniform(1, 200, 4).astype(np.float32),
        "box_source": "annotation" if offset == 0 else "derived",
        "keypoints": rng.uniform(0, 300, (17, 3)).astype(np.float32),
        "dp_x": rng.uniform(0, 256, n).astype(np.float32),
        "dp_y": rng.uniform(0, 256, n).astype(np.float32),
        "dp_I": rng.integers(1, 25, n).astype(np.uint8),
        "dp_U": rng.uniform(0, 1, n).astype(np.float32),
        "dp_V": rng.uniform(0, 1, n).astype(np.float32),
        "dp_source_index": np.sort(rng.choice(200, n, replace=False)).astype(np.int32),
        "dp_masks": [EMPTY_RLE, BOX_RLE] * 7 if with_masks else [],
        "crop_box": [float(rng.uniform(0, 50)), float(rng.uniform(0, 50)), 64.0, 128.0],
        "flow_valid_fraction": math.nan if offset == 0 else float(rng.uniform(0, 1)),
        "estimator": "opencv_dis",
        "fb_threshold": 5.0,
        "points_in": n + 3,
        "points_dropped_fb": 2,
        "points_dropped_outside": 1,
        # instances v2: the quality of the labels (NaN for sources)
        "dp_fb_error": quality(n, 0, 5),
        "dp_photo": quality(n, -1, 1),
        "dp_chain_error": quality(n, 0, 3),
        "kp_fb_error": quality(17, 0, 5),
        "kp_photo": quality(17, -1, 1),
        "kp_posetrack_error": quality(17, 0, 20),
        "fb_error_median": math.nan if offset == 0 else float(rng.uniform(0, 5)),
        "photo_median": math.nan if offset == 0 else float(rng.uniform(-1, 1)),
        "kept_fraction": math.nan if offset == 0 else float(rng.uniform(0, 1)),
        "pckh": math.nan if offset == 0 else float(rng.uniform(0, 1)),
        "points_dropped_photo": 0 if offset == 0 else 1,
        "points_dropped_chain": 0,
    }
    crop = rng.integers(0, 256, (crop_size, crop_size, 3), dtype=np.uint8)
    if offset == 0:
        return ShardRecord(row=row, crop=crop)
    flow = rng.normal(0, 3, (crop_size, crop_size, 2)).astype(np.float32)
    valid = rng.random((crop_size, crop_size)) > 0.3
    return ShardRecord(row=row, crop=crop, flow=flow, valid=valid)


def random_records(seed: int, num_annotations: int = 4, offsets=(-2, -1, 0, 1, 2)) -> list:
    """Sources and propagations of ``num_annotations`` annotations over two videos."""
    rng = np.random.default_rng(seed)
    records = []
    for a in range(num_annotations):
        for off in offsets:
            records.append(
                random_record(
                    rng,
                    video_id="3418" if a % 2 else "9473",
                    annotation_id=100 + a,
                    source_index=10 + 3 * a,
                    offset=off,
                    with_masks=a != 1,
                )
            )
    return records


def counters(**overrides: int) -> dict[str, int]:
    values = {name: 0 for name in REQUIRED_COUNTERS}
    values.update(overrides)
    return values


@pytest.fixture
def make_records() -> Callable[..., list]:
    """:func:`random_records` (conftest modules cannot be imported by name)."""
    return random_records


@pytest.fixture
def record_factory() -> Callable[..., ShardRecord]:
    rng = np.random.default_rng(1234)
    return lambda **kw: random_record(rng, **kw)


@pytest.fixture
def built_output(tmp_path: Path) -> Path:
    """A complete 3-shard folder: shard 1 of instances empty, one reject in shard 2."""
    out = tmp_path / "out"
    out.mkdir()
    files = []
    files += write_instance_shard(str(out), 0, 3, random_records(0, 3), CROP_SIZE)
    files += write_instance_shard(str(out), 1, 3, [], CROP_SIZE)
    files += write_instance_shard(str(out), 2, 3, random_records(1, 2, offsets=(0, 1)), CROP_SIZE)
    reject = {
        "reason": "dp_I_out_of_range",
        "detail": "dp_I has 25",
        "stage": "validate",
        "annotation_id": 7,
        "video_id": "3418",
        "frame_id": 10_034_180_001,
        "track_id": 2,
        "offset": 0,
    }
    for i in range(3):
        files.append(write_rejects_shard(str(out), i, 3, [reject] if i == 2 else []))
    info = build_dataset_info(
        files=files,
        counters=counters(instances_in=20, instances_written=19, instances_rejected=1),
        estimator="opencv_dis",
        estimator_params={"preset": "medium"},
        fb_threshold=5.0,
        offsets=[-2, -1, 1, 2],
        crop_size=CROP_SIZE,
        num_shards=3,
        config={"num_shards": 3},
    )
    write_dataset_info(str(out), info)
    return out


@pytest.fixture
def remote_folder(tmp_path: Path):
    """A Beam filesystem for the scheme ``dptracktest://`` mapped onto a local folder.

    It is a real Beam ``FileSystem`` plugin (Beam finds it by scheme among the subclasses of
    ``FileSystem``), standing in for ``gs://`` so the remote code paths run without a network.
    Yields ``(root, calls)``: the local folder behind ``dptracktest://`` and the list of
    (operation, path) calls made through it.
    """
    from apache_beam.io.localfilesystem import LocalFileSystem

    root = tmp_path / "bucket"
    root.mkdir()
    calls: list[tuple[str, str]] = []
    prefix = "dptracktest://"

    def local(path: str) -> str:
        return str(root / path[len(prefix) :]) if path.startswith(prefix) else path

    class _TestFileSystem(LocalFileSystem):
        @classmethod
        def scheme(cls):
            return "dptracktest"

        def create(self, path, *args, **kwargs):
            calls.append(("create", path))
            return super().create(local(path), *args, **kwargs)

        def open(self, path, *args, **kwargs):
            calls.append(("open", path))
            return super().open(local(path), *args, **kwargs)

        def rename(self, sources, destinations):
            calls.append(("rename", sources[0]))
            return super().rename([local(p) for p in sources], [local(p) for p in destinations])

        def delete(self, paths):
            calls.append(("delete", paths[0]))
            return super().delete([local(p) for p in paths])

        def match(self, patterns, limits=None):
            calls.append(("match", patterns[0]))
            return super().match([local(p) for p in patterns], limits)

    try:
        yield root, calls
    finally:
        _TestFileSystem.scheme = classmethod(lambda cls: "dptracktest-retired")  # unregister
