"""How is the report's HTML put together? Small blocks, every text through :func:`html.escape`.

The page is one self-contained file: styles inline in ``<style>``, images as ``data:image/png``
URIs, no script, no font, nothing fetched. Its Content-Security-Policy (:data:`CSP`) makes the
browser refuse anything else, so a page that tried to load an external resource would show it as
a console error instead of quietly depending on a network. What goes on the page is
:mod:`~dptrack_pipeline.report.pages`.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Only inline styles and data-URI images; no script, no fetch, no font."""

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 0 auto; padding: 1em 2em 3em; max-width: 1320px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.02em; margin: 1.1em 0 0.4em; }
p.note { color: #555; margin: 0.3em 0 0.8em; max-width: 70em; }
p.warn { color: #8a1c1c; font-weight: 600; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code, p code { font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.cols { display: flex; flex-wrap: wrap; gap: 2.5em; align-items: flex-start; }
figure { margin: 0 0 1em; }
figcaption { font-size: 12px; color: #444; max-width: 640px; }
.tile { border: 1px solid #ddd; padding: 6px; background: #fafafa; width: min-content; }
.tile .panels { display: flex; gap: 4px; }
.tile figcaption { max-width: none; }
.tile .panels div { text-align: center; font-size: 11px; color: #555; white-space: nowrap; }
.tile img { display: block; image-rendering: pixelated; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.legend { display: flex; align-items: center; gap: 6px; font-size: 12px; margin: 0.3em 0; }
"""


def text(value: Any) -> str:
    """``value`` as escaped text; numbers shortened, ``None``/NaN as an en dash."""
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def number(value: Any, style: str = "") -> str:
    """A number for a table cell: ``style`` is a format spec (``".1%"``, ``".2f"``) or empty."""
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return "\u2013"
    return html.escape(format(value, style) if style else text(value))


def cell(value: Any, numeric: bool = False) -> str:
    """A ``<td>`` of already escaped HTML."""
    return f'<td class="num">{value}</td>' if numeric else f"<td>{value}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    """A table of escaped cells; columns from ``numeric_from`` on are right-aligned numbers."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(cell(v, i >= numeric_from) for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def value_text(value: Any) -> str:
    """A manifest value for a key/value table: mappings as ``k=v`` lists, lists joined."""
    if isinstance(value, Mapping):
        if not value:
            return "\u2013"
        return "<br>".join(
            f"<code>{html.escape(str(k))}</code> = {value_text(v)}" for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value) if value else "\u2013"
    return text(value)


def key_values(pairs: Mapping[str, Any], title: str | None = None) -> str:
    """A two-column table of names and values (``title`` above it)."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{value_text(v)}</td></tr>" for k, v in pairs.items()
    )
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return f"<div>{heading}<table><tbody>{rows}</tbody></table></div>"


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str, width: int | None = None) -> str:
    """An ``<img>`` of inline PNG bytes (``width`` in CSS px; natural size when ``None``)."""
    size = f' width="{int(width)}"' if width else ""
    return f'<img src="{data_uri(png)}" alt="{html.escape(alt, quote=True)}"{size}>'


def figure(png: bytes, alt: str, caption: str = "", width: int | None = None) -> str:
    """An image with an escaped caption below it."""
    below = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{image(png, alt, width)}{below}</figure>"


def paragraph(content: str, kind: str = "note") -> str:
    """A paragraph of escaped ``content`` (``kind``: ``note`` or ``warn``)."""
    return f'<p class="{kind}">{html.escape(content)}</p>'


def section(title: str, anchor: str, *parts: str) -> str:
    """A titled section of already escaped HTML parts."""
    heading = f'<section id="{html.escape(anchor)}"><h2>{html.escape(title)}</h2>'
    return heading + "".join(parts) + "</section>"


def share(part: int | None, whole: int | None) -> str:
    """``part / whole`` as a percentage, an en dash when ``whole`` is 0 or unknown."""
    return number(part / whole, ".1%") if part is not None and whole else "\u2013"


def nav(items: Sequence[tuple[str, str]]) -> str:
    """A line of links to the sections: ``(anchor, text)`` pairs."""
    links = " \u00b7 ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in items)
    return f'<p class="note">{links}</p>'


def counter_note(problems: Sequence[str]) -> str:
    """Whether the counters add up, or each identity that does not."""
    if not problems:
        return paragraph("The counters add up.")
    return "".join(paragraph(f"COUNTERS DO NOT ADD UP: {p}", "warn") for p in problems)


def reasons_table(title: str, counts: Mapping[str, int], total: int) -> str:
    """Counts by reason with their share of ``total`` (``none`` when empty)."""
    if not counts:
        return f"<h3>{html.escape(title)}</h3>" + paragraph("none")
    rows = [
        (f"<code>{html.escape(r)}</code>", number(n), share(n, total)) for r, n in counts.items()
    ]
    return f"<h3>{html.escape(title)}</h3>" + table(["reason", "count", "share"], rows)


def tile(panels: Sequence[tuple[str, bytes]], caption: str) -> str:
    """A gallery tile: named panels side by side, an escaped ``caption`` below."""
    cells = "".join(f"<div>{image(png, name)}{html.escape(name)}</div>" for name, png in panels)
    return (
        f'<div class="tile"><div class="panels">{cells}</div>'
        f"<figcaption>{caption}</figcaption></div>"
    )


def page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    """The whole document."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f'<body><h1>{html.escape(title)}</h1><p class="note">{html.escape(subtitle)}</p>\n'
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
