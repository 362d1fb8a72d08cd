"""The firewall analysis: which published PostFinance ranges reach the feedback port, layer by layer.

`analyse_layers` is the entry point of `feedback-check firewall` and of `check` (profile `firewall:`
layers). Each layer's file is parsed by its format module (auto-detected, or forced by its type) into
the common rule model, evaluated exactly for new TCP connections to the port, and the layers are
intersected in path order (outermost first). For every published range the result names the admitted
and blocked parts as minimal CIDRs, the layer and rule (file:line) that blocks each part, and fix lines
in the layer's own syntax. Every layer is also judged on its own, so the fix lines cover every layer
that would block, not only the first one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from feedback_check import inputfile
from feedback_check.errors import ConfigError
from feedback_check.findings import Finding, make_finding
from feedback_check.firewall import ipset as ipset_format
from feedback_check.firewall.evaluate import ChainLoopError, LayerEvaluation, evaluate
from feedback_check.firewall.formats import FORMAT_MODULES, ParseContext, format_module
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, AssumptionKind, Ruleset
from feedback_check.firewall.verdict import (
    ADMITTED,
    BLOCKED,
    PARTLY_BLOCKED,
    UNCERTAIN,
    DecidingRule,
    FirewallVerdict,
    LayerVerdict,
    RangeVerdict,
)
from feedback_check.platform import Platform, RangeList
from feedback_check.report import FirewallSummary

log = logging.getLogger(__name__)


class LayerLike(Protocol):
    """What a layer needs: profile.FirewallLayer and LayerSource both fit."""

    @property
    def file(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class LayerSource:
    """One layer on the path: a rule file, its type ("auto" or a --type name) and an optional name.

    `text` carries content that did not come from a file (`--live`); `file` then names where it came
    from (e.g. "iptables-save (live)")."""

    file: str
    type: str = "auto"
    name: str = ""
    text: str | None = None


@dataclass(frozen=True)
class AnalysedLayer:
    """One layer, parsed and evaluated."""

    name: str
    file: str
    format: str
    ruleset: Ruleset
    evaluation: LayerEvaluation
    module: ModuleType


def read_text(source: LayerLike) -> str:
    """The layer's text: given (`--live`) or read from its file through the bounded reader (regular files
    within the rule-file limit); unreadable files are ConfigErrors."""
    text = getattr(source, "text", None)
    if text is not None:
        return str(text)
    return inputfile.read_large_text(source.file, inputfile.RULES)


def detect_format(text: str) -> str | None:
    """The --type name of the first format (FORMAT_MODULES order) whose detect() accepts `text`;
    "ipset" for `ipset save` data; None when no format recognises it."""
    if ipset_format.detect(text):
        return ipset_format.NAME
    for name in FORMAT_MODULES:
        try:
            module = format_module(name)
        except ImportError:
            log.debug("format %s is not available", name)
            continue
        if module.detect(text):
            return name
    return None


def _module(kind: str, file: str) -> ModuleType:
    if kind not in FORMAT_MODULES:
        raise ConfigError(f"unknown firewall type {kind!r} (known: {', '.join(FORMAT_MODULES)})", file=file)
    try:
        return format_module(kind)
    except ImportError as e:
        raise ConfigError(f"the {kind} format is not available in this installation ({e})", file=file) from None


def load_ipsets(sources: Sequence[LayerLike]) -> dict[str, Any]:
    """`ipset save` / `ipset list` data from several sources, merged by set name."""
    sets: dict[str, Any] = {}
    for source in sources:
        text = getattr(source, "text", None)
        if text is None:
            sets.update(ipset_format.parse_lines(inputfile.iter_lines(source.file, inputfile.RULES), source.file))
        else:
            sets.update(ipset_format.parse(str(text), source.file))
    return sets


def analyse_layers(layers: Sequence[LayerLike], platform: Platform, *, port: int, path: str | None = None,
                   host: str | None = None, shop: str = "", ranges: RangeList | None = None,
                   ipsets: Sequence[LayerLike] = ()) -> FirewallSummary:
    """Which published ranges reach TCP `port` through `layers` (outermost first).

    Layers whose content is `ipset save` data (auto-detected, or type "ipset") are not layers: they
    resolve `--match-set` in the others, as do `ipsets`. Raises ConfigError for unreadable input."""
    range_list = ranges or platform.ranges
    texts: list[tuple[LayerLike, str | Iterator[tuple[int, str]], str]] = []
    ipset_sources: list[LayerLike] = list(ipsets)
    for layer in layers:
        content, kind = _layer_content(layer)
        if kind == ipset_format.NAME:
            # read (again, as a stream) by load_ipsets when it is a file
            ipset_sources.append(LayerSource(layer.file, kind, layer.name, content)
                                 if isinstance(content, str) else layer)
            continue
        texts.append((layer, content, kind))
    if not texts:
        raise ConfigError("no firewall layer to analyse (only ipset data was given)",
                          file=ipset_sources[0].file if ipset_sources else None)
    sets = load_ipsets(ipset_sources)
    published = range_list.addresses
    # Only the published (and legacy) addresses need an exact verdict: evaluating just those keeps a
    # 100,000-rule dump cheap. Whether a layer is open to the world is checked in full when it matters.
    candidates = published | platform.legacy_addresses
    analysed: list[AnalysedLayer] = []
    for index, (layer, text, kind) in enumerate(texts, start=1):
        module = _module(kind, layer.file)
        context = _context(layer, port, path, host, sets, published)
        try:
            if isinstance(text, str):
                ruleset = module.parse(text, layer.file, context)
            else:
                ruleset = module.parse_lines(text, layer.file, context)
            evaluation = _evaluate(ruleset, port, candidates, layer.file)
        except RecursionError:
            # The readers bound nesting (YAML, JSON, includes); this is the last guard, never a traceback.
            raise ConfigError("nested too deeply to analyse", file=layer.file) from None
        name = layer.name or f"layer {index} ({kind})"
        analysed.append(AnalysedLayer(name, layer.file, kind, ruleset, evaluation, module))
    return summarise(analysed, platform, range_list, port=port, shop=shop, path=path, host=host, ipsets=sets)


#: How much of a large rule file auto-detection reads when the format may be read line by line: the
#: detectors tried before iptables look at its first 200 lines (ipset, iptables), 20,000 characters
#: (ufw) or any line (nftables: a dump whose first megabyte is iptables is read as iptables). When the
#: head names no line-based format, the file is read whole and detected as before.
DETECT_HEAD = 1 << 20
#: Formats whose module reads (number, line) pairs (`parse_lines`) instead of the whole text. (Not
#: nftables: its statements and blocks span lines; not ufw: its files are small and are recognised by
#: markers anywhere in them; plain lists are auto-detected by checking every line, so only
#: `--type plain` reads them as lines.)
LINE_FORMATS = frozenset({"iptables", "ipset", "plain"})


def _layer_content(layer: LayerLike) -> tuple[str | Iterator[tuple[int, str]], str]:
    """The layer's text, or for a line-based format read from a file, its lines as an iterator over the
    open file (`inputfile.iter_lines`: never held whole); and its kind (detected when "auto")."""
    kind = layer.type or "auto"
    given = getattr(layer, "text", None)
    if given is None and kind in LINE_FORMATS:
        if kind == ipset_format.NAME:
            inputfile.open_input(layer.file, inputfile.RULES)[0].close()   # refused now if it cannot be read
            return iter(()), kind
        return inputfile.iter_lines(layer.file, inputfile.RULES), kind
    if given is None and kind == "auto":
        head, whole = inputfile.read_head(layer.file, inputfile.RULES, DETECT_HEAD)
        # detect() of iptables and of the formats tried before it look at the first 200 lines at most
        detected = detect_format(head) if not whole and head.count("\n") > 200 else None
        if detected == ipset_format.NAME:
            return iter(()), detected
        if detected in LINE_FORMATS and detected != "plain":
            return inputfile.iter_lines(layer.file, inputfile.RULES), str(detected)
    text = read_text(layer)
    if kind == "auto":
        found = detect_format(text)
        if found is None:
            raise ConfigError("cannot tell which firewall format this is; pass --type "
                              f"({', '.join(FORMAT_MODULES)})", file=layer.file)
        kind = found
    return text, kind


def _evaluate(ruleset: Ruleset, port: int, candidates: AddressSet | None, file: str) -> LayerEvaluation:
    try:
        return evaluate(ruleset, port, candidates=candidates)
    except ChainLoopError as e:
        raise ConfigError(str(e), file=file) from None


def _open_to_world(layer: AnalysedLayer, candidates: AddressSet, port: int) -> bool:
    """Whether the layer admits every IPv4 source (a full evaluation, done only when it admits all candidates)."""
    if not candidates.issubset(layer.evaluation.admitted) or layer.evaluation.uncertain:
        return False
    return _evaluate(layer.ruleset, port, None, layer.file).admitted.is_everything_ipv4()


def _context(layer: LayerLike, port: int, path: str | None, host: str | None, sets: dict[str, Any],
             published: AddressSet) -> ParseContext:
    base = Path(layer.file).parent if getattr(layer, "text", None) is None else None
    return ParseContext(port=port, path=path, host=host, base_dir=base, ipsets=sets, published=published)


def summarise(layers: Sequence[AnalysedLayer], platform: Platform, range_list: RangeList, *, port: int,
              shop: str = "", path: str | None = None, host: str | None = None,
              ipsets: dict[str, Any] | None = None) -> FirewallSummary:
    """Findings and the typed verdict for analysed layers (intersected in order) against the published ranges."""
    published = range_list.addresses
    path_state = _PathState.through(layers, published, published | platform.legacy_addresses, port)
    passing, uncertain = path_state.passing, path_state.uncertain
    admitted = passing & published
    blocked = published - passing
    certain_blocked = blocked - uncertain
    context = _FixContext(port, path, host, ipsets or {}, published)
    ranges, fix_lines, findings = _range_verdicts(range_list, layers, passing, uncertain, context)
    open_to_world = path_state.open_to_world
    if published and not admitted and certain_blocked == published:
        title, closed = _port_closed_words(layers, published, port)
        findings.insert(0, make_finding(
            "firewall.port_closed", f"port {port}", title=title, detail=closed,
            evidence={"port": port, "ranges": [r.cidr for r in range_list.ranges]},
            fix="\n".join(fix_lines) or None))
    legacy = _legacy_finding(platform, range_list, passing, certain_blocked, port, open_to_world)
    if legacy is not None:
        findings.insert(0, legacy)
    if open_to_world:
        findings.append(make_finding(
            "firewall.open_to_world", f"port {port}",
            detail=f"Every IPv4 source can reach port {port} through {_layer_names(layers)}.",
            evidence={"port": port}))
    findings.extend(_unparsed_findings(layers))
    findings.extend(_uncertain_findings(layers, published, uncertain, blocked, port))
    findings.extend(_assumption_findings(layers, published, port))
    findings.extend(_range_list_findings(range_list))
    if shop:
        findings = [replace(f, shop=shop) for f in findings]
    analysis = FirewallVerdict(
        layers=path_state.layers, ranges=ranges, ranges_source=range_list.source,
        admitted=tuple(admitted.cidrs()), blocked=tuple(blocked.cidrs()),
        uncertain_addresses=tuple(uncertain.cidrs()), open_to_world=open_to_world,
        fix_lines=tuple(fix_lines), path=path, host=host)
    return FirewallSummary(shop=shop, port=port, findings=tuple(findings),
                           published_addresses=published.size(), blocked_addresses=blocked.size(),
                           uncertain=bool(uncertain) or any(layer.ruleset.unparsed for layer in layers),
                           analysis=analysis)


@dataclass(frozen=True)
class _PathState:
    """What passes the layers in order: the intersection of what each admits, the published addresses
    an unsupported match decides (where they still reach that layer), and each layer judged alone."""

    passing: AddressSet
    uncertain: AddressSet
    layers: tuple[LayerVerdict, ...]
    open_to_world: bool

    @classmethod
    def through(cls, layers: Sequence[AnalysedLayer], published: AddressSet, candidates: AddressSet,
                port: int) -> _PathState:
        passing = AddressSet.everything()
        uncertain = AddressSet.empty()
        verdicts: list[LayerVerdict] = []
        for layer in layers:
            for _, addresses in layer.evaluation.uncertain:
                uncertain = uncertain | (addresses & published & passing)
            passing = passing & layer.evaluation.admitted
            verdicts.append(_layer_verdict(layer, published, _open_to_world(layer, candidates, port)))
        return cls(passing, uncertain, tuple(verdicts), bool(verdicts) and all(v.open_to_world for v in verdicts))


@dataclass(frozen=True)
class _FixContext:
    """What the format modules' fix_lines need besides the layer."""

    port: int
    path: str | None
    host: str | None
    ipsets: dict[str, Any]
    published: AddressSet

    def for_layer(self, layer: AnalysedLayer) -> ParseContext:
        return ParseContext(port=self.port, path=self.path, host=self.host, ipsets=self.ipsets,
                            published=self.published, base_dir=Path(layer.file).parent)


def _range_verdicts(range_list: RangeList, layers: Sequence[AnalysedLayer], passing: AddressSet,
                    uncertain: AddressSet, context: _FixContext
                    ) -> tuple[tuple[RangeVerdict, ...], list[str], list[Finding]]:
    """Every published range's verdict, the combined fix and a firewall.range_blocked finding per range
    with certainly blocked addresses. The combined fix is grouped by layer (outermost first), so a
    layer's header comment (e.g. nginx's "# in location …, before `deny all;`") stays above every line
    meant for that place."""
    verdicts: list[RangeVerdict] = []
    findings: list[Finding] = []
    fix_by_layer: list[list[str]] = [[] for _ in layers]
    for published_range in range_list.ranges:
        verdict, range_fix_by_layer = _range_verdict(published_range.cidr, layers, passing, uncertain, context)
        verdicts.append(verdict)
        for index, lines in range_fix_by_layer.items():
            fix_by_layer[index].extend(line for line in lines if line not in fix_by_layer[index])
        if AddressSet.from_specs(verdict.blocked) - uncertain:
            findings.append(_range_blocked_finding(verdict, context.port))
    return tuple(verdicts), [line for lines in fix_by_layer for line in lines], findings


def _range_blocked_finding(verdict: RangeVerdict, port: int) -> Finding:
    return make_finding(
        "firewall.range_blocked", verdict.cidr,
        detail=_blocked_sentence(verdict, port),
        evidence={"range": verdict.cidr, "port": port, "blocked": list(verdict.blocked),
                  "admitted": list(verdict.admitted), "uncertain": list(verdict.uncertain),
                  "deciding": [_decision_evidence(d) for d in verdict.deciding]},
        fix="\n".join(verdict.fix_lines) or None)


def _decision_evidence(d: DecidingRule) -> dict[str, Any]:
    """A deciding rule as the evidence of firewall.range_blocked holds it."""
    return {"layer": d.layer, "file": d.file, "rule": d.rule, "text": d.text, "chain": d.chain,
            "action": d.action, "by_policy": d.by_policy, "blocked": list(d.blocked),
            "first_blocking_layer": d.first_blocking_layer}


#: Layers that refuse inside HTTP: the TCP connection opens and the web server answers the request.
_WEB_SERVERS = {"nginx": "nginx", "apache": "Apache"}


def _port_closed_words(layers: Sequence[AnalysedLayer], published: AddressSet, port: int) -> tuple[str | None, str]:
    """(title, detail) of firewall.port_closed. When only web-server layers (nginx/Apache allow/deny)
    refuse, the connection does open and the server answers 403 (401 where a login decides), so the
    finding says that instead of "cannot open a TCP connection"."""
    passing = AddressSet.everything()
    refusing: list[AnalysedLayer] = []
    for layer in layers:
        if (passing - layer.evaluation.admitted) & published:
            refusing.append(layer)
        passing = passing & layer.evaluation.admitted
    if not refusing or any(layer.format not in _WEB_SERVERS for layer in refusing):
        return None, (f"No published PostFinance address can open a TCP connection to port {port} through "
                      f"{_layer_names(layers)}.")
    server = " and ".join(dict.fromkeys(_WEB_SERVERS[layer.format] for layer in refusing))
    status = "401" if any("401" in note for layer in refusing for note in layer.ruleset.notes) else "403"
    where = " → ".join(layer.file for layer in refusing)
    detail = (f"The TCP connection to port {port} opens, but {server} answers {status} to every published "
              f"PostFinance address ({where}): the post-sale request never reaches the handler.")
    return f"{server} answers {status} to every published address", detail


def _layer_names(layers: Sequence[AnalysedLayer]) -> str:
    if len(layers) == 1:
        return layers[0].file
    return "the layers " + " → ".join(layer.name for layer in layers)


def _layer_verdict(layer: AnalysedLayer, published: AddressSet, open_to_world: bool) -> LayerVerdict:
    admitted = layer.evaluation.admitted
    notes = list(layer.ruleset.notes)
    interface_rules = sorted({f"{rule.origin} ({rule.assumption.text})"
                              for rule, addresses in layer.evaluation.assumed
                              if rule.assumption is not None and rule.assumption.kind is AssumptionKind.INTERFACE
                              and addresses & published})
    if interface_rules:
        notes.append("rules limited to an interface were assumed to see PostFinance's traffic: "
                     + "; ".join(interface_rules))
    return LayerVerdict(
        name=layer.name, file=layer.file, format=layer.format, entry=tuple(layer.ruleset.entry),
        admits_published=tuple((admitted & published).cidrs()),
        blocks_published=tuple((published - admitted).cidrs()),
        open_to_world=open_to_world,
        unparsed=tuple(f"{o}: {o.text}" if o.text else str(o) for o in layer.ruleset.unparsed),
        notes=tuple(notes))


def _range_verdict(cidr: str, layers: Sequence[AnalysedLayer], passing: AddressSet, uncertain: AddressSet,
                   context: _FixContext) -> tuple[RangeVerdict, dict[int, list[str]]]:
    """One published range through the layers, and the fix lines of each layer that blocks part of it."""
    addresses = AddressSet.parse(cidr)
    deciding: list[DecidingRule] = []
    fix_by_layer: dict[int, list[str]] = {}
    for index, layer in enumerate(layers):
        missing = addresses - layer.evaluation.admitted
        if not missing:
            continue
        first_blocking = not fix_by_layer
        deciding += [DecidingRule(
            layer=layer.name, file=layer.file,
            rule=str(decision.origin) if decision.origin else f"{layer.file} ({decision.chain})",
            text=decision.origin.text if decision.origin else "",
            chain=decision.chain, action=decision.action.value, by_policy=decision.by_policy,
            blocked=tuple(decision.addresses.cidrs()), first_blocking_layer=first_blocking)
            for decision in layer.evaluation.deciding(missing) if decision.action is not Action.ACCEPT]
        fix_by_layer[index] = list(layer.module.fix_lines(layer.ruleset, layer.evaluation, missing,
                                                          context.for_layer(layer)))
    blocked = addresses - passing
    state = ADMITTED if not blocked else (BLOCKED if blocked == addresses else PARTLY_BLOCKED)
    if blocked and blocked.issubset(uncertain):
        state = UNCERTAIN
    return RangeVerdict(
        cidr=cidr, state=state, admitted=tuple((addresses & passing).cidrs()), blocked=tuple(blocked.cidrs()),
        uncertain=tuple((addresses & uncertain).cidrs()), deciding=tuple(deciding),
        fix_lines=tuple(line for lines in fix_by_layer.values() for line in lines)), fix_by_layer


def _few(cidrs: Sequence[str], most: int = 4) -> str:
    shown = ", ".join(cidrs[:most])
    return shown + (f" and {len(cidrs) - most} more CIDRs" if len(cidrs) > most else "")


def _blocked_sentence(verdict: RangeVerdict, port: int) -> str:
    blocked = verdict.blocked
    size = AddressSet.from_specs(blocked).size()
    what = "all of" if verdict.state == BLOCKED else f"{size:,} addresses ({_few(blocked)}) of"
    by = "; ".join(f"{d.layer}: {d.rule}" + (" (default policy)" if d.by_policy else "")
                   + f" {d.action}s {_few(d.blocked)}" for d in verdict.deciding)
    return f"{what} {verdict.cidr} cannot reach port {port}" + (f" — {by}" if by else "") + "."


def _legacy_finding(platform: Platform, range_list: RangeList, passing: AddressSet,
                    certain_blocked: AddressSet, port: int, open_to_world: bool) -> Finding | None:
    """firewall.legacy_allowlist: the 2019 hosts are admitted while the ranges published since are not."""
    legacy = platform.legacy_addresses
    if not legacy or open_to_world or not (passing & legacy):
        return None
    newer = [r for r in range_list.ranges if not (r.addresses & legacy)]
    if not newer or not all(r.addresses.issubset(certain_blocked) for r in newer):
        return None
    return make_finding(
        "firewall.legacy_allowlist", f"port {port}",
        detail=f"The allowlist admits the 2019 Ogone/Ingenico senders ({', '.join((passing & legacy).cidrs())}) "
               f"but none of {', '.join(r.cidr for r in newer)}, published since.",
        evidence={"legacy_admitted": (passing & legacy).cidrs(), "missing": [r.cidr for r in newer],
                  "legacy_source": platform.legacy_source},
        platform=platform)


def _unparsed_findings(layers: Sequence[AnalysedLayer]) -> list[Finding]:
    out = []
    for layer in layers:
        if not layer.ruleset.unparsed:
            continue
        lines = [f"{o}: {o.text}" if o.text else str(o) for o in layer.ruleset.unparsed]
        out.append(make_finding(
            "firewall.unparsed", layer.file,
            detail=f"{len(lines)} line(s) of {layer.file} could not be interpreted: " + "; ".join(lines[:5])
                   + (" ..." if len(lines) > 5 else ""),
            evidence={"layer": layer.name, "lines": lines}))
    return out


def _uncertain_findings(layers: Sequence[AnalysedLayer], published: AddressSet, uncertain: AddressSet,
                        blocked: AddressSet, port: int) -> list[Finding]:
    out = []
    for layer in layers:
        rules = [(rule, addresses & published) for rule, addresses in layer.evaluation.uncertain
                 if addresses & published & uncertain]
        if not rules:
            continue
        affected = AddressSet.empty()
        for _, addresses in rules:
            affected = affected | addresses
        may_block = (affected & blocked).cidrs()
        may_admit = (affected - blocked).cidrs()
        parts = []
        if may_block:
            parts.append(f"{', '.join(may_block)} is read as blocked")
        if may_admit:
            parts.append(f"{', '.join(may_admit)} is read as admitted")
        out.append(make_finding(
            "firewall.unsupported_match", layer.file,
            detail=f"The verdict for port {port} is uncertain: " + " and ".join(parts)
                   + ", but these rules use matches the analyser cannot evaluate: "
                   + "; ".join(f"{rule.origin} ({', '.join(rule.unsupported)})" for rule, _ in rules) + ".",
            evidence={"layer": layer.name, "uncertain": affected.cidrs(),
                      "rules": [{"rule": str(rule.origin), "text": rule.origin.text,
                                 "unsupported": list(rule.unsupported), "addresses": addresses.cidrs()}
                                for rule, addresses in rules]}))
    return out


def _assumption_findings(layers: Sequence[AnalysedLayer], published: AddressSet, port: int) -> list[Finding]:
    out = []
    for layer in layers:
        rules = [(rule, rule.assumption, addresses & published) for rule, addresses in layer.evaluation.assumed
                 if rule.assumption is not None and rule.assumption.kind is AssumptionKind.RATE_LIMIT
                 and addresses & published]
        if not rules:
            continue
        out.append(make_finding(
            "firewall.rate_limited", layer.file,
            detail=f"A rate limit decides whether PostFinance's requests reach port {port}; the analysis "
                   "assumes one post-sale request stays under it: "
                   + "; ".join(f"{rule.origin} ({assumption.text}, {rule.action.value})"
                               for rule, assumption, _ in rules) + ".",
            evidence={"layer": layer.name,
                      "rules": [{"rule": str(rule.origin), "text": rule.origin.text,
                                 "limit": assumption.text, "addresses": addresses.cidrs()}
                                for rule, assumption, addresses in rules]}))
    return out


def _range_list_findings(range_list: RangeList) -> list[Finding]:
    out = []
    if range_list.is_stale():
        out.append(make_finding(
            "ranges.stale", range_list.source,
            detail=f"The published-range list was retrieved {range_list.retrieved} ({range_list.age_days()} days "
                   f"ago; limit {range_list.max_age_days}).",
            evidence={"retrieved": str(range_list.retrieved), "age_days": range_list.age_days(),
                      "max_age_days": range_list.max_age_days}))
    if range_list.custom:
        out.append(make_finding(
            "ranges.custom", range_list.origin_file or range_list.source,
            detail=f"Ranges from {range_list.origin_file or range_list.source}: "
                   + ", ".join(r.cidr for r in range_list.ranges) + ".",
            evidence={"ranges": [r.cidr for r in range_list.ranges]}))
    return out
