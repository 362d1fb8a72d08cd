"""The matcher table: what each nftables selector means for a new TCP connection to the feedback port.

One entry per selector (`ip saddr`, `tcp dport`, `ct state`, ...) holds both of its meanings:

* `single`: a match on the selector alone (`ip saddr @allowlist`, `ct state new`), which may use the
  whole match (named sets, negation, ordered comparisons). It returns False to fall back to the
  element meaning.
* `element`: the selector's part of one element of a concatenation (`ip saddr . tcp dport { a . 443 }`)
  or of a verdict map key: an address set the element's addresses are cut to, a port interval, or
  whether the element can match at all. A selector without it makes such a concatenation unsupported.

Adding a match type is one entry here (plus, when `nft -j` spells it in a way `jsonform._json_selector`
does not know yet, its JSON selector there). Selectors the table does not have make the rule uncertain
(`Rule.unsupported`), except transport headers of other protocols, which never match TCP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from feedback_check.firewall.connection import internal_interface
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Assumption
from feedback_check.firewall.nftables.ir import PLAIN_VERDICTS, Match, Statement, Verdict, render_element
from feedback_check.firewall.nftables.values import (
    ALL,
    V4,
    V6,
    Relation,
    address,
    addresses_of,
    conjoin,
    family_set,
    port,
    port_number,
    protocol_name,
    union,
)

_STATE_ATOM = re.compile(r"[a-z]+")

#: What one element's atom means for one key: addresses it is cut to, a port interval, whether it can
#: match (True/False), or None for no condition (checked only).
Part = AddressSet | tuple[int, int] | bool | None


@dataclass
class RuleState:
    """What a rule's matches amount to for a new TCP connection."""

    relation: Relation = field(default_factory=lambda: [(0, 65535, ALL)])
    protocols: frozenset[str] | None = None
    new_connections: bool = True
    interfaces: list[str] = field(default_factory=list)
    destination: AddressSet | None = None
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    set_refs: list[tuple[str, bool, bool]] = field(default_factory=list)   # (set, negated, simple)
    assumption: Assumption | None = None
    assumed_match: bool = True

    def restrict_protocol(self, protocol: str | None) -> None:
        if protocol is None:
            return
        names = frozenset({protocol})
        self.protocols = names if self.protocols is None else self.protocols & names


class Sets(Protocol):
    """What a matcher needs from the table being interpreted: a match's elements (its named set's,
    recorded as a use of the set) and the addresses of a named set."""

    def elements_of(self, match: Match, state: RuleState) -> Sequence[tuple[str, ...]]: ...

    def set_addresses(self, name: str, version: int | None) -> AddressSet: ...


def describe(match: Match) -> str:
    """The match as nft writes it, for `Rule.unsupported`."""
    return f"{match.keys[0]} {'' if match.op == '==' else match.op + ' '}" + (
        "@" + match.ref if match.ref else ", ".join(render_element(e) for e in match.elements))


class Matcher:
    """A selector's meaning (see the module docstring). The defaults: no single meaning of its own, no
    element meaning (unsupported in a concatenation), ordered comparisons unsupported."""

    #: The transport protocol the selector implies (ports); the rule then matches only that protocol.
    protocol: str | None = None
    #: Whether the selector can be part of a concatenation (the class defines `element`).
    concatenable = False

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        return False

    def compare(self, match: Match, state: RuleState) -> bool:
        """`<`, `<=`, `>`, `>=`: applied when True; False makes the match unsupported."""
        return False

    def element(self, atom: str, state: RuleState) -> Part:
        """One element of a concatenation; only selectors with `concatenable = True` are asked."""
        raise TypeError(f"{type(self).__name__} cannot be part of a concatenation")

    def finish(self, state: RuleState) -> None:
        """After every element of a concatenation using the selector was read."""


class SourceAddress(Matcher):
    """`ip saddr`, `ip6 saddr`: the source addresses (named sets converted once per set)."""

    concatenable = True

    def __init__(self, version: int) -> None:
        self.version = version

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        if match.ref is not None:
            sets.elements_of(match, state)          # records the reference, checks the set exists
            found = sets.set_addresses(match.ref, self.version)
        else:
            found = addresses_of((e[0] for e in match.elements if len(e) == 1), self.version)
            if any(len(e) != 1 for e in match.elements):
                raise ValueError(f"{describe(match)}: elements do not fit {match.keys[0]}")
        matched = family_set(self.version) - found if match.op == "!=" else found
        state.relation = conjoin(state.relation, [(0, 65535, matched)])
        return True

    def element(self, atom: str, state: RuleState) -> Part:
        return address(atom, self.version)


class DestinationAddress(Matcher):
    """`ip daddr`, `ip6 daddr`: reported only (the server's own address is unknown)."""

    concatenable = True

    def __init__(self, version: int) -> None:
        self.version = version

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        elements = sets.elements_of(match, state)
        found = union([address(e[0], self.version) for e in elements]) if elements else AddressSet.empty()
        state.destination = (family_set(self.version) - found) if match.op == "!=" else found
        state.relation = conjoin(state.relation, [(0, 65535, family_set(self.version))])
        return True

    def element(self, atom: str, state: RuleState) -> Part:
        address(atom, self.version)                  # checked, no condition
        return None


class DestinationPort(Matcher):
    """`tcp dport`, `th dport`, ...: destination ports (and the protocol the header implies)."""

    concatenable = True

    def __init__(self, protocol: str | None) -> None:
        self.protocol = protocol

    def compare(self, match: Match, state: RuleState) -> bool:
        if len(match.elements) != 1 or match.ref is not None:
            return False
        value = port_number(match.elements[0][0])
        low, high = {"<": (0, value - 1), "<=": (0, value), ">": (value + 1, 65535),
                     ">=": (value, 65535)}[match.op]
        state.restrict_protocol(self.protocol)
        state.relation = conjoin(state.relation, [(low, high, ALL)] if low <= high else [])
        return True

    def element(self, atom: str, state: RuleState) -> Part:
        return port(atom)


class TransportProtocol(Matcher):
    """`meta l4proto`, `ip protocol`, `ip6 nexthdr`: the protocol (IPv4 or IPv6 only when the key says)."""

    concatenable = True

    def __init__(self, version: int | None) -> None:
        self.version = version

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        if match.op == "!=":
            return False
        names = frozenset(protocol_name(e[0]) for e in sets.elements_of(match, state))
        state.protocols = names if state.protocols is None else state.protocols & names
        state.relation = conjoin(state.relation, [(0, 65535, family_set(self.version))])
        return True

    def element(self, atom: str, state: RuleState) -> Part:
        return protocol_name(atom) == "tcp"

    def finish(self, state: RuleState) -> None:
        state.restrict_protocol("tcp")


class NetfilterFamily(Matcher):
    """`meta nfproto ipv4|ipv6`."""

    concatenable = True

    def element(self, atom: str, state: RuleState) -> Part:
        return V4 if atom == "ipv4" else V6 if atom == "ipv6" else ALL


class ConnectionState(Matcher):
    """`ct state`: a new connection is in state `new`."""

    concatenable = True

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        states = {a for e in sets.elements_of(match, state) for a in _STATE_ATOM.findall(e[0])}
        if ("new" in states) == (match.op == "!="):
            state.new_connections = False
        return True

    def element(self, atom: str, state: RuleState) -> Part:
        return "new" in _STATE_ATOM.findall(atom)


class ConnectionStatus(Matcher):
    """`ct status dnat`: only connections redirected by a DNAT rule (never one to this host's address)."""

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        if match.op == "!=" or [e[0] for e in sets.elements_of(match, state)] != ["dnat"]:
            return False
        state.relation = []
        state.notes.append("matches only connections redirected by a DNAT rule, not a connection to "
                           "this host's own address")
        return True


class InputInterface(Matcher):
    """`iif`, `iifname`: internal interfaces never carry PostFinance's traffic; any other one is assumed
    to be the one it arrives on."""

    concatenable = True

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        interfaces = [e[0].strip('"') for e in sets.elements_of(match, state)]
        external = [n for n in interfaces if not internal_interface(n)]
        if match.op == "!=":
            if external:
                state.unsupported.append(describe(match) + " (which interface PostFinance's traffic "
                                                           "arrives on is unknown)")
            return True
        if not external:
            state.relation = []
            state.notes.append("matches only loopback or internal-bridge traffic, never PostFinance's")
            return True
        state.interfaces.extend(external)
        state.notes.append(f"assumes PostFinance's traffic arrives on {', '.join(external)}")
        return True

    def element(self, atom: str, state: RuleState) -> Part:
        name = atom.strip('"')
        if internal_interface(name):
            return False
        if name not in state.interfaces:
            state.interfaces.append(name)
        return None


class PacketType(Matcher):
    """`meta pkttype`: a connection to this host is `host` (unicast)."""

    concatenable = True

    def element(self, atom: str, state: RuleState) -> Part:
        return atom in ("host", "unicast")


class TransportHeader(Matcher):
    """Any other field of a transport header (`tcp flags`, `icmp type`, `udp sport`): it implies its
    protocol; for TCP the field itself is not evaluated (unsupported)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol

    def single(self, match: Match, state: RuleState, sets: Sets) -> bool:
        state.restrict_protocol(self.protocol)
        if self.protocol == "tcp":
            state.unsupported.append(describe(match))
        return True


_IFACE = InputInterface()
_PROTOCOL = TransportProtocol(None)
_NFPROTO = NetfilterFamily()
_PKTTYPE = PacketType()

#: Selector (as nft writes it; `jsonform._json_selector` spells JSON selectors the same way) -> meaning.
MATCHERS: dict[str, Matcher] = {
    "ip saddr": SourceAddress(4), "ip6 saddr": SourceAddress(6),
    "ip daddr": DestinationAddress(4), "ip6 daddr": DestinationAddress(6),
    **{f"{p} dport": DestinationPort(p) for p in ("tcp", "udp", "sctp", "dccp", "udplite")},
    "th dport": DestinationPort(None),
    "meta l4proto": _PROTOCOL, "l4proto": _PROTOCOL,
    "ip protocol": TransportProtocol(4), "ip6 nexthdr": TransportProtocol(6),
    "meta nfproto": _NFPROTO, "nfproto": _NFPROTO,
    "ct state": ConnectionState(),
    "ct status": ConnectionStatus(),
    "iif": _IFACE, "iifname": _IFACE, "meta iif": _IFACE, "meta iifname": _IFACE,
    "pkttype": _PKTTYPE, "meta pkttype": _PKTTYPE,
}

#: Header selectors that imply their protocol (`icmp type ...` never matches a TCP connection).
TRANSPORT_HEADERS = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "dccp": "dccp", "udplite": "udplite",
                     "icmp": "icmp", "icmpv6": "ipv6-icmp", "igmp": "igmp", "esp": "esp", "ah": "ah"}
_HEADER_MATCHERS = {head: TransportHeader(protocol) for head, protocol in TRANSPORT_HEADERS.items()}

#: The address family a selector's header implies (for a concatenation's domain).
FAMILY_OF_HEAD = {"ip": 4, "ip6": 6, "icmp": 4, "icmpv6": 6}


def matcher(key: str) -> Matcher | None:
    """The meaning of selector `key`, or None when the analyser does not know it."""
    found = MATCHERS.get(key)
    if found is None:
        found = _HEADER_MATCHERS.get(key.partition(" ")[0])
    return found


def is_source(key: str) -> bool:
    """Whether `key` selects the source address (named sets of it can take a fix)."""
    return isinstance(MATCHERS.get(key), SourceAddress)


def run_source(statements: Sequence[Statement]) -> tuple[int, int] | None:
    """Where a rule's source is one address, prefix or range that a run of same-shape rules may vary
    (`ip saddr 203.0.113.7`): the index of that match and its family, when the rule has exactly one
    such match and ends in a plain verdict (or none); else None."""
    found: tuple[int, int] | None = None
    for index, statement in enumerate(statements):
        if isinstance(statement, Match):
            meaning = MATCHERS.get(statement.keys[0]) if len(statement.keys) == 1 else None
            if isinstance(meaning, SourceAddress) and statement.op == "==" and statement.ref is None \
                    and len(statement.elements) == 1 and len(statement.elements[0]) == 1:
                if found is not None:
                    return None
                found = index, meaning.version
        elif isinstance(statement, Verdict) and statement.kind not in PLAIN_VERDICTS:
            return None
    return found
