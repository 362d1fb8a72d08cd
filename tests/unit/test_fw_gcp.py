"""GCP VPC firewall rules (`gcloud compute firewall-rules list --format=json`), on examples/firewall/gcp."""

from __future__ import annotations

import json

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import cloud_gcp
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

RULES = "gcp/firewall-rules-list.json"


def test_deny_wins_at_equal_priority_and_implied_deny_decides_the_rest() -> None:
    ruleset, evaluation, ctx = analyse(cloud_gcp, RULES)
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/23"]
    assert blocked(evaluation) == ["91.208.214.0/24", "185.139.246.0/23"]
    assert deciding_lines(evaluation, "185.139.246.0/23") == [155]     # deny-legacy-proxy, priority 1000
    assert deciding_lines(evaluation, "185.139.244.0/23") == [38]      # allow-https-postfinance, 1000
    assert deciding_lines(evaluation, "91.208.214.0/24") == [None]     # implied deny ingress
    assert evaluation.deciding(missing(evaluation))[0].action is Action.DROP
    assert any("disabled" in note for note in ruleset.notes)
    assert any("shop-web" in note for note in ruleset.notes)
    assert cloud_gcp.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1] == (
        "gcloud compute firewall-rules create allow-postfinance-feedback-443 --network shop-vpc "
        "--direction INGRESS --priority 999 --action ALLOW --rules tcp:443 "
        "--source-ranges 91.208.214.0/24,185.139.246.0/23")


def test_source_tags_only_match_no_published_source_and_egress_is_ignored() -> None:
    ruleset, evaluation, _ = analyse(cloud_gcp, RULES, port=22)
    # default-allow-ssh (65534) admits everyone not denied before; allow-from-bastion matches no address.
    assert admitted(evaluation) == ["91.208.214.0/24", "185.8.52.0/22", "185.139.244.0/23"]
    assert deciding_lines(evaluation, "91.208.214.0/24") == [129]
    assert not any("egress" in rule.origin.text for rule in ruleset.chains["input"].rules)
    _, smtp, _ = analyse(cloud_gcp, RULES, port=25)
    assert admitted(smtp) == []


def test_tcp_without_ports_is_every_port_and_ranges_of_ports() -> None:
    _, evaluation, _ = analyse(cloud_gcp, RULES, port=8444)
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/23"]
    _, health, _ = analyse(cloud_gcp, RULES, port=31000)
    assert health.admitted.cidrs() == ["10.128.0.0/9", "35.191.0.0/16", "130.211.0.0/22"]


def test_rule_without_source_defaults_to_all_ipv4_and_fix_when_only_implied_deny_blocks() -> None:
    text = json.dumps([{"name": "web", "direction": "INGRESS", "priority": 500, "network": "default",
                        "allowed": [{"IPProtocol": "6", "ports": ["80"]}]}])
    ctx = ParseContext(port=443)
    ruleset = cloud_gcp.parse(text, "fw.json", ctx)
    assert evaluate(ruleset, 80).admitted.is_everything_ipv4()
    evaluation = evaluate(ruleset, 443)
    assert cloud_gcp.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == [
        ("gcloud compute firewall-rules create allow-postfinance-feedback-443 --network default --direction "
        "INGRESS --priority 1000 --action ALLOW --rules tcp:443 "
        "--source-ranges 91.208.214.0/24,185.8.52.0/22,185.139.244.0/22")]


def test_bad_source_range_names_the_line() -> None:
    text = '[\n  {"name": "x",\n   "direction": "INGRESS",\n   "sourceRanges": ["185.8.52.0/99"],\n' \
           '   "allowed": [{"IPProtocol": "tcp"}]}\n]'
    with pytest.raises(ConfigError) as error:
        cloud_gcp.parse(text, "fw.json", ParseContext(port=443))
    assert error.value.line == 4


def test_example_is_detected_as_gcp_only() -> None:
    assert detected_formats(example(RULES).read_text(encoding="utf-8")) == ["gcp-firewall"]


def test_per_range_calls_give_one_identical_command() -> None:
    # The analysis asks range by range and merges identical lines: a GCP rule has a name and a
    # priority, so every call must return the same complete command (not two rules with one name).
    ruleset, evaluation, _ = analyse(cloud_gcp, RULES)
    ctx = ParseContext(port=443, published=PUBLISHED)
    calls = [cloud_gcp.fix_lines(ruleset, evaluation, AddressSet.parse(cidr) - evaluation.admitted, ctx)
             for cidr in ("91.208.214.0/24", "185.139.244.0/22")]
    assert calls[0] == calls[1]
    assert calls[0][-1].endswith("--priority 999 --action ALLOW --rules tcp:443 "
                                 "--source-ranges 91.208.214.0/24,185.139.244.0/22")


def test_items_document_several_networks_and_shape_errors() -> None:
    # `{"items": [...]}` (the REST list), rules of two networks, a rule's text as the report names it.
    text = json.dumps({"items": [
        {"name": "a", "direction": "INGRESS", "network": "global/networks/one", "priority": 10,
         "sourceRanges": ["185.8.52.0/22"], "allowed": [{"IPProtocol": "tcp", "ports": ["443", "8000-8080"]}]},
        {"name": "b", "direction": "INGRESS", "network": "global/networks/two",
         "sourceRanges": ["185.8.52.0/24"], "denied": [{"IPProtocol": "all"}]}]})
    ruleset = cloud_gcp.parse(text, "fw.json", ParseContext(port=443))
    assert any("several networks (one, two)" in note for note in ruleset.notes)
    assert [rule.origin.text for rule in ruleset.chains["input"].rules] == [
        "a (priority 10, allow tcp:443,8000:8080 from 185.8.52.0/22)", "b (priority 1000, deny all from 185.8.52.0/24)"]
    assert admitted(evaluate(ruleset, 443)) == ["185.8.52.0/22"]        # priority 10 comes first
    for bad, message in [('"rules"', "expected the JSON"), ("[1]", "must be an object"),
                         ('[{"name": "x", "priority": "high", "allowed": []}]', "priority must be a number"),
                         ('[{"name": "x", "allowed": ["tcp"]}]', "entries must be objects"),
                         ('[{"name": "x", "allowed": [{"IPProtocol": "tcp", "ports": ["http"]}]}]', "not ports")]:
        with pytest.raises(ConfigError, match=message):
            cloud_gcp.parse(bad, "fw.json", ParseContext(port=443))
