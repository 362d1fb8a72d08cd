"""AWS security groups (describe-security-groups JSON, Terraform state), on examples/firewall/aws."""

from __future__ import annotations

import json

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import cloud_aws
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
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


def test_describe_two_groups_union_with_a_prefix_list_left_uncertain() -> None:
    ruleset, evaluation, ctx = analyse(cloud_aws, "aws/describe-security-groups.json")
    assert ruleset.chains["input"].policy is Action.DROP
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.0/24"]
    assert deciding_lines(evaluation, "185.139.244.0/22") == [12]
    assert deciding_lines(evaluation, "185.8.52.0/22") == [16]
    assert deciding_lines(evaluation, "91.208.214.0/24") == [None]       # implicit deny
    # The CloudFront prefix list could admit anything: uncertain, never counted as admitting.
    (rule, sources), = evaluation.uncertain
    assert rule.origin.line == 28 and "pl-a3a144ca" in rule.unsupported[0]
    assert "91.208.214.7" in sources
    assert any("union" in note for note in ruleset.notes)
    assert cloud_aws.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == [
        ("aws ec2 authorize-security-group-ingress --group-id sg-0a1b2c3d4e5f60718 --ip-permissions "
        "'[{\"IpProtocol\":\"tcp\",\"FromPort\":443,\"ToPort\":443,\"IpRanges\":[{\"CidrIp\":"
        "\"91.208.214.0/24\",\"Description\":\"PostFinance post-sale feedback\"}]}]'")]


def test_describe_port_80_open_to_world_and_all_protocols_rule() -> None:
    _, evaluation, _ = analyse(cloud_aws, "aws/describe-security-groups.json", port=80)
    assert blocked(evaluation) == []
    assert evaluation.admitted.is_everything_ipv4() and "2001:db8::1" in evaluation.admitted
    # IpProtocol -1 without ports (second group) admits its CIDR on any port.
    _, other_port, _ = analyse(cloud_aws, "aws/describe-security-groups.json", port=8443)
    assert admitted(other_port) == ["185.8.53.0/24"]


def test_terraform_state_legacy_list_plus_module_rule() -> None:
    ruleset, evaluation, ctx = analyse(cloud_aws, "aws/terraform-state.json")
    assert admitted(evaluation) == ["91.208.214.0/24", "185.8.52.254/32", "185.8.53.254/32",
                                    "185.8.54.254/32"]
    assert "185.139.244.0/22" in blocked(evaluation)
    assert deciding_lines(evaluation, "91.208.214.0/24") == [71]
    assert deciding_lines(evaluation, "185.8.53.254/32") == [33]
    (rule, _), = evaluation.uncertain                      # `self = true`
    assert "self" in rule.unsupported[0]
    fixes = cloud_aws.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    assert fixes[0].startswith("# the group is built by Terraform")
    permissions = json.loads(fixes[1].split("--ip-permissions ", 1)[1].strip("'"))
    # Widened to whole networks around the three old single hosts: two CIDRs, not 26 fragments.
    assert [r["CidrIp"] for r in permissions[0]["IpRanges"]] == ["185.8.52.0/22", "185.139.244.0/22"]
    assert "--group-id sg-05e5f5a5b5c5d5e5f" in fixes[1]


def test_protocol_numbers_ranges_and_udp() -> None:
    document = {"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
        {"IpProtocol": "6", "FromPort": 400, "ToPort": 500, "IpRanges": [{"CidrIp": "185.139.244.0/23"}]},
        {"IpProtocol": "udp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "185.8.52.0/22"}]},
        {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535,
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}]}]}
    ruleset = cloud_aws.parse(json.dumps(document), "sg.json", ParseContext(port=443))
    evaluation = evaluate(ruleset, 443)
    assert admitted(evaluation) == ["185.139.244.0/23"]
    assert evaluation.admitted.ipv6().cidrs() == ["2001:db8::/32"]
    assert (PUBLISHED & evaluate(ruleset, 501).admitted).cidrs() == []


def test_broken_json_names_the_line() -> None:
    with pytest.raises(ConfigError) as error:
        cloud_aws.parse('{"SecurityGroups": [\n  {"GroupId": "sg-1",\n  }\n]}', "sg.json", ParseContext(port=443))
    assert error.value.line == 3
    with pytest.raises(ConfigError, match="CidrIp"):
        cloud_aws.parse('{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", '
                        '"FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "185.8.52/22x"}]}]}]}',
                        "sg.json", ParseContext(port=443))


@pytest.mark.parametrize("name", ["describe-security-groups.json", "terraform-state.json"])
def test_examples_are_detected_as_aws_only(name: str) -> None:
    text = example(f"aws/{name}").read_text(encoding="utf-8")
    assert detected_formats(text) == ["aws-sg"]
