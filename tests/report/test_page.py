"""``dptrack-build report``: the page is one self-contained file, its images decode, the JSON holds
the page's numbers, and v1 and pairs folders get their own pages."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.report.html import CSP


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: Path) -> Elements:
    parser = Elements()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def decoded_images(parser: Elements) -> list[np.ndarray]:
    images = []
    for tag, attrs in parser.tags:
        if tag == "img":
            prefix = "data:image/png;base64,"
            assert attrs["src"].startswith(prefix), attrs["src"][:60]
            data = np.frombuffer(base64.b64decode(attrs["src"][len(prefix) :]), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
            assert image is not None and image.size > 0, attrs.get("alt")
            assert attrs.get("alt"), "every image says what it shows"
            images.append(image)
    return images


def test_the_page_is_self_contained(reports: dict) -> None:
    for page, _ in reports.values():
        parser = parse(page)
        names = {tag for tag, _ in parser.tags}
        assert not names & {"script", "link", "iframe", "object", "embed", "audio", "video"}
        for tag, attrs in parser.tags:
            for name in ("src", "href", "srcset", "action"):
                value = attrs.get(name, "")
                assert not value or value.startswith(("data:image/png;base64,", "#")), (tag, name)
        assert ("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}) in parser.tags
        assert "url(" not in page.read_text() and "@import" not in page.read_text()


def test_run_page_shows_every_panel_and_decodable_pictures(
    reports: dict, gallery_size: int
) -> None:
    page, figures_path = reports["run"]
    parser = parse(page)
    text = " ".join(parser.text)
    for heading in ("What made this folder", "Funnel", "Kept fraction by offset",
                    "Forward-backward error and ZNCC of kept points",
                    "Keypoint agreement by offset", "Per video", "Gallery"):  # fmt: skip
        assert heading in text
    assert "frame_missing" in text and "The counters add up." in text
    assert "written (manifest file time)" in text and "UTC" in text
    images = decoded_images(parser)
    # 3 charts, the colour bar, and 3 panels per instance of the worst and best.
    assert len(images) == 3 + 1 + 3 * 2 * gallery_size
    figures = json.loads(figures_path.read_text())
    assert len(figures["gallery"]["worst"]) == len(figures["gallery"]["best"]) == gallery_size
    for entry in figures["gallery"]["worst"] + figures["gallery"]["best"]:
        assert f"annotation {entry['annotation_id']}, offset {entry['offset']:+d}" in text
    # Crops of tall person boxes are shown tall (the box's proportions, not the square crop's).
    source_panels = images[4::3]
    assert all(panel.shape[0] > panel.shape[1] for panel in source_panels)


def test_json_holds_the_numbers_without_nan(reports: dict, run_folder: Path) -> None:
    _, figures_path = reports["run"]

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON: JSON has no NaN or Infinity")

    figures = json.loads(figures_path.read_text(), parse_constant=refuse)
    info = json.loads((run_folder / "dataset_info.json").read_text())
    assert figures["kind"] == "run"
    assert figures["funnel"]["instances"]["in"] == info["counters"]["instances_in"]
    assert [o["offset"] for o in figures["offsets"]] == [-3, -2, -1, 0, 1, 2, 3]
    assert {"fb_error_px", "photo_zncc"} <= set(figures["distributions"][0])


def _page(reports: dict, kind: str) -> tuple[object, str, dict]:
    """The parsed page of one report, its text, and its JSON figures."""
    page, figures_path = reports[kind]
    parser = parse(page)
    return parser, " ".join(parser.text), json.loads(figures_path.read_text())


def test_v1_page_says_the_quality_columns_are_absent(reports: dict, gallery_size: int) -> None:
    parser, text, figures = _page(reports, "v1")
    assert "quality columns (dp_fb_error" in text and "are absent" in text
    assert "records no checks" in text
    assert figures["quality_columns"] is False and figures["distributions"] is None
    # The kept-fraction chart and the gallery: no histograms, no colour scale.
    assert len(decoded_images(parser)) == 1 + 3 * 2 * gallery_size


def test_pairs_page_has_its_funnel_table_and_gallery(reports: dict, gallery_size: int) -> None:
    parser, text, figures = _page(reports, "pairs")
    assert "dptrack pairs report" in text and "rejected pairs by reason" in text
    assert "B warped onto A" in text
    assert figures["kind"] == "pairs" and len(figures["gallery"]) == gallery_size
    # The offset chart and four panels per pair.
    assert len(decoded_images(parser)) == 1 + 4 * gallery_size


def test_report_of_a_folder_without_manifest_fails_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "not a finished dptrack-build output folder" in result.output
    assert not (tmp_path / "r.html").exists()


def test_help() -> None:
    result = CliRunner().invoke(main, ["report", "--help"])
    assert result.exit_code == 0 and "--json" in result.output and "--gallery" in result.output
