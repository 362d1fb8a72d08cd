"""http.* findings of one request's result (feedback_check.probe.http.HttpResult), per findings.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.platform import Assumption, Platform
from feedback_check.probe.http import (
    BEFORE_HANDLER,
    HttpResult,
    HttpStatus,
    final_url,
    redirect_hint,
    redirect_kind,
    shown_location,
    waf_markers,
)

_REDIRECT_ASSUMPTION = Assumption("http.redirect_fails", "{redirect_fails}")
_UNVERIFIED_NOTE = (" (The request was sent without certificate verification, to show what the endpoint answers "
                    "once the TLS problem is fixed.)")


@dataclass(frozen=True, slots=True)
class _Case:
    """What every finding of one request's result shares."""

    result: HttpResult
    target: str
    platform: Platform
    evidence: dict[str, Any]
    note: str                              # the unverified-request note, or ""

    @property
    def where(self) -> str:
        return self.result.address


def http_findings(result: HttpResult, target: str, platform: Platform, *, online: bool) -> list[Finding]:
    """http.* findings for one request's result: its outcome's finding (`_BY_STATUS`), then for an
    answer http.slow and http.online_body_shown."""
    case = _Case(result, target, platform, _evidence(result), "" if result.verified else _UNVERIFIED_NOTE)
    if result.status is not HttpStatus.ANSWERED:
        return _BY_STATUS[result.status](case)
    code = result.status_code or 0
    found = [finding for finding in (_answered(case, code), _slow(case)) if finding is not None]
    # A failing answer fails the post-sale anyway; only an accepted or redirecting one reaches the customer.
    if online and (300 <= code < 400 or (200 <= code < 300 and result.body.strip())):
        found.append(_online_body_shown(case, code))
    return found


def _evidence(result: HttpResult) -> dict[str, Any]:
    evidence: dict[str, Any] = {"address": result.address, "method": result.method,
                                "seconds": round(result.total_seconds, 3)}
    if result.status_line:
        evidence["status_line"] = result.status_line
    if result.header("server"):
        evidence["server"] = result.header("server")
    if result.error:
        evidence["error"] = result.error
    return evidence


# --- requests without an answer -------------------------------------------------------------------

def _timeout(case: _Case) -> list[Finding]:
    result, platform = case.result, case.platform
    head = f"; the status line {result.status_line} arrived but the answer never completed" \
        if result.status_line else ""
    return [make_finding(
        "http.timeout", case.target,
        evidence={**case.evidence, "budget_seconds": platform.budget_seconds, "assumption": "timing.budget_seconds",
                  "bytes_received": len(result.body),
                  **({"status_line": result.status_line} if result.status_line else {})},
        detail=f"The {result.method} request to {case.where} did not complete within {platform.budget_seconds:g} s "
               f"(the assumed platform budget, connect to last byte){head}." + case.note)]


def _protocol_error(case: _Case) -> list[Finding]:
    result = case.result
    return [make_finding(
        "http.protocol_error", case.target, evidence=case.evidence,
        detail=f"The answer from {case.where} is not valid HTTP ({result.error})."
               + (" The bytes look like TLS: the port speaks HTTPS while the URL says http://."
                  if result.tls_bytes else "")
               + (" The answer was cut off before its announced end." if result.status_code else "") + case.note,
        fix="Change the URL to https:// (the port speaks TLS)." if result.tls_bytes else None)]


def _connection_reset(case: _Case) -> list[Finding]:
    return [make_finding(
        "http.connection_reset", case.target, evidence=case.evidence,
        detail=f"{case.where} closed or reset the connection before a complete answer ({case.result.error})."
               + case.note)]


def _reported_by_earlier_phase(case: _Case) -> list[Finding]:
    # The TCP and TLS phases report these; the request itself adds nothing but the error.
    return []


_BY_STATUS: dict[HttpStatus, Callable[[_Case], list[Finding]]] = {
    HttpStatus.TIMEOUT: _timeout,
    HttpStatus.PROTOCOL_ERROR: _protocol_error,
    HttpStatus.CONNECTION_RESET: _connection_reset,
    HttpStatus.CONNECT_FAILED: _reported_by_earlier_phase,
    HttpStatus.TLS_FAILED: _reported_by_earlier_phase,
}


# --- answers, by status code ----------------------------------------------------------------------

def _success(case: _Case) -> Finding:
    result, platform = case.result, case.platform
    if result.status_code == platform.expected_status:
        return make_finding(
            "http.ok", case.target, evidence=case.evidence,
            detail=f"{case.where} answered {result.status_line} in {result.total_seconds:.2f} s "
                   f"(first byte after {result.ttfb_seconds or 0:.2f} s)." + case.note)
    only_200 = not platform.is_success_status(result.status_code)
    return make_finding(
        "http.non_200_success", case.target, evidence={**case.evidence, "assumption": "http.success"},
        severity=Severity.CRITICAL if only_200 else None,
        detail=f"{case.where} answered {result.status_line}: "
               + ("the platform profile counts only " if only_200 else "assumed to count as success, but "
                  "the platform expects ") + f"{platform.expected_status}." + case.note,
        fix=f"Make the handler answer {platform.expected_status}.")


def _redirect(case: _Case) -> Finding:
    result = case.result
    location = result.header("location") or ""
    absolute, hint = redirect_hint(result.url, location) if location else ("", "no Location header")
    kind = redirect_kind(result.url, location)
    if kind == BEFORE_HANDLER:
        return _redirect_before_handler(case, location, absolute, hint)
    return _redirect_after_processing(case, location, shown_location(absolute), kind)


def _redirect_before_handler(case: _Case, location: str, absolute: str, hint: str) -> Finding:
    result = case.result
    shown = shown_location(absolute)
    final = final_url(case.target, absolute) if absolute else ""
    return make_finding(
        "http.redirect", case.target,
        evidence={**case.evidence, "location": shown_location(location), "absolute_location": shown,
                  "hint": hint, "kind": BEFORE_HANDLER, **({"final_url": final} if final else {})},
        detail=f"{case.where} answered {result.status_line} to {shown or '(no Location)'} ({hint}): the same "
               "resource under another address, so the web server or CDN answered before any handler ran. "
               "The platform does not follow redirects" + (", and a redirect would drop the POST body."
                                                          if result.method == "POST" else ".")
               + " The post-sale's data never reaches the shop." + case.note,
        fix=f"Enter the final URL {final} in the back office." if final else
            "Make the server answer the post-sale URL itself instead of redirecting (no Location was sent).")


def _redirect_after_processing(case: _Case, location: str, shown: str, kind: str) -> Finding:
    platform = case.platform
    severity = {None: Severity.WARNING, True: Severity.CRITICAL, False: Severity.INFO}[platform.redirect_fails]
    return make_finding(
        "http.redirect_after_processing", case.target, severity=severity,
        evidence={**case.evidence, "location": shown_location(location), "absolute_location": shown,
                  "kind": kind, "assumption": "http.redirect_fails", "redirect_fails": platform.redirect_fails},
        detail=f"{case.where} answered {case.result.status_line} to another page, {shown}: the handler ran and sends "
               "the caller on, as Odoo's payment_ogone (303 to /payment/status) and Magento 1's Mage_Ogone "
               "(302 to the checkout success page) do after processing a post-sale. "
               + platform.describe(platform.assumption("http.redirect_fails") or _REDIRECT_ASSUMPTION) + case.note,
        fix="Keep the post-sale URL as it is: the redirect target is a page for the customer's browser, "
            "not a post-sale URL. "
            + ("Make the handler answer 200 to the post-sale (a redirect is taken to fail it here)."
               if platform.redirect_fails else
               "If PostFinance's transaction e-mails still say \"process error\", make the handler answer "
               "200 to the post-sale instead of redirecting."))


def _auth_required(case: _Case) -> Finding:
    result = case.result
    challenge = result.header("www-authenticate") or result.header("proxy-authenticate") or ""
    return make_finding(
        "http.auth_required", case.target, evidence={**case.evidence, "challenge": challenge},
        detail=f"{case.where} answered {result.status_line}{' (' + challenge + ')' if challenge else ''}: the path "
               "is password-protected, and the platform sends no credentials." + case.note)


def _forbidden(case: _Case) -> Finding:
    result = case.result
    markers = waf_markers(result)
    detail = f"{case.where} answered {result.status_line}."
    if markers:
        detail += " The answer looks like a WAF/CDN block: " + "; ".join(markers) + "."
    else:
        detail += " Nothing in the answer names a WAF or CDN: an access rule (deny/allow list, " \
                  "mod_security, file permissions) on the server refuses it."
    return make_finding("http.forbidden", case.target,
                        evidence={**case.evidence, "waf_markers": markers, "body_excerpt": result.body_text(200)},
                        detail=detail + case.note)


def _not_found(case: _Case) -> Finding:
    result = case.result
    return make_finding("http.not_found", case.target, evidence=case.evidence,
                        detail=f"{case.where} answered {result.status_line} for {urlsplit(result.url).path}."
                               + case.note)


def _method_not_allowed(case: _Case) -> Finding:
    result = case.result
    allow = result.header("allow") or ""
    return make_finding(
        "http.method_not_allowed", case.target, evidence={**case.evidence, "allow": allow},
        detail=f"{case.where} answered {result.status_line} to {result.method}"
               f"{' (Allow: ' + allow + ')' if allow else ''}." + case.note)


def _client_error(case: _Case) -> Finding:
    result = case.result
    return make_finding("http.client_error", case.target,
                        evidence={**case.evidence, "body_excerpt": result.body_text(200)},
                        detail=f"{case.where} answered {result.status_line}: "
                               f"{result.body_text(120).strip() or '(empty body)'}." + case.note)


def _server_error(case: _Case) -> Finding:
    result = case.result
    return make_finding("http.server_error", case.target,
                        evidence={**case.evidence, "body_excerpt": result.body_text(200)},
                        detail=f"{case.where} answered {result.status_line}: the handler fails. "
                               f"{result.body_text(120).strip()}" + case.note)


#: Status codes with a finding of their own; otherwise the code's class (`_BY_CLASS`, code // 100) decides.
_BY_CODE: dict[int, Callable[[_Case], Finding]] = {
    401: _auth_required, 407: _auth_required, 403: _forbidden, 404: _not_found, 405: _method_not_allowed,
}
_BY_CLASS: dict[int, Callable[[_Case], Finding]] = {2: _success, 3: _redirect, 4: _client_error}


def _answered(case: _Case, code: int) -> Finding | None:
    """The finding of an answer's status code (none for a code under 200)."""
    if code >= 500:
        return _server_error(case)
    write = _BY_CODE.get(code) or _BY_CLASS.get(code // 100)
    return write(case) if write is not None else None


def _slow(case: _Case) -> Finding | None:
    result, platform = case.result, case.platform
    if not platform.slow_seconds < result.total_seconds <= platform.budget_seconds:
        return None
    return make_finding(
        "http.slow", case.target,
        evidence={**case.evidence, "slow_seconds": platform.slow_seconds, "assumption": "timing.slow_seconds"},
        detail=f"{case.where} took {result.total_seconds:.2f} s to answer (more than {platform.slow_seconds:g} s; "
               f"budget {platform.budget_seconds:g} s)." + case.note)


def _online_body_shown(case: _Case, code: int) -> Finding:
    result = case.result
    return make_finding(
        "http.online_body_shown", case.target,
        evidence={**case.evidence, "body_excerpt": result.body_text(200), "content_type": result.header("content-type")},
        detail=f"With online timing the customer sees this answer instead of the accept page: "
               f"{'a redirect' if 300 <= code < 400 else repr(result.body_text(80))}." + case.note)
