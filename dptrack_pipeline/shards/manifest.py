"""What does ``dataset_info.json`` say about an output folder, and is it well formed?

The manifest is written once, after every shard, and records what a user needs to trust and
reproduce the folder: the format and code versions, the library versions that shaped the bytes and
the numbers (Beam, pyarrow, h5py/HDF5, OpenCV, NumPy), the flow estimator with its parameters, the
forward-backward threshold, the offsets, the crop size, the pipeline configuration, the Beam
counters, the coordinate conventions spelled out as text (so the folder documents itself), and one
entry per shard file with its row count, size and SHA-256.

Its shape is ``schemas/dataset_info.v1.json`` (JSON Schema draft 2020-12), checked with
:mod:`jsonschema` on every write. It is **deterministic**: no timestamps, hosts or absolute paths
are added, files are sorted by name, keys are sorted and the indentation fixed, so two runs over the
same input produce the same bytes and a diff of two manifests shows only real changes. Keeping
``config`` and ``extra`` free of absolute paths and times is the caller's side of that contract.

Beam's version is read from the installed distribution's metadata unless Beam is already imported:
importing :mod:`apache_beam` just for ``apache_beam.version`` costs seconds, and both give the same
string.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from typing import Any

import jsonschema
import numpy as np

from dptrack_pipeline.shards import naming
from dptrack_pipeline.shards.atomic import atomic_write, is_remote, join_path
from dptrack_pipeline.shards.counters import KIND_PAIRS, KIND_RUN
from dptrack_pipeline.shards.schema import current_version, load_json_schema

CONVENTIONS = {
    "dp_x_convention": "pixel_x = bbox_x + dp_x / 256 * bbox_w (same for y)",
    "dp_masks_convention": (
        "dp_masks: 14 COCO compressed RLEs (size [256, 256]) on a grid spanning bbox; grid cell "
        "(i, j) (row, column) has its centre at pixel (bbox_x + (j + 0.5) / 256 * bbox_w, "
        "bbox_y + (i + 0.5) / 256 * bbox_h)"
    ),
    "box_convention": (
        "bbox and crop_box are (x, y, w, h) in pixels of the frame the row is about; pixel centres "
        "on integer coordinates (the centre of column c, row r is (x, y) = (c, r))"
    ),
    "keypoints_convention": (
        "keypoints: 51 values = 17 joints x (x, y, v) in frame pixels; "
        "v = 0 means absent or dropped"
    ),
    "flow_convention": (
        "flows[k]: (S, S, 2) float32 (stored float16), channel 0 = x, from the source crop to "
        "the target crop in target-crop pixels: the value at source-crop pixel (c, r) is its "
        "position in the target crop minus (c, r) (crop pixel centres on integer coordinates); "
        "valid[k] is 1 where the "
        "forward-backward check passed and the target lies inside the frame"
    ),
    "crop_convention": (
        "crops[i]: the row's crop_box resampled to S x S RGB uint8; crop pixel (c, r) has its "
        "centre at frame point (crop_x + (c + 0.5) / S * crop_w, crop_y + (r + 0.5) / S * crop_h)"
    ),
}

PAIRS_CONVENTIONS = {
    "box_convention": CONVENTIONS["box_convention"]
    .replace("bbox and crop_box are", "crop_box_a and crop_box_b are")
    .replace("the frame the row is about", "frame_a and frame_b"),
    "crop_convention": (
        "crops[i]: a crop box resampled to S x S RGB uint8; crop pixel (c, r) has its centre at "
        "frame point (crop_x + (c + 0.5) / S * crop_w, crop_y + (r + 0.5) / S * crop_h)"
    ),
    "flow_convention": (
        "flows[k]: (S, S, 2) float32 (stored float16), channel 0 = x, from crop A to crop B in "
        "crop-B pixels: the value at crop-A pixel (c, r) is the position of the same point in "
        "crop B minus (c, r); so crop B sampled at p + flow(p) looks like crop A at p where "
        "valid[k] is 1 (forward-backward check passed, point inside both frames and inside "
        "crop B); stored rounded to 1/16 crop px and 0 where not valid"
    ),
    "pairs_convention": (
        "one row per directed pair (frame_a -> frame_b = frame_a + offset) and person; "
        "crop A = crops[crop_a_index] (frame_a over crop_box_a), crop B = crops[crop_b_index] "
        "(frame_b over crop_box_b), flow and valid = flows/valid[flow_index]"
    ),
}

_KINDS = {
    KIND_RUN: (naming.PREFIX_INSTANCES, CONVENTIONS, "dataset_info"),
    KIND_PAIRS: (naming.PREFIX_PAIRS, PAIRS_CONVENTIONS, "pairs_info"),
}
"""Per folder kind: the prefix of its index tables, its conventions, its manifest schema."""

_FILE_KEYS = ("file", "kind", "rows", "bytes", "sha256")


def library_versions() -> dict[str, str]:
    """Versions of the code and libraries that determine the output."""
    import cv2
    import h5py
    import pyarrow

    import dptrack_pipeline

    if "apache_beam" in sys.modules:
        import apache_beam.version

        beam_version = apache_beam.version.__version__
    else:
        beam_version = importlib.metadata.version("apache-beam")
    return {
        "dptrack": dptrack_pipeline.__version__,
        "apache_beam": beam_version,
        "pyarrow": pyarrow.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def to_json_value(value: Any, where: str = "value") -> Any:
    """``value`` with numpy scalars/arrays, tuples and sets turned into plain JSON types.

    Raises:
        ValueError: for NaN/inf floats or non-string dict keys (JSON has neither).
        TypeError: for objects with no JSON form.
    """
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be str, got {key!r}")
            out[key] = to_json_value(item, f"{where}.{key}")
        return out
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted(to_json_value(v, where) for v in value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} cannot be written to JSON")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: {type(value).__name__} has no JSON form")


def _file_entry(info: Mapping[str, Any], num_shards: int) -> dict[str, Any]:
    missing = [k for k in _FILE_KEYS if k not in info]
    if missing:
        raise ValueError(f"file entry {dict(info)} lacks {missing}")
    prefix, index, count, ext = naming.parse_shard_filename(str(info["file"]))
    if os.path.basename(str(info["file"])) != info["file"]:
        raise ValueError(f"file entry names {info['file']!r}: expected a bare file name")
    if prefix != info["kind"] or naming.EXT_FOR_PREFIX.get(prefix) != ext:
        raise ValueError(f"file {info['file']!r} does not match its kind {info['kind']!r}")
    if count != num_shards:
        raise ValueError(f"file {info['file']!r} is one of {count} shards, expected {num_shards}")
    entry = {k: to_json_value(info[k], k) for k in _FILE_KEYS}
    entry.update(shard_index=index, num_shards=count)
    return entry


def _entries_and_totals(
    files: list[dict], num_shards: int, kinds: tuple[str, ...]
) -> tuple[list[dict], dict[str, int]]:
    """Manifest file entries sorted by name, and the row total per kind.

    Raises:
        ValueError: a duplicate or inconsistent entry.
    """
    entries = sorted((_file_entry(f, int(num_shards)) for f in files), key=lambda e: e["file"])
    names = [e["file"] for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(
            f"duplicate file entries: {sorted(n for n in names if names.count(n) > 1)}"
        )
    totals = dict.fromkeys(kinds, 0)
    for entry in entries:
        totals[entry["kind"]] += int(entry["rows"])
    return entries, totals


def build_dataset_info(
    *,
    kind: str = KIND_RUN,
    files: list[dict],
    counters: dict[str, int],
    estimator: str,
    estimator_params: dict,
    fb_threshold: float,
    offsets: list[int],
    crop_size: int,
    num_shards: int,
    config: dict,
    extra: dict | None = None,
    **job_fields: Any,
) -> dict:
    """Assemble the manifest of an output folder of either job.

    Args:
        kind: :data:`KIND_RUN` (``schemas/dataset_info.v1.json``) or :data:`KIND_PAIRS`
            (``schemas/pairs_info.v1.json``, which also records ``kind``).
        files: the info dicts returned by the shard writers (``file``, ``kind``, ``rows``,
            ``bytes``, ``sha256``), in any order.
        counters: the summed counters (see :mod:`dptrack_pipeline.shards.counters` for the ones
            each kind requires).
        estimator: registered flow estimator name; estimator_params: its parameters.
        fb_threshold: forward-backward threshold in pixels.
        offsets: offsets (stored sorted).
        crop_size: S; num_shards: shards per kind.
        config: the pipeline configuration (JSON-able, no absolute paths or times).
        extra: free-form additions.
        **job_fields: top-level fields of that kind's schema (``pairs``: ``mode``, ``stride``).

    Returns:
        A JSON-ready dict (validate and write it with :func:`write_dataset_info`).

    Raises:
        ValueError: on an unknown kind, duplicate or inconsistent file entries, duplicate offsets,
            or values JSON cannot hold.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {sorted(_KINDS)}")
    table_prefix, conventions, _ = _KINDS[kind]
    offsets_sorted = sorted(int(o) for o in offsets)
    if len(set(offsets_sorted)) != len(offsets_sorted):
        raise ValueError(f"duplicate offsets in {list(offsets)}")
    kinds = (table_prefix, naming.PREFIX_DENSE, naming.PREFIX_REJECTS)
    entries, totals = _entries_and_totals(files, num_shards, kinds)
    versions = library_versions()
    info = {
        "schema_version": current_version(_KINDS[kind][2]),
        "schemas": {name: current_version(name) for name in kinds},
        "code_version": versions["dptrack"],
        "versions": versions,
        "estimator": str(estimator),
        "estimator_params": to_json_value(dict(estimator_params), "estimator_params"),
        "fb_threshold": float(fb_threshold),
        "offsets": offsets_sorted,
        "crop_size": int(crop_size),
        "num_shards": int(num_shards),
        "config": to_json_value(dict(config), "config"),
        "counters": to_json_value(dict(sorted(counters.items())), "counters"),
        "totals": totals,
        "files": entries,
        **conventions,
        **to_json_value(job_fields, "job_fields"),
        "extra": to_json_value(dict(extra or {}), "extra"),
    }
    if kind != KIND_RUN:
        info["kind"] = kind
    return info


def folder_kind(info: Mapping[str, Any]) -> str:
    """The job that wrote a manifest: :data:`KIND_PAIRS` when it says so, else :data:`KIND_RUN`
    (``run`` manifests predate the ``kind`` field and do not carry it)."""
    return KIND_PAIRS if isinstance(info, Mapping) and info.get("kind") == KIND_PAIRS else KIND_RUN


def table_prefix(info: Mapping[str, Any]) -> str:
    """The prefix of the folder's index tables: ``instances`` (``run``) or ``pairs``."""
    return _KINDS[folder_kind(info)][0]


def dataset_info_errors(info: Mapping[str, Any]) -> list[str]:
    """Every way ``info`` breaks its schema (empty list = valid): ``schemas/pairs_info.v1.json``
    for a ``pairs`` folder (``kind == "pairs"``), else ``schemas/dataset_info.v1.json``."""
    name = _KINDS[folder_kind(info)][2]
    validator_cls = jsonschema.validators.validator_for(load_json_schema(name))
    validator = validator_cls(load_json_schema(name))
    errors = sorted(validator.iter_errors(info), key=lambda e: (list(e.absolute_path), e.message))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors]


def validate_dataset_info(info: Mapping[str, Any]) -> None:
    """Raise :class:`ValueError` listing every schema violation of ``info``."""
    errors = dataset_info_errors(info)
    if errors:
        name = _KINDS[folder_kind(info)][2]
        raise ValueError(f"dataset_info does not match {name}.v1:\n  " + "\n  ".join(errors))


def dataset_info_path(out_dir: str) -> str:
    """Path of ``dataset_info.json`` in ``out_dir``."""
    return join_path(out_dir, naming.DATASET_INFO_FILENAME)


def dumps_dataset_info(info: Mapping[str, Any]) -> str:
    """The exact text written to ``dataset_info.json`` (sorted keys, indent 2, final newline)."""
    return json.dumps(info, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=True) + "\n"


def write_dataset_info(out_dir: str, info: dict) -> str:
    """Validate ``info`` and write it atomically to ``out_dir/dataset_info.json``.

    Returns:
        The path written.

    Raises:
        ValueError: when ``info`` does not match the schema (nothing is written).
    """
    validate_dataset_info(info)
    text = dumps_dataset_info(info)
    path = dataset_info_path(out_dir)
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return path


def read_dataset_info(out_dir: str) -> dict:
    """Read ``out_dir/dataset_info.json`` (not validated; see :func:`dataset_info_errors`)."""
    path = dataset_info_path(out_dir)
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as f:
            return json.loads(f.read().decode("utf-8"))
    with open(path, encoding="utf-8") as f:
        return json.load(f)
