"""One home for a URL's default port (feedback_check.urls.url_port), and every user of it agreeing."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from feedback_check.cli.firewall import _port_path_host
from feedback_check.platform import load_platform
from feedback_check.probe.http import host_header
from feedback_check.probe.url import check_url
from feedback_check.profile import FeedbackUrl, load_profile
from feedback_check.runner import firewall_port
from feedback_check.urls import url_port

PACKAGE = Path(__file__).parents[2] / "feedback_check"
EXAMPLES = Path(__file__).parents[2] / "examples" / "profiles"


@pytest.mark.parametrize(("url", "port"), [
    ("https://shop.example/pf", 443), ("http://shop.example/pf", 80), ("HTTPS://shop.example/pf", 443),
    ("https://shop.example:8443/pf", 8443), ("http://shop.example:443/pf", 443), ("http://[::1]:8080/", 8080),
    ("https://shop.example:0/pf", 443), ("ftp://shop.example/pf", None), ("shop.example/pf", None),
])
def test_url_port_is_the_named_port_else_the_schemes_default(url: str, port: int | None) -> None:
    assert url_port(url) == port
    assert url_port(urlsplit(url)) == port


def test_url_port_refuses_a_port_that_is_not_a_number() -> None:
    with pytest.raises(ValueError):
        url_port("https://shop.example:99999/pf")


@pytest.mark.parametrize("url", ["https://shop.example/pf", "http://shop.example/pf", "https://shop.example:8443/pf",
                                 "http://shop.example:8080/pf"])
def test_probe_runner_and_firewall_command_agree_on_the_port(url: str) -> None:
    platform = load_platform()
    shop = load_profile(EXAMPLES / "shop-ch.yaml", platform, environ={"SHOP_CH_SHA_OUT": "x"}).shops[0]
    shop = replace(shop, urls=(FeedbackUrl("accepted", url),), paramvar=None)
    expected = url_port(url)
    assert check_url(url, paramvar=None, platform=platform).port == expected
    assert firewall_port(shop, platform)[0] == expected
    assert _port_path_host(None, url)[0] == expected
    assert (":" in host_header(url)) == (urlsplit(url).port is not None)


def test_a_url_without_a_web_scheme_gives_the_firewall_the_platforms_port() -> None:
    # Before url_port(), the runner analysed port 80 for ftp://...; the probe reports url.scheme for it, and
    # the firewall layers are checked on the platform's HTTPS port like a shop without URLs.
    platform = load_platform()
    shop = load_profile(EXAMPLES / "shop-ch.yaml", platform, environ={"SHOP_CH_SHA_OUT": "x"}).shops[0]
    shop = replace(shop, urls=(FeedbackUrl("accepted", "ftp://shop.example/pf"),), paramvar=None)
    assert firewall_port(shop, platform) == (platform.feedback_ports[-1], None, None)


def test_no_module_outside_firewall_computes_a_default_port_itself() -> None:
    spelled = re.compile(r"\b443 if\b|\bif ssl_context else 80\b|[\"']https[\"']:\s*443\b")
    offenders = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                 for path in PACKAGE.rglob("*.py") if "firewall" not in path.relative_to(PACKAGE).parts[:1]
                 and path.name != "urls.py"
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if spelled.search(line)]
    assert offenders == []
