"""Who is PostFinance in a log line: published ranges, the 2019 senders, trusted proxies, the prefilter.

The real client of a request is the address that connected (`$remote_addr`, `%h`), unless that address
is a configured trusted proxy: then it is the CDN's client header (CF-Connecting-IP, True-Client-IP) or
the right-most address of X-Forwarded-For that is not itself a trusted proxy. A forwarding header from
any other peer is never believed, so a forged `X-Forwarded-For: 185.8.53.17` cannot make a stranger
look like PostFinance (it is kept as a claim, to report).

`Prefilter` picks, from raw bytes, the lines worth parsing: those whose client field starts like an
address of interest (published, 2019 or trusted-proxy networks: a tuple of first octets, then a set of
`a.b.c.` prefixes) and those that name a feedback path anywhere (strangers on the feedback path).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from feedback_check.errors import UsageError
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.logs.formats import LineFormat, LogRecord
from feedback_check.platform import Platform
from feedback_check.yamlfile import load_yaml_text

PRESETS_FILE = "proxies.yaml"
#: Beyond this many /24 prefixes, the prefilter checks first octets only (parsing a few more lines).
MAX_PREFIXES = 1 << 18
PUBLISHED, LEGACY = "published", "legacy"


@dataclass(frozen=True)
class ProxyPreset:
    name: str
    cidrs: tuple[str, ...]
    source: str
    retrieved: dt.date | None
    verified: bool
    header: str = ""


def load_presets() -> dict[str, ProxyPreset]:
    """The shipped trusted-proxy presets (config/proxies.yaml)."""
    text = resources.files("feedback_check.config").joinpath(PRESETS_FILE).read_text(encoding="utf-8")
    data = load_yaml_text(text, file=f"<shipped {PRESETS_FILE}>")
    out = {}
    for name, node in (data.get("presets") or {}).items():
        retrieved = node.get("retrieved")
        out[str(name)] = ProxyPreset(
            name=str(name), cidrs=tuple(str(c) for c in node["cidrs"]), source=str(node.get("source", "")),
            retrieved=retrieved if isinstance(retrieved, dt.date) else None,
            verified=bool(node.get("verified_against_source", False)), header=str(node.get("header", "")))
    return out


@dataclass(frozen=True)
class TrustedProxies:
    addresses: AddressSet
    names: tuple[str, ...]                 # as given: CIDRs and preset names
    presets: tuple[ProxyPreset, ...] = ()

    @classmethod
    def parse(cls, specs: Iterable[str], *, where: str = "--trusted-proxy") -> TrustedProxies:
        presets = None
        addresses = AddressSet.empty()
        names: list[str] = []
        used: list[ProxyPreset] = []
        for spec in specs:
            text = str(spec).strip()
            if text and (text[0].isalpha() and ":" not in text):
                presets = presets or load_presets()
                if text.lower() not in presets:
                    raise UsageError(f"{where} {text!r}: neither a CIDR nor a preset "
                                     f"({', '.join(sorted(presets))})")
                preset = presets[text.lower()]
                used.append(preset)
                addresses = addresses | AddressSet.from_specs(preset.cidrs)
            else:
                try:
                    addresses = addresses | AddressSet.parse(text)
                except ValueError as e:
                    raise UsageError(f"{where} {text!r}: {e}") from None
            names.append(text)
        return cls(addresses, tuple(names), tuple(used))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip("[]")
    if text.count(":") == 1 and "." in text:          # 1.2.3.4:5678
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped                          # ::ffff:185.8.52.1 from a dual-stack socket
    return ip


@dataclass(frozen=True)
class Client:
    """Who sent a request, as far as the log can tell."""

    address: str                   # the real client (normalised) or the raw peer text when unparsable
    kind: str | None               # PUBLISHED | LEGACY | None (a stranger)
    via: str | None = None         # the trusted proxy it came through
    claimed: str | None = None     # an untrusted forwarding header naming a PostFinance address


class Sources:
    """Classifies the clients of log records."""

    def __init__(self, platform: Platform, trusted: TrustedProxies | None = None) -> None:
        self.published = platform.ranges.addresses
        self.legacy = platform.legacy_addresses - self.published     # 185.8.5x.254 are published again
        self.trusted = trusted.addresses if trusted else AddressSet.empty()
        self._kinds: dict[str, tuple[str, str | None, bool]] = {}

    def _info(self, text: str) -> tuple[str, str | None, bool]:
        """(normalised address, PUBLISHED/LEGACY/None, is a trusted proxy), cached."""
        cached = self._kinds.get(text)
        if cached is not None:
            return cached
        ip = _address(text)
        if ip is None:
            info: tuple[str, str | None, bool] = (text, None, False)
        else:
            kind = PUBLISHED if ip in self.published else LEGACY if ip in self.legacy else None
            info = (str(ip), kind, ip in self.trusted)
        if len(self._kinds) < 100_000:
            self._kinds[text] = info
        return info

    def client(self, record: LogRecord) -> Client:
        peer, kind, trusted = self._info(record.peer)
        headers = [h for h in (record.cf_connecting_ip, record.true_client_ip) if h]
        forwarded = [a.strip() for a in record.forwarded_for.split(",")] if record.forwarded_for else []
        if trusted:
            for candidate in headers:
                address, real_kind, _ = self._info(candidate.split(",")[0])
                return Client(address, real_kind, via=peer)
            for candidate in reversed(forwarded):            # right-most address not a trusted proxy
                address, real_kind, is_proxy = self._info(candidate)
                if not is_proxy:
                    return Client(address, real_kind, via=peer)
            return Client(peer, kind, via=None)
        claimed = None
        if kind is None:
            for candidate in [*headers, *forwarded]:
                address, claimed_kind, _ = self._info(candidate)
                if claimed_kind is not None:
                    claimed = address
                    break
        return Client(peer, kind, claimed=claimed)

    def interesting(self) -> AddressSet:
        return self.published | self.legacy | self.trusted


class Prefilter:
    """Selects the lines worth parsing from a list of raw lines (see the module docstring)."""

    def __init__(self, addresses: AddressSet, needles: Sequence[bytes], line_format: LineFormat) -> None:
        self.needles = tuple(n for n in needles if n)
        self.client_field = line_format.client_field
        self.client_key = (b'"' + line_format.client_key + b'"') if line_format.client_key else None
        self.everything = self.client_field is None and self.client_key is None
        starts: set[bytes] = set()
        prefixes: set[bytes] | None = set()
        for first, last in addresses.v4:
            for octet in range(first >> 24, (last >> 24) + 1):
                starts.add(b"%d." % octet)
            if prefixes is not None:
                if (last >> 8) - (first >> 8) + len(prefixes) > MAX_PREFIXES:
                    prefixes = None
                else:
                    for block in range(first >> 8, (last >> 8) + 1):
                        prefixes.add(b"%d.%d.%d." % (block >> 16, (block >> 8) & 255, block & 255))
        starts.add(b"::ffff:")                          # IPv4 seen through a dual-stack socket
        for first, last in addresses.v6:
            if (first >> 112) != (last >> 112):
                starts.update(b"%x" % digit for digit in range(16))    # too wide: any hex start
                starts.add(b":")
                break
            group = b"%x:" % (first >> 112)
            starts.update((group, group.upper()))
        self.starts = tuple(sorted(starts))
        self.prefixes = frozenset(prefixes) if prefixes is not None else None

    def select(self, lines: list[bytes]) -> list[int]:
        """Indexes of the candidate lines."""
        if self.everything:
            return list(range(len(lines)))
        starts, prefixes, needles = self.starts, self.prefixes, self.needles
        single = needles[0] if len(needles) == 1 else None
        out: list[int] = []
        append = out.append
        field, key = self.client_field, self.client_key
        for index, line in enumerate(lines):
            if field == 0:
                position = 0
            elif key is not None:
                position = line.find(key)
                if position >= 0:
                    position += len(key)
                    while line[position:position + 1] in (b":", b" ", b'"'):
                        position += 1
            else:
                position = 0
                for _ in range(field or 0):
                    position = line.find(b" ", position) + 1
                    if not position:
                        position = -1
                        break
            if position >= 0 and line.startswith(starts, position) and \
                    (prefixes is None or _in_prefixes(line, position, prefixes)):
                append(index)
                continue
            if single is not None:
                if single in line:
                    append(index)
            elif needles and any(n in line for n in needles):
                append(index)
        return out


def _in_prefixes(line: bytes, position: int, prefixes: frozenset[bytes]) -> bool:
    """Whether the client address at `position` (its first octet already matched) is in one of the
    `a.b.c.` prefixes, or is IPv6 (checked in full by the parser)."""
    third = line.find(b".", line.find(b".", line.find(b".", position) + 1) + 1)
    return (third > 0 and line[position:third + 1] in prefixes) or line.startswith(b"::", position) \
        or b":" in line[position:position + 5]


def describe_presets(trusted: TrustedProxies | None) -> list[str]:
    """Notes naming the source and date of each preset in use."""
    notes = []
    for preset in (trusted.presets if trusted else ()):
        date = preset.retrieved.isoformat() if preset.retrieved else "unknown date"
        check = "" if preset.verified else "; not downloaded by feedback-check, verify it against the source"
        notes.append(f"trusted proxies {preset.name!r}: {len(preset.cidrs)} networks from {preset.source} "
                     f"(written down {date}{check})")
    return notes
