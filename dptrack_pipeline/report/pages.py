"""What is on a report page, panel by panel, for a ``run`` and a ``pairs`` folder.

Turns the figures (:mod:`~dptrack_pipeline.report.figures`,
:mod:`~dptrack_pipeline.report.pairs_figures`), the chart PNGs
(:mod:`~dptrack_pipeline.report.charts`) and the gallery PNGs
(:mod:`~dptrack_pipeline.report.gallery`) into HTML with the blocks of
:mod:`~dptrack_pipeline.report.html`. No number is computed here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from dptrack_pipeline.report import html as h

Tile = tuple[dict[str, Any], dict[str, bytes]]
"""A gallery entry (its figures) and its panels as PNG bytes, by panel name."""


def about_section(about: Mapping[str, Any], checks: bool) -> str:
    """Inputs, estimator, parameters, checks and versions, side by side."""
    parameters = dict(about["parameters"])
    config = parameters.pop("config", {})
    blocks = [
        h.key_values(
            {"written (manifest file time)": about.get("written"), **about["inputs"]}, "inputs"
        ),
        h.key_values(about["estimator"], "estimator"),
        h.key_values({**parameters, **{f"config.{k}": v for k, v in config.items()}}, "parameters"),
    ]
    if checks:
        recorded = about.get("checks")
        blocks.append(
            h.key_values(recorded, "checks")
            if recorded
            else "<div><h3>checks</h3>"
            + h.paragraph("this manifest records no checks (an older run)")
            + "</div>"
        )
    blocks.append(h.key_values(about["versions"], "versions"))
    return h.section("What made this folder", "about", f'<div class="cols">{"".join(blocks)}</div>')


def run_funnel_section(funnel: Mapping[str, Any]) -> str:
    """Instances in -> written / rejected; points in -> kept / dropped by reason."""
    inst, pts, ann = funnel["instances"], funnel["points"], funnel["annotations"]
    n = inst["in"]
    instances = h.table(
        ["instances", "count", "share of in"],
        [
            ("in (sources + one per target frame + rejected annotations)", h.number(n), ""),
            ("written", h.number(inst["written"]), h.share(inst["written"], n)),
            (
                "\u2003sources (offset 0)",
                h.number(inst["written_sources"]),
                h.share(inst["written_sources"], n),
            ),
            (
                "\u2003propagated",
                h.number(inst["written_propagated"]),
                h.share(inst["written_propagated"], n),
            ),
            ("rejected", h.number(inst["rejected"]), h.share(inst["rejected"], n)),
        ],
    )
    points = h.table(
        ["propagated points", "count", "share of in"],
        [
            ("in", h.number(pts["in"]), ""),
            ("kept", h.number(pts["kept"]), h.share(pts["kept"], pts["in"])),
        ]
        + [
            (f"dropped: {reason}", h.number(count), h.share(count, pts["in"]))
            for reason, count in pts["dropped"].items()
        ],
    )
    annotations = h.key_values(
        {
            "annotations in": ann["in"],
            "annotations rejected": ann["rejected"],
            "sources planned": ann["sources"],
            **funnel["work"],
        },
        "annotations and work",
    )
    stages = (
        h.key_values(inst["rejected_by_stage"], "rejects by stage")
        if inst["rejected_by_stage"]
        else ""
    )
    reasons = h.reasons_table("rejected instances by reason", inst["rejected_by_reason"], n)
    body = (
        h.paragraph(
            "Totals are the manifest's counters; the split of written rows and the rejects by "
            "reason come from the instance and reject shards. Dropped points: fb = "
            "forward-backward check, outside = left the frame or box, photo = ZNCC below the "
            "photometric check, chain = chain check."
        )
        + f'<div class="cols"><div>{instances}{points}</div><div>{reasons}{stages}</div>'
        f"<div>{annotations}</div></div>" + h.counter_note(funnel["problems"])
    )
    return h.section("Funnel", "funnel", body)


def run_offsets_section(offsets: Sequence[Mapping[str, Any]], chart: bytes) -> str:
    """Kept fraction by offset: table and stacked bars."""
    rows = []
    for o in offsets:
        if o["offset"] == 0:
            rows.append(
                (
                    "0 (sources)",
                    h.number(o["rows"]),
                    "",
                    h.number(o["points"]),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            )
            continue
        rows.append(
            (
                f"{o['offset']:+d}",
                h.number(o["rows"]),
                h.number(o["points_in"]),
                h.number(o["points_kept"]),
                h.number(o["kept_ratio"], ".1%"),
                h.number(o["points_dropped_fb"]),
                h.number(o["points_dropped_outside"]),
                h.number(o.get("points_dropped_photo")),
                h.number(o.get("points_dropped_chain")),
                h.number(o["mean_flow_valid"], ".1%"),
            )
        )
    headers = [
        "offset",
        "rows",
        "points in",
        "kept",
        "kept fraction",
        "drop fb",
        "drop outside",
        "drop photo",
        "drop chain",
        "mean crop-flow valid",
    ]
    body = (
        h.paragraph(
            "Kept fraction = kept points / points that entered propagation, pooled over the "
            "offset's rows (the instance rows; rejected targets hold no points)."
        )
        + f'<div class="row">{h.table(headers, rows)}'
        + h.figure(chart, "stacked bars of kept and dropped points by offset")
        + "</div>"
    )
    return h.section("Kept fraction by offset", "offsets", body)


def absent_quality() -> str:
    return h.paragraph(
        "This folder's instance shards are instances.v1: the quality columns (dp_fb_error, "
        "dp_photo, kp_posetrack_error, pckh, ...) are absent, so this panel is empty. Runs "
        "written since instances.v2 carry them.",
        "warn",
    )


def distributions_section(
    distributions: Sequence[Mapping[str, Any]] | None, charts: Mapping[str, bytes]
) -> str:
    """Histograms of the kept points' forward-backward error and ZNCC per |offset|."""
    title = "Forward-backward error and ZNCC of kept points"
    if distributions is None:
        return h.section(title, "distributions", absent_quality())
    rows = [
        (
            str(d["abs_offset"]),
            h.number(d["fb_error_px"]["n"]),
            *(h.number(d["fb_error_px"][k], ".2f") for k in ("p10", "median", "p90")),
            *(h.number(d["photo_zncc"][k], ".3f") for k in ("p10", "median", "p90")),
        )
        for d in distributions
    ]
    headers = [
        "|offset|",
        "kept points",
        "fb p10 (px)",
        "fb median (px)",
        "fb p90 (px)",
        "ZNCC p10",
        "ZNCC median",
        "ZNCC p90",
    ]
    body = (
        h.paragraph(
            "Forward-backward error: |p' + F_bwd(p') - p| of each kept point, in source-frame "
            "pixels. ZNCC: zero-mean normalised cross-correlation of the 11 x 11 grey patches "
            "around the point in the source frame and around its moved position (1 = the same "
            "texture). Each line is one |offset|; dashed lines are the medians."
        )
        + '<div class="row">'
        + h.figure(charts["fb_error"], "histogram of the forward-backward error by |offset|")
        + h.figure(charts["photo"], "histogram of the ZNCC by |offset|")
        + "</div>"
        + h.table(headers, rows)
    )
    return h.section(title, "distributions", body)


def keypoints_section(keypoints: Sequence[Mapping[str, Any]] | None) -> str:
    """PCKh and keypoint distance by offset."""
    title = "Keypoint agreement by offset"
    if keypoints is None:
        return h.section(title, "keypoints", absent_quality())
    if not any(k["instances_compared"] for k in keypoints):
        note = h.paragraph(
            "No propagated instance could be compared: no target frame has an "
            "annotated pose of the same track."
        )
        return h.section(title, "keypoints", note)
    rows = [
        (
            f"{k['offset']:+d}",
            h.number(k["instances"]),
            h.number(k["instances_compared"]),
            h.number(k["mean_pckh"], ".3f"),
            h.number(k["median_error_px"], ".2f"),
        )
        for k in keypoints
    ]
    headers = [
        "offset",
        "instances",
        "instances compared",
        "mean PCKh@0.5",
        "median error (px)",
    ]
    body = h.paragraph(
        "Propagated keypoints against the annotated keypoints of the same track in the target "
        "frame (PoseTrack18 or the annotation file). PCKh@0.5: the fraction of joints visible in "
        "both within half a head size; error: the distance in target-frame pixels."
    ) + h.table(headers, rows)
    return h.section(title, "keypoints", body)


def run_videos_section(videos: Sequence[Mapping[str, Any]], quality: bool) -> str:
    """One line per video."""
    headers = ["video", "rows", "propagated", "kept fraction"]
    if quality:
        headers += ["median fb error (px)", "median ZNCC", "mean PCKh"]
    headers.append("rejects")
    rows = []
    for v in videos:
        row = [
            html.escape(str(v["video_id"])),
            h.number(v["rows"]),
            h.number(v["propagated"]),
            h.number(v["kept_fraction"], ".1%"),
        ]
        if quality:
            row += [
                h.number(v["median_fb_error_px"], ".2f"),
                h.number(v["median_photo_zncc"], ".3f"),
                h.number(v["mean_pckh"], ".3f"),
            ]
        rows.append([*row, h.number(v["rejects"])])
    return h.section("Per video", "videos", h.table(headers, rows))


def _instance_caption(e: Mapping[str, Any]) -> str:
    parts = [
        f"video {e['video_id']}, annotation {e['annotation_id']}, offset {e['offset']:+d}",
        f"kept {e['points_kept']}/{e['points_in']}",
    ]
    if "photo_median" in e:
        parts += [
            f"ZNCC median {h.number(e['photo_median'], '.3f')}",
            f"fb median {h.number(e['fb_error_median'], '.2f')} px",
            f"PCKh {h.number(e['pckh'], '.2f')}",
        ]
    return html.escape("; ".join(parts))


def run_gallery_section(
    score: str, worst: Sequence[Tile], best: Sequence[Tile], bar: bytes, top: float, quality: bool
) -> str:
    """The worst and best propagated instances, source crop | target crop | crop flow."""
    legend = (
        '<div class="legend">fb error: 0 px '
        f"{h.image(bar, 'colour scale of the forward-backward error')} "
        f"{h.number(top, '.3g')} px (the run's threshold); hollow white rings: source points "
        "dropped</div>"
        if quality
        else h.paragraph("Points in one colour: instances.v1 records no per-point error.")
    )
    names = ("source crop", "target crop", "crop flow")

    def tiles(chosen: Sequence[Tile]) -> str:
        if not chosen:
            return h.paragraph("no propagated instance with kept points")
        return (
            '<div class="gallery">'
            + "".join(
                h.tile(
                    list(zip(names, (p["source"], p["target"], p["flow"]), strict=True)),
                    _instance_caption(e),
                )
                for e, p in chosen
            )
            + "</div>"
        )

    body = (
        h.paragraph(
            f"Ranking: {score}. Source crop: the labelled person with its annotated "
            "points; target crop: the points moved by the flow, in the same colours; crop "
            "flow: Middlebury colours, grey where the forward-backward check failed."
        )
        + legend
        + "<h3>worst</h3>"
        + tiles(worst)
        + "<h3>best</h3>"
        + tiles(best)
    )
    return h.section("Gallery: worst and best propagated instances", "gallery", body)


RUN_NAV = (
    ("about", "inputs"),
    ("funnel", "funnel"),
    ("offsets", "kept by offset"),
    ("distributions", "fb error and ZNCC"),
    ("keypoints", "keypoints"),
    ("videos", "per video"),
    ("gallery", "gallery"),
)


def run_page(
    folder: str,
    figures: Mapping[str, Any],
    charts: Mapping[str, bytes],
    gallery: Mapping[str, Sequence[Tile]],
    bar: bytes,
    top: float,
) -> str:
    """The report of a ``run`` folder."""
    quality = figures["quality_columns"]
    sections = [
        h.nav(RUN_NAV),
        about_section(figures["about"], checks=True),
        run_funnel_section(figures["funnel"]),
        run_offsets_section(figures["offsets"], charts["kept"]),
        distributions_section(figures["distributions"], charts),
        keypoints_section(figures["keypoints"]),
        run_videos_section(figures["videos"], quality),
        run_gallery_section(
            figures["gallery"]["score"], gallery["worst"], gallery["best"], bar, top, quality
        ),
    ]
    return h.page("dptrack run report", folder, sections)
