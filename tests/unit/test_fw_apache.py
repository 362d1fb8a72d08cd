"""Apache 2.4 Require and 2.2 Order/Allow/Deny, on examples/firewall/apache."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import apache
from feedback_check.firewall.evaluate import LayerEvaluation, evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Ruleset
from tests.unit.fw_formats_helpers import (
    PUBLISHED,
    admitted,
    analyse,
    blocked,
    detected_formats,
    example,
    missing,
)

DEBIAN = "apache/debian/sites-enabled/shop.example.ch.conf"
VHOST = str(example(DEBIAN))
BLOCKLIST = str(example("apache/debian/conf-available/shop-blocklist.conf"))
HTACCESS = "apache/cpanel/.htaccess"
PLESK = "apache/plesk/httpd.conf"
PLESK_EXTRA = str(example("apache/plesk/vhost_ssl.conf"))


def _deciding(evaluation: LayerEvaluation, cidr: str) -> list[tuple[str, int | None, str]]:
    return [(d.origin.file, d.origin.line, d.action.value)
            for d in evaluation.deciding(AddressSet.parse(cidr)) if d.origin]


def _parse(text: str, path: str = "/", port: int = 443, host: str | None = None
           ) -> tuple[Ruleset, LayerEvaluation, ParseContext]:
    ctx = ParseContext(port=port, path=path, host=host)
    ruleset = apache.parse(text, "t.conf", ctx)
    return ruleset, evaluate(ruleset, port), ctx


def _with_fix(text: str, fix: list[str], before: str) -> str:
    """`text` with the fix lines inserted before the last occurrence of `before`."""
    index = text.rindex(before)
    return text[:index] + "\n".join(fix) + "\n" + text[index:]


def test_require_any_then_require_none_merged_with_authmerging_and() -> None:
    ruleset, evaluation, ctx = analyse(apache, DEBIAN, host="shop.example.ch", path="/postfinance/notify")
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/23"]
    assert blocked(evaluation) == ["91.208.214.0/24", "185.139.246.0/23"]
    assert _deciding(evaluation, "185.139.246.0/23") == [(VHOST, 42, "drop")]    # RequireNone > Require ip
    assert _deciding(evaluation, "185.139.244.0/23") == [(VHOST, 33, "accept")]
    assert _deciding(evaluation, "91.208.214.0/24") == [(VHOST, 33, "drop")]     # not in the RequireAny
    # `Require not host` in the included blocklist cannot be evaluated: uncertain.
    assert [(rule.origin.file, rule.origin.line) for rule, _ in evaluation.uncertain] == [(BLOCKLIST, 6)]
    assert [o.line for o in ruleset.unparsed] == [17]           # the letsencrypt include is not there
    fix = apache.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    assert fix[1:] == ['<Location "/postfinance/notify">', "    AuthMerging Or",
                       "    Require ip 91.208.214.0/24 185.139.246.0/23", "</Location>"]
    # Applying the fix admits every published range.
    fixed_text = _with_fix(example(DEBIAN).read_text(encoding="utf-8"), fix, "</VirtualHost>")
    _, after, _ = _parse(fixed_text, path="/postfinance/notify", host="shop.example.ch")
    assert blocked(after) == []


def test_plain_require_lines_get_a_require_ip_line() -> None:
    ruleset, evaluation, ctx = analyse(apache, DEBIAN, host="shop.example.ch", path="/postfinance/other")
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.0/24"]
    assert apache.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == [
        f'# in <Location "/postfinance"> ({VHOST}:31):', "Require ip 91.208.214.0/24"]
    # /postfinancex is not under <Location "/postfinance">: the blocklist's RequireAll grants it.
    _, other, _ = analyse(apache, DEBIAN, host="shop.example.ch", path="/postfinancex")
    assert blocked(other) == []
    assert _deciding(other, "91.208.214.0/24") == [(BLOCKLIST, 4, "accept")]


def test_require_all_with_valid_user_refuses_the_post_sale() -> None:
    ruleset, evaluation, _ = analyse(apache, DEBIAN, host="shop.example.ch", path="/admin/orders")
    assert admitted(evaluation) == []
    assert evaluation.admitted == AddressSet.empty()        # valid-user: nobody without credentials
    assert any("valid-user" in note and "no credentials" in note for note in ruleset.notes)


def test_files_section_and_port_80_vhost() -> None:
    _, evaluation, _ = analyse(apache, DEBIAN, host="shop.example.ch", path="/xmlrpc.php")
    # <Files> is merged before <Location />, whose RequireAll (AuthMerging Off) replaces it.
    assert blocked(evaluation) == []
    ruleset, port80, _ = analyse(apache, DEBIAN, port=80, host="www.shop.example.ch", path="/postfinance/x")
    assert blocked(port80) == []
    assert any("sections applied in order: <VirtualHost *:80>" in note for note in ruleset.notes)


def test_htaccess_2_2_files_section_with_the_2019_list() -> None:
    ruleset, evaluation, ctx = analyse(apache, HTACCESS, path="/modules/pf/postfinance_notify.php")
    assert admitted(evaluation) == ["185.8.52.254/32", "185.8.53.254/32", "185.8.54.254/32"]
    htaccess = str(example(HTACCESS))
    assert _deciding(evaluation, "185.139.244.0/22") == [(htaccess, 11, "drop")]      # Deny from all
    assert _deciding(evaluation, "185.8.54.254/32") == [(htaccess, 12, "accept")]
    assert "62.72.112.130" in evaluation.admitted                    # netmask form
    fix = apache.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    assert fix == [f'# in <Files "postfinance_notify.php"> ({htaccess}:9) (Apache 2.2 access control):',
                   "Allow from 91.208.214.0/24 185.8.52.0/22 185.139.244.0/22"]
    fixed = _with_fix(example(HTACCESS).read_text(encoding="utf-8"), fix[1:], "</Files>\n# END")
    _, after, _ = _parse(fixed, path="/postfinance_notify.php")
    assert blocked(after) == []


def test_ifmodule_negation_is_skipped() -> None:
    ruleset, evaluation, _ = analyse(apache, HTACCESS, path="/backup.sql")
    assert admitted(evaluation) == []
    assert all(rule.origin.line != 26 for rule in ruleset.chains["input"].rules)   # the 2.2 branch
    _, other, _ = analyse(apache, HTACCESS, path="/index.php")
    assert blocked(other) == []


def test_plesk_order_allow_deny_partial_addresses_and_satisfy_any() -> None:
    ruleset, evaluation, ctx = analyse(apache, PLESK, port=7081, host="shop.example.ch",
                                       path="/modules/postfinance/notify.php")
    assert admitted(evaluation) == ["91.208.214.0/24", "185.8.52.0/24", "185.8.54.0/23", "185.139.244.0/22"]
    assert blocked(evaluation) == ["185.8.53.0/24"]
    assert _deciding(evaluation, "185.8.53.0/24") == [(PLESK_EXTRA, 5, "drop")]     # Deny from 185.8.53.
    fix = apache.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    assert fix[1:] == ["Require ip 185.8.53.0/24"]                  # Satisfy Any: one of the two suffices


def test_boolean_logic_matches_apache() -> None:
    text = """
    <Location /pf>
      <RequireAll>
        <RequireAny>
          Require ip 185.8.52.0/22
          Require ip 91.208.214.0/24
        </RequireAny>
        Require not ip 185.8.53.0/24
        <RequireNone>
          Require ip 91.208.214.128/25
        </RequireNone>
      </RequireAll>
    </Location>"""
    ruleset, evaluation, ctx = _parse(text, path="/pf/notify")
    assert admitted(evaluation) == ["91.208.214.0/25", "185.8.52.0/24", "185.8.54.0/23"]
    fix = apache.fix_lines(ruleset, evaluation, missing(evaluation), ctx)
    assert fix[1] == '<Location "/pf/notify">'
    _, after, _ = _parse(text + "\n" + "\n".join(fix), path="/pf/notify")
    assert blocked(after) == []


def test_2_2_order_deny_allow_default_and_unknown_hosts() -> None:
    _, evaluation, _ = _parse("Order deny,allow\nDeny from 185.8.52.0/22\n", path="/x")
    assert blocked(evaluation) == ["185.8.52.0/22"]
    _ruleset, evaluation, _ = _parse("Order allow,deny\nAllow from postfinance.ch 91.208.214\n", path="/x")
    assert admitted(evaluation) == ["91.208.214.0/24"]
    assert "needs reverse DNS" in evaluation.uncertain[0][0].unsupported[0]


def test_no_access_rules_grants_with_a_note() -> None:
    ruleset, evaluation, _ = _parse("<VirtualHost *:443>\n  ServerName a.example\n</VirtualHost>\n", path="/")
    assert evaluation.admitted == AddressSet.everything()
    assert any("grants access" in note for note in ruleset.notes)
    assert ruleset.chains["input"].policy is Action.DROP


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(ConfigError) as error:
        _parse("<Location /a>\n  Require all granted\n</Directory>\n")
    assert error.value.line == 3
    with pytest.raises(ConfigError, match="not closed"):
        _parse("<Location /a>\n  Require all granted\n")
    with pytest.raises(ConfigError, match="quotes"):
        _parse('<Location "/a>\n</Location>\n')


def test_continuation_lines_and_comments() -> None:
    text = "# PostFinance\n<Location /pf>\n  Require ip 185.139.244.0/22 \\\n     91.208.214.0/24\n</Location>\n"
    _, evaluation, _ = _parse(text, path="/pf")
    assert admitted(evaluation) == ["91.208.214.0/24", "185.139.244.0/22"]


@pytest.mark.parametrize("name", ["debian/sites-enabled/shop.example.ch.conf",
                                  "debian/conf-available/shop-blocklist.conf", "cpanel/.htaccess",
                                  "plesk/httpd.conf", "plesk/vhost_ssl.conf"])
def test_examples_are_detected_as_apache_only(name: str) -> None:
    assert detected_formats(example(f"apache/{name}").read_text(encoding="utf-8")) == ["apache"]


def test_per_range_calls_give_the_same_block_and_it_works() -> None:
    # Block fixes must not be split when the analysis merges the per-range lines.
    ruleset, evaluation, _ = analyse(apache, DEBIAN, host="shop.example.ch", path="/postfinance/notify")
    ctx = ParseContext(port=443, path="/postfinance/notify", published=PUBLISHED)
    calls = [apache.fix_lines(ruleset, evaluation, AddressSet.parse(cidr) - evaluation.admitted, ctx)
             for cidr in ("91.208.214.0/24", "185.139.244.0/22")]
    assert calls[0] == calls[1]
    assert "    Require ip 91.208.214.0/24 185.139.244.0/22" in calls[0]      # the whole published /22
    fixed = _with_fix(example(DEBIAN).read_text(encoding="utf-8"), calls[0], "</VirtualHost>")
    _, after, _ = _parse(fixed, path="/postfinance/notify", host="shop.example.ch")
    assert blocked(after) == []


def test_absolute_includes_are_found_in_the_copied_configuration(tmp_path: Path) -> None:
    # /etc/apache2/<here> is looked for below the copy; an empty included file is found (no note).
    (tmp_path / "conf-enabled").mkdir()
    (tmp_path / "sites-enabled").mkdir()
    (tmp_path / "conf-enabled" / "pf.conf").write_text("<Location /pf>\n  Require ip 185.139.244.0/22\n</Location>\n")
    (tmp_path / "conf-enabled" / "empty.conf").write_text("")
    site = tmp_path / "sites-enabled" / "shop.conf"
    text = ("<VirtualHost *:443>\nInclude /etc/apache2/conf-enabled/*.conf\nInclude /etc/apache2/conf-enabled/empty.conf\n"
            "Include /etc/apache2/missing.conf\nIncludeOptional /etc/apache2/optional.conf\n</VirtualHost>\n")
    site.write_text(text)
    ruleset = apache.parse(text, str(site), ParseContext(port=443, path="/pf"))
    assert admitted(evaluate(ruleset, 443)) == ["185.139.244.0/22"]
    assert [o.line for o in ruleset.unparsed] == [4]             # only the missing plain Include
    assert [n for n in ruleset.notes if "was not found" in n] == [
        (f"Include /etc/apache2/missing.conf ({site}:4) was not found next to the file: access rules in it "
         "are not analysed.")]


def test_an_include_loop_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.conf"
    loop.write_text(f"Include {loop}\n")
    with pytest.raises(ConfigError, match="includes"):
        apache.parse(loop.read_text(), str(loop), ParseContext(port=443, path="/"))


def test_directory_sections_without_a_document_root_are_not_analysed() -> None:
    ruleset, evaluation, _ = _parse("<Directory /var/www>\n  Require all denied\n</Directory>\n", path="/x")
    assert blocked(evaluation) == []
    assert any("No DocumentRoot or Alias" in note for note in ruleset.notes)
    ruleset, evaluation, _ = _parse("DocumentRoot /var/www\n<Directory /var/www>\n  Require all denied\n"
                                    "</Directory>\n", path="/x")
    assert admitted(evaluation) == []
    assert not any("No DocumentRoot or Alias" in note for note in ruleset.notes)


def test_access_rules_in_an_if_section_are_uncertain() -> None:
    text = ("<Location /pf>\n  Require ip 185.139.244.0/22\n  <If \"%{HTTP_HOST} == 'a'\">\n"
            "    Require all denied\n  </If>\n  <Else>\n    ServerSignature Off\n  </Else>\n</Location>\n")
    _, evaluation, _ = _parse(text, path="/pf")
    assert admitted(evaluation) == ["185.139.244.0/22"]
    assert [(rule.origin.line, rule.unsupported) for rule, _ in evaluation.uncertain] == [
        (3, ("<if> section: its access rules depend on the request",))]
