"""The README's reference tables of every output file, counter and reject reason, from ``schemas/``.

``schemas/`` is the single source of truth; the README's "Reference" section is this module's
output (``tests/test_docs.py`` fails when they differ), so a schema change comes with its docs:

    python -m dptrack_pipeline.shards.reference   # prints the section's tables (Markdown)
"""

from __future__ import annotations

from dptrack_pipeline.shards.schema import load_document, load_json_schema

PARQUET_TABLES = (
    ("instances", "`instances-*.parquet`: one row per person per frame"),
    ("pairs", "`pairs-*.parquet`: one row per directed pair and person"),
    ("rejects", "`rejects-*.parquet`: one row per input set aside (both jobs)"),
)
COUNTER_TABLES = (("run", "dataset_info"), ("pairs", "pairs_info"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _type(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def reference_markdown() -> str:
    """The tables, each after a ``<!-- table: ... -->`` marker (see ``tests/test_docs.py``)."""
    out: list[str] = []
    for name, title in PARQUET_TABLES:
        doc = load_document(name)
        out += [f"**{title}** (`schemas/{name}.v{doc['version']}.json`)", ""]
        out += [f"<!-- table: columns {name} -->", "| column | type | unit | meaning |"]
        out.append("|---|---|---|---|")
        for c in doc["columns"]:
            unit = c.get("unit", "")
            out.append(
                f"| `{c['name']}` | {_type(c['type'])} | {unit} | {_cell(c['description'])} |"
            )
        out.append("")
    doc = load_document("dense")
    out += [f"**`dense-*.h5`** (`schemas/dense.v{doc['version']}.json`): N crops, M flows, S the "
            "crop size", "", "<!-- table: datasets dense -->"]  # fmt: skip
    out += ["| dataset | dtype | shape | meaning |", "|---|---|---|---|"]
    for d in doc["datasets"]:
        shape = ", ".join(map(str, d["shape"]))
        out.append(f"| `{d['name']}` | {d['dtype']} | ({shape}) | {_cell(d['description'])} |")
    out.append("")
    for kind, schema in COUNTER_TABLES:
        counters = load_json_schema(schema)["properties"]["counters"]
        out += [f"**`{kind}` counters** (`dataset_info.json` → `counters`; "
                f"`schemas/{schema}.v1.json`)", "", f"<!-- table: counters {kind} -->"]  # fmt: skip
        out += ["| counter | counts |", "|---|---|"]
        for name, spec in counters["properties"].items():
            required = " (required)" if name in counters["required"] else ""
            out.append(f"| `{name}` | {_cell(spec['description'])}{required} |")
        for spec in counters.get("patternProperties", {}).values():
            out.append(f"| `rejected.<reason>` | {_cell(spec['description'])} |")
        out.append("")
    doc = load_document("rejects")
    out += ["**Reject stages and reasons** (`schemas/rejects.v1.json` → `stages`, `reasons`; "
            "loaded by `dptrack_pipeline/rejects.py`)", "", "<!-- table: stages -->"]  # fmt: skip
    out += ["| stage | where |", "|---|---|"]
    out += [f"| `{s['stage']}` | {_cell(s['means'])} |" for s in doc["stages"]]
    out += ["", "<!-- table: reasons -->", "| reason | stage | job | means |", "|---|---|---|---|"]
    for r in doc["reasons"]:
        stages, jobs = ", ".join(r["stages"]), ", ".join(r["jobs"])
        out.append(f"| `{r['reason']}` | {stages} | {jobs} | {_cell(r['means'])} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(reference_markdown(), end="")
