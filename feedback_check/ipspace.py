"""Exact sets of IPv4/IPv6 addresses as sorted, disjoint, non-adjacent closed intervals.

Every firewall verdict is computed with this interval arithmetic, never by sampling single addresses.
Sets are immutable; operations are linear merges over the sorted intervals.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter

IPV4_MAX = (1 << 32) - 1
IPV6_MAX = (1 << 128) - 1

Interval = tuple[int, int]

_FIRST = itemgetter(0)


def _normalise(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    # Sorting on the first address alone is enough (the merge keeps the largest end) and much
    # faster than comparing tuples.
    ordered = sorted(intervals, key=_FIRST)
    if not ordered:
        return ()
    merged: list[Interval] = []
    append = merged.append
    first, last = ordered[0]
    for start, end in ordered:
        if start <= last + 1:
            if end > last:      # noqa: PLR1730 - cheaper than a max() call in this hot loop
                last = end
        else:
            append((first, last))
            first, last = start, end
    append((first, last))
    return tuple(merged)


def _points(values: list[int]) -> tuple[Interval, ...]:
    """Sorted single addresses as intervals (neighbours and repeats joined)."""
    merged: list[Interval] = []
    append = merged.append
    first = last = values[0]
    for value in values:
        if value > last + 1:
            append((first, last))
            first = value
        last = value
    append((first, last))
    return tuple(merged)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start <= end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _intersect_family(a: tuple[Interval, ...], b: tuple[Interval, ...],
                      everything: tuple[Interval, ...]) -> tuple[Interval, ...]:
    # A rule's "any source" is the whole family: intersecting with it is the other side as it is.
    if a == everything:
        return b
    if b == everything:
        return a
    return _intersect(a, b)


def _complement(a: tuple[Interval, ...], top: int) -> tuple[Interval, ...]:
    out: list[Interval] = []
    cursor = 0
    for start, end in a:
        if start > cursor:
            out.append((cursor, start - 1))
        cursor = end + 1
    if cursor <= top:
        out.append((cursor, top))
    return tuple(out)


@dataclass(frozen=True)
class AddressSet:
    """A set of IPv4 and IPv6 addresses."""

    v4: tuple[Interval, ...] = ()
    v6: tuple[Interval, ...] = ()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> AddressSet:
        return _EMPTY

    @classmethod
    def everything(cls) -> AddressSet:
        return _EVERYTHING

    @classmethod
    def all_ipv4(cls) -> AddressSet:
        return cls(v4=((0, IPV4_MAX),))

    @classmethod
    def all_ipv6(cls) -> AddressSet:
        return cls(v6=((0, IPV6_MAX),))

    @classmethod
    def from_intervals(cls, v4: Iterable[Interval] = (), v6: Iterable[Interval] = ()) -> AddressSet:
        return cls(v4=_normalise(v4), v6=_normalise(v6))

    @classmethod
    def from_bounds(cls, version: int, firsts: Sequence[int], lasts: Sequence[int]) -> AddressSet:
        """The union of the intervals `firsts[i]`..`lasts[i]` of IP version `version`."""
        if len(firsts) > 1 and firsts == lasts:
            intervals = _points(sorted(firsts))     # single addresses: integers sort much faster
        else:
            intervals = _normalise(zip(firsts, lasts))
        return cls(v4=intervals) if version == 4 else cls(v6=intervals)

    @classmethod
    def parse(cls, text: str) -> AddressSet:
        """Parse an address, a CIDR (host bits allowed, as firewalls accept them) or `a-b` range.

        Raises ValueError with a readable message.
        """
        return cls.from_specs([text])

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> AddressSet:
        v4: list[Interval] = []
        v6: list[Interval] = []
        for spec in specs:
            version, interval = parse_interval(spec)
            (v4 if version == 4 else v6).append(interval)
        return cls.from_intervals(v4, v6)

    # -- algebra ------------------------------------------------------------------------------
    def union(self, other: AddressSet) -> AddressSet:
        if not other:
            return self
        if not self:
            return other
        return AddressSet(_normalise(self.v4 + other.v4), _normalise(self.v6 + other.v6))

    def intersection(self, other: AddressSet) -> AddressSet:
        return AddressSet(_intersect_family(self.v4, other.v4, _ALL_V4),
                          _intersect_family(self.v6, other.v6, _ALL_V6))

    def complement(self) -> AddressSet:
        return AddressSet(_complement(self.v4, IPV4_MAX), _complement(self.v6, IPV6_MAX))

    def difference(self, other: AddressSet) -> AddressSet:
        if not other or not self:
            return self
        return self.intersection(other.complement())

    __or__ = union
    __and__ = intersection
    __sub__ = difference

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def __contains__(self, address: object) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        intervals = self.v4 if ip.version == 4 else self.v6
        value = int(ip)
        index = bisect_right(intervals, (value, 1 << 129)) - 1
        return index >= 0 and intervals[index][0] <= value <= intervals[index][1]

    def overlaps(self, version: int, first: int, last: int) -> bool:
        """Whether the set holds any of the IPv`version` addresses `first`..`last` (by bisection)."""
        intervals = self.v4 if version == 4 else self.v6
        index = bisect_right(intervals, (last, 1 << 129)) - 1
        return index >= 0 and intervals[index][1] >= first

    def within(self, version: int, first: int, last: int) -> AddressSet:
        """The part of the set among the IPv`version` addresses `first`..`last` (by bisection)."""
        intervals = self.v4 if version == 4 else self.v6
        index = bisect_right(intervals, (first, 1 << 129)) - 1
        if index < 0 or intervals[index][1] < first:
            index += 1
        part: list[Interval] = []
        while index < len(intervals) and intervals[index][0] <= last:
            start, end = intervals[index]
            part.append((max(start, first), min(end, last)))
            index += 1
        return AddressSet(v4=tuple(part)) if version == 4 else AddressSet(v6=tuple(part))

    def issubset(self, other: AddressSet) -> bool:
        return not (self - other)

    def ipv4(self) -> AddressSet:
        return AddressSet(v4=self.v4)

    def ipv6(self) -> AddressSet:
        return AddressSet(v6=self.v6)

    def size(self) -> int:
        """Number of addresses (IPv4 and IPv6 together)."""
        return sum(e - s + 1 for s, e in self.v4) + sum(e - s + 1 for s, e in self.v6)

    def is_everything_ipv4(self) -> bool:
        return self.v4 == ((0, IPV4_MAX),)

    # -- presentation -------------------------------------------------------------------------
    def networks(self) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The minimal list of CIDR networks covering exactly this set."""
        for start, end in self.v4:
            yield from ipaddress.summarize_address_range(
                ipaddress.IPv4Address(start), ipaddress.IPv4Address(end))
        for start, end in self.v6:
            yield from ipaddress.summarize_address_range(
                ipaddress.IPv6Address(start), ipaddress.IPv6Address(end))

    def cidrs(self) -> list[str]:
        return [str(n) for n in self.networks()]

    def __str__(self) -> str:
        return ", ".join(self.cidrs()) or "(none)"


_ALL_V4: tuple[Interval, ...] = ((0, IPV4_MAX),)
_ALL_V6: tuple[Interval, ...] = ((0, IPV6_MAX),)
_EMPTY = AddressSet()
_EVERYTHING = AddressSet(v4=((0, IPV4_MAX),), v6=((0, IPV6_MAX),))


def parse_interval(spec: str) -> tuple[int, Interval]:
    """`spec` as (IP version, (first, last)). Accepts `1.2.3.4`, `1.2.3.0/24`, `1.2.3.4/24`
    (host bits ignored, as iptables and nginx do), `1.2.3.4-1.2.3.9`, `1.2.3.4/255.255.255.0`,
    and IPv6 equivalents. Raises ValueError naming the problem."""
    text = spec.strip()
    if not text:
        raise ValueError("empty address")
    if "-" in text and "/" not in text:
        first_text, last_text = (p.strip() for p in text.split("-", 1))
        first = ipaddress.ip_address(first_text)
        last = ipaddress.ip_address(last_text)
        if first.version != last.version:
            raise ValueError(f"range {spec!r} mixes IPv4 and IPv6")
        if int(last) < int(first):
            raise ValueError(f"range {spec!r} ends before it starts")
        return first.version, (int(first), int(last))
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise ValueError(f"{spec!r} is not an IP address or network") from e
    return network.version, (int(network.network_address), int(network.broadcast_address))


#: array typecode of an unsigned 32-bit integer (an IPv4 address).
_U32 = "I" if array("I").itemsize == 4 else "L"
_PTON4 = partial(socket.inet_pton, socket.AF_INET)
#: prefix length as written ("" for a plain address) -> (network mask, host mask)
_V4_NETMASK = {str(p): IPV4_MAX ^ ((1 << (32 - p)) - 1) for p in range(33)} | {"": IPV4_MAX}
_V4_HOSTMASK = {str(p): (1 << (32 - p)) - 1 for p in range(33)} | {"": 0}


def ipv4_bounds(specs: Sequence[str]) -> tuple[list[int], list[int]] | None:
    """The first and the last address of each of `specs` when every one is a plain IPv4 address or
    CIDR (`a.b.c.d`, `a.b.c.d/n`, host bits allowed), converted in C-level loops (a ban list or an
    ipset of 100,000 entries); None when any one is written otherwise (a range, a netmask, IPv6, a
    typo): the caller then parses them one by one, which names the one that is wrong."""
    if not specs:
        return [], []
    parts = [spec.partition("/") for spec in specs]
    prefixes = [part[2] for part in parts]
    try:
        netmasks = list(map(_V4_NETMASK.__getitem__, prefixes))
        packed = b"".join(map(_PTON4, [part[0] for part in parts]))
    except (KeyError, OSError, ValueError):
        return None
    values = array(_U32, packed)
    if sys.byteorder == "little":
        values.byteswap()
    if prefixes.count(prefixes[0]) == len(prefixes) and _V4_HOSTMASK[prefixes[0]] == 0:
        firsts = values.tolist()          # all single addresses (a ban list): nothing to mask
        return firsts, firsts[:]
    firsts = list(map(int.__and__, values, netmasks))
    lasts = list(map(int.__or__, firsts, map(_V4_HOSTMASK.__getitem__, prefixes)))
    return firsts, lasts
