"""Pairs shards: deduplicated crops, indices, order, determinism, manifest and verification."""

from __future__ import annotations

import json
import random
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dptrack_pipeline.shards import DenseReader, read_pairs, verify_output, write_rejects_shard
from dptrack_pipeline.shards.counters import KIND_PAIRS, REQUIRED_PAIRS_COUNTERS
from dptrack_pipeline.shards.hashing import file_digest
from dptrack_pipeline.shards.hdf5_writer import pack_chunk
from dptrack_pipeline.shards.manifest import (
    build_dataset_info,
    dataset_info_errors,
    write_dataset_info,
)
from dptrack_pipeline.shards.pairs_writer import (
    PAIR_SORT_KEY,
    WRITER_COLUMNS,
    PairRecord,
    crop_keys,
    pair_sort_key,
    write_pairs_shard,
)

S = 16
BOX = (7.5, -0.5, 40.0, 40.0)
PERSON_BOX = (3.25, 4.5, 20.0, 20.0)
DENSE0 = "dense-00000-of-00001.h5"
PAIRS0 = "pairs-00000-of-00001.parquet"


def _row(video: str, frame_a: int, offset: int, person: int, box_a, box_b) -> dict:
    return {
        "video_id": video,
        "frame_a": frame_a,
        "frame_b": frame_a + offset,
        "offset": offset,
        "person": person,
        "mode": "direct",
        "estimator": "opencv_dis",
        "box_source_a": "default" if person == 0 else "people",
        "box_source_b": "default" if person == 0 else "followed",
        "crop_box_a": list(box_a),
        "crop_box_b": list(box_b),
        "frame_width": 56,
        "frame_height": 40,
        "valid_fraction": 0.75,
        "flow_median": 1.5,
        "fb_error_median": 0.25,
    }


def _pairs_and_crops(seed: int = 0) -> tuple[list[PairRecord], dict]:
    """Two videos; video "b" has person 0 on default boxes (crops shared by many pairs) and
    person 3 on a moving box; video "a" has two frames."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(5):
        for k in (-1, 1, -2, 2):
            if 0 <= t + k < 5:
                rows.append(_row("b", t, k, 0, BOX, BOX))
    for t, k in ((1, 1), (1, -1), (2, 1)):
        moved = (PERSON_BOX[0] + 2 * k, PERSON_BOX[1] + k, 20.0, 20.0)
        rows.append(_row("b", t, k, 3, PERSON_BOX, moved))
    rows += [_row("a", 0, 1, 0, BOX, BOX), _row("a", 1, -1, 0, BOX, BOX)]
    pairs = [
        PairRecord(
            row=row,
            flow=rng.normal(0, 3, (S, S, 2)).astype(np.float32),
            valid=rng.random((S, S)) > 0.25,
        )
        for row in rows
    ]
    crops = {}
    for record in pairs:
        for key in crop_keys(record.row):
            crops[key] = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    return pairs, crops


def _write(folder: Path, pairs, crops, shard: int = 0, shards: int = 1) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    return write_pairs_shard(str(folder), shard, shards, pairs, crops, S)


# --------------------------------------------------------------------------- one shard


def fh_crops(folder: Path) -> list[int]:
    with h5py.File(folder / DENSE0, "r") as fh:
        return list(range(fh["crops"].shape[0]))


def test_round_trip(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    infos = _write(tmp_path, pairs, crops)
    table = pq.read_table(tmp_path / PAIRS0).to_pylist()
    assert len(table) == len(pairs)

    # sorted by (video_id, frame_a, person, offset)
    assert PAIR_SORT_KEY == ("video_id", "frame_a", "person", "offset")
    keys = [pair_sort_key(r) for r in table]
    assert keys == sorted(pair_sort_key(p.row) for p in pairs)
    assert keys[0] == ("a", 0, 0, 1)

    by_key = {pair_sort_key(p.row): p for p in pairs}
    with h5py.File(tmp_path / DENSE0, "r") as fh:
        assert fh["flows"].dtype == np.int16 and fh.attrs["schema_version"] == 2
        assert (fh.attrs["num_crops"], fh.attrs["num_flows"]) == (len(fh["crops"]), len(pairs))
    with DenseReader(str(tmp_path)) as dense:
        stored_crops = [dense.crop(DENSE0, i) for i in range(len(fh_crops(tmp_path)))]
        flows, valid = zip(*(dense.flow(DENSE0, i) for i in range(len(pairs))), strict=True)
    # crops deduplicated: one per distinct (video, frame, box), fewer than two per pair
    distinct = {key for p in pairs for key in crop_keys(p.row)}
    assert len(stored_crops) == len(distinct) < 2 * len(pairs)
    # video b: 5 default boxes, person 3 at frames 1 and 2 and 3 moved boxes; video a: 2
    assert len(distinct) == 5 + 2 + 3 + 2

    seen_crops = []
    for i, row in enumerate(table):
        record = by_key[pair_sort_key(row)]
        key_a, key_b = crop_keys(row)
        assert row["dense_file"] == DENSE0
        assert row["flow_index"] == i  # flows in row order
        np.testing.assert_array_equal(stored_crops[row["crop_a_index"]], crops[key_a])
        np.testing.assert_array_equal(stored_crops[row["crop_b_index"]], crops[key_b])
        # fixed point at 1/16 crop px where valid, 0 where not
        expected = np.where(record.valid[..., None], np.rint(record.flow * 16) / 16, 0)
        np.testing.assert_array_equal(flows[i], expected.astype(np.float32))
        np.testing.assert_array_equal(valid[i], record.valid)
        for index in (row["crop_a_index"], row["crop_b_index"]):
            if index not in seen_crops:
                seen_crops.append(index)
        # the caller's columns come back as given
        for column, value in record.row.items():
            assert row[column] == pytest.approx(value), column
    # crops numbered in order of first reference: crop A, then crop B, row by row
    assert seen_crops == list(range(len(stored_crops)))

    dense_info, pairs_info = infos
    assert dense_info == {
        "file": DENSE0,
        "kind": "dense",
        "rows": len(distinct),
        "bytes": (tmp_path / DENSE0).stat().st_size,
        "sha256": file_digest(str(tmp_path / DENSE0))[0],
    }
    assert pairs_info["file"] == PAIRS0 and pairs_info["kind"] == "pairs"
    assert pairs_info["rows"] == len(pairs)
    assert pairs_info["sha256"] == file_digest(str(tmp_path / PAIRS0))[0]


def test_crops_of_one_frame_are_shared(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    _write(tmp_path, pairs, crops)
    table = pq.read_table(tmp_path / PAIRS0).to_pylist()
    # video b, person 0, frame 2: crop A of anchor 2 is crop B of (0, +2), (1, +1), (3, -1), (4, -2)
    index = {
        r["crop_a_index"]
        for r in table
        if r["video_id"] == "b" and r["person"] == 0 and r["frame_a"] == 2
    }
    assert len(index) == 1
    partners = [r for r in table if r["video_id"] == "b" and r["person"] == 0 and r["frame_b"] == 2]
    assert len(partners) == 4
    assert {r["crop_b_index"] for r in partners} == index
    # the same frame in another video is another crop
    assert index.isdisjoint({r["crop_a_index"] for r in table if r["video_id"] == "a"})


def test_unreferenced_crops_are_not_written(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    extra = dict(crops)
    extra[("b", 99, BOX)] = np.zeros((S, S, 3), np.uint8)
    assert _write(tmp_path / "x", pairs, extra) == _write(tmp_path / "y", pairs, crops)


def test_boxes_match_as_float32_values(tmp_path: Path) -> None:
    # crop keys compare float values; rows carry lists or arrays alike
    pairs, crops = _pairs_and_crops()
    as_arrays = [
        PairRecord(
            {
                **p.row,
                "crop_box_a": np.float32(p.row["crop_box_a"]),
                "crop_box_b": np.float32(p.row["crop_box_b"]),
            },
            p.flow,
            p.valid,
        )
        for p in pairs
    ]
    assert _write(tmp_path / "x", as_arrays, crops) == _write(tmp_path / "y", pairs, crops)


def test_deterministic_for_any_input_order(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    first = _write(tmp_path / "one", pairs, crops)
    shuffled = list(pairs)
    random.Random(3).shuffle(shuffled)
    crop_items = list(crops.items())
    random.Random(4).shuffle(crop_items)
    second = _write(tmp_path / "two", shuffled, dict(crop_items))
    assert first == second
    for name in (DENSE0, PAIRS0):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_packed_inputs_read_back_the_same(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    packed_pairs = [
        PairRecord(p.row, pack_chunk("flows", p.flow, S, p.valid), pack_chunk("valid", p.valid, S))
        for p in pairs
    ]
    packed_crops = {k: pack_chunk("crops", v, S) for k, v in crops.items()}
    _write(tmp_path / "plain", pairs, crops)
    _write(tmp_path / "packed", packed_pairs, packed_crops)
    for name in (PAIRS0, DENSE0):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "packed" / name).read_bytes()
    with (
        h5py.File(tmp_path / "plain" / DENSE0, "r") as plain,
        h5py.File(tmp_path / "packed" / DENSE0, "r") as packed,
    ):
        for name in ("crops", "flows", "valid"):
            np.testing.assert_array_equal(plain[name][:], packed[name][:])


def test_empty_shard(tmp_path: Path) -> None:
    dense_info, pairs_info = _write(tmp_path, [], {})
    assert dense_info["rows"] == pairs_info["rows"] == 0
    assert pq.read_table(tmp_path / PAIRS0).num_rows == 0
    with h5py.File(tmp_path / DENSE0, "r") as fh:
        assert fh["crops"].shape == (0, S, S, 3)
        assert fh["flows"].shape == (0, S, S, 2)


def test_missing_crop_is_refused(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    key = crop_keys(pairs[5].row)[1]
    del crops[key]
    with pytest.raises(ValueError, match="missing crop"):
        _write(tmp_path, pairs, crops)
    assert list(tmp_path.iterdir()) == []


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    twin = PairRecord({**pairs[2].row, "valid_fraction": 0.5}, pairs[2].flow, pairs[2].valid)
    with pytest.raises(ValueError, match="share the key"):
        _write(tmp_path, [*pairs, twin], crops)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("estimator"), r"missing columns \['estimator'\]"),
        (lambda r: r.update(crop_a_index=0), r"unexpected columns \['crop_a_index'\]"),
        (lambda r: r.update(colour="red"), r"unexpected columns \['colour'\]"),
    ],
)
def test_malformed_rows_are_refused(tmp_path: Path, change, message: str) -> None:
    pairs, crops = _pairs_and_crops()
    row = dict(pairs[0].row)
    change(row)
    with pytest.raises(ValueError, match=message):
        _write(tmp_path, [PairRecord(row, pairs[0].flow, pairs[0].valid), *pairs[1:]], crops)
    assert list(tmp_path.iterdir()) == []


def test_wrong_array_shape_is_refused(tmp_path: Path) -> None:
    pairs, crops = _pairs_and_crops()
    bad = PairRecord(pairs[0].row, pairs[0].flow[:, :, :1], pairs[0].valid)
    with pytest.raises(ValueError):
        _write(tmp_path, [bad, *pairs[1:]], crops)
    assert list(tmp_path.iterdir()) == []


def test_writer_columns_are_the_schema_rest() -> None:
    from dptrack_pipeline.shards.schema import load_parquet_schema

    schema = load_parquet_schema("pairs")
    caller = set(_row("v", 0, 1, 0, BOX, BOX))
    assert caller | set(WRITER_COLUMNS) == set(schema.names)
    assert caller.isdisjoint(WRITER_COLUMNS)


# --------------------------------------------------------------------------- whole folder


def _counters(**overrides: int) -> dict[str, int]:
    values = dict.fromkeys(REQUIRED_PAIRS_COUNTERS, 0)
    values.update(
        videos_in=2,
        videos_planned=2,
        frames_in_videos=7,
        frames_decoded=7,
        flows_computed=20,
        flows_needed=20,
        pairs_planned=20,
        pairs_written=19,
        pairs_rejected=1,
    )
    values["rejected.frame_missing"] = 1
    values.update(overrides)
    return values


REJECT = {
    "reason": "frame_missing",
    "detail": "partner frame 5: image file not found",
    "stage": "decode",
    "annotation_id": -1,
    "video_id": "b",
    "frame_id": 4,
    "track_id": 0,
    "offset": 1,
}


def _build_folder(out: Path, counters: dict[str, int] | None = None) -> dict:
    """Two shards: video "a" in shard 0, video "b" in shard 1 with the one reject."""
    out.mkdir(parents=True, exist_ok=True)
    pairs, crops = _pairs_and_crops()
    files = []
    for shard, video in enumerate(("a", "b")):
        mine = [p for p in pairs if p.row["video_id"] == video]
        files += write_pairs_shard(str(out), shard, 2, mine, crops, S)
        files.append(write_rejects_shard(str(out), shard, 2, [REJECT] if video == "b" else []))
    info = build_dataset_info(
        kind=KIND_PAIRS,
        files=files,
        counters=counters or _counters(),
        estimator="opencv_dis",
        estimator_params={"preset": "medium"},
        fb_threshold=5.0,
        offsets=[2, -1, 1, -2],
        crop_size=S,
        num_shards=2,
        mode="direct",
        stride=1,
        config={"max_offset": 2, "mode": "direct"},
    )
    write_dataset_info(str(out), info)
    return info


@pytest.fixture
def pairs_folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    _build_folder(out)
    return out


def test_folder_verifies_and_reads_back(pairs_folder: Path) -> None:
    assert verify_output(str(pairs_folder)) == []
    table = read_pairs(str(pairs_folder))
    assert table.num_rows == 19
    assert table.column("video_id").to_pylist()[:2] == ["a", "a"]
    assert set(table.column("dense_file").to_pylist()) == {
        "dense-00000-of-00002.h5",
        "dense-00001-of-00002.h5",
    }
    subset = read_pairs(str(pairs_folder), columns=["frame_a", "offset"])
    assert subset.column_names == ["frame_a", "offset"]


def test_manifest_contents(pairs_folder: Path) -> None:
    info = json.loads((pairs_folder / "dataset_info.json").read_text())
    assert dataset_info_errors(info) == []
    assert info["kind"] == KIND_PAIRS
    assert (info["mode"], info["stride"], info["crop_size"], info["num_shards"]) == (
        "direct",
        1,
        S,
        2,
    )
    assert info["offsets"] == [-2, -1, 1, 2]
    assert info["schemas"] == {"pairs": 1, "dense": 2, "rejects": 1}
    assert info["totals"] == {"pairs": 19, "dense": 2 + 10, "rejects": 1}
    assert [f["file"] for f in info["files"]] == sorted(f["file"] for f in info["files"])
    assert len(info["files"]) == 6
    assert "crop B" in info["flow_convention"] and "crop_a_index" in info["pairs_convention"]


def test_manifest_is_deterministic(tmp_path: Path) -> None:
    _build_folder(tmp_path / "one")
    _build_folder(tmp_path / "two")
    for path in sorted((tmp_path / "one").iterdir()):
        assert path.read_bytes() == (tmp_path / "two" / path.name).read_bytes(), path.name


def test_flipped_byte_is_reported(pairs_folder: Path) -> None:
    path = pairs_folder / "dense-00001-of-00002.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "dense-00001-of-00002.h5: SHA-256 differs from dataset_info.json" in verify_output(
        str(pairs_folder)
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"pairs_written": 18},
            "counters do not add up: pairs_planned 20 != pairs_written 18 + pairs_rejected 1",
        ),
        (
            {"videos_rejected": 1},
            "counters do not add up: videos_in 2 != videos_planned 2 + videos_rejected 1",
        ),
        (
            {"people_in": 3, "people_used": 1},
            "counters do not add up: people_in 3 != people_used 1 + people_rejected 0",
        ),
    ],
)
def test_counters_that_do_not_add_up_are_reported(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    out = tmp_path / "out"
    _build_folder(out, _counters(**overrides))
    problems = verify_output(str(out))
    assert message in problems
    # A changed pairs_written also disagrees with the rows of the pair shards, a changed
    # videos_rejected with the rows of the reject shards; people_in is not a row count.
    row_counters = {"pairs_written", "videos_rejected"}
    assert len(problems) == (2 if row_counters & set(overrides) else 1), problems


def test_pairs_written_must_match_the_rows_on_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build_folder(out, _counters(pairs_planned=31, pairs_written=30, pairs_rejected=1))
    problems = verify_output(str(out))
    assert any(
        p.startswith("counters do not add up: counters say pairs_written = 30, the pairs files")
        for p in problems
    )


def test_manifest_without_a_required_counter_is_refused(tmp_path: Path) -> None:
    counters = _counters()
    del counters["flows_needed"]
    with pytest.raises(ValueError, match="flows_needed"):
        _build_folder(tmp_path / "out", counters)


def test_hand_edited_manifest_is_reported(pairs_folder: Path) -> None:
    path = pairs_folder / "dataset_info.json"
    info = json.loads(path.read_text())
    info["mode"] = "sideways"
    info["counters"]["pairs_rejected"] = 2
    path.write_text(json.dumps(info))
    problems = verify_output(str(pairs_folder))
    assert any(p.startswith("dataset_info.json: mode:") for p in problems)
    assert "counters do not add up: pairs_planned 20 != pairs_written 19 + pairs_rejected 2" in (
        problems
    )


def test_missing_pairs_shard_is_reported(pairs_folder: Path) -> None:
    (pairs_folder / "pairs-00000-of-00002.parquet").unlink()
    assert verify_output(str(pairs_folder)) == ["missing shard pairs-00000-of-00002.parquet"]


def _rewrite_column(path: Path, column: str, values) -> None:
    table = pq.read_table(path)
    index = table.schema.get_field_index(column)
    table = table.set_column(index, table.schema.field(column), pa.array(values))
    pq.write_table(table, path)


def test_bad_indices_are_reported(pairs_folder: Path) -> None:
    path = pairs_folder / "pairs-00001-of-00002.parquet"
    table = pq.read_table(path)
    crop_b = table.column("crop_b_index").to_numpy().copy()
    crop_b[0] = 10  # dense-00001 holds 10 crops: 0..9
    _rewrite_column(path, "crop_b_index", crop_b)
    flow = table.column("flow_index").to_numpy().copy()
    flow[:2] = [-1, 17]  # 17 flows: 0..16
    _rewrite_column(path, "flow_index", flow)
    offset = table.column("offset").to_numpy().copy()
    offset[3] = 0
    _rewrite_column(path, "offset", np.asarray(offset, np.int32))
    problems = verify_output(str(pairs_folder))
    name = "pairs-00001-of-00002.parquet"
    dense = "dense-00001-of-00002.h5"
    assert f"{name}: 1 rows have crop_b_index outside [0, 10) of {dense}" in problems
    assert f"{name}: 2 rows have flow_index outside [0, 17) of {dense}" in problems
    assert f"{name}: 1 rows have offset 0" in problems
    assert f"{name}: SHA-256 differs from dataset_info.json" in problems


def test_pairs_rows_against_the_instances_schema_are_reported(pairs_folder: Path) -> None:
    # a pairs folder is checked against pairs.v1: an instances-shaped file in its place fails
    from dptrack_pipeline.shards.schema import load_parquet_schema

    path = pairs_folder / "pairs-00000-of-00002.parquet"
    pq.write_table(load_parquet_schema("instances").empty_table(), path)
    problems = "\n".join(verify_output(str(pairs_folder)))
    assert "pairs-00000-of-00002.parquet does not match schema pairs.v1" in problems
