"""The probe against a real PHP handler (tests/servers/php/notify.php, written in the hand-written
marlon-ogone style) run by Debian's php-cli built-in server on 127.0.0.1. Skipped without php."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedback_check.findings import Severity, Verdict, apply_lab_mode, verdict_of
from tests.servers.http_servers import PASSPHRASE, codes, finding, refusing_port, run_probe

PHP = shutil.which("php")
pytestmark = pytest.mark.skipif(PHP is None, reason="php-cli is not installed (Debian: apt-get install php-cli)")
ORDER_ID = "100000042"
TEST_ORDER = (("orderID", ORDER_ID), ("amount", "49.90"), ("currency", "CHF"))
DOCROOT = Path(__file__).parents[1] / "servers" / "php"


class PhpServer:
    def __init__(self, tmp_path: Path, *, passphrase: str = PASSPHRASE, algorithm: str = "sha512") -> None:
        self.port = refusing_port()
        self.processed = tmp_path / "processed.txt"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PF_SHA_OUT": passphrase, "PF_ALGORITHM": algorithm,
               "PF_ORDERS": ORDER_ID, "PF_PROCESSED": str(self.processed)}
        assert PHP is not None
        self.process = subprocess.Popen([PHP, "-n", "-d", "variables_order=EGPCS", "-S", f"127.0.0.1:{self.port}",
                                         "-t", str(DOCROOT)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("php -S did not start listening")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify.php"

    def orders_processed(self) -> list[str]:
        return self.processed.read_text().split() if self.processed.exists() else []

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def php_server(tmp_path: Path) -> Iterator[PhpServer]:
    server = PhpServer(tmp_path)
    yield server
    server.stop()


def test_real_php_handler_real_order_is_not_critical(php_server: PhpServer) -> None:
    summary = run_probe(php_server.url(), test_order=TEST_ORDER)
    assert "http.ok" in codes(summary)
    assert verdict_of(apply_lab_mode(summary.findings)) is Verdict.WARNING      # plain http:// only
    assert php_server.orders_processed() == [ORDER_ID]                           # the forged one was refused


def test_real_php_handler_unknown_order_is_a_warning(php_server: PhpServer) -> None:
    summary = run_probe(php_server.url())
    unknown = finding(summary, "handler.unknown_order")
    assert unknown.severity is Severity.WARNING and unknown.evidence["signature_checked"] is True
    assert "http.not_found" not in codes(summary)


def test_real_php_handler_wrong_algorithm_and_passphrase_encoding(tmp_path: Path) -> None:
    server = PhpServer(tmp_path, algorithm="sha256")
    try:
        summary = run_probe(server.url(), test_order=TEST_ORDER)
    finally:
        server.stop()
    rejected = finding(summary, "signature.rejected")
    assert "SHA-256" in rejected.evidence["accepted_when"] and "SHA-512" in rejected.fix
    assert verdict_of(apply_lab_mode(summary.findings)) is Verdict.CRITICAL
    # A passphrase with a non-ASCII letter reaches PHP as UTF-8 bytes; the account hashes ISO-8859-1.
    passphrase = "Grüezi-Sha-Out-5"
    server = PhpServer(tmp_path, passphrase=passphrase)
    try:
        summary = run_probe(server.url(), test_order=TEST_ORDER, passphrase=passphrase, encoding="ISO-8859-1")
    finally:
        server.stop()
    rejected = finding(summary, "signature.rejected")
    assert "the passphrase as UTF-8 bytes" in rejected.evidence["accepted_when"]
    assert "http.client_error" not in codes(summary)
