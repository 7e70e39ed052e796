"""The report in a real browser: headless Chromium opens each page from disk with no console
message, no error, nothing fetched, and every ``<img>`` decoded (``naturalWidth > 0``).

Chromium is the Debian package ``chromium`` (``.ci/run`` installs it); without it the test skips.
The page has no script of its own, so the test adds one, in a copy, ahead of the page's
Content-Security-Policy: on ``load`` it writes what it found into ``body[data-check]``, which
``--dump-dom`` prints. Console messages come from ``--enable-logging=stderr`` (one
``...:CONSOLE...`` line each); the page must produce none, CSP violations included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); the page is checked "
    "without a browser by test_page.py",
)

CHECK = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var what = e.target && (e.target.src || e.target.href);
    errors.push(e.message || ("could not load " + (what ? what.slice(0, 80) : "?")));
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("CSP refused " + e.blockedURI + " (" + e.violatedDirective + ")");
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
    document.body.setAttribute("data-check", JSON.stringify({
      images: images.length,
      broken: broken.map(function (i) { return i.alt; }),
      errors: errors,
      fetched: performance.getEntriesByType("resource").map(function (r) { return r.name; })
    }));
  });
})();
</script>"""

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", "--dump-dom",
)  # fmt: skip


class BodyCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.check: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.check = dict(attrs).get("data-check")


def open_in_chromium(page: Path, tmp_path: Path) -> tuple[dict | None, list[str], str]:
    """Load ``page`` (with the check script) in headless Chromium: ``(check, console, stderr)``."""
    html = page.read_text(encoding="utf-8")
    assert "<head>" in html
    probe = tmp_path / page.name
    probe.write_text(html.replace("<head>", "<head>" + CHECK, 1), encoding="utf-8")
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", probe.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    parser = BodyCheck()
    parser.feed(result.stdout)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return (json.loads(parser.check) if parser.check else None), console, result.stderr


@pytest.mark.parametrize("name", ["run", "v1", "pairs"])
def test_page_loads_in_chromium_without_errors_and_every_image_decodes(
    name: str, reports: dict, tmp_path: Path
) -> None:
    page, _ = reports[name]
    check, console, stderr = open_in_chromium(page, tmp_path)
    assert check is not None, "the page never finished loading:\n" + stderr[-3000:]
    assert console == [], console
    assert check["errors"] == [] and check["fetched"] == [], check
    assert check["images"] > 0 and check["broken"] == [], check


def test_the_check_sees_a_broken_image_and_an_external_fetch(tmp_path: Path) -> None:
    """The probe itself: a page with an undecodable image and a remote one fails it."""
    from dptrack_pipeline.report.html import page

    bad = tmp_path / "bad.html"
    bad.write_text(
        page(
            "bad",
            "",
            [
                '<img alt="broken" src="data:image/png;base64,AAAA">',
                '<img alt="remote" src="http://192.0.2.1/x.png">',
            ],
        ),  # fmt: skip
        encoding="utf-8",
    )
    check, console, _ = open_in_chromium(bad, tmp_path)
    assert check is not None
    assert sorted(check["broken"]) == ["broken", "remote"]
    assert any("192.0.2.1" in line for line in console)  # refused by the page's CSP
