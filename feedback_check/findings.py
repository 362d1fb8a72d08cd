"""Findings, severities and verdicts, and the catalogue of stable finding codes.

The catalogue (`CATALOGUE`) is the one place where a code's default severity, title, why it matters to
PostFinance and the generic fix are written; probe, firewall, diagnosis and `explain` all read it.
Codes are an interface: add new ones, never rename or reuse one.

A text that names a platform value (a port, the TLS floor and its date, a range) writes `{name}` for it
(`Platform.facts()`), filled from the platform profile in force when a finding is made (`info_for`).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feedback_check.platform import Platform


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class Verdict(enum.Enum):
    """Verdict of a check; the value is the Nagios exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def exit_code(self) -> int:
        return self.value


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: Severity | None  # None: reported as an error (config.invalid)
    title: str
    why: str
    fix: str


@dataclass(frozen=True)
class Finding:
    """One observation of a check, in PostFinance's terms, with evidence and a fix."""

    code: str
    severity: Severity
    target: str
    title: str
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""
    shop: str | None = None
    role: str | None = None


def make_finding(code: str, target: str, *, detail: str = "", evidence: Mapping[str, Any] | None = None,
                 fix: str | None = None, title: str | None = None,
                 severity: Severity | None = None, platform: Platform | None = None) -> Finding:
    """A Finding for a catalogued code, taking the default severity, title and fix from the catalogue
    (with `platform`'s values in them: `info_for`)."""
    info = info_for(code, platform)
    chosen = severity or info.severity or Severity.CRITICAL
    return Finding(code=code, severity=chosen, target=target, title=title or info.title, detail=detail,
                   evidence=dict(evidence or {}), fix=info.fix if fix is None else fix)


#: Codes whose severity `--lab` lowers to info (a staging server on an internal network).
LAB_INFO_CODES = frozenset({"url.private_host", "url.port_not_allowed", "dns.private_address",
                            "connect.local_probe"})


def apply_lab_mode(findings: Iterable[Finding]) -> list[Finding]:
    return [replace(f, severity=Severity.INFO) if f.code in LAB_INFO_CODES else f for f in findings]


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    worst = max((f.severity.rank for f in findings), default=0)
    return {0: Verdict.OK, 1: Verdict.WARNING, 2: Verdict.CRITICAL}[worst]


#: Within one severity, the order in which findings matter for getting PostFinance's post-sales delivered:
#: what fails post-sales now or soon, then what makes a delivered post-sale untrustworthy or unproven, then
#: what only hints at a risk, and last what is hygiene (encryption, names, list age, secrets at rest).
#: The first of the most severe is a row's "main finding" (text, HTML, Nagios): a slow handler or an
#: accepted forgery is named before plain HTTP. Codes not listed rank between the two blocks.
ACTIONABILITY: tuple[str, ...] = (
    "connect.partial", "logs.postsale_failed", "logs.no_postsale", "tls.cert_expiring", "http.slow", "logs.postsale_slow", "firewall.rate_limited",
    "signature.forgery_accepted", "handler.unknown_order", "http.redirect_after_processing",
    "logs.postsale_redirected", "http.non_200_success", "http.online_body_shown", "url.paramvar_unresolved",
    "feedback.no_request", "dns.split_horizon", "firewall.unparsed", "firewall.unsupported_match",
    "logs.other_paths", "logs.method_mismatch", "logs.foreign_sources", "logs.legacy_sources", "logs.unreadable",
    "connect.ipv6_failed",
)
HYGIENE: tuple[str, ...] = ("url.plain_http", "signature.weak_algorithm", "url.ip_literal", "ranges.stale",
                            "config.secret_file_permissions", "config.inline_secret")
#: What a lab (a test box on loopback, plain HTTP, an IP address, another port) is expected to show:
#: with `--lab` these rank last within their severity.
LAB_EXPECTED_CODES = LAB_INFO_CODES | {"url.plain_http", "url.ip_literal"}
_ORDER = {code: i for i, code in enumerate(ACTIONABILITY)} | \
    {code: len(ACTIONABILITY) + 1 + i for i, code in enumerate(HYGIENE)}
_UNLISTED = len(ACTIONABILITY)


def ranked(findings: Iterable[Finding], *, lab: bool = False) -> list[Finding]:
    """Most severe first; with `lab`, what lab mode makes expected last within its severity
    (`LAB_EXPECTED_CODES`); warnings the most actionable for PostFinance delivery first (`ACTIONABILITY`,
    `HYGIENE`); stable otherwise (the phase order of critical findings names the first cause). The one
    ranking every reporter uses."""
    def key(f: Finding) -> tuple[int, bool, int]:
        order = _ORDER.get(f.code, _UNLISTED) if f.severity is Severity.WARNING else _UNLISTED
        return -f.severity.rank, lab and f.code in LAB_EXPECTED_CODES, order
    return sorted(findings, key=key)


C, W, I = Severity.CRITICAL, Severity.WARNING, Severity.INFO
PE = "PostFinance would report a process error: "

_ENTRIES: list[tuple[str, Severity | None, str, str, str]] = [
    # code, severity, title, why it matters, generic fix
    ("config.invalid", None, "Profile cannot be used",
     "feedback-check cannot run the check until the profile is valid.",
     "Correct the file at the line named in the error."),
    ("config.inline_secret", W, "SHA-OUT passphrase written inline",
     "A passphrase in a configuration file ends up in backups, repositories and support tickets.",
     "Move it to an environment variable (passphrase_env) or a file readable only by you (passphrase_file)."),
    ("config.secret_file_permissions", W, "Secret file readable by others",
     "Anyone who can read the SHA-OUT passphrase can forge payment confirmations.",
     "chmod 600 the file holding the passphrase."),
    ("feedback.no_request", W, "Post-sale requests are switched off",
     "Without a post-sale request the shop depends on the customer's browser redirect to learn of payments.",
     "Set 'Timing of the request' to 'Always deferred' (PostFinance's recommendation) or online."),
    ("url.invalid", C, "Post-sale URL cannot be parsed",
     PE + "the platform cannot send a request to a URL it cannot parse.",
     "Enter a full URL such as https://shop.example/postfinance/feedback in the back office."),
    ("url.scheme", C, "Post-sale URL scheme is not http or https",
     PE + "the platform only sends post-sale requests over HTTP or HTTPS.",
     "Use an https:// URL."),
    ("url.plain_http", W, "Post-sale URL uses plain HTTP",
     "Plain HTTP gets through, but payment parameters and the signature travel unencrypted; PostFinance recommends HTTPS.",
     "Serve the handler over HTTPS and change the URL to https:// in the back office."),
    ("url.port_not_allowed", C, "Post-sale URL uses a port other than {feedback_ports_or}",
     PE + "the platform's requests are assumed to reach only ports {feedback_ports}.",
     "Serve the handler on port {preferred_port} (or {other_feedback_ports}) and remove the port from the URL."),
    ("url.private_host", C, "Post-sale URL points to a private or local host",
     PE + "PostFinance's servers on the internet cannot reach a private, loopback or local name.",
     "Use the shop's public host name."),
    ("url.ip_literal", W, "Post-sale URL uses an IP address instead of a name",
     "A certificate rarely covers an IP address, and the address may change.",
     "Use the shop's host name."),
    ("url.credentials", C, "Post-sale URL contains user:password",
     PE + "credentials in the URL are not sent as authentication and leak into logs.",
     "Remove user:password@ from the URL; admit PostFinance's ranges instead of protecting the path by password."),
    ("url.paramvar_unresolved", W, "<PARAMVAR> in the URL has no value",
     "The platform replaces <PARAMVAR> with the PARAMVAR the shop sent with the order; without it the path is wrong.",
     "Send PARAMVAR with every order (and set paramvar in the profile to test it)."),
    ("dns.nxdomain", C, "Host name does not exist",
     PE + "the platform cannot resolve the host of the post-sale URL.",
     "Fix the host name in the back office or publish its DNS record."),
    ("dns.no_address", C, "Host name has no IPv4 address",
     PE + "the platform sends from IPv4 addresses only and needs an A record.",
     "Publish an A record for the host."),
    ("dns.ipv6_only", C, "Host name has only IPv6 addresses",
     PE + "PostFinance publishes IPv4 source ranges only; an AAAA-only host cannot be reached.",
     "Publish an A record for the host."),
    ("dns.servfail", C, "DNS resolution fails (SERVFAIL)",
     PE + "the resolver cannot answer for the name (broken delegation, DNSSEC failure or server fault).",
     "Check the zone's name servers, delegation and DNSSEC signatures."),
    ("dns.timeout", C, "DNS does not answer in time",
     PE + "the name servers of the host do not answer.",
     "Check that the zone's authoritative name servers are reachable."),
    ("dns.private_address", C, "Host name resolves to a private address",
     PE + "the platform cannot connect to a private, loopback or reserved address.",
     "Publish the public address of the shop in public DNS."),
    ("dns.split_horizon", W, "Resolvers disagree about the host",
     "Your internal view differs from the public one; the probe may test a different server than PostFinance reaches.",
     "Check the public DNS answer; test with --resolver pointing at a public resolver."),
    ("dns.cname_chain", I, "CNAME chain followed", "Context: the aliases the name goes through.", ""),
    ("connect.refused", C, "Connection refused",
     PE + "nothing accepts connections on the feedback port at this address.",
     "Start the web server, make it listen on the port, or correct the DNS record."),
    ("connect.timeout", C, "Connection timed out",
     PE + "packets to the port are dropped (firewall drop or host down).",
     "Check that the host is up and that the firewall admits PostFinance's published ranges on the port."),
    ("connect.unreachable", C, "Network or host unreachable",
     PE + "there is no route to the address.",
     "Check routing and the address in DNS."),
    ("connect.partial", W, "Some addresses of the host fail",
     "The platform may pick a failing address: some post-sale requests will fail.",
     "Fix or remove the failing addresses from DNS."),
    ("connect.ipv6_failed", W, "IPv6 address fails while IPv4 works",
     "PostFinance uses IPv4 today, but other clients and future changes would fail.",
     "Fix IPv6 on the server or remove the AAAA record."),
    ("connect.local_probe", I, "Probe ran from the same machine or network",
     "The connection may bypass the perimeter firewall, so reachability from PostFinance is not proven.",
     "Run the firewall analysis, or probe from outside your network."),
    ("tls.handshake_failed", C, "TLS handshake fails",
     PE + "no secure connection can be set up (no TLS on the port, or the server sends an alert).",
     "Check the HTTPS configuration of the virtual host on this port."),
    ("tls.protocol_too_old", C, "Server cannot negotiate TLS {tls_min_version} or newer",
     PE + "the platform requires TLS {tls_min_version} on post-sale URLs{tls_min_version_since}.",
     "Enable TLS 1.2 and 1.3 (nginx: ssl_protocols TLSv1.2 TLSv1.3; Apache: SSLProtocol -all +TLSv1.2 +TLSv1.3)."),
    ("tls.weak_cipher_only", C, "Only weak ciphers offered",
     PE + "servers offering only 3DES (or export/RC4) cipher suites fail.",
     "Enable modern AES-GCM / CHACHA20 cipher suites."),
    ("tls.cert_expired", C, "Certificate expired",
     PE + "the platform rejects expired certificates.", "Renew the certificate."),
    ("tls.cert_not_yet_valid", C, "Certificate not yet valid",
     PE + "the certificate's validity starts in the future (or the server clock is wrong).",
     "Install a currently valid certificate; check the server clock."),
    ("tls.cert_untrusted", C, "Certificate not trusted",
     PE + "self-signed and private-CA certificates do not chain to a public CA.",
     "Install a certificate from a public CA (e.g. Let's Encrypt)."),
    ("tls.chain_incomplete", C, "Intermediate certificate not sent",
     PE + "server-side clients do not fetch missing intermediates; the chain cannot be verified.",
     "Configure the full chain (nginx: ssl_certificate fullchain.pem; Apache: SSLCertificateFile with the chain)."),
    ("tls.hostname_mismatch", C, "Certificate does not cover the host name",
     PE + "the name in the post-sale URL is not in the certificate.",
     "Install a certificate whose subjectAltName includes the host, or fix the URL's host."),
    ("tls.cert_expiring", W, "Certificate expires soon",
     "Post-sale requests will fail with a process error once it expires.", "Renew the certificate now."),
    ("tls.sni_required", I, "Server needs SNI", "Context: the right certificate is only sent with SNI.", ""),
    ("http.ok", I, "Post-sale accepted", "The endpoint answered 2xx.", ""),
    ("http.redirect", C, "Endpoint answers with a redirect",
     PE + "a 3xx is not a success answer, and a redirect would drop the POST body.",
     "Enter the final URL (scheme, www, trailing slash) in the back office."),
    ("http.redirect_after_processing", W, "Endpoint answers with a redirect to another page",
     ("The handler ran and redirected to another page, as Odoo's and Magento's modules do on success. Whether "
      "the platform logs that as a process error is not documented (assumed: it does not)."),
     "Nothing to change while the platform accepts it; to be safe, make the handler answer 200 to the post-sale."),
    ("handler.unknown_order", W, "Handler does not know the simulated order",
     ("The path, TLS and HTTP work and the handler answered, but it rejected the simulated order because it "
      "does not know it: how it answers a real order is not proven."),
     ("Probe with an order the shop knows: probe --order-id ID --amount A --currency C (and --param PAYID=...), "
      "or test_order: {orderID: ..., amount: ..., currency: ...} in the shop's profile.")),
    ("http.client_error", C, "Endpoint answers with a 4xx error",
     PE + "only a 2xx answer counts as success.", "Make the handler answer 200 to the post-sale request."),
    ("http.auth_required", C, "Endpoint requires authentication",
     PE + "the platform cannot answer a password prompt (401/407).",
     "Exempt the feedback path from directory protection; admit PostFinance's ranges instead."),
    ("http.forbidden", C, "Endpoint answers 403 Forbidden",
     PE + "a WAF, mod_security rule, CDN or access rule blocks the request.",
     "Exempt the feedback path from the WAF/CDN challenge and admit PostFinance's ranges."),
    ("http.not_found", C, "Endpoint answers 404 Not Found",
     PE + "the path in the back office does not exist on the server.",
     "Correct the path in the back office or route it to the handler."),
    ("http.method_not_allowed", C, "Request method not accepted",
     PE + "the handler does not accept the method the account sends (GET vs POST).",
     "Switch the request method in the back office, or accept it in the handler."),
    ("http.server_error", C, "Endpoint answers with a 5xx error",
     PE + "the handler fails.", "Check the handler's error log for this request."),
    ("http.timeout", C, "Request exceeds the platform's time budget",
     PE + "the handler does not answer within the (assumed) budget.",
     "Answer the post-sale quickly and do slow work (e-mails, ERP) afterwards."),
    ("http.slow", W, "Endpoint answers slowly",
     "Inside the budget today, but in online timing the customer waits; a little more load fails it.",
     "Answer first, do slow work afterwards."),
    ("http.protocol_error", C, "Answer is not valid HTTP",
     PE + "the platform cannot parse the answer (garbage, TLS on a plain port, truncated answer).",
     "Check what listens on the port; plain HTTP on 443 or TLS on 80 are common causes."),
    ("http.connection_reset", C, "Connection closed before a complete answer",
     PE + "the server closed or reset the connection mid-request.",
     "Check the handler and any proxy in front of it for crashes and limits."),
    ("http.non_200_success", W, "2xx answer other than 200",
     "Assumed to count as success, but 200 is what the platform expects.", "Answer 200."),
    ("http.online_body_shown", W, "Online answer has a body the customer would see",
     "In online timing, an HTML or redirect answer is shown to or followed by the customer instead of the accept page.",
     "Answer with an empty body (or switch to deferred timing)."),
    ("signature.rejected", C, "Endpoint rejects a correctly signed request",
     PE + "the handler's SHA-OUT check fails: passphrase, algorithm, encoding or parameter list differ.",
     "Compare the handler's SHA-OUT settings with the back office; `feedback-check verify` names the mistake."),
    ("signature.forgery_accepted", W, "Endpoint accepts a wrongly signed request",
     "Anyone could fake payment confirmations, unless the handler ignores the content.",
     "Verify SHASIGN in the handler and reject requests whose signature does not match."),
    ("signature.weak_algorithm", W, "SHA-1 configured for SHA-OUT",
     "SHA-1 is outdated; new accounts default to SHA-512.",
     "Switch the account and the handler to SHA-512 together."),
    ("firewall.range_blocked", C, "Published PostFinance range blocked",
     PE + "requests from (part of) a published range cannot reach the feedback port.",
     "Admit the blocked CIDRs on the feedback port (fix lines are shown in the file's syntax)."),
    ("firewall.legacy_allowlist", C, "Allowlist admits only the pre-2019 ranges",
     PE + "the platform now also sends from {new_ranges}.",
     "Replace the old Ogone/Ingenico list with the currently published ranges."),
    ("firewall.port_closed", C, "Feedback port closed to every published source",
     PE + "no published PostFinance address can reach the port.",
     "Open the feedback port for PostFinance's published ranges."),
    ("firewall.open_to_world", I, "Port open to every source",
     "Nothing to fix for PostFinance.", ""),
    ("firewall.unparsed", W, "Rules the analyser could not interpret",
     "The verdict may be wrong where these lines matter.", "Check the listed lines by hand."),
    ("firewall.unsupported_match", W, "Rule uses a match the analyser cannot evaluate",
     "The verdict is uncertain where such a rule could decide.", "Check the listed rules by hand."),
    ("firewall.rate_limited", W, "A rate limit decides for PostFinance's addresses",
     ("Each post-sale request is assumed to stay under the limit, but a burst of payments or retries can "
      "exceed it: requests over the limit are dropped and PostFinance reports a process error."),
     "Admit PostFinance's published ranges on the feedback port before the rate-limited rule."),
    ("logs.postsale_ok", I, "Post-sales from PostFinance's addresses were answered 2xx",
     "The web server's access log shows PostFinance's own post-sales arriving and succeeding.", ""),
    ("logs.postsale_failed", C, "Post-sales from PostFinance's addresses got error answers",
     PE + "the access log shows PostFinance's own post-sales answered with a 4xx/5xx status.",
     "Look up the handler's error log at the times listed and fix what failed for these requests."),
    ("logs.postsale_redirected", W, "Post-sales from PostFinance's addresses were answered with a redirect",
     "A 3xx is not a success answer, and a redirect drops the POST body (see http.redirect).",
     "Enter the final URL (scheme, host, trailing slash) in the back office."),
    ("logs.postsale_slow", W, "Post-sales from PostFinance's addresses were answered slowly",
     "Answer times near the (assumed) platform budget fail as timeouts once the handler gets a little slower.",
     "Answer the post-sale first, do slow work (e-mails, ERP) afterwards."),
    ("logs.no_postsale", C, "No post-sale from PostFinance's addresses reached the feedback path",
     PE + "something in front of this server stops the platform's requests, or they go to another URL.",
     ("Check, in this order: the firewall and security groups (feedback-check firewall), a CDN or WAF in front "
     "of the shop, the DNS name of the post-sale URL (feedback-check probe), and the post-sale URL in the "
     "back office (Configuration > Technical information > Transaction feedback).")),
    ("logs.legacy_sources", W, "Requests from the pre-2019 PostFinance senders",
     "These addresses are no longer in PostFinance's published list.",
     "Admit the currently published ranges; do not rely on the 2019 list."),
    ("logs.foreign_sources", W, "Requests to the feedback path from outside PostFinance's ranges",
     "Someone else calls the post-sale handler: probing, forged payment confirmations, or a proxy not declared trusted.",
     "Make sure the handler verifies SHASIGN; declare your own proxy or CDN with --trusted-proxy."),
    ("logs.other_paths", W, "PostFinance's addresses requested other paths",
     "The post-sale URL in the back office may differ from the one the shop serves.",
     "Compare the post-sale URLs in the back office with the shop's handler path."),
    ("logs.method_mismatch", W, "Post-sales arrive with another method than expected",
     "A handler that reads only the query (GET) or only the body (POST) sees no parameters.",
     "Make the back office's request method and the handler agree."),
    ("logs.unreadable", W, "Log lines that could not be read",
     "Post-sales on those lines are not counted: the conclusions may miss them.",
     "Give the server's log format with --log-format (its log_format / LogFormat line)."),
    ("ranges.stale", W, "Published-range list is old",
     "PostFinance may have published new ranges since.",
     "Compare with PostFinance's firewall configuration page; pass a fresh list with --ranges."),
    ("ranges.custom", I, "Custom range list in use", "Context: the ranges came from a user-supplied list.", ""),
]

CATALOGUE: dict[str, CodeInfo] = {code: CodeInfo(code, sev, title, why, fix)
                                  for code, sev, title, why, fix in _ENTRIES}

#: `{name}` in a catalogue text: the platform value `Platform.facts()[name]`.
PLATFORM_VALUE = re.compile(r"\{([a-z_]+)\}")
_TEMPLATED = frozenset(code for code, info in CATALOGUE.items()
                       if any(PLATFORM_VALUE.search(text) for text in (info.title, info.why, info.fix)))


def info_for(code: str, platform: Platform | None = None) -> CodeInfo:
    """The catalogue entry of `code` with the platform's values in its texts; without `platform`, the
    shipped profile's (config/postfinance.yaml). KeyError for an unknown code."""
    info = CATALOGUE[code]
    if code not in _TEMPLATED:
        return info
    facts = (platform or _shipped_platform()).facts()
    key = (code, tuple(facts.values()))
    filled = _FILLED.get(key)
    if filled is None:
        def fill(text: str) -> str:
            return PLATFORM_VALUE.sub(lambda m: facts.get(m[1], m[0]), text)

        if len(_FILLED) >= _FILLED_MAX:
            _FILLED.clear()
        filled = _FILLED[key] = replace(info, title=fill(info.title), why=fill(info.why), fix=fill(info.fix))
    return filled


#: Filled catalogue entries by (code, the platform's fact values): a run makes the same finding for many
#: URLs with one platform profile, and filling is a regex pass over three texts.
_FILLED: dict[tuple[str, tuple[str, ...]], CodeInfo] = {}
_FILLED_MAX = 4096


@functools.cache
def _shipped_platform() -> Platform:
    from feedback_check.platform import load_platform

    return load_platform()
