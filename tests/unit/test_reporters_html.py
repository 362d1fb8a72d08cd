"""--format html: a self-contained page, everything escaped, the bars' numbers taken from the analysis.

The rendering in a real browser (widths measured, console errors, print to PDF) is in
tests/acceptance/test_html_report.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from feedback_check.findings import Finding, Severity
from feedback_check.firewall.analysis import LayerSource, analyse_layers
from feedback_check.platform import load_platform
from feedback_check.report import Report
from feedback_check.reporters import render
from feedback_check.reporters.views import range_views
from tests.unit.test_reporters_samples import (
    HOSTILE,
    NOW,
    SAMPLES,
    critical_report,
    finding,
    target,
    warning_report,
)

EXAMPLES = Path(__file__).parents[2] / "examples" / "firewall"


class Elements(HTMLParser):
    """Every start tag with its attributes, and whether the tags nest properly."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input", "path", "rect", "line"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def two_layer_report() -> Report:
    platform = load_platform()
    summary = analyse_layers([LayerSource(str(EXAMPLES / "aws" / "describe-security-groups.json")),
                              LayerSource(str(EXAMPLES / "iptables" / "legacy-2019.rules"))], platform, port=443)
    return Report(command="firewall", findings=summary.findings, firewalls=(summary,), started=NOW)


def test_every_sample_is_one_well_formed_self_contained_page() -> None:
    for name, build in SAMPLES.items():
        page = render(build(), "html")
        parsed = parse(page)
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>"), name
        assert parsed.problems == [] and parsed.open == [], (name, parsed.problems, parsed.open)
        tags = {tag for tag, _ in parsed.tags}
        assert not tags & {"script", "link", "img", "iframe", "object", "embed"}, name
        for _, attributes in parsed.tags:
            assert not {"src", "href"} & set(attributes), "nothing is loaded from anywhere"
        assert "url(" not in page and "@import" not in page and "@font-face" not in page, name


def test_hostile_strings_are_escaped_text_never_markup() -> None:
    page = render(SAMPLES["hostile"](), "html")
    parsed = parse(page)
    assert "<tag>" not in page and "&lt;tag&gt;" in page
    assert "\x1b" not in page and "\x00" not in page and "\\x1b" in page
    assert not any(tag == "tag" for tag, _ in parsed.tags)
    assert parsed.problems == []


def test_the_banner_says_the_verdict_in_postfinances_terms() -> None:
    report = critical_report()
    page = render(report, "html")
    assert '<header class="banner v-critical" data-verdict="CRITICAL">' in page
    assert "PostFinance would report a process error because: endpoint answers with a 5xx error" in page
    assert "<title>feedback-check check: CRITICAL</title>" in page


def test_summary_has_a_row_per_url_and_firewall() -> None:
    page = render(critical_report(), "html")
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert summary.count("<tr>") == 1 + 2 + 1
    assert "1,024 of 2,304 published addresses blocked" in summary


def test_range_bars_carry_the_analysis_numbers_and_the_deciding_rule() -> None:
    page = render(critical_report(), "html")
    bars = re.findall(r'<svg class="bar"[^>]*data-range="([^"]+)"[^>]*data-size="(\d+)" data-admitted="(\d+)" '
                      r'data-blocked="(\d+)"', page)
    assert bars == [("185.139.244.0/22", "1024", "0", "1024"), ("91.208.214.0/24", "256", "256", "0"),
                    ("185.8.52.0/22", "1024", "512", "512")]
    blocked = re.search(r'<rect class="piece blocked" x="0\.000000" y="0" width="1000\.000000"[^>]*'
                        r'data-start="0" data-size="1024" data-state="blocked" '
                        r'data-rule="/etc/iptables/rules.v4:12"><title>([^<]+)</title>', page)
    assert blocked is not None
    assert "185.139.244.0 – 185.139.247.255 (1,024 addresses) blocked by /etc/iptables/rules.v4:12" in blocked.group(1)
    assert "iptables -I INPUT 3 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT" in page.split("<pre")[1]
    half = re.search(r'<rect class="piece admitted" x="0\.000000" y="0" width="500\.000000"[^>]*data-size="512"', page)
    assert half is not None, "185.8.52.0/23 of 185.8.52.0/22: the first half, admitted"


def test_a_bar_per_layer_and_the_rule_of_each_blocked_piece() -> None:
    report = two_layer_report()
    (firewall,) = report.firewalls
    views = {v.cidr: v for v in range_views(firewall)}
    legacy = views["185.8.52.0/22"]
    assert [bar.label for bar in legacy.layer_bars] == [layer.name for layer in firewall.analysis.layers]
    assert legacy.total_bar.count("admitted") == 3 and legacy.layer_bars[0].count("admitted") == 1024
    assert legacy.layer_bars[1].count("admitted") == 3
    assert all(p.rule.endswith("legacy-2019.rules:3") and p.by_policy for p in legacy.total_bar.pieces
               if p.state == "blocked")
    uncertain = views["91.208.214.0/24"]
    assert [p.state for p in uncertain.total_bar.pieces] == ["uncertain"]
    assert uncertain.total_bar.pieces[0].rule.endswith("describe-security-groups.json"), \
        "an uncertain piece keeps the rule that blocks it otherwise"
    page = render(report, "html")
    assert page.count('<svg class="bar"') == 3 * 3
    assert "implicit deny of security groups" in page


def test_timelines_show_each_phase_against_slow_threshold_and_budget() -> None:
    report = warning_report()
    report = Report(**{**report.__dict__, "platform": {"budget_seconds": 20.0, "slow_seconds": 5.0}})
    page = render(report, "html")
    phases = re.findall(r'<rect class="seg (\w+)"[^>]*data-start="([\d.]+)" data-seconds="([\d.]+)"', page)
    assert [p[0] for p in phases] == ["dns", "connect", "tls", "wait", "read"]
    # DNS 4 ms, then the request's own connect 2 ms and TLS 11 ms; first byte 31 ms and total 48 ms after its start.
    assert [float(p[2]) for p in phases] == [0.004, 0.002, 0.011, 0.018, 0.017]
    assert float(phases[-1][1]) + float(phases[-1][2]) == 0.004 + 0.048
    assert 'class="limit slow"' in page and 'data-seconds="5.0"' in page and 'data-seconds="20.0"' in page


def test_a_finding_of_any_code_is_shown_with_evidence_and_fix() -> None:
    novel = Finding(code="logs.new_kind", severity=Severity.WARNING, target="/var/log/nginx/access.log",
                    title="Something new in the logs", detail="12 post-sale requests answered 499.",
                    evidence={"lines": [17, 23], "status": {"499": 12}, "sample": "<GET /fb>"},
                    fix="Raise proxy_read_timeout.\nReload nginx.")
    page = render(Report(command="logs", findings=(novel,), started=NOW), "html")
    assert 'data-code="logs.new_kind"' in page and "Something new in the logs" in page
    assert "17, 23" in page and "<tr><th>499</th><td>12</td></tr>" in page and "&lt;GET /fb&gt;" in page
    assert '<pre class="fix">Raise proxy_read_timeout.\nReload nginx.</pre>' in page


def test_assumptions_and_notes_are_listed() -> None:
    page = render(critical_report(), "html")
    assert '<section id="assumptions">' in page and "20 s assumed" in page
    assert '<section id="notes">' in page and "not from PostFinance" in page


def test_hostile_text_cannot_break_out_of_attributes() -> None:
    page = render(SAMPLES["hostile"](), "html")
    for _, attributes in parse(page).tags:
        for name in attributes:
            assert re.fullmatch(r"[a-z][a-z0-9-]*", name), f"a stray attribute {name!r}"
    assert HOSTILE not in page


def test_many_healthy_urls_are_one_row_each_and_the_failing_ones_in_full() -> None:
    report = SAMPLES["many"]()
    page = render(report, "html")
    failing = [t for t in report.targets if t.verdict.name != "OK"]
    assert page.count('<article class="card target">') == len(failing) == 10
    healthy = page.split('<table class="healthy">')[1].split("</table>")[0]
    assert healthy.count("<tr>") == 1 + len(report.targets) - len(failing)
    assert len(page) < 400_000, "a 200-shop page stays small enough to mail"


def test_a_timeline_row_per_resolved_address_including_one_that_refused() -> None:
    from feedback_check.reporters.views import address_timelines
    from tests.unit.test_reporters_samples import probe_result, refused_result

    result = probe_result()
    assert result.dns is not None
    result = replace(result, addresses=(*result.addresses, *refused_result("203.0.113.11").addresses),
                     dns=replace(result.dns, ipv4=("203.0.113.10", "203.0.113.11")))
    url = "https://shop-ch.example/postfinance/feedback"
    two = target("shop-ch", "accepted", url, [finding("connect.refused", "shop-ch", "accepted", "203.0.113.11")],
                 probe=result)
    lines = address_timelines(two)
    assert [tl.address for tl in lines] == ["203.0.113.10", "203.0.113.11"]
    assert lines[0].total == 0.004 + 0.048 and lines[1].total is None
    assert [s.phase for s in lines[1].segments] == ["dns", "connect"]
    assert lines[1].outcome == "connect refused: connection refused"
    page = render(Report(command="check", findings=two.findings, targets=(two,), started=NOW), "html")
    assert page.count('data-phase="dns"') == 2
    assert "connect refused: connection refused" in page


def test_access_log_evidence_has_its_own_section_and_its_findings_appear_once() -> None:
    from feedback_check.logs.analysis import LogQuery
    from feedback_check.logs.judgement import check_logs

    logs = sorted(str(p) for p in (EXAMPLES.parent / "logs").glob("access.log*"))
    summary = check_logs(logs, load_platform(), LogQuery())
    assert summary.findings, "the shipped example logs have a finding"
    report = Report(command="logs", findings=summary.findings, logs=(summary,), started=NOW)
    page = render(report, "html")
    assert '<section id="logs">' in page and "3 log files" in page
    assert "post-sales from PostFinance: 78" in page
    for log_finding in summary.findings:
        code = log_finding.code
        shown = f'data-code="{code}"' if log_finding.severity is not Severity.INFO else f'<span class="mono">{code}</span>'
        assert page.count(shown) == 1, code
    assert '<section id="general">' not in page


# --- audit 22 -----------------------------------------------------------------------------------------

def test_evidence_records_are_key_value_tables_and_empty_rows_are_hidden() -> None:
    page = render(critical_report(), "html")
    blocked = page[page.index('data-code="firewall.range_blocked"'):]
    blocked = blocked[:blocked.index("</dl>")]
    # The deciding record is a small table, never a raw {layer=…, rule=…} dict.
    assert '<table class="kv"><tr><th>layer</th><td>server iptables</td></tr>' in blocked
    assert "{layer=" not in page and "rule=/etc" not in page
    # admitted=[] and uncertain=[] have nothing to show: no row.
    assert "<dt>admitted</dt>" not in blocked and "<dt>uncertain</dt>" not in blocked
    assert "<dt>blocked</dt>" in blocked


def test_cidrs_never_break_inside() -> None:
    page = render(critical_report(), "html")
    assert ".cidr { white-space: nowrap; }" in page
    assert '<span class="cidr">185.139.244.0/22</span>' in page
    pieces = page[page.index('<table class="pieces">'):]
    pieces = pieces[:pieces.index("</table>")]
    assert '<td class="mono"><span class="cidr">185.139.244.0/22</span></td>' in pieces
    body = re.sub(r"<pre[^>]*>.*?</pre>", "", page.split("</style>", 1)[1], flags=re.DOTALL)  # never wrapped
    bare = re.sub(r'<(span|strong) class="[^"]*\bcidr">[^<]*</\1>', "", body)
    text = re.sub(r"<[^>]+>", " ", re.sub(r'(?:data-[a-z-]+|aria-label)="[^"]*"', "", bare))
    assert not re.search(r"\b185\.139\.244\.0/22\b", text), "every CIDR shown as text is kept whole"


def test_the_layer_list_shows_blocks_and_admits_counts_like_the_text_report() -> None:
    page = render(critical_report(), "html")
    layers = page[page.index("<h4>Layers (outermost first)</h4>"):]
    layers = layers[:layers.index("</ol>")]
    text = re.sub(r"<[^>]+>", "", layers)
    assert "blocks 1,024 of the 2,304 published addresses: 185.139.244.0/22" in text
    assert "admits 1,280 of the 2,304 published addresses: 91.208.214.0/24, 185.8.52.0/22" in text


def test_a_generated_layer_name_names_its_format_once() -> None:
    page = render(two_layer_report(), "html")
    text = re.sub(r"<[^>]+>", "", page)
    assert "layer 1 (aws-sg, " in text and "layer 1 (aws-sg) (aws-sg" not in text
