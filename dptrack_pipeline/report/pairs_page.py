"""What is on the report page of a ``pairs`` folder, panel by panel.

As :mod:`~dptrack_pipeline.report.pages` is for a ``run`` folder: the figures of
:mod:`~dptrack_pipeline.report.pairs_figures`, the chart of
:func:`~dptrack_pipeline.report.charts.pairs_offset_chart` and the pictures of
:func:`~dptrack_pipeline.report.gallery.pair_panels`, in HTML. No number is computed here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from dptrack_pipeline.report import html as h
from dptrack_pipeline.report.pages import Tile, about_section

PAIRS_NAV = (
    ("about", "inputs"),
    ("funnel", "funnel"),
    ("offsets", "by offset"),
    ("videos", "per video"),
    ("gallery", "gallery"),
)


def pairs_funnel_section(funnel: Mapping[str, Any]) -> str:
    """Videos, pairs and people rows in and out, and the reject rows by stage and reason."""
    videos, pairs, people = funnel["videos"], funnel["pairs"], funnel["people"]
    planned = pairs["planned"]
    pair_table = h.table(
        ["pairs", "count", "share of planned"],
        [
            ("planned", h.number(planned), ""),
            ("written", h.number(pairs["written"]), h.share(pairs["written"], planned)),
            ("rejected", h.number(pairs["rejected"]), h.share(pairs["rejected"], planned)),
        ],
    )
    video_table = h.key_values(
        {
            "videos in": videos["in"],
            "videos read": videos["read"],
            "videos rejected": videos["rejected"],
            "frames in the videos": videos["frames"],
            "frames decoded": videos["frames_decoded"],
            "frames failed": videos["frames_failed"],
        },
        "videos",
    )
    people_table = h.key_values(
        {"people rows in": people["in"], "used": people["used"], "rejected": people["rejected"]},
        "people rows (--people)",
    )
    work = h.key_values(funnel["work"], "work")
    by_stage = "".join(
        h.reasons_table(f"reject rows, stage {stage}", counts, sum(counts.values()))
        for stage, counts in funnel["reject_rows"].items()
    )
    body = (
        h.paragraph(
            "Totals are the manifest's counters; pairs rejected by reason are its "
            "rejected.<reason> counters; reject rows by stage come from the reject shards."
        )
        + f'<div class="cols"><div>{video_table}{people_table}</div><div>{pair_table}'
        + h.reasons_table("rejected pairs by reason", pairs["rejected_by_reason"], planned)
        + f"</div><div>{by_stage}{work}</div></div>"
        + h.counter_note(funnel["problems"])
    )
    return h.section("Funnel", "funnel", body)


def pairs_offsets_section(offsets: Sequence[Mapping[str, Any]], chart: bytes) -> str:
    """Per offset: pairs, mean valid fraction, median flow, median forward-backward error."""
    rows = [
        (
            f"{o['offset']:+d}",
            h.number(o["pairs"]),
            h.number(o["mean_valid_fraction"], ".1%"),
            h.number(o["median_flow_crop_px"], ".2f"),
            h.number(o["median_fb_error_px"], ".3f"),
        )
        for o in offsets
    ]
    headers = [
        "offset",
        "pairs",
        "mean valid fraction",
        "median flow (crop px)",
        "median fb error (px)",
    ]
    body = (
        h.paragraph(
            "Valid fraction: the share of crop-A pixels whose flow passed the forward-backward "
            "check and stayed inside both frames; flow: the median length of the crop flow over "
            "valid pixels (near 0: no motion); fb error: the median forward-backward error over "
            "valid pixels, in frame pixels. Medians are over the offset's pairs."
        )
        + f'<div class="row">{h.table(headers, rows)}'
        + h.figure(chart, "valid fraction and median flow by offset")
        + "</div>"
    )
    return h.section("Valid fraction, motion and error by offset", "offsets", body)


def pairs_videos_section(videos: Sequence[Mapping[str, Any]]) -> str:
    """One line per video."""
    rows = [
        (
            html.escape(str(v["video_id"])),
            h.number(v["pairs"]),
            h.number(v["mean_valid_fraction"], ".1%"),
            h.number(v["median_flow_crop_px"], ".2f"),
            h.number(v["median_fb_error_px"], ".3f"),
            h.number(v["rejects"]),
        )
        for v in videos
    ]
    headers = [
        "video",
        "pairs",
        "mean valid fraction",
        "median flow (crop px)",
        "median fb error (px)",
        "reject rows",
    ]
    return h.section("Per video", "videos", h.table(headers, rows))


def pairs_gallery_section(tiles: Sequence[Tile]) -> str:
    """A spread of pairs over the offsets: crop A | crop B | B warped onto A | flow."""
    names = (("a", "crop A"), ("b", "crop B"), ("warped", "B warped onto A"), ("flow", "flow"))
    cells = []
    for entry, panels in tiles:
        caption = html.escape(
            f"video {entry['video_id']}, frames {entry['frame_a']} \u2192 {entry['frame_b']} "
            f"(offset {entry['offset']:+d}), person {entry['person']}; valid "
            f"{h.number(entry['valid_fraction'], '.1%')}, median flow "
            f"{h.number(entry['flow_median'], '.2f')} crop px, fb "
            f"{h.number(entry['fb_error_median'], '.3f')} px"
        )
        cells.append(h.tile([(label, panels[key]) for key, label in names], caption))
    body = h.paragraph(
        "Crop B warped onto A samples crop B at p + flow(p) for each crop-A pixel p (dimmed where "
        "the flow is not valid): where the flow is right it looks like crop A. Flow: Middlebury "
        "colours, grey where not valid. One pair per offset in turn."
    ) + (f'<div class="gallery">{"".join(cells)}</div>' if cells else h.paragraph("no pairs"))
    return h.section("Gallery: pairs", "gallery", body)


def pairs_page(folder: str, figures: Mapping[str, Any], chart: bytes, tiles: Sequence[Tile]) -> str:
    """The report of a ``pairs`` folder."""
    sections = [
        h.nav(PAIRS_NAV),
        about_section(figures["about"], checks=False),
        pairs_funnel_section(figures["funnel"]),
        pairs_offsets_section(figures["offsets"], chart),
        pairs_videos_section(figures["videos"]),
        pairs_gallery_section(tiles),
    ]
    return h.page("dptrack pairs report", folder, sections)
