"""connect.* findings: of one address's TCP phase (feedback_check.probe.tcp.ConnectResult), and across
the addresses of one host (feedback_check.probe.result.AddressProbe), per findings.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.probe.result import AddressProbe
from feedback_check.probe.tcp import ConnectResult, ConnectStatus


def connect_findings(result: ConnectResult, target: str) -> list[Finding]:
    """connect.* findings for one failed attempt (none when it worked)."""
    write = _BY_STATUS.get(result.status)
    if write is None:
        return []
    evidence = {"address": result.address, "port": result.port, "error": result.error,
                "seconds": round(result.seconds, 3)}
    return [write(result, target, evidence, f"{result.address} port {result.port}")]


def _refused(result: ConnectResult, target: str, evidence: dict[str, Any], where: str) -> Finding:
    return make_finding(
        "connect.refused", target, evidence=evidence,
        detail=f"{where} answered the connection attempt with a reset ({result.error}): nothing listens "
               "on that port, or a firewall rejects it.",
        fix=f"Make the web server listen on port {result.port} of {result.address} (check the virtual host "
            "and that the service runs), or correct the host's DNS record.")


def _timeout(result: ConnectResult, target: str, evidence: dict[str, Any], where: str) -> Finding:
    return make_finding(
        "connect.timeout", target, evidence={**evidence, "assumption": "timing.budget_seconds"},
        detail=f"{where} did not answer the connection attempt ({result.error}): packets are dropped "
               "(a firewall DROP rule, a security group, or the host is down).",
        fix=f"Check that the host is up and that every firewall on the path admits PostFinance's "
            f"published ranges on TCP port {result.port}.")


def _unreachable(result: ConnectResult, target: str, evidence: dict[str, Any], where: str) -> Finding:
    return make_finding(
        "connect.unreachable", target, evidence=evidence,
        detail=f"There is no route to {where} ({result.error}).",
        fix="Check the address in DNS and the routing to it.")


#: The finding of each failed outcome (ConnectStatus.OK has none).
_BY_STATUS: dict[ConnectStatus, Callable[[ConnectResult, str, dict[str, Any], str], Finding]] = {
    ConnectStatus.REFUSED: _refused,
    ConnectStatus.TIMEOUT: _timeout,
    ConnectStatus.UNREACHABLE: _unreachable,
}


# --- across the addresses of one host -------------------------------------------------------------

def address_findings(probes: Sequence[AddressProbe], target: str, port: int,
                     local: Mapping[str, str]) -> list[Finding]:
    """connect.local_probe (`local`: address -> why it is local), connect.partial and connect.ipv6_failed."""
    v4_ok = [p.address for p in probes if not p.is_ipv6 and p.ok]
    v4_bad = [p.address for p in probes if not p.is_ipv6 and not p.ok]
    v6_bad = [p for p in probes if p.is_ipv6 and _ipv6_failed(p)]
    found = [_local_probe(target, local) if local else None,
             _partial(target, port, v4_ok, v4_bad) if v4_ok and v4_bad else None,
             _ipv6_failed_finding(target, v4_ok, v6_bad) if v4_ok and v6_bad else None]
    return [f for f in found if f is not None]


def _ipv6_failed(probe: AddressProbe) -> bool:
    """Fails, or has a connect/TLS/HTTP warning (a critical one lowered, as IPv4 works: probe._weigh_ipv6)."""
    return not probe.ok or any(f.severity is Severity.WARNING and f.code.split(".")[0] in ("connect", "tls", "http")
                               for f in probe.findings)


def _local_probe(target: str, local: Mapping[str, str]) -> Finding:
    listed = ", ".join(f"{a} ({r})" for a, r in local.items())
    return make_finding(
        "connect.local_probe", target, evidence={"addresses": dict(local)},
        detail=f"The probe reached {listed} from this machine: the connection may not cross the perimeter "
               "firewall PostFinance's requests cross, so it does not prove they get through.")


def _partial(target: str, port: int, v4_ok: list[str], v4_bad: list[str]) -> Finding:
    return make_finding(
        "connect.partial", target, evidence={"working": v4_ok, "failing": v4_bad, "port": port},
        detail=f"Of the host's IPv4 addresses, {', '.join(v4_ok)} work and {', '.join(v4_bad)} fail: "
               "the platform picks one of them, so some post-sale requests fail.",
        fix=f"Fix the failing address{'es' * (len(v4_bad) > 1)} or remove {'them' if len(v4_bad) > 1 else 'it'} "
            "from DNS.")


def _ipv6_failed_finding(target: str, v4_ok: list[str], v6_bad: list[AddressProbe]) -> Finding:
    return make_finding(
        "connect.ipv6_failed", target,
        evidence={"working_ipv4": v4_ok, "failing_ipv6": [p.address for p in v6_bad],
                  "ipv6_findings": {p.address: [f.code for f in p.findings] for p in v6_bad}},
        detail=f"IPv6 address{'es' * (len(v6_bad) > 1)} {', '.join(p.address for p in v6_bad)} fail while "
               f"IPv4 works ({', '.join(v4_ok)}).")
