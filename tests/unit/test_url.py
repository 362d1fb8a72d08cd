"""URL lint: every url.* code, the parts of the effective URL, and edge cases."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_check.findings import CATALOGUE, Severity
from feedback_check.platform import Platform, load_platform
from feedback_check.probe.url import UrlCheck, check_url, redact_url
from feedback_check.reporters import json as json_reporter

PLATFORM = load_platform()


def lint(url: str, paramvar: str | None = None, platform: Platform = PLATFORM) -> UrlCheck:
    return check_url(url, paramvar=paramvar, platform=platform)


def codes(check: UrlCheck) -> list[str]:
    return [f.code for f in check.findings]


def finding(check: UrlCheck, code: str):
    matches = [f for f in check.findings if f.code == code]
    assert len(matches) == 1, codes(check)
    return matches[0]


def test_clean_https_url_has_no_findings_and_default_port() -> None:
    check = lint("https://shop.example.ch/postfinance/feedback?shop=ch")
    assert codes(check) == []
    assert check.usable
    assert check.effective == "https://shop.example.ch/postfinance/feedback?shop=ch"
    assert (check.scheme, check.host, check.port, check.explicit_port) == ("https", "shop.example.ch", 443, False)
    assert check.target == "/postfinance/feedback?shop=ch"
    assert not check.host_is_ip


def test_empty_path_becomes_slash_and_fragment_is_not_sent() -> None:
    check = lint("https://shop.example#section")
    assert check.target == "/"
    assert check.effective == "https://shop.example/"


def test_uppercase_scheme_and_host_are_normalised_but_path_keeps_its_case() -> None:
    check = lint("HTTPS://Shop.Example.CH/PostFinance/Feedback")
    assert codes(check) == []
    assert check.scheme == "https"
    assert check.host == "shop.example.ch"
    assert check.target == "/PostFinance/Feedback"
    assert check.effective == "https://shop.example.ch/PostFinance/Feedback"


@pytest.mark.parametrize("url", ["", "   ", "https://", "https:///feedback", "https://:443/x",
                                 "shop.example/feedback", "localhost:8080/x", "https://shop..example/",
                                 "https://a b.example/", "https://-bad.example/", "https://host:99999/",
                                 "https://host:abc/", "https://host:0/", "https://1.2.3.256/",
                                 "https://[2001:db8::zz]/", "https://shop.example/\nfeedback"])
def test_url_invalid(url: str) -> None:
    check = lint(url)
    assert "url.invalid" in codes(check)
    assert not check.usable
    assert check.effective is None
    f = finding(check, "url.invalid")
    assert f.severity is Severity.CRITICAL
    assert f.detail and f.fix


@pytest.mark.parametrize("url", ["shop.example/feedback", "//shop.example/feedback", "https:/shop.example/feedback",
                                 "http:shop.example/feedback"])
def test_missing_scheme_fix_suggests_https(url: str) -> None:
    f = finding(lint(url), "url.invalid")
    assert f.fix == "Enter it as https://shop.example/feedback."


def test_javascript_url_is_a_scheme_problem() -> None:
    assert codes(lint("javascript:alert(1)")) == ["url.scheme"]


@pytest.mark.parametrize("url, scheme", [("ftp://shop.example/feedback", "ftp"),
                                         ("mailto:shop@shop.example", "mailto"),
                                         ("HTTPX://shop.example/", "httpx")])
def test_url_scheme(url: str, scheme: str) -> None:
    check = lint(url)
    assert codes(check) == ["url.scheme"]
    assert not check.usable
    assert check.effective is None
    f = finding(check, "url.scheme")
    assert f.evidence["scheme_found"] == scheme
    assert f.severity is Severity.CRITICAL


def test_plain_http_is_a_warning_with_the_https_url_as_fix() -> None:
    check = lint("http://shop.example/postfinance/feedback")
    assert codes(check) == ["url.plain_http"]
    assert check.usable
    assert check.port == 80
    f = finding(check, "url.plain_http")
    assert f.severity is Severity.WARNING
    assert "https://shop.example/postfinance/feedback" in f.fix


@pytest.mark.parametrize("url, port", [("https://shop.example:443/x", 443), ("http://shop.example:80/x", 80)])
def test_explicit_standard_ports_are_fine(url: str, port: int) -> None:
    check = lint(url)
    assert "url.port_not_allowed" not in codes(check)
    assert check.port == port
    assert check.explicit_port
    assert check.effective == url


def test_https_on_port_80_is_an_allowed_port() -> None:
    check = lint("https://shop.example:80/x")
    assert codes(check) == []
    assert check.port == 80


@pytest.mark.parametrize("url, port", [("https://shop.example:8443/feedback", 8443),
                                       ("http://shop.example:8080/feedback", 8080)])
def test_port_not_allowed(url: str, port: int) -> None:
    check = lint(url)
    assert "url.port_not_allowed" in codes(check)
    assert check.usable
    assert check.port == port and check.explicit_port
    f = finding(check, "url.port_not_allowed")
    assert f.severity is Severity.CRITICAL
    assert f.evidence["assumption"] == "ports.other_ports_reachable"
    assert f.evidence["allowed_ports"] == [80, 443]
    assert f.evidence["port"] == port
    assert f":{port}" not in f.fix and "shop.example/feedback" in f.fix


def test_allowed_ports_come_from_the_platform_profile() -> None:
    platform = replace(PLATFORM, feedback_ports=(443, 8443))
    assert "url.port_not_allowed" not in codes(lint("https://shop.example:8443/", platform=platform))
    check = lint("http://shop.example/", platform=platform)
    assert finding(check, "url.port_not_allowed").evidence["allowed_ports"] == [443, 8443]


def test_port_rule_is_off_when_the_platform_reaches_other_ports() -> None:
    platform = replace(PLATFORM, other_ports_reachable=True)
    assert "url.port_not_allowed" not in codes(lint("https://shop.example:8443/", platform=platform))


@pytest.mark.parametrize("url, reason", [
    ("https://127.0.0.1/feedback", "loopback"),
    ("https://10.1.2.3/feedback", "private (RFC 1918)"),
    ("https://192.168.1.20:443/feedback", "private (RFC 1918)"),
    ("https://172.20.0.5/feedback", "private (RFC 1918)"),
    ("https://100.64.3.4/feedback", "CGNAT (RFC 6598)"),
    ("https://169.254.169.254/feedback", "link-local"),
    ("https://[::1]/feedback", "loopback"),
    ("https://[fd12:3456::1]/feedback", "unique local (IPv6)"),
    ("https://[fe80::1%25eth0]/feedback", "link-local"),
    ("https://192.0.2.10/feedback", "documentation"),
    ("https://[::ffff:192.168.0.1]/feedback", "private (RFC 1918), embedded IPv4 192.168.0.1"),
])
def test_private_ip_literal(url: str, reason: str) -> None:
    check = lint(url)
    assert "url.private_host" in codes(check)
    assert "url.ip_literal" not in codes(check)
    assert check.host_is_ip and check.usable
    f = finding(check, "url.private_host")
    assert f.evidence["address_class"] == reason
    assert f.severity is Severity.CRITICAL


@pytest.mark.parametrize("url", ["https://localhost/feedback", "http://localhost:8080/feedback",
                                 "https://shop.localhost/x", "https://shop.local/x", "https://shop.internal/x",
                                 "https://shop.lan/x", "https://nas.home.arpa/x", "https://shop/x",
                                 "https://LOCALHOST./x"])
def test_local_names_are_private_hosts(url: str) -> None:
    check = lint(url)
    assert "url.private_host" in codes(check)
    assert not check.host_is_ip
    assert check.usable


def test_ipv4_written_as_a_number_is_recognised() -> None:
    check = lint("http://2130706433/feedback")
    assert check.host == "127.0.0.1" and check.host_is_ip
    f = finding(check, "url.private_host")
    assert "2130706433" in f.detail
    assert lint("http://127.1/").host == "127.0.0.1"


def test_public_ip_literal_is_a_warning() -> None:
    check = lint("https://185.8.52.10/feedback")
    assert codes(check) == ["url.ip_literal"]
    assert check.host_is_ip
    assert finding(check, "url.ip_literal").severity is Severity.WARNING


def test_ipv6_literal_with_port() -> None:
    check = lint("https://[2a00:1450:4001::10]:8443/feedback?x=1")
    assert check.host == "2a00:1450:4001::10"
    assert check.port == 8443 and check.explicit_port and check.host_is_ip
    assert check.effective == "https://[2a00:1450:4001::10]:8443/feedback?x=1"
    assert sorted(codes(check)) == ["url.ip_literal", "url.port_not_allowed"]


def test_ipv6_literal_is_normalised() -> None:
    check = lint("https://[2A00:1450:4001:0::0010]/")
    assert check.host == "2a00:1450:4001::10"
    assert check.effective == "https://[2a00:1450:4001::10]/"


def test_credentials_are_reported_stripped_and_never_shown() -> None:
    check = lint("https://shopuser:S3cr3t-pw@shop.example/feedback")
    assert codes(check) == ["url.credentials"]
    assert check.usable
    assert check.effective == "https://shop.example/feedback"
    f = finding(check, "url.credentials")
    assert f.severity is Severity.CRITICAL
    assert f.evidence == {"user": "shopuser", "password_present": True}
    rendered = repr([json_reporter.finding_dict(x) for x in check.findings]) + repr(json_reporter.url_check_dict(check))
    assert "S3cr3t-pw" not in rendered
    assert f.target == "https://shopuser:***@shop.example/feedback"


def test_user_without_password_is_still_credentials() -> None:
    f = finding(lint("https://shopuser@shop.example/feedback"), "url.credentials")
    assert f.evidence["password_present"] is False


@pytest.mark.parametrize("url, shown", [
    ("https://shop.example/a:b@c", "https://shop.example/a:b@c"),
    ("https://u:p@h/x", "https://u:***@h/x"),
    ("https://u:p:q@h:8443/x?y=a:b@c", "https://u:***@h:8443/x?y=a:b@c"),
    ("https://user@h/x", "https://user@h/x"),
    ("bob:hunter2@shop.example/x", "bob:***@shop.example/x"),
    ("//bob:hunter2@shop.example/x", "//bob:***@shop.example/x"),
    ("https:/bob:hunter2@shop.example/x", "https:/bob:***@shop.example/x"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["bob:hunter2@shop.example/x", "//bob:hunter2@shop.example/x",
                                 "https:/bob:hunter2@shop.example/x", "https://bob:hunter2@shop.example/\n",
                                 "https://bob:hunter2@shop.example:99999/x", "ftp://bob:hunter2@shop.example/",
                                 "https://bob:hunter2@/x", "https://bob:hunter2@shop..example/"])
def test_password_never_appears_even_in_broken_urls(url: str) -> None:
    check = lint(url)
    assert check.findings
    rendered = repr([json_reporter.finding_dict(f) for f in check.findings]) + repr(json_reporter.url_check_dict(check))
    assert "hunter2" not in rendered


@pytest.mark.parametrize("url", ["https://shop.example/postfinance/<PARAMVAR>/feedback",
                                 "https://shop.example/feedback?shop=<paramvar>",
                                 "https://shop.example/feedback?shop=%3CParamVar%3E"])
def test_paramvar_unresolved(url: str) -> None:
    check = lint(url)
    assert codes(check) == ["url.paramvar_unresolved"]
    assert check.usable
    assert "%3CPARAMVAR%3E" in (check.effective or "")
    assert finding(check, "url.paramvar_unresolved").severity is Severity.WARNING


def test_paramvar_substituted_in_path_and_query_with_encoding() -> None:
    check = lint("https://shop.example/pf/<PARAMVAR>/feedback?shop=<PARAMVAR>", paramvar="ch/shop 1&x")
    assert codes(check) == []
    assert check.target == "/pf/ch%2Fshop%201%26x/feedback?shop=ch%2Fshop%201%26x"
    assert check.configured == "https://shop.example/pf/<PARAMVAR>/feedback?shop=<PARAMVAR>"


def test_paramvar_plain_value_is_not_encoded() -> None:
    check = lint("https://shop.example/feedback?shop=<PARAMVAR>", paramvar="shop-ch_1.2")
    assert check.effective == "https://shop.example/feedback?shop=shop-ch_1.2"


def test_paramvar_value_without_token_changes_nothing() -> None:
    check = lint("https://shop.example/feedback", paramvar="ch")
    assert check.effective == "https://shop.example/feedback" and codes(check) == []


def test_idn_host_is_encoded_for_the_wire_and_decoded_for_display() -> None:
    check = lint("https://Bücher.example/zahlung/rückmeldung")
    assert codes(check) == []
    assert check.host == "xn--bcher-kva.example"
    assert check.display_host == "bücher.example"
    assert check.target == "/zahlung/r%C3%BCckmeldung"
    assert check.effective == "https://xn--bcher-kva.example/zahlung/r%C3%BCckmeldung"
    assert lint("https://xn--bcher-kva.example/").display_host == "bücher.example"


def test_invalid_idn_is_invalid() -> None:
    assert "url.invalid" in codes(lint("https://bü\u200dcher.example/"))


def test_trailing_dot_is_dropped() -> None:
    assert lint("https://shop.example./x").host == "shop.example"


def test_several_findings_at_once() -> None:
    check = lint("http://admin:pw@192.168.1.5:8080/<PARAMVAR>")
    assert sorted(codes(check)) == ["url.credentials", "url.paramvar_unresolved", "url.plain_http",
                                    "url.port_not_allowed", "url.private_host"]
    assert check.usable


def test_every_code_is_catalogued_and_has_concrete_text() -> None:
    urls = ["", "ftp://x.example/", "http://u:p@10.0.0.1:8080/<PARAMVAR>", "https://8.8.8.8/"]
    seen = [f for url in urls for f in lint(url).findings]
    assert {f.code for f in seen} == {"url.invalid", "url.scheme", "url.credentials", "url.private_host",
                                      "url.port_not_allowed", "url.plain_http", "url.paramvar_unresolved",
                                      "url.ip_literal"}
    for f in seen:
        assert f.code in CATALOGUE
        assert f.severity is CATALOGUE[f.code].severity
        assert f.detail and f.fix


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_check_never_an_exception(text: str) -> None:
    check = lint(text)
    assert (check.effective is None) == (not check.usable)
    if check.usable:
        assert check.scheme in ("http", "https") and check.host and check.port
        assert check.effective == lint(check.effective).effective   # the effective URL is stable


@given(user=st.from_regex(r"[a-z]{1,8}", fullmatch=True),
       # "Zq" + ...: a marker that cannot occur in the rest of the URL or in the finding texts
       password=st.from_regex(r"Zq[A-Za-z0-9!$&'()*+,;=~._-]{4,14}", fullmatch=True),
       rest=st.sampled_from(["shop.example/x", "shop..example/", "10.0.0.1:8080/", "[::1]/", ":99999/", "/x"]),
       scheme=st.sampled_from(["https://", "http://", "ftp://", "", "//", "https:/"]))
@settings(max_examples=200, deadline=None)
def test_url_password_never_reaches_findings(user: str, password: str, rest: str, scheme: str) -> None:
    check = lint(f"{scheme}{user}:{password}@{rest}")
    rendered = repr([json_reporter.finding_dict(f) for f in check.findings]) + repr(json_reporter.url_check_dict(check))
    assert password not in rendered


# -- the suggested URL (audit item 4): one builder, path, query and <PARAMVAR> kept ---------------------
def test_plain_http_fix_keeps_path_query_and_paramvar() -> None:
    check = lint("http://shop.example/postfinance/feedback?shop=<PARAMVAR>&x=1", paramvar="ch")
    f = finding(check, "url.plain_http")
    assert "https://shop.example/postfinance/feedback?shop=<PARAMVAR>&x=1 in the back office" in f.fix
    assert "port 80" not in f.detail and "port 443" not in f.fix


def test_plain_http_on_another_port_says_where_https_goes_and_never_claims_port_80() -> None:
    lab = replace(PLATFORM, other_ports_reachable=True)      # the port itself is accepted (as in a lab)
    check = lint("http://127.0.0.1:18081/postfinance/feedback?shop=<PARAMVAR>", platform=lab)
    f = finding(check, "url.plain_http")
    assert "port 80" not in f.detail and "on port 18081" in f.detail
    assert f.fix == ("Serve the handler over HTTPS (on port 443: port 18081 serves plain HTTP) and enter "
                     "https://127.0.0.1/postfinance/feedback?shop=<PARAMVAR> in the back office.")
    assert f.evidence["port"] == 18081


def test_plain_http_fix_drops_credentials_and_fragment_and_keeps_ipv6_brackets() -> None:
    f = finding(lint("http://user:pw@[2001:db8::10]/fb?a=<PARAMVAR>#top"), "url.plain_http")
    assert "https://[2001:db8::10]/fb?a=<PARAMVAR> in the back office" in f.fix
    assert "pw" not in f.fix and "#top" not in f.fix


def test_port_not_allowed_on_http_suggests_the_same_https_url_as_plain_http() -> None:
    check = lint("http://shop.example:8080/fb?shop=<PARAMVAR>")
    plain, port = finding(check, "url.plain_http"), finding(check, "url.port_not_allowed")
    https = "https://shop.example/fb?shop=<PARAMVAR>"
    assert https in plain.fix and https in port.fix
    assert "http://shop.example/fb?shop=<PARAMVAR>, unencrypted" in port.fix


def test_port_not_allowed_on_https_keeps_the_query() -> None:
    f = finding(lint("https://shop.example:8443/fb?shop=<PARAMVAR>"), "url.port_not_allowed")
    assert f.fix == "Serve the handler on port 443 and enter https://shop.example/fb?shop=<PARAMVAR> in the back office."


@pytest.mark.parametrize("configured, kwargs, expected", [
    ("http://h.example/a?q=<PARAMVAR>", {"scheme": "https"}, "https://h.example/a?q=<PARAMVAR>"),
    ("http://h.example:8080/a", {"scheme": "https"}, "https://h.example/a"),
    ("http://h.example:8080/a", {"scheme": "http", "port": 8080}, "http://h.example:8080/a"),
    ("http://h.example/a?q=1", {"scheme": "https", "path": "/a/"}, "https://h.example/a/?q=1"),
    ("http://h.example", {"scheme": "https"}, "https://h.example/"),
    ("http://h.example/a", {"scheme": "https", "host": "www.h.example", "port": 443}, "https://www.h.example/a"),
])
def test_suggested_url(configured: str, kwargs: dict, expected: str) -> None:
    from feedback_check.probe.url import suggested_url
    assert suggested_url(configured, **kwargs) == expected
