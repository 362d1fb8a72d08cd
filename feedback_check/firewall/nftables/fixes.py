"""Fix lines: `nft add element` into a named set, or `nft insert/add rule` before the blocking rule;
each proposal is checked by re-evaluating the ruleset with it applied."""

from __future__ import annotations

from dataclasses import dataclass, replace

from feedback_check.firewall.evaluate import LayerEvaluation, evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Chain, FixContext, Origin, PortSet, Rule, Ruleset


@dataclass(frozen=True)
class NamedSetFacts:
    """A named set that rules draw their sources from: where it is, its family, what it holds, whether
    it takes prefixes (`flags interval`) and whether only plain source matches use it (`simple`)."""

    family: str
    table: str
    name: str
    version: int
    content: AddressSet
    interval: bool
    simple: bool


@dataclass(frozen=True)
class NftablesFix(FixContext):
    """What `fix_lines` needs: each rule's handle (`nft insert rule ... position N`), each chain's
    family, table and name, and the named sets accepting rules use (chain, rule index, negated)."""

    handles: dict[Origin, int]
    chains: dict[str, tuple[str, str, str]]
    set_uses: dict[str, list[tuple[str, int, bool]]]
    sets: dict[str, NamedSetFacts]


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`nft` commands that admit `missing` to TCP `context.port`: `nft add element` when an accepting
    rule draws its sources from a named interval set, else `nft insert rule ... position <handle>`
    placed before the rule that blocks (at the top of the chain when the dump has no handles), or
    `nft add rule` when the chain's policy blocks. Each proposal is checked by re-evaluating the
    ruleset with it applied."""
    port = context.port
    if not missing:
        return []
    lines: list[str] = []
    current = ruleset
    remaining = missing - evaluate(current, port, candidates=missing).admitted
    if not remaining:
        return []
    element_lines, current = _set_element_fixes(current, remaining, port)
    lines += element_lines
    if element_lines:
        remaining = remaining - evaluate(current, port, candidates=remaining).admitted
    for _ in range(32):
        result = evaluate(current, port, candidates=remaining)
        blocked = remaining - result.admitted
        if not blocked:
            break
        blocking = next((d for d in result.decisions
                         if d.action in (Action.DROP, Action.REJECT) and d.addresses & blocked), None)
        if blocking is None:
            break
        in_chain = AddressSet.empty()
        for d in result.decisions:
            if d.chain == blocking.chain and d.action in (Action.DROP, Action.REJECT):
                in_chain = in_chain | (d.addresses & blocked)
        chain = current.chains[blocking.chain]
        index = len(chain.rules) if blocking.by_policy else _rule_index(chain, blocking.origin)
        shown = _widen(in_chain, in_chain | evaluation.admitted)
        lines += _insert_lines(current, blocking.chain, index, shown, port, blocking.by_policy)
        fix_rule = Rule(Action.ACCEPT, Origin(ruleset.file, None, "proposed fix"), source=in_chain,
                        protocols=frozenset({"tcp"}), ports=PortSet.of(port))
        rules = chain.rules[:index] + (fix_rule,) + chain.rules[index:]
        chains = dict(current.chains)
        chains[blocking.chain] = replace(chain, rules=rules)
        current = replace(current, chains=chains)
    return lines


# ---------------------------------------------------------------------------------------------------
# Fix generation helpers.


WIDEST_FIX_PREFIX = {4: 16, 6: 32}


def _widen(addresses: AddressSet, harmless: AddressSet) -> AddressSet:
    """`addresses` grown to fewer, wider CIDRs, taking in only addresses of `harmless` (those the
    layer admits anyway, so accepting them earlier changes nothing) and never wider than /16."""
    out = []
    for network in addresses.networks():
        best = network
        while best.prefixlen > WIDEST_FIX_PREFIX[best.version]:
            wider = best.supernet()
            if not AddressSet.parse(str(wider)).issubset(harmless):
                break
            best = wider
        out.append(str(best))
    return AddressSet.from_specs(out)


def _rule_index(chain: Chain, origin: Origin | None) -> int:
    for index, rule in enumerate(chain.rules):
        if rule.origin == origin:
            return index
    return 0


def _saddr_clause(addresses: AddressSet, family: str) -> list[str]:
    clauses = []
    for version, part in ((4, addresses.ipv4()), (6, addresses.ipv6())):
        if not part or (family == "ip" and version == 6) or (family == "ip6" and version == 4):
            continue
        cidrs = part.cidrs()
        value = cidrs[0] if len(cidrs) == 1 else "{ " + ", ".join(cidrs) + " }"
        clauses.append(f"{'ip' if version == 4 else 'ip6'} saddr {value}")
    return clauses


def _insert_lines(ruleset: Ruleset, chain_key: str, index: int, addresses: AddressSet, port: int,
                  by_policy: bool) -> list[str]:
    fix = ruleset.fix_context(NftablesFix)
    family, table, name = fix.chains.get(chain_key) or chain_key.split(" ", 2)
    handles = fix.handles
    chain = ruleset.chains[chain_key]
    lines = []
    if by_policy:
        lines.append(f"# the policy of chain {name} ({family} {table}) blocks them: append the rule")
        command = f"nft add rule {family} {table} {name}"
    else:
        blocker = chain.rules[index]
        handle = handles.get(blocker.origin)
        where = f"{blocker.origin}: {blocker.origin.text}".strip()
        if handle is not None:
            lines.append(f"# before the blocking rule {where}")
            command = f"nft insert rule {family} {table} {name} position {handle}"
        else:
            lines.append(f"# at the top of chain {name}, before the blocking rule {where}"
                         " (run `nft -a list ruleset` for handles)")
            command = f"nft insert rule {family} {table} {name}"
    for clause in _saddr_clause(addresses, family):
        lines.append(f"{command} {clause} tcp dport {port} accept")
    return lines


def _set_element_fixes(ruleset: Ruleset, missing: AddressSet, port: int) -> tuple[list[str], Ruleset]:
    """`nft add element` lines for named interval sets whose accepting rules would admit `missing`."""
    fix = ruleset.fix_context(NftablesFix)
    for set_key, refs in fix.set_uses.items():
        info = fix.sets.get(set_key)
        # A set that only drops or rejects its members (a blocklist) cannot admit more when it grows.
        if not info or not info.simple or not any(
                not negated and ruleset.chains[chain_key].rules[index].action not in (Action.DROP, Action.REJECT)
                for chain_key, index, negated in refs):
            continue
        addable = (missing.ipv4() if info.version == 4 else missing.ipv6()) - info.content
        if not info.interval and any("/" in c and not c.endswith(("/32", "/128"))
                                            for c in addable.cidrs()):
            continue
        if not addable:
            continue
        chains = dict(ruleset.chains)
        for chain_key, index, negated in refs:
            chain = chains[chain_key]
            rule = chain.rules[index]
            source = rule.source - addable if negated else rule.source | addable
            rules = chain.rules[:index] + (replace(rule, source=source),) + chain.rules[index + 1:]
            chains[chain_key] = replace(chain, rules=rules)
        trial = replace(ruleset, chains=chains)
        gained = evaluate(trial, port, candidates=addable).admitted & addable
        if gained:
            family, table, name = info.family, info.table, info.name
            return ([f"# add the missing ranges to the named set {name} used by the accepting rule",
                     f"nft add element {family} {table} {name} {{ {', '.join(addable.cidrs())} }}"], trial)
    return [], ruleset

