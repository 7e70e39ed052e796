"""The README agrees with the schemas and the code.

The README's reference tables (each preceded by a ``<!-- table: ... -->`` marker) must name
exactly the columns, HDF5 datasets (with their dtypes), counters, reject stages and reject reasons
of ``schemas/``, and every file path the README mentions must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dptrack_pipeline import rejects
from dptrack_pipeline.shards.schema import load_document, load_json_schema

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
MARKER = re.compile(r"<!-- table: ([a-z_ ]+) -->\n((?:\|.*\n)+)")


def _tables() -> dict[str, list[list[str]]]:
    """Marked tables: marker -> body rows as lists of cells (header and rule dropped)."""
    out = {}
    for match in MARKER.finditer(README):
        rows = [line.strip().strip("|").split(" | ") for line in match.group(2).splitlines()]
        out[match.group(1).strip()] = [[c.strip() for c in row] for row in rows[2:]]
    return out


TABLES = _tables()


def _names(marker: str) -> list[str]:
    assert marker in TABLES, f"README lacks the table marked <!-- table: {marker} -->"
    names = []
    for row in TABLES[marker]:
        found = re.fullmatch(r"`([^`]+)`", row[0])
        assert found, f"table {marker!r}: first cell {row[0]!r} is not a `name`"
        names.append(found.group(1))
    return names


def _same(marker: str, documented: list[str], expected: list[str]) -> None:
    missing = [n for n in expected if n not in documented]
    unknown = [n for n in documented if n not in expected]
    assert not missing and not unknown, (
        f"README table {marker!r}: omits {missing}, names what the schemas lack: {unknown}"
    )
    assert len(set(documented)) == len(documented), f"table {marker!r} repeats a name"


@pytest.mark.parametrize("schema", ["instances", "pairs", "rejects"])
def test_column_tables_match_the_schemas(schema: str) -> None:
    expected = [c["name"] for c in load_document(schema)["columns"]]
    _same(f"columns {schema}", _names(f"columns {schema}"), expected)


def test_dense_table_matches_the_schema_with_dtypes() -> None:
    datasets = load_document("dense")["datasets"]
    _same("datasets dense", _names("datasets dense"), [d["name"] for d in datasets])
    dtypes = {d["name"]: d["dtype"] for d in datasets}
    for row in TABLES["datasets dense"]:
        name = row[0].strip("`")
        assert row[1] == dtypes[name], f"README says {name} is {row[1]}, the schema {dtypes[name]}"


@pytest.mark.parametrize(("kind", "schema"), [("run", "dataset_info"), ("pairs", "pairs_info")])
def test_counter_tables_match_the_manifest_schemas(kind: str, schema: str) -> None:
    counters = load_json_schema(schema)["properties"]["counters"]
    expected = list(counters["properties"])
    if "patternProperties" in counters:
        expected.append("rejected.<reason>")
    assert set(counters["required"]) <= set(counters["properties"])
    _same(f"counters {kind}", _names(f"counters {kind}"), expected)


def test_reject_tables_match_the_reject_table() -> None:
    _same("stages", _names("stages"), list(rejects.STAGES))
    _same("reasons", _names("reasons"), list(rejects.REASONS))
    for row in TABLES["reasons"]:
        reason = rejects.REASONS[row[0].strip("`")]
        assert row[1] == ", ".join(reason.stages) and row[2] == ", ".join(reason.jobs), row


def test_reference_section_is_the_generated_one() -> None:
    from dptrack_pipeline.shards.reference import reference_markdown

    assert reference_markdown() in README, (
        "README's reference tables differ from schemas/: regenerate them with "
        "python -m dptrack_pipeline.shards.reference"
    )


def test_every_path_the_readme_names_exists() -> None:
    roots = "dptrack_pipeline|pipelines|schemas|tests|benchmarks"
    paths = set(re.findall(rf"`((?:{roots})/[^`\s:]*)", README))
    missing = sorted(p for p in paths if not (REPO / p.rstrip("/")).exists())
    assert not missing, f"README names paths that do not exist: {missing}"


def test_every_function_the_code_map_names_exists() -> None:
    """``path.py:name`` in the README names a function or class defined in that module (paths
    relative to the repository or to ``dptrack_pipeline/``)."""
    named = set(re.findall(r"`([\w/]+\.py):(\w+)`", README))
    assert len(named) >= 10, "the README's code map names too few functions to check"
    wrong = []
    for path, name in named:
        file = next(
            (f for f in (REPO / path, REPO / "dptrack_pipeline" / path) if f.is_file()), None
        )
        if file is None:
            wrong.append(f"{path} (no such module)")
        elif not re.search(rf"^(?:def|class) {name}\b|^{name} = ", file.read_text(), re.M):
            wrong.append(f"{path}:{name}")
    assert not wrong, f"README's code map names what does not exist: {sorted(wrong)}"
