"""Azure network security groups: `az network nsg show` JSON (securityRules and defaultSecurityRules),
`az network nsg rule list` JSON (a list of rules), and ARM/REST shapes where a rule's fields sit
under `properties`.

Inbound rules are evaluated by priority, lowest number first; the first match allows or denies.
When the file lacks the default rules, Azure's defaults are added (DenyAllInBound at 65500 decides).

Service tags: `*`, `Any` and `Internet` match every address: PostFinance's published ranges are public
Internet addresses, so `Internet` contains them (Azure's tag excludes only the virtual network's own
space, which the published ranges are never in). `VirtualNetwork` and `AzureLoadBalancer` match no
published source, so such rules are kept but match nothing here. Any other tag (`AzureCloud`, regional
tags, ...) and application security groups cannot be resolved from the file: unsupported.
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

NAME = "azure-nsg"

EVERY_ADDRESS_TAGS = {"*", "any", "internet"}
NO_PUBLISHED_SOURCE_TAGS = {"virtualnetwork", "azureloadbalancer"}
#: Azure's default inbound rules, used when the file does not list them.
DEFAULT_INBOUND = (
    ("AllowVnetInBound", 65000, "Allow", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Allow", "AzureLoadBalancer"),
    ("DenyAllInBound", 65500, "Deny", "*"),
)
#: Priorities a user-defined rule may have.
USER_PRIORITIES = (100, 4096)


def detect(text: str) -> bool:
    """NSG JSON: securityRules, or rules with priority/direction/access fields."""
    head = text[:200000].lstrip()
    if not head.startswith(("{", "[")):
        return False
    if '"securityRules"' in head or '"defaultSecurityRules"' in head:
        return True
    return all(re.search(rf'"{key}"\s*:', head) for key in ("priority", "direction", "access",
                                                             "sourceAddressPrefix"))


@checks_json_shape(NAME)
def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """Inbound rules sorted by priority into one first-match chain."""
    document = load_json_document(text, file)
    nsg: dict[str, Any] = {}
    rules_json: list[Any]
    defaults_json: list[Any] = []
    if isinstance(document, list):
        rules_json = document
    elif isinstance(document, dict):
        nsg = document
        nested = document.get("properties")
        properties: dict[str, Any] = nested if isinstance(nested, dict) else document
        rules_json = properties.get("securityRules") or []
        defaults_json = properties.get("defaultSecurityRules") or []
    else:
        raise ConfigError("expected the JSON of `az network nsg show` or `az network nsg rule list`", file=file)
    notes: list[str] = []
    entries: list[tuple[int, Rule]] = []
    for entry in list(rules_json) + list(defaults_json):
        entries.extend(_rules(entry, file))
    if not any(priority == 65500 for priority, _ in entries):
        notes.append("The file does not list Azure's default rules: AllowVnetInBound, "
                     "AllowAzureLoadBalancerInBound and DenyAllInBound (65500) are assumed.")
        for name, priority, access, tag in DEFAULT_INBOUND:
            entry = {"name": name, "priority": priority, "access": access, "direction": "Inbound",
                     "protocol": "*", "sourceAddressPrefix": tag, "destinationPortRange": "*"}
            entries.extend(_rules(entry, file, default=True))
    entries.sort(key=lambda item: item[0])
    if any("internet" in (p.lower() for p in _list(e, "sourceAddressPrefix", "sourceAddressPrefixes"))
           for e in rules_json if isinstance(e, dict)):
        notes.append("The service tag Internet is read as every address: PostFinance's published ranges are "
                     "public Internet addresses.")
    priorities = {origin_priority for origin_priority, _ in entries}
    rules = [rule for _, rule in entries]
    return single_chain(NAME, file, rules, Action.DROP, policy_origin=Origin(file, None, "no rule matched"),
                        notes=notes, fix=AzureFix(*_nsg_names(nsg, rules_json), tuple(sorted(priorities)),
                                                     {r.origin.line: p for p, r in entries}))


def _nsg_names(nsg: dict[str, Any], rules: list[Any]) -> tuple[str, str]:
    """Resource group and NSG name for the fix, from the NSG or from a rule's resource id."""
    names = {"resource_group": str(nsg.get("resourceGroup") or ""), "nsg": str(nsg.get("name") or "")}
    ids = [str(nsg.get("id", ""))] + [str(r.get("id", "")) for r in rules if isinstance(r, dict)]
    for resource_id in ids:
        match = re.search(r"/resourceGroups/([^/]+)/providers/Microsoft\.Network/networkSecurityGroups/([^/]+)",
                          resource_id, re.IGNORECASE)
        if match:
            names["resource_group"] = names["resource_group"] or match.group(1)
            names["nsg"] = names["nsg"] or match.group(2)
            break
    return names["resource_group"] or "RESOURCE_GROUP", names["nsg"] or "NSG_NAME"


def _field(entry: dict[str, Any], key: str) -> Any:
    properties = entry.get("properties")
    if isinstance(properties, dict) and key in properties:
        return properties[key]
    return entry.get(key)


def _rules(entry: Any, file: str, default: bool = False) -> list[tuple[int, Rule]]:
    """The rule (with its priority) of one inbound security rule; an unresolvable tag adds a flagged rule
    after the part that can be read. Outbound rules give nothing."""
    if not isinstance(entry, dict):
        raise ConfigError("a security rule must be an object", file=file)
    name = str(entry.get("name", "?"))
    line = None if default else line_of(entry, "name")
    if str(_field(entry, "direction") or "").lower() != "inbound":
        return []
    try:
        priority = int(_field(entry, "priority"))
    except (TypeError, ValueError):
        raise ConfigError(f"rule {name!r}: priority must be a number", file=file, line=line) from None
    access = str(_field(entry, "access") or "").lower()
    if access not in ("allow", "deny"):
        raise ConfigError(f"rule {name!r}: access must be Allow or Deny", file=file, line=line)
    protocol = str(_field(entry, "protocol") or "*").lower()
    protocols = None if protocol in ("*", "any") else frozenset({protocol})
    ports_text = _list(entry, "destinationPortRange", "destinationPortRanges")
    sources = _list(entry, "sourceAddressPrefix", "sourceAddressPrefixes")
    origin = Origin(file, line, f"{name} (priority {priority}, {access} {protocol} from {','.join(sources) or '?'} "
                                f"to port {','.join(ports_text) or '*'})")
    ports = _destination_ports(ports_text, name, file, line)
    source, unsupported = _source(sources)
    if _field(entry, "sourceApplicationSecurityGroups"):
        unsupported.append("source application security groups cannot be resolved from this file")
    action = Action.ACCEPT if access == "allow" else Action.DROP
    out = [(priority, Rule(action, origin, source=source, protocols=protocols, ports=ports, note=name))]
    if unsupported:
        # What the tag stands for is unknown: the rule may decide anything it reaches, so it is only flagged.
        out.append((priority, Rule(Action.CONTINUE, origin, protocols=protocols, ports=ports,
                                   unsupported=tuple(unsupported), note=name)))
    return out


def _destination_ports(ports_text: list[str], name: str, file: str, line: int | None) -> PortSet | None:
    """The destination ports (None: every port, `*`)."""
    if not ports_text or "*" in ports_text:
        return None
    try:
        return PortSet.of(*[r for spec in ports_text for r in port_ranges(spec)])
    except ValueError:
        raise ConfigError(f"rule {name!r}: destination port {ports_text!r} is not a port or range",
                          file=file, line=line) from None


def _source(prefixes: list[str]) -> tuple[AddressSet, list[str]]:
    """The addresses the source prefixes and service tags stand for, and why a part of them cannot be
    known from the file (a tag other than those that match every address or no published source)."""
    source = AddressSet.empty()
    unsupported: list[str] = []
    for prefix in prefixes:
        tag = prefix.lower()
        if tag in EVERY_ADDRESS_TAGS:
            source = AddressSet.everything()
        elif tag not in NO_PUBLISHED_SOURCE_TAGS:
            addresses, bad = parse_addresses([prefix])
            source = source | addresses
            if bad:
                unsupported.append(f"service tag {prefix!r} cannot be resolved from this file")
    return source, unsupported


def _list(entry: dict[str, Any], single: str, plural: str) -> list[str]:
    values = [str(v) for v in (_field(entry, plural) or [])]
    one = _field(entry, single)
    if one not in (None, ""):
        values.insert(0, str(one))
    return values


@dataclass(frozen=True)
class AzureFix(FixContext):
    """The NSG (resource group, name), the priorities in use and the priority of each rule by line."""

    resource_group: str = "RESOURCE_GROUP"
    nsg: str = "NSG_NAME"
    priorities: tuple[int, ...] = ()
    rule_priority: dict[int | None, int] = field(default_factory=dict)


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`az network nsg rule create` with a free priority below the first rule that refuses `missing`."""
    if not missing:
        return []
    missing = layer_missing(missing, evaluation, context.published)      # one rule, one name, one priority
    blocker = first_blocking_rule(evaluation, missing)
    fix = ruleset.fix_context(AzureFix)
    by_line = fix.rule_priority
    used_set = set(fix.priorities)
    limit = USER_PRIORITIES[1] + 1
    if blocker is not None and blocker.origin is not None and blocker.origin.line in by_line:
        limit = min(limit, by_line[blocker.origin.line])
    elif blocker is not None and blocker.origin is not None and blocker.origin.line is None:
        limit = min(limit, 65500)
    free = [p for p in range(limit - 1, USER_PRIORITIES[0] - 1, -1) if p not in used_set]
    lines = []
    if blocker is not None and blocker.origin is not None:
        lines.append(f"# must come before {blocker.origin.text}")
    if not free:
        lines.append(f"# no free priority between {USER_PRIORITIES[0]} and {limit - 1}: renumber the rules first")
        return lines
    lines.append(
        f"az network nsg rule create --resource-group {fix.resource_group} "
        f"--nsg-name {fix.nsg} --name AllowPostFinanceFeedback{context.port} "
        f"--priority {free[0]} --direction Inbound --access Allow --protocol Tcp "
        f"--source-address-prefixes {' '.join(fix_cidrs(missing, evaluation, context.published))} "
        f"--destination-port-ranges {context.port}")
    return lines
