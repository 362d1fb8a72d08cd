"""`check` end to end (a subprocess, real servers on 127.0.0.1) for what a profile names besides its URLs:
firewall rule files and access logs checked before any request is sent (a counting listener proves it),
duplicate shop names, `--state` keeping the findings of checks that did not run, `init DIR`, the hint
to run `init`, and the note when no firewall was analysed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.acceptance.test_cli_check import PASSPHRASE, assert_no_traceback, run_cli
from tests.servers.http_servers import LoopbackServer, answer, app

ENV = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}


def shop_block(name: str, url: str, extra: str = "") -> str:
    return f"""  - name: {name}
    feedback:
      urls:
        accepted: {url}
    signature:
      passphrase_env: ACCEPTANCE_SHA_OUT
{extra}"""


def write(folder: Path, *shops: str, name: str = "feedback-check.yaml") -> Path:
    path = folder / name
    path.write_text("version: 1\nshops:\n" + "".join(shops), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- item 1: files named by the profile, before any network traffic ------------------------------------

@pytest.mark.parametrize("extra,field,problem", [
    ("    firewall:\n      - type: iptables\n        file: nothere.v4\n", "shops[0].firewall[0].file",
     "nothere.v4: file not found"),
    ("    firewall:\n      - {type: plain, file: rules.d}\n", "shops[0].firewall[0].file", "is a directory"),
    ("    firewall:\n      - {type: plain, file: fifo}\n", "shops[0].firewall[0].file", "named pipe"),
    ("    logs: [nothere.log]\n", "shops[0].logs[0]", "nothere.log: file not found"),
    ("    logs:\n      - files: [present.log, 'rotated-*.log']\n", "shops[0].logs[0].files[1]",
     "no file matches this pattern"),
    ("    logs:\n      - {file: fifo, format: combined}\n", "shops[0].logs[0].file", "not an access log"),
])
def test_missing_rule_file_or_log_is_a_profile_error_before_any_connection(
        tmp_path: Path, extra: str, field: str, problem: str) -> None:
    (tmp_path / "rules.d").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "present.log").write_text("")
    with LoopbackServer(app({"/fb": answer(200, b"OK")})) as server:
        profile = write(tmp_path, shop_block("shop-a", server.url("/fb"), extra))
        result = run_cli("check", "--config", str(profile), "--lab", env=ENV)
        connections = server.connections
    error = one_error_line(result)
    written = extra.splitlines()[-1].split("file: ")[-1].split(",")[0].strip(" ]}[")
    line = line_of(profile, written.split("'")[0].split(", ")[-1])
    assert error.startswith(f"feedback-check: error: {profile}:{line}: {field}: "), error
    assert problem in error
    assert connections == 0                       # nothing was sent: the mistake is found first
    assert result.stdout == ""


def test_a_skipped_check_does_not_need_its_files(tmp_path: Path) -> None:
    """--no-firewall / --no-logs: the files of a check that does not run are not required."""
    with LoopbackServer(app({"/fb": answer(200, b"OK")})) as server:
        extra = "    firewall:\n      - {type: plain, file: gone.txt}\n    logs: [gone.log]\n"
        profile = write(tmp_path, shop_block("shop-a", server.url("/fb"), extra))
        result = run_cli("check", "--config", str(profile), "--lab", "--no-firewall", "--no-logs",
                         "--format", "json", env=ENV)
        assert server.connections > 0
    assert_no_traceback(result)
    assert result.returncode in (0, 1, 2) and json.loads(result.stdout)["targets"]


# --- item 6: duplicate shop names ------------------------------------------------------------------------

def test_duplicate_shop_name_in_one_profile_names_both_lines(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": answer(200)})) as server:
        profile = write(tmp_path, shop_block("twin", server.url("/fb")), shop_block("other", server.url("/fb")),
                        shop_block("twin", server.url("/fb")))
        error = one_error_line(run_cli("check", "--config", str(profile), "--lab", env=ENV))
        assert server.connections == 0
    lines = [i for i, line in enumerate(profile.read_text().splitlines(), 1) if "name: twin" in line]
    assert error == (f"feedback-check: error: {profile}:{lines[1]}: shops[2].name: shop name 'twin' is already "
                     f"defined at {profile}:{lines[0]}")


def test_duplicate_shop_name_across_profiles_and_a_profile_given_twice(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": answer(200)})) as server:
        first = write(tmp_path, shop_block("shop-a", server.url("/fb")), name="shop.yaml")
        second = write(tmp_path, shop_block("shop-b", server.url("/fb")), shop_block("shop-a", server.url("/fb")),
                       name="agency.yaml")
        across = one_error_line(run_cli("check", "--config", str(first), "--config", str(second), "--lab", env=ENV))
        twice = one_error_line(run_cli("check", "--config", str(first), "--config", str(first), "--lab", env=ENV))
        assert server.connections == 0
    assert across == (f"feedback-check: error: {second}:{line_of(second, 'name: shop-a')}: shops[1].name: shop name "
                      f"'shop-a' is already defined at {first}:{line_of(first, 'name: shop-a')}")
    assert twice == f"feedback-check: error: {first}: this profile is given twice"


# --- item 2: --state keeps the findings of checks that did not run ---------------------------------------

def _changes(result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert_no_traceback(result)
    assert result.returncode in (0, 1, 2), result.stderr
    return json.loads(result.stdout)["changes"]


def _codes(items: list[dict]) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(item["shop"], item["code"]) for item in items}


def _remembered(state: Path) -> dict[tuple[str, str], set[str]]:
    entries = json.loads(state.read_text())["entries"]
    return {(e["shop"], e["role"]): set(e["findings"]) for e in entries}


def test_state_no_forgery_check_does_not_resolve_forgery_accepted(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with LoopbackServer(app({"/fb": answer(200, b"OK")})) as server:     # answers a wrong SHASIGN alike
        profile = write(tmp_path, shop_block("my-shop", server.url("/fb")))
        common = ["check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json"]
        first = _changes(run_cli(*common, env=ENV))
        remembered = _remembered(state)
        skipped = _changes(run_cli(*common, "--no-forgery-check", env=ENV))
        again = _changes(run_cli(*common, env=ENV))
    assert first["first_run"] is True
    assert "signature.forgery_accepted" in remembered[("my-shop", "accepted")]
    assert ("my-shop", "signature.forgery_accepted") not in _codes(skipped["resolved"]), skipped
    assert "signature.forgery_accepted" in _remembered(state)[("my-shop", "accepted")]
    assert ("my-shop", "signature.forgery_accepted") not in _codes(again["new"]), again   # still known


def test_state_phase_not_reached_is_not_resolved_but_a_real_fix_is(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    routes = {"/fb": answer(200, b"OK")}
    server = LoopbackServer(app(routes)).start()
    profile = write(tmp_path, shop_block("my-shop", server.url("/fb")))
    common = ["check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json",
              "--timeout", "3"]
    try:
        _changes(run_cli(*common, env=ENV))
    finally:
        server.stop()
    down = _changes(run_cli(*common, env=ENV))          # nothing listens: no HTTP answer, no forgery check
    assert ("my-shop", "connect.refused") in _codes(down["new"]), down
    assert not any(item["code"].startswith(("signature.", "http.")) for item in down["resolved"]), down
    # A check that runs and no longer finds the problem does resolve it.
    with LoopbackServer(app({"/fb": answer(200, b"OK")})) as fixed:
        other = write(tmp_path, shop_block("my-shop", fixed.url("/fb")), name="same-url.yaml")
        # same key: rewrite the remembered URL's port to the new server's
        text = state.read_text().replace(f":{server.port}/", f":{fixed.port}/")
        state.write_text(text)
        back = _changes(run_cli("check", "--config", str(other), "--lab", "--state", str(state), "--format", "json",
                                env=ENV))
    assert ("my-shop", "connect.refused") in _codes(back["resolved"]), back
    assert ("my-shop", "signature.forgery_accepted") not in _codes(back["new"]), back


def test_state_shop_not_selected_firewall_and_logs_skipped_keep_their_findings(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    (tmp_path / "allow.txt").write_text("10.0.0.0/8\n")                  # admits no published address
    (tmp_path / "access.log").write_text(
        '185.139.244.5 - - [12/Nov/2026:14:02:11 +0100] "POST /fb HTTP/1.1" 500 2 "-" "Java/1.8"\n')
    with LoopbackServer(app({"/fb": answer(200, b"OK")})) as server:
        extra = "    firewall:\n      - {type: plain, file: allow.txt}\n    logs: [access.log]\n"
        profile = write(tmp_path, shop_block("shop-a", server.url("/fb"), extra),
                        shop_block("shop-b", server.url("/fb")))
        common = ["check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json"]
        _changes(run_cli(*common, env=ENV))
        remembered = _remembered(state)
        skipped = _changes(run_cli(*common, "--no-firewall", "--no-logs", "--no-forgery-check", "--shop", "shop-a",
                                   env=ENV))
    assert "firewall.range_blocked" in remembered[("shop-a", "firewall")] or \
        "firewall.port_closed" in remembered[("shop-a", "firewall")]
    assert "logs.postsale_failed" in remembered[("shop-a", "logs")]
    assert "signature.forgery_accepted" in remembered[("shop-b", "accepted")]
    assert skipped["resolved"] == [], skipped
    assert _remembered(state) == remembered


# --- item 25: init DIR, the hint to run init, the note when no firewall was analysed -------------------

def test_check_without_a_profile_hints_init_and_init_writes_into_a_folder(tmp_path: Path) -> None:
    error = one_error_line(run_cli("check", cwd=tmp_path))
    assert "feedback-check.yaml" in error and "feedback-check init" in error
    folder = tmp_path / "conf"
    folder.mkdir()
    written = run_cli("init", str(folder))
    assert written.returncode == 0, written.stderr
    assert "version: 1" in (folder / "feedback-check.yaml").read_text()
    (folder / "feedback-check.yaml").write_text("mine\n")
    refused = one_error_line(run_cli("init", str(folder)))
    assert "already exists" in refused and (folder / "feedback-check.yaml").read_text() == "mine\n"
    assert run_cli("init", str(folder), "--force").returncode == 0
    assert "version: 1" in (folder / "feedback-check.yaml").read_text()


def test_check_notes_when_no_firewall_was_analysed(tmp_path: Path) -> None:
    (tmp_path / "allow.txt").write_text("185.139.244.0/22\n")
    with LoopbackServer(app({"/fb": answer(200, b"OK")})) as server:
        bare = write(tmp_path, shop_block("shop-a", server.url("/fb")), name="bare.yaml")
        layered = write(tmp_path, shop_block("shop-a", server.url("/fb"),
                                             "    firewall:\n      - {type: plain, file: allow.txt}\n"),
                        shop_block("shop-b", server.url("/fb")), name="layered.yaml")
        runs = {name: json.loads(run_cli("check", "--config", str(path), "--lab", "--no-forgery-check",
                                         "--format", "json", *extra, env=ENV).stdout)["notes"]
                for name, path, extra in (("bare", bare, ()), ("layered", layered, ()),
                                          ("skipped", layered, ("--no-firewall",)))}
    assert any("No firewall was analysed for any shop" in n for n in runs["bare"]), runs["bare"]
    assert any("No firewall was analysed for shop shop-b:" in n for n in runs["layered"]), runs["layered"]
    assert any("skipped (--no-firewall)" in n for n in runs["skipped"]), runs["skipped"]
