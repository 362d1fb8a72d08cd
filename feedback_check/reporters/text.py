"""`--format text`: the report for people.

Layout, most important first:

1. the verdict and the one-sentence answer (`Report.answer()`);
2. with more than one URL or firewall, a summary table (shop, URL role, verdict, main finding, URL);
3. the details of every URL and firewall that is not OK: phases with timings, per resolved address,
   then the findings with evidence and fix; the firewall per layer / range (admitted and blocked CIDRs,
   deciding rule, fix lines);
4. healthy URLs condensed to one line each (in full when the run is small);
5. findings not tied to a URL or firewall (profile, range list), the changes since the last run
   (`--state`), the assumptions that decided a verdict, and the notes.

The report fits the width it is given (the CLI passes the terminal's, 80 when not a terminal): long lines
wrap with a hanging indent, the summary table shortens its cells with an ellipsis, and long CIDR lists
are summarised ("3 of 1,024 addresses admitted: …"); see `reporters.terminal`.

Everything that came from the network (headers, bodies, error texts) passes through `clean()` so a
hostile server cannot put terminal escape sequences on the user's screen. Colour (ANSI) only when the
caller asks for it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from feedback_check.findings import Finding, Severity, Verdict, ranked
from feedback_check.report import (
    PHASES,
    FirewallSummary,
    Report,
    ShopSummary,
    TargetSummary,
    finding_key,
    general_findings,
)
from feedback_check.reporters import terminal, views
from feedback_check.reporters.terminal import Painter
from feedback_check.reporters.views import (
    clean,
    main_finding,
    seconds_text,
    target_label,
)

if TYPE_CHECKING:
    from feedback_check.firewall.verdict import FirewallVerdict, LayerVerdict, RangeVerdict
    from feedback_check.payload import SimulatedPostSale
    from feedback_check.probe.dns import Resolution
    from feedback_check.probe.http import HttpResult
    from feedback_check.probe.result import AddressProbe, FollowUpRequest, ProbeResult
    from feedback_check.probe.tcp import ConnectResult
    from feedback_check.probe.tls import TlsResult

#: With at most this many URLs, healthy ones are shown in full too; above it they are condensed.
FULL_DETAIL_LIMIT = 4
#: With at most this many rows, the summary table lists OK rows too; above it only the others.
TABLE_ALL_ROWS_LIMIT = 20
#: The longest the evidence line of a finding may be.
MAX_EVIDENCE_CHARS = 600
#: How many items of a list in the details are shown before "(+N more)".
MAX_LIST_ITEMS = 12
#: How many lines the generic details of one URL or firewall may take.
MAX_DETAIL_LINES = 60
#: How many resolved addresses of one URL are shown.
MAX_ADDRESSES = 8
#: The width when the caller gives none (what a terminal that cannot say has).
DEFAULT_WIDTH = 80
#: How many CIDRs a summarised list shows before "(+N more)".
CIDRS_SHOWN = 3

_SEVERITY_MARK = {Severity.CRITICAL: "✗", Severity.WARNING: "!", Severity.INFO: "·"}


# --- rendering ----------------------------------------------------------------------------------------

def render(report: Report, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """The whole text report, no line wider than `width` columns."""
    p = Painter(color)
    width = max(width, 40)
    out = _head_lines(report, p, width) + _block_lines(report, p) + _closing_lines(report, p)
    return "\n".join(terminal.fit_lines(out, width)) + "\n"


def _head_lines(report: Report, p: Painter, width: int) -> list[str]:
    """The verdict and the answer, the run line, lab mode and (with more than one row) the summary table."""
    verdict = report.verdict
    out = terminal.wrap(f"{p.verdict(verdict)}  {clean(report.answer(), 1000)}", width, hang=len(verdict.name) + 2)
    out += [p(line, "dim") for line in _run_lines(report, width)]
    if report.lab:
        out.append(p("Lab mode: private addresses and non-standard ports are reported as information.", "dim"))
    rows = len(report.targets) + len(report.firewalls) + sum(1 for s in report.shops if s.error)
    if rows > 1:
        out += ["", p("Summary", "bold")]
        out += _summary_table(report, p, all_rows=rows <= TABLE_ALL_ROWS_LIMIT, width=width)
    return out


def _block_lines(report: Report, p: Painter) -> list[str]:
    """Shops not checked, URLs in full (worst first), firewalls, access logs, healthy URLs condensed."""
    targets = report.targets
    full = len(targets) <= FULL_DETAIL_LIMIT
    detailed = [t for t in targets if t.verdict is not Verdict.OK or full]
    condensed = [t for t in targets if t.verdict is Verdict.OK and not full]
    out: list[str] = []
    for shop in report.shops:
        if shop.error:
            out += ["", _shop_error_block(shop, p)]
    for target in sorted(detailed, key=lambda t: -t.verdict.value):
        out += [""] + _target_block(target, p)
    for firewall in sorted(report.firewalls, key=lambda f: -f.verdict.value):
        out += [""] + _firewall_block(firewall, p, views.firewall_target(firewall, report))
    if report.logs:
        from feedback_check.logs.render import text_lines
        for summary in report.logs:
            out += [""] + text_lines(summary, p, lambda f: _finding_lines(f, p, indent="  "))
    if condensed:
        out += ["", p(f"OK ({len(condensed)} URL{'s' * (len(condensed) != 1)})", "bold")]
        out += _condensed_lines(condensed, p)
    return out


def _closing_lines(report: Report, p: Painter) -> list[str]:
    """Findings of no URL or firewall, the changes since the last run, the assumptions and the notes."""
    out: list[str] = []
    general = general_findings(report)
    if report.logs:                        # rendered in the access-log blocks
        shown = {finding_key(f) for summary in report.logs for f in summary.findings}
        general = [f for f in general if finding_key(f) not in shown]
    if general:
        out += ["", p("Profile and platform", "bold")]
        for finding in ranked(general):
            out += _finding_lines(finding, p, indent="  ")
    if report.changes is not None:
        out += ["", p("Changes since the last run", "bold")]
        out += _changes_lines(report.changes, p)
    for title, texts in (("Assumptions that decided the verdict", report.assumptions), ("Notes", report.notes)):
        if texts:
            out += ["", p(title, "bold")]
            out += [f"  - {clean(text, 1000)}" for text in texts]
    return out


def _run_lines(report: Report, width: int) -> list[str]:
    """`feedback-check check · <time> · 1.23 s · 5 URLs, 2 firewalls, 4 shops`; when that does not fit the
    width, the counts go on a line of their own, so no phrase is split across lines."""
    started = report.started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    counts = []
    if report.targets:
        counts.append(f"{views.count_text(len(report.targets))} URL{'s' * (len(report.targets) != 1)}")
    if report.firewalls:
        counts.append(f"{views.count_text(len(report.firewalls))} firewall{'s' * (len(report.firewalls) != 1)}")
    if report.logs:
        files = sum(len(summary.evidence.files) for summary in report.logs)
        counts.append(f"{views.count_text(files)} log file{'s' * (files != 1)}")
    shops = len(report.shops) or len({t.shop for t in report.targets if t.shop})
    if shops > 1:
        counts.append(f"{views.count_text(shops)} shops")
    what = ", ".join(counts) or "nothing checked"
    head = f"feedback-check {report.command} · {started} · {report.duration_seconds:.2f} s"
    if terminal.display_width(f"{head} · {what}") <= width:
        return [f"{head} · {what}"]
    # "4 shops", "2.16 s" and the time stay together when a line still has to wrap.
    return [re.sub(r"(\d) (?=\w)", "\\1" + terminal.KEEP_TOGETHER, line) for line in (head, f"checked: {what}")]


_TABLE_COLUMNS = (terminal.Column("SHOP", minimum=10, shrink=2), terminal.Column("ROLE", minimum=8, shrink=2),
                  terminal.Column("VERDICT", minimum=8, shrink=3), terminal.Column("MAIN FINDING", minimum=24),
                  terminal.Column("URL / WHAT", minimum=16, optional=True))


def _summary_table(report: Report, p: Painter, *, all_rows: bool, width: int) -> list[str]:
    rows: list[tuple[Verdict, str, str, str, str]] = []
    for shop in report.shops:
        if shop.error:
            rows.append((Verdict.UNKNOWN, clean(shop.name, 60), "(shop)", clean(shop.error, 200), ""))
    for t in report.targets:
        main = main_finding(t.findings, lab=report.lab)
        rows.append((t.verdict, clean(t.shop or "-", 60), clean(t.role, 30), _finding_cell(main), clean(t.url, 200)))
    for fw in report.firewalls:
        main = main_finding(fw.findings, lab=report.lab)
        rows.append((fw.verdict, clean(fw.shop or "-", 60), f"firewall :{fw.port}", _finding_cell(main),
                     (f"{views.count_text(fw.blocked_addresses)} of {views.count_text(fw.published_addresses)} "
                     "published addresses blocked")))
    hidden = 0
    if not all_rows:
        hidden = sum(1 for r in rows if r[0] is Verdict.OK)
        rows = [r for r in rows if r[0] is not Verdict.OK]
    cells = [(shop_name, role, verdict.name, finding, what) for verdict, shop_name, role, finding, what in rows]
    styles = [(None, None, p.verdict(verdict) if p.color else None, None, None) for verdict, *_ in rows]
    lines = terminal.table(_TABLE_COLUMNS, cells, width, styles=styles)
    if hidden:
        lines.append(f"  … and {hidden} OK (listed at the end)")
    return lines


def _finding_cell(finding: Finding | None) -> str:
    if finding is None:
        return "-"
    return clean(f"{finding.code} {finding.title}", 200)


def _target_block(t: TargetSummary, p: Painter) -> list[str]:
    head = f"{p.verdict(t.verdict)}  {clean(target_label(t), 80)}  {clean(t.method, 10)} {clean(t.url, 500)}"
    lines = [p("━━ ", "bold") + head]
    timing = _timings_text(t.timings)
    if timing:
        lines.append(f"  timings: {timing}")
    if t.cert_not_after is not None:
        days = t.cert_days_left or 0.0
        when = t.cert_not_after.astimezone(dt.UTC).strftime("%Y-%m-%d")
        lines.append(f"  certificate: valid until {when} ({days:.0f} days left)")
    show_signed = any(f.code == "signature.rejected" for f in t.findings)
    return lines + _probe_lines(t.probe, show_signed) + _findings_lines(t.findings, p)


def _firewall_block(fw: FirewallSummary, p: Painter, target: str = "") -> list[str]:
    label = f"{fw.shop} · firewall" if fw.shop else "firewall"
    head = (f"{p.verdict(fw.verdict)}  {clean(label, 80)}  port {fw.port}: "
            f"{views.count_text(fw.blocked_addresses)} of {views.count_text(fw.published_addresses)} "
            "published addresses blocked")
    lines = [p("━━ ", "bold") + head]
    if fw.uncertain:
        lines.append(p("  uncertain: a rule the analyser cannot evaluate, or an unparsed line, could decide.",
                       "yellow"))
    if target:
        lines.append(f"  for: {clean(target, 500)}")
    return lines + _firewall_lines(fw.analysis, p, fw.published_addresses) + _findings_lines(fw.findings, p)


def _findings_lines(findings: Sequence[Finding], p: Painter) -> list[str]:
    """Warnings and critical findings in full; info findings one line each."""
    if not findings:
        return []
    lines = ["  findings:"]
    for finding in ranked(findings):
        if finding.severity is Severity.INFO:
            mark = p.severity(Severity.INFO, f"{_SEVERITY_MARK[Severity.INFO]} {'INFO':8}")
            lines.append(f"    {mark} {clean(finding.code, 60)}  {clean(finding.title, 200)}")
        else:
            lines += _finding_lines(finding, p, indent="    ")
    return lines


# --- probe results (probe.result.ProbeResult: url_check, request, dns, addresses, follow_ups) ------------

def _probe_lines(result: ProbeResult | None, show_signed: bool) -> list[str]:
    if result is None:
        return []
    from feedback_check.probe.url import redact_url

    lines: list[str] = []
    url_check = result.url_check
    if url_check.effective and url_check.effective != redact_url(url_check.configured):
        lines.append(f"  effective URL: {clean(url_check.effective, 500)}")
    if result.request is not None:
        lines += _request_lines(result.request, show_signed, views.request_label(result.addresses))
    if result.dns is not None:
        lines.append(f"  dns: {_dns_text(result.dns)}")
    addresses = result.addresses
    for address in addresses[:MAX_ADDRESSES]:
        lines += _address_lines(address)
    if len(addresses) > MAX_ADDRESSES:
        lines.append(f"  … and {len(addresses) - MAX_ADDRESSES} more addresses (see --format json)")
    lines += [f"  also sent: {text}" for text in _follow_up_texts(result.follow_ups.requests if result.follow_ups is not None else ())]
    return _bounded(lines, "  ")


def _bounded(lines: list[str], indent: str) -> list[str]:
    if len(lines) <= MAX_DETAIL_LINES:
        return lines
    hidden = len(lines) - MAX_DETAIL_LINES
    return lines[:MAX_DETAIL_LINES] + [f"{indent}… ({hidden} more lines: see --format json)"]


_number = views.number
_rounded = views.seconds_of


def _request_lines(request: SimulatedPostSale, show_signed: bool, label: str) -> list[str]:
    parameters = request.all_parameters()
    head = [clean(request.method, 10), f"STATUS={clean(request.status, 10)}"]
    if request.order_id:
        source = clean(request.order_source or "", 80)
        head.append(f"orderID={clean(request.order_id, 60)}" + (f" ({source})" if source else ""))
    signed = "/".join(clean(value, 20) for value in (request.algorithm, request.encoding) if value)
    text = " ".join(h for h in head if h)
    text += f", {len(parameters)} parameters" if parameters else ""
    text += f", signed {signed}" if signed else ""
    lines = [f"  {label}: {text}"]
    if parameters:
        names = ", ".join(clean(name, 40) for name, _ in parameters)
        lines.append(f"  parameters: {clean(names, 400)}")
    if show_signed and request.signed_masked:
        lines.append(f"  hashed string (passphrase masked): {clean(request.signed_masked, 1000)}")
    return lines


def _dns_text(dns: Resolution) -> str:
    text = f"{clean(dns.host, 200)} → {clean(views.resolved_text(dns), 300)}"
    seconds = _rounded(dns.seconds)
    if seconds:
        text += f" in {seconds_text(seconds)}"
    if dns.resolver_note:
        text += f" ({clean(dns.resolver_note, 200)})"
    if dns.cname_chain:
        text += "; CNAME " + " → ".join(clean(c, 200) for c in dns.cname_chain)
    if dns.views:
        text += "; views: " + "; ".join(f"{clean(k, 60)} → {_inline(list(v))}" for k, v in dns.views.items())
    return text


def _address_lines(address: AddressProbe) -> list[str]:
    lines = [f"  {clean(address.address, 60)}:", f"    connect  {_phase_text(address.connect)}"]
    tls = address.tls
    if tls is not None:
        text = _phase_text(tls, (tls.version, tls.cipher))
        certificate = _certificate_text(tls)
        lines.append(f"    tls      {text}" + (f" · {certificate}" if certificate else ""))
    if address.http is not None:
        lines += _http_lines(address.http)
    return lines


def _phase_text(phase: ConnectResult | TlsResult, extra: tuple[str | None, ...] = ()) -> str:
    parts = [clean(phase.status.value, 40)]
    parts += [clean(value, 80) for value in extra if value]
    parts.append(seconds_text(_rounded(phase.seconds)))
    if phase.error:
        parts.append(f"({clean(phase.error, 300)})")
    return " ".join(parts)


def _certificate_text(tls: TlsResult) -> str:
    parts = []
    if tls.leaf is not None:
        parts.append(f"certificate {clean(tls.leaf.subject, 120)} by {clean(tls.leaf.issuer, 120)}")
    check = tls.check
    if check is not None:
        if check.days_left is not None:
            parts.append(f"{round(check.days_left, 2):.0f} days left")
        if check.problems:
            parts.append("problems: " + ", ".join(clean(x.value, 60) for x in check.problems))
    return ", ".join(parts)


def _http_lines(http: HttpResult) -> list[str]:
    parts = [clean(http.status_line or http.status.value, 200)]
    for name, seconds in (("first byte", http.ttfb_seconds), ("total", http.total_seconds)):
        if seconds is not None:
            parts.append(f"{name} {seconds_text(_rounded(seconds))}")
    if http.verified is False:
        parts.append("sent without verifying the certificate")
    headers = {name: value for name, value in http.headers if name.lower() in views.SHOWN_HEADERS}
    parts += [f"{clean(name, 40)}: {clean(value, 200)}" for name, value in headers.items()]
    if http.error:
        parts.append(f"({clean(http.error, 300)})")
    lines = [f"    http     {clean(http.method, 10)} → " + " · ".join(parts)]
    excerpt = http.body_text()
    if excerpt:
        lines.append(f"             body: {clean(excerpt, 160)}")
    return lines


#: How a re-signed variant's request is named by the probe (`signed for a handler using SHA-1 instead of …`).
_VARIANT_PREFIX = "signed for a handler using "
#: How many variant names a condensed "also sent" line shows.
VARIANT_NAMES_SHOWN = 2


def _answer_of(follow_up: FollowUpRequest) -> str:
    return follow_up.status_line or (follow_up.status.value if follow_up.status is not None else "") or "?"


def _follow_up_texts(follow_ups: Sequence[FollowUpRequest]) -> list[str]:
    """One text per follow-up request, except that re-signed variants with the same answer are one line:
    `11 re-signed variants (SHA-1, SHA-256, …) (POST) → all HTTP/1.1 500 …` (each variant stays named
    in --format json)."""
    groups: dict[tuple[str, str, str], list[FollowUpRequest]] = {}
    order: list[FollowUpRequest | tuple[str, str, str]] = []
    for follow_up in follow_ups:
        if not follow_up.request.startswith(_VARIANT_PREFIX) or follow_up.skipped:
            order.append(follow_up)
            continue
        key = (follow_up.method, _answer_of(follow_up), follow_up.error)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(follow_up)
    texts = []
    for item in order:
        if not isinstance(item, tuple):
            texts.append(_follow_up_text(item))
            continue
        members = groups[item]
        if len(members) == 1:
            texts.append(_follow_up_text(members[0]))
            continue
        method, answer, error = item
        names = [clean(m.request[len(_VARIANT_PREFIX):].split(" instead of ")[0], 60) for m in members]
        shown = ", ".join(names[:VARIANT_NAMES_SHOWN]) + (", …" if len(names) > VARIANT_NAMES_SHOWN else "")
        text = f"{len(members)} re-signed variants ({shown}){f' ({clean(method, 10)})' if method else ''} → all " \
               f"{clean(answer, 200)}"
        texts.append(text + (f" ({clean(error, 200)})" if error else ""))
    return texts


def _follow_up_text(follow_up: FollowUpRequest) -> str:
    what = clean(follow_up.request, 120)
    if follow_up.skipped:
        return f"{what}: skipped ({clean(follow_up.skipped, 200)})"
    method = clean(follow_up.method, 10)
    text = f"{what}{f' ({method})' if method and method not in what else ''} → {clean(_answer_of(follow_up), 200)}"
    if follow_up.error:
        text += f" ({clean(follow_up.error, 200)})"
    return text


# --- firewall details (firewall.verdict: layers, ranges, fix_lines) ------------------------------------

_RANGE_MARK = {"admitted": "✓", "blocked": "✗", "partly blocked": "✗", "uncertain": "?"}


def _summary(cidrs: Sequence[str], total: int, what: str) -> str:
    """`3 of 1,024 addresses admitted: a, b, c (+2 more)` (CIDR texts cleaned)."""
    return views.cidr_summary([clean(c, 60) for c in cidrs], total, what, most=CIDRS_SHOWN)


def _of_published(cidrs: Sequence[str], total: int) -> str:
    """`2,301 of the 2,304 published addresses: a, b, c (+24 more)`."""
    return views.of_published([clean(c, 60) for c in cidrs], total, CIDRS_SHOWN)


def _firewall_lines(analysis: FirewallVerdict, p: Painter, published: int = 0) -> list[str]:
    lines: list[str] = []
    if analysis.layers:
        lines.append("  layers (outermost first):")
    for number, layer in enumerate(analysis.layers, start=1):
        lines += _layer_lines(number, layer, p, published)
    if analysis.ranges:
        lines.append("  published ranges:")
    for entry in analysis.ranges:
        lines += _range_lines(entry, p)
    fix_lines = analysis.all_fix_lines()
    if fix_lines:
        lines.append("  " + p("fix", "cyan") + " (in each layer's own syntax):")
        lines += [f"    {clean(line, 500)}" for line in fix_lines]
    return _bounded(lines, "  ")


def _layer_lines(number: int, layer: LayerVerdict, p: Painter, published: int) -> list[str]:
    name, where = views.layer_label(layer)
    lines = [f"    {number}. {clean(name, 100)}" + (f" ({clean(where, 400)})" if where else "")]
    if layer.open_to_world:
        lines.append("       open to every source")
    elif layer.blocks_published:
        total = published or views.address_set(layer.blocks_published + layer.admits_published).size()
        lines.append(f"       blocks {_of_published(layer.blocks_published, total)}")
        if layer.admits_published:
            lines.append(f"       admits {_of_published(layer.admits_published, total)}")
    elif layer.admits_published:
        lines.append("       admits every published address")
    lines += [p(f"       not understood: {clean(item, 300)}", "yellow") for item in layer.unparsed[:MAX_LIST_ITEMS]]
    lines += [f"       note: {clean(note, 300)}" for note in layer.notes[:MAX_LIST_ITEMS]]
    return lines


def _range_lines(entry: RangeVerdict, p: Painter) -> list[str]:
    verdict = entry.state
    mark = _RANGE_MARK.get(verdict, "·")
    style = "green" if verdict == "admitted" else ("yellow" if verdict == "uncertain" else "red")
    text = f"    {p(mark, style)} {clean(entry.cidr, 60)} {clean(verdict, 30)}"
    if verdict == "partly blocked":
        size = views.address_set([entry.cidr]).size()
        text += ": " + (_summary(entry.admitted, size, "admitted") if len(entry.admitted) <= len(entry.blocked)
                        else _summary(entry.blocked, size, "blocked"))
    lines = [text]
    for decision in entry.deciding:
        policy = " (default policy)" if decision.by_policy else ""
        rule_text = f" `{clean(decision.text, 200)}`" if decision.text else ""
        lines.append(f"        {clean(decision.action or 'blocked', 20)} by {clean(decision.rule or '?', 300)}"
                     f"{rule_text}{policy}")
    return lines


def _shop_error_block(shop: ShopSummary, p: Painter) -> str:
    return p("━━ ", "bold") + f"{p.verdict(Verdict.UNKNOWN)}  {clean(shop.name, 80)}: not checked: " \
        f"{clean(shop.error or '', 500)}"


def _condensed_lines(targets: list[TargetSummary], p: Painter) -> list[str]:
    """One line per shop: its OK URLs by role with their total time."""
    by_shop: dict[str, list[TargetSummary]] = {}
    for t in targets:
        by_shop.setdefault(t.shop, []).append(t)
    lines = []
    for shop_name, shop_targets in by_shop.items():
        parts = []
        for t in shop_targets:
            total = _number(t.timings.get("total")) if t.timings else None
            parts.append(f"{clean(t.role, 30)} {seconds_text(total)}" if total is not None else clean(t.role, 30))
        name = clean(shop_name, 60) if shop_name else "-"
        lines.append(f"  {p.verdict(Verdict.OK)}  {name}: " + " · ".join(parts))
    return lines


def _timings_text(timings: Mapping[str, float | None]) -> str:
    if not timings:
        return ""
    names = [n for n in PHASES if n in timings] + [n for n in timings if n not in PHASES]
    parts = [f"{clean(n, 30)} {seconds_text(_number(timings[n]))}" for n in names]
    return " · ".join(parts)


def _finding_lines(f: Finding, p: Painter, *, indent: str) -> list[str]:
    mark = p.severity(f.severity, f"{_SEVERITY_MARK[f.severity]} {f.severity.value.upper():8}")
    where = f"  [{clean(f.target, 200)}]" if f.target else ""
    lines = [f"{indent}{mark} {p(clean(f.code, 60), 'bold')}  {clean(f.title, 200)}{where}"]
    sub = indent + "    "
    if f.detail:
        lines.append(f"{sub}{clean(f.detail, 1000)}")
    if f.evidence:
        evidence = "; ".join(f"{clean(k, 40)}={_evidence_value(v)}" for k, v in f.evidence.items())
        lines.append(f"{sub}evidence: {clean(evidence, MAX_EVIDENCE_CHARS)}")
    if f.fix and f.severity is not Severity.INFO:
        first, *more = [line for line in str(f.fix).splitlines() if line.strip()] or [""]
        lines.append(f"{sub}{p('fix:', 'cyan')} {clean(first, 1000)}")
        lines += [f"{sub}     {clean(line, 1000)}" for line in more]
    return lines


def _evidence_value(value: Any) -> str:
    """Evidence values inline; lists of records (shown elsewhere in the report) only counted, long CIDR
    lists summarised."""
    if isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
        return f"[{len(value)} record{'s' * (len(value) != 1)}]"
    if isinstance(value, (list, tuple)) and len(value) > CIDRS_SHOWN and all(_is_cidr(v) for v in value):
        size = views.address_set(value).size()
        shown = ", ".join(clean(v, 60) for v in value[:CIDRS_SHOWN])
        return f"[{views.count_text(size)} addresses in {len(value)} CIDRs: {shown} …]"
    return _inline(value)


def _is_cidr(value: Any) -> bool:
    return isinstance(value, str) and bool(views.address_set([value])) and value[:1].isalnum()


def _inline(value: Any) -> str:
    """A value on one line: scalars as they are, lists joined, mappings as k=v."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{clean(k, 40)}={_inline(v)}" for k, v in list(value.items())[:MAX_LIST_ITEMS]) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        shown = ", ".join(_inline(v) for v in items[:MAX_LIST_ITEMS])
        more = f", … (+{len(items) - MAX_LIST_ITEMS} more)" if len(items) > MAX_LIST_ITEMS else ""
        return f"[{shown}{more}]"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    return clean(value)


def _changes_lines(changes: Mapping[str, Any], p: Painter) -> list[str]:
    lines: list[str] = []
    previous = changes.get("previous_run")
    if changes.get("first_run"):
        lines.append("  first run with this state file: nothing to compare with yet.")
    elif previous:
        lines.append(f"  previous run: {clean(previous, 60)}")
    for change in changes.get("verdict_changes", ()):
        lines.append(f"  {clean(_where(change), 200)}: {clean(change.get('from'), 20)} → "
                     f"{p.verdict(_verdict_named(change.get('to')), clean(change.get('to'), 20))}")
    for finding in changes.get("new", ()):
        severity = _severity_named(finding.get("severity"))
        lines.append(f"  {p.severity(severity, 'NEW     ')} {clean(finding.get('code'), 60)}  "
                     f"{clean(_where(finding), 200)}")
    for finding in changes.get("resolved", ()):
        lines.append(f"  {p('RESOLVED', 'green')} {clean(finding.get('code'), 60)}  {clean(_where(finding), 200)}")
    if not lines[1 if changes.get("first_run") or previous else 0:]:
        lines.append("  no change.")
    return lines


def _where(entry: Mapping[str, Any]) -> str:
    return " · ".join(str(entry[k]) for k in ("shop", "role", "url") if entry.get(k))


def _verdict_named(name: Any) -> Verdict:
    return Verdict.__members__.get(str(name), Verdict.UNKNOWN)


def _severity_named(name: Any) -> Severity:
    try:
        return Severity(str(name))
    except ValueError:
        return Severity.INFO
