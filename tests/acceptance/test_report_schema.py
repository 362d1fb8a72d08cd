"""The committed JSON Schema of `--format json` (docs/report.schema.json) against real reports.

Every command's document is rendered from a real run (demo's loopback shops, a probe and a check of
loopback servers, a firewall file, an access log) or from the reporters' sample reports, and validated
with `jsonschema` (draft 2020-12). The schema is strict where a shape is fixed, so a renamed or retyped
field fails here before it reaches a consumer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from feedback_check.platform import load_platform
from feedback_check.report import Report
from feedback_check.reporters import render
from feedback_check.runner import platform_summary
from tests.acceptance.test_cli_check import EXAMPLES, PASSPHRASE, assert_no_traceback, run_cli, write_agency
from tests.servers.certs import TestPki
from tests.servers.http_servers import LoopbackServer, ShaOutVerifier, answer, app
from tests.unit.test_reporters_samples import SAMPLES, critical_report

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def problems(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(document)]


def document_of(stdout: str) -> Any:
    assert stdout.count("\n") == 1, "one document on one line"
    return json.loads(stdout)


def test_demo_document_matches_the_schema(validator: jsonschema.protocols.Validator) -> None:
    result = run_cli("demo", "--format", "json", timeout=120)
    assert_no_traceback(result)
    document = document_of(result.stdout)
    assert document["command"] == "demo" and document["targets"] and document["firewall"]
    assert problems(validator, document) == []


def test_probe_document_of_an_https_shop_matches_the_schema(validator: jsonschema.protocols.Validator,
                                                            pki: TestPki) -> None:
    with LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE)}), tls=pki.leaf("valid").server_context()) as server:
        result = run_cli("probe", server.url("/fb"), "--lab", "--passphrase-env", "PF_SECRET", "--format", "json",
                         "--ca-bundle", str(pki.ca_bundle), env={"PF_SECRET": PASSPHRASE})
    assert_no_traceback(result)
    document = document_of(result.stdout)
    address = document["targets"][0]["addresses"][0]
    assert address["tls"]["certificates"] and address["http"]["status"] == "answered"
    assert problems(validator, document) == []


def test_check_document_with_state_changes_matches_the_schema(validator: jsonschema.protocols.Validator,
                                                              tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    routes = {"/fb": answer(200)}
    env = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}
    with LoopbackServer(app(routes)) as server:
        profile = write_agency(tmp_path, {"shop": server.url("/fb")})
        run_cli("check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json", env=env)
        routes["/fb"] = answer(503)
        result = run_cli("check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json",
                         env=env)
    assert_no_traceback(result)
    document = document_of(result.stdout)
    assert document["changes"]["new"]
    assert problems(validator, document) == []


def test_firewall_document_matches_the_schema(validator: jsonschema.protocols.Validator) -> None:
    result = run_cli("firewall", str(EXAMPLES / "firewall" / "iptables" / "debian-rules.v4"), "--format", "json")
    assert_no_traceback(result)
    document = document_of(result.stdout)
    assert document["command"] == "firewall" and document["firewall"][0]["layers"]
    assert problems(validator, document) == []


def test_logs_document_matches_the_schema(validator: jsonschema.protocols.Validator) -> None:
    result = run_cli("logs", str(EXAMPLES / "logs" / "access.log"), "--format", "json")
    assert_no_traceback(result)
    document = document_of(result.stdout)
    assert document["command"] == "logs" and document["logs"]
    assert problems(validator, document) == []


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_sample_reports_match_the_schema(validator: jsonschema.protocols.Validator, sample: str) -> None:
    report = SAMPLES[sample]()
    # The samples carry no platform block; every real run has the loaded profile's.
    report = with_platform(report)
    assert problems(validator, json.loads(render(report, "json"))) == []


def with_platform(report: Report) -> Report:
    return replace(report, platform=platform_summary(load_platform()))


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "top-level field renamed": lambda d: d.update(verdicts=d.pop("verdict")),
    "verdict outside the four": lambda d: d.update(verdict="FAILED"),
    "finding severity retyped": lambda d: d["findings"][0].update(severity=2),
    "finding field renamed": lambda d: d["findings"][0].update(evidences=d["findings"][0].pop("evidence")),
    "target timing retyped": lambda d: d["targets"][0]["timings"].update(total="0.04"),
    "http field renamed": lambda d: d["targets"][0]["addresses"][0]["http"].update(
        code=d["targets"][0]["addresses"][0]["http"].pop("status_code")),
    "firewall count retyped": lambda d: d["firewall"][0].update(blocked_addresses="1024"),
    "range field renamed": lambda d: d["firewall"][0]["ranges"][0].update(
        fix=d["firewall"][0]["ranges"][0].pop("fix_lines")),
    "platform ranges flattened": lambda d: d["platform"].update(ranges=d["platform"]["ranges"]["cidrs"]),
    "schema_version bumped silently": lambda d: d.update(schema_version=2),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_schema_catches_a_renamed_or_retyped_field(validator: jsonschema.protocols.Validator,
                                                       mutation: str) -> None:
    report = with_platform(critical_report())
    document = json.loads(render(report, "json"))
    assert problems(validator, document) == []
    broken = copy.deepcopy(document)
    MUTATIONS[mutation](broken)
    assert problems(validator, broken), f"{mutation}: accepted by the schema"
