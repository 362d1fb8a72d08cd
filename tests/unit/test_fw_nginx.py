"""nginx allow/deny for the location serving the feedback URL, on examples/firewall/nginx."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import nginx
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.model import Action
from tests.unit.fw_formats_helpers import (
    admitted,
    analyse,
    blocked,
    detected_formats,
    example,
    missing,
)

DEBIAN = "nginx/debian/nginx.conf"
VHOST = str(example("nginx/debian/sites-enabled/shop.example.ch"))
SNIPPET = str(example("nginx/debian/snippets/postfinance-allow.conf"))
PLESK = "nginx/plesk/nginx.conf"
PLESK_EXTRA = str(example("nginx/plesk/vhost_nginx.conf"))


def _deciding(evaluation, cidr: str) -> list[tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    from feedback_check.firewall.ipspace import AddressSet
    return [(d.origin.file, d.origin.line) for d in evaluation.deciding(AddressSet.parse(cidr)) if d.origin]


def _parse(text: str, **context: object):  # type: ignore[no-untyped-def]
    ctx = ParseContext(port=int(context.pop("port", 443)), **context)  # type: ignore[arg-type]
    ruleset = nginx.parse(text, "t.conf", ctx)
    return ruleset, evaluate(ruleset, ctx.port), ctx


def test_debian_legacy_snippet_in_the_postfinance_location() -> None:
    ruleset, evaluation, ctx = analyse(nginx, DEBIAN, host="shop.example.ch", path="/postfinance/feedback")
    assert admitted(evaluation) == ["185.8.52.254/32", "185.8.53.254/32", "185.8.54.254/32"]
    assert blocked(evaluation)[0] == "91.208.214.0/24" and "185.139.244.0/22" in blocked(evaluation)
    assert _deciding(evaluation, "185.139.244.0/22") == [(VHOST, 37)]             # deny all;
    assert _deciding(evaluation, "185.8.53.254/32") == [(SNIPPET, 3)]             # allow 185.8.53.254;
    assert any("location /postfinance/" in note for note in ruleset.notes)
    assert ruleset.unparsed == ()
    assert nginx.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == [
        f"# in location /postfinance/ ({VHOST}:35), before `deny all;` ({VHOST}:37):",
        "allow 91.208.214.0/24;", "allow 185.8.52.0/22;", "allow 185.139.244.0/22;"]


def test_regex_location_wins_over_the_prefix_for_php_scripts() -> None:
    # The classic trap: /postfinance/feedback.php is served by `location ~ \.php$`, which has no rules.
    ruleset, evaluation, ctx = analyse(nginx, DEBIAN, host="shop.example.ch", path="/postfinance/feedback.php")
    assert blocked(evaluation) == []
    assert _deciding(evaluation, "91.208.214.0/24") == [(VHOST, 45)]
    assert nginx.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == []


def test_server_regex_name_and_inherited_server_rules() -> None:
    ruleset, evaluation, ctx = analyse(nginx, DEBIAN, host="preview-feature-7.example.ch", path="/")
    assert admitted(evaluation) == []
    assert _deciding(evaluation, "185.8.52.0/22") == [(VHOST, 64)]
    assert any("inherited from server staging.example.ch" in note for note in ruleset.notes)
    assert nginx.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[0].startswith(
        "# in server staging.example.ch ~^preview-")


def test_satisfy_all_with_auth_basic_is_named() -> None:
    ruleset, evaluation, _ = analyse(nginx, "nginx/debian/sites-enabled/shop.example.ch",
                                     host="shop.example.ch", path="/admin/orders")
    assert admitted(evaluation) == []
    assert "203.0.113.4" in evaluation.admitted
    assert any("satisfy all" in note and "401" in note for note in ruleset.notes)


def test_port_80_uses_the_default_server_for_an_unknown_host() -> None:
    ruleset, evaluation, _ = analyse(nginx, DEBIAN, port=80, host="other.example.org", path="/postfinance/x")
    assert blocked(evaluation) == []
    assert any("default server for port 80" in note for note in ruleset.notes)


def test_plesk_include_with_absolute_path_and_caret_tilde_location() -> None:
    ruleset, evaluation, ctx = analyse(nginx, PLESK, host="www.shop.example.ch",
                                       path="/modules/postfinancecheckout/notify")
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.0/24"]
    assert _deciding(evaluation, "91.208.214.0/24") == [(PLESK_EXTRA, 13)]
    assert _deciding(evaluation, "185.139.244.0/22") == [(PLESK_EXTRA, 11)]
    assert nginx.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1:] == ["allow 91.208.214.0/24;"]


def test_plesk_server_level_rules_with_satisfy_any() -> None:
    ruleset, evaluation, _ = analyse(nginx, PLESK, host="shop.example.ch", path="/index.php?fc=module")
    assert admitted(evaluation) == []
    assert _deciding(evaluation, "185.8.52.0/22") == [(PLESK_EXTRA, 5)]
    assert any("satisfy any" in note for note in ruleset.notes)


def test_nested_location_inside_caret_tilde() -> None:
    _, evaluation, _ = analyse(nginx, PLESK, host="shop.example.ch", path="/.well-known/acme-challenge/x/.y")
    assert admitted(evaluation) == []                        # nested regex: deny all
    _, evaluation, _ = analyse(nginx, PLESK, host="shop.example.ch", path="/.well-known/acme-challenge/tok")
    assert blocked(evaluation) == []                         # allow all


def test_exact_location_and_longest_prefix() -> None:
    text = """
    http {
      deny 185.8.52.0/22;
      server {
        listen 443 ssl;
        server_name shop.example;
        location = /pf { allow all; }
        location /pf { deny all; }
        location /pf/long { allow 185.139.244.0/22; deny all; }
        location / { }
      }
    }"""
    _, exact, _ = _parse(text, host="shop.example", path="/pf")
    assert blocked(exact) == []
    _, longest, _ = _parse(text, host="shop.example", path="/pf/long/x")
    assert admitted(longest) == ["185.139.244.0/22"]
    _, prefix, _ = _parse(text, host="shop.example", path="/pfx")
    assert admitted(prefix) == []
    _, root, _ = _parse(text, host="shop.example", path="/")
    assert admitted(root) == ["91.208.214.0/24", "185.139.244.0/22"]      # http-level deny inherited


def test_first_match_order_and_ipv6() -> None:
    ruleset, evaluation, _ = _parse("location / { deny 185.8.53.0/24; allow 185.8.52.0/22; allow 2001:db8::/32;"
                                    " deny all; }", path="/")
    assert admitted(evaluation) == ["185.8.52.0/24", "185.8.54.0/23"]
    assert "2001:db8::5" in evaluation.admitted
    assert [r.action for r in ruleset.chains["input"].rules] == [Action.DROP, Action.ACCEPT, Action.ACCEPT,
                                                                 Action.DROP]


def test_limit_except_and_address_conditions_are_uncertain() -> None:
    text = """
    geo $pf_ok { default 0; 185.139.244.0/22 1; }
    server {
      listen 443;
      location /pf {
        limit_except GET { allow 185.8.52.0/22; deny all; }
        if ($pf_ok = 0) { return 403; }
      }
    }"""
    _, evaluation, _ = _parse(text, path="/pf")
    assert [rule.origin.line for rule, _ in evaluation.uncertain] == [6, 7]
    assert blocked(evaluation) == []


def test_missing_include_is_unparsed_and_bad_syntax_names_the_line() -> None:
    ruleset, _, _ = _parse("server {\n listen 443;\n include /nowhere/acl.conf;\n}\n", path="/")
    assert [o.line for o in ruleset.unparsed] == [3]
    assert any("not found" in note for note in ruleset.notes)
    with pytest.raises(ConfigError) as error:
        _parse("server {\n  listen 443;\n  location / {\n    allow 1.2.3.4\n  }\n", path="/")
    assert error.value.line == 4
    with pytest.raises(ConfigError, match="not closed"):
        _parse("server {\n listen 443;\n", path="/")


def test_comments_quotes_and_multiline_directives() -> None:
    text = ('server {  # shop\n  listen\n    443\n    ssl;\n  server_name "shop.example";\n'
            '  location "/pf" { allow\n 91.208.214.0/24; # PostFinance\n deny all; }\n}\n')
    _, evaluation, _ = _parse(text, host="shop.example", path="/pf/x")
    assert admitted(evaluation) == ["91.208.214.0/24"]


@pytest.mark.parametrize("name", ["debian/nginx.conf", "debian/sites-enabled/shop.example.ch",
                                  "debian/snippets/postfinance-allow.conf", "plesk/nginx.conf",
                                  "plesk/vhost_nginx.conf"])
def test_examples_are_detected_as_nginx_only(name: str) -> None:
    assert detected_formats(example(f"nginx/{name}").read_text(encoding="utf-8")) == ["nginx"]


def test_fix_lines_applied_before_the_deny_admit_everything() -> None:
    vhost = "nginx/debian/sites-enabled/shop.example.ch"
    ruleset, evaluation, ctx = analyse(nginx, vhost, host="shop.example.ch", path="/postfinance/feedback")
    fix = nginx.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    lines = example(vhost).read_text(encoding="utf-8").splitlines()
    lines[36:36] = fix                                            # before `deny all;` (line 37)
    fixed = ParseContext(port=443, host="shop.example.ch", path="/postfinance/feedback",
                         base_dir=example(vhost).parent)
    after = evaluate(nginx.parse("\n".join(lines), str(example(vhost)), fixed), 443)
    assert blocked(after) == []


def test_quoted_strings_over_lines_escapes_and_braced_variables() -> None:
    # A quoted string over two lines counts both; `\"` is a quote inside the string; `${host}` is part
    # of the word, not a block.
    text = ('server {\n  listen 443;\n  location /pf {\n    add_header X-Note "one\ntwo \\"quoted\\"";\n'
            '    return 301 https://${host}$request_uri;\n    allow 91.208.214.0/24;\n    deny all;\n  }\n}\n')
    tokens = nginx._tokens(text, "t.conf")
    assert tokens[8:11] == [("add_header", 4, False), ("X-Note", 4, False), ('one\ntwo "quoted"', 4, True)]
    assert tokens[14] == ("https://${host}$request_uri", 6, False)
    _, evaluation, _ = _parse(text, path="/pf/x")
    assert admitted(evaluation) == ["91.208.214.0/24"]
    assert _deciding(evaluation, "185.139.244.0/22") == [("t.conf", 8)]     # deny all;
    with pytest.raises(ConfigError, match="unterminated quoted string") as error:
        _parse('server {\n  listen 443;\n  server_name "shop\n}\n', path="/")
    assert error.value.line == 3


def test_an_include_loop_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.conf"
    loop.write_text(f"include {loop};\n")
    with pytest.raises(ConfigError, match="includes"):
        nginx.parse(loop.read_text(), str(loop), ParseContext(port=443, path="/"))
