"""The interpreter: one table's intermediate rules into model rules for a new TCP connection, and
the assembly of the whole ruleset."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import Any, cast

from feedback_check.errors import ConfigError
from feedback_check.firewall.connection import arrives_on, internal_interface, under_rate_limit
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Assumption, Chain, Origin, PortSet, Rule, RuleLines, Ruleset
from feedback_check.firewall.nftables.ir import (
    _STATE_ATOM,
    ADDRESS_KEYS,
    ALL_PORTS,
    CTSTATE_KEYS,
    DESTINATION_KEYS,
    ENTRY_HOOKS,
    FILTER_FAMILIES,
    INTERFACE_KEYS,
    NAME,
    NFPROTO_KEYS,
    PKTTYPE_KEYS,
    PORT_KEYS,
    PROTOCOL_KEYS,
    TRANSPORT_HEADERS,
    VERDICTS,
    Match,
    RateLimit,
    Unsupported,
    Verdict,
    VerdictMap,
    _Chain,
    _Reading,
    _render_element,
    _render_keys,
    _Rule,
    _Run,
    _Simple,
    _Table,
)
from feedback_check.firewall.nftables.values import (
    _ALL,
    _TCP,
    _V4,
    _V6,
    Relation,
    _address,
    _addresses,
    _bounds,
    _conjoin,
    _family_set,
    _key_family,
    _port,
    _port_number,
    _protocol,
    _relation_from_pieces,
    _union,
)


@dataclass
class _RuleState:
    """What a rule's matches amount to for a new TCP connection."""

    relation: Relation = field(default_factory=lambda: [(0, 65535, _ALL)])
    protocols: frozenset[str] | None = None
    new_connections: bool = True
    interfaces: list[str] = field(default_factory=list)
    destination: AddressSet | None = None
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    set_refs: list[tuple[str, bool, bool]] = field(default_factory=list)   # (set, negated, simple)
    assumption: Assumption | None = None
    assumed_match: bool = True


def _rule_origin(file: str, prefix: str, chain: _Chain, rule: _Rule | _Run) -> Origin:
    """Text rules are located by line; JSON rules by table, chain and handle."""
    if rule.line is not None:
        return Origin(file, rule.line, rule.text)
    return Origin(file, None, f"{prefix}{chain.name} handle {rule.handle}: {rule.text}")


class _Interpreter:
    """Turns one table's intermediate rules into model rules."""

    def __init__(self, file: str, table: _Table) -> None:
        self.file = file
        self.table = table
        self.prefix = f"{table.family} {table.name} "
        self.set_uses: dict[str, list[tuple[str, int, bool]]] = {}
        self.complex_sets: set[str] = set()
        self._set_cache: dict[tuple[str, int | None], AddressSet] = {}

    def chain_rules(self, chain: _Chain, chain_key: str) -> list[Rule]:
        out: list[Rule] = []
        for rule in chain.rules:
            if isinstance(rule, _Run):
                out.append(self._run(rule, chain))
                continue
            origin = _rule_origin(self.file, self.prefix, chain, rule)
            start = len(out)
            try:
                produced, refs = self._rule(rule, origin)
            except ValueError as e:
                raise ConfigError(f"{e} in: {rule.text}", file=self.file, line=rule.line) from None
            out.extend(produced)
            for set_name, negated, simple in refs:
                if not simple:
                    self.complex_sets.add(set_name)
                    continue
                for index in range(start, len(out)):
                    self.set_uses.setdefault(set_name, []).append((chain_key, index, negated))
        return out

    def _run(self, run: _Run, chain: _Chain) -> Rule:
        """A run of rules (`_Run`) as one model rule over the union of their sources."""
        version = run.version
        try:
            starts, ends = _bounds(run.atoms, version)
            ports = PortSet(tuple(_port(atom) for atom in run.ports)) if run.ports is not None else None
        except ValueError:
            for rule in run.rules():           # the rule at fault, named as for any other rule
                self.chain_rules(_Chain(chain.name, chain.line, rules=[rule]), "")
            raise
        source = AddressSet.from_bounds(version, starts, ends)
        if version == 4:
            starts, ends = array("q", starts), array("q", ends)
        numbers: Sequence[int] = run.numbers
        document, offsets = run.document, run.starts
        texts = None
        if run.document is None:
            # JSON rules have no line; they are named by table, chain and handle.
            numbers = cast("Sequence[int]", [None] * len(run))
            texts = [f"{self.prefix}{chain.name} handle {handle}: {text}"
                     for handle, text in zip(run.handles, run.texts)]
        elif run.handles.count(None) != len(run):
            # `# handle N` ends the lines in the text: the index keeps the rules' own text instead.
            texts = [run.rule_text(i) for i in range(len(run))]
        if texts is not None:
            document = "\n".join(texts)
            offsets = array("q", accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
        lines = RuleLines(self.file, version, numbers, starts, ends, document or "", offsets)
        return Rule(VERDICTS[run.verdict.kind], _rule_origin(self.file, self.prefix, chain, run), source=source,
                    protocols=_TCP if ports is not None else None, ports=ports, lines=lines)

    # -- one rule ----------------------------------------------------------------------------------
    def _rule(self, rule: _Rule, origin: Origin) -> tuple[list[Rule], list[tuple[str, bool, bool]]]:
        if rule.simple is not None:
            return [self._simple(rule.simple, origin, rule.comment)], []
        state = _RuleState()
        verdict: Verdict | None = None
        vmaps: list[VerdictMap] = []
        for statement in rule.statements:
            if isinstance(statement, Match):
                self._match(statement, state)
            elif isinstance(statement, VerdictMap):
                vmaps.append(statement)
            elif isinstance(statement, Verdict):
                verdict = statement
                break
            elif isinstance(statement, Unsupported) and statement.text:
                state.unsupported.append(statement.text)
            elif isinstance(statement, RateLimit):
                state.assumption = under_rate_limit(statement.text)
                state.assumed_match = not statement.over
        note = "; ".join(state.notes + ([f"comment: {rule.comment}"] if rule.comment else []))
        if vmaps:
            return self._vmap_rules(vmaps[0], state, origin, note), state.set_refs
        verdict = verdict or Verdict("continue")
        return self._emit(state, state.relation, verdict, origin, note), state.set_refs

    def _simple(self, simple: _Simple, origin: Origin, comment: str) -> Rule:
        source = _ALL
        if simple.sources is not None:
            found = [_address(atom, simple.version) for atom in simple.sources]
            source = found[0] if len(found) == 1 else _union(found)
            if simple.negated:
                source = _family_set(simple.version) - source
        ports = PortSet(tuple(_port(atom) for atom in simple.ports)) if simple.ports is not None else None
        verdict = simple.verdict
        target = None
        if verdict.kind in ("jump", "goto"):
            if verdict.target not in self.table.chains:
                raise ValueError(f"{verdict.kind} to chain {verdict.target!r}, which the table does not have")
            target = self.prefix + str(verdict.target)
        return Rule(VERDICTS[verdict.kind], origin, source=source,
                    protocols=_TCP if simple.ports is not None else None, ports=ports, target=target,
                    note=f"comment: {comment}" if comment else "")

    def _emit(self, state: _RuleState, relation: Relation, verdict: Verdict, origin: Origin,
              note: str) -> list[Rule]:
        action = VERDICTS.get(verdict.kind)
        unsupported = list(state.unsupported)
        target = None
        if action is Action.CONTINUE and unsupported:
            # A rule that only counts or logs cannot change a verdict, whatever its conditions.
            note = "; ".join([note] * bool(note) + [f"only counts/logs when {' '.join(unsupported)}"])
            unsupported = []
        if action is None:
            unsupported.append(f"verdict {verdict.kind}")
            action = Action.CONTINUE
        if action in (Action.JUMP, Action.GOTO):
            target = self.prefix + str(verdict.target)
            if verdict.target not in self.table.chains:
                raise ValueError(f"{verdict.kind} to chain {verdict.target!r}, which the table does not have")
        common: dict[str, Any] = {
            "action": action, "origin": origin, "protocols": state.protocols, "target": target,
            "new_connections": state.new_connections, "interface": ", ".join(state.interfaces) or None,
            "destination": state.destination, "unsupported": tuple(unsupported), "note": note,
            "assumption": state.assumption, "assumed_match": state.assumed_match}
        if not state.assumption and state.interfaces:
            common["assumption"] = arrives_on(state.interfaces)
        if not relation:
            return [Rule(source=AddressSet.empty(), **common)]
        grouped: dict[AddressSet, list[tuple[int, int]]] = {}
        for low, high, addresses in relation:
            grouped.setdefault(addresses, []).append((low, high))
        rules = []
        for addresses, ports in grouped.items():
            port_set = None if ports == [ALL_PORTS] else PortSet(tuple(ports))
            rules.append(Rule(source=addresses, ports=port_set, **common))
        return rules

    def _vmap_rules(self, vmap: VerdictMap, state: _RuleState, origin: Origin, note: str) -> list[Rule]:
        if vmap.ref is not None:
            target = self.table.sets.get(vmap.ref)
            if target is None or target.verdicts is None:
                raise ValueError(f"vmap @{vmap.ref}: no such verdict map in the table")
            entries = list(zip(target.elements, target.verdicts))
        else:
            entries = list(vmap.entries)
        by_verdict: dict[tuple[str, str | None], list[tuple[str, ...]]] = {}
        for key, verdict in entries:
            by_verdict.setdefault(verdict, []).append(key)
        rules: list[Rule] = []
        for (kind, target_chain), elements in by_verdict.items():
            branch = replace(state, unsupported=list(state.unsupported), notes=list(state.notes),
                             interfaces=list(state.interfaces))
            self._concat(vmap.keys, "==", elements, branch)
            rules += self._emit(branch, branch.relation, Verdict(kind, target_chain), origin, note)
        return rules

    # -- matches -----------------------------------------------------------------------------------
    def set_addresses(self, name: str, version: int | None) -> AddressSet:
        """The addresses of a named set of addresses (computed once per set)."""
        key = (name, version)
        if key not in self._set_cache:
            declared = self.table.sets[name]
            if any(len(e) != 1 for e in declared.elements):
                raise ValueError(f"@{name}: its elements are not single addresses")
            self._set_cache[key] = _addresses((e[0] for e in declared.elements), version)
        return self._set_cache[key]

    def _elements_of(self, match: Match, state: _RuleState) -> list[tuple[str, ...]]:
        if match.ref is None:
            return list(match.elements)
        target = self.table.sets.get(match.ref)
        if target is None:
            raise ValueError(f"@{match.ref}: no such set in table {self.table.family} {self.table.name}")
        simple = len(match.keys) == 1 and match.keys[0] in ADDRESS_KEYS and match.op in ("==", "!=")
        state.set_refs.append((match.ref, match.op == "!=", simple))
        if "dynamic" in target.flags or "timeout" in target.flags:
            state.notes.append(f"set @{match.ref} is updated at run time; its listed content was analysed")
        return target.elements

    def _match(self, match: Match, state: _RuleState) -> None:
        keys = match.keys
        if len(keys) > 1:
            self._concat(keys, match.op, self._elements_of(match, state), state)
            return
        key = keys[0]
        text = f"{key} {'' if match.op == '==' else match.op + ' '}" + (
            "@" + match.ref if match.ref else ", ".join(_render_element(e) for e in match.elements))
        if match.op not in ("==", "!="):
            if key in PORT_KEYS and len(match.elements) == 1 and match.ref is None:
                value = _port_number(match.elements[0][0])
                low, high = {"<": (0, value - 1), "<=": (0, value), ">": (value + 1, 65535),
                             ">=": (value, 65535)}[match.op]
                self._protocol_constraint(PORT_KEYS[key], state)
                state.relation = _conjoin(state.relation, [(low, high, _ALL)] if low <= high else [])
                return
            state.unsupported.append(text)
            return
        negated = match.op == "!="
        if key in CTSTATE_KEYS:
            states = {a for e in self._elements_of(match, state) for a in _STATE_ATOM.findall(e[0])}
            if ("new" in states) == negated:
                state.new_connections = False
            return
        if key in PROTOCOL_KEYS and not negated:
            names = frozenset(_protocol(e[0]) for e in self._elements_of(match, state))
            state.protocols = names if state.protocols is None else state.protocols & names
            state.relation = _conjoin(state.relation, [(0, 65535, _family_set(PROTOCOL_KEYS[key]))])
            return
        if key in PORT_KEYS:
            self._protocol_constraint(PORT_KEYS[key], state)
        if key in DESTINATION_KEYS:
            elements = self._elements_of(match, state)
            version = DESTINATION_KEYS[key]
            addresses = _union([_address(e[0], version) for e in elements]) if elements else AddressSet.empty()
            state.destination = (_family_set(version) - addresses) if negated else addresses
            state.relation = _conjoin(state.relation, [(0, 65535, _family_set(version))])
            return
        head = key.partition(" ")[0]
        if head in TRANSPORT_HEADERS and not (key in PORT_KEYS):
            protocol = TRANSPORT_HEADERS[head]
            self._protocol_constraint(protocol, state)
            if protocol == "tcp":
                state.unsupported.append(text)
            return
        if key == "ct status" and not negated and [e[0] for e in self._elements_of(match, state)] == ["dnat"]:
            state.relation = []
            state.notes.append("matches only connections redirected by a DNAT rule, not a connection to "
                               "this host's own address")
            return
        if key in ADDRESS_KEYS:
            version = ADDRESS_KEYS[key]
            if match.ref is not None:
                self._elements_of(match, state)          # records the reference, checks the set exists
                addresses = self.set_addresses(match.ref, version)
            else:
                addresses = _addresses((e[0] for e in match.elements if len(e) == 1), version)
                if any(len(e) != 1 for e in match.elements):
                    raise ValueError(f"{text}: elements do not fit {key}")
            matched = _family_set(version) - addresses if negated else addresses
            state.relation = _conjoin(state.relation, [(0, 65535, matched)])
            return
        if key in INTERFACE_KEYS:
            interfaces = [e[0].strip('"') for e in self._elements_of(match, state)]
            external = [n for n in interfaces if not internal_interface(n)]
            if negated:
                if external:
                    state.unsupported.append(text + " (which interface PostFinance's traffic arrives on "
                                                    "is unknown)")
                return
            if not external:
                state.relation = []
                state.notes.append("matches only loopback or internal-bridge traffic, never PostFinance's")
                return
            state.interfaces.extend(external)
            state.notes.append(f"assumes PostFinance's traffic arrives on {', '.join(external)}")
            return
        self._concat(keys, match.op, self._elements_of(match, state), state)

    def _protocol_constraint(self, protocol: str | None, state: _RuleState) -> None:
        if protocol is None:
            return
        names = frozenset({protocol})
        state.protocols = names if state.protocols is None else state.protocols & names

    def _concat(self, keys: Sequence[str], op: str, elements: Sequence[tuple[str, ...]],
                state: _RuleState) -> None:
        """General case: each element a conjunction over the keys; the match is their union."""
        kinds = []
        version: int | None = None
        for key in keys:
            family = _key_family(key)
            if family is not None:
                if version is not None and version != family:
                    state.relation = []
                    return
                version = family
            if key in ADDRESS_KEYS:
                kinds.append("address")
            elif key in PORT_KEYS:
                kinds.append("port")
                self._protocol_constraint(PORT_KEYS[key], state)
            elif key in PROTOCOL_KEYS:
                kinds.append("protocol")
            elif key in NFPROTO_KEYS:
                kinds.append("nfproto")
            elif key in CTSTATE_KEYS:
                kinds.append("ctstate")
            elif key in INTERFACE_KEYS:
                kinds.append("interface")
            elif key in PKTTYPE_KEYS:
                kinds.append("pkttype")
            elif key in DESTINATION_KEYS:
                kinds.append("destination")
            else:
                shown = _render_keys(keys) + (" != " if op == "!=" else " ") + (
                    "{ " + ", ".join(_render_element(e) for e in elements[:5]) + (" ..." if len(elements) > 5
                                                                                 else "") + " }")
                state.unsupported.append(shown)
                return
        domain = _family_set(version)
        pieces: list[tuple[AddressSet, tuple[int, int] | None]] = []
        for element in elements:
            if len(element) != len(kinds):
                raise ValueError(f"element {_render_element(element)!r} does not fit {_render_keys(keys)}")
            addresses = domain
            ports: tuple[int, int] | None = None
            matches = True
            for kind, atom, key in zip(kinds, element, keys):
                if kind == "address":
                    addresses = addresses & _address(atom, ADDRESS_KEYS[key])
                elif kind == "port":
                    ports = _port(atom)
                elif kind == "protocol":
                    matches = matches and _protocol(atom) == "tcp"
                elif kind == "nfproto":
                    addresses = addresses & (_V4 if atom == "ipv4" else _V6 if atom == "ipv6" else _ALL)
                elif kind == "ctstate":
                    matches = matches and "new" in _STATE_ATOM.findall(atom)
                elif kind == "interface":
                    name = atom.strip('"')
                    if internal_interface(name):
                        matches = False
                    elif name not in state.interfaces:
                        state.interfaces.append(name)
                elif kind == "pkttype":
                    matches = matches and atom in ("host", "unicast")
                elif kind == "destination":
                    _address(atom, DESTINATION_KEYS[key])
            if matches and addresses:
                pieces.append((addresses, ports))
        if "protocol" in kinds:
            self._protocol_constraint("tcp", state)
        state.relation = _conjoin(state.relation, _relation_from_pieces(pieces, op == "!=", domain))


# ---------------------------------------------------------------------------------------------------
# Assembly.


def _build(reading: _Reading) -> Ruleset:
    file = reading.file
    chains: dict[str, Chain] = {}
    entries: list[tuple[int, int, int, str]] = []
    notes = list(reading.notes)
    handles: dict[Origin, int] = {}
    chain_info: dict[str, tuple[str, str, str]] = {}
    set_uses: dict[str, list[tuple[str, int, bool]]] = {}
    sets: dict[str, dict[str, Any]] = {}
    order = 0
    for (family, table_name), table in reading.tables.items():
        if family not in FILTER_FAMILIES:
            if any(c.hook for c in table.chains.values()):
                notes.append(f"table {family} {table_name} ignored: only ip, ip6 and inet tables filter "
                             "traffic to this host's sockets (a netdev/bridge table could still drop it)")
            continue
        if table.dormant:
            notes.append(f"table {family} {table_name} is dormant (flags dormant): ignored")
            continue
        interpreter = _Interpreter(file, table)
        for chain in table.chains.values():
            key = f"{family} {table_name} {chain.name}"
            chain_info[key] = (family, table_name, chain.name)
            chain_origin = Origin(file, chain.line, f"chain {chain.name} ({family} {table_name})")
            rules = interpreter.chain_rules(chain, key)
            is_entry = chain.hook in ENTRY_HOOKS and chain.type == "filter"
            if chain.hook and not is_entry and chain.hook in ENTRY_HOOKS:
                notes.append(f"chain {key} (type {chain.type} hook {chain.hook}) not analysed: only filter "
                             "chains decide whether a connection is admitted")
            policy = None
            if chain.hook:
                policy = Action.DROP if (chain.policy or "accept") == "drop" else Action.ACCEPT
            chains[key] = Chain(key, tuple(rules), policy, chain_origin,
                                family={"ip": 4, "ip6": 6}.get(family))
            if is_entry:
                entries.append((ENTRY_HOOKS.index(chain.hook or "input"), chain.priority, order, key))
                order += 1
            for rule_ir in chain.rules:
                if rule_ir.handle is not None:
                    handles[_rule_origin(file, interpreter.prefix, chain, rule_ir)] = rule_ir.handle
        for name, refs in interpreter.set_uses.items():
            set_key = f"{family} {table_name} {name}"
            set_uses[set_key] = refs
            declared = table.sets[name]
            version = 6 if any("ipv6" in k or "ip6" in k for k in declared.keys) else 4
            content = interpreter.set_addresses(name, version)
            sets[set_key] = {"family": family, "table": table_name, "name": name, "version": version,
                             "content": content,
                             "interval": "interval" in declared.flags,
                             "simple": name not in interpreter.complex_sets}
    if not entries:
        notes.append("no base chain on the input hook: nothing filters incoming connections here")
    entries.sort()
    return Ruleset(format=NAME, file=file, chains=chains, entry=tuple(key for *_, key in entries),
                   unparsed=tuple(reading.unparsed), notes=tuple(notes),
                   context={"handles": handles, "chains": chain_info, "set_uses": set_uses, "sets": sets})
