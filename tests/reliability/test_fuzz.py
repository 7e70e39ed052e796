"""A short seeded fuzz loop: mutate a valid annotation file one field at a time (replace with a
hostile value, or delete), run ``run`` on it, and check what must hold for any input: no
traceback, counters that reconcile with each other and with the files, and every DensePose
annotation of the input accounted for (propagated from, or rejected with a reason)."""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.reliability.conftest import run_job, write_json

HOSTILE: tuple[Any, ...] = (
    None, -1, 0, 1e308, -1e308, math.nan, math.inf, "x", "", [], {}, [1, 2], [[1]], True,
    [math.nan] * 4, 2**63, -(2**63), "../../etc/passwd", [0.5] * 5000, {"counts": "?"},
)  # fmt: skip
"""Values a field may be replaced with (plus deleting it)."""

ROUNDS = 32


def _mutate(doc: dict[str, Any], rng: random.Random) -> str:
    """Change one field of one image or annotation record in place; return what was done."""
    dense = [a for a in doc["annotations"] if isinstance(a, dict) and "dp_x" in a]
    labelled = [a.get("image_id") for a in dense]
    pools = [
        dense,  # mostly the labels themselves and the frames they are on
        dense,
        [i for i in doc["images"] if i.get("id") in labelled] or doc["images"],
        doc["images"],
        doc["annotations"],
    ]
    records = rng.choice([p for p in pools if p])
    index = rng.randrange(len(records))
    record = records[index]
    key = rng.choice(sorted(record))
    if rng.random() < 0.15:
        del record[key]
        return f"deleted {key} of record {index}"
    value = copy.deepcopy(rng.choice(HOSTILE))
    if isinstance(record[key], list) and record[key] and rng.random() < 0.5:
        position = rng.randrange(len(record[key]))
        record[key][position] = value
        return f"{key}[{position}] of record {index} = {value!r:.40}"
    record[key] = value
    return f"{key} of record {index} = {value!r:.40}"


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_fuzzed_annotation_file_never_crashes_and_is_accounted_for(
    seed: int, synth: Path, annotations: dict, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    done = [_mutate(annotations, rng) for _ in range(rng.randint(1, 3))]
    path = write_json(tmp_path / "a.json", annotations)
    out = run_job(
        "run", tmp_path / "out", "--annotations", path, "--frames-root", synth, "--offsets", "1"
    )
    assert out.info is not None, (done, out.output)
    counters = out.info["counters"]
    assert counters["annotations_in"] == len(annotations["annotations"]), done
    sources = set()
    for f in (tmp_path / "out").glob("instances-*.parquet"):
        table = pq.read_table(f, columns=["annotation_id", "offset"]).to_pylist()
        sources |= {r["annotation_id"] for r in table if r["offset"] == 0}
    rejected = {r["annotation_id"] for r in out.rejects}
    ids = [a.get("id") for a in annotations["annotations"] if isinstance(a, dict)]
    for ann in annotations["annotations"]:
        if not isinstance(ann, dict) or "dp_x" not in ann:
            continue
        aid = ann.get("id")
        if isinstance(aid, int) and not isinstance(aid, bool) and ids.count(aid) == 1:
            assert aid in sources | rejected, (done, aid)
