"""Realistic Reports for the reporter tests, and the properties every reporter must keep.

The builders here are imported by the per-format test modules (`from tests.unit.test_reporters_samples
import ...`). The tests in this module run every registered reporter over every sample.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from feedback_check.findings import Finding, Severity, Verdict, make_finding
from feedback_check.firewall.verdict import DecidingRule, FirewallVerdict, LayerVerdict, RangeVerdict
from feedback_check.payload import SimulatedPostSale
from feedback_check.probe.dns import Resolution
from feedback_check.probe.http import HttpResult, HttpStatus
from feedback_check.probe.result import AddressProbe, FollowUpRequest, FollowUps, ProbeResult
from feedback_check.probe.tcp import ConnectResult, ConnectStatus
from feedback_check.probe.tls import CertificateInfo, ChainCheck, TlsResult, TlsStatus
from feedback_check.probe.url import UrlCheck
from feedback_check.report import FirewallSummary, Report, ShopSummary, TargetSummary
from feedback_check.reporters import FORMATS, render

NOW = dt.datetime(2026, 11, 26, 20, 0, 0, tzinfo=dt.UTC)
HOSTILE = "evil\x1b[31m \"quoted\" back\\slash\nnew line | pipe ]]> <tag> & 'apos' \x00\x07 é"


def finding(code: str, shop: str, role: str, target: str, **kwargs: Any) -> Finding:
    f = make_finding(code, target, **kwargs)
    return Finding(**{**f.__dict__, "shop": shop, "role": role})


def url_check(url: str) -> UrlCheck:
    """The URL check of a plain https URL (no PARAMVAR, default port)."""
    parts = urlsplit(url)
    return UrlCheck(configured=url, effective=url, scheme=parts.scheme, host=parts.hostname, port=443,
                    explicit_port=False, target=parts.path or "/", host_is_ip=False)


def probe_result(address: str = "203.0.113.10", status: int | None = 200, error: str | None = None,
                 host: str = "shop-ch.example", cert_days: float = 60) -> ProbeResult:
    """A probe's result, made of the probe's own result classes: the URL check, the signed request, DNS,
    then per resolved address connect, TLS and HTTP, and the forged-signature follow-up."""
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=cert_days)
    leaf = CertificateInfo(subject=f"CN={host}", issuer="CN=R11,O=Let's Encrypt,C=US",
                           not_before=not_after - dt.timedelta(days=90), not_after=not_after, names=(host,),
                           self_signed=False)
    tls = TlsResult(address=address, port=443, host=host, status=TlsStatus.OK, seconds=0.011, version="TLSv1.3",
                    cipher="TLS_AES_256_GCM_SHA384", chain=(leaf,), check=ChainCheck((), {}, cert_days))
    http = HttpResult(method="POST", url=f"https://{host}/postfinance/feedback", address=address,
                      status=HttpStatus.ANSWERED if status is not None else HttpStatus.CONNECTION_RESET,
                      verified=True, status_code=status, reason={200: "OK", 500: "Internal Server Error"}.get(
                          status or 0, "Forbidden"), http_version="HTTP/1.1",
                      headers=(("Server", "nginx"),), body=b"" if status == 200 else b"<h1>Error</h1>",
                      connect_seconds=0.002, tls_seconds=0.011, ttfb_seconds=0.031, total_seconds=0.048,
                      error=error or "")
    probe = AddressProbe(address=address, connect=ConnectResult(address, 443, ConnectStatus.OK, 0.002), tls=tls,
                         http=http)
    resolution = Resolution(host=host, ipv4=(address,), ipv6=(), cname_chain=(), seconds=0.004, findings=(),
                            resolver_note="system resolver")
    request = SimulatedPostSale(method="POST", params=(("orderID", "FBCHECK-261126-0A1B2C"), ("amount", "1")),
                                shasign="AB12", order_id="FBCHECK-261126-0A1B2C", status=9, algorithm="SHA-512",
                                encoding="UTF-8",
                                signed_masked="AMOUNT=1********ORDERID=FBCHECK-261126-0A1B2C********",
                                order_source="")
    forged = FollowUpRequest("same request with a wrong SHASIGN", "POST", HttpStatus.ANSWERED,
                             "HTTP/1.1 400 Bad Request")
    return ProbeResult(url_check=url_check(f"https://{host}/postfinance/feedback"), request=request,
                       dns=resolution, addresses=(probe,), follow_ups=FollowUps((forged,)))


def refused_result(address: str = "203.0.113.10") -> ProbeResult:
    probe = AddressProbe(address=address, connect=ConnectResult(address, 443, ConnectStatus.REFUSED, 0.001,
                                                                "connection refused"))
    return ProbeResult(url_check=url_check("https://x.example/pf/feedback"),
                       dns=Resolution(host="x.example", ipv4=(address,), ipv6=(), cname_chain=(), seconds=0.003,
                                      findings=()),
                       addresses=(probe,))


def timings(total: float = 0.048) -> dict[str, float | None]:
    return {"dns": 0.004, "connect": 0.002, "tls": 0.011, "ttfb": 0.031, "total": total}


def target(shop: str, role: str, url: str, findings: list[Finding], *, method: str = "POST",
           cert_days: float | None = 60, probe: ProbeResult | None = None,
           total: float = 0.048) -> TargetSummary:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=cert_days) if cert_days is not None else None
    return TargetSummary(shop=shop, role=role, url=url, method=method, findings=tuple(findings),
                         timings=timings(total), cert_not_after=not_after,
                         probe=probe if probe is not None else probe_result())


def ok_target(shop: str, role: str = "accepted", url: str | None = None) -> TargetSummary:
    url = url or f"https://{shop}.example/postfinance/feedback"
    return target(shop, role, url, [finding("http.ok", shop, role, url, evidence={"status": 200})])


def firewall_blocking(shop: str = "shop-ch") -> FirewallSummary:
    """A firewall summary in the shape firewall.analysis writes: one iptables layer blocking 185.139.244.0/22."""
    fs = [finding("firewall.range_blocked", shop, "firewall", "185.139.244.0/22",
                  detail="all of 185.139.244.0/22 cannot reach port 443 — rules.v4:12 drops 185.139.244.0/22.",
                  evidence={"range": "185.139.244.0/22", "blocked": ["185.139.244.0/22"],
                            "deciding": [{"layer": "server iptables", "rule": "/etc/iptables/rules.v4:12"}]},
                  fix="iptables -I INPUT 3 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT\n"
                      "#   persist: in /etc/iptables/rules.v4, before line 12")]
    deciding = (DecidingRule(layer="server iptables", file="/etc/iptables/rules.v4", rule="/etc/iptables/rules.v4:12",
                             text="-A INPUT -p tcp --dport 443 -j DROP", chain="INPUT", action="drop",
                             by_policy=False, blocked=("185.139.244.0/22",), first_blocking_layer=True),)
    fix = ("iptables -I INPUT 3 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT",
           "#   persist: in /etc/iptables/rules.v4, before line 12: -A INPUT -s 185.139.244.0/22 -p tcp --dport 443 -j ACCEPT")
    analysis = FirewallVerdict(
        layers=(LayerVerdict(name="server iptables", file="/etc/iptables/rules.v4", format="iptables",
                             entry=("INPUT",), admits_published=("91.208.214.0/24", "185.8.52.0/22"),
                             blocks_published=("185.139.244.0/22",), open_to_world=False,
                             unparsed=("/etc/iptables/rules.v4:20: -A INPUT -m geoip --src-cc CH -j ACCEPT",),
                             notes=("no ip6tables rules in the file",)),),
        ranges=(RangeVerdict(cidr="185.139.244.0/22", state="blocked", admitted=(), blocked=("185.139.244.0/22",),
                             uncertain=(), deciding=deciding, fix_lines=fix),
                RangeVerdict(cidr="91.208.214.0/24", state="admitted", admitted=("91.208.214.0/24",), blocked=(),
                             uncertain=(), deciding=(), fix_lines=()),
                RangeVerdict(cidr="185.8.52.0/22", state="partly blocked", admitted=("185.8.52.0/23",),
                             blocked=("185.8.54.0/23",), uncertain=(), deciding=(), fix_lines=())),
        ranges_source="https://e-payment-postfinance.ecom-psp.com/de/security/server-security/firewall-configuration",
        admitted=("91.208.214.0/24", "185.8.52.0/22"), blocked=("185.139.244.0/22",),
        uncertain_addresses=(), open_to_world=False, fix_lines=fix,
        path="/postfinance/feedback", host="shop-ch.example")
    return FirewallSummary(shop=shop, port=443, findings=tuple(fs), published_addresses=2304,
                           blocked_addresses=1024, analysis=analysis)


def critical_report() -> Report:
    """One shop: the accepted URL fails with 500, the rejected URL is fine, the firewall blocks a range."""
    url = "https://shop-ch.example/postfinance/feedback"
    bad = target("shop-ch", "accepted", url,
                 [finding("http.server_error", "shop-ch", "accepted", url, detail="The handler answered 500.",
                          evidence={"status_line": "HTTP/1.1 500 Internal Server Error", "server": "nginx"})],
                 probe=probe_result(status=500))
    good = ok_target("shop-ch", "rejected", url)
    fw = firewall_blocking("shop-ch")
    general = make_finding("config.inline_secret", "feedback-check.yaml:12")
    findings = (*bad.findings, *good.findings, *fw.findings, general)
    return Report(command="check", findings=findings, targets=(bad, good), firewalls=(fw,),
                  shops=(ShopSummary("shop-ch", tuple(findings[:-1])),),
                  assumptions=("PostFinance does not publish its post-sale timeout; 20 s assumed.",),
                  notes=("The probe left from this machine, not from PostFinance's addresses.",),
                  started=NOW, duration_seconds=1.25)


def healthy_report() -> Report:
    t = ok_target("shop-ok")
    return Report(command="check", findings=t.findings, targets=(t,), shops=(ShopSummary("shop-ok", t.findings),),
                  started=NOW, duration_seconds=0.2)


def warning_report() -> Report:
    url = "https://slow.example/feedback"
    t = target("shop-slow", "accepted", url,
               [finding("http.slow", "shop-slow", "accepted", url, evidence={"total_seconds": 7.2,
                                                                              "assumption": "timing.slow_seconds"}),
                finding("tls.cert_expiring", "shop-slow", "accepted", url, evidence={"days_left": 12})],
               cert_days=12, total=7.2)
    return Report(command="check", findings=t.findings, targets=(t,), shops=(ShopSummary("shop-slow", t.findings),),
                  started=NOW, duration_seconds=7.3)


def many_shops_report(count: int = 200, failing_every: int = 20) -> Report:
    """An agency's run: `count` shops with two URLs each; every `failing_every`-th shop's accepted URL fails."""
    targets: list[TargetSummary] = []
    shops: list[ShopSummary] = []
    for i in range(count):
        name = f"shop-{i:03d}"
        url = f"https://{name}.example/pf/feedback"
        if i % failing_every == 0:
            accepted = target(name, "accepted", url,
                              [finding("connect.refused", name, "accepted", "203.0.113.10",
                                       evidence={"address": "203.0.113.10", "port": 443})],
                              cert_days=None, probe=refused_result())
        else:
            accepted = ok_target(name, "accepted", url)
        rejected = ok_target(name, "rejected", url)
        targets += [accepted, rejected]
        shops.append(ShopSummary(name, (*accepted.findings, *rejected.findings)))
    shops.append(ShopSummary("shop-late", (), error="run deadline (--max-runtime 60 s) reached before the check ended"))
    findings = tuple(f for t in targets for f in t.findings)
    return Report(command="check", findings=findings, targets=tuple(targets), shops=tuple(shops),
                  started=NOW, duration_seconds=3.5)


def hostile_report() -> Report:
    """Every string a hostile server or an odd profile could put into a report."""
    url = f"https://h.example/feedback?x={HOSTILE}"
    f = finding("http.forbidden", HOSTILE, "accepted", url, detail=HOSTILE,
                evidence={"server": HOSTILE, "body": HOSTILE * 50, HOSTILE: [HOSTILE, {"k": HOSTILE}]})
    probe = probe_result(error=HOSTILE)
    forged = replace(probe.follow_ups.requests[0], request=HOSTILE, error=HOSTILE)  # type: ignore[union-attr]
    t = target(HOSTILE, "accepted", url, [f], probe=replace(probe, follow_ups=FollowUps((forged,))))
    return Report(command="check", findings=(f,), targets=(t,), shops=(ShopSummary(HOSTILE, (f,)),),
                  notes=(HOSTILE,), assumptions=(HOSTILE,), started=NOW)


def empty_report() -> Report:
    return Report(command="check", findings=(), started=NOW)


def unknown_report() -> Report:
    return Report(command="check", findings=(), shops=(ShopSummary("shop-x", (), error="internal error: boom"),),
                  started=NOW)


SAMPLES = {
    "critical": critical_report, "healthy": healthy_report, "warning": warning_report,
    "many": many_shops_report, "hostile": hostile_report, "empty": empty_report, "unknown": unknown_report,
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@pytest.mark.parametrize("format_name", FORMATS)
def test_every_reporter_renders_every_sample(format_name: str, sample: str) -> None:
    text = render(SAMPLES[sample](), format_name, color=False)
    assert isinstance(text, str) and text.endswith("\n")
    assert "\x1b" not in text, "no escape sequence without colour, not even one a server sent"
    assert "\x00" not in text


def test_samples_have_the_verdicts_they_claim() -> None:
    assert critical_report().verdict is Verdict.CRITICAL
    assert healthy_report().verdict is Verdict.OK
    assert warning_report().verdict is Verdict.WARNING
    assert many_shops_report().verdict is Verdict.CRITICAL
    assert unknown_report().verdict is Verdict.UNKNOWN
    assert empty_report().verdict is Verdict.OK
    assert {f.severity for f in warning_report().findings} == {Severity.WARNING}
