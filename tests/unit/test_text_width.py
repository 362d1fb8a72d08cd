"""The text report fits the terminal: golden reports at 60, 80 and 120 columns, no line wider than that,
and an encoding that cannot show the report's marks gets ASCII instead of an error.

The goldens live in tests/golden/. After a deliberate change of the text report, regenerate them with
    .venv/bin/python -m pytest tests/unit/test_text_width.py --update-goldens
and read the diff before committing. Volatile values (certificate dates) are normalised first.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from pathlib import Path

import pytest

from feedback_check.firewall.analysis import LayerSource, analyse_layers
from feedback_check.platform import load_platform
from feedback_check.report import Report
from feedback_check.reporters import render
from feedback_check.reporters.terminal import (
    Column,
    display_width,
    fit_encoding,
    fit_lines,
    shorten,
    table,
    wrap,
)
from tests.unit.test_reporters_samples import critical_report, finding, target

REPO = Path(__file__).parents[2]
GOLDEN = REPO / "tests" / "golden"
WIDTHS = (60, 80, 120)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def golden_report() -> Report:
    """The critical sample, a URL far longer than any terminal, and a real two-layer analysis of the
    shipped examples (an AWS security group in front of an iptables allowlist stuck on the 2019 list)."""
    base = critical_report()
    platform = load_platform()
    with contextlib.chdir(REPO):          # file names as a user in the repository would write them
        firewall = analyse_layers([LayerSource("examples/firewall/aws/describe-security-groups.json"),
                                   LayerSource("examples/firewall/iptables/legacy-2019.rules")],
                                  platform, port=443, shop="shop-legacy", path="/postfinance/feedback",
                                  host="legacy.example")
    long_url = "https://shop-long.example/" + "/".join(f"segment-{i}" for i in range(14)) + "?paramvar=abc&x=1"
    slow = target("shop-long-name-gmbh", "status_change", long_url,
                  [finding("http.slow", "shop-long-name-gmbh", "status_change", long_url,
                           evidence={"seconds": 7.2, "slow_seconds": 5.0, "assumption": "timing.slow_seconds"})],
                  total=7.2)
    return replace(base, findings=(*base.findings, *firewall.findings, *slow.findings),
                   targets=(*base.targets, slow), firewalls=(*base.firewalls, firewall))


def normalised(text: str) -> str:
    """The certificate's expiry date moves with the clock (its length does not, so the wrapping stays)."""
    return re.sub(r"\d{4}-\d{2}-\d{2}(?= \()", "YYYY-MM-DD", text)


@pytest.mark.parametrize("width", WIDTHS)
def test_golden_text_report(width: int, request: pytest.FixtureRequest) -> None:
    text = normalised(render(golden_report(), "text", width=width))
    too_wide = [line for line in text.splitlines() if display_width(line) > width]
    assert too_wide == [], f"{len(too_wide)} lines wider than {width}"
    path = GOLDEN / f"text-report-{width}.txt"
    if request.config.getoption("--update-goldens"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), \
        f"differs from {path.relative_to(REPO)} (regenerate: pytest {Path(__file__).relative_to(REPO)} --update-goldens)"


@pytest.mark.parametrize("width", (40, 60, 80, 120, 200))
def test_no_line_is_wider_than_the_width_in_colour_or_ascii(width: int) -> None:
    coloured = render(golden_report(), "text", width=width, color=True)
    assert "\x1b[" in coloured
    assert max(display_width(line) for line in coloured.splitlines()) <= width
    plain = ANSI.sub("", coloured)
    assert plain == render(golden_report(), "text", width=width), "colour changes no column"
    for encoding in ("ascii", "latin-1"):
        shown = fit_encoding(plain, encoding)
        shown.encode(encoding)
        assert max(len(line) for line in shown.splitlines()) <= width, encoding


def test_long_cidr_lists_are_summarised_with_counts() -> None:
    text = render(golden_report(), "text", width=80)
    assert "✗ 185.8.52.0/22 partly blocked: 3 of 1,024 addresses admitted:" in text
    assert "blocks 2,301 of the 2,304 published addresses: 91.208.214.0/24," in text
    assert "(+24 more)" in text
    assert "185.8.53.255/32" not in text.split("findings:")[0], "no full list of 27 CIDRs in the layer lines"


def test_the_summary_table_shortens_cells_and_never_breaks_a_word() -> None:
    text = render(golden_report(), "text", width=80)
    rows = text.split("Summary\n")[1].split("\n\n")[0].splitlines()
    assert rows[0].split() == ["SHOP", "ROLE", "VERDICT", "MAIN", "FINDING"], "the URL column gives way first"
    assert any(row.endswith("…") for row in rows), "a long cell is shortened with an ellipsis"
    assert all(len(row) <= 80 for row in rows)
    assert "shop-long-name-gmbh" in text.split("Summary\n")[1]
    wide = render(golden_report(), "text", width=160).split("Summary\n")[1].split("\n\n")[0].splitlines()
    assert wide[0].split()[-3:] == ["URL", "/", "WHAT"], "with room the URL column is back"


def test_wrap_keeps_every_word_and_the_indent() -> None:
    text = "fix: Enter the final URL https://shop.example/" + "very-long-path/" * 12 + " in the back office."
    lines = wrap(text, 40, indent=4, hang=9)
    assert all(display_width(line) <= 40 for line in lines)
    assert lines[0].startswith("    fix:") and all(line.startswith(" " * 9) for line in lines[1:])
    assert "".join(line.strip() for line in lines).replace(" ", "") == text.replace(" ", "")
    assert any(line.rstrip().endswith("/") for line in lines[:-1]), "a long URL breaks after a slash"


def test_runs_of_spaces_inside_a_line_are_kept() -> None:
    assert fit_lines(["    http     POST → HTTP/1.1 200 OK"], 80) == ["    http     POST → HTTP/1.1 200 OK"]
    assert wrap("CRITICAL  answer text here", 14, hang=10)[0] == "CRITICAL"


def test_display_width_counts_columns() -> None:
    assert display_width("\x1b[1;31mCRITICAL\x1b[0m") == 8
    assert display_width("店舗") == 4 and display_width("é") == 1 and display_width("e\u0301") == 1
    assert shorten("店舗店舗", 5) == "店舗…" and shorten("abc", 3) == "abc" and shorten("abcd", 3) == "ab…"


def test_table_drops_an_optional_column_before_going_below_a_minimum() -> None:
    columns = (Column("A", minimum=4, shrink=2), Column("B", minimum=10), Column("C", minimum=10, optional=True))
    rows = [("alpha", "b" * 30, "c" * 30)]
    assert table(columns, rows, 80) == ["  A      B" + " " * 31 + "C", "  alpha  " + "b" * 30 + "  " + "c" * 30]
    narrow = table(columns, rows, 30)
    assert narrow[0].split() == ["A", "B"] and narrow[1] == "  alpha  " + "b" * 20 + "…"


def test_fit_encoding_replaces_only_what_the_encoding_cannot_show() -> None:
    text = "━━ ✗ CRITICAL  Käufer · 185.8.52.0/22 → blocked … 12 ms – ok"
    assert fit_encoding(text, "utf-8") == text
    assert fit_encoding(text, "latin-1") == "== x CRITICAL  Käufer · 185.8.52.0/22 > blocked ~ 12 ms - ok"
    assert fit_encoding(text, "ascii") == "== x CRITICAL  Kaufer - 185.8.52.0/22 > blocked ~ 12 ms - ok"
    assert fit_encoding("漢 <b>", "ascii", markup=True) == "&#28450; <b>"
    assert fit_encoding("漢", "ascii") == "?"


def test_numbers_stay_with_their_unit_and_no_kept_space_is_printed() -> None:
    from feedback_check.reporters.terminal import KEEP_TOGETHER

    assert wrap(f"aaa bbb 4{KEEP_TOGETHER}shops", 12) == ["aaa bbb", "4 shops"]
    assert fit_lines([f"2.16{KEEP_TOGETHER}s"], 80) == ["2.16 s"]
    for width in WIDTHS:
        assert KEEP_TOGETHER not in render(golden_report(), "text", width=width)
