"""`ipset save` / `ipset list` data: the named sets `iptables -m set --match-set NAME src` refers to.

Supported set types and how a new TCP connection from PostFinance is matched against them:

- ``hash:ip``, ``hash:net``, ``bitmap:ip`` (and ``hash:ip`` with ranges): the source address.
  ``nomatch`` entries (hash:net) exclude their addresses; as in the kernel, the most specific entry
  (longest prefix) wins.
- ``hash:ip,port`` and ``hash:net,port``: evaluable when the port dimension is the destination port
  (flags ``src,dst``): only entries for ``tcp:<feedback port>`` count.
- ``list:set``: the union of its member sets, each matched with the same flags.

Anything else (``hash:ip,port,ip``, ``hash:net,iface``, ``hash:mac``, a source-port dimension, ...)
cannot be evaluated and is reported as an unsupported match.
"""

from __future__ import annotations

import ipaddress
import socket
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from feedback_check.errors import ConfigError
from feedback_check.firewall.formats import first_lines
from feedback_check.firewall.ipspace import AddressSet, Interval, ipv4_bounds, parse_interval
from feedback_check.firewall.model import Origin
from feedback_check.firewall.words import split_words
from feedback_check.inputfile import text_lines

NAME = "ipset"

_IP_TYPES = {"hash:ip", "hash:net", "bitmap:ip"}
_PORT_TYPES = {"hash:ip,port", "hash:net,port"}


def parse_source(spec: str) -> tuple[int, Interval]:
    """`spec` (address, CIDR or a-b range) as (IP version, interval): a fast path for plain IPv4,
    `ipspace.parse_interval` for everything else. Raises ValueError."""
    address, _, prefix = spec.partition("/")
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
    except OSError:
        return parse_interval(spec)
    if not prefix:
        return 4, (value, value)
    if not prefix.isdigit() or int(prefix) > 32:
        return parse_interval(spec)
    host_bits = 32 - int(prefix)
    start = (value >> host_bits) << host_bits
    return 4, (start, start | ((1 << host_bits) - 1))


class _Entry(NamedTuple):
    version: int
    interval: Interval
    prefix: int                               # for longest-prefix-wins with nomatch entries
    nomatch: bool = False
    protocol: str | None = None               # port types only
    ports: tuple[int, int] | None = None


@dataclass(frozen=True)
class IpSet:
    """One named set from `ipset save`."""

    name: str
    type: str
    family: int | None
    origin: Origin
    entries: tuple[_Entry, ...] = ()
    members: tuple[str, ...] = ()             # list:set
    # IPv4 entries added as plain `add NAME a.b.c.d[/n]` (the bulk of a large set): their first and
    # last addresses, two arrays instead of one _Entry per entry. They count as entries like the others.
    firsts: Sequence[int] = ()
    lasts: Sequence[int] = ()

    def sources(self, flags: Sequence[str], port: int, protocol: str,
                sets: Mapping[str, IpSet], depth: int = 0) -> tuple[AddressSet, str]:
        """The source addresses a new connection to `port` matches with `--match-set NAME flags`.

        Returns (addresses, problem): a non-empty `problem` says why the match cannot be evaluated.
        A destination-address dimension is not known to the analyser and is assumed to match (as `-d`).
        """
        ip_flag = flags[0] if flags else "dst"
        if self.type == "list:set":
            if depth > 8:
                return AddressSet.empty(), f"ipset {self.name}: list:set nests too deep"
            result = AddressSet.empty()
            for member in self.members:
                inner = sets.get(member)
                if inner is None:
                    return AddressSet.empty(), f"ipset {self.name}: member set {member} not in the ipset data"
                part, problem = inner.sources(flags, port, protocol, sets, depth + 1)
                if problem:
                    return AddressSet.empty(), problem
                result = result | part
            return result, ""
        if self.type in _IP_TYPES:
            if ip_flag != "src":
                return AddressSet.everything(), ""
            return _longest_prefix_set(self.entries, self.firsts, self.lasts), ""
        if self.type in _PORT_TYPES:
            port_flag = flags[1] if len(flags) > 1 else "dst"
            if port_flag != "dst":
                return AddressSet.empty(), f"ipset {self.name} ({self.type}) matched on the source port"
            relevant = [e for e in self.entries
                        if e.protocol == protocol and e.ports is not None and e.ports[0] <= port <= e.ports[1]]
            if ip_flag != "src":
                return (AddressSet.everything() if relevant else AddressSet.empty()), ""
            return _longest_prefix_set(relevant), ""
        return AddressSet.empty(), f"ipset {self.name}: type {self.type} cannot be evaluated"


def _longest_prefix_set(entries: Iterable[_Entry], firsts: Sequence[int] = (),
                        lasts: Sequence[int] = ()) -> AddressSet:
    entries = list(entries)
    if not any(e.nomatch for e in entries):
        plain = [e.interval for e in entries if e.version == 4]
        plain.extend(zip(firsts, lasts))
        return AddressSet.from_intervals(plain, [e.interval for e in entries if e.version == 6])
    entries.extend(_Entry(4, (first, last), 33 - (last - first + 1).bit_length())
                   for first, last in zip(firsts, lasts))
    result = AddressSet.empty()
    for key in sorted({(e.version, e.prefix) for e in entries}):
        group = [e for e in entries if (e.version, e.prefix) == key]
        adds = [e.interval for e in group if not e.nomatch]
        removes = [e.interval for e in group if e.nomatch]
        v4 = key[0] == 4
        if adds:
            result = result | (AddressSet.from_intervals(adds) if v4 else AddressSet.from_intervals(v6=adds))
        if removes:
            result = result - (AddressSet.from_intervals(removes) if v4
                               else AddressSet.from_intervals(v6=removes))
    return result


def detect(text: str) -> bool:
    """Whether `text` looks like `ipset save` or `ipset list` output."""
    for line in first_lines(text, 50):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped.startswith(("create ", "Name: "))
    return False


@dataclass
class _Builder:
    file: str
    sets: dict[str, IpSet] = field(default_factory=dict)
    entries: dict[str, list[_Entry]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    # Per IP set (hash:ip, hash:net, bitmap:ip): its `add NAME ADDRESS` lines without options not yet
    # converted, as (line numbers, addresses), turned into intervals all at once (`flush`).
    pending: dict[str, tuple[array[int], list[str]]] = field(default_factory=dict)
    bounds: dict[str, tuple[array[int], array[int]]] = field(default_factory=dict)

    def flush(self) -> None:
        """Convert the pending plain entries; an unreadable one raises ConfigError naming the first such
        line (of all sets)."""
        problems: list[tuple[int, str, str]] = []
        for name, (lines, addresses) in self.pending.items():
            if not addresses:
                continue
            bounds = ipv4_bounds(addresses)
            if bounds is not None:
                firsts, lasts = self.bounds.setdefault(name, (array("L"), array("L")))
                firsts.extend(bounds[0])
                lasts.extend(bounds[1])
                continue
            for line, address in zip(lines, addresses):
                try:
                    version, interval = parse_source(address)
                except ValueError as e:
                    problems.append((line, name, str(e)))
                    break
                prefix = (32 if version == 4 else 128) - (interval[1] - interval[0] + 1).bit_length() + 1
                self.entries[name].append(_Entry(version, interval, prefix))
        for lines, addresses in self.pending.values():
            del lines[:]
            addresses.clear()
        if problems:
            line, name, problem = min(problems)
            raise ConfigError(f"set {name}: {problem}", file=self.file, line=line)

    def create(self, name: str, kind: str, options: list[str], line: int, text: str) -> None:
        if self.pending.get(name, (None, None))[1]:
            self.flush()
        family = None
        if "family" in options:
            index = options.index("family")
            value = options[index + 1] if index + 1 < len(options) else ""
            family = {"inet": 4, "inet6": 6}.get(value)
        elif kind != "list:set":
            family = 4
        self.sets[name] = IpSet(name, kind, family, Origin(self.file, line, text))
        self.entries[name] = []
        self.members[name] = []
        self.bounds.pop(name, None)
        if kind in _IP_TYPES:
            self.pending[name] = (array("L"), [])
        else:
            self.pending.pop(name, None)

    def add(self, name: str, element: str, options: list[str], line: int) -> None:
        if name not in self.sets:
            raise ConfigError(f"'add' to set {name!r} before it is created", file=self.file, line=line)
        kind = self.sets[name].type
        if kind == "list:set":
            self.members[name].append(element)
            return
        nomatch = "nomatch" in options
        try:
            self.entries[name].extend(_entries(kind, element, nomatch))
        except ValueError as e:
            raise ConfigError(f"set {name}: {e}", file=self.file, line=line) from None

    def result(self) -> dict[str, IpSet]:
        self.flush()
        out = {}
        for name, ipset in self.sets.items():
            firsts, lasts = self.bounds.get(name, (array("L"), array("L")))
            out[name] = IpSet(ipset.name, ipset.type, ipset.family, ipset.origin,
                              tuple(self.entries[name]), tuple(self.members[name]), firsts, lasts)
        return out


def _entries(kind: str, element: str, nomatch: bool) -> list[_Entry]:
    protocol: str | None = None
    ports: tuple[int, int] | None = None
    address = element
    if kind in _PORT_TYPES:
        address, sep, port_spec = element.partition(",")
        if not sep:
            raise ValueError(f"{element!r} has no port (expected ADDRESS,PROTO:PORT)")
        protocol, sep, number = port_spec.rpartition(":")
        if not sep:
            protocol, number = "tcp", port_spec
        low, _, high = number.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            # icmp:ping, named ports: never the feedback port's TCP
            return []
        ports = (int(low), int(high or low))
    elif kind not in _IP_TYPES:
        return []           # kept unevaluated: IpSet.sources reports the type as unsupported
    if "-" in address and "/" not in address:
        version, interval = parse_interval(address)
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        return [_Entry(version, (int(n.network_address), int(n.broadcast_address)), n.prefixlen, nomatch,
                       protocol, ports)
                for n in ipaddress.summarize_address_range(cls(interval[0]), cls(interval[1]))]
    version, interval = parse_source(address)
    prefix = (32 if version == 4 else 128) - (interval[1] - interval[0] + 1).bit_length() + 1
    return [_Entry(version, interval, prefix, nomatch, protocol, ports)]


def parse(text: str, file: str) -> dict[str, IpSet]:
    """Every set in `ipset save` (create/add lines) or `ipset list` output, by name.

    Raises ConfigError naming file:line for lines ipset itself would reject."""
    return parse_lines(text_lines(text), file)


def parse_lines(lines: Iterable[tuple[int, str]], file: str) -> dict[str, IpSet]:
    """`parse` over (number, line) pairs read once (`inputfile.iter_lines`): plain entries are converted a
    block at a time as they are read, so a set of millions of entries is never held as text."""
    builder = _Builder(file)
    try:
        _read(lines, builder)
    except ConfigError:
        builder.flush()         # an unreadable entry on an earlier line is the one to report
        raise
    return builder.result()


#: Plain entries converted at once (`_Builder.flush`).
_BLOCK = 4096


def _read(lines: Iterable[tuple[int, str]], builder: _Builder) -> None:
    listing = _Listing(builder)
    plain = builder.pending
    for number, raw in lines:
        line = raw.strip()
        if line.startswith("add "):
            words = line.split()
            # the common case, kept cheap for sets of 100,000 entries: `add NAME ADDRESS[/PREFIX]` to
            # an IP set, converted with the others in Builder.flush
            if len(words) == 3 and "-" not in words[2]:
                pending = plain.get(words[1])
                if pending is not None:
                    pending[0].append(number)
                    pending[1].append(words[2])
                    if len(pending[1]) >= _BLOCK:
                        builder.flush()        # an earlier unreadable entry of any set is the error
                    continue
        if not line or line.startswith("#"):
            continue
        if line.startswith(("create ", "add ")):
            listing.in_members = False
            _save_line(line, number, builder)
        else:
            listing.read(line, number)


def _save_line(line: str, number: int, builder: _Builder) -> None:
    """An `ipset save` line: `create NAME TYPE [OPTIONS]` or `add NAME ELEMENT [OPTIONS]`."""
    file = builder.file
    try:
        words = split_words(line) if '"' in line else line.split()
    except ValueError as e:            # an unbalanced quote (a comment cut short)
        raise ConfigError(f"cannot split the line into words: {e}", file=file, line=number) from None
    if len(words) < 3:
        raise ConfigError(f"incomplete {words[0]!r} line", file=file, line=number)
    if words[0] == "create":
        builder.create(words[1], words[2], words[3:], number, line)
    else:
        builder.add(words[1], words[2], words[3:], number)


class _Listing:
    """Reading `ipset list` output: per set a `Name:`, `Type:`, `Header:` ... block, then `Members:` and
    one member per line until the next set."""

    #: the header lines of one set's block
    KEYS = ("Name", "Type", "Header", "Revision", "Size in memory", "References", "Number of entries", "Members")

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.name: str | None = None         # the set whose block is being read
        self.kind = ""
        self.header: list[str] = []
        self.in_members = False

    def read(self, line: str, number: int) -> None:
        """A header line or a member; a ConfigError naming the line when it is neither."""
        key, sep, value = line.partition(":")
        if sep and key in self.KEYS:
            self._header_line(key, value.strip(), number)
        elif self.in_members and self.name is not None:
            words = line.split()
            self.builder.add(self.name, words[0], words[1:], number)
        else:
            raise ConfigError(f"not an ipset save/list line: {line[:60]!r}", file=self.builder.file, line=number)

    def _header_line(self, key: str, value: str, number: int) -> None:
        if key == "Name":
            self.name, self.in_members, self.kind, self.header = value, False, "", []
        elif key == "Type":
            self.kind = value
        elif key == "Header":
            self.header = value.split()
        elif key == "Members":
            if self.name is None or not self.kind:
                raise ConfigError("'Members:' without a preceding Name: and Type:", file=self.builder.file,
                                  line=number)
            self.builder.create(self.name, self.kind, self.header, number, f"Name: {self.name}")
            self.in_members = True
