"""AWS security groups: `aws ec2 describe-security-groups` JSON, and Terraform state/plan JSON
(`terraform show -json`) holding aws_security_group, aws_security_group_rule or
aws_vpc_security_group_ingress_rule resources.

Security groups only allow; what no rule allows is refused. Several groups attached to one interface
admit the union of their rules, so every group in the file goes into one chain. Rules that name another
security group or a managed prefix list admit addresses this file does not show: they are unsupported
(the verdict is uncertain where they could admit), never counted as admitting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from feedback_check.errors import ConfigError
from feedback_check.firewall._textconf import (
    checks_json_shape,
    fix_cidrs,
    load_json_document,
    parse_addresses,
    single_chain,
)
from feedback_check.firewall.evaluate import LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, FixContext, Origin, PortSet, Rule, Ruleset
from feedback_check.yamlfile import line_of

NAME = "aws-sg"

#: IpProtocol values (names or protocol numbers) that carry TCP; "-1" is every protocol.
_TCP = {"tcp", "6"}
_ALL = {"-1", "all"}


def detect(text: str) -> bool:
    """describe-security-groups output, or Terraform JSON with AWS security-group resources."""
    head = text[:200000].lstrip()
    if not head.startswith(("{", "[")):
        return False
    return ('"SecurityGroups"' in head or '"IpPermissions"' in head
            or bool(re.search(r'"type"\s*:\s*"aws_(vpc_)?security_group(_rule|_ingress_rule)?"', head)))


@checks_json_shape(NAME)
def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """One chain of ACCEPT rules (every group's ingress permissions), policy DROP."""
    document = load_json_document(text, file)
    rules: list[Rule] = []
    groups: list[str] = []
    notes: list[str] = []
    if isinstance(document, dict) and ("values" in document or "planned_values" in document):
        source = "terraform"
        for resource in _terraform_resources(document):
            _terraform_rules(resource, file, rules, groups)
    else:
        source = "describe"
        for group in _describe_groups(document, file):
            group_id = str(group.get("GroupId") or group.get("GroupName") or "")
            groups.append(group_id)
            permissions = group.get("IpPermissions", [])
            if not isinstance(permissions, list):
                raise ConfigError("IpPermissions must be a list", file=file, line=line_of(group, "IpPermissions"))
            for permission in permissions:
                rules.extend(_describe_rules(permission, group_id, file))
    if not groups:
        raise ConfigError("no security group found (expected SecurityGroups[] or Terraform "
                          "aws_security_group resources)", file=file)
    if len(groups) > 1:
        notes.append(f"{len(groups)} security groups read ({', '.join(groups)}): an interface with several "
                     "groups admits the union of their rules.")
    notes.append("Security groups allow only: a source no rule allows is refused.")
    return single_chain(NAME, file, rules, Action.DROP,
                        policy_origin=Origin(file, None, "implicit deny of security groups"),
                        notes=notes, fix=AwsFix(tuple(groups), source))


def _describe_groups(document: Any, file: str) -> list[dict[str, Any]]:
    if isinstance(document, dict) and "SecurityGroups" in document:
        groups = document["SecurityGroups"]
    elif isinstance(document, dict) and "IpPermissions" in document:
        groups = [document]                                   # one group, e.g. `--query SecurityGroups[0]`
    else:
        groups = document
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ConfigError("expected the JSON of `aws ec2 describe-security-groups`", file=file,
                          line=line_of(document, "SecurityGroups"))
    return groups


def _protocol(value: Any) -> tuple[frozenset[str] | None, bool]:
    """(protocols, known) for an IpProtocol / protocol value."""
    text = str(value).lower()
    if text in _ALL:
        return None, True
    if text in _TCP:
        return frozenset({"tcp"}), True
    return frozenset({text}), True


def _ports(low: Any, high: Any, protocols: frozenset[str] | None) -> PortSet | None:
    if protocols is None or low in (None, -1) or high in (None, -1):
        return None
    low, high = int(low), int(high)
    if low == 0 and high in (0, 65535):
        return None                      # Terraform writes 0/0 with protocol -1; 0-65535 is every port
    return PortSet.of((low, high))


def _describe_rules(permission: Any, group_id: str, file: str) -> Iterator[Rule]:
    if not isinstance(permission, dict):
        raise ConfigError("an IpPermissions entry must be an object", file=file, line=line_of(permission, 0))
    protocols, _ = _protocol(permission.get("IpProtocol", "-1"))
    ports = _ports(permission.get("FromPort"), permission.get("ToPort"), protocols)
    for key, address_key in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")):
        entries = permission.get(key) or []
        for index, entry in enumerate(entries):
            cidr = str(entry.get(address_key, "")) if isinstance(entry, dict) else ""
            description = entry.get("Description", "") if isinstance(entry, dict) else ""
            line = line_of(entry, address_key) if isinstance(entry, dict) else line_of(entries, index)
            origin = Origin(file, line, _summary(group_id, permission, cidr, description))
            addresses, bad = parse_addresses([cidr])
            if bad:
                raise ConfigError(f"{address_key} {cidr!r} is not a CIDR", file=file, line=origin.line)
            yield Rule(Action.ACCEPT, origin, source=addresses, protocols=protocols, ports=ports,
                       note=str(description))
    for key, what in (("UserIdGroupPairs", "GroupId"), ("PrefixListIds", "PrefixListId")):
        entries = permission.get(key) or []
        for index, entry in enumerate(entries):
            name = str(entry.get(what, "?")) if isinstance(entry, dict) else "?"
            line = line_of(entry, what) if isinstance(entry, dict) else line_of(entries, index)
            origin = Origin(file, line, _summary(group_id, permission, name, ""))
            yield _unresolvable(origin, f"{key} {name}: its addresses are not in this file", protocols, ports)


def _unresolvable(origin: Origin, why: str, protocols: frozenset[str] | None, ports: PortSet | None) -> Rule:
    """A rule that may admit sources the file cannot show: uncertain, never counted as admitting."""
    return Rule(Action.CONTINUE, origin, protocols=protocols, ports=ports, unsupported=(why,))


def _summary(group_id: str, permission: dict[str, Any], source: str, description: str) -> str:
    protocol = permission.get("IpProtocol", "-1")
    low, high = permission.get("FromPort"), permission.get("ToPort")
    ports = "" if low in (None, -1) else f" {low}" if low == high else f" {low}-{high}"
    text = f"{group_id} ingress {protocol}{ports} from {source}"
    return text + (f" ({description})" if description else "")


# -- Terraform ------------------------------------------------------------------------------------------


def _terraform_resources(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource of the root module and its child modules, in state or plan JSON."""
    root = document.get("values") or document.get("planned_values") or {}
    modules = [root.get("root_module", {})] if isinstance(root, dict) else []
    while modules:
        module = modules.pop(0)
        if not isinstance(module, dict):
            continue
        yield from (r for r in module.get("resources", []) if isinstance(r, dict))
        modules.extend(module.get("child_modules", []))


def _terraform_rules(resource: dict[str, Any], file: str, rules: list[Rule], groups: list[str]) -> None:
    kind = resource.get("type")
    values = resource.get("values") or {}
    address = str(resource.get("address", kind))
    if kind == "aws_security_group":
        groups.append(str(values.get("id") or address))
        for block in values.get("ingress") or []:
            origin_line = line_of(block, "cidr_blocks")
            rules.extend(_terraform_block(block, str(values.get("id") or address), file, origin_line))
    elif kind == "aws_security_group_rule" and values.get("type") == "ingress":
        group = str(values.get("security_group_id") or address)
        if group not in groups:
            groups.append(group)
        rules.extend(_terraform_block(values, group, file, line_of(resource, "values")))
    elif kind == "aws_vpc_security_group_ingress_rule":
        group = str(values.get("security_group_id") or address)
        if group not in groups:
            groups.append(group)
        block = {"protocol": values.get("ip_protocol", "-1"), "from_port": values.get("from_port"),
                 "to_port": values.get("to_port"), "description": values.get("description") or "",
                 "cidr_blocks": [values["cidr_ipv4"]] if values.get("cidr_ipv4") else [],
                 "ipv6_cidr_blocks": [values["cidr_ipv6"]] if values.get("cidr_ipv6") else [],
                 "prefix_list_ids": [values["prefix_list_id"]] if values.get("prefix_list_id") else [],
                 "security_groups": ([values["referenced_security_group_id"]]
                                     if values.get("referenced_security_group_id") else [])}
        rules.extend(_terraform_block(block, group, file, line_of(resource, "values")))


def _terraform_block(block: dict[str, Any], group: str, file: str, line: int | None) -> Iterator[Rule]:
    protocols, _ = _protocol(block.get("protocol", "-1"))
    ports = _ports(block.get("from_port"), block.get("to_port"), protocols)
    description = str(block.get("description") or "")
    permission = {"IpProtocol": block.get("protocol", "-1"), "FromPort": block.get("from_port"),
                  "ToPort": block.get("to_port")}
    cidrs = list(block.get("cidr_blocks") or []) + list(block.get("ipv6_cidr_blocks") or [])
    for cidr in cidrs:
        addresses, bad = parse_addresses([str(cidr)])
        if bad:
            raise ConfigError(f"cidr {cidr!r} is not a CIDR", file=file, line=line)
        origin = Origin(file, line, _summary(group, permission, str(cidr), description))
        yield Rule(Action.ACCEPT, origin, source=addresses, protocols=protocols, ports=ports, note=description)
    unresolved = [str(x) for x in (block.get("security_groups") or []) + (block.get("prefix_list_ids") or [])]
    if block.get("self"):
        unresolved.append("self")
    for name in unresolved:
        origin = Origin(file, line, _summary(group, permission, name, description))
        yield _unresolvable(origin, f"{name}: its addresses are not in this file", protocols, ports)


# -- fixes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsFix(FixContext):
    """The security groups read (the fix goes to the first) and where they came from (`terraform`)."""

    groups: tuple[str, ...] = ()
    source: str = ""


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """One `aws ec2 authorize-security-group-ingress` call admitting `missing` on the feedback port."""
    if not missing:
        return []
    fix = ruleset.fix_context(AwsFix)
    group = fix.groups[0] if fix.groups else "<security-group-id>"
    description = "PostFinance post-sale feedback"
    cidrs = fix_cidrs(missing, evaluation, context.published)
    ranges4 = [{"CidrIp": c, "Description": description} for c in cidrs if ":" not in c]
    ranges6 = [{"CidrIpv6": c, "Description": description} for c in cidrs if ":" in c]
    permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": context.port, "ToPort": context.port}
    if ranges4:
        permission["IpRanges"] = ranges4
    if ranges6:
        permission["Ipv6Ranges"] = ranges6
    lines = [(f"aws ec2 authorize-security-group-ingress --group-id {group} "
             f"--ip-permissions '{json.dumps([permission], separators=(',', ':'))}'")]
    if fix.source == "terraform":
        lines.insert(0, "# the group is built by Terraform: add the same ingress to its configuration too, "
                        "or the next `terraform apply` removes it")
    return lines
