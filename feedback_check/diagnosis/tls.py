"""tls.* findings of one address's TLS phase (feedback_check.probe.tls.TlsResult), per findings.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.platform import Platform
from feedback_check.probe.tls import CertProblem, TlsResult, TlsStatus

#: What a failed handshake's OpenSSL reason code says about the port: (hint, whether the fix applies).
_NOT_TLS = " The port answers something that is not TLS - typically plain HTTP on the HTTPS port."
_NO_CERTIFICATE_FOR = " The server has no certificate for the name {host}."
_HINTS = {"WRONG_VERSION_NUMBER": _NOT_TLS, "TLSV1_UNRECOGNIZED_NAME": _NO_CERTIFICATE_FOR,
          "TLSV1_ALERT_UNRECOGNIZED_NAME": _NO_CERTIFICATE_FOR}


def tls_findings(result: TlsResult, target: str, platform: Platform) -> list[Finding]:
    """tls.* findings for one address: the handshake's outcome (`_BY_STATUS`), tls.sni_required, each
    problem of the certificate chain (`_BY_PROBLEM`, in the order found) and tls.cert_expiring."""
    base = {"address": result.address, "port": result.port, "host": result.host}
    if result.status is TlsStatus.TIMEOUT:
        return [_timeout(result, target, base)]
    outcome = _BY_STATUS.get(result.status)
    found = [outcome(result, target, platform, base)] if outcome is not None else []
    if result.sni_required:
        found.append(make_finding("tls.sni_required", target, evidence={**base, "observed": result.sni_evidence},
                                  detail=f"{_where(result)} needs SNI for {result.host}: {result.sni_evidence}. The "
                                         "platform's client sends SNI, so this only matters for old clients."))
    if result.check is None:
        return found
    evidence = _cert_evidence(result)
    for problem in result.check.problems:
        found.append(_BY_PROBLEM[problem](result, target, platform, evidence,
                                          result.check.reasons.get(problem.value, "")))
    expiring = _expiring(result, target, platform, evidence)
    return found + [expiring] if expiring is not None else found


def _where(result: TlsResult) -> str:
    return f"{result.address} port {result.port}"


def _cert_evidence(result: TlsResult) -> dict[str, Any]:
    leaf = result.leaf
    evidence: dict[str, Any] = {"address": result.address, "port": result.port, "host": result.host}
    if leaf is not None:
        evidence.update(subject=leaf.subject, issuer=leaf.issuer, not_before=leaf.not_before.isoformat(),
                        not_after=leaf.not_after.isoformat(), names=list(leaf.names))
        evidence["sent_chain"] = [c.subject for c in result.chain]
    if result.check is not None and result.check.days_left is not None:
        evidence["days_left"] = round(result.check.days_left, 1)
    return evidence


# --- the handshake --------------------------------------------------------------------------------

def _timeout(result: TlsResult, target: str, base: dict[str, Any]) -> Finding:
    return make_finding("tls.handshake_failed", target, evidence={**base, "error": result.error},
                        detail=f"The TCP connection to {_where(result)} opens, but the TLS handshake gets no answer "
                               f"({result.error}).",
                        fix="Check that the server on this port speaks TLS and is not overloaded.")


def _failed(result: TlsResult, target: str, platform: Platform, base: dict[str, Any]) -> Finding:
    hint = _HINTS.get(result.ssl_reason, "").format(host=result.host)
    return make_finding(
        "tls.handshake_failed", target, evidence={**base, "error": result.error},
        detail=f"The TLS handshake with {_where(result)} fails: {result.error}.{hint}",
        fix=None if not hint else "Serve HTTPS on this port with a certificate for "
                                  f"{result.host} (or change the URL's scheme/port to match the server).")


def _protocol_too_old(result: TlsResult, target: str, platform: Platform, base: dict[str, Any]) -> Finding:
    return make_finding(
        "tls.protocol_too_old", target,
        evidence={**base, "negotiated": result.version, "cipher": result.cipher,
                  "required": f"TLSv{platform.tls_min_version}", "error_at_floor": result.error},
        detail=f"{_where(result)} refuses TLS {platform.tls_min_version} and newer ({result.error}); it speaks "
               f"{result.version} ({result.cipher}). The platform requires TLS {platform.tls_min_version} "
               f"or newer{platform.facts()['tls_min_version_since']}.", platform=platform)


def _weak_cipher_only(result: TlsResult, target: str, platform: Platform, base: dict[str, Any]) -> Finding:
    return make_finding(
        "tls.weak_cipher_only", target,
        evidence={**base, "negotiated": result.version, "cipher": result.cipher,
                  "error_with_strong_ciphers": result.error},
        detail=f"{_where(result)} completes a {result.version} handshake only with the weak cipher {result.cipher}; "
               f"with modern cipher suites it fails ({result.error}).")


#: The handshake's finding per outcome (TlsStatus.OK has none; TIMEOUT ends the phase: `_timeout`).
_BY_STATUS: dict[TlsStatus, Callable[[TlsResult, str, Platform, dict[str, Any]], Finding]] = {
    TlsStatus.FAILED: _failed,
    TlsStatus.PROTOCOL_TOO_OLD: _protocol_too_old,
    TlsStatus.WEAK_CIPHER_ONLY: _weak_cipher_only,
}


# --- the certificate chain ------------------------------------------------------------------------

def _expired(result: TlsResult, target: str, platform: Platform, evidence: dict[str, Any], reason: str) -> Finding:
    return make_finding("tls.cert_expired", target, evidence=evidence,
                        detail=f"The certificate served by {_where(result)} for {result.host}: {reason}.")


def _not_yet_valid(result: TlsResult, target: str, platform: Platform, evidence: dict[str, Any],
                   reason: str) -> Finding:
    return make_finding("tls.cert_not_yet_valid", target, evidence=evidence,
                        detail=f"The certificate served by {_where(result)}: {reason}.")


def _untrusted(result: TlsResult, target: str, platform: Platform, evidence: dict[str, Any], reason: str) -> Finding:
    return make_finding("tls.cert_untrusted", target, evidence={**evidence, "assumption": "tls.public_ca_required"},
                        severity=None if platform.tls_public_ca_required else Severity.INFO,
                        detail=f"The certificate served by {_where(result)} is not trusted: {reason}.")


def _chain_incomplete(result: TlsResult, target: str, platform: Platform, evidence: dict[str, Any],
                      reason: str) -> Finding:
    return make_finding("tls.chain_incomplete", target,
                        evidence={**evidence, "assumption": "tls.intermediates_required"},
                        severity=None if platform.tls_intermediates_required else Severity.INFO,
                        detail=f"{_where(result)}: {reason}.")


def _hostname_mismatch(result: TlsResult, target: str, platform: Platform, evidence: dict[str, Any],
                       reason: str) -> Finding:
    return make_finding("tls.hostname_mismatch", target,
                        evidence={**evidence, "assumption": "tls.hostname_must_match"},
                        severity=None if platform.tls_hostname_must_match else Severity.INFO,
                        detail=f"The certificate served by {_where(result)} does not cover the URL's host: "
                               f"{reason}.")


_BY_PROBLEM: dict[CertProblem, Callable[[TlsResult, str, Platform, dict[str, Any], str], Finding]] = {
    CertProblem.EXPIRED: _expired,
    CertProblem.NOT_YET_VALID: _not_yet_valid,
    CertProblem.UNTRUSTED: _untrusted,
    CertProblem.CHAIN_INCOMPLETE: _chain_incomplete,
    CertProblem.HOSTNAME_MISMATCH: _hostname_mismatch,
}


def _expiring(result: TlsResult, target: str, platform: Platform, evidence: dict[str, Any]) -> Finding | None:
    """tls.cert_expiring for a valid certificate within platform.cert_warning_days of its end."""
    check = result.check
    days = check.days_left if check is not None else None
    if days is None or not 0 <= days <= platform.cert_warning_days or check is None or \
            CertProblem.EXPIRED in check.problems:
        return None
    leaf = result.leaf
    assert leaf is not None
    severity = Severity.CRITICAL if days <= platform.cert_critical_days else Severity.WARNING
    return make_finding(
        "tls.cert_expiring", target, severity=severity,
        evidence={**evidence, "warning_days": platform.cert_warning_days, "critical_days": platform.cert_critical_days},
        detail=f"The certificate for {result.host} expires on {leaf.not_after:%Y-%m-%d %H:%M} UTC, in "
               f"{days:.1f} days; from then on every post-sale request fails with a process error.")
