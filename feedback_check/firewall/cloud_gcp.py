"""Google Cloud VPC firewall rules: `gcloud compute firewall-rules list --format=json`.

INGRESS rules apply by priority (lower number first); at equal priority a deny rule wins over an allow
rule. What no rule matches falls to the implied deny-ingress rule (priority 65535). Disabled rules are
skipped. Decisions worth knowing:
- Target tags / service accounts limit a rule to some instances: the file does not say which instance
  serves the shop, so such rules are assumed to apply to it, and the notes say so.
- Source tags / service accounts match other instances of the network, never PostFinance: a rule with
  only those matches no published source (with source ranges as well, the ranges count).
- Rules of several networks are read as one list; the notes name the networks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from feedback_check.errors import ConfigError
from feedback_check.firewall._textconf import (
    checks_json_shape,
    first_blocking_rule,
    fix_cidrs,
    layer_missing,
    load_json_document,
    parse_addresses,
    port_ranges,
    single_chain,
)
from feedback_check.firewall.evaluate import LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, FixContext, Origin, PortSet, Rule, Ruleset
from feedback_check.yamlfile import line_of

NAME = "gcp-firewall"
DEFAULT_PRIORITY = 1000
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp"}


def detect(text: str) -> bool:
    """A JSON list of rules with `direction` and `allowed`/`denied` (gcloud's field names)."""
    head = text[:200000].lstrip()
    return head.startswith(("[", "{")) and bool(re.search(r'"(allowed|denied)"\s*:', head)) \
        and bool(re.search(r'"direction"\s*:\s*"(INGRESS|EGRESS)"', head)) and '"sourceAddressPrefix' not in head


@checks_json_shape(NAME)
def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """INGRESS rules in evaluation order (priority, deny before allow) into one chain, policy DROP."""
    document = load_json_document(text, file)
    if isinstance(document, dict):
        document = document.get("items", [document])
    if not isinstance(document, list):
        raise ConfigError("expected the JSON of `gcloud compute firewall-rules list --format=json`", file=file)
    reading = _Reading(file)
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            raise ConfigError("a firewall rule must be an object", file=file, line=line_of(document, index))
        reading.add(entry)
    if len(reading.networks) > 1:
        reading.notes.append(f"Rules of several networks ({', '.join(reading.networks)}) are read as one list.")
    ordered = sorted(reading.ordered, key=lambda item: item[:3])
    priorities = {line_rule[3].origin.line: line_rule[0] for line_rule in ordered}
    return single_chain(NAME, file, [item[3] for item in ordered], Action.DROP,
                        policy_origin=Origin(file, None, "implied deny ingress (priority 65535)"),
                        notes=reading.notes, fix=GcpFix(reading.networks[0] if reading.networks else "default",
                                                        priorities, tuple(reading.names)))


@dataclass
class _Reading:
    """The rules read so far: (priority, 0 for deny / 1 for allow, order read, rule) for the sort, the
    notes, the networks and the names of the INGRESS rules."""

    file: str
    ordered: list[tuple[int, int, int, Rule]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        """One rule of the list: an INGRESS rule that is not disabled gives a model rule per
        protocol/ports entry of its `allowed` or `denied` list."""
        if str(entry.get("direction", "INGRESS")).upper() != "INGRESS":
            return
        name = str(entry.get("name", "?"))
        self.names.append(name)
        line = line_of(entry, "name")
        network = str(entry.get("network", "")).rsplit("/", 1)[-1]
        if network and network not in self.networks:
            self.networks.append(network)
        if entry.get("disabled"):
            self.notes.append(f"Rule {name} is disabled and was skipped.")
            return
        try:
            priority = int(entry.get("priority", DEFAULT_PRIORITY))
        except (TypeError, ValueError):
            raise ConfigError(f"rule {name!r}: priority must be a number", file=self.file, line=line) from None
        targets = list(entry.get("targetTags") or []) + list(entry.get("targetServiceAccounts") or [])
        if targets:
            self.notes.append(f"Rule {name} applies only to instances with {', '.join(map(str, targets))}: "
                              "assumed to include the shop's instance.")
        source = _source(entry, name, self.file)
        denied = "denied" in entry
        action = Action.DROP if denied else Action.ACCEPT
        for protocols, ports in _matches(entry.get("denied" if denied else "allowed") or [], name, self.file, line):
            text = _rule_text(entry, name, priority, protocols, ports)
            rule = Rule(action, Origin(self.file, line, text), source=source, protocols=protocols, ports=ports,
                        note=name)
            self.ordered.append((priority, 0 if denied else 1, len(self.ordered), rule))


def _source(entry: dict[str, Any], name: str, file: str) -> AddressSet:
    """The rule's source ranges; none and no source tags or service accounts: 0.0.0.0/0 (GCP's default).
    Tags and service accounts alone match other instances of the network, never PostFinance."""
    source, bad = parse_addresses([str(r) for r in entry.get("sourceRanges") or []])
    if bad:
        raise ConfigError(f"rule {name!r}: source range {bad[0]!r} is not a CIDR", file=file,
                          line=line_of(entry, "sourceRanges"))
    if not entry.get("sourceRanges") and not (entry.get("sourceTags") or entry.get("sourceServiceAccounts")):
        return AddressSet.all_ipv4()
    return source


def _rule_text(entry: dict[str, Any], name: str, priority: int, protocols: frozenset[str] | None,
               ports: PortSet | None) -> str:
    """How a rule is named in the report: `name (priority P, allow tcp:443 from 1.2.3.0/24)`."""
    verdict = "deny" if "denied" in entry else "allow"
    what = ",".join(sorted(protocols)) if protocols else "all"
    where = f":{ports}" if ports else ""
    sources = ", ".join(entry.get("sourceRanges") or []) or "-"
    return f"{name} (priority {priority}, {verdict} {what}{where} from {sources})"


def _matches(entries: list[Any], name: str, file: str, line: int | None
             ) -> list[tuple[frozenset[str] | None, PortSet | None]]:
    out: list[tuple[frozenset[str] | None, PortSet | None]] = []
    for item in entries:
        if not isinstance(item, dict):
            raise ConfigError(f"rule {name!r}: allowed/denied entries must be objects", file=file, line=line)
        protocol = str(item.get("IPProtocol", "all")).lower()
        protocol = _PROTOCOL_NUMBERS.get(protocol, protocol)
        protocols = None if protocol == "all" else frozenset({protocol})
        ports = None
        if item.get("ports"):
            try:
                ports = PortSet.of(*[r for spec in item["ports"] for r in port_ranges(str(spec))])
            except ValueError:
                raise ConfigError(f"rule {name!r}: ports {item['ports']!r} are not ports or ranges",
                                  file=file, line=line) from None
        out.append((protocols, ports))
    return out


@dataclass(frozen=True)
class GcpFix(FixContext):
    """The VPC network, each rule's priority by line, and the rule names taken."""

    network: str = "default"
    priorities: dict[int | None, int] = field(default_factory=dict)
    names: tuple[str, ...] = ()


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`gcloud compute firewall-rules create` with a priority that beats the first rule refusing `missing`."""
    if not missing:
        return []
    missing = layer_missing(missing, evaluation, context.published)      # one rule, one name, one priority
    blocker = first_blocking_rule(evaluation, missing)
    fix = ruleset.fix_context(GcpFix)
    priorities = fix.priorities
    priority = DEFAULT_PRIORITY
    lines = []
    if blocker is not None and blocker.origin is not None:
        # Equal priority is not enough: at a tie the deny rule wins.
        priority = min(DEFAULT_PRIORITY, int(priorities.get(blocker.origin.line, DEFAULT_PRIORITY)) - 1)
        lines.append(f"# must win over {blocker.origin.text}")
    taken = set(fix.names)
    name = f"allow-postfinance-feedback-{context.port}"
    suffix = 2
    while name in taken:
        name, suffix = f"allow-postfinance-feedback-{context.port}-{suffix}", suffix + 1
    lines.append(f"gcloud compute firewall-rules create {name} --network {fix.network} "
                 f"--direction INGRESS --priority {max(priority, 0)} --action ALLOW --rules tcp:{context.port} "
                 f"--source-ranges {','.join(fix_cidrs(missing, evaluation, context.published))}")
    return lines
