"""Writes that cannot destroy: --output and --state against devices, FIFOs, symlinks, stdout, a full
disk, a closed stdout, a run killed with SIGKILL in the middle of a write, and concurrent runs on one
state file."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.acceptance.hostile import run_bounded
from tests.servers.http_servers import refusing_port

RULES = Path(__file__).parents[2] / "examples" / "firewall" / "iptables" / "debian-rules.v4"


def test_output_onto_a_device_node_writes_into_it_and_leaves_it_a_device(tmp_path: Path) -> None:
    node = tmp_path / "null-copy"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))      # a copy of /dev/null (CI runs as root)
    result = run_bounded("firewall", str(RULES), "--output", str(node))
    assert result.returncode == 2, result.stderr
    assert stat.S_ISCHR(os.stat(node).st_mode)


def test_output_to_dev_stdout_is_a_stream(tmp_path: Path) -> None:
    result = run_bounded("firewall", str(RULES), "--output", "/dev/stdout")
    assert result.returncode == 2 and result.stdout.startswith("CRITICAL"), result.stderr


def test_output_through_a_symlink_replaces_its_file_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "report.txt"
    link.symlink_to(target)
    result = run_bounded("firewall", str(RULES), "--output", str(link))
    assert result.returncode == 2, result.stderr
    assert link.is_symlink() and target.read_text().startswith("CRITICAL")


def test_new_output_files_respect_the_umask_and_replaced_ones_keep_their_mode(tmp_path: Path) -> None:
    new = tmp_path / "new.txt"
    command = f'umask 077 && exec "{sys.executable}" -m feedback_check firewall {RULES} --output {new}'
    subprocess.run(["sh", "-c", command], check=False, timeout=30)
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o600
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    run_bounded("firewall", str(RULES), "--output", str(existing))
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o640 and existing.read_text().startswith("CRITICAL")


def test_a_fifo_nobody_reads_and_a_full_disk_are_one_line(tmp_path: Path) -> None:
    # The report is then printed on stdout instead (a CRITICAL stays CRITICAL), the problem in one line.
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    unread = run_bounded("firewall", str(RULES), "--output", str(fifo))
    assert unread.returncode == 2 and unread.stdout.startswith("CRITICAL")
    assert unread.stderr.count("\n") == 1 and "no program reads" in unread.stderr and str(fifo) in unread.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    full = run_bounded("firewall", str(RULES), "--output", "/dev/full")
    assert full.stderr.count("\n") == 1 and "No space left" in full.stderr


def test_closed_stdout_full_stdout_and_undecodable_arguments_are_one_line() -> None:
    environment = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    closed = subprocess.run([sys.executable, "-m", "feedback_check", "firewall", str(RULES)], stdout=None,
                            stderr=subprocess.PIPE, text=True, timeout=30, env=environment,
                            preexec_fn=lambda: os.close(1), check=False)
    assert closed.returncode == 3 and closed.stderr.count("\n") == 1 and "standard output is closed" in closed.stderr
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "feedback_check", "explain", "STATUS", "5"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=30, env=environment, check=False)
    assert result.returncode == 3 and result.stderr.count("\n") == 1 and "No space left" in result.stderr
    odd = subprocess.run([sys.executable.encode(), b"-m", b"feedback_check", b"firewall", b"\xff.rules"],
                         capture_output=True, timeout=30, env=environment, check=False)
    assert odd.returncode == 3 and odd.stderr.count(b"\n") == 1 and b"argument 2" in odd.stderr
    assert b"Traceback" not in odd.stderr and b"internal error" not in odd.stderr


def _writer_script(path: Path) -> str:
    return f"""
import itertools
from feedback_check.outputfile import write_file
for i in itertools.count():
    write_file({str(path)!r}, ("A" if i % 2 else "B") * 8_000_000)
"""


def test_kill_9_during_writes_leaves_the_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("A" * 8_000_000)
    for delay in (0.05, 0.15, 0.3, 0.45):
        writer = subprocess.Popen([sys.executable, "-c", _writer_script(path)])
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        content = path.read_text()
        assert content in ("A" * 8_000_000, "B" * 8_000_000)


def test_the_state_is_not_committed_when_the_report_cannot_be_written(tmp_path: Path) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"""version: 1
shops:
  - name: s
    feedback: {{urls: {{accepted: "http://127.0.0.1:{refusing_port()}/fb"}}}}
    signature: {{passphrase_env: STATE_SHA_OUT}}
""")
    state = tmp_path / "state.json"
    env = {"STATE_SHA_OUT": "a-state-passphrase"}
    failed = run_bounded("check", "--config", str(profile), "--lab", "--state", str(state), "--output", "/dev/full", env=env)
    # The report goes to stdout instead, the write error after it (a CRITICAL stays CRITICAL) ...
    assert failed.returncode == 2 and "connect.refused" in failed.stdout
    assert "/dev/full" in failed.stderr and "No space left" in failed.stderr
    # ... but the report did not reach its destination: the state is not committed.
    assert not state.exists()
    run_bounded("check", "--config", str(profile), "--lab", "--state", str(state), env=env)
    assert json.loads(state.read_text())["entries"]


def test_a_state_file_on_a_device_is_refused_not_replaced(tmp_path: Path) -> None:
    node = tmp_path / "null-copy"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = run_bounded("check", "--config", str(tmp_path / "missing.yaml"), "--state", str(node))
    assert result.returncode == 3
    assert stat.S_ISCHR(os.stat(node).st_mode)


@pytest.mark.parametrize("writers", [4])
def test_concurrent_runs_on_one_state_file_lose_no_entries(tmp_path: Path, writers: int) -> None:
    # Four runs at once, each checking its own shop (--shop): with the lock, the state ends with every shop's entries.
    port = refusing_port()
    shops = "".join(f"""  - name: shop{i}
    feedback: {{urls: {{accepted: "http://127.0.0.1:{port}/fb{i}"}}}}
    signature: {{passphrase_env: STATE_SHA_OUT}}
""" for i in range(writers))
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"version: 1\nshops:\n{shops}")
    state = tmp_path / "state.json"
    environment = {**os.environ, "STATE_SHA_OUT": "a-state-passphrase", "MALLOC_ARENA_MAX": "2"}
    runs = [subprocess.Popen([sys.executable, "-m", "feedback_check", "check", "--config", str(profile), "--lab", "-q",
                              "--shop", f"shop{i}", "--state", str(state)], env=environment,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for i in range(writers)]
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert b"Traceback" not in err and run.returncode == 2, err
    entries = json.loads(state.read_text())["entries"]
    assert {e["shop"] for e in entries if e["role"] == "accepted"} == {f"shop{i}" for i in range(writers)}
