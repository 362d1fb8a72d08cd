"""`--format html` end to end: the demo's page rendered by a real headless Chromium from disk, and the
passphrase of a shop that echoes it never in the page.

The browser test measures the drawn range bars (bounding boxes of the SVG pieces) and compares them
with the analysis of the same demo as JSON, counted here with `ipaddress`, not with the reporter's code.
Run with `--update-screenshot` to also refresh docs/demo-report.png (the README's picture).
"""

from __future__ import annotations

import base64
import html
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_cli_check import assert_no_traceback, echoing_routes, echoing_shop_profile, run_cli
from tests.chromium import Chromium, find_chromium
from tests.servers.http_servers import LoopbackServer, app

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                    "(Debian: apt-get install chromium; .ci/run installs it)")
REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples" / "firewall"
DOCS_SCREENSHOT = REPO / "docs" / "demo-report.png"
#: The README's screenshot: the top of the page (banner, summary, the first firewall's bars).
DOCS_SCREENSHOT_HEIGHT = 1750
DOCS_SCREENSHOT_MAX_BYTES = 300_000

MEASURE_BARS = """
Array.from(document.querySelectorAll('svg.bar')).map(svg => {
  const box = svg.getBoundingClientRect();
  const figure = svg.closest('figure.range');
  return {
    shop: svg.closest('article').dataset.shop, range: svg.dataset.range, layer: svg.dataset.layer,
    first: figure.querySelector('svg.bar') === svg,
    size: Number(svg.dataset.size), admitted: Number(svg.dataset.admitted), blocked: Number(svg.dataset.blocked),
    left: box.left, width: box.width,
    pieces: Array.from(svg.querySelectorAll('rect.piece')).map(rect => {
      const b = rect.getBoundingClientRect();
      return {state: rect.dataset.state, start: Number(rect.dataset.start), size: Number(rect.dataset.size),
              rule: rect.dataset.rule, title: rect.querySelector('title').textContent, left: b.left, width: b.width};
    }),
  };
})
"""


def count(cidrs: list[str]) -> int:
    return sum(ipaddress.ip_network(c).num_addresses for c in cidrs)


def within(cidrs: list[str], cidr: str) -> list[str]:
    outer = ipaddress.ip_network(cidr)
    return [c for c in cidrs if ipaddress.ip_network(c).subnet_of(outer)]  # type: ignore[arg-type]


def assert_drawn_to_scale(bar: dict[str, Any]) -> None:
    """Each piece as wide as its share of the range, where its addresses are; the pieces tile the bar."""
    assert bar["width"] > 500, "the bar spans the page"
    pieces = sorted(bar["pieces"], key=lambda p: p["start"])
    assert sum(p["size"] for p in pieces) == bar["size"]
    position = 0
    for piece in pieces:
        assert piece["start"] == position, "pieces follow each other without gap or overlap"
        position += piece["size"]
        expected_width = piece["size"] / bar["size"] * bar["width"]
        assert piece["width"] == pytest.approx(expected_width, abs=0.5), piece
        expected_left = bar["left"] + piece["start"] / bar["size"] * bar["width"]
        assert piece["left"] == pytest.approx(expected_left, abs=0.5), piece
    admitted_width = sum(p["width"] for p in pieces if p["state"] == "admitted")
    blocked_width = sum(p["width"] for p in pieces if p["state"] != "admitted")
    assert admitted_width == pytest.approx(bar["admitted"] / bar["size"] * bar["width"], abs=1.0)
    assert blocked_width == pytest.approx(bar["blocked"] / bar["size"] * bar["width"], abs=1.0)
    assert bar["admitted"] + bar["blocked"] == bar["size"]


def render_page(browser: Chromium, page: Path) -> list[dict[str, Any]]:
    browser.open(page)
    assert browser.errors() == [], "the page renders without console errors"
    assert all(url.startswith("file:") for url in browser.requested_urls()), \
        f"nothing but the file itself is loaded: {browser.requested_urls()}"
    assert browser.evaluate("document.scripts.length") == 0, "readable without JavaScript: there is none"
    bars: list[dict[str, Any]] = browser.evaluate(MEASURE_BARS)
    return bars


@needs_chromium
def test_the_demo_report_renders_in_a_real_browser_with_bars_to_scale(tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    page = tmp_path / "demo.html"
    result = run_cli("demo", "--format", "html", "--output", str(page))
    assert_no_traceback(result)
    assert result.returncode == 0 and result.stdout == "", result.stderr
    analysis = json.loads(run_cli("demo", "--format", "json").stdout)
    assert CHROMIUM is not None
    with Chromium(CHROMIUM, width=1100, height=900) as browser:
        bars = render_page(browser, page)
        assert browser.evaluate("document.querySelector('header.banner').dataset.verdict") == analysis["verdict"]
        browser.screenshot(tmp_path / "demo-report.png")
        if request.config.getoption("--update-screenshot"):
            browser.screenshot(DOCS_SCREENSHOT, full_page=False, clip_height=DOCS_SCREENSHOT_HEIGHT)
            assert DOCS_SCREENSHOT.stat().st_size < DOCS_SCREENSHOT_MAX_BYTES
        browser.send("Emulation.setEmulatedMedia", {"media": "print"}, session=True)
        pdf = base64.b64decode(browser.send("Page.printToPDF", {"printBackground": True}, session=True)["data"])
        (tmp_path / "demo-report.pdf").write_bytes(pdf)
        assert browser.errors() == []
    assert (tmp_path / "demo-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf[:5] == b"%PDF-" and len(pdf) > 10_000, "prints to PDF"

    expected = {(fw["shop"], r["range"]): (count(r["admitted"]), count(r["blocked"]) + count(r["uncertain"]))
                for fw in analysis["firewall"] for r in fw["ranges"]}
    totals = {(b["shop"], b["range"]): b for b in bars if b["first"]}
    assert set(totals) == set(expected), "one bar per published range of every firewall"
    for key, (admitted, blocked) in expected.items():
        bar = totals[key]
        assert (bar["admitted"], bar["blocked"]) == (admitted, blocked), key
        assert_drawn_to_scale(bar)
    legacy = totals[("moved-shop", "185.8.52.0/22")]
    assert [p["size"] for p in legacy["pieces"] if p["state"] == "admitted"] == [1, 1, 1]
    assert all(p["rule"].endswith("legacy-rules.v4:17") and "-A POSTFINANCE -j DROP" in p["title"]
               for p in legacy["pieces"] if p["state"] == "blocked"), "each blocked piece names its deciding rule"


@needs_chromium
def test_a_two_layer_firewall_has_a_bar_per_layer_to_scale(tmp_path: Path) -> None:
    page = tmp_path / "firewall.html"
    layers = [EXAMPLES / "aws" / "describe-security-groups.json", EXAMPLES / "iptables" / "legacy-2019.rules"]
    result = run_cli("firewall", *map(str, layers), "--port", "443", "--format", "html", "--output", str(page))
    assert_no_traceback(result)
    analysis = json.loads(run_cli("firewall", *map(str, layers), "--port", "443", "--format", "json").stdout)
    assert CHROMIUM is not None
    with Chromium(CHROMIUM, width=1000, height=900) as browser:
        bars = render_page(browser, page)
        browser.screenshot(tmp_path / "firewall-report.png")
    (firewall,) = analysis["firewall"]
    for entry in firewall["ranges"]:
        drawn = [b for b in bars if b["range"] == entry["range"]]
        assert len(drawn) == 1 + len(firewall["layers"]), "all layers together, then each layer"
        for bar in drawn:
            assert_drawn_to_scale(bar)
        for bar, layer in zip(drawn[1:], firewall["layers"], strict=True):
            assert bar["layer"] == layer["name"]
            assert bar["admitted"] == count(within(layer["admits_published"], entry["range"]))


def test_a_shop_echoing_the_passphrase_never_puts_it_into_the_html_report(tmp_path: Path) -> None:
    # Characters HTML escapes: the page must hold neither the passphrase nor its escaped spelling.
    passphrase = "Html<Sha&Out>'7f3b\""
    with LoopbackServer(app(echoing_routes(passphrase))) as server:
        profile = echoing_shop_profile(tmp_path, server, "ECHO_SHA_OUT")
        page = tmp_path / "report.html"
        result = run_cli("check", "--config", str(profile), "--lab", "--format", "html", "--output", str(page),
                         env={"ECHO_SHA_OUT": passphrase})
        stdout = run_cli("check", "--config", str(profile), "--lab", "--format", "html",
                         env={"ECHO_SHA_OUT": passphrase})
    assert_no_traceback(result)
    assert result.returncode == 2, result.stderr
    text = page.read_text(encoding="utf-8")
    # The answer names the signature: the judgment reads it as a rejected SHASIGN (issue 8).
    assert "signature.rejected" in text and "********" in text
    for output in (text, stdout.stdout, stdout.stderr, result.stderr):
        assert passphrase not in output
        assert html.escape(passphrase) not in output and html.escape(passphrase, quote=False) not in output


def run_cli_bytes(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()} | env
    return subprocess.run([sys.executable, "-m", "feedback_check", *args], capture_output=True, env=environment,
                          timeout=60, check=False)


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_an_output_encoding_without_the_reports_marks_gets_ascii_not_an_error(encoding: str) -> None:
    result = run_cli_bytes("demo", env={"PYTHONIOENCODING": encoding})
    stderr = result.stderr.decode(encoding)
    assert result.returncode == 0 and "UnicodeEncodeError" not in stderr and "Traceback" not in stderr, stderr
    stdout = result.stdout.decode(encoding)
    assert stdout.startswith("CRITICAL  PostFinance would report a process error")
    assert "== CRITICAL  moved-shop" in stdout, "the heading rule in ASCII"
    assert "3 of 1,024 addresses admitted" in stdout
    page = run_cli_bytes("demo", "--format", "html", env={"PYTHONIOENCODING": encoding})
    assert page.returncode == 0 and page.stdout.startswith(b"<!DOCTYPE html>")
    assert b"&#" in page.stdout, "HTML keeps every character as a character reference"
    page.stdout.decode(encoding)


def widest(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stderr
    return max(len(line) for line in result.stdout.splitlines())


def test_the_width_option_the_columns_variable_and_80_columns_when_not_a_terminal() -> None:
    assert 58 <= widest(run_cli("demo", "--width", "60")) <= 60
    assert 78 <= widest(run_cli("demo", env={"COLUMNS": ""})) <= 80, "not a terminal: 80 columns"
    assert 120 < widest(run_cli("demo", env={"COLUMNS": "132"})) <= 132, "COLUMNS is honoured"
    assert run_cli("demo", "--width", "10").returncode == 3, "a width below 40 is refused"
