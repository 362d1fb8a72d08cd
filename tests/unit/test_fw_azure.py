"""Azure NSGs (`az network nsg show`, `az network nsg rule list`), on examples/firewall/azure."""

from __future__ import annotations

import json

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import cloud_azure
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action
from tests.unit.fw_formats_helpers import (
    PUBLISHED,
    admitted,
    analyse,
    blocked,
    deciding_lines,
    detected_formats,
    example,
    missing,
)


def test_nsg_show_priority_order_with_a_deny_before_the_default() -> None:
    ruleset, evaluation, ctx = analyse(cloud_azure, "azure/nsg-show.json")
    assert admitted(evaluation) == ["91.208.214.0/24", "185.139.244.0/22"]
    assert blocked(evaluation) == ["185.8.52.0/22"]
    assert deciding_lines(evaluation, "185.139.244.0/22") == [177]      # AllowPostFinanceFeedback (300)
    assert deciding_lines(evaluation, "185.8.52.0/22") == [224]         # DenyHttpsInternet (400)
    decision, = evaluation.deciding(missing(evaluation))
    assert decision.action is Action.DROP and "priority 400" in decision.origin.text
    # The AzureFrontDoor.Backend tag (priority 350) cannot be resolved: uncertain, not admitting.
    (rule, sources), = evaluation.uncertain
    assert rule.origin.line == 203 and "AzureFrontDoor.Backend" in rule.unsupported[0]
    assert "185.8.52.1" in sources
    assert any("Internet" in note for note in ruleset.notes)
    assert cloud_azure.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1] == (
        "az network nsg rule create --resource-group rg-shop-prod --nsg-name nsg-shop-web "
        "--name AllowPostFinanceFeedback443 --priority 399 --direction Inbound --access Allow --protocol Tcp "
        "--source-address-prefixes 185.8.52.0/22 --destination-port-ranges 443")


def test_nsg_show_port_80_and_outbound_rules_ignored() -> None:
    ruleset, evaluation, _ = analyse(cloud_azure, "azure/nsg-show.json", port=80)
    assert blocked(evaluation) == []
    assert set(deciding_lines(evaluation, "91.208.214.0/24")) == {245}  # AllowHttpInternet, "80-80"
    assert all("Outbound" not in rule.origin.text for rule in ruleset.chains["input"].rules)
    _, other, _ = analyse(cloud_azure, "azure/nsg-show.json", port=8080)
    assert admitted(other) == []                                        # DenyAllInBound (65500)
    assert set(deciding_lines(other, "185.8.52.0/22")) == {55}     # "name": "DenyAllInBound"


def test_rule_list_without_defaults_assumes_them() -> None:
    ruleset, evaluation, ctx = analyse(cloud_azure, "azure/nsg-rule-list.json")
    assert any("default rules" in note for note in ruleset.notes)
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.0/24"]
    assert deciding_lines(evaluation, "91.208.214.0/24") == [12]
    fix = cloud_azure.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1]
    assert "--resource-group rg-shop-prod --nsg-name nsg-shop-web" in fix      # from the rules' ids
    assert "--priority 899" in fix and "--source-address-prefixes 91.208.214.0/24" in fix
    _, mgmt, _ = analyse(cloud_azure, "azure/nsg-rule-list.json", port=8445)
    assert mgmt.admitted.cidrs() == ["203.0.113.0/24", "2001:db8:42::/48"]


def test_defaults_only_deny_everything_and_fix_goes_at_4096() -> None:
    text = json.dumps({"name": "nsg", "resourceGroup": "rg", "securityRules": []})
    ctx = ParseContext(port=443)
    ruleset = cloud_azure.parse(text, "nsg.json", ctx)
    evaluation = evaluate(ruleset, 443)
    assert admitted(evaluation) == []
    assert "--priority 4096" in cloud_azure.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[-1]


def test_arm_properties_shape_and_bad_priority() -> None:
    rule = {"name": "r", "properties": {"priority": 100, "direction": "Inbound", "access": "Allow",
                                        "protocol": "Tcp", "sourceAddressPrefix": "185.8.52.0/22",
                                        "destinationPortRange": "443"}}
    ruleset = cloud_azure.parse(json.dumps({"name": "n", "properties": {"securityRules": [rule]}}), "n.json",
                                ParseContext(port=443))
    assert admitted(evaluate(ruleset, 443)) == ["185.8.52.0/22"]
    rule["properties"]["priority"] = "high"
    with pytest.raises(ConfigError, match="priority"):
        cloud_azure.parse(json.dumps([rule]), "n.json", ParseContext(port=443))


@pytest.mark.parametrize("name", ["nsg-show.json", "nsg-rule-list.json"])
def test_examples_are_detected_as_azure_only(name: str) -> None:
    assert detected_formats(example(f"azure/{name}").read_text(encoding="utf-8")) == ["azure-nsg"]


def test_per_range_calls_give_one_identical_command() -> None:
    ruleset, evaluation, _ = analyse(cloud_azure, "azure/nsg-rule-list.json")
    evaluation_all = evaluate(ruleset, 443)
    ctx = ParseContext(port=443, published=PUBLISHED)
    first = cloud_azure.fix_lines(ruleset, evaluation_all, AddressSet.parse("91.208.214.0/24"), ctx)
    assert first == cloud_azure.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    assert "--priority 899" in first[-1]


def test_service_tags_application_security_groups_and_shape_errors() -> None:
    def inbound(name: str, priority: int, **fields: object) -> dict[str, object]:
        return {"name": name, "priority": priority, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                "destinationPortRanges": ["443", "8443"], **fields}

    rules = [inbound("vnet", 100, sourceAddressPrefix="VirtualNetwork"),
             inbound("cloud", 110, sourceAddressPrefixes=["185.8.52.0/22", "AzureCloud"]),
             inbound("asg", 120, sourceApplicationSecurityGroups=[{"id": "asg-1"}])]
    ruleset = cloud_azure.parse(json.dumps(rules), "n.json", ParseContext(port=443))
    evaluation = evaluate(ruleset, 443)
    assert admitted(evaluation) == ["185.8.52.0/22"]               # the readable part of "cloud"
    assert sorted((rule.note, rule.unsupported) for rule, _ in evaluation.uncertain) == [
        ("asg", ("source application security groups cannot be resolved from this file",)),
        ("cloud", ("service tag 'AzureCloud' cannot be resolved from this file",))]
    assert ruleset.chains["input"].rules[0].origin.text == (
        "vnet (priority 100, allow tcp from VirtualNetwork to port 443,8443)")
    assert evaluate(ruleset, 80).admitted == AddressSet.empty()   # port 80 is not among the ports
    for bad, message in [('"rules"', "expected the JSON"), ("[1]", "must be an object"),
                         (json.dumps([inbound("x", 100, access="Maybe")]), "access must be Allow or Deny"),
                         (json.dumps([inbound("x", 100, destinationPortRanges=["https"])]), "not a port")]:
        with pytest.raises(ConfigError, match=message):
            cloud_azure.parse(bad, "n.json", ParseContext(port=443))
