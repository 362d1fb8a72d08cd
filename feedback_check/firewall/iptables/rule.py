"""One iptables rule line as written, read into a `_RawRule`: its words (`_parse_rule`) and what each
option means for it (`_OPTION_READERS`: option name -> the reader that records it on the rule)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from feedback_check.errors import ConfigError
from feedback_check.firewall.ipset import parse_source
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.words import split_words

#: options that take no value
_FLAGS = {"--syn", "-f", "--fragment", "--return-nomatch", "--rsource", "--rdest", "--set", "--remove",
          "--rcheck", "--update", "--reap", "--rttl", "--log-uid", "--log-tcp-sequence", "--log-tcp-options",
          "--log-ip-options", "--log-macdecode", "--nflog-range", "--random", "--persistent",
          "--random-fully", "--strict", "--clamp-mss-to-pmtu", "--invert", "--accept-local", "--validmark", "--loose", "--notrack"}
#: options that take two values
_TWO_VALUES = {"--tcp-flags", "--match-set", "--set-mark", "--set-xmark", "--connlimit-mask"}
#: options that do not change whether a new connection matches
_IGNORED_OPTIONS = {"--comment", "--limit-burst", "--hashlimit-burst", "--hashlimit-mode", "--hashlimit-name",
                    "--hashlimit-srcmask", "--hashlimit-dstmask", "--hashlimit-htable-size",
                    "--hashlimit-htable-max", "--hashlimit-htable-expire", "--hashlimit-htable-gcinterval",
                    "--connlimit-saddr", "--connlimit-daddr", "--limit-iface-in", "--limit-iface-out",
                    "--update-counters", "--update-subcounters", "--icmp-type", "--icmpv6-type",
                    "--log-prefix", "--log-level", "--reject-with", "--nflog-group", "--nflog-prefix",
                    "--nflog-threshold", "--nflog-size", "--to-destination", "--to-ports", "--to-source",
                    "--to", "--queue-num", "--queue-balance", "--queue-bypass", "--mode", "--name", "--mask",
                    "--hitcount", "--seconds", "--dir", "--proto", "--set-mss"}


@dataclass(slots=True)
class _RawRule:
    """A rule as written, before it is resolved for one path (INPUT or Docker's FORWARD) and port."""

    chain: str
    line: int
    text: str
    number: int                                  # position in its chain, as `iptables -I CHAIN n` counts
    target: str = ""
    goto: bool = False
    target_options: dict[str, str] = field(default_factory=dict)
    source: AddressSet | None = None             # None: any
    source_negated: bool = False
    destination: AddressSet | None = None
    destination_negated: bool = False
    protocol: str | None = None
    protocol_negated: bool = False
    in_interface: str | None = None
    in_negated: bool = False
    out_interface: str | None = None
    out_negated: bool = False
    dports: list[tuple[int, int]] | None = None
    dports_negated: bool = False
    either_ports: list[tuple[int, int]] | None = None   # multiport --ports: source or destination
    states: tuple[set[str], bool] | None = None  # (states, negated)
    first_packet: bool | None = None             # --syn/--tcp-flags: does the first packet (SYN) match?
    original_dports: tuple[list[tuple[int, int]], bool] | None = None   # conntrack --ctorigdstport
    original_direction: bool | None = None       # conntrack --ctdir: ORIGINAL matches a new connection
    fragment: bool | None = None
    sets: list[tuple[str, list[str], bool]] = field(default_factory=list)
    addrtype: list[tuple[str, set[str], bool]] = field(default_factory=list)
    ipranges: list[tuple[str, AddressSet, bool]] = field(default_factory=list)
    policy_ipsec: bool | None = None
    pkttype: tuple[str, bool] | None = None
    rate: tuple[str, bool] | None = None         # (description, assumed to match)
    unsupported: list[str] = field(default_factory=list)
    comment: str = ""


class _Unreadable(Exception):
    """A rule line the parser cannot take apart."""


def _address(value: str, file: str, line: int) -> tuple[int, tuple[int, int]]:
    try:
        return parse_source(value)
    except ValueError as e:
        raise ConfigError(f"{value!r} is not an address or network iptables accepts ({e})",
                          file=file, line=line) from None


def _addresses(value: str, file: str, line: int) -> AddressSet:
    if "," not in value:
        version, interval = _address(value, file, line)
        return AddressSet(v4=(interval,)) if version == 4 else AddressSet(v6=(interval,))
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for spec in value.split(","):
        try:
            version, interval = parse_source(spec)
        except ValueError as e:
            raise ConfigError(f"{spec!r} is not an address or network iptables accepts ({e})",
                              file=file, line=line) from None
        (v4 if version == 4 else v6).append(interval)
    return AddressSet.from_intervals(v4, v6)


def _ports(value: str, file: str, line: int) -> list[tuple[int, int]]:
    out = []
    for part in value.split(","):
        low, _, high = part.partition(":")
        if not low and high:
            low = "0"
        if low and not high and ":" in part:
            high = "65535"
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise _Unreadable(part) from None
        out.append((first, last))
    return out


def _parse_rule(line: str, number: int, file: str) -> _RawRule:
    words = split_words(line) if ('"' in line or "'" in line) else line.split()
    if len(words) < 2:
        raise _Unreadable(line)
    rule = _RawRule(chain=words[1], line=number, text=line, number=0)
    negate = False
    module = ""
    i = 2
    n = len(words)
    while i < n:
        word = words[i]
        i += 1
        if word == "!":
            negate = True
            continue
        value = ""
        if word in _FLAGS:
            pass
        elif word in _TWO_VALUES:
            if i >= n:
                raise _Unreadable(line)
            value = words[i]
            i += 1
            if i < n and not words[i].startswith("-") and words[i] != "!":
                value += " " + words[i]
                i += 1
        else:
            if i >= n:
                raise _Unreadable(line)
            value = words[i]
            i += 1
            if value == "!":           # old syntax: -s ! 1.2.3.4
                negate = True
                if i >= n:
                    raise _Unreadable(line)
                value = words[i]
                i += 1
        if word in ("-m", "--match"):
            module = value
        elif word in ("-j", "--jump", "-g", "--goto"):
            rule.target = value
            rule.goto = word in ("-g", "--goto")
            module = "target"
        elif module == "target" and word.startswith("--"):
            rule.target_options[word] = value
        else:
            _option(rule, module, word, value, negate, file, number)
        negate = False
    return rule


class _Option(NamedTuple):
    """One option of a rule line as written: `[!] WORD VALUE`, and where it stands."""

    word: str
    value: str
    negated: bool
    file: str
    line: int


def _option(rule: _RawRule, module: str, word: str, value: str, negate: bool, file: str, number: int) -> None:
    """Record one option on `rule`: its reader (`_MODULE_OPTION_READERS` for an option whose meaning
    depends on the `-m` module it follows, else `_OPTION_READERS`); an option that does not change
    whether a new connection matches is skipped; any other is recorded as unsupported."""
    reader = _MODULE_OPTION_READERS.get((module, word)) or _OPTION_READERS.get(word)
    if reader is not None:
        reader(rule, _Option(word, value, negate, file, number))
    elif word in _IGNORED_OPTIONS or word in _FLAGS:
        pass
    elif word.startswith("-"):
        name = module or "?"
        rule.unsupported.append(f"-m {name} {'! ' if negate else ''}{word} {value}".strip())
    else:
        raise _Unreadable(word)


def _source(rule: _RawRule, option: _Option) -> None:
    rule.source, rule.source_negated = _addresses(option.value, option.file, option.line), option.negated


def _destination(rule: _RawRule, option: _Option) -> None:
    rule.destination = _addresses(option.value, option.file, option.line)
    rule.destination_negated = option.negated


def _protocol(rule: _RawRule, option: _Option) -> None:
    """`-p` and conntrack's `--ctproto`."""
    rule.protocol, rule.protocol_negated = option.value.lower(), option.negated


def _in_interface(rule: _RawRule, option: _Option) -> None:
    rule.in_interface, rule.in_negated = option.value, option.negated


def _out_interface(rule: _RawRule, option: _Option) -> None:
    rule.out_interface, rule.out_negated = option.value, option.negated


def _fragment(rule: _RawRule, option: _Option) -> None:
    rule.fragment = not option.negated


def _destination_ports(rule: _RawRule, option: _Option) -> None:
    rule.dports, rule.dports_negated = _ports(option.value, option.file, option.line), option.negated


def _either_ports(rule: _RawRule, option: _Option) -> None:
    """multiport `--ports`: the source or the destination port."""
    rule.either_ports = _ports(option.value, option.file, option.line)
    if option.negated:
        rule.unsupported.append(f"-m multiport ! --ports {option.value}")


def _source_ports(rule: _RawRule, option: _Option) -> None:
    rule.unsupported.append(f"{'! ' if option.negated else ''}{option.word} {option.value} "
                            "(the source port is not known)")


def _syn(rule: _RawRule, option: _Option) -> None:
    rule.first_packet = not option.negated


def _tcp_flags(rule: _RawRule, option: _Option) -> None:
    """`--tcp-flags MASK COMPARE`: whether the first packet (SYN alone) matches."""
    mask, _, compare = option.value.partition(" ")
    flags = {f for f in mask.upper().split(",")}
    wanted = {f for f in compare.upper().split(",") if f and f != "NONE"}
    if "ALL" in flags:
        flags = {"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECE", "CWR"}
    if "ALL" in wanted:
        wanted = set(flags)
    rule.first_packet = (({"SYN"} & flags) == wanted) != option.negated


def _states(rule: _RawRule, option: _Option) -> None:
    rule.states = ({s.upper() for s in option.value.split(",")}, option.negated)


def _original_source(rule: _RawRule, option: _Option) -> None:
    """conntrack `--ctorigsrc`: the connection's original source, read like an iprange `--src-range`."""
    rule.ipranges.append(("--src-range", _addresses(option.value, option.file, option.line), option.negated))


def _original_destination_ports(rule: _RawRule, option: _Option) -> None:
    rule.original_dports = (_ports(option.value, option.file, option.line), option.negated)


def _direction(rule: _RawRule, option: _Option) -> None:
    rule.original_direction = (option.value.upper() == "ORIGINAL") != option.negated


def _reported_only(rule: _RawRule, option: _Option) -> None:
    """conntrack `--ctorigdst`: the server's own public address, reported only (like `-d`)."""


def _match_set(rule: _RawRule, option: _Option) -> None:
    set_name, _, set_flags = option.value.partition(" ")
    rule.sets.append((set_name, set_flags.split(",") if set_flags else [], option.negated))


def _address_type(rule: _RawRule, option: _Option) -> None:
    rule.addrtype.append((option.word, {t.upper() for t in option.value.split(",")}, option.negated))


def _address_range(rule: _RawRule, option: _Option) -> None:
    """iprange `--src-range` / `--dst-range`."""
    try:
        ipranges = AddressSet.parse(option.value)
    except ValueError as e:
        raise ConfigError(f"{option.value!r}: {e}", file=option.file, line=option.line) from None
    rule.ipranges.append((option.word, ipranges, option.negated))


def _ipsec_policy(rule: _RawRule, option: _Option) -> None:
    rule.policy_ipsec = (option.value == "ipsec") != option.negated


def _packet_type(rule: _RawRule, option: _Option) -> None:
    rule.pkttype = (option.value.lower(), option.negated)


def _rate_limit(module: str, *, matches_under_limit: bool) -> Callable[[_RawRule, _Option], None]:
    """A rate, connection or hash limit: its description and whether one post-sale request (under any
    limit) matches it (`--limit`, `--hashlimit-upto`, `--connlimit-upto` do; `...-above` do not)."""
    def read(rule: _RawRule, option: _Option) -> None:
        rule.rate = (f"-m {module} {option.word} {option.value}", matches_under_limit != option.negated)
    return read


def _comment(rule: _RawRule, option: _Option) -> None:
    rule.comment = option.value


def _earlier_connections(rule: _RawRule, option: _Option) -> None:
    """recent `--rcheck` / `--update`."""
    rule.unsupported.append(f"-m recent {option.word} (depends on earlier connections)")


def _spellings(reader: Callable[[_RawRule, _Option], None], *words: str) -> dict[str, Callable[[_RawRule, _Option], None]]:
    return dict.fromkeys(words, reader)


#: option name (every spelling iptables accepts) -> what it records on the rule
_OPTION_READERS: dict[str, Callable[[_RawRule, _Option], None]] = {
    **_spellings(_source, "-s", "--source", "--src"),
    **_spellings(_destination, "-d", "--destination", "--dst"),
    **_spellings(_protocol, "-p", "--protocol", "--ctproto"),
    **_spellings(_in_interface, "-i", "--in-interface"),
    **_spellings(_out_interface, "-o", "--out-interface"),
    **_spellings(_fragment, "-f", "--fragment"),
    **_spellings(_destination_ports, "--dport", "--destination-port", "--dports", "--destination-ports"),
    "--ports": _either_ports,
    **_spellings(_source_ports, "--sport", "--source-port", "--sports", "--source-ports"),
    "--syn": _syn,
    "--tcp-flags": _tcp_flags,
    **_spellings(_states, "--ctstate", "--state"),
    "--ctorigsrc": _original_source,
    "--ctorigdstport": _original_destination_ports,
    "--ctdir": _direction,
    "--ctorigdst": _reported_only,
    "--match-set": _match_set,
    **_spellings(_address_type, "--src-type", "--dst-type"),
    **_spellings(_address_range, "--src-range", "--dst-range"),
    "--pol": _ipsec_policy,
    "--pkt-type": _packet_type,
    **_spellings(_rate_limit("hashlimit", matches_under_limit=True), "--hashlimit-upto", "--hashlimit"),
    "--hashlimit-above": _rate_limit("hashlimit", matches_under_limit=False),
    "--connlimit-upto": _rate_limit("connlimit", matches_under_limit=True),
    "--connlimit-above": _rate_limit("connlimit", matches_under_limit=False),
    "--comment": _comment,
}

#: (module, option name) -> its reader, for options whose meaning depends on the `-m` module before them
_MODULE_OPTION_READERS: dict[tuple[str, str], Callable[[_RawRule, _Option], None]] = {
    ("limit", "--limit"): _rate_limit("limit", matches_under_limit=True),
    ("recent", "--rcheck"): _earlier_connections,
    ("recent", "--update"): _earlier_connections,
}
