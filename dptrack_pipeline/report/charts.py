"""The report's charts: matplotlib figures rendered to PNG bytes in memory.

Each chart draws numbers :mod:`~dptrack_pipeline.report.figures` (or ``pairs_figures``) already
computed, so the picture and ``--json`` show the same values. Figures are made with
:class:`matplotlib.figure.Figure` on the Agg canvas directly: no pyplot global state, no display,
no backend switch, safe to call from any thread. PNGs carry no ``Software`` metadata, so the same
numbers give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110
DROP_REASONS = ("fb", "outside", "photo", "chain")
DROP_COLOURS = {"fb": "#d62728", "outside": "#7f7f7f", "photo": "#ff7f0e", "chain": "#9467bd"}
KEPT_COLOUR = "#2ca02c"


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (tight layout and bounding box, white background)."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(
        buffer, format="png", facecolor="white", bbox_inches="tight", metadata={"Software": None}
    )
    return buffer.getvalue()


def kept_fraction_chart(offsets: Sequence[dict[str, Any]]) -> bytes:
    """Stacked bars per offset: the fraction of points kept and dropped by each reason ("other":
    drops the rows do not attribute to a reason)."""
    rows = [r for r in offsets if r["offset"] != 0 and r.get("points_in")]
    figure = _figure(5.6, 2.9)
    axes = figure.add_subplot()
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    parts = [("kept", "points_kept", KEPT_COLOUR)] + [
        (reason, f"points_dropped_{reason}", DROP_COLOURS[reason]) for reason in DROP_REASONS
    ]
    for label, key, colour in parts:
        share = np.array([r.get(key, 0) / r["points_in"] for r in rows], dtype=np.float64)
        if label != "kept" and not share.any():
            continue
        axes.bar(x, share, bottom=bottom, color=colour, label=label, width=0.7)
        bottom += share
    rest = np.clip(1.0 - bottom, 0.0, 1.0)
    if (rest > 1e-6).any():  # drops the rows do not split by reason (e.g. older shards)
        axes.bar(x, rest, bottom=bottom, color="#dddddd", label="other", width=0.7)
    for i, r in enumerate(rows):
        axes.text(
            i,
            r["kept_ratio"] / 2,
            f"{r['kept_ratio']:.0%}",
            ha="center",
            va="center",
            fontsize=8,
            color="white",
        )
    axes.set_xticks(x, [f"{r['offset']:+d}" for r in rows])
    axes.set_xlabel("offset (frames)")
    axes.set_ylabel("fraction of points")
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    axes.set_title("points kept and dropped, by offset", fontsize=10)
    return png_bytes(figure)


def histogram_chart(
    distributions: Sequence[dict[str, Any]], key: str, xlabel: str, title: str
) -> bytes:
    """One step line per ``|offset|``: the share of kept points in each bin of ``key``
    (``fb_error_px`` or ``photo_zncc`` of :func:`~dptrack_pipeline.report.figures.
    distributions`), with its median dashed."""
    figure = _figure(5.0, 2.9)
    axes = figure.add_subplot()
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    for index, entry in enumerate(distributions):
        h = entry[key]
        if not h["n"]:
            continue
        colour = colours[index % len(colours)]
        share = np.asarray(h["counts"], np.float64) / h["n"]
        edges = np.asarray(h["edges"])
        axes.stairs(
            share,
            edges,
            color=colour,
            linewidth=1.4,
            label=f"|k| = {entry['abs_offset']} (n={h['n']}, median {h['median']:.2f})",
        )
        axes.axvline(h["median"], color=colour, linestyle="--", linewidth=0.8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("share of kept points")
    axes.set_title(title, fontsize=10)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, frameon=False)
    return png_bytes(figure)


def pairs_offset_chart(offsets: Sequence[dict[str, Any]]) -> bytes:
    """Bars of the mean valid fraction per offset, with the median flow length on a second
    axis."""
    figure = _figure(5.6, 2.9)
    axes = figure.add_subplot()
    x = np.arange(len(offsets))
    axes.bar(
        x,
        [r["mean_valid_fraction"] for r in offsets],
        color=KEPT_COLOUR,
        width=0.7,
        label="mean valid fraction",
    )
    axes.set_ylim(0, 1)
    axes.set_ylabel("mean valid fraction")
    axes.set_xticks(x, [f"{r['offset']:+d}" for r in offsets])
    axes.set_xlabel("offset (frames)")
    motion = axes.twinx()
    motion.plot(
        x,
        [r["median_flow_crop_px"] for r in offsets],
        "o-",
        color="#1f77b4",
        label="median flow (crop px)",
    )
    motion.set_ylabel("median flow (crop px)")
    motion.set_ylim(bottom=0)
    handles = axes.get_legend_handles_labels()[0] + motion.get_legend_handles_labels()[0]
    axes.legend(
        handles=handles,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=2,
        frameon=False,
    )
    axes.set_title("valid pixels and motion, by offset", fontsize=10)
    return png_bytes(figure)
