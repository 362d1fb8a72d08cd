"""Text atoms as values (addresses, ports, protocols) and the relation algebra of the interpreter:
source addresses x destination ports."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from itertools import pairwise

from feedback_check.firewall.ipspace import IPV4_MAX, AddressSet, ipv4_bounds
from feedback_check.firewall.nftables.ir import (
    ALL_PORTS,
    FAMILY_OF_KEY_PROTOCOL,
    PROTOCOL_ALIASES,
    PROTOCOL_NUMBERS,
    SERVICE_PORTS,
)

# ---------------------------------------------------------------------------------------------------
# Interpretation: the intermediate form -> model rules.

Relation = list[tuple[int, int, AddressSet]]     # disjoint sorted port intervals -> source addresses
_V4 = AddressSet.all_ipv4()
_V6 = AddressSet.all_ipv6()
_ALL = AddressSet.everything()
_TCP = frozenset({"tcp"})


def _family_set(version: int | None) -> AddressSet:
    return _V4 if version == 4 else _V6 if version == 6 else _ALL


def _addresses(atoms: Iterable[str], version: int | None) -> AddressSet:
    """The union of many atoms, normalised once."""
    if version is not None:
        atoms = list(atoms)
        return AddressSet.from_bounds(version, *_bounds(atoms, version))
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for atom in atoms:
        part = _address(atom, version)
        v4.extend(part.v4)
        v6.extend(part.v6)
    return AddressSet.from_intervals(v4, v6)


def _bounds(atoms: Sequence[str], version: int) -> tuple[Sequence[int], Sequence[int]]:
    """The first and the last address of each atom (one address, prefix or range each); IPv4 in bulk."""
    if version == 4 and "/\n" not in "\n".join(atoms) + "\n":    # ipv4_bounds would read `a/` as `a`
        found = ipv4_bounds(atoms)
        if found is not None:
            return found
    firsts: list[int] = []
    lasts: list[int] = []
    for atom in atoms:
        part = _address(atom, version)
        (first, last), = part.v4 if version == 4 else part.v6
        firsts.append(first)
        lasts.append(last)
    return firsts, lasts


def _address(atom: str, version: int | None) -> AddressSet:
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


def _port(atom: str) -> tuple[int, int]:
    atom = atom.strip('"')
    if "-" in atom:
        low, _, high = atom.partition("-")
        a, b = _port_number(low), _port_number(high)
        if b < a:
            raise ValueError(f"port range {atom} ends before it starts")
        return a, b
    value = _port_number(atom)
    return value, value


def _port_number(text: str) -> int:
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


def _protocol(atom: str) -> str:
    atom = atom.strip('"').lower()
    atom = PROTOCOL_NUMBERS.get(atom, atom)
    return PROTOCOL_ALIASES.get(atom, atom)


def _key_family(key: str) -> int | None:
    head = key.split(" ", 1)[0]
    return FAMILY_OF_KEY_PROTOCOL.get(head)


def _relation_from_pieces(pieces: list[tuple[AddressSet, tuple[int, int] | None]], negated: bool,
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
    bounds = sorted(cuts)
    grouped = {interval: _union(sets) for interval, sets in by_interval.items()}
    out: Relation = []
    for low, nxt in pairwise(bounds):
        high = nxt - 1
        covering = [s for (a, b), s in grouped.items() if a <= low and high <= b]
        union = _union(covering) if covering else AddressSet.empty()
        addresses = domain - union if negated else union & domain
        if addresses:
            if out and out[-1][2] == addresses and out[-1][1] == low - 1:
                out[-1] = (out[-1][0], high, addresses)
            else:
                out.append((low, high, addresses))
    return out


def _union(sets: Sequence[AddressSet]) -> AddressSet:
    if len(sets) == 1:
        return sets[0]
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for s in sets:
        v4.extend(s.v4)
        v6.extend(s.v6)
    return AddressSet.from_intervals(v4, v6)


def _conjoin(a: Relation, b: Relation) -> Relation:
    out: Relation = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            left, right = a[i][2], b[j][2]
            both = right if left is _ALL else left if right is _ALL else left & right
            if both:
                out.append((low, high, both))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
