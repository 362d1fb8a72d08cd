"""`--format html`: one self-contained page a merchant can forward to an agency or a hosting provider.

The page carries everything inline: one stylesheet (with a print stylesheet, so "print to PDF" gives a
clean document), no script, no font, no image file, nothing fetched from a network. The pictures are
inline SVG drawn here — a handful of rectangles per bar do not need a charting library, and the page
stays readable without JavaScript, in a mail client's viewer and on paper:

- the verdict banner with the one-sentence answer in PostFinance's terms, the summary per shop and role;
- per firewall and published range, bars of the range's address space with the admitted and blocked
  parts drawn to scale (all layers together, then each layer), each blocked piece naming the rule that
  decided it (file:line) in its tooltip and in a visible list, and the fix lines ready to copy;
- per URL, the phases of the simulated post-sale (DNS, connect, TLS, first byte, total) per resolved
  address against the platform's time budget and slow threshold;
- every finding with evidence and fix, the assumptions that decided the verdict, the notes.

Every text passes through `_e()` (HTML-escaped, control characters shown as \\xNN), so a hostile server
cannot inject markup. The report reaching a reporter is already masked (`report.redact_report`): the
SHA-OUT passphrase cannot appear. SVG pieces expose their numbers as data attributes (data-start,
data-size, data-state; data-admitted, data-blocked and data-size on the bar) so tests can compare the
drawn widths with the analysis.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from feedback_check import __version__
from feedback_check.findings import Finding, Severity, Verdict, ranked
from feedback_check.report import PHASES, FirewallSummary, Report, TargetSummary, general_findings
from feedback_check.reporters.terminal import Painter
from feedback_check.reporters.views import (
    ADMITTED,
    BLOCKED,
    SHOWN_HEADERS,
    UNCERTAIN,
    Bar,
    RangeView,
    Timeline,
    address_set,
    address_timelines,
    addresses_of,
    cidr_summary,
    count_text,
    dns_of,
    firewall_target,
    fix_lines_of,
    follow_ups_of,
    layer_label,
    layers_of,
    logs_of,
    main_finding,
    mappings,
    number,
    of_published,
    platform_seconds,
    range_views,
    request_label,
    request_of,
    resolved_text,
    seconds_text,
    target_label,
)

if TYPE_CHECKING:
    from feedback_check.probe.result import AddressProbe

#: With more URLs than this, healthy ones are one table row each instead of a card (as in the text report).
FULL_DETAIL_LIMIT = 4
#: Width of the SVG coordinate system; the SVG scales to the page width.
BAR_UNITS = 1000
#: How many pieces of one bar are listed in the table under it.
MAX_PIECES_LISTED = 40
#: How many items of an evidence list are shown.
MAX_ITEMS = 50
#: The longest a single text is shown.
MAX_TEXT = 4000

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STATE_CLASS = {ADMITTED: "info", BLOCKED: "critical", UNCERTAIN: "warning"}


def _e(value: Any, limit: int = MAX_TEXT) -> str:
    """Text for the page: control characters shown as \\xNN, length capped, HTML-escaped."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value).replace("\r\n", "\n"))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _line(value: Any, limit: int = MAX_TEXT) -> str:
    """One line of text (newlines become ⏎)."""
    return _e(str(value).replace("\r\n", "\n").replace("\n", " ⏎ "), limit)


def _verdict_class(verdict: Verdict) -> str:
    return f"v-{verdict.name.lower()}"


def _chip(verdict: Verdict) -> str:
    return f'<span class="chip {_verdict_class(verdict)}">{verdict.name}</span>'


def render(report: Report, *, color: bool = False) -> str:
    """The whole page (`color` is ignored: the page always has its colours)."""
    parts = [_head(report), _banner(report), _summary(report)]
    if report.firewalls:
        parts.append('<section id="firewalls"><h2>Firewall: which published ranges reach the port</h2>')
        parts += [_firewall(fw, i, report) for i, fw in enumerate(sorted(report.firewalls, key=lambda f: -f.verdict.value))]
        parts.append("</section>")
    if report.targets:
        budget, slow = platform_seconds(report)
        targets = sorted(report.targets, key=lambda t: -t.verdict.value)
        many = len(targets) > FULL_DETAIL_LIMIT
        parts.append('<section id="urls"><h2>Post-sale URLs</h2>')
        parts += [_target(t, budget, slow) for t in targets if t.verdict is not Verdict.OK or not many]
        healthy = [t for t in targets if t.verdict is Verdict.OK and many]
        if healthy:
            parts.append(_healthy_table(healthy))
        parts.append("</section>")
    logs = logs_of(report)
    if logs:
        parts.append('<section id="logs"><h2>Access logs: did PostFinance\'s requests arrive?</h2>')
        parts += [_logs(summary) for summary in logs]
        parts.append("</section>")
    parts.append(_tail(report))
    return "\n".join(parts) + "\n"


# --- page frame ------------------------------------------------------------------------------------

def _style() -> str:
    """The page's stylesheet (html.css next to this module, shipped in the wheel), inlined."""
    return resources.files("feedback_check.reporters").joinpath("html.css").read_text(encoding="utf-8")


def _head(report: Report) -> str:
    title = f"feedback-check {report.command}: {report.verdict.name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"color-scheme\" content=\"light\">\n"
            f"<meta name=\"generator\" content=\"feedback-check {_e(__version__)}\">\n"
            f"<title>{_e(title)}</title>\n<style>\n{_style()}</style>\n</head>\n<body>")


def _banner(report: Report) -> str:
    started = report.started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    counts = [f"{len(report.targets)} URL{'s' * (len(report.targets) != 1)}" if report.targets else "",
              f"{len(report.firewalls)} firewall{'s' * (len(report.firewalls) != 1)}" if report.firewalls else ""]
    files = sum(len(getattr(getattr(summary, "evidence", None), "files", ())) for summary in logs_of(report))
    counts.append(f"{files} log file{'s' * (files != 1)}" if files else "")
    what = ", ".join(c for c in counts if c) or "nothing checked"
    lab = ('<p class="muted">Lab mode: private addresses and non-standard ports are reported as information.</p>'
           if report.lab else "")
    return (f'<header class="banner {_verdict_class(report.verdict)}" data-verdict="{report.verdict.name}">'
            f'<div class="verdict">{report.verdict.name}</div>'
            f'<p class="answer">{_line(report.answer())}</p></header>'
            f'<p class="muted">feedback-check {_e(report.command)} · {started} · {report.duration_seconds:.2f} s · '
            f'{_e(what)} · feedback-check {_e(__version__)}</p>{lab}')


def _summary(report: Report) -> str:
    rows = []
    for shop in report.shops:
        if shop.error:
            rows.append(f"<tr><td class=\"name\">{_line(shop.name)}</td><td class=\"name\">(shop)</td><td>{_chip(shop.verdict)}</td>"
                        f"<td>not checked</td><td>{_line(shop.error)}</td></tr>")
    for t in report.targets:
        rows.append(f"<tr><td class=\"name\">{_line(t.shop or '-')}</td><td class=\"name\">{_line(t.role)}</td><td>{_chip(t.verdict)}</td>"
                    f"<td>{_finding_cell(main_finding(t.findings, lab=report.lab))}</td><td class=\"mono\">{_line(t.url)}</td></tr>")
    for fw in report.firewalls:
        rows.append(f"<tr><td class=\"name\">{_line(fw.shop or '-')}</td><td class=\"name\">firewall :{fw.port}</td><td>{_chip(fw.verdict)}</td>"
                    f"<td>{_finding_cell(main_finding(fw.findings, lab=report.lab))}</td>"
                    f"<td>{count_text(fw.blocked_addresses)} of {count_text(fw.published_addresses)} published "
                    "addresses blocked</td></tr>")
    if not rows:
        return ""
    return ('<section id="summary"><h2>Summary per shop and role</h2><table><thead><tr><th>Shop</th><th>Role</th>'
            "<th>Verdict</th><th>Main finding</th><th>URL / what</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def _finding_cell(finding: Finding | None) -> str:
    if finding is None:
        return "–"
    return f'<span class="mono">{_line(finding.code)}</span> {_line(finding.title)}'


# --- firewall ---------------------------------------------------------------------------------------

def _firewall(fw: FirewallSummary, index: int, report: Report | None = None) -> str:
    label = f"{fw.shop} · firewall" if fw.shop else "firewall"
    out = [(f'<article class="card firewall" id="firewall-{index}" data-shop="{_e(fw.shop)}" data-port="{fw.port}">'
           f'<h3>{_chip(fw.verdict)} {_line(label)} <span class="muted">port {fw.port}: {count_text(fw.blocked_addresses)} of '
           f'{count_text(fw.published_addresses)} published addresses blocked</span></h3>')]
    if fw.uncertain:
        out.append('<p><strong>Uncertain:</strong> a rule the analyser cannot evaluate, or an unparsed line, '
                   'could decide.</p>')
    target = firewall_target(fw, report)
    if target:
        out.append(f'<p>For <span class="mono">{_line(target)}</span></p>')
    layers = layers_of(fw)
    if layers:
        out.append("<h4>Layers (outermost first)</h4><ol>")
        for layer in layers:
            name, where = layer_label(layer)
            items = [f"<li><strong>{_line(name)}</strong>" + (f" <span class=\"muted mono\">({_line(where)})"
                                                             "</span>" if where else "")]
            if layer.open_to_world:
                items.append("<br>open to every source")
            elif layer.blocks_published:
                blocks, admits = layer.blocks_published, layer.admits_published
                total = fw.published_addresses or address_set(blocks + admits).size()
                items.append(f'<br><span class="layer-count">blocks {_cidr_text(of_published(blocks, total))}</span>')
                if admits:
                    items.append(f'<br><span class="layer-count">admits {_cidr_text(of_published(admits, total))}'
                                 "</span>")
            elif layer.admits_published:
                items.append('<br><span class="layer-count">admits every published address</span>')
            for item in layer.unparsed[:MAX_ITEMS]:
                items.append(f'<br><span class="sev warning">not understood</span><span class="mono">{_line(item)}</span>')
            for note in layer.notes[:MAX_ITEMS]:
                items.append(f'<br><span class="muted">note: {_line(note)}</span>')
            out.append("".join(items) + "</li>")
        out.append("</ol>")
    views = range_views(fw)
    if views:
        out.append("<h4>Published ranges</h4>")
        out += [_range(view) for view in views]
    fix = fix_lines_of(fw)
    if sum(1 for view in views if view.fix_lines) > 1:
        out.append("<h4>Every fix line at once (in each layer's own syntax)</h4><pre class=\"fix\">" + "\n".join(_e(x) for x in fix)
                   + "</pre>")
    out.append(_findings(fw.findings))
    out.append("</article>")
    return "\n".join(out)


def _range(view: RangeView) -> str:
    if view.verdict == "admitted":
        summary = f"all {count_text(view.size)} addresses admitted"
    elif view.verdict == "blocked":
        summary = f"all {count_text(view.size)} addresses blocked"
    else:
        summary = cidr_summary(view.admitted, view.size, "admitted")
    out = [(f'<figure class="range" data-range="{_e(view.cidr)}" data-verdict="{_e(view.verdict)}">'
           f'<figcaption><strong class="mono cidr">{_e(view.cidr)}</strong> {_e(view.verdict)}: '
           f'{_cidr_text(summary)}</figcaption>')]
    bars = [view.total_bar, *view.layer_bars]
    for index, bar in enumerate(bars):
        if index == 0:
            caption = "all layers together" if view.layer_bars else f"layer: {bar.label}"
        else:
            caption = bar.label if bar.label.startswith("layer ") else f"layer {index}: {bar.label}"
        out.append(_range_bar(view, bar, caption))
    out.append('<div class="legend muted"><span class="key admitted">admitted</span>'
               '<span class="key blocked">blocked</span>'
               + ('<span class="key uncertain">uncertain</span>' if view.uncertain else "") + "</div>")
    if any(p.state != ADMITTED for p in view.total_bar.pieces):
        out.append(_pieces_table(view.total_bar, with_layer=bool(view.layer_bars)))
    layer_lines = []
    in_total = {(p.start, p.size, p.rule) for p in view.total_bar.pieces}
    for bar in view.layer_bars:
        # What the table above does not show already: the blocks of layers behind the first blocking one.
        extra = [p for p in bar.pieces if p.state != ADMITTED and (p.start, p.size, p.rule) not in in_total]
        for piece in extra[:MAX_PIECES_LISTED]:
            layer_lines.append(f"<li><strong>{_line(bar.label, 200)}</strong> blocks {_e(_span(piece))} "
                               f"({count_text(piece.size)}){_decided(piece, ' by ')}</li>")
    if layer_lines:
        out.append('<div class="muted">Behind it (what a later layer blocks too, once the one before admits):</div>'
                   '<ul class="layer-rules">' + "".join(layer_lines) + "</ul>")
    if view.fix_lines:
        out.append("<pre class=\"fix\">" + "\n".join(_e(x) for x in view.fix_lines) + "</pre>")
    out.append("</figure>")
    return "\n".join(out)


def _span(piece: Any) -> str:
    return piece.first if piece.size == 1 else f"{piece.first} – {piece.last}"


def _decided(piece: Any, prefix: str = "") -> str:
    """The deciding rule of a piece as HTML: file:line, the rule as written, (default policy)."""
    if not piece.rule:
        return ""
    text = f'{prefix}<span class="mono">{_line(piece.rule)}</span>'
    if piece.rule_text:
        text += f" <code>{_line(piece.rule_text)}</code>"
    if piece.by_policy:
        text += " (default policy)"
    return text


def _range_bar(view: RangeView, bar: Bar, caption: str) -> str:
    height = 26
    scale = BAR_UNITS / view.size
    rects = []
    markers = []
    for piece in bar.pieces:
        x = piece.start * scale
        width = piece.size * scale
        tip = _piece_title(piece)
        rects.append(f'<rect class="piece {piece.state}" x="{x:.6f}" y="0" width="{width:.6f}" height="{height}" '
                     f'data-start="{piece.start}" data-size="{piece.size}" data-state="{piece.state}" '
                     f'data-rule="{_e(piece.rule)}"><title>{tip}</title></rect>')
        if piece.state == ADMITTED and width < 3:
            # To scale a /32 in a /22 is a hairline: a marker under it shows where it is.
            centre = x + width / 2
            markers.append(f'<path class="marker" d="M{centre:.3f} {height + 1} l-5 8 h10 z"><title>{tip}</title></path>')
    return (f'<div class="bar-caption muted">{_e(caption)}: {count_text(bar.count(ADMITTED))} admitted, '
            f'{count_text(view.size - bar.count(ADMITTED))} blocked</div>'
            f'<svg class="bar" role="img" aria-label="{_e(view.cidr)} {_e(caption)}" viewBox="0 0 {BAR_UNITS} '
            f'{height + 10}" preserveAspectRatio="none" height="{height + 10}" data-range="{_e(view.cidr)}" '
            f'data-layer="{_e(bar.label)}" data-size="{view.size}" data-admitted="{bar.count(ADMITTED)}" '
            f'data-blocked="{view.size - bar.count(ADMITTED)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(rects) + "".join(markers) + "</svg>")


def _piece_title(piece: Any) -> str:
    text = f"{_span(piece)} ({count_text(piece.size)} address{'es' * (piece.size != 1)}) {piece.state}"
    if piece.rule:
        text += f" by {piece.rule}"
        if piece.rule_text:
            text += f" `{piece.rule_text}`"
        if piece.by_policy:
            text += " (default policy)"
    return _line(text, 600)


def _pieces_table(bar: Bar, *, with_layer: bool) -> str:
    rows = []
    for piece in bar.pieces[:MAX_PIECES_LISTED]:
        cidrs = ", ".join(_cidr(c) for c in piece.cidrs[:4]) + (f" (+{len(piece.cidrs) - 4} more)"
                                                                 if len(piece.cidrs) > 4 else "")
        decided = _decided(piece)
        if not decided and piece.state != ADMITTED:
            decided = '<span class="muted">no single rule reported</span>'
        layer = f"<td>{_line(piece.layer, 200)}</td>" if with_layer else ""
        rows.append(f'<tr class="{piece.state}"><td><span class="sev {_STATE_CLASS[piece.state]}">'
                    f'{_e(piece.state)}</span></td><td class="mono">{_e(_span(piece))}</td><td>{count_text(piece.size)}</td>'
                    f'<td class="mono">{cidrs}</td>{layer}<td>{decided}</td></tr>')
    more = len(bar.pieces) - MAX_PIECES_LISTED
    if more > 0:
        rows.append(f'<tr><td colspan="6" class="muted">… and {more} more pieces (see --format json)</td></tr>')
    layer_head = "<th>Decided in layer</th>" if with_layer else ""
    return ('<table class="pieces"><thead><tr><th>State</th><th>Addresses</th><th>Count</th><th>CIDRs</th>'
            f"{layer_head}<th>Deciding rule (file:line)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


# --- URLs ----------------------------------------------------------------------------------------------

def _target(t: TargetSummary, budget: float | None, slow: float | None) -> str:
    out = [(f'<article class="card target"><h3>{_chip(t.verdict)} {_line(target_label(t))} '
           f'<span class="mono">{_line(t.method, 10)} {_line(t.url)}</span></h3>')]
    timings = [(n, number(t.timings.get(n))) for n in PHASES if n in t.timings]
    lines = address_timelines(t)
    if timings and not lines:        # with addresses, their table below has the numbers
        names = {"dns": "DNS", "connect": "connect", "tls": "TLS", "ttfb": "first byte", "total": "total"}
        out.append("<p>" + " · ".join(f"{names[n]} <strong>{seconds_text(s)}</strong>" for n, s in timings) + "</p>")
    if t.cert_not_after is not None:
        when = t.cert_not_after.astimezone(dt.UTC).strftime("%Y-%m-%d")
        out.append(f"<p>Certificate valid until {when} ({t.cert_days_left or 0:.0f} days left)</p>")
    out.append(_request(t))
    if lines:
        out.append(_timelines(lines, budget, slow))
    out.append(_addresses(t))
    out.append(_findings(t.findings))
    out.append("</article>")
    return "\n".join(out)


def _healthy_table(targets: Sequence[TargetSummary]) -> str:
    rows = "".join(
        f'<tr><td class="name">{_line(t.shop or "-")}</td><td class="name">{_line(t.role)}</td>'
        f"<td>{_chip(t.verdict)}</td><td>{seconds_text(number(t.timings.get('total')))}</td>"
        f'<td class="mono">{_line(t.url)}</td></tr>' for t in targets)
    return (f"<h3>OK ({len(targets)} URLs)</h3><table class=\"healthy\"><thead><tr><th>Shop</th><th>Role</th>"
            "<th>Verdict</th><th>total</th><th>URL</th></tr></thead><tbody>" + rows + "</tbody></table>")


def _request(t: TargetSummary) -> str:
    request = request_of(t)
    parts = []
    if request is not None:
        sent = [_line(request.method, 10), f"STATUS={_line(request.status, 20)}"]
        if request.order_id:
            sent.append(f"orderID={_line(request.order_id, 80)}")
        signed = "/".join(_line(value, 20) for value in (request.algorithm, request.encoding) if value)
        names = [name for name, _ in request.all_parameters()]
        label = request_label(addresses_of(t)).capitalize()
        parts.append(f"<p>{label}: <span class=\"mono\">{' '.join(sent)}</span>, {len(names)} parameters"
                     + (f", signed {signed}" if signed else "") + "</p>")
        if names:
            parts.append(f'<p class="muted mono">{_line(", ".join(names))}</p>')
    dns = dns_of(t)
    if dns is not None:
        text = f"DNS: {dns.host} → {resolved_text(dns)}"
        if dns.resolver_note:
            text += f" ({dns.resolver_note})"
        if dns.cname_chain:
            text += "; CNAME " + " → ".join(dns.cname_chain)
        parts.append(f"<p>{_line(text)}</p>")
    return "\n".join(parts)


def _timelines(lines: Sequence[Timeline], budget: float | None, slow: float | None) -> str:
    longest = max([tl.total or (tl.segments[-1].start + tl.segments[-1].seconds if tl.segments else 0.0)
                   for tl in lines] + [0.0])
    axis = max([x for x in (budget, slow, longest) if x] + [0.001]) * 1.04
    scale = BAR_UNITS / axis
    row, top = 22, 4
    height = top + row * len(lines) + 4
    parts = []
    for i, tl in enumerate(lines):
        y = top + i * row
        for seg in tl.segments:
            parts.append(f'<rect class="seg {seg.phase}" x="{seg.start * scale:.4f}" y="{y}" '
                         f'width="{max(seg.seconds * scale, 0.5):.4f}" height="{row - 6}" data-phase="{seg.phase}" '
                         f'data-start="{seg.start:.6f}" data-seconds="{seg.seconds:.6f}"><title>'
                         f'{_e(tl.address)} {_e(seg.label)}: {seconds_text(seg.seconds)}</title></rect>')
    # Axis labels are HTML under the SVG: text inside a horizontally stretched SVG would be distorted.
    labels = ['<span style="left: 0">0</span>']
    for value, cls, name in ((slow, "slow", "slow"), (budget, "budget", "budget")):
        if value:
            x = value * scale
            parts.append(f'<line class="limit {cls}" x1="{x:.3f}" x2="{x:.3f}" y1="0" y2="{height}" '
                         f'data-seconds="{value}"><title>{name}: {seconds_text(value)}</title></line>')
            labels.append(f'<span class="{cls}" style="left: {x / BAR_UNITS * 100:.3f}%">'
                          f'{name} {seconds_text(value)}</span>')
    svg = (f'<svg class="timeline" role="img" aria-label="phases against the time budget" viewBox="0 0 {BAR_UNITS} '
           f'{height}" preserveAspectRatio="none" height="{height}" data-axis-seconds="{axis:.6f}" '
           f'xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>"
           + '<div class="axis">' + "".join(labels) + "</div>")
    legend = ('<div class="legend muted">' + "".join(f'<span class="key {k}">{label}</span>'
              for k, label in (("dns", "DNS"), ("connect", "connect"), ("tls", "TLS"),
                               ("wait", "waiting for the first byte"), ("read", "reading the answer"),
                               ("slow", "slow threshold"), ("budget", "time budget")))
              + "</div>")
    table = [('<table class="phases"><thead><tr><th>Address</th><th>DNS</th><th>connect</th><th>TLS</th>'
             "<th>first byte</th><th>total</th><th>answer</th></tr></thead><tbody>")]
    for tl in lines:
        by_phase = {s.phase: s.seconds for s in tl.segments}
        cells = [seconds_text(by_phase.get(k)) for k in ("dns", "connect", "tls")]
        cells += [seconds_text(tl.first_byte), seconds_text(tl.total)]
        table.append(f'<tr><td class="mono">{_line(tl.address, 80)}</td>' + "".join(f"<td>{c}</td>" for c in cells)
                     + f"<td>{_line(tl.outcome, 300)}</td></tr>")
    table.append("</tbody></table>")
    caption = ("Phases per resolved address, from the DNS query on, against the platform's "
               + " and ".join(x for x in (f"slow threshold ({seconds_text(slow)})" if slow else "",
                                          f"time budget ({seconds_text(budget)})" if budget else "") if x) + ".")
    return f"<figure class=\"timeline\"><figcaption>{_e(caption)}</figcaption>{svg}{legend}{''.join(table)}</figure>"


def _addresses(t: TargetSummary) -> str:
    rows = [_address(address) for address in addresses_of(t)]
    for follow_up in follow_ups_of(t):
        what = _line(follow_up.request, 200)
        if follow_up.skipped:
            rows.append(f"<p>Also sent: {what}: skipped ({_line(follow_up.skipped, 300)})</p>")
        else:
            answer = follow_up.status_line or (follow_up.status.value if follow_up.status is not None else "") or "?"
            rows.append(f"<p>Also sent: {what} → {_line(answer, 300)}"
                        + (f" ({_line(follow_up.error, 300)})" if follow_up.error else "") + "</p>")
    return "\n".join(rows)


def _address(address: AddressProbe) -> str:
    """One resolved address: connect and TLS outcome, the leaf certificate, the answer and its body."""
    connect, tls = address.connect, address.tls
    items = [f"<dt>connect</dt><dd>{' '.join(_line(v, 200) for v in (connect.status.value, connect.error) if v)}</dd>"]
    if tls is not None:
        text = " ".join(_line(v, 200) for v in (tls.status.value, tls.version, tls.cipher, tls.error) if v)
        items.append(f"<dt>tls</dt><dd>{text}</dd>")
        if tls.leaf is not None:
            items.append(f"<dt>certificate</dt><dd>{_line(tls.leaf.subject)} by {_line(tls.leaf.issuer)}</dd>")
    http = address.http
    if http is not None:
        text = _line(http.status_line or http.status.value, 300)
        headers = {name: value for name, value in http.headers if name.lower() in SHOWN_HEADERS}
        text += "".join(f" · {_line(k, 60)}: {_line(v, 300)}" for k, v in headers.items())
        if http.error:
            text += f" ({_line(http.error, 500)})"
        items.append(f"<dt>http</dt><dd>{_line(http.method, 10)} → {text}</dd>")
        excerpt = http.body_text()
        if excerpt:
            items.append(f"<dt>body</dt><dd><code>{_line(excerpt, 500)}</code></dd>")
    return f'<h4 class="mono">{_line(address.address, 80)}</h4><dl class="evidence">' + "".join(items) + "</dl>"


def _logs(summary: Any) -> str:
    """One shop's access-log evidence as the text report words it (logs.render), then its findings."""
    from feedback_check.logs.render import text_lines
    lines = text_lines(summary, Painter(False), lambda finding: [])
    label = lines[0] if lines else "Access logs"
    body = "\n".join(line.removeprefix("  ") for line in lines[1:])
    return (f'<article class="card logs"><h3>{_chip(summary.verdict)} {_line(label, 300)}</h3>'
            f'<pre class="logs">{_e(body, 20000)}</pre>' + _findings(summary.findings) + "</article>")


# --- findings and the rest --------------------------------------------------------------------------------

def _findings(findings: Sequence[Finding]) -> str:
    if not findings:
        return ""
    full = [f for f in ranked(findings) if f.severity is not Severity.INFO]
    info = [f for f in ranked(findings) if f.severity is Severity.INFO]
    out = ["<h4>Findings</h4>"] + [_finding(f) for f in full]
    if info:
        out.append('<ul class="info">' + "".join(
            f'<li><span class="sev info">info</span><span class="mono">{_line(f.code, 80)}</span> {_line(f.title, 300)}'
            + (f' <span class="muted">— {_line(f.detail, 600)}</span>' if f.detail else "") + "</li>" for f in info)
            + "</ul>")
    return "\n".join(out)


def _finding(f: Finding) -> str:
    out = [f'<div class="finding {f.severity.value}" data-code="{_e(f.code, 80)}">'
           f'<div><span class="sev {f.severity.value}">{f.severity.value}</span>'
           f'<span class="code mono">{_line(f.code, 80)}</span> {_line(f.title, 300)}'
           + (f' <span class="muted mono">[{_cidr_text(_line(f.target, 300))}]</span>' if f.target else "") + "</div>"]
    if f.detail:
        out.append(f"<p>{_cidr_text(_line(f.detail))}</p>")
    shown = [(k, v) for k, v in f.evidence.items() if not _empty(v)][:MAX_ITEMS]
    if shown:
        out.append('<dl class="evidence">' + "".join(f"<dt>{_line(k, 80)}</dt><dd>{_value(v)}</dd>"
                                                  for k, v in shown) + "</dl>")
    if f.fix:
        out.append(f'<div><strong>Fix</strong></div><pre class="fix">{_e(f.fix)}</pre>')
    out.append("</div>")
    return "\n".join(out)


def _empty(value: Any) -> bool:
    """An evidence value with nothing to show (an empty list of admitted or uncertain CIDRs): no row."""
    return value is None or (isinstance(value, (str, list, tuple, set, frozenset, Mapping)) and not value)


def _value(value: Any, depth: int = 0) -> str:
    """An evidence value: scalars as they are, lists joined, records as small key/value tables (bounded
    depth); CIDRs never break inside."""
    if isinstance(value, Mapping):
        if depth >= 3:
            return "{…}"
        rows = "".join(f'<tr><th>{_line(k, 80)}</th><td>{_value(v, depth + 1)}</td></tr>'
                       for k, v in list(value.items())[:MAX_ITEMS] if not _empty(v))
        return f'<table class="kv">{rows}</table>'
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if depth >= 3:
            return f"[{len(items)} items]"
        more = f", … (+{len(items) - MAX_ITEMS} more)" if len(items) > MAX_ITEMS else ""
        if any(isinstance(v, Mapping) for v in items):
            return "".join(_value(v, depth + 1) for v in items[:MAX_ITEMS]) + more
        shown = ", ".join(_value(v, depth + 1) for v in items[:MAX_ITEMS])
        return f'<span class="mono">{shown}{more}</span>'
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    return _cidr_text(_line(value, 1000))


_CIDR = re.compile(r"(?<![\w.:/])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:]+)/\d{1,3}(?![\w/])")


def _cidr(cidr: str) -> str:
    """One CIDR, kept on one line (`185.139.244.0/22` never breaks after the slash)."""
    return f'<span class="cidr">{_e(cidr, 200)}</span>'


def _cidr_text(escaped: str) -> str:
    """Text (already escaped, or plain text without markup characters) with every CIDR in it kept whole."""
    return _CIDR.sub(lambda m: f'<span class="cidr">{m.group()}</span>', html.escape(html.unescape(escaped),
                                                                                      quote=True))


def _tail(report: Report) -> str:
    out = []
    in_logs = {id(f) for summary in logs_of(report) for f in getattr(summary, "findings", ())}
    general = [f for f in general_findings(report) if id(f) not in in_logs]
    if general:
        out.append('<section id="general"><h2>Profile and platform</h2>' + _findings(general).replace(
            "<h4>Findings</h4>", "", 1) + "</section>")
    if report.changes is not None:
        out.append('<section id="changes"><h2>Changes since the last run</h2>' + _changes(report.changes) + "</section>")
    if report.assumptions:
        out.append('<section id="assumptions"><h2>Assumptions that decided the verdict</h2><ul>'
                   + "".join(f"<li>{_line(a)}</li>" for a in report.assumptions) + "</ul></section>")
    if report.notes:
        out.append('<section id="notes"><h2>Notes</h2><ul>' + "".join(f"<li>{_line(n)}</li>" for n in report.notes)
                   + "</ul></section>")
    source = report.platform.get("ranges") if isinstance(report.platform, Mapping) else None
    origin = ""
    if isinstance(source, Mapping) and source.get("source"):
        origin = (f" Published ranges from {_line(source['source'], 300)}"
                  + (f", retrieved {_line(source['retrieved'], 40)}" if source.get("retrieved") else "") + ".")
    out.append(f"<footer>Made by feedback-check {_e(__version__)}: a simulated post-sale request from this "
               f"machine and an analysis of the firewall files given.{origin}</footer>\n</body>\n</html>")
    return "\n".join(out)


def _changes(changes: Mapping[str, Any]) -> str:
    items = []
    if changes.get("first_run"):
        items.append("First run with this state file: nothing to compare with yet.")
    elif changes.get("previous_run"):
        items.append(f"Previous run: {_line(changes['previous_run'], 80)}")
    for change in mappings(changes.get("verdict_changes")):
        items.append(f"{_where(change)}: {_line(change.get('from'), 20)} → {_line(change.get('to'), 20)}")
    for entry in mappings(changes.get("new")):
        items.append(f"New: <span class=\"mono\">{_line(entry.get('code'), 80)}</span> {_where(entry)}")
    for entry in mappings(changes.get("resolved")):
        items.append(f"Resolved: <span class=\"mono\">{_line(entry.get('code'), 80)}</span> {_where(entry)}")
    if len(items) <= 1:
        items.append("No change.")
    return "<ul>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def _where(entry: Mapping[str, Any]) -> str:
    return _line(" · ".join(str(entry[k]) for k in ("shop", "role", "url") if entry.get(k)), 300)
