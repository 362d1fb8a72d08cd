"""Shared test set-up: no proxy variables may send test traffic anywhere but loopback."""

from __future__ import annotations

import pytest

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                   "all_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# Loopback test infrastructure available to every test: `dns_stub` (stub DNS servers) and `pki`
# (a test PKI generated at session start).
pytest_plugins = ["tests.servers.dns_stub", "tests.servers.certs"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # Regenerating committed artefacts (see README, "Reports for people"): the text report goldens and
    # the README's screenshot of the demo's HTML report.
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/*.txt from the current text reporter instead of comparing")
    parser.addoption("--update-screenshot", action="store_true",
                     help="also write the browser test's screenshot of the demo report to docs/demo-report.png")
