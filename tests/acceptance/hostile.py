"""Running the command line against hostile input without letting a regression hang or swamp CI.

`run_bounded` runs `python -m feedback_check ...` in a child process with a wall-clock timeout and an
address-space limit (RLIMIT_AS, set in the child before exec): a reader that slurps /dev/zero dies of
MemoryError and a parser that blocks on a FIFO is killed at the timeout, and either fails the test.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

#: Enough for the interpreter, cryptography and the probe's threads; far less than slurping /dev/zero.
MEMORY_LIMIT = 1536 * 1024 * 1024
TIMEOUT = 30.0


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = TIMEOUT, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    # glibc reserves 64 MB of address space per thread arena: keep the limit about real memory.
    environment["MALLOC_ARENA_MAX"] = "2"
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "feedback_check", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=timeout, check=False, stdin=stdin,
                          preexec_fn=_limit_memory)


def one_error_line(result: subprocess.CompletedProcess[str], codes: tuple[int, ...] = (3,)) -> str:
    """The single stderr line of a refused run (exit 3, no traceback). A --state problem comes after the
    check ran: its report is printed and a CRITICAL stays CRITICAL, so `codes` is (2, 3) there."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode in codes, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
