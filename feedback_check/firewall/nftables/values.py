"""Text atoms as values (addresses, ports, protocols) and the relation algebra of the interpreter:
source addresses x destination ports."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from itertools import pairwise

from feedback_check.firewall.ipspace import IPV4_MAX, AddressSet, ipv4_bounds

# ---------------------------------------------------------------------------------------------------
# Interpretation: the intermediate form -> model rules.

ALL_PORTS = (0, 65535)
PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp", "33": "dccp",
                    "136": "udplite", "47": "gre", "50": "esp", "51": "ah", "4": "ipip", "41": "ipv6"}
PROTOCOL_ALIASES = {"icmpv6": "ipv6-icmp"}
SERVICE_PORTS = {"http": 80, "https": 443, "ssh": 22, "smtp": 25, "domain": 53, "ftp": 21, "telnet": 23,
                 "pop3": 110, "imap": 143, "imap2": 143, "submission": 587, "submissions": 465, "smtps": 465,
                 "imaps": 993, "pop3s": 995, "http-alt": 8080, "webcache": 8080, "ntp": 123, "snmp": 161,
                 "ldap": 389, "ldaps": 636, "mysql": 3306, "postgresql": 5432, "rsync": 873,
                 "microsoft-ds": 445, "ms-wbt-server": 3389, "bgp": 179, "domain-s": 853}


Relation = list[tuple[int, int, AddressSet]]     # disjoint sorted port intervals -> source addresses
V4 = AddressSet.all_ipv4()
V6 = AddressSet.all_ipv6()
ALL = AddressSet.everything()


def family_set(version: int | None) -> AddressSet:
    return V4 if version == 4 else V6 if version == 6 else ALL


def addresses_of(atoms: Iterable[str], version: int | None) -> AddressSet:
    """The union of many atoms, normalised once."""
    if version is not None:
        atoms = list(atoms)
        return AddressSet.from_bounds(version, *bounds(atoms, version))
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for atom in atoms:
        part = address(atom, version)
        v4.extend(part.v4)
        v6.extend(part.v6)
    return AddressSet.from_intervals(v4, v6)


def bounds(atoms: Sequence[str], version: int) -> tuple[Sequence[int], Sequence[int]]:
    """The first and the last address of each atom (one address, prefix or range each); IPv4 in bulk."""
    if version == 4 and "/\n" not in "\n".join(atoms) + "\n":    # ipv4_bounds would read `a/` as `a`
        found = ipv4_bounds(atoms)
        if found is not None:
            return found
    firsts: list[int] = []
    lasts: list[int] = []
    for atom in atoms:
        part = address(atom, version)
        (first, last), = part.v4 if version == 4 else part.v6
        firsts.append(first)
        lasts.append(last)
    return firsts, lasts


def address(atom: str, version: int | None) -> AddressSet:
    """`1.2.3.4`, `1.2.3.0/24`, `1.2.3.4-1.2.3.9` (IPv4 fast path; IPv6 via the ipspace parser)."""
    atom = atom.strip('"')
    if ":" not in atom and version != 6:
        try:
            if "/" in atom:
                addr, _, length = atom.partition("/")
                bits = int(length)
                if not 0 <= bits <= 32:
                    raise ValueError(atom)
                value = int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
                size = 1 << (32 - bits)
                first = value & ~(size - 1) & IPV4_MAX
                return AddressSet(v4=((first, first + size - 1),))
            if "-" in atom:
                low, _, high = atom.partition("-")
                a = int.from_bytes(socket.inet_pton(socket.AF_INET, low.strip()), "big")
                b = int.from_bytes(socket.inet_pton(socket.AF_INET, high.strip()), "big")
                if b < a:
                    raise ValueError(f"range {atom} ends before it starts")
                return AddressSet(v4=((a, b),))
            value = int.from_bytes(socket.inet_pton(socket.AF_INET, atom), "big")
            return AddressSet(v4=((value, value),))
        except OSError:
            raise ValueError(f"{atom!r} is not an IPv4 address, prefix or range") from None
    result = AddressSet.parse(atom)
    if version == 4 and result.v6 or version == 6 and result.v4:
        raise ValueError(f"{atom!r} is not an IPv{version} address")
    return result


def port(atom: str) -> tuple[int, int]:
    atom = atom.strip('"')
    if "-" in atom:
        low, _, high = atom.partition("-")
        a, b = port_number(low), port_number(high)
        if b < a:
            raise ValueError(f"port range {atom} ends before it starts")
        return a, b
    value = port_number(atom)
    return value, value


def port_number(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        value = int(text)
        if value > 65535:
            raise ValueError(f"port {value} out of range")
        return value
    if text in SERVICE_PORTS:
        return SERVICE_PORTS[text]
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise ValueError(f"unknown service name {text!r}") from None


def protocol_name(atom: str) -> str:
    atom = atom.strip('"').lower()
    atom = PROTOCOL_NUMBERS.get(atom, atom)
    return PROTOCOL_ALIASES.get(atom, atom)


def relation_from_pieces(pieces: list[tuple[AddressSet, tuple[int, int] | None]], negated: bool,
                          domain: AddressSet) -> Relation:
    """The relation of "element matches" (union of address x port pieces), or its complement within
    `domain` x every port when negated."""
    by_interval: dict[tuple[int, int], list[AddressSet]] = {}
    for addresses, ports in pieces:
        by_interval.setdefault(ports or ALL_PORTS, []).append(addresses)
    if not by_interval:
        return [(0, 65535, domain)] if negated else []
    cuts = {0, 65536}
    for low, high in by_interval:
        cuts.add(low)
        cuts.add(high + 1)
    edges = sorted(cuts)
    grouped = {interval: union(sets) for interval, sets in by_interval.items()}
    out: Relation = []
    for low, nxt in pairwise(edges):
        high = nxt - 1
        covering = [s for (a, b), s in grouped.items() if a <= low and high <= b]
        covered = union(covering) if covering else AddressSet.empty()
        addresses = domain - covered if negated else covered & domain
        if addresses:
            if out and out[-1][2] == addresses and out[-1][1] == low - 1:
                out[-1] = (out[-1][0], high, addresses)
            else:
                out.append((low, high, addresses))
    return out


def union(sets: Sequence[AddressSet]) -> AddressSet:
    if len(sets) == 1:
        return sets[0]
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for s in sets:
        v4.extend(s.v4)
        v6.extend(s.v6)
    return AddressSet.from_intervals(v4, v6)


def conjoin(a: Relation, b: Relation) -> Relation:
    out: Relation = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            left, right = a[i][2], b[j][2]
            both = right if left is ALL else left if right is ALL else left & right
            if both:
                out.append((low, high, both))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
