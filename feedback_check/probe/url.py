"""URL lint: what is wrong with a post-sale URL before any packet is sent.

`check_url` parses the URL as configured in the back office, substitutes `<PARAMVAR>` the way the
platform does, and returns a frozen `UrlCheck`: the effective URL to probe, its parts, and the
url.* findings. It never raises for a bad URL; a URL that cannot be probed at all has `usable` False.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

import idna

from feedback_check.findings import Finding, make_finding
from feedback_check.platform import Platform
from feedback_check.probe.addresses import address_class, is_local_name
from feedback_check.urls import DEFAULT_PORTS, url_port

#: The token the platform replaces with the PARAMVAR the shop sent with the order; the second form is
#: the same token after a form or editor percent-encoded it.
PARAMVAR_TOKEN = re.compile(r"<PARAMVAR>|%3CPARAMVAR%3E", re.IGNORECASE)
#: Codes after which there is nothing to probe.
UNUSABLE_CODES = frozenset({"url.invalid", "url.scheme"})

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOOSE_USERINFO = re.compile(r"([^/?#@:\s]*):[^/?#@\s]*@")
_MISSING_SCHEME = re.compile(r"^(?:https?:)?/*", re.IGNORECASE)
# Characters left as they are in the request target; everything else is percent-encoded
# (existing %XX escapes are kept).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class UrlCheck:
    """A post-sale URL as configured, what will be probed, and what is wrong with it."""

    configured: str            # as configured; <PARAMVAR> may be in it
    effective: str | None      # <PARAMVAR> substituted; None when there is nothing to probe
    scheme: str | None
    host: str | None           # lower-case ASCII (IDNA A-labels); IPv6 without brackets
    port: int | None           # explicit port or the scheme's default
    explicit_port: bool
    target: str                # request target: path + query
    host_is_ip: bool
    findings: tuple[Finding, ...] = field(default=())
    display_host: str | None = None   # the host as a person reads it (IDN U-labels)

    @property
    def usable(self) -> bool:
        """False only when the URL cannot be probed at all (url.invalid, url.scheme)."""
        return not any(f.code in UNUSABLE_CODES for f in self.findings)


def redact_url(url: str) -> str:
    """The URL with the password of any user:password@ replaced by `***` (safe to show in reports).
    Works on malformed URLs too (missing scheme); when in doubt it redacts."""
    text = url.strip()
    prefix, sep, rest = text.partition("://")
    if not sep:
        # No authority to delimit: hide whatever looks like user:password@ anywhere.
        return _LOOSE_USERINFO.sub(r"\1:***@", text)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return prefix + sep + authority + rest[end:]


def substitute_paramvar(url: str, paramvar: str | None) -> tuple[str, bool]:
    """The URL with every `<PARAMVAR>` (any case) replaced by the percent-encoded value, and whether the
    token was present. Without a value the token is kept, percent-encoded, so the request stays valid."""
    present = bool(PARAMVAR_TOKEN.search(url))
    replacement = quote(paramvar, safe="-._~") if paramvar is not None else "%3CPARAMVAR%3E"
    return PARAMVAR_TOKEN.sub(lambda _: replacement, url), present


def check_url(url: str, *, paramvar: str | None, platform: Platform) -> UrlCheck:
    """Lint a post-sale URL as the platform would use it; see the module docstring."""
    return _Linter(url, paramvar, platform).run()


class _Linter:
    def __init__(self, url: str, paramvar: str | None, platform: Platform) -> None:
        self.configured = url
        self.paramvar = paramvar
        self.platform = platform
        self.display = redact_url(url)
        self.findings: list[Finding] = []

    def add(self, code: str, detail: str, fix: str | None = None, **evidence: Any) -> None:
        self.findings.append(make_finding(code, target=self.display, detail=detail, evidence=evidence, fix=fix,
                                          platform=self.platform))

    def unusable(self, code: str, detail: str, fix: str | None = None, *, scheme: str | None = None,
                 **evidence: Any) -> UrlCheck:
        self.add(code, detail, fix, **evidence)
        return UrlCheck(configured=self.configured, effective=None, scheme=scheme, host=None, port=None,
                        explicit_port=False, target="", host_is_ip=False, findings=tuple(self.findings))

    def run(self) -> UrlCheck:
        text = self.configured.strip()
        if not text:
            return self.unusable("url.invalid", "The post-sale URL is empty.",
                                 "Enter the full URL of the feedback handler, e.g. "
                                 "https://shop.example/postfinance/feedback.")
        if _CONTROL.search(text):
            return self.unusable("url.invalid",
                                 "The URL contains a line break, tab or other control character.",
                                 "Re-type the URL in the back office without hidden characters.")
        substituted, has_token = substitute_paramvar(text, self.paramvar)
        if has_token and self.paramvar is None:
            self.add("url.paramvar_unresolved",
                     "The URL contains <PARAMVAR> and no paramvar is configured, so the probe sends the "
                     "token literally (percent-encoded); the platform substitutes the PARAMVAR field the "
                     "shop sent with the order.",
                     "Set paramvar in the profile (or --paramvar VALUE) to the value your shop sends in "
                     "the PARAMVAR field, and make sure the shop sends it with every order.",
                     token="<PARAMVAR>")
        if "://" not in substituted:
            # "mailto:..." has a scheme; "shop.example:8080/x" and "localhost:443" are missing one.
            match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):(?![0-9])", substituted)
            if match and match.group(1).lower() not in DEFAULT_PORTS and "." not in match.group(1):
                return self._bad_scheme(match.group(1).lower())
            return self.unusable("url.invalid",
                                 f"{self.display!r} has no scheme: the platform needs a full URL.",
                                 f"Enter it as https://{_MISSING_SCHEME.sub('', redact_url(text))}.")
        try:
            parts = urlsplit(substituted)
        except ValueError as e:
            return self.unusable("url.invalid", f"The URL cannot be parsed: {e}.")
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return self._bad_scheme(scheme)
        return self._authority(parts, scheme)

    def _bad_scheme(self, scheme: str) -> UrlCheck:
        return self.unusable("url.scheme",
                             f"The URL's scheme is {scheme!r}; the platform only sends post-sale requests "
                             "over http:// or https://.",
                             "Use an https:// URL pointing at the feedback handler.",
                             scheme=scheme or None, scheme_found=scheme)

    def _authority(self, parts: SplitResult, scheme: str) -> UrlCheck:
        netloc = parts.netloc
        userinfo, _, hostport = netloc.rpartition("@")
        if userinfo:
            user, has_password = userinfo.partition(":")[0], ":" in userinfo
            self.add("url.credentials",
                     f"The URL contains {'user:password' if has_password else 'a user name'}@ before the "
                     "host. The platform does not turn it into a login, so a protected path answers 401, "
                     "and the credentials end up in logs. The probe sends the request without them.",
                     "Remove the user:password@ part from the URL in the back office. If the path is "
                     "password-protected, exempt it and admit PostFinance's published ranges instead.",
                     user=user, password_present=has_password)
        try:
            explicit = parts.port
        except ValueError as e:
            return self.unusable("url.invalid", f"The port in {hostport!r} is not valid ({e}).",
                                 "Remove the port, or write a number between 1 and 65535.", scheme=scheme)
        if explicit == 0:
            return self.unusable("url.invalid", "The URL names port 0, which no server can listen on.",
                                 "Remove the port from the URL.", scheme=scheme)
        raw_host = parts.hostname or ""
        if not raw_host:
            return self.unusable("url.invalid", "The URL has no host name.",
                                 "Enter the shop's host name, e.g. https://shop.example/postfinance/feedback.",
                                 scheme=scheme)
        host = self._host(raw_host, bracketed=hostport.startswith("["))
        if host is None:
            return UrlCheck(configured=self.configured, effective=None, scheme=scheme, host=None, port=None,
                            explicit_port=False, target="", host_is_ip=False, findings=tuple(self.findings))
        name, display_host, is_ip = host
        port = url_port(parts)
        assert port is not None      # the scheme is http or https (checked above)
        if scheme == "http":
            on_port = "" if port == DEFAULT_PORTS["http"] else f" on port {port}"
            self.add("url.plain_http",
                     f"The URL uses http://{on_port}: the request can get through, but the payment parameters "
                     "and the SHA-OUT signature travel unencrypted. PostFinance recommends HTTPS.",
                     plain_http_fix(self.display, port=port, host=display_host), port=port)
        self._port(port, explicit is not None, display_host, is_ip, scheme, parts.path)
        self._host_findings(name, display_host, is_ip, raw_host)
        target = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_QUERY_SAFE)
        effective = f"{scheme}://{_authority_text(name, explicit, is_ip)}{target}"
        return UrlCheck(configured=self.configured, effective=effective, scheme=scheme, host=name, port=port,
                        explicit_port=explicit is not None, target=target, host_is_ip=is_ip,
                        findings=tuple(self.findings), display_host=display_host)

    def _host(self, raw: str, *, bracketed: bool) -> tuple[str, str, bool] | None:
        """(wire host, display host, is IP) or None after adding url.invalid."""
        host = raw.rstrip(".") if not bracketed else raw
        if bracketed:
            try:
                address = ipaddress.IPv6Address(host.replace("%25", "%").split("%", 1)[0])
            except ValueError:
                self.add("url.invalid", f"[{raw}] is not a valid IPv6 address.",
                         "Write IPv6 addresses in brackets, e.g. https://[2001:db8::10]/feedback, or use "
                         "the host name.")
                return None
            zone = host.replace("%25", "%").partition("%")[2]
            text = str(address) + (f"%{zone}" if zone else "")
            return text, text, True
        if not host or ".." in host or host.startswith("."):
            self.add("url.invalid", f"The host {raw!r} is not a valid name (empty label).",
                     "Correct the host name in the back office.")
            return None
        labels = host.split(".")
        if all(_NUMERIC_LABEL.fullmatch(label) for label in labels) or _NUMERIC_LABEL.fullmatch(labels[-1]):
            return self._ipv4_literal(host)
        if host.isascii():
            ascii_host = host.lower()
        else:
            try:
                ascii_host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError as e:
                self.add("url.invalid", f"The internationalised host {raw!r} cannot be encoded for DNS ({e}).",
                         "Correct the host name, or enter its xn-- (punycode) form.")
                return None
        if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
            self.add("url.invalid",
                     f"The host {raw!r} is not a valid host name (letters, digits and hyphens only, "
                     "each label at most 63 characters).",
                     "Correct the host name in the back office.")
            return None
        try:
            display = idna.decode(ascii_host) if "xn--" in ascii_host else ascii_host
        except idna.IDNAError:
            display = ascii_host
        return ascii_host, display, False

    def _ipv4_literal(self, host: str) -> tuple[str, str, bool] | None:
        try:
            address = socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            self.add("url.invalid", f"The host {host!r} is neither a valid IPv4 address nor a host name.",
                     "Correct the host name in the back office.")
            return None
        return address, address, True

    def _port(self, port: int, explicit: bool, display_host: str, is_ip: bool, scheme: str, path: str) -> None:
        allowed = self.platform.feedback_ports
        if port in allowed or self.platform.other_ports_reachable:
            return
        self.add("url.port_not_allowed",
                 f"The URL {'names' if explicit else 'uses'} port {port}; PostFinance's published firewall "
                 f"guidance covers ports {', '.join(map(str, allowed))} only, and other ports are assumed "
                 "unreachable from the platform.",
                 port_fix(self.display, scheme=scheme, allowed=allowed, host=display_host),
                 port=port, allowed_ports=list(allowed), assumption="ports.other_ports_reachable")

    def _host_findings(self, name: str, display_host: str, is_ip: bool, raw_host: str) -> None:
        if is_ip:
            reason = address_class(name)
            unusual = "" if raw_host.lower() in (name, f"{name}.") else f" (written as {raw_host!r})"
            if reason is not None:
                self.add("url.private_host",
                         f"The host is the {reason} address {name}{unusual}: PostFinance's servers on the "
                         "internet cannot connect to it.",
                         "Use the shop's public host name, whose DNS record points at the public address.",
                         address=name, address_class=reason)
            else:
                self.add("url.ip_literal",
                         f"The host is the IP address {name}{unusual}. Certificates rarely cover an IP "
                         "address (the TLS check then fails), and the URL breaks when the address changes.",
                         "Use the shop's host name in the URL.", address=name)
        elif is_local_name(name):
            kind = "a single-label name" if "." not in name else "a name that only resolves locally"
            self.add("url.private_host",
                     f"The host {display_host!r} is {kind}: it does not exist in public DNS, so "
                     "PostFinance's servers cannot resolve it.",
                     "Use the shop's public, fully qualified host name (e.g. shop.example.ch).",
                     host=display_host)


def suggested_url(configured: str, *, scheme: str, host: str | None = None, port: int | None = None,
                  path: str | None = None) -> str:
    """The one place that builds a URL to enter in the back office: `configured` as the merchant typed it -
    its path and query kept, `<PARAMVAR>` included, user:password@ and #fragment dropped - with `scheme`,
    and `host` / `port` / `path` where given. `port` None (or the scheme's default) leaves the port out:
    https:// on the default port 443. Used by the url.plain_http, url.port_not_allowed, http.redirect and
    TLS-on-a-plain-port fixes, so they name the same URL."""
    try:
        parts = urlsplit(configured.strip())
        configured_host = parts.hostname or ""
    except ValueError:
        parts, configured_host = urlsplit(""), ""
    shown_host = host if host is not None else configured_host
    shown_port = None if port is None or port == DEFAULT_PORTS.get(scheme) else port
    authority = _authority_text(shown_host, shown_port, ":" in shown_host)
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{authority}{path if path is not None else (parts.path or '/')}{query}"


def port_fix(configured: str, *, scheme: str, allowed: tuple[int, ...] | list[int], host: str | None = None,
             path: str | None = None) -> str:
    """The fix of url.port_not_allowed: the URL on an allowed port (see `suggested_url`). For an http://
    URL HTTPS on 443 comes first, as url.plain_http's fix says; port 80 is named as the unencrypted way."""
    if scheme == "http" and DEFAULT_PORTS["https"] in allowed:
        https = suggested_url(configured, scheme="https", host=host, path=path)
        plain = f" (or on port 80: {suggested_url(configured, scheme='http', host=host, path=path)}, unencrypted)" \
            if DEFAULT_PORTS["http"] in allowed else ""
        return f"Serve the handler over HTTPS on port 443 and enter {https} in the back office{plain}."
    default = DEFAULT_PORTS[scheme]
    suggested = default if default in allowed else allowed[-1]
    url = suggested_url(configured, scheme=scheme, host=host, port=suggested, path=path)
    return f"Serve the handler on port {suggested} and enter {url} in the back office."


def plain_http_fix(configured: str, *, port: int, host: str | None = None, path: str | None = None,
                   final_https: str | None = None) -> str:
    """The fix of url.plain_http: the https:// form of the URL to enter (see `suggested_url`). A plain
    HTTP port cannot serve HTTPS as well, so a URL on another port than 80 is sent to 443 and the text
    says so. `path` is the final path when the server redirects to it (http.redirect); `final_https`
    the final URL when the server already redirects to HTTPS."""
    if final_https:
        return f"Enter the final URL {final_https} in the back office: the server already redirects there over HTTPS."
    url = suggested_url(configured, scheme="https", host=host, path=path)
    where = "" if port == DEFAULT_PORTS["http"] else f" (on port 443: port {port} serves plain HTTP)"
    return f"Serve the handler over HTTPS{where} and enter {url} in the back office."


def _authority_text(host: str, port: int | None, is_ip: bool) -> str:
    shown = host
    if is_ip and ":" in host:
        shown = "[" + host.replace("%", "%25") + "]"
    return shown if port is None else f"{shown}:{port}"
