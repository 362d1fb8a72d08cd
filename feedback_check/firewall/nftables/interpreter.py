"""The interpreter: one table's intermediate rules into model rules for a new TCP connection, and
the assembly of the whole ruleset."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import replace
from itertools import accumulate
from typing import Any, cast

from feedback_check.errors import ConfigError
from feedback_check.firewall.connection import arrives_on, under_rate_limit
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Chain, Origin, PortSet, Rule, RuleLines, Ruleset
from feedback_check.firewall.nftables.fixes import NamedSetFacts, NftablesFix
from feedback_check.firewall.nftables.ir import (
    ENTRY_HOOKS,
    FILTER_FAMILIES,
    NAME,
    VERDICTS,
    IrChain,
    IrRule,
    IrTable,
    Match,
    RateLimit,
    Reading,
    RuleRun,
    Unsupported,
    Verdict,
    VerdictMap,
    render_element,
    render_keys,
)
from feedback_check.firewall.nftables.matchers import (
    FAMILY_OF_HEAD,
    Matcher,
    RuleState,
    describe,
    is_source,
    matcher,
)
from feedback_check.firewall.nftables.values import (
    ALL_PORTS,
    Relation,
    addresses_of,
    bounds,
    conjoin,
    family_set,
    relation_from_pieces,
)
from feedback_check.firewall.runs import can_merge, merge


def _rule_origin(file: str, prefix: str, chain: IrChain, rule: IrRule | RuleRun) -> Origin:
    """Text rules are located by line; JSON rules by table, chain and handle."""
    if rule.line is not None:
        return Origin(file, rule.line, rule.text)
    return Origin(file, None, f"{prefix}{chain.name} handle {rule.handle}: {rule.text}")


class _Interpreter:
    """Turns one table's intermediate rules into model rules."""

    def __init__(self, file: str, table: IrTable) -> None:
        self.file = file
        self.table = table
        self.prefix = f"{table.family} {table.name} "
        self.set_uses: dict[str, list[tuple[str, int, bool]]] = {}
        self.complex_sets: set[str] = set()
        self._set_cache: dict[tuple[str, int | None], AddressSet] = {}

    def chain_rules(self, chain: IrChain, chain_key: str) -> list[Rule]:
        out: list[Rule] = []
        for rule in chain.rules:
            if isinstance(rule, RuleRun):
                out += self._run(rule, chain)
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

    def _run(self, run: RuleRun, chain: IrChain) -> list[Rule]:
        """A run of rules (`RuleRun`) as one model rule over the union of their sources (runs.merge),
        when the rule its shape stands for can be merged; else one model rule (or more) per rule."""
        shape = self._shape(run, chain)
        try:
            starts, ends = bounds(run.sources, run.family)
        except ValueError:
            shape = None
        if shape is None:
            out: list[Rule] = []
            for rule in run.rules():           # the rule at fault, if any, named as for any other rule
                out += self.chain_rules(IrChain(chain.name, chain.line, rules=[rule]), "")
            return out
        if run.family == 4:
            starts, ends = array("q", starts), array("q", ends)
        numbers: Sequence[int] = run.numbers
        document, offsets = run.document, run.offsets
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
        merged = merge(shape, RuleLines(self.file, run.family, numbers, starts, ends, document or "", offsets))
        return [merged] if merged is not None else []

    def _shape(self, run: RuleRun, chain: IrChain) -> Rule | None:
        """The rule a run's shape stands for (its first rule without its source match), when the run
        may become one rule (`runs.can_merge`, no named set, one model rule); else None."""
        statements = run.statements[:run.source] + run.statements[run.source + 1:]
        origin = _rule_origin(self.file, self.prefix, chain, run)
        try:
            produced, refs = self._rule(IrRule(statements, run.line, run.handle, run.text, run.comment), origin)
        except ValueError:
            return None
        if refs or len(produced) != 1 or not can_merge(produced[0]):
            return None
        return produced[0]

    # -- one rule ----------------------------------------------------------------------------------
    def _rule(self, rule: IrRule, origin: Origin) -> tuple[list[Rule], list[tuple[str, bool, bool]]]:
        state = RuleState()
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

    def _emit(self, state: RuleState, relation: Relation, verdict: Verdict, origin: Origin,
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

    def _vmap_rules(self, vmap: VerdictMap, state: RuleState, origin: Origin, note: str) -> list[Rule]:
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
            self._set_cache[key] = addresses_of((e[0] for e in declared.elements), version)
        return self._set_cache[key]

    def elements_of(self, match: Match, state: RuleState) -> list[tuple[str, ...]]:
        """The match's elements: its own, or its named set's (recorded as a use of the set)."""
        if match.ref is None:
            return list(match.elements)
        target = self.table.sets.get(match.ref)
        if target is None:
            raise ValueError(f"@{match.ref}: no such set in table {self.table.family} {self.table.name}")
        simple = len(match.keys) == 1 and is_source(match.keys[0]) and match.op in ("==", "!=")
        state.set_refs.append((match.ref, match.op == "!=", simple))
        if "dynamic" in target.flags or "timeout" in target.flags:
            state.notes.append(f"set @{match.ref} is updated at run time; its listed content was analysed")
        return target.elements

    def _match(self, match: Match, state: RuleState) -> None:
        """One match statement, by the meaning of its selector (matchers.MATCHERS)."""
        if len(match.keys) == 1:
            meaning = matcher(match.keys[0])
            if match.op not in ("==", "!="):
                if meaning is None or not meaning.compare(match, state):
                    state.unsupported.append(describe(match))
                return
            if meaning is not None and meaning.single(match, state, self):
                return
        self._concat(match.keys, match.op, self.elements_of(match, state), state)

    def _concat(self, keys: Sequence[str], op: str, elements: Sequence[tuple[str, ...]],
                state: RuleState) -> None:
        """General case: each element a conjunction over the keys (each by its selector's element
        meaning); the match is their union."""
        meanings: list[Matcher] = []
        version: int | None = None
        for key in keys:
            family = FAMILY_OF_HEAD.get(key.partition(" ")[0])
            if family is not None:
                if version is not None and version != family:
                    state.relation = []
                    return
                version = family
            meaning = matcher(key)
            if meaning is None or not meaning.concatenable:
                shown = render_keys(keys) + (" != " if op == "!=" else " ") + (
                    "{ " + ", ".join(render_element(e) for e in elements[:5]) + (" ..." if len(elements) > 5
                                                                                else "") + " }")
                state.unsupported.append(shown)
                return
            state.restrict_protocol(meaning.protocol)
            meanings.append(meaning)
        domain = family_set(version)
        pieces: list[tuple[AddressSet, tuple[int, int] | None]] = []
        for element in elements:
            if len(element) != len(meanings):
                raise ValueError(f"element {render_element(element)!r} does not fit {render_keys(keys)}")
            addresses = domain
            ports: tuple[int, int] | None = None
            matches = True
            for meaning, atom in zip(meanings, element):
                part = meaning.element(atom, state)
                if part is None or part is True:
                    continue
                if part is False:
                    matches = False
                elif isinstance(part, tuple):
                    ports = part
                else:
                    addresses = addresses & part
            if matches and addresses:
                pieces.append((addresses, ports))
        for meaning in dict.fromkeys(meanings):
            meaning.finish(state)
        state.relation = conjoin(state.relation, relation_from_pieces(pieces, op == "!=", domain))


# ---------------------------------------------------------------------------------------------------
# Assembly.


def _build(reading: Reading) -> Ruleset:
    """The ruleset of a reading: each filtering table's chains interpreted (`_Assembly`)."""
    assembly = _Assembly(reading)
    for (family, table_name), table in reading.tables.items():
        if family not in FILTER_FAMILIES:
            if any(c.hook for c in table.chains.values()):
                assembly.notes.append(f"table {family} {table_name} ignored: only ip, ip6 and inet tables "
                                      "filter traffic to this host's sockets (a netdev/bridge table could "
                                      "still drop it)")
            continue
        if table.dormant:
            assembly.notes.append(f"table {family} {table_name} is dormant (flags dormant): ignored")
            continue
        interpreter = _Interpreter(reading.file, table)
        for chain in table.chains.values():
            assembly.chain(interpreter, family, table_name, chain)
        assembly.named_sets(interpreter, family, table_name, table)
    return assembly.ruleset()


class _Assembly:
    """The model chains, entry chains, notes and fix context of a ruleset, table by table."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.file = reading.file
        self.chains: dict[str, Chain] = {}
        self.entries: list[tuple[int, int, int, str]] = []      # hook, priority, file order, chain
        self.notes = list(reading.notes)
        self.handles: dict[Origin, int] = {}
        self.chain_info: dict[str, tuple[str, str, str]] = {}
        self.set_uses: dict[str, list[tuple[str, int, bool]]] = {}
        self.sets: dict[str, NamedSetFacts] = {}

    def chain(self, interpreter: _Interpreter, family: str, table_name: str, chain: IrChain) -> None:
        file = self.file
        key = f"{family} {table_name} {chain.name}"
        self.chain_info[key] = (family, table_name, chain.name)
        chain_origin = Origin(file, chain.line, f"chain {chain.name} ({family} {table_name})")
        rules = interpreter.chain_rules(chain, key)
        is_entry = chain.hook in ENTRY_HOOKS and chain.type == "filter"
        if chain.hook and not is_entry and chain.hook in ENTRY_HOOKS:
            self.notes.append(f"chain {key} (type {chain.type} hook {chain.hook}) not analysed: only filter "
                              "chains decide whether a connection is admitted")
        policy = None
        if chain.hook:
            policy = Action.DROP if (chain.policy or "accept") == "drop" else Action.ACCEPT
        self.chains[key] = Chain(key, tuple(rules), policy, chain_origin, family={"ip": 4, "ip6": 6}.get(family))
        if is_entry:
            self.entries.append((ENTRY_HOOKS.index(chain.hook or "input"), chain.priority, len(self.entries), key))
        for rule_ir in chain.rules:
            if rule_ir.handle is not None:
                self.handles[_rule_origin(file, interpreter.prefix, chain, rule_ir)] = rule_ir.handle

    def named_sets(self, interpreter: _Interpreter, family: str, table_name: str, table: IrTable) -> None:
        """The named sets plain source matches of the table use, for `nft add element` fixes."""
        for name, refs in interpreter.set_uses.items():
            set_key = f"{family} {table_name} {name}"
            self.set_uses[set_key] = refs
            declared = table.sets[name]
            version = 6 if any("ipv6" in k or "ip6" in k for k in declared.keys) else 4
            content = interpreter.set_addresses(name, version)
            self.sets[set_key] = NamedSetFacts(family, table_name, name, version, content,
                                               "interval" in declared.flags, name not in interpreter.complex_sets)

    def ruleset(self) -> Ruleset:
        if not self.entries:
            self.notes.append("no base chain on the input hook: nothing filters incoming connections here")
        self.entries.sort()
        return Ruleset(format=NAME, file=self.file, chains=self.chains,
                       entry=tuple(key for *_, key in self.entries), unparsed=tuple(self.reading.unparsed),
                       notes=tuple(self.notes), fix=NftablesFix(self.handles, self.chain_info, self.set_uses, self.sets))
