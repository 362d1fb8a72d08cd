"""`--format json`: one versioned JSON document (docs/report.schema.json) on one line.

The only place where the report model becomes dicts: `document(report)` is the whole document,
`chunks(report)` the same text in pieces of about `CHUNK_CHARS` characters, built one finding, shop,
URL or firewall at a time, so a 5,000-shop run never holds the document whole (`cli/options.emit`
writes the pieces to stdout or into the --output file as they come). `render` joins them.

One function per type, named for what it makes: the report's parts (`finding_dict`, `shop_dict`, `target_dict`,
`firewall_dict`, `logs_dict`), the probe's phase results (`probe_details` -> `url_check_dict`, `post_sale_dict`,
`resolution_dict`, `address_dict` -> `connect_dict`, `tls_dict`, `http_dict`, ...), the firewall verdict
(`analysis_dict`, ...) and the access-log evidence (`log_evidence_dict`, `path_evidence_dict`, ...). The shapes
of a logged request, its answer times and a pause are findings' evidence too, made by the core, so they stay in
`logs.evidence` (`hit_evidence`, `timing_evidence`, `gap_evidence`) and are used from there.

Compact on purpose: Python's C encoder only runs without `indent` (pretty-printing 500 shops cost
0.17 s); pipe through `jq` or `python -m json.tool` to read it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from feedback_check import __version__
from feedback_check.findings import Finding, ranked
from feedback_check.payload import SimulatedPostSale
from feedback_check.probe.dns import Resolution
from feedback_check.probe.http import KEPT_HEADERS, HttpResult
from feedback_check.probe.result import AddressProbe, FollowUpRequest, LoopLag, ProbeResult
from feedback_check.probe.tcp import ConnectResult
from feedback_check.probe.tls import CertificateInfo, ChainCheck, TlsResult
from feedback_check.probe.url import UrlCheck, redact_url
from feedback_check.report import FirewallSummary, Report, ShopSummary, TargetSummary

if TYPE_CHECKING:    # imported by the runs that have them (a probe's report needs neither)
    from feedback_check.firewall.verdict import DecidingRule, FirewallVerdict, LayerVerdict, RangeVerdict
    from feedback_check.logs.evidence import FileSummary, LogEvidence, PathEvidence, SenderGroup
    from feedback_check.logs.judgement import LogsSummary

#: The version of the document (docs/report.schema.json): raised when a member changes meaning or goes.
SCHEMA_VERSION = 1
#: About how many characters `chunks` gathers before it yields.
CHUNK_CHARS = 64 * 1024
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
_encode = _ENCODER.encode


def render(report: Report, *, color: bool = False) -> str:
    return "".join(chunks(report))


def document(report: Report) -> dict[str, Any]:
    """The whole `--format json` document as dicts and lists."""
    return {key: list(value) if streamed else value for key, value, streamed in _members(report)}


def chunks(report: Report) -> Iterator[str]:
    """The text of `render(report)` in pieces (the last one ends with the newline); joined, they are
    `json.dumps(document(report), ensure_ascii=False, default=str) + "\\n"`, byte for byte."""
    pending: list[str] = []
    size = 0
    opening = "{"
    for key, value, streamed in _members(report):
        if not streamed:
            pending += (opening, _encode(key), ": ", _encode(value))
            opening = ", "
            continue
        pending += (opening, _encode(key), ": [")
        opening = ", "
        separator = ""
        for item in value:
            text = _encode(item)
            pending += (separator, text)
            separator = ", "
            size += len(text)
            if size > CHUNK_CHARS:
                yield "".join(pending)
                pending.clear()
                size = 0
        pending.append("]")
    pending.append("}\n")
    yield "".join(pending)


def _members(report: Report) -> Iterator[tuple[str, Any, bool]]:
    """(key, value, streamed) of the document's members in order; a streamed value is an iterator
    making the list's items one at a time."""
    yield "schema_version", SCHEMA_VERSION, False
    yield "tool", {"name": "feedback-check", "version": __version__}, False
    yield "command", report.command, False
    yield "verdict", report.verdict.name, False
    yield "answer", report.answer(), False
    yield "lab_mode", report.lab, False
    yield "started", report.started.isoformat(), False
    yield "duration_seconds", round(report.duration_seconds, 4), False
    yield "findings", (finding_dict(f) for f in ranked(report.findings, lab=report.lab)), True
    yield "shops", (shop_dict(s) for s in report.shops), True
    yield "targets", (target_dict(t) for t in report.targets), True
    yield "firewall", (firewall_dict(f) for f in report.firewalls), True
    yield "platform", {**dict(report.platform), "assumptions_used": list(report.assumptions)}, False
    yield "notes", list(report.notes), False
    if report.changes is not None:
        yield "changes", dict(report.changes), False
    if report.logs:
        yield "logs", (logs_dict(entry) for entry in report.logs), True


def finding_dict(finding: Finding) -> dict[str, Any]:
    """`findings[]`; `shop` and `role` only where the finding has them."""
    out: dict[str, Any] = {"code": finding.code, "severity": finding.severity.value, "target": finding.target,
                           "title": finding.title, "detail": finding.detail, "evidence": dict(finding.evidence),
                           "fix": finding.fix}
    if finding.shop is not None:
        out["shop"] = finding.shop
    if finding.role is not None:
        out["role"] = finding.role
    return out


def shop_dict(shop: ShopSummary) -> dict[str, Any]:
    return {"name": shop.name, "verdict": shop.verdict.name, "error": shop.error, "findings": len(shop.findings)}


def target_dict(target: TargetSummary) -> dict[str, Any]:
    """One post-sale URL: what the schema's `targets[]` holds."""
    return {"shop": target.shop, "role": target.role, "url": target.url, "method": target.method,
            "verdict": target.verdict.name, "timings": dict(target.timings),
            "certificate_not_after": target.cert_not_after.isoformat() if target.cert_not_after else None,
            **(probe_details(target.probe) if target.probe is not None else {}),
            "findings": [f.code for f in target.findings],
            **({"unknown": target.unknown} if target.unknown else {})}


def probe_details(result: ProbeResult) -> dict[str, Any]:
    """The probe's phases in a `targets[]` entry: phase name -> its result's dict, each present once its
    phase ran."""
    details: dict[str, Any] = {"url_check": url_check_dict(result.url_check)}
    if result.request is not None:
        details["request"] = post_sale_dict(result.request)
    if result.dns is not None:
        details["dns"] = resolution_dict(result.dns)
    if result.loop_lag is not None:
        details["loop_lag"] = loop_lag_dict(result.loop_lag)
    if result.addresses:
        details["addresses"] = [address_dict(p) for p in result.addresses]
    if result.follow_ups is not None:
        details["follow_ups"] = [follow_up_dict(r) for r in result.follow_ups.requests]
    return details


def url_check_dict(check: UrlCheck) -> dict[str, Any]:
    """`url_check`: the URL as configured (credentials masked) and as it will be requested."""
    return {"configured": redact_url(check.configured), "effective": check.effective, "scheme": check.scheme,
            "host": check.host, "port": check.port, "explicit_port": check.explicit_port, "target": check.target,
            "host_is_ip": check.host_is_ip, "usable": check.usable}


def post_sale_dict(sale: SimulatedPostSale) -> dict[str, Any]:
    """`request`: the simulated (or replayed) post-sale; no passphrase, only the masked signed string."""
    return {"method": sale.method, "order_id": sale.order_id, "order_source": sale.order_source,
            "status": sale.status, "algorithm": sale.algorithm, "encoding": sale.encoding,
            "parameters": [list(p) for p in sale.all_parameters()], "signed_string_masked": sale.signed_masked}


def resolution_dict(dns: Resolution) -> dict[str, Any]:
    """`dns`: what the host resolved to, through which names, per resolver view."""
    return {"host": dns.host, "addresses": list(dns.addresses), "ipv4": list(dns.ipv4), "ipv6": list(dns.ipv6),
            "cname_chain": list(dns.cname_chain), "seconds": round(dns.seconds, 4), "resolver": dns.resolver_note,
            "views": {k: list(v) for k, v in dns.views.items()}, "findings": [f.code for f in dns.findings],
            **({"unreachable": dns.unreachable} if dns.unreachable else {})}


def loop_lag_dict(lag: LoopLag) -> dict[str, Any]:
    return {"worst_seconds": round(lag.worst_seconds, 4), "not_reported": list(lag.not_reported)}


def address_dict(probe: AddressProbe) -> dict[str, Any]:
    """`addresses[]`: the connect, TLS and HTTP phases on one resolved address."""
    return {"address": probe.address, "connect": connect_dict(probe.connect),
            "tls": tls_dict(probe.tls) if probe.tls else None,
            "http": http_dict(probe.http) if probe.http else None,
            "findings": [f.code for f in probe.findings]}


def connect_dict(result: ConnectResult) -> dict[str, Any]:
    return {"status": result.status.value, "seconds": round(result.seconds, 4), "error": result.error or None}


def tls_dict(result: TlsResult) -> dict[str, Any]:
    return {"status": result.status.value, "seconds": round(result.seconds, 4), "version": result.version,
            "cipher": result.cipher, "error": result.error or None,
            "certificates": [certificate_dict(c) for c in result.chain],
            "certificate_check": chain_check_dict(result.check) if result.check else None,
            "sni_required": result.sni_required}


def certificate_dict(cert: CertificateInfo) -> dict[str, Any]:
    return {"subject": cert.subject, "issuer": cert.issuer, "not_before": cert.not_before.isoformat(),
            "not_after": cert.not_after.isoformat(), "names": list(cert.names),
            "self_signed": cert.self_signed, "sha256": cert.sha256}


def chain_check_dict(check: ChainCheck) -> dict[str, Any]:
    return {"problems": [p.value for p in check.problems], "reasons": dict(check.reasons),
            "days_left": None if check.days_left is None else round(check.days_left, 2)}


def http_dict(result: HttpResult) -> dict[str, Any]:
    """`http`: the answer to the post-sale; of the headers only `KEPT_HEADERS`, of the body an excerpt."""
    return {"method": result.method, "url": result.url, "status": result.status.value, "verified": result.verified,
            "status_code": result.status_code, "status_line": result.status_line or None,
            "headers": {k: v for k, v in result.headers if k.lower() in KEPT_HEADERS},
            "body_bytes_read": len(result.body), "body_excerpt": result.body_text(),
            "body_complete": result.body_complete, "error": result.error or None,
            "seconds": {"connect": _round(result.connect_seconds), "tls": _round(result.tls_seconds),
                        "ttfb": _round(result.ttfb_seconds), "total": _round(result.total_seconds)}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def follow_up_dict(request: FollowUpRequest) -> dict[str, Any]:
    """`follow_ups[]`: a follow-up request as sent, or why it was not (`skipped`)."""
    if request.status is None:
        return {"request": request.request, "skipped": request.skipped}
    return {"request": request.request, "method": request.method, "status": request.status.value,
            "status_line": request.status_line or None, "error": request.error or None,
            "seconds": round(request.seconds, 4)}


def firewall_dict(firewall: FirewallSummary) -> dict[str, Any]:
    """One firewall analysis: what the schema's `firewall[]` holds."""
    return {"shop": firewall.shop, "port": firewall.port, "verdict": firewall.verdict.name,
            "published_addresses": firewall.published_addresses,
            "blocked_addresses": firewall.blocked_addresses, "uncertain": firewall.uncertain,
            **analysis_dict(firewall.analysis), "findings": [f.code for f in firewall.findings]}


def analysis_dict(analysis: FirewallVerdict) -> dict[str, Any]:
    out: dict[str, Any] = {
        "layers": [layer_dict(layer) for layer in analysis.layers],
        "ranges": [range_dict(r) for r in analysis.ranges],
        "ranges_source": analysis.ranges_source,
        "admitted": list(analysis.admitted),
        "blocked": list(analysis.blocked),
        "uncertain_addresses": list(analysis.uncertain_addresses),
        "open_to_world": analysis.open_to_world,
        "fix_lines": list(analysis.fix_lines),
    }
    if analysis.path is not None:
        out["path"] = analysis.path
    if analysis.host is not None:
        out["host"] = analysis.host
    return out


def layer_dict(layer: LayerVerdict) -> dict[str, Any]:
    return {"name": layer.name, "file": layer.file, "format": layer.format, "entry": list(layer.entry),
            "admits_published": list(layer.admits_published), "blocks_published": list(layer.blocks_published),
            "open_to_world": layer.open_to_world, "unparsed": list(layer.unparsed), "notes": list(layer.notes)}


def range_dict(verdict: RangeVerdict) -> dict[str, Any]:
    return {"range": verdict.cidr, "verdict": verdict.state, "admitted": list(verdict.admitted),
            "blocked": list(verdict.blocked), "uncertain": list(verdict.uncertain),
            "deciding": [decision_dict(d) for d in verdict.deciding], "fix_lines": list(verdict.fix_lines)}


def decision_dict(decision: DecidingRule) -> dict[str, Any]:
    return {"layer": decision.layer, "file": decision.file, "rule": decision.rule, "text": decision.text,
            "chain": decision.chain, "action": decision.action, "by_policy": decision.by_policy,
            "blocked": list(decision.blocked), "first_blocking_layer": decision.first_blocking_layer}


def logs_dict(summary: LogsSummary) -> dict[str, Any]:
    """One shop's access-log evidence: what the schema's `logs[]` holds."""
    return {**log_evidence_dict(summary.evidence), "shop": summary.shop or None, "verdict": summary.verdict.name,
            "findings": [f.code for f in summary.findings]}


def log_evidence_dict(evidence: LogEvidence) -> dict[str, Any]:
    from feedback_check.logs.evidence import hit_evidence

    query = evidence.query
    return {
        "shop": evidence.shop or None,
        "files": [log_file_dict(f) for f in evidence.files], "lines": evidence.lines, "parsed": evidence.parsed,
        "coverage": {"from": _iso(evidence.coverage_start), "to": _iso(evidence.coverage_end),
                     "hours": round(evidence.coverage.total_seconds() / 3600, 2)},
        "answer_times_logged": evidence.logs_seconds, "strangers_checked": evidence.strangers_checked,
        "paths": [path_evidence_dict(p) for p in evidence.paths],
        "other_paths": {k: sender_group_dict(v) for k, v in evidence.other_paths.items()},
        "other_paths_not_listed": evidence.other_paths_dropped,
        "unreadable": {"count": evidence.unreadable, "kinds": dict(evidence.unreadable_kinds),
                       "examples": [{"where": p.where, "problem": p.problem}
                                    for p in (*evidence.cut_files, *evidence.unreadable_examples)]},
        "around": {"at": query.at.isoformat(), "window_minutes": query.window.total_seconds() / 60,
                   "requests": [hit_evidence(h) for h in evidence.around]} if query.at else None,
        "trusted_proxies": list(query.trusted.names) if query.trusted else [],
        "since": _iso(query.since), "until": _iso(query.until),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def log_file_dict(summary: FileSummary) -> dict[str, Any]:
    return {"file": summary.name, "format": summary.format, "lines": summary.lines, "compressed": summary.compressed,
            "first": _iso(summary.first_time), "last": _iso(summary.last_time)}


def path_evidence_dict(path: PathEvidence) -> dict[str, Any]:
    """One feedback path: who requested it (PostFinance's ranges, the 2019 senders, strangers), when, how fast."""
    from feedback_check.logs.evidence import gap_evidence, timing_evidence

    return {"path": path.path.path, "label": path.path.label or path.path.path, "role": path.path.role,
            "discovered": path.discovered, "postfinance": sender_group_dict(path.published),
            "legacy_senders": sender_group_dict(path.legacy), "foreign": sender_group_dict(path.foreign),
            "per_day": dict(path.per_day), "per_hour": {str(k): v for k, v in sorted(path.per_hour.items())},
            "answer_times": timing_evidence(path.timing) if path.timing else None,
            "usual_interval_seconds": round(path.usual_interval, 1) if path.usual_interval else None,
            "gaps": [gap_evidence(g) for g in path.gaps]}


def sender_group_dict(group: SenderGroup) -> dict[str, Any]:
    from feedback_check.logs.evidence import hit_evidence

    return {"count": group.count, "statuses": {str(k): v for k, v in sorted(group.statuses.items())},
            "classes": group.classes, "methods": dict(group.methods), "addresses": dict(group.addresses),
            "first": hit_evidence(group.first), "last": hit_evidence(group.last),
            "first_success": hit_evidence(group.first_success), "last_success": hit_evidence(group.last_success),
            "first_failure": hit_evidence(group.first_failure), "last_failure": hit_evidence(group.last_failure),
            "redirect_kinds": dict(group.redirect_kinds), "claimed_count": group.claimed_count}
