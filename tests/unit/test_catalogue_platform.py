"""Catalogue texts take their platform values from the platform profile in force (one fact, one place)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.diagnosis.tls import tls_findings
from feedback_check.explain import explain
from feedback_check.findings import CATALOGUE, PLATFORM_VALUE, info_for, make_finding
from feedback_check.platform import Platform, load_platform
from feedback_check.probe.tls import TlsResult, TlsStatus
from feedback_check.probe.url import check_url

SHIPPED = Path(__file__).parents[2] / "config" / "postfinance.yaml"


def custom_platform(tmp_path: Path) -> Platform:
    """The shipped profile with other ports, another TLS floor and date, and one more published range."""
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in (("feedback: [80, 443]", "feedback: [443, 8443]"), ('min_version: "1.2"', 'min_version: "1.3"'),
                     ("min_version_since: 2018-04-30", "min_version_since: 2027-01-15"),
                     ("    - {cidr: 185.8.52.0/22, provenance: doc}",
                      "    - {cidr: 185.8.52.0/22, provenance: doc}\n    - {cidr: 198.51.100.0/24, provenance: doc}")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "platform.yaml"
    path.write_text(text, encoding="utf-8")
    return load_platform(path)


def test_the_shipped_profile_gives_the_catalogue_its_published_wording() -> None:
    assert info_for("url.port_not_allowed").title == "Post-sale URL uses a port other than 80 or 443"
    assert info_for("url.port_not_allowed").why.endswith("reach only ports 80 and 443.")
    assert info_for("url.port_not_allowed").fix.startswith("Serve the handler on port 443 (or 80) ")
    assert info_for("tls.protocol_too_old").title == "Server cannot negotiate TLS 1.2 or newer"
    assert info_for("tls.protocol_too_old").why.endswith("requires TLS 1.2 on post-sale URLs since 30 April 2018.")
    assert info_for("firewall.legacy_allowlist").why.endswith(
        "now also sends from 185.139.244.0/22 and 91.208.214.0/24.")


def test_another_platform_profile_changes_the_texts(tmp_path: Path) -> None:
    platform = custom_platform(tmp_path)
    assert info_for("url.port_not_allowed", platform).title == "Post-sale URL uses a port other than 443 or 8443"
    assert "reach only ports 443 and 8443." in info_for("url.port_not_allowed", platform).why
    assert info_for("url.port_not_allowed", platform).fix.startswith("Serve the handler on port 8443 (or 443) ")
    why = info_for("tls.protocol_too_old", platform).why
    assert "TLS 1.3 on post-sale URLs since 15 January 2027." in why and "1.2" not in why
    assert info_for("firewall.legacy_allowlist", platform).why.endswith(
        "from 185.139.244.0/22, 91.208.214.0/24 and 198.51.100.0/24.")
    (explained,) = explain("url.port_not_allowed", platform).explanations
    assert explained.title == "Post-sale URL uses a port other than 443 or 8443"


def test_findings_made_by_the_probe_carry_the_profile_values(tmp_path: Path) -> None:
    platform = custom_platform(tmp_path)
    check = check_url("https://shop.example:9443/pf", paramvar=None, platform=platform)
    (port,) = [f for f in check.findings if f.code == "url.port_not_allowed"]
    assert port.title == "Post-sale URL uses a port other than 443 or 8443"
    old = TlsResult(address="192.0.2.1", port=443, host="shop.example", status=TlsStatus.PROTOCOL_TOO_OLD,
                    version="TLSv1.2", cipher="ECDHE-RSA-AES128-GCM-SHA256", error="unsupported protocol")
    (too_old,) = [f for f in tls_findings(old, "https://shop.example/pf", platform) if f.code == "tls.protocol_too_old"]
    assert too_old.title == "Server cannot negotiate TLS 1.3 or newer"
    assert too_old.detail.endswith("requires TLS 1.3 or newer since 15 January 2027.")


def test_a_profile_without_the_date_leaves_it_out(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace("  min_version_since: 2018-04-30", "  # no date"),
                    encoding="utf-8")
    assert info_for("tls.protocol_too_old", load_platform(path)).why.endswith("requires TLS 1.2 on post-sale URLs.")


def test_a_bad_date_names_the_file_and_line(tmp_path: Path) -> None:
    from feedback_check.errors import ConfigError

    path = tmp_path / "platform.yaml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace("min_version_since: 2018-04-30",
                                                                "min_version_since: soon"), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_platform(path)
    assert raised.value.field == "tls.min_version_since" and raised.value.line is not None


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_placeholder_of_the_catalogue_is_a_platform_value(code: str) -> None:
    facts = load_platform().facts()
    info = CATALOGUE[code]
    for text in (info.title, info.why, info.fix):
        assert set(PLATFORM_VALUE.findall(text)) <= set(facts), text
    filled = info_for(code)
    assert not any(PLATFORM_VALUE.search(t) and set(PLATFORM_VALUE.findall(t)) & set(facts)
                   for t in (filled.title, filled.why, filled.fix))
    assert make_finding(code, "t").title == filled.title


def test_no_catalogue_text_repeats_a_platform_value_literally() -> None:
    platform = load_platform()
    literals = ["80 or 443", "80 and 443", "30 April 2018", *(r.cidr for r in platform.ranges.ranges)]
    for info in CATALOGUE.values():
        for text in (info.title, info.why):
            assert not any(literal in text for literal in literals), text
