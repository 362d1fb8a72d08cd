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

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from feedback_check.errors import ConfigError
from feedback_check.firewall.formats import ParseContext, first_lines
from feedback_check.firewall.iptables.fixes import IptablesFix, _Positions, fix_lines
from feedback_check.firewall.iptables.paths import _family_of, _find_path, _instantiate, _Path, _resolve
from feedback_check.firewall.iptables.rule import _RawRule
from feedback_check.firewall.iptables.syntax import (
    _COUNTERS,
    BUILTIN_CHAINS,
    _Run,
    _Table,
    _tables,
)
from feedback_check.firewall.model import (
    Action,
    Chain,
    Origin,
    Rule,
    RuleLines,
    Ruleset,
)
from feedback_check.firewall.runs import can_merge, merge
from feedback_check.inputfile import text_lines

NAME = "iptables"

def detect(text: str) -> bool:
    """`iptables-save` / `iptables -S` output: table headers, chain declarations or -A/-P lines."""
    for line in first_lines(text, 200):
        stripped = _COUNTERS.sub("", line.strip())
        if stripped.startswith(("*filter", "*nat", "*mangle", "*raw")):
            return True
        if re.match(r"^(:[A-Za-z0-9_.-]+ (ACCEPT|DROP|-) \[\d+:\d+\]|-[APN] [A-Za-z0-9_.-]+)", stripped):
            return True
    return False




def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """The filter rules of an iptables-save / ip6tables-save / iptables -S dump as one Ruleset."""
    return parse_lines(text_lines(text), file, context)


def parse_lines(lines: Iterable[tuple[int, str]], file: str, context: ParseContext) -> Ruleset:
    """`parse` over the dump's (number, line) pairs, read once (`inputfile.iter_lines`: a large dump is
    never held whole; what is kept per ban-list line is its number, interval and source as written)."""
    tables, unparsed = _tables(lines, file)
    ipsets = dict(context.ipsets)
    chains: dict[str, Chain] = {}
    entry: list[str] = []
    notes: list[str] = []
    positions = _Positions()
    paths: dict[int, _Path] = {}            # per family analysed, in the dump's order
    for table in _filter_tables(tables, file):
        family = _family_of(table, tables, file)
        if family in paths:
            notes.append(f"a second IPv{family} filter table at line {table.start_line} was ignored "
                         "(the first one is analysed)")
            continue
        path = paths[family] = _path_of(table, tables, family, context.port, file, notes)
        chains.update(_filter_chains(table, family, path, ipsets, positions, file))
        prefix = _chain_prefix(family)
        if path.entry not in table.chains:
            notes.append(f"no {path.entry} chain in the IPv{family} filter table: ACCEPT assumed (the kernel's "
                         "default policy)")
            chains[prefix + path.entry] = Chain(prefix + path.entry, (), Action.ACCEPT, None, family=family)
        entry.append(prefix + path.entry)
    if 6 not in paths:
        notes.append("no ip6tables rules in the file: IPv6 is not analysed (PostFinance publishes IPv4 ranges "
                     "only)")
    match_ports = {family: path.port for family, path in paths.items()}
    return Ruleset(format=NAME, file=file, chains=chains, entry=tuple(entry), unparsed=tuple(unparsed),
                   notes=tuple(notes),
                   fix=IptablesFix(positions, match_ports, {f: p.forwarded for f, p in paths.items()},
                                   "DOCKER-USER" in chains))


def _filter_tables(tables: list[_Table], file: str) -> list[_Table]:
    """The dump's filter tables; a ConfigError when it has none."""
    filters = [t for t in tables if t.name == "filter"]
    if not filters:
        if tables:
            raise ConfigError("no filter table in the dump (only " + ", ".join(sorted({t.name for t in tables}))
                              + "): the filter table decides what reaches the port", file=file)
        raise ConfigError("no iptables rules found (expected iptables-save or iptables -S output)", file=file)
    return filters


def _chain_prefix(family: int) -> str:
    """How the ruleset names a chain of the IPv6 filter table apart from its IPv4 namesake."""
    return "" if family == 4 else "ip6:"


def _path_of(table: _Table, tables: list[_Table], family: int, port: int, file: str, notes: list[str]) -> _Path:
    """Where a new connection to `port` goes in `family` (the first nat table of that family decides),
    with a note on the path taken, or on Docker chains seen without the nat table that would tell."""
    nat_tables = [t for t in tables if t.name == "nat" and _family_of(t, tables, file) == family]
    path, path_note = _find_path(nat_tables[0] if nat_tables else None, family, port, file)
    if path_note:
        notes.append(path_note)
    elif not nat_tables and "DOCKER" in table.chains:
        notes.append("Docker chains but no nat table in the dump: if the shop runs in a container with a "
                     "published port, its connections go through FORWARD; include the nat table "
                     "(plain `iptables-save`) to analyse that path")
    return path


def _filter_chains(table: _Table, family: int, path: _Path, ipsets: dict[str, Any], positions: _Positions,
                   file: str) -> dict[str, Chain]:
    """The filter table's chains as model chains for `path`: each rule shape resolved once, a run's lines
    merged where they can be (`_run_rules`); every `-A` line's position kept for the fix lines."""
    prefix = _chain_prefix(family)
    shapes: dict[int, Rule | None] = {}
    chains: dict[str, Chain] = {}
    for name, (policy, line) in table.chains.items():
        rules: list[Rule] = []
        items = table.rules.get(name, [])
        positions.add(family, name, items)
        for item in items:
            key = id(item.template)
            if key not in shapes:
                shapes[key] = _shape(item.template, path, family, table, ipsets, file)
            shape = shapes[key]
            if shape is None:
                continue
            if isinstance(item, _Run):
                rules.extend(_run_rules(shape, item, file))
            elif (resolved := _instantiate(shape, item, file)) is not None:
                rules.append(resolved)
        chains[prefix + name] = Chain(prefix + name, tuple(rules), policy, Origin(file, line, f"policy of {name}"),
                                      family=family if name in BUILTIN_CHAINS else None)
    return chains


def _shape(raw: _RawRule, path: _Path, family: int, table: _Table, ipsets: dict[str, Any], file: str) -> Rule | None:
    """A rule shape resolved for `path`, its jump target named as the ruleset names the chain."""
    shape = _resolve(raw, path, family, table.chains, ipsets, file)
    if shape is not None and shape.target is not None:
        shape = _retarget(shape, _chain_prefix(family) + shape.target)
    return shape


def _run_rules(shape: Rule, run: _Run, file: str) -> list[Rule]:
    """The rules of a run: one for all its lines when it can be merged (`runs.can_merge`), one per
    line otherwise."""
    if len(run) == 1 or not can_merge(shape):
        return [rule for ln in run.expand() if (rule := _instantiate(shape, ln, file)) is not None]
    merged = merge(shape, RuleLines(file, run.family, run.numbers, run.firsts, run.lasts, texts=run))
    return [merged] if merged is not None else []


def _retarget(rule: Rule, target: str) -> Rule:
    return replace(rule, target=target)




__all__ = ["NAME", "IptablesFix", "detect", "fix_lines", "parse", "parse_lines"]
