"""Where a new connection to the feedback port goes (INPUT, or FORWARD after Docker's DNAT), and what a
rule written for it means on that path (`_resolve`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from feedback_check.firewall.connection import INTERNAL_INTERFACE, arrives_on, under_rate_limit
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.ipset import IpSet
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.iptables.rule import _RawRule
from feedback_check.firewall.iptables.syntax import (
    _EVERYTHING,
    _NEVER_DESTINATIONS,
    BUILTIN_CHAINS,
    CONTINUE_TARGETS,
    TERMINAL_TARGETS,
    _Line,
    _Run,
    _Table,
)
from feedback_check.firewall.model import (
    Action,
    Assumption,
    Chain,
    Origin,
    Rule,
    Ruleset,
)

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


def _interface_matches(name: str | None, negated: bool) -> tuple[bool, Assumption | None]:
    """(can match, assumption) for `-i NAME`."""
    if name is None or name in ("+",) or negated:
        return True, None
    if INTERNAL_INTERFACE.match(name):
        return False, None
    return True, arrives_on([name])


def _resolve(raw: _RawRule, path: _Path, family: int, chains: dict[str, Any], ipsets: dict[str, Any],
             file: str, protocol: str = "tcp") -> Rule | None:
    """The model rule for `raw` on `path`, or None when it can never match a new connection there."""
    unsupported = list(raw.unsupported)
    if not _packet_can_match(raw, path, unsupported) or not _addresses_can_match(raw, path, family):
        return None
    source = _source(raw, path, family, ipsets, protocol, unsupported)
    if source is None:
        return None
    action, target = _action(raw, chains, unsupported)
    if action is Action.CONTINUE:
        # A rule that only counts or logs never decides, unless it may be a target the analyser lacks.
        unsupported = [u for u in unsupported if u.startswith("target ")]
        if not unsupported:
            return None
    if not source:
        return None
    assumption: Assumption | None = None
    assumed_match = True
    if raw.rate is not None:
        assumption, assumed_match = under_rate_limit(raw.rate[0]), raw.rate[1]
    else:
        assumption = _interface_matches(raw.in_interface, raw.in_negated)[1]
    return Rule(action=action, origin=Origin(file, raw.line, raw.text), source=source, target=target,
                interface=raw.in_interface, destination=raw.destination, unsupported=tuple(unsupported),
                note=raw.comment, assumption=assumption, assumed_match=assumed_match)


def _packet_can_match(raw: _RawRule, path: _Path, unsupported: list[str]) -> bool:
    """Whether the first packet of a new TCP connection on `path` can match the rule's protocol, port,
    fragment, direction and state conditions (a multiport --ports that may match the source port is
    added to `unsupported`)."""
    if raw.protocol is not None and raw.protocol not in ("all", "0"):
        is_tcp = {"tcp": "tcp", "6": "tcp"}.get(raw.protocol) == "tcp"
        if is_tcp == raw.protocol_negated:
            return False
    if raw.fragment is True or raw.first_packet is False or raw.original_direction is False:
        return False
    if not _ports_can_match(raw, path, unsupported):
        return False
    if raw.states is not None:
        states, negated = raw.states
        connection = {"NEW", "DNAT"} if path.dnat is not None else {"NEW"}
        if bool(states & connection) == negated:
            return False
    return True


def _ports_can_match(raw: _RawRule, path: _Path, unsupported: list[str]) -> bool:
    """Whether the rule's destination ports (`--dport`, conntrack's `--ctorigdstport` before DNAT) can
    match the connection on `path`; a multiport `--ports` that only the source port (1024 and above,
    unknown) could match is added to `unsupported`."""
    port = path.port
    if raw.dports is not None and any(lo <= port <= hi for lo, hi in raw.dports) == raw.dports_negated:
        return False
    if raw.original_dports is not None:
        ports, negated = raw.original_dports
        if any(lo <= path.original_port <= hi for lo, hi in ports) == negated:
            return False
    if raw.either_ports is not None and not any(lo <= port <= hi for lo, hi in raw.either_ports):
        if not any(hi >= 1024 for _, hi in raw.either_ports):
            return False
        unsupported.append("-m multiport --ports (the source port may match)")
    return True


def _addresses_can_match(raw: _RawRule, path: _Path, family: int) -> bool:
    """Whether a connection from the internet to this host (or Docker's DNAT destination) on `path` can
    match the rule's interface, destination, address type, IPsec and packet type conditions."""
    if not _interface_matches(raw.in_interface, raw.in_negated)[0]:
        return False
    if raw.out_interface is not None and not raw.out_negated and raw.out_interface.startswith("lo"):
        return False
    if raw.destination is not None:
        if path.destination is not None:
            if _holds(raw.destination, family, path.destination) == raw.destination_negated:
                return False
        elif not raw.destination_negated and raw.destination.issubset(_NEVER_DESTINATIONS):
            return False
    for kind, types, negated in raw.addrtype:
        if kind == "--dst-type":
            matches = bool(types & ({"UNICAST"} | ({"LOCAL"} if not path.forwarded else set())))
        else:
            matches = "UNICAST" in types
        if matches == negated:
            return False
    if raw.policy_ipsec is True:
        return False
    return raw.pkttype is None or (raw.pkttype[0] == "unicast") != raw.pkttype[1]


def _source(raw: _RawRule, path: _Path, family: int, ipsets: dict[str, Any], protocol: str,
            unsupported: list[str]) -> AddressSet | None:
    """The sources the rule matches (`-s`, iprange, ipsets); None when a destination range rules the
    path out. A set without `ipset save` data, or one the analyser cannot read, goes to `unsupported`."""
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
        members, problem = ipset.sources(flags, path.port, protocol, ipsets)
        if problem:
            unsupported.append(f"-m set --match-set {name}: {problem}")
            continue
        source = source - members if negated else source & members
    return source


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
    """The family of a table: its header's (`# Generated by ip6tables-save`), else the one its addresses
    (and ICMPv6) spell, else IPv6 for a second table of one name or a file named for IPv6, else IPv4."""
    if table.header_family is not None:
        return table.header_family
    v4, v6 = _families_written(table)
    if v6 and not v4:
        return 6
    if v4:
        return 4
    earlier = [t for t in tables[:tables.index(table)] if t.name == table.name]
    if earlier or re.search(r"(rules\.v6|ip6)", file):
        return 6
    return 4


def _families_written(table: _Table) -> tuple[bool, bool]:
    """Whether any line of the table spells an IPv4 address, and whether any spells IPv6 (or ICMPv6)."""
    v4 = v6 = False
    for items in table.rules.values():
        for item in items:
            item_v4, item_v6 = _families_of_line(item)
            v4, v6 = v4 or item_v4, v6 or item_v6
            if v4 and v6:
                return v4, v6
    return v4, v6


def _families_of_line(item: _Line | _Run) -> tuple[bool, bool]:
    """Whether a line (every line of a run alike) spells an IPv4 address, and whether it spells IPv6 or
    ICMPv6."""
    rule = item.template
    v4 = v6 = False
    if isinstance(item, _Run):
        # A run's lines are `-A CHAIN -s SOURCE` + the template's text; SOURCE, an address, never
        # spells "icmp6".
        v4, v6 = item.family == 4, item.family == 6
        line_source, text = None, rule.text
    else:
        line_source, text = item.source, item.text
    for addresses in (line_source, rule.source, rule.destination):
        if addresses is not None:
            v4 = v4 or bool(addresses.v4)
            v6 = v6 or bool(addresses.v6)
    if rule.protocol in ("ipv6-icmp", "icmpv6", "58") or "icmp6" in text:
        v6 = True
    return v4, v6


def _find_path(nat: _Table | None, family: int, port: int, file: str) -> tuple[_Path, str]:
    """INPUT, or the FORWARD path when the nat table DNATs/REDIRECTs the port (the translation that
    applies to the most sources decides), with a note naming the nat line that decided."""
    input_path = _Path("INPUT", port, port)
    if nat is None or "PREROUTING" not in nat.chains:
        return input_path, ""
    translation = _widest_translation(nat, family, input_path, file)
    if translation is None:
        return input_path, ""
    line, raw = translation
    if raw.target == "REDIRECT":
        to_port = raw.target_options.get("--to-ports", str(port)).split("-")[0]
        new_port = int(to_port) if to_port.isdigit() else port
        return _Path("INPUT", new_port, port, dnat=raw), (
            f"nat table line {line} redirects port {port} to {new_port}: INPUT is analysed for port {new_port}")
    destination = raw.target_options.get("--to-destination", "")
    host, new_port = _split_destination(destination, port)
    try:
        address = int(ipaddress.ip_address(host)) if host else None
    except ValueError:
        address = None
    return _Path("FORWARD", new_port, port, address, raw), (
        f"nat table line {line} DNATs port {port} to {destination or 'another address'} (a published "
        f"container port): the connection goes through FORWARD, not INPUT; FORWARD is analysed for "
        f"port {new_port}")


def _widest_translation(nat: _Table, family: int, path: _Path, file: str) -> tuple[int, _RawRule] | None:
    """The DNAT/REDIRECT rule (its line and rule) that translates a new connection on `path` for the
    most sources, or None when none does (or the nat table cannot be evaluated)."""
    ruleset, translating = _translation_ruleset(nat, family, path, file)
    try:
        result = evaluate(ruleset, path.port,
                          candidates=AddressSet.all_ipv4() if family == 4 else AddressSet.all_ipv6())
    except ValueError:
        return None
    best: tuple[int, int, _RawRule] | None = None
    for decision in result.deciding(AddressSet.everything()):
        if decision.action is Action.ACCEPT and decision.origin is not None and decision.origin.line in translating:
            size = decision.addresses.size()
            if best is None or size > best[0]:
                best = (size, decision.origin.line or 0, translating[decision.origin.line])
    return None if best is None else (best[1], best[2])


#: In the model of the nat table that `_translation_ruleset` builds, ACCEPT means "translated" and DROP
#: "left alone".
_NAT_VERDICTS = {"DNAT": "ACCEPT", "REDIRECT": "ACCEPT", "ACCEPT": "DROP", "SNAT": "DROP", "MASQUERADE": "DROP"}


def _translation_ruleset(nat: _Table, family: int, path: _Path, file: str) -> tuple[Ruleset, dict[int, _RawRule]]:
    """The nat table as a ruleset whose ACCEPT means "translated" (`_NAT_VERDICTS`; every built-in chain's
    policy: left alone), and its DNAT/REDIRECT rules by line."""
    chains: dict[str, Chain] = {}
    translating: dict[int, _RawRule] = {}
    for name in nat.chains:
        rules: list[Rule] = []
        for ln in _lines(nat.rules.get(name, [])):
            raw = ln.template
            verdict = _NAT_VERDICTS.get(raw.target)
            template = _resolve(_with_target(raw, verdict) if verdict else raw, path, family, nat.chains, {}, file)
            resolved = _instantiate(template, ln, file) if template is not None else None
            if resolved is not None:
                if verdict == "ACCEPT":
                    translating[ln.line] = raw
                rules.append(resolved)
        chains[name] = Chain(name, tuple(rules), Action.DROP if name in BUILTIN_CHAINS else None)
    return Ruleset("iptables-nat", file, chains, ("PREROUTING",)), translating


def _lines(items: Iterable[_Line | _Run]) -> Iterator[_Line]:
    """One _Line per line, runs taken apart."""
    for item in items:
        if isinstance(item, _Run):
            yield from item.expand()
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
    return replace(shape, source=source, origin=Origin(file, ln.line, ln.text))
