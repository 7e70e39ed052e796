"""schemas/ loads, is documented, and turns into the Arrow schemas the writers use."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest

from dptrack_pipeline.shards import schema as schema_mod
from dptrack_pipeline.shards.schema import (
    arrow_type_to_string,
    current_version,
    load_document,
    load_hdf5_schema,
    load_json_schema,
    load_parquet_schema,
    parse_arrow_type,
    resolve_shape,
    schema_differences,
)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

INSTANCE_COLUMNS = [
    "video_id", "frame_id", "frame_index", "image_file", "image_id", "track_id", "annotation_id",
    "source_frame_id", "source_frame_index", "offset", "bbox", "box_source", "keypoints", "dp_x",
    "dp_y", "dp_I", "dp_U", "dp_V", "dp_source_index", "dp_masks", "crop_box", "dense_file",
    "crop_index", "flow_index", "flow_valid_fraction", "estimator", "fb_threshold", "points_in",
    "points_dropped_fb", "points_dropped_outside",
]  # fmt: skip
INSTANCE_COLUMNS_V2 = [
    *INSTANCE_COLUMNS, "dp_fb_error", "dp_photo", "dp_chain_error", "kp_fb_error", "kp_photo",
    "kp_posetrack_error", "fb_error_median", "photo_median", "kept_fraction", "pckh",
    "points_dropped_photo", "points_dropped_chain",
]  # fmt: skip


def test_every_schema_file_is_json_and_versioned():
    names = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    assert names == [
        "dataset_info.v1.json",
        "dense.v1.json",
        "dense.v2.json",
        "instances.v1.json",
        "instances.v2.json",
        "pairs.v1.json",
        "pairs_info.v1.json",
        "rejects.v1.json",
    ]
    for name in ("instances", "rejects", "dense", "pairs"):
        doc = load_document(name)
        assert doc["name"] == name and doc["version"] == current_version(name)
        assert doc["description"]


def test_instances_v2_appends_the_quality_columns_to_v1():
    v1 = load_document("instances", 1)["columns"]
    v2 = load_document("instances", 2)["columns"]
    assert [c["name"] for c in v1] == INSTANCE_COLUMNS
    assert [c["name"] for c in v2] == INSTANCE_COLUMNS_V2
    assert v2[: len(v1)] == v1  # version-1 columns unchanged, in order
    schema = load_parquet_schema("instances")
    assert schema.metadata[b"dptrack.schema_version"] == b"2"
    assert schema.field("dp_photo").type == pa.list_(pa.float32())
    assert schema.field("pckh").type == pa.float32()
    assert schema.field("dp_fb_error").metadata[b"unit"] == b"pixels"


def test_instances_columns_order_types_and_docs():
    columns = load_document("instances", 1)["columns"]
    assert [c["name"] for c in columns] == INSTANCE_COLUMNS
    for column in columns:
        assert column["description"].strip(), column["name"]
        assert isinstance(column["nullable"], bool)
        parse_arrow_type(column["type"])  # every type string parses
    schema = load_parquet_schema("instances", 1)
    assert schema.names == INSTANCE_COLUMNS
    assert schema.field("bbox").type == pa.list_(pa.float32(), 4)
    assert schema.field("dp_I").type == pa.list_(pa.uint8())
    assert schema.field("dp_masks").type == pa.list_(pa.string())
    assert schema.field("frame_index").type == pa.int32()
    assert schema.field("flow_valid_fraction").type == pa.float32()
    assert schema.field("dp_x").metadata[b"description"].startswith(b"DensePose point x")
    assert schema.metadata[b"dptrack.schema"] == b"instances"


def test_rejects_columns():
    schema = load_parquet_schema("rejects")
    assert schema.names == [
        "reason", "detail", "stage", "annotation_id", "video_id", "frame_id", "track_id", "offset"
    ]  # fmt: skip
    assert schema.field("offset").type == pa.int32()
    assert all(f.metadata[b"description"] for f in schema)


def test_dense_schema_layout():
    doc = load_hdf5_schema("dense")
    by_name = {d["name"]: d for d in doc["datasets"]}
    assert by_name["crops"]["shape"] == ["N", "S", "S", 3] and by_name["crops"]["dtype"] == "uint8"
    assert by_name["flows"]["shape"] == ["M", "S", "S", 2] and by_name["flows"]["dtype"] == "int16"
    assert by_name["valid"]["shape"] == ["M", "S", "B"]  # packed bits, B = ceil(S / 8)
    assert [by_name[n]["encoding"] for n in ("crops", "flows", "valid")] == [
        "row_delta", "fixed_point", "packbits"
    ]  # fmt: skip
    v1 = {d["name"]: d for d in load_hdf5_schema("dense", 1)["datasets"]}
    assert v1["flows"]["dtype"] == "float16" and v1["valid"]["shape"] == ["M", "S", "S"]
    for spec in doc["datasets"]:
        assert spec["chunks"][0] == 1  # one instance per chunk
        assert spec["compression"] == "gzip" and spec["compression_opts"] == 1
        assert spec["description"]
    assert by_name["flows"]["shuffle"] is True
    assert {a["name"] for a in doc["attrs"]} >= {
        "schema_version", "crop_size", "num_crops", "flow_scale"
    }  # fmt: skip
    assert resolve_shape(by_name["crops"]["shape"], {"N": 5, "S": 8}) == (5, 8, 8, 3)
    with pytest.raises(KeyError, match="'M'"):
        resolve_shape(by_name["flows"]["shape"], {"N": 5, "S": 8})


def test_dataset_info_schema_is_valid_draft_2020_12():
    doc = load_json_schema("dataset_info")
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)


@pytest.mark.parametrize(
    "text",
    ["string", "int64", "int32", "float32", "bool", "uint8", "list<float32>", "list<int32>",
     "list<uint8>", "list<string>", "fixed_size_list<float32>[4]", "list<list<int64>>"],
)  # fmt: skip
def test_arrow_type_strings_round_trip(text):
    assert arrow_type_to_string(parse_arrow_type(text)) == text


@pytest.mark.parametrize("text", ["float", "list<float32", "fixed_size_list<float32>[0]", "map"])
def test_bad_arrow_type_strings_fail(text):
    with pytest.raises(ValueError):
        parse_arrow_type(text)


def test_schema_differences_names_every_problem():
    expected = load_parquet_schema("rejects")
    assert schema_differences(expected, expected) == []
    fields = [expected.field(n) for n in expected.names if n != "stage"]
    fields[-1] = pa.field("offset", pa.int64(), nullable=False)
    fields.append(pa.field("bonus", pa.string()))
    problems = schema_differences(pa.schema(fields), expected)
    text = "; ".join(problems)
    assert "missing columns ['stage']" in text
    assert "unexpected columns ['bonus']" in text
    assert "column 'offset' has type int64, expected int32" in text


def test_fallback_to_repo_folder_when_package_is_absent(monkeypatch):
    monkeypatch.setattr(schema_mod, "SCHEMA_PACKAGE", "dptrack_no_such_package")
    schema_mod._load_document.cache_clear()
    try:
        doc = schema_mod.load_document("rejects")
    finally:
        schema_mod._load_document.cache_clear()
    assert doc == json.loads((SCHEMA_DIR / "rejects.v1.json").read_text())
