"""The platform profile and user-supplied range lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.platform import load_platform, load_range_list


def test_shipped_profile_holds_the_published_facts() -> None:
    platform = load_platform()
    assert [r.cidr for r in platform.ranges.ranges] == ["185.139.244.0/22", "91.208.214.0/24", "185.8.52.0/22"]
    assert platform.feedback_ports == (80, 443)
    assert platform.tls_min_version == "1.2"
    assert platform.ranges.addresses.size() == 1024 + 256 + 1024
    assert "PAYIDSUB" in platform.sha_out_parameters and len(platform.sha_out_parameters) == 63
    assert platform.assumption("timing.budget_seconds") is not None
    assert platform.statuses[9].startswith("payment requested")


def test_plain_range_list_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "ranges.txt"
    path.write_text("# pasted from PostFinance\n185.139.244.0/22\n\n91.208.214.0/24  # DC 2\n", encoding="utf-8")
    ranges = load_range_list(path, load_platform())
    assert ranges.custom and [r.cidr for r in ranges.ranges] == ["185.139.244.0/22", "91.208.214.0/24"]


def test_plain_allowlist_serves_as_range_list() -> None:
    """The shipped plain allowlist example (`;` comments, an `a-b` range) is a firewall layer and a
    --ranges list alike; the range is listed as the CIDRs it covers."""
    path = Path(__file__).resolve().parents[2] / "examples/firewall/plain/postfinance-allowlist.txt"
    ranges = load_range_list(path, load_platform())
    assert [r.cidr for r in ranges.ranges] == ["185.139.244.0/22", "91.208.214.0/25", "185.8.52.0/22",
                                               "203.0.113.10"]


def test_range_that_is_not_one_network_becomes_its_cidrs(tmp_path: Path) -> None:
    path = tmp_path / "ranges.txt"
    path.write_text("10.0.0.1-10.0.0.6 ; odd bounds\n", encoding="utf-8")
    ranges = load_range_list(path, load_platform())
    assert [r.cidr for r in ranges.ranges] == ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    assert ranges.addresses.size() == 6


def test_yaml_range_list_in_the_platform_shape(tmp_path: Path) -> None:
    path = tmp_path / "ranges.yaml"
    path.write_text("ranges:\n  source: mail from PostFinance\n  retrieved: 2020-01-01\n  published:\n"
                    "    - {cidr: 185.8.52.0/22}\n", encoding="utf-8")
    ranges = load_range_list(path, load_platform())
    assert ranges.source == "mail from PostFinance" and ranges.retrieved == dt.date(2020, 1, 1)
    assert ranges.is_stale(dt.date(2026, 1, 1))


def test_bad_range_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "ranges.txt"
    path.write_text("185.139.244.0/22\n185.139.244.0/33\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_range_list(path, load_platform())
    assert caught.value.line == 2 and caught.value.file == str(path)


def test_platform_override_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("version: 1\nranges:\n  source: x\n  published: [1.2.3.0/24]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_platform(path)
    assert caught.value.field == "ports.feedback"


def test_platform_pickles_after_its_facts_were_computed() -> None:
    """Worker processes (firewall analyses under a deadline) receive the platform pickled: the values
    it caches once computed must not stop that."""
    import pickle

    platform = load_platform()
    facts = dict(platform.facts())
    assert platform.legacy_addresses
    copy = pickle.loads(pickle.dumps(platform))
    assert dict(copy.facts()) == facts and copy.legacy_addresses == platform.legacy_addresses
