"""DNS phase of the probe: resolve the post-sale URL's host as the platform would, and name what is wrong.

`resolve` asks the given resolvers (`--resolver`), or the system configuration (the hosts file first,
then /etc/resolv.conf) when none is given, for A and AAAA concurrently, follows the CNAME chain and
returns a frozen `Resolution` with the dns.* findings. It never raises for a DNS outcome (NXDOMAIN,
SERVFAIL, timeout, ...): those become findings. `timeout` bounds the whole resolution.

With several resolvers the first one is the view the probe uses (its addresses are probed, its outcome
is judged); the others are compared with it (dns.split_horizon).

A resolver this machine cannot reach at all (network unreachable, no route, the resolver's port refused,
no resolver configured) says nothing about the shop's zone: then `Resolution.unreachable` gives the
reason and there is no dns.* finding (the probe reports the URL as UNKNOWN, as a monitoring plugin
that could not run its check does). A resolver that is reachable but does not answer in time stays
dns.timeout. Reachability is tested with one connected UDP query per server, sent with the lookup
(an unconnected socket, as dnspython's, never sees the ICMP "port unreachable" of a refused port).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time dnspython is imported by _load_dnspython, on the first name to resolve
    import dns.asyncresolver
    import dns.message
    import dns.name
    import dns.resolver  # noqa: TC004

from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.probe.addresses import address_class
from feedback_check.probe.deadline import Deadline

logger = logging.getLogger(__name__)

HOSTS_FILE = "/etc/hosts"
RESOLV_CONF = "/etc/resolv.conf"
DNS_PORT = 53


class Outcome(enum.Enum):
    """What one resolver said about one record type (or about the name, once combined)."""

    ANSWER = "answer"          # records of the type (possibly via CNAMEs)
    NODATA = "no data"         # the name exists, no records of the type
    NXDOMAIN = "NXDOMAIN"
    SERVFAIL = "SERVFAIL"      # includes REFUSED, broken delegation, DNSSEC failure, no resolver configured
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class _TypeResult:
    outcome: Outcome
    addresses: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    error: str = ""


#: Socket errors that mean this machine cannot reach a resolver at all (as opposed to a resolver that
#: does not answer): the route, the network or the port is missing on this side.
UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.EADDRNOTAVAIL,
                                errno.ENETDOWN, errno.EHOSTDOWN, errno.EAFNOSUPPORT, errno.EPERM, errno.EACCES})


@dataclass(frozen=True)
class _View:
    """One resolver's answer for the name: A and AAAA."""

    resolver: str
    a: _TypeResult
    aaaa: _TypeResult
    unreachable: str = ""            # why this machine cannot reach the resolver at all ("" if it can)

    @property
    def chain(self) -> tuple[str, ...]:
        return self.a.chain or self.aaaa.chain

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.a.addresses + self.aaaa.addresses

    @property
    def sorted_addresses(self) -> tuple[str, ...]:
        return tuple(sorted(self.addresses, key=lambda a: (":" in a, ipaddress.ip_address(a))))

    @property
    def definitive(self) -> bool:
        """The resolver gave an answer (addresses, no data or NXDOMAIN) rather than failing."""
        return self.a.outcome in (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN)

    def summary(self) -> list[str] | str:
        if self.a.outcome is Outcome.NXDOMAIN or self.aaaa.outcome is Outcome.NXDOMAIN:
            return "NXDOMAIN"
        if not self.definitive:
            return str(self.a.outcome.value)
        return list(self.sorted_addresses)


@dataclass(frozen=True)
class Resolution:
    """The DNS phase's result for one host."""

    host: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    cname_chain: tuple[str, ...]          # names followed, in order, not including `host`
    seconds: float                        # wall time of the lookups
    findings: tuple[Finding, ...]
    views: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # resolver -> sorted addresses
    resolver_note: str = ""
    #: Why this machine cannot ask the (first) resolver at all - not a fault of the shop's zone: the
    #: probe cannot run, the URL's verdict is UNKNOWN. "" when the resolver was reached.
    unreachable: str = ""

    @property
    def addresses(self) -> tuple[str, ...]:
        """IPv4 addresses, then IPv6 addresses."""
        return self.ipv4 + self.ipv6


def parse_resolver(text: str) -> tuple[str, int]:
    """`ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address -> (address, port). The port defaults
    to 53. ValueError with a message fit for the user when it is not an IP address and port."""
    spec = text.strip()
    problem = f"--resolver {text!r}: expected an IP address with an optional port (1.1.1.1, 127.0.0.1:5353, [::1]:5353)"
    if not spec:
        raise ValueError(problem)
    port_text = ""
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(problem)
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise ValueError(problem)
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        if not port_text:
            raise ValueError(problem)
    else:
        host = spec   # IPv4 without port, or a bare IPv6 address
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(problem) from None
    if not port_text:
        return address, DNS_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"--resolver {text!r}: port must be a number from 1 to 65535")
    return address, int(port_text)


def _resolver_label(address: str, port: int) -> str:
    shown = f"[{address}]" if ":" in address else address
    return shown if port == DNS_PORT else f"{shown}:{port}"


async def resolve(host: str, *, resolvers: Sequence[str] = (), timeout: float, target: str,
                  hosts_file: str | None = HOSTS_FILE, resolv_conf: str = RESOLV_CONF) -> Resolution:
    """Resolve `host` (A and AAAA, following CNAMEs) within `timeout` seconds; findings are about
    `target` (the post-sale URL). An IP-literal host returns itself with no query. Without
    `resolvers`, names in `hosts_file` resolve from there, others through `resolv_conf`.
    Raises ValueError only for a malformed resolver address (a usage error)."""
    name = host.strip().strip("[]").rstrip(".")
    literal = _ip_literal(name)
    if literal is not None:
        v4 = (literal,) if ":" not in literal else ()
        return Resolution(host=name, ipv4=v4, ipv6=() if v4 else (literal,), cname_chain=(), seconds=0.0,
                          findings=(), resolver_note="IP address in the URL: no DNS query")
    parsed = [parse_resolver(r) for r in resolvers]
    _load_dnspython()
    problem = _name_problem(name)
    if problem is not None:
        invalid = make_finding("dns.nxdomain", target, detail=f"{name!r} is not a valid DNS name ({problem}), "
                               "so it cannot exist in DNS.", evidence={"host": name, "error": problem},
                               fix="Correct the host name of the post-sale URL in the back office.")
        return Resolution(host=name, ipv4=(), ipv6=(), cname_chain=(), seconds=0.0, findings=(invalid,),
                          resolver_note="no query: invalid name")
    started = time.perf_counter()
    if not parsed:
        from_hosts = _hosts_lookup(name, hosts_file) if hosts_file else None
        if from_hosts:
            view = _View(f"hosts file {hosts_file}",
                         _TypeResult(Outcome.ANSWER, tuple(a for a in from_hosts if ":" not in a)),
                         _TypeResult(Outcome.ANSWER, tuple(a for a in from_hosts if ":" in a)))
            views = [view]
        else:
            views = [await _system_view(name, timeout, resolv_conf)]
    else:
        deadline = Deadline.after(timeout)
        labels = [_resolver_label(a, p) for a, p in parsed]
        views = list(await asyncio.gather(*(
            _lookup(_configured_resolver(a, p, timeout), name, label, deadline, [(a, p)])
            for (a, p), label in zip(parsed, labels, strict=True))))
    seconds = time.perf_counter() - started
    primary = views[0]
    if primary.unreachable:
        return Resolution(host=name, ipv4=(), ipv6=(), cname_chain=(), seconds=seconds, findings=(),
                          views={v.resolver: v.sorted_addresses for v in views} if len(views) > 1 else {},
                          resolver_note=_note(views), unreachable=primary.unreachable)
    findings = _judge(name, primary, views, timeout, target)
    return Resolution(
        host=name, ipv4=primary.a.addresses, ipv6=primary.aaaa.addresses, cname_chain=primary.chain,
        seconds=seconds, findings=tuple(findings),
        views={v.resolver: v.sorted_addresses for v in views} if len(views) > 1 else {},
        resolver_note=_note(views))


def _load_dnspython() -> None:
    """Import dnspython on the first name to resolve: a run whose URLs name IP addresses (or `--help`)
    never pays its import time (about 60 ms)."""
    global dns
    import dns.asyncresolver
    import dns.exception
    import dns.message
    import dns.name
    import dns.rdatatype
    import dns.resolver


def _note(views: Sequence[_View]) -> str:
    if len(views) == 1:
        return views[0].resolver
    return f"{views[0].resolver} (probed), compared with " + ", ".join(v.resolver for v in views[1:])


def _ip_literal(name: str) -> str | None:
    try:
        return str(ipaddress.ip_address(name.split("%", 1)[0]))
    except ValueError:
        return None


def _name_problem(name: str) -> str | None:
    if not name:
        return "empty"
    try:
        dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError, ValueError) as e:
        return str(e).rstrip(".") or type(e).__name__
    return None


def _hosts_lookup(name: str, path: str) -> tuple[str, ...]:
    """Addresses of `name` in a hosts file, in file order (as the C library's `files` source)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    wanted = name.lower()
    found: list[str] = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or wanted not in (n.lower().rstrip(".") for n in fields[1:]):
            continue
        address = _ip_literal(fields[0])
        if address is not None and address not in found:
            found.append(address)
    return tuple(found)


def _configured_resolver(address: str, port: int, timeout: float) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [address]
    resolver.port = port
    _bound(resolver, timeout)
    return resolver


def _bound(resolver: dns.asyncresolver.Resolver, timeout: float) -> None:
    """The whole lookup within `timeout`; each attempt shorter (dnspython's per-server default, or the
    resolv.conf `timeout` option), so a lost UDP packet or a dead first server is retried in time."""
    resolver.lifetime = timeout
    resolver.timeout = min(resolver.timeout, timeout)


async def _system_view(name: str, timeout: float, resolv_conf: str) -> _View:
    try:
        resolver = dns.asyncresolver.Resolver(filename=resolv_conf)
    except (dns.resolver.NoResolverConfiguration, OSError) as e:
        reason = f"no usable resolver configuration in {resolv_conf} ({e}); name one with --resolver ADDR"
        failed = _TypeResult(Outcome.SERVFAIL, error=reason)
        return _View(f"system resolver ({resolv_conf})", failed, failed, unreachable=reason)
    servers = ", ".join(str(s) for s in resolver.nameservers)
    _bound(resolver, timeout)
    label = f"system resolver ({resolv_conf}: {servers})"
    addresses = [(str(s), resolver.port) for s in resolver.nameservers if _ip_literal(str(s)) is not None]
    return await _lookup(resolver, name, label, Deadline.after(timeout), addresses)


async def _lookup(resolver: dns.asyncresolver.Resolver, name: str, label: str, deadline: Deadline,
                  servers: Sequence[tuple[str, int]] = ()) -> _View:
    """A and AAAA from `resolver`; meanwhile whether this machine can reach `servers` at all. An
    unreachable answer ends the lookup at once (a refused port would otherwise wait out the timeout);
    it is ignored when the A query was answered."""
    queries = asyncio.gather(_query(resolver, name, "A", deadline), _query(resolver, name, "AAAA", deadline))
    if not servers:
        a, aaaa = await queries
        return _View(label, a, aaaa)
    reach = asyncio.ensure_future(_unreachable(servers, name, deadline))
    try:
        await asyncio.wait((queries, reach), return_when=asyncio.FIRST_COMPLETED)
        if reach.done() and reach.result() and not queries.done():
            queries.cancel()
            await asyncio.gather(queries, return_exceptions=True)
            failed = _TypeResult(Outcome.SERVFAIL, error=reach.result())
            return _View(label, failed, failed, unreachable=reach.result())
        a, aaaa = await queries
        if a.outcome in (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN):
            return _View(label, a, aaaa)
        why = await reach
    finally:
        for task in (queries, reach):
            if not task.done():
                task.cancel()
    return _View(label, a, aaaa, unreachable=why)


async def _unreachable(servers: Sequence[tuple[str, int]], name: str, deadline: Deadline) -> str:
    """Why none of `servers` can be reached from this machine ("cannot reach resolver ADDR from this
    machine: reason"), or "" when one may be reachable (it answered, or did not answer within the
    deadline: a timeout, not a local problem). One DNS query on a connected UDP socket per server: the kernel reports a refused port
    (ICMP port unreachable) or a missing route to a connected socket only."""
    results = await asyncio.gather(*(_reach_one(address, port, name, deadline) for address, port in servers))
    if not results or any(r == "" for r in results):
        return ""
    if len(servers) == 1:
        return f"cannot reach resolver {_resolver_label(*servers[0])} from this machine: {results[0]}"
    return "cannot reach resolvers " + ", ".join(
        f"{_resolver_label(address, port)} ({why})" for (address, port), why in zip(servers, results, strict=True)
    ) + " from this machine"


async def _reach_one(address: str, port: int, name: str, deadline: Deadline) -> str:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as e:
        return _os_reason(e, port) if e.errno in UNREACHABLE_ERRNOS else ""
    try:
        sock.setblocking(False)
        sock.connect((address, port))
        sock.send(dns.message.make_query(name, "A").to_wire())
        async with deadline.timeout():
            await loop.sock_recv(sock, 512)
    except TimeoutError:
        return ""
    except OSError as e:
        return _os_reason(e, port) if e.errno in UNREACHABLE_ERRNOS else ""
    finally:
        sock.close()
    return ""


def _os_reason(error: OSError, port: int) -> str:
    if error.errno == errno.ECONNREFUSED:
        return f"connection refused (nothing answers DNS on port {port})"
    return (error.strerror or str(error)).lower()


async def _query(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str, deadline: Deadline) -> _TypeResult:
    remaining = max(deadline.left(), 0.0)
    qname = dns.name.from_text(name)   # validated by resolve()
    try:
        async with deadline.timeout():
            answer = await resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except (TimeoutError, dns.exception.Timeout):
        return _TypeResult(Outcome.TIMEOUT, error=f"no answer within {_seconds(remaining)}")
    except dns.resolver.NXDOMAIN as e:
        return _TypeResult(Outcome.NXDOMAIN, chain=_nxdomain_chain(e, qname), error=str(e))
    except dns.resolver.NoNameservers as e:
        return _TypeResult(Outcome.SERVFAIL, error=_servfail_text(e))
    except dns.resolver.NoAnswer:   # only with raise_on_no_answer=True; kept for safety
        return _TypeResult(Outcome.NODATA)
    except dns.exception.DNSException as e:   # YXDOMAIN, chain too long, malformed answers, ...
        return _TypeResult(Outcome.SERVFAIL, error=f"{type(e).__name__}: {e}")
    except (OSError, ValueError) as e:        # socket errors dnspython lets through; hostile input
        logger.debug("DNS query %s %s failed", name, rdtype, exc_info=True)
        return _TypeResult(Outcome.SERVFAIL, error=f"{type(e).__name__}: {e}")
    chain = _chain(answer.chaining_result.cnames)
    # Sorted numerically: an RRset has no order, and stable reports diff cleanly between runs.
    addresses = tuple(sorted((str(rd) for rd in answer.rrset), key=ipaddress.ip_address)) \
        if answer.rrset is not None else ()
    return _TypeResult(Outcome.ANSWER if addresses else Outcome.NODATA, addresses, chain)


def _chain(cnames: Sequence[Any]) -> tuple[str, ...]:
    names: list[str] = []
    for rrset in cnames:
        for rd in rrset:
            names.append(rd.target.to_text(omit_final_dot=True))
            break
    return tuple(names)


def _nxdomain_chain(error: dns.resolver.NXDOMAIN, qname: dns.name.Name) -> tuple[str, ...]:
    try:
        response: dns.message.QueryMessage = error.responses()[qname]  # type: ignore[no-untyped-call]
        return _chain(response.resolve_chaining().cnames)
    except (KeyError, TypeError, dns.exception.DNSException):
        return ()


def _servfail_text(error: dns.resolver.NoNameservers) -> str:
    """`SERVFAIL` / `REFUSED` / the socket error, per server, without dnspython's message dump."""
    parts: list[str] = []
    for entry in error.kwargs.get("errors") or []:
        server, port, problem = str(entry[0]).split(":", 1)[-1].split("@")[0], entry[2], entry[3]
        text = f"{_resolver_label(server, port)} answered {problem}" if isinstance(problem, str) else \
            f"{_resolver_label(server, port)}: {type(problem).__name__}: {problem}"
        if text not in parts:
            parts.append(text)
    return "; ".join(parts) or "all name servers failed"


def _seconds(value: float) -> str:
    return f"{value:g} s"


# -- judging ---------------------------------------------------------------------------------------
def _judge(name: str, view: _View, views: Sequence[_View], timeout: float, target: str) -> list[Finding]:
    findings: list[Finding] = []
    base: dict[str, Any] = {"host": name, "resolver": view.resolver}
    chain = view.chain
    if chain:
        findings.append(make_finding(
            "dns.cname_chain", target,
            detail=f"{name} is an alias: " + " → ".join((name, *chain)) + ".",
            evidence={**base, "chain": [name, *chain]}))
    findings.extend(_outcome_findings(name, view, base, timeout, target))
    findings.extend(_private_findings(name, view, base, target))
    if len(views) > 1:
        findings.extend(_split_horizon(name, views, target))
    return findings


def _outcome_findings(name: str, view: _View, base: dict[str, Any], timeout: float,
                      target: str) -> list[Finding]:
    a, aaaa = view.a, view.aaaa
    via = f" (via {' → '.join(view.chain)})" if view.chain else ""
    if Outcome.NXDOMAIN in (a.outcome, aaaa.outcome):
        last = view.chain[-1] if view.chain else name
        detail = (f"{view.resolver} answers NXDOMAIN: {name} does not exist." if not view.chain else
                  f"{name} is an alias ({' → '.join((name, *view.chain))}), and {last} does not exist "
                  "(NXDOMAIN).")
        return [make_finding("dns.nxdomain", target, detail=detail,
                             evidence={**base, "rcode": "NXDOMAIN", "missing_name": last},
                             fix=f"Publish an A record for {last}, or correct the host name in the back office."
                             if view.chain else None)]
    if a.outcome is Outcome.TIMEOUT:
        return [make_finding("dns.timeout", target,
                             detail=f"{view.resolver} did not answer the A query for {name} within "
                                    f"{_seconds(timeout)}.",
                             evidence={**base, "timeout_seconds": timeout, "query": "A"})]
    if a.outcome is Outcome.SERVFAIL:
        return [make_finding("dns.servfail", target,
                             detail=f"Resolving {name} (A) fails: {a.error}.",
                             evidence={**base, "query": "A", "error": a.error})]
    out: list[Finding] = []
    if a.outcome is Outcome.NODATA:
        if aaaa.addresses:
            out.append(make_finding(
                "dns.ipv6_only", target,
                detail=f"{name}{via} has AAAA records ({', '.join(aaaa.addresses)}) but no A record; "
                       "PostFinance publishes IPv4 source ranges only.",
                evidence={**base, "ipv6": list(aaaa.addresses)},
                fix=f"Publish an A record for {view.chain[-1] if view.chain else name} with the shop's "
                    "public IPv4 address."))
        else:
            out.append(make_finding(
                "dns.no_address", target,
                detail=f"{name}{via} exists but has no A record"
                       + ("." if aaaa.outcome is Outcome.NODATA else f" (the AAAA query: {aaaa.outcome.value})."),
                evidence={**base, "a": a.outcome.value, "aaaa": aaaa.outcome.value},
                fix=f"Publish an A record for {view.chain[-1] if view.chain else name} with the shop's "
                    "public IPv4 address."))
    # The A answer decides; a failing AAAA query alone does not stop the platform (IPv4 only), but it
    # delays dual-stack clients and hints at a broken name server.
    if a.outcome is Outcome.ANSWER and aaaa.outcome is Outcome.TIMEOUT:
        out.append(make_finding("dns.timeout", target, severity=Severity.WARNING,
                                detail=f"The A query for {name} was answered, but the AAAA query was not "
                                       f"within {_seconds(timeout)}.",
                                evidence={**base, "timeout_seconds": timeout, "query": "AAAA"},
                                fix="Fix the name servers so they answer AAAA queries (an empty answer is fine)."))
    if a.outcome is Outcome.ANSWER and aaaa.outcome is Outcome.SERVFAIL:
        out.append(make_finding("dns.servfail", target, severity=Severity.WARNING,
                                detail=f"The A query for {name} was answered, but the AAAA query fails: "
                                       f"{aaaa.error}.",
                                evidence={**base, "query": "AAAA", "error": aaaa.error},
                                fix="Fix the name servers so they answer AAAA queries (an empty answer is fine)."))
    return out


def _private_findings(name: str, view: _View, base: dict[str, Any], target: str) -> list[Finding]:
    private = {address: reason for address in view.addresses
               if (reason := address_class(address)) is not None}
    if not private:
        return []
    public = [a for a in view.addresses if a not in private]
    listed = ", ".join(f"{a} ({r})" for a, r in private.items())
    detail = f"{name} resolves to {listed}"
    detail += (f"; only {', '.join(public)} is public, and the platform may pick a private one." if public
               else ": PostFinance's servers on the internet cannot connect there.")
    if view.resolver.startswith("hosts file"):
        detail += f" The answer comes from {view.resolver[len('hosts file '):]} on this machine; public DNS may differ."
    return [make_finding("dns.private_address", target, detail=detail,
                         evidence={**base, "addresses": private, "public_addresses": public})]


def _split_horizon(name: str, views: Sequence[_View], target: str) -> list[Finding]:
    answered = [v for v in views if v.definitive]
    distinct = {repr(v.summary()) for v in answered}
    if len(distinct) < 2:
        return []
    summaries = {v.resolver: v.summary() for v in views}
    sets = [set(v.addresses) for v in answered]
    overlap = bool(set.intersection(*sets)) if sets else False
    described = "; ".join(
        f"{resolver}: {', '.join(s) if isinstance(s, list) and s else ('no address' if isinstance(s, list) else s)}"
        for resolver, s in summaries.items())
    detail = f"The resolvers answer differently for {name} — {described}."
    if overlap:
        detail += " The answers overlap, which can also be DNS load balancing."
    return [make_finding("dns.split_horizon", target, detail=detail,
                         evidence={"host": name, "views": summaries, "probed": views[0].resolver})]
