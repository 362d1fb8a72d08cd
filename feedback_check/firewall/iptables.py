"""iptables: `iptables-save` / `ip6tables-save` output (one file or two) and `iptables -S` output.

What is analysed, and how each construct is read for a new TCP connection from PostFinance:

- The filter table's INPUT chain and every user chain it reaches (`-j` jump, `-g` goto, RETURN),
  with the default policies. IPv4 (iptables) and IPv6 (ip6tables) sections each see only their family.
- Docker: a published container port is DNAT'ed in the nat table (`DOCKER` chain) and then goes
  through FORWARD (`DOCKER-USER`, `DOCKER-FORWARD`, `DOCKER`...), never INPUT. When the nat table
  DNATs (or REDIRECTs) the feedback port, the FORWARD chain is analysed with the translated port and
  destination instead of INPUT, and the layer says so. Without the nat table in the dump, INPUT is
  analysed and a note says that Docker-published ports would need the nat table to be seen.
- `-s`/`-d` with `!` and comma lists; `-p` (and `! -p`); `--dport`, `--dports`, ranges `a:b`,
  `-m multiport`; `--syn`/`--tcp-flags` against the first packet (SYN).
- `-i lo` and internal bridges (docker0, br-*, veth*, virbr*, ...) never carry PostFinance's traffic;
  a rule limited to another interface (eth0, ens3, ...) is assumed to see it (noted in the report).
  `-d` is reported only (the server's public address is unknown) except loopback/multicast/broadcast
  destinations, which a connection from the internet never has, and the DNAT destination on the
  Docker path, which is known.
- `-m conntrack --ctstate` / `-m state --state`: a new connection is NEW (and DNAT on the Docker path);
  a rule matching only ESTABLISHED/RELATED/INVALID cannot admit or block it.
- `-m set --match-set NAME src` against `ipset save` data (see `ipset.py`); without the data the
  match is unsupported.
- Rate limits (`-m limit`, `-m hashlimit`, `-m connlimit`) are evaluated under a stated assumption:
  one post-sale request stays under any limit (`--limit`/`--hashlimit-upto`/`--connlimit-upto` match,
  `--hashlimit-above`/`--connlimit-above` do not). Where such a rule decides for published addresses
  the analysis reports `firewall.rate_limited`: a burst of payments could exceed it.
- Other matches (geoip, recent --rcheck/--update, string, owner, mark, time, u32, ...) are unsupported:
  the rule is read as matching and the addresses that reach it are reported as uncertain.
- Non-terminating targets (LOG, NFLOG, MARK, CT, ...) and rules without a target continue.

Lines that cannot be read are kept in `Ruleset.unparsed`; addresses iptables itself would reject
raise ConfigError naming file:line.
"""

from __future__ import annotations

import ipaddress
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from feedback_check.errors import ConfigError
from feedback_check.firewall.evaluate import LayerEvaluation, evaluate, mergeable
from feedback_check.firewall.formats import ParseContext, first_lines
from feedback_check.firewall.ipset import IpSet, parse_source
from feedback_check.firewall.ipspace import AddressSet, ipv4_bounds
from feedback_check.firewall.model import Action, Chain, Origin, Rule, RuleLines, Ruleset
from feedback_check.firewall.words import split_words

NAME = "iptables"

BUILTIN_CHAINS = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
TERMINAL_TARGETS = {"ACCEPT": Action.ACCEPT, "DROP": Action.DROP, "REJECT": Action.REJECT,
                    "TARPIT": Action.DROP, "RETURN": Action.RETURN}
CONTINUE_TARGETS = {"LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "TRACE", "AUDIT", "SET", "TCPMSS",
                    "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "NOTRACK", "CHECKSUM", "SECMARK",
                    "CONNSECMARK", "IDLETIMER", "LED", "RATEEST", "TEE", "SYNPROXY"}
#: Interfaces that never carry a connection from the internet to the shop.
INTERNAL_INTERFACE = re.compile(
    r"^(lo|docker\d*|br-.*|veth.*|virbr.*|lxcbr.*|lxdbr.*|cni.*|flannel.*|cali.*|weave|kube-.*|podman.*|"
    r"cilium.*|vxlan\.calico|tunl0)\+?$")
_NEVER_DESTINATIONS = AddressSet.from_specs(["127.0.0.0/8", "224.0.0.0/3", "0.0.0.0/8", "::1/128",
                                             "ff00::/8"])
_EVERYTHING = AddressSet.everything()
_RATE_LIMIT = "rate-limit"
_INTERFACE = "interface"
_HEADER_V6 = re.compile(r"ip6tables")
_COUNTERS = re.compile(r"^\[\d+:\d+\]\s*")

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


class _Line(NamedTuple):
    """One `-A` line: the parsed rule (shared by every line that differs only in `-s`) and the line's own
    source, number and text. Ban lists and allowlists of 100,000 lines parse their shape once."""

    template: _RawRule
    source: AddressSet | None          # the line's `-s` when it was split off the template
    negated: bool
    line: int
    number: int                        # position in its chain, as `iptables -I CHAIN n` counts
    text: str


class _Run:
    """Consecutive lines of one chain that differ only in a plain `-s` (one address, CIDR or range of
    one family, not negated): a ban list or an allowlist. Kept as arrays rather than an object per
    line; the model gets one rule for the whole run (`Rule.lines` names the deciding line).

    IPv4 sources are kept as written until `convert` turns them all into intervals at once."""

    __slots__ = ("family", "firsts", "lasts", "lines", "number", "offsets", "rest", "sources", "template")

    def __init__(self, template: _RawRule, family: int, number: int, rest: str | None = None) -> None:
        self.template = template
        self.rest = rest                         # the text after `-s SOURCE` (the shape), as matched
        self.family = family
        self.number = number                     # position of the first line in its chain
        self.lines: array[int] = array("L")      # line numbers
        self.offsets: array[int] = array("Q")    # where each line starts in the text
        self.sources: list[str] = []             # IPv4 `-s` values not yet converted
        self.firsts: Sequence[int] = array("L") if family == 4 else []
        self.lasts: Sequence[int] = array("L") if family == 4 else []

    def __len__(self) -> int:
        return len(self.lines)

    def convert(self, file: str) -> None:
        """Turn the pending IPv4 sources into intervals; ConfigError names the first unreadable one."""
        if not self.sources:
            return
        bounds = ipv4_bounds(self.sources)
        if bounds is None:
            firsts: list[int] = []
            lasts: list[int] = []
            start = len(self.lines) - len(self.sources)
            for index, value in enumerate(self.sources, start=start):
                # Without a ":" an address that reads at all reads as IPv4 (ipaddress needs ":" for IPv6).
                _, (first, last) = _address(value, file, self.lines[index])
                firsts.append(first)
                lasts.append(last)
            bounds = firsts, lasts
        self.firsts.extend(bounds[0])      # type: ignore[attr-defined]
        self.lasts.extend(bounds[1])       # type: ignore[attr-defined]
        self.sources = []

    def text_of(self, text: str, index: int) -> str:
        return RuleLines("", self.family, self.lines, (), (), text, self.offsets).origin(index).text

    def expand(self, text: str) -> Iterator[_Line]:
        """The run as one _Line per line (for rules that cannot be merged, e.g. jumps)."""
        for index, (first, last) in enumerate(zip(self.firsts, self.lasts)):
            interval = ((first, last),)
            source = AddressSet(v4=interval) if self.family == 4 else AddressSet(v6=interval)
            yield _Line(self.template, source, False, self.lines[index], self.number + index,
                        self.text_of(text, index))


#: `-A CHAIN [!] -s SOURCE REST`: iptables-save writes the source first; the rest is the shape.
_WITH_SOURCE = re.compile(r"^-A (\S+) (! )?-s (\S+)(?: (.*))?$")


@dataclass
class _Table:
    """One `*table ... COMMIT` block (or an `iptables -S` listing) of one family."""

    name: str
    family: int | None
    chains: dict[str, tuple[Action | None, int]] = field(default_factory=dict)   # policy, line
    rules: dict[str, list[_Line | _Run]] = field(default_factory=dict)
    start_line: int = 0
    header_family: int | None = None
    counts: dict[str, int] = field(default_factory=dict)      # -A lines per chain so far
    open_runs: dict[str, _Run] = field(default_factory=dict)  # chain -> its IPv4 run, while it is its last item

    def position(self, chain: str) -> int:
        """Count one more line of `chain`: its position in the chain, as `iptables -I CHAIN n` counts."""
        position = self.counts[chain] = self.counts.get(chain, 0) + 1
        return position


def detect(text: str) -> bool:
    """`iptables-save` / `iptables -S` output: table headers, chain declarations or -A/-P lines."""
    for line in first_lines(text, 200):
        stripped = _COUNTERS.sub("", line.strip())
        if stripped.startswith(("*filter", "*nat", "*mangle", "*raw")):
            return True
        if re.match(r"^(:[A-Za-z0-9_.-]+ (ACCEPT|DROP|-) \[\d+:\d+\]|-[APN] [A-Za-z0-9_.-]+)", stripped):
            return True
    return False


# --------------------------------------------------------------------------------------------------
# reading the text


def _tables(text: str, file: str) -> tuple[list[_Table], list[Origin]]:
    tables: list[_Table] = []
    runs: list[_Run] = []
    try:
        unparsed = _read(text, file, tables, runs)
    finally:
        # The runs' sources are converted even when reading failed: an unreadable address on an
        # earlier line is the error to report, as if every line had been read in order.
        problems: list[ConfigError] = []
        for run in runs:
            try:
                run.convert(file)
            except ConfigError as e:
                problems.append(e)
        if problems:
            raise min(problems, key=lambda e: e.line or 0)
    return tables, unparsed


def _read(text: str, file: str, tables: list[_Table], runs: list[_Run]) -> list[Origin]:
    unparsed: list[Origin] = []
    current: _Table | None = None
    header_family: int | None = None
    listing: _Table | None = None            # iptables -S output (no *table header)
    shapes: dict[tuple[str, str], _RawRule | None] = {}
    end = 0
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        start = end
        end += len(raw)
        line = raw.strip()
        if not line:
            continue
        if current is not None and line.startswith("-A "):
            fast = _WITH_SOURCE.match(line)
            if fast is not None:
                chain, negation, source_text, rest = fast.groups()
                run = current.open_runs.get(chain)
                if run is not None and run.rest == rest and negation is None and "," not in source_text \
                        and ":" not in source_text:
                    # the next line of a ban list: nothing to look up
                    current.counts[chain] += 1
                    run.lines.append(number)
                    run.offsets.append(start)
                    run.sources.append(source_text)
                    continue
                key = (chain, rest or "")
                template = shapes.get(key, _UNSEEN)
                if template is _UNSEEN:
                    try:
                        template = shapes[key] = _parse_rule(f"-A {chain} {rest or ''}".strip(), number, file)
                    except _Unreadable:
                        template = shapes[key] = None
                if template is None:
                    unparsed.append(Origin(file, number, line))
                    continue
                if chain not in current.chains:
                    current.chains[chain] = (None, number)
                chain_rules = current.rules.get(chain)
                if chain_rules is None:
                    chain_rules = current.rules[chain] = []
                position = current.position(chain)
                current.open_runs.pop(chain, None)
                if negation is not None or "," in source_text:
                    chain_rules.append(_Line(template, _addresses(source_text, file, number),
                                             negation is not None, number, position, line))
                    continue
                last = chain_rules[-1] if chain_rules else None
                family = 6 if ":" in source_text else 4
                if isinstance(last, _Run) and last.template is template and last.family == family:
                    run = last
                else:
                    run = _Run(template, family, position, rest)
                    runs.append(run)
                    chain_rules.append(run)
                if family == 4:
                    current.open_runs[chain] = run
                run.lines.append(number)
                run.offsets.append(start)
                if family == 4:
                    run.sources.append(source_text)
                else:
                    _, (low, high) = _address(source_text, file, number)
                    run.firsts.append(low)        # type: ignore[attr-defined]
                    run.lasts.append(high)        # type: ignore[attr-defined]
                continue
        if line.startswith("#"):
            if "Generated by" in line or "Completed on" in line:
                header_family = 6 if _HEADER_V6.search(line) else 4
                if "Generated by" in line:
                    listing = None
            continue
        if line.startswith("*"):
            current = _Table(line[1:].strip(), None, start_line=number, header_family=header_family)
            tables.append(current)
            listing = None
            continue
        if line == "COMMIT":
            current = None
            continue
        line = _COUNTERS.sub("", line)
        if current is None:
            # iptables -S output: a new `-P INPUT` after rules starts the next family's listing.
            if listing is None or (line.startswith("-P INPUT") and any(listing.rules.values())):
                listing = _Table("filter", None, start_line=number, header_family=header_family)
                tables.append(listing)
            table = listing
        else:
            table = current
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                unparsed.append(Origin(file, number, line))
                continue
            table.chains[parts[0]] = (_policy(parts[1], file, number), number)
            table.rules.setdefault(parts[0], [])
        elif line.startswith(("-P ", "--policy ")):
            parts = line.split()
            if len(parts) != 3:
                unparsed.append(Origin(file, number, line))
                continue
            table.chains[parts[1]] = (_policy(parts[2], file, number), number)
            table.rules.setdefault(parts[1], [])
        elif line.startswith(("-N ", "--new-chain ")):
            parts = line.split()
            if len(parts) != 2:
                unparsed.append(Origin(file, number, line))
                continue
            table.chains.setdefault(parts[1], (None, number))
            table.rules.setdefault(parts[1], [])
        elif line.startswith(("-A ", "--append ")):
            try:
                rule = _parse_rule(line, number, file)
            except _Unreadable:
                unparsed.append(Origin(file, number, line))
                continue
            position = table.position(rule.chain)
            table.open_runs.pop(rule.chain, None)
            table.rules.setdefault(rule.chain, []).append(_Line(rule, None, False, number, position, line))
            if rule.chain not in table.chains:
                table.chains[rule.chain] = (None, number)
        else:
            unparsed.append(Origin(file, number, line))
    return unparsed


_UNSEEN = _RawRule("", 0, "", 0)       # shapes: not parsed yet


def _policy(word: str, file: str, line: int) -> Action | None:
    if word == "-":
        return None
    if word in ("ACCEPT", "DROP"):
        return Action(word.lower())
    raise ConfigError(f"chain policy must be ACCEPT or DROP, not {word!r}", file=file, line=line)


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


def _option(rule: _RawRule, module: str, word: str, value: str, negate: bool, file: str, number: int) -> None:
    if word in ("-s", "--source", "--src"):
        rule.source, rule.source_negated = _addresses(value, file, number), negate
    elif word in ("-d", "--destination", "--dst"):
        rule.destination, rule.destination_negated = _addresses(value, file, number), negate
    elif word in ("-p", "--protocol"):
        rule.protocol, rule.protocol_negated = value.lower(), negate
    elif word in ("-i", "--in-interface"):
        rule.in_interface, rule.in_negated = value, negate
    elif word in ("-o", "--out-interface"):
        rule.out_interface, rule.out_negated = value, negate
    elif word in ("-f", "--fragment"):
        rule.fragment = not negate
    elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        rule.dports, rule.dports_negated = _ports(value, file, number), negate
    elif word == "--ports":
        rule.either_ports = _ports(value, file, number)
        if negate:
            rule.unsupported.append(f"-m multiport ! --ports {value}")
    elif word in ("--sport", "--source-port", "--sports", "--source-ports"):
        rule.unsupported.append(f"{'! ' if negate else ''}{word} {value} (the source port is not known)")
    elif word == "--syn":
        rule.first_packet = not negate
    elif word == "--tcp-flags":
        mask, _, compare = value.partition(" ")
        flags = {f for f in mask.upper().split(",")}
        wanted = {f for f in compare.upper().split(",") if f and f != "NONE"}
        if "ALL" in flags:
            flags = {"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECE", "CWR"}
        if "ALL" in wanted:
            wanted = set(flags)
        rule.first_packet = (({"SYN"} & flags) == wanted) != negate
    elif word in ("--ctstate", "--state"):
        rule.states = ({s.upper() for s in value.split(",")}, negate)
    elif word == "--ctorigsrc":
        rule.ipranges.append(("--src-range", _addresses(value, file, number), negate))
    elif word == "--ctorigdstport":
        rule.original_dports = (_ports(value, file, number), negate)
    elif word == "--ctdir":
        rule.original_direction = (value.upper() == "ORIGINAL") != negate
    elif word == "--ctproto":
        rule.protocol, rule.protocol_negated = value.lower(), negate
    elif word == "--ctorigdst":
        pass                  # the server's own public address: reported only, like -d
    elif word == "--match-set":
        set_name, _, set_flags = value.partition(" ")
        rule.sets.append((set_name, set_flags.split(",") if set_flags else [], negate))
    elif word in ("--src-type", "--dst-type"):
        rule.addrtype.append((word, {t.upper() for t in value.split(",")}, negate))
    elif word in ("--src-range", "--dst-range"):
        try:
            ipranges = AddressSet.parse(value)
        except ValueError as e:
            raise ConfigError(f"{value!r}: {e}", file=file, line=number) from None
        rule.ipranges.append((word, ipranges, negate))
    elif word == "--pol":
        rule.policy_ipsec = (value == "ipsec") != negate
    elif word == "--pkt-type":
        rule.pkttype = (value.lower(), negate)
    elif word == "--limit" and module == "limit":
        rule.rate = (f"-m limit --limit {value}", not negate)
    elif word in ("--hashlimit-upto", "--hashlimit"):
        rule.rate = (f"-m hashlimit {word} {value}", not negate)
    elif word == "--hashlimit-above":
        rule.rate = (f"-m hashlimit --hashlimit-above {value}", negate)
    elif word == "--connlimit-upto":
        rule.rate = (f"-m connlimit --connlimit-upto {value}", not negate)
    elif word == "--connlimit-above":
        rule.rate = (f"-m connlimit --connlimit-above {value}", negate)
    elif word == "--comment":
        rule.comment = value
    elif module == "recent" and word in ("--rcheck", "--update"):
        rule.unsupported.append(f"-m recent {word} (depends on earlier connections)")
    elif word in _IGNORED_OPTIONS or word in _FLAGS:
        pass
    elif word.startswith("-"):
        name = module or "?"
        rule.unsupported.append(f"-m {name} {'! ' if negate else ''}{word} {value}".strip())
    else:
        raise _Unreadable(word)


# --------------------------------------------------------------------------------------------------
# resolving rules for one path and port


@dataclass(frozen=True)
class _Path:
    """Where a new connection to the feedback port goes: INPUT, or FORWARD after Docker's DNAT."""

    entry: str
    port: int                             # the destination port the filter chains see
    original_port: int                    # the feedback port (before DNAT/REDIRECT)
    destination: int | None = None        # DNAT destination address (FORWARD path)
    dnat: _RawRule | None = None

    @property
    def forwarded(self) -> bool:
        return self.entry == "FORWARD"


def _interface_matches(name: str | None, negated: bool) -> tuple[bool, str]:
    """(can match, assumption text) for `-i NAME`."""
    if name is None or name in ("+",):
        return True, ""
    internal = bool(INTERNAL_INTERFACE.match(name))
    if negated:
        return True, ""
    if internal:
        return False, ""
    return True, f"{_INTERFACE}: arrives on interface {name}"


def _resolve(raw: _RawRule, path: _Path, family: int, chains: dict[str, Any], ipsets: dict[str, Any],
             file: str, protocol: str = "tcp") -> Rule | None:
    """The model rule for `raw` on `path`, or None when it can never match a new connection there."""
    origin = Origin(file, raw.line, raw.text)
    port = path.port
    if raw.protocol is not None and raw.protocol not in ("all", "0"):
        names = {"tcp": "tcp", "6": "tcp"}
        is_tcp = names.get(raw.protocol) == "tcp"
        if is_tcp == raw.protocol_negated:
            return None
    if raw.fragment is True or raw.first_packet is False:
        return None
    if raw.dports is not None:
        inside = any(lo <= port <= hi for lo, hi in raw.dports)
        if inside == raw.dports_negated:
            return None
    if raw.original_dports is not None:
        inside = any(lo <= path.original_port <= hi for lo, hi in raw.original_dports[0])
        if inside == raw.original_dports[1]:
            return None
    if raw.original_direction is False:
        return None
    unsupported = list(raw.unsupported)
    if raw.either_ports is not None and not any(lo <= port <= hi for lo, hi in raw.either_ports):
        if any(hi >= 1024 for _, hi in raw.either_ports):
            unsupported.append("-m multiport --ports (the source port may match)")
        else:
            return None
    if raw.states is not None:
        states, negated = raw.states
        connection = {"NEW", "DNAT"} if path.dnat is not None else {"NEW"}
        if bool(states & connection) == negated:
            return None
    ok, interface_assumption = _interface_matches(raw.in_interface, raw.in_negated)
    if not ok:
        return None
    if raw.out_interface is not None and not raw.out_negated and raw.out_interface.startswith("lo"):
        return None
    if raw.destination is not None:
        if path.destination is not None:
            if _holds(raw.destination, family, path.destination) == raw.destination_negated:
                return None
        elif not raw.destination_negated and raw.destination.issubset(_NEVER_DESTINATIONS):
            return None
    for kind, types, negated in raw.addrtype:
        if kind == "--dst-type":
            matches = bool(types & ({"UNICAST"} | ({"LOCAL"} if not path.forwarded else set())))
        else:
            matches = "UNICAST" in types
        if matches == negated:
            return None
    if raw.policy_ipsec is True:
        return None
    if raw.pkttype is not None and (raw.pkttype[0] == "unicast") == raw.pkttype[1]:
        return None
    source = AddressSet.everything()
    if raw.source is not None:
        source = source - raw.source if raw.source_negated else raw.source
    for kind, addresses, negated in raw.ipranges:
        if kind == "--src-range":
            source = source - addresses if negated else source & addresses
        elif path.destination is not None and _holds(addresses, family, path.destination) == negated:
            return None
    for name, flags, negated in raw.sets:
        ipset: IpSet | None = ipsets.get(name)
        if ipset is None:
            unsupported.append(f"-m set --match-set {name} {','.join(flags)} (no ipset data for {name}: "
                               "pass --ipset FILE with `ipset save` output)")
            continue
        members, problem = ipset.sources(flags, port, protocol, ipsets)
        if problem:
            unsupported.append(f"-m set --match-set {name}: {problem}")
            continue
        source = source - members if negated else source & members
    action, target = _action(raw, chains, unsupported)
    if action is Action.CONTINUE and not unsupported:
        return None
    if action is Action.CONTINUE:
        unsupported = [u for u in unsupported if u.startswith("target ")]
        if not unsupported:
            return None
    if not source:
        return None
    assumption, assumed_match = "", True
    if raw.rate is not None:
        assumption, assumed_match = f"{_RATE_LIMIT}: {raw.rate[0]}", raw.rate[1]
    elif interface_assumption:
        assumption = interface_assumption
    return Rule(action=action, origin=origin, source=source, target=target,
                interface=raw.in_interface, destination=raw.destination, unsupported=tuple(unsupported),
                note=raw.comment, assumption=assumption, assumed_match=assumed_match)


def _holds(addresses: AddressSet, family: int, value: int) -> bool:
    intervals = addresses.v4 if family == 4 else addresses.v6
    return any(lo <= value <= hi for lo, hi in intervals)


def _action(raw: _RawRule, chains: dict[str, Any], unsupported: list[str]) -> tuple[Action, str | None]:
    target = raw.target
    if not target:
        return Action.CONTINUE, None
    if target in chains and target not in TERMINAL_TARGETS:
        return (Action.GOTO if raw.goto else Action.JUMP), target
    if target in TERMINAL_TARGETS:
        return TERMINAL_TARGETS[target], None
    if target in CONTINUE_TARGETS:
        return Action.CONTINUE, None
    if target in ("NFQUEUE", "QUEUE"):
        unsupported.append(f"target {target} (a user-space program decides)")
        return Action.ACCEPT, None
    if target[:1].isupper() and target.upper() == target and target not in chains:
        unsupported.append(f"target {target} (not known to the analyser)")
        return Action.CONTINUE, None
    unsupported.append(f"target {target} (jumps to a chain the file does not define)")
    return Action.CONTINUE, None


# --------------------------------------------------------------------------------------------------
# building the ruleset


def _family_of(table: _Table, tables: list[_Table], file: str) -> int:
    if table.header_family is not None:
        return table.header_family
    v4 = v6 = False
    for items in table.rules.values():
        for item in items:
            rule = item.template
            if isinstance(item, _Run):
                # A run's lines are `-A CHAIN -s SOURCE` + the template's text; SOURCE, an address,
                # never spells "icmp6".
                v4, v6 = v4 or item.family == 4, v6 or item.family == 6
                line_source, text = None, rule.text
            else:
                line_source, text = item.source, item.text
            for addresses in (line_source, rule.source, rule.destination):
                if addresses is not None:
                    v4 = v4 or bool(addresses.v4)
                    v6 = v6 or bool(addresses.v6)
            if rule.protocol in ("ipv6-icmp", "icmpv6", "58") or "icmp6" in text:
                v6 = True
            if v4 and v6:
                break
    if v6 and not v4:
        return 6
    if v4:
        return 4
    earlier = [t for t in tables[:tables.index(table)] if t.name == table.name]
    if earlier or re.search(r"(rules\.v6|ip6)", file):
        return 6
    return 4


def _find_path(nat: _Table | None, family: int, port: int, file: str, text: str) -> tuple[_Path, str]:
    """INPUT, or the FORWARD path when the nat table DNATs/REDIRECTs the port for most sources."""
    if nat is None or "PREROUTING" not in nat.chains:
        return _Path("INPUT", port, port), ""
    chains: dict[str, Chain] = {}
    marked: dict[int, _RawRule] = {}
    input_path = _Path("INPUT", port, port)
    for name in nat.chains:
        rules: list[Rule] = []
        for ln in _lines(nat.rules.get(name, []), text):
            raw = ln.template
            # In this model of the nat table, ACCEPT means "translated" and DROP "left alone".
            if raw.target in ("DNAT", "REDIRECT"):
                raw = _with_target(raw, "ACCEPT")
            elif raw.target in ("ACCEPT", "SNAT", "MASQUERADE"):
                raw = _with_target(raw, "DROP")
            template = _resolve(raw, input_path, family, nat.chains, {}, file)
            resolved = _instantiate(template, ln, file) if template is not None else None
            if resolved is not None:
                if ln.template.target in ("DNAT", "REDIRECT"):
                    marked[ln.line] = ln.template
                rules.append(resolved)
        chains[name] = Chain(name, tuple(rules), Action.DROP if name in BUILTIN_CHAINS else None)
    ruleset = Ruleset("iptables-nat", file, chains, ("PREROUTING",))
    try:
        result = evaluate(ruleset, port, candidates=AddressSet.all_ipv4() if family == 4 else AddressSet.all_ipv6())
    except ValueError:
        return input_path, ""
    best: tuple[int, int, _RawRule] | None = None
    for decision in result.deciding(AddressSet.everything()):
        if decision.action is Action.ACCEPT and decision.origin is not None and decision.origin.line in marked:
            size = decision.addresses.size()
            if best is None or size > best[0]:
                best = (size, decision.origin.line or 0, marked[decision.origin.line])
    if best is None:
        return input_path, ""
    _, dnat_line, raw = best
    if raw.target == "REDIRECT":
        to_port = raw.target_options.get("--to-ports", str(port)).split("-")[0]
        new_port = int(to_port) if to_port.isdigit() else port
        return _Path("INPUT", new_port, port, dnat=raw), (
            f"nat table line {dnat_line} redirects port {port} to {new_port}: INPUT is analysed for port {new_port}")
    destination = raw.target_options.get("--to-destination", "")
    host, new_port = _split_destination(destination, port)
    try:
        address = int(ipaddress.ip_address(host)) if host else None
    except ValueError:
        address = None
    return _Path("FORWARD", new_port, port, address, raw), (
        f"nat table line {dnat_line} DNATs port {port} to {destination or 'another address'} (a published "
        f"container port): the connection goes through FORWARD, not INPUT; FORWARD is analysed for "
        f"port {new_port}")


def _lines(items: Iterable[_Line | _Run], text: str) -> Iterator[_Line]:
    """One _Line per line, runs taken apart."""
    for item in items:
        if isinstance(item, _Run):
            yield from item.expand(text)
        else:
            yield item


def _with_target(raw: _RawRule, target: str) -> _RawRule:
    return replace(raw, target=target)


def _split_destination(value: str, port: int) -> tuple[str, int]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        number = rest.lstrip(":").split("-")[0]
        return host, int(number) if number.isdigit() else port
    if value.count(":") == 1:
        host, number = value.split(":")
        number = number.split("-")[0]
        return host.split("-")[0], int(number) if number.isdigit() else port
    return value.split("-")[0], port


def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """The filter rules of an iptables-save / ip6tables-save / iptables -S dump as one Ruleset."""
    tables, unparsed = _tables(text, file)
    filters = [t for t in tables if t.name == "filter"]
    if not filters:
        if tables:
            raise ConfigError("no filter table in the dump (only " + ", ".join(sorted({t.name for t in tables}))
                              + "): the filter table decides what reaches the port", file=file)
        raise ConfigError("no iptables rules found (expected iptables-save or iptables -S output)", file=file)
    ipsets = dict(context.ipsets)
    chains: dict[str, Chain] = {}
    entry: list[str] = []
    notes: list[str] = []
    positions = _Positions()
    families: list[int] = []
    paths: dict[int, _Path] = {}
    seen_families: set[int] = set()
    for table in filters:
        family = _family_of(table, tables, file)
        if family in seen_families:
            notes.append(f"a second IPv{family} filter table at line {table.start_line} was ignored "
                         "(the first one is analysed)")
            continue
        seen_families.add(family)
        families.append(family)
        prefix = "" if family == 4 else "ip6:"
        nat_tables = [t for t in tables if t.name == "nat" and _family_of(t, tables, file) == family]
        path, path_note = _find_path(nat_tables[0] if nat_tables else None, family, context.port, file, text)
        paths[family] = path
        if path_note:
            notes.append(path_note)
        elif not nat_tables and "DOCKER" in table.chains:
            notes.append("Docker chains but no nat table in the dump: if the shop runs in a container with a "
                         "published port, its connections go through FORWARD; include the nat table "
                         "(plain `iptables-save`) to analyse that path")
        shapes: dict[int, Rule | None] = {}
        for name, (policy, line) in table.chains.items():
            rules: list[Rule] = []
            items = table.rules.get(name, [])
            positions.add(family, name, items)
            for item in items:
                key = id(item.template)
                if key not in shapes:
                    template = _resolve(item.template, path, family, table.chains, ipsets, file)
                    if template is not None and template.target is not None:
                        template = _retarget(template, prefix + template.target)
                    shapes[key] = template
                shape = shapes[key]
                if shape is None:
                    continue
                if isinstance(item, _Run):
                    rules.extend(_run_rules(shape, item, file, text))
                    continue
                resolved = _instantiate(shape, item, file)
                if resolved is not None:
                    rules.append(resolved)
            chains[prefix + name] = Chain(prefix + name, tuple(rules), policy,
                                          Origin(file, line, f"policy of {name}"),
                                          family=family if name in BUILTIN_CHAINS else None)
        if path.entry not in table.chains:
            notes.append(f"no {path.entry} chain in the IPv{family} filter table: ACCEPT assumed (the kernel's "
                         "default policy)")
            chains[prefix + path.entry] = Chain(prefix + path.entry, (), Action.ACCEPT, None, family=family)
        entry.append(prefix + path.entry)
    if 6 not in families:
        notes.append("no ip6tables rules in the file: IPv6 is not analysed (PostFinance publishes IPv4 ranges "
                     "only)")
    match_ports = {family: path.port for family, path in paths.items()}
    return Ruleset(format=NAME, file=file, chains=chains, entry=tuple(entry), unparsed=tuple(unparsed),
                   notes=tuple(notes),
                   context={"positions": positions, "match_ports": match_ports,
                            "forwarded": {f: p.forwarded for f, p in paths.items()},
                            "destinations": {f: p.destination for f, p in paths.items()},
                            "docker_user": "DOCKER-USER" in chains})


def _instantiate(shape: Rule, ln: _Line, file: str) -> Rule | None:
    """The rule of one line: its shape (resolved once) with the line's own source and origin."""
    source = shape.source
    if ln.source is not None:
        if source is _EVERYTHING:
            source = _EVERYTHING - ln.source if ln.negated else ln.source
        else:
            source = source - ln.source if ln.negated else source & ln.source
        if not source:
            return None
    # Rule is frozen; building it field by field costs more than the rest of the line's analysis,
    # so the shape's fields are copied and the two per-line ones set.
    origin = object.__new__(Origin)
    origin.__dict__.update(file=file, line=ln.line, text=ln.text)
    rule = object.__new__(Rule)
    rule.__dict__.update(shape.__dict__, source=source, origin=origin)
    return rule


def _run_rules(shape: Rule, run: _Run, file: str, text: str) -> list[Rule]:
    """The rules of a run: one for all its lines when first-match over them is a union (a terminal
    action or RETURN, nothing unsupported or assumed), one per line otherwise."""
    if len(run) == 1 or not mergeable(shape):
        return [rule for ln in run.expand(text) if (rule := _instantiate(shape, ln, file)) is not None]
    union = AddressSet.from_bounds(run.family, run.firsts, run.lasts)
    first = 0
    if shape.source is _EVERYTHING:
        source = union
    else:
        source = shape.source & union
        if not source:
            return []
        # The rule's origin is its first line that can match (as when each line was a rule of its own).
        first = next(i for i, (low, high) in enumerate(zip(run.firsts, run.lasts))
                     if shape.source.overlaps(run.family, low, high))
    lines = RuleLines(file, run.family, run.lines, run.firsts, run.lasts, text, run.offsets)
    return [replace(shape, source=source, origin=lines.origin(first), lines=lines)]


class _Positions(Mapping[int, tuple[int, str, int]]):
    """Line number -> (family, chain, position in the chain) of every `-A` line, for `iptables -I`:
    per chain two arrays (line numbers, in file order, and positions), not a dict entry per line."""

    def __init__(self) -> None:
        self._chains: list[tuple[int, str, array[int], array[int]]] = []

    def add(self, family: int, chain: str, items: Iterable[_Line | _Run]) -> None:
        lines: array[int] = array("L")
        numbers: array[int] = array("L")
        for item in items:
            if isinstance(item, _Run):
                lines.extend(item.lines)
                numbers.extend(range(item.number, item.number + len(item)))
            else:
                lines.append(item.line)
                numbers.append(item.number)
        self._chains.append((family, chain, lines, numbers))

    def __getitem__(self, line: int) -> tuple[int, str, int]:
        for family, chain, lines, numbers in self._chains:
            index = bisect_left(lines, line)
            if index < len(lines) and lines[index] == line:
                return family, chain, numbers[index]
        raise KeyError(line)

    def __iter__(self) -> Iterator[int]:
        for _, _, lines, _ in self._chains:
            yield from lines

    def __len__(self) -> int:
        return sum(len(lines) for _, _, lines, _ in self._chains)


def _retarget(rule: Rule, target: str) -> Rule:
    return replace(rule, target=target)


# --------------------------------------------------------------------------------------------------
# fix lines


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`iptables -I CHAIN N ...` lines that admit `missing` on the feedback port, inserted just before
    the rule that blocks each part (appended when a chain's default policy blocks it), plus how to
    make the change persistent in the dump's own syntax."""
    positions: Mapping[int, tuple[int, str, int]] = ruleset.context.get("positions", {})  # type: ignore[assignment]
    match_ports: dict[int, int] = ruleset.context.get("match_ports", {})  # type: ignore[assignment]
    forwarded: dict[int, bool] = ruleset.context.get("forwarded", {})  # type: ignore[assignment]
    docker_user = bool(ruleset.context.get("docker_user"))
    inserts: list[tuple[str, int, int, str, str]] = []    # (chain, position, family, cidrs, where)
    lines: list[str] = []
    for decision in evaluation.deciding(missing):
        if decision.action is Action.ACCEPT:
            continue
        for family, part in ((4, decision.addresses.ipv4()), (6, decision.addresses.ipv6())):
            if not part:
                continue
            chain = decision.chain.removeprefix("ip6:")
            position = 0
            if forwarded.get(family) and docker_user and (decision.by_policy or chain != "DOCKER-USER"):
                chain, position = "DOCKER-USER", 1
                where = "at the top of DOCKER-USER (Docker evaluates it first for published ports)"
            elif decision.by_policy or decision.origin is None or decision.origin.line is None \
                    or decision.origin.line not in positions:
                where = f"at the end of the {chain} chain, before the COMMIT of its filter table"
            else:
                _, chain, position = positions[decision.origin.line]
                where = f"before line {decision.origin.line}"
            inserts.append((chain, position, family, ",".join(_coarse(part, context.published)), where))
    inserts.sort(key=lambda x: (x[0], -x[1]))
    if UFW_USER_CHAIN in ruleset.chains and not forwarded.get(4) and not forwarded.get(6):
        return _ufw_fix_lines(inserts, match_ports, context.port)
    done: set[tuple[str, int, str]] = set()
    for chain, position, family, cidrs, where in inserts:
        command = "iptables" if family == 4 else "ip6tables"
        port = match_ports.get(family, context.port)
        if chain.startswith("f2b-"):
            jail = chain.removeprefix("f2b-")
            lines.append(f"# fail2ban banned a PostFinance address in jail {jail}: unban it "
                         f"(fail2ban-client set {jail} unbanip ADDRESS) and add {cidrs.replace(',', ' ')} to "
                         f"ignoreip in /etc/fail2ban/jail.local; the line below takes effect at once, but "
                         f"fail2ban rebuilds {chain} when it restarts")
        for cidr in cidrs.split(","):
            if (chain, position, cidr) in done:
                continue
            done.add((chain, position, cidr))
            spec = f"-p tcp -s {cidr} --dport {port} -j ACCEPT"
            if position:
                lines.append(f"{command} -I {chain} {position} {spec}")
            else:
                lines.append(f"{command} -A {chain} {spec}")
            if not chain.startswith("f2b-"):
                lines.append(f"#   persist: in {ruleset.file}, {where}: -A {chain} -s {cidr} -p tcp -m tcp "
                             f"--dport {port} -j ACCEPT")
    return lines


#: The chain ufw keeps its user rules in: its presence means ufw manages this dump.
UFW_USER_CHAIN = "ufw-user-input"


def _ufw_fix_lines(inserts: list[tuple[str, int, int, str, str]], match_ports: dict[int, int],
                   port: int) -> list[str]:
    """On a ufw-managed host, the fix goes through ufw: rules added with iptables directly are lost at
    the next `ufw reload`. `ufw insert 1` puts the rule first among the user rules, ahead of any deny."""
    lines = [("# ufw manages these rules: change them through ufw (direct iptables changes are lost at the "
              "next `ufw reload`)")]
    seen: set[str] = set()
    for _, _, family, cidrs, _ in inserts:
        for cidr in cidrs.split(","):
            if cidr not in seen:
                seen.add(cidr)
                lines.append(f"ufw insert 1 allow proto tcp from {cidr} to any port "
                             f"{match_ports.get(family, port)}")
    return lines


def _coarse(part: AddressSet, published: Any) -> list[str]:
    """The published networks that contain blocked addresses (whole ranges read better than fragments);
    the fragments themselves when the published ranges are unknown or do not cover them."""
    if not isinstance(published, AddressSet) or not part.issubset(published):
        return part.cidrs()
    networks = [n for n in published.networks() if AddressSet.parse(str(n)) & part]
    return [str(n) for n in networks]


def referenced_sets(text: str) -> Iterable[str]:
    """Names of the ipsets a dump refers to with `--match-set` (to tell users which data is missing)."""
    return sorted(set(re.findall(r"--match-set\s+(\S+)", text)))
