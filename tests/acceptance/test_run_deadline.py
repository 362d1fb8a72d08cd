"""`--max-runtime` bounds the whole run, firewall analyses included: a layer too large to analyse in
time is stopped (it runs in a worker process the deadline terminates), the shop is UNKNOWN, and the
report's duration is the run's real one."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.acceptance.hostile import one_error_line, run_bounded
from tests.servers.http_servers import refusing_port


def huge_rules(folder: Path) -> Path:
    rules = folder / "huge.rules"
    block = "".join(f"-A INPUT -s 10.{i >> 8 & 255}.{i & 255}.0/24 -p tcp -m tcp --dport 443 -j ACCEPT\n"
                    for i in range(4096))
    with open(rules, "w") as handle:
        handle.write("*filter\n:INPUT DROP [0:0]\n")
        handle.writelines(block for _ in range(300))   # ~85 MB: analysing it takes longer than the deadline
        handle.write("COMMIT\n")
    return rules


def test_a_firewall_analysis_longer_than_the_deadline_is_stopped(tmp_path: Path) -> None:
    rules = huge_rules(tmp_path)
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"""version: 1
shops:
  - name: walled
    feedback: {{urls: {{accepted: "http://127.0.0.1:{refusing_port()}/fb"}}}}
    signature: {{passphrase_env: DEADLINE_SHA_OUT}}
    firewall: [{{type: iptables, file: {rules}}}]
""")
    started = time.monotonic()
    result = run_bounded("check", "--config", str(profile), "--lab", "--max-runtime", "1.5", "--format", "json",
                         env={"DEADLINE_SHA_OUT": "a-deadline-passphrase"}, timeout=60)
    wall = time.monotonic() - started
    document = json.loads(result.stdout)
    shop = document["shops"][0]
    assert shop["verdict"] == "UNKNOWN" and "run deadline" in shop["error"], shop
    # The run ends soon after its deadline (interpreter start and the worker's start aside) ...
    assert wall < 1.5 + 6, wall
    # ... and says how long it really took.
    assert 1.4 <= document["duration_seconds"] <= wall


def test_the_firewall_command_stops_at_its_deadline_too(tmp_path: Path) -> None:
    rules = huge_rules(tmp_path)
    started = time.monotonic()
    result = run_bounded("firewall", str(rules), "--max-runtime", "1", timeout=60)
    wall = time.monotonic() - started
    assert "did not finish in time" in one_error_line(result)
    assert wall < 1 + 6, wall
