"""--state FILE: transitions between runs, and every way a state file can be unusable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.report import Report, ShopSummary
from feedback_check.reporters import render
from feedback_check.state import STATE_MARKER, apply_state, load_state
from tests.unit.test_reporters_samples import (
    NOW,
    critical_report,
    finding,
    firewall_blocking,
    healthy_report,
    ok_target,
    target,
)

URL = "https://shop-ch.example/postfinance/feedback"


def run(*targets, shops=None, firewalls=(), general=(), started=NOW) -> Report:  # type: ignore[no-untyped-def]
    findings = tuple(f for t in targets for f in t.findings) + tuple(f for fw in firewalls for f in fw.findings) \
        + tuple(general)
    shop_names = sorted({t.shop for t in targets})
    default_shops = (ShopSummary(n, tuple(f for t in targets if t.shop == n for f in t.findings)) for n in shop_names)
    return Report(command="check", findings=findings, targets=tuple(targets), firewalls=tuple(firewalls),
                  shops=tuple(shops if shops is not None else default_shops), started=started)


def failing(shop: str = "shop-ch", role: str = "accepted", code: str = "http.server_error"):  # type: ignore[no-untyped-def]
    return target(shop, role, URL, [finding(code, shop, role, URL)])


def test_first_run_writes_state_and_reports_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    out = apply_state(run(failing()), path)
    assert out.changes is not None
    assert out.changes["first_run"] is True
    assert out.changes["new"] == [] and out.changes["resolved"] == [] and out.changes["verdict_changes"] == []
    data = json.loads(path.read_text())
    assert data["tool"] == STATE_MARKER
    entry = next(e for e in data["entries"] if e["role"] == "accepted")
    assert entry == {"shop": "shop-ch", "role": "accepted", "url": URL, "verdict": "CRITICAL",
                     "findings": {"http.server_error": "critical"}}


def test_same_result_twice_is_no_change(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(failing()), path)
    out = apply_state(run(failing()), path)
    assert out.changes is not None
    assert out.changes["first_run"] is False
    assert out.changes["previous_run"] == NOW.isoformat()
    assert (out.changes["new"], out.changes["resolved"], out.changes["verdict_changes"]) == ([], [], [])


def test_new_resolved_and_verdict_change(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(ok_target("shop-ch", "accepted", URL), failing(role="rejected")), path)
    out = apply_state(run(failing(), ok_target("shop-ch", "rejected", URL)), path)
    changes = out.changes
    assert changes is not None
    assert changes["new"] == [{"shop": "shop-ch", "role": "accepted", "url": URL, "code": "http.server_error",
                               "severity": "critical"}]
    assert changes["resolved"] == [{"shop": "shop-ch", "role": "rejected", "url": URL,
                                    "code": "http.server_error", "severity": "critical"}]
    assert {(c["role"], c["from"], c["to"]) for c in changes["verdict_changes"]} == {
        ("accepted", "OK", "CRITICAL"), ("rejected", "CRITICAL", "OK")}


def test_info_findings_are_not_remembered(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(ok_target("shop-ch", "accepted", URL)), path)
    data = json.loads(path.read_text())
    assert all(e["findings"] == {} for e in data["entries"])


def test_a_url_left_out_of_this_run_keeps_its_memory(tmp_path: Path) -> None:
    """`--shop other` must not mark shop-ch's findings as resolved."""
    path = tmp_path / "state.json"
    apply_state(run(failing("shop-ch"), ok_target("shop-de")), path)
    out = apply_state(run(ok_target("shop-de")), path)
    assert out.changes is not None and out.changes["resolved"] == []
    out = apply_state(run(ok_target("shop-ch", "accepted", URL)), path)
    assert out.changes is not None
    assert [(c["shop"], c["code"]) for c in out.changes["resolved"]] == [("shop-ch", "http.server_error")]


def test_shop_that_could_not_be_checked_changes_to_unknown_without_resolving(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(failing("shop-ch")), path)
    out = apply_state(run(shops=[ShopSummary("shop-ch", (), error="run deadline reached")]), path)
    assert out.changes is not None
    assert out.changes["resolved"] == []
    assert out.changes["verdict_changes"] == [{"shop": "shop-ch", "role": "shop", "url": "", "from": "CRITICAL",
                                               "to": "UNKNOWN"}]


def test_firewall_and_profile_findings_are_tracked(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(ok_target("shop-ch")), path)
    from feedback_check.findings import make_finding
    out = apply_state(run(ok_target("shop-ch"), firewalls=[firewall_blocking("shop-ch")],
                          general=[make_finding("ranges.stale", "config/postfinance.yaml")]), path)
    assert out.changes is not None
    new = {(c["role"], c["url"], c["code"]) for c in out.changes["new"]}
    assert new == {("firewall", "port 443", "firewall.range_blocked"), ("profile", "", "ranges.stale")}


def test_changes_appear_in_text_and_json(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(healthy_report(), path)
    report = critical_report()
    out = apply_state(report, path)
    text = render(out, "text")
    assert "Changes since the last run" in text
    assert "NEW" in text and "http.server_error" in text
    document = json.loads(render(out, "json"))
    assert document["changes"]["new"]
    assert "Changes since the last run: " in render(out, "nagios")


def test_state_never_holds_finding_texts_or_evidence(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    secret_like = "Mysecretsig1875!?"
    t = target("shop-ch", "accepted", URL, [finding("http.forbidden", "shop-ch", "accepted", URL,
                                                    detail=secret_like, evidence={"body": secret_like})])
    apply_state(run(t), path)
    assert secret_like not in path.read_text()


def test_written_atomically_and_no_temporary_file_left(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(failing()), path)
    apply_state(run(failing()), path)
    # The lock file stays (removing it would let a third run lock a different file than a waiting one).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]


@pytest.mark.parametrize("content", ["", "   \n"])
def test_empty_file_is_a_first_run(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    out = apply_state(run(failing()), path)
    assert out.changes is not None and out.changes["first_run"] is True


@pytest.mark.parametrize("content", ["version: 1\nshops: []\n", '{"entries": []}', "[1, 2]", '"x"'])
def test_a_file_that_is_not_a_state_file_is_refused_and_left_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "feedback-check.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        apply_state(run(failing()), path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "not a feedback-check state file" in message
    assert path.read_text() == content


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a feedback-check state file"):
        apply_state(run(failing()), path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"tool": STATE_MARKER, "schema_version": 99, "entries": []}))
    with pytest.raises(ConfigError, match="newer"):
        apply_state(run(failing()), path)


def test_damaged_entries_are_dropped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    apply_state(run(failing()), path)
    data = json.loads(path.read_text())
    good = next(e for e in data["entries"] if e["role"] == "accepted")
    data["entries"] = [good, {"shop": 1}, "nonsense", {**good, "role": "rejected", "verdict": "BROKEN"},
                       {**good, "role": "x", "findings": {"c": "catastrophic"}}]
    path.write_text(json.dumps(data))
    assert load_state(path).damaged == 4
    out = apply_state(run(failing()), path)
    assert any("4 damaged entries" in n for n in out.notes)
    assert out.changes is not None and out.changes["first_run"] is False and out.changes["new"] == []
    assert load_state(path).damaged == 0


def test_directory_instead_of_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        apply_state(run(failing()), tmp_path)


def test_unreadable_path_is_one_line_error(tmp_path: Path) -> None:
    # A path below a regular file cannot be read by anyone, root included (permissions would not stop root).
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(ConfigError, match="cannot (read|write) state file") as info:
        apply_state(run(failing()), tmp_path / "plain-file" / "state.json")
    assert "\n" not in str(info.value)


def test_unwritable_folder_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "state.json"
    with pytest.raises(ConfigError, match="cannot write state file") as info:
        apply_state(run(failing()), path)
    assert "\n" not in str(info.value)


def test_report_is_otherwise_unchanged(tmp_path: Path) -> None:
    report = critical_report()
    out = apply_state(report, tmp_path / "s.json")
    assert dataclasses.replace(out, changes=None) == report
