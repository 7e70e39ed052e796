"""Choose the point checks by measurement: precision and recall of every setting, per estimator.

For each estimator (OpenCV DIS and Farneback, the CPU estimators; FlowNet2 needs a GPU and the
public weights), on the six shared MPI-Sintel pairs (pooled, and each), Middlebury RubberWhale
and a synthetic set rendered here: the precision (kept points within 3 px of the truth) and
recall (visible points kept) of the forward-backward threshold from 1 to 5 px alone, and with the
photometric and chain checks; the AUC of each score; and the chosen default (lowest wrong-label
rate on the pooled Sintel pairs at recall >= 0.8x that of 5 px alone). The logic is
:mod:`dptrack_pipeline.perf.checks`; this script runs it and prints Markdown tables.

    python benchmarks/sweep_checks.py [--estimators dis farneback] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.flow.registry import create_estimator  # noqa: E402
from dptrack_pipeline.perf import checks as sweep  # noqa: E402
from dptrack_pipeline.propagate.checks import MEASURED, PAPER, Checks  # noqa: E402
from dptrack_pipeline.synth.dataset import generate_dataset  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def describe(checks: Checks) -> str:
    parts = [f"FB {checks.fb_threshold:g} px"]
    if checks.photometric is not None:
        parts.append(f"ZNCC >= {checks.photometric:g}")
    if checks.chain is not None:
        parts.append(f"chain {checks.chain:g} px")
    return " + ".join(parts)


def row(label: str, checks: Checks, datasets: dict[str, list]) -> dict:
    out = {"setting": label, "checks": checks.to_dict()}
    for name, points in datasets.items():
        precision, recall = sweep.precision_recall(points, checks)
        out[name] = {"precision": precision, "recall": recall}
    return out


def markdown(rows: list[dict], names: list[str]) -> str:
    head = "| setting | " + " | ".join(f"{n} precision | {n} recall" for n in names) + " |"
    rule = "|---|" + "---|---|" * len(names)
    lines = [head, rule]
    for r in rows:
        cells = [f"{r[n]['precision']:.3f} | {r[n]['recall']:.3f}" for n in names]
        lines.append(f"| {r['setting']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--estimators", nargs="+", default=["dis", "farneback"])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder [a temp dir]")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sweep_checks_"))
    synth = work / "synth"
    if not (synth / "annotations.json").exists():
        generate_dataset(str(synth), videos=3, frames=24, seed=0, progress=False)
    report: dict = {}
    for name in args.estimators:
        estimator = create_estimator(name)
        sintel = sweep.sintel_points(args.data, estimator)
        datasets = {
            "Sintel (6 pairs)": sintel,
            "RubberWhale": [sweep.middlebury_points(args.data, estimator)],
            "synthetic": sweep.synth_points(synth, name, work / f"run_{name}"),
        }
        chosen, table = sweep.choose(sintel, sweep.settings_grid())
        base = sweep.precision_recall(sintel, PAPER)
        best_no_chain = sweep.choose(sintel, [c for c in sweep.settings_grid() if c.chain is None])[
            0
        ]
        rows = [row(f"FB {t:g} px alone", Checks(t), datasets) for t in sweep.FB_THRESHOLDS]
        rows.append(row(f"best without chain: {describe(best_no_chain)}", best_no_chain, datasets))
        rows.append(row(f"**chosen: {describe(chosen)}**", chosen, datasets))
        aucs = {n: sweep.score_aucs(points) for n, points in datasets.items()}
        chosen_precision, chosen_recall = sweep.precision_recall(sintel, chosen)
        wrong = 1.0 - chosen_precision
        report[name] = {
            "chosen": chosen.to_dict(),
            "in_code": MEASURED.get(name, PAPER).to_dict(),
            "fb5_sintel": {"precision": base[0], "recall": base[1]},
            "rows": rows,
            "aucs": aucs,
            "grid": [{"checks": c.to_dict(), "precision": p, "recall": r} for c, p, r in table],
        }
        print(f"\n### {name}\n")
        print(markdown(rows, list(datasets)))
        print(
            f"\nwrong-label rate on Sintel: FB 5 px {1 - base[0]:.3f}, chosen {wrong:.3f} "
            f"({(1 - base[0]) / wrong:.2f}x lower), recall {chosen_recall / base[1]:.2f}x FB 5 px"
        )
        print("\nAUC (within 3 px vs beyond 10 px):")
        for dataset, values in aucs.items():
            print(f"  {dataset}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
        per_pair = [
            f"{p.name}: FB5 {sweep.precision_recall([p], PAPER)[0]:.3f}, chosen "
            f"{sweep.precision_recall([p], chosen)[0]:.3f}"
            for p in sintel
        ]
        print("\nprecision per Sintel pair: " + "; ".join(per_pair))
        if MEASURED.get(name) != chosen:
            print(f"NOTE: propagate/checks.py MEASURED[{name!r}] differs from the chosen setting")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
