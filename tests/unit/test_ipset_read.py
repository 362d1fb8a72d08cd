"""Reading `ipset save` and `ipset list` output line by line: blocks of several sets, the save lines'
words, and one clear error naming the line for what is neither."""

from __future__ import annotations

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import ipset


def members(sets: dict[str, ipset.IpSet], name: str) -> list[str]:
    return sets[name].sources(["src"], 443, "tcp", sets)[0].cidrs()


def test_a_listing_of_several_sets_each_with_its_own_header_and_members() -> None:
    listing = """Name: allow
Type: hash:net
Revision: 7
Header: family inet hashsize 1024 maxelem 65536
Size in memory: 1240
References: 1
Number of entries: 2
Members:
185.139.244.0/22
91.208.214.0/24

Name: single
Type: hash:ip
Header: family inet
Members:
185.8.52.10 timeout 0
"""
    sets = ipset.parse(listing, "list")
    assert sorted(sets) == ["allow", "single"]
    assert members(sets, "allow") == ["91.208.214.0/24", "185.139.244.0/22"]
    assert members(sets, "single") == ["185.8.52.10/32"]


def test_save_lines_after_a_listing_are_not_read_as_its_members() -> None:
    text = ("Name: allow\nType: hash:net\nMembers:\n185.139.244.0/22\n"
            "# a save follows\ncreate more hash:ip family inet\nadd more 185.8.52.10\nadd allow 10.0.0.0/8\n")
    sets = ipset.parse(text, "sets")
    assert members(sets, "allow") == ["10.0.0.0/8", "185.139.244.0/22"]
    assert members(sets, "more") == ["185.8.52.10/32"]


def test_a_save_line_with_a_quoted_comment_and_a_range() -> None:
    sets = ipset.parse('create a hash:net comment\nadd a 185.8.52.0/22 comment "PostFinance, Basel"\n'
                       "add a 10.0.0.1-10.0.0.2\n", "sets")
    assert members(sets, "a") == ["10.0.0.1/32", "10.0.0.2/32", "185.8.52.0/22"]


@pytest.mark.parametrize(("text", "message"), [
    ("Name: a\nMembers:\n1.2.3.4\n", r"sets:2: 'Members:' without a preceding Name: and Type:"),
    ("Type: hash:ip\nMembers:\n", r"sets:2: 'Members:' without a preceding Name: and Type:"),
    ("create a hash:ip\nadd a\n", r"sets:2: incomplete 'add' line"),
    ('create a hash:ip comment\nadd a 1.2.3.4 comment "cut short\n', r"sets:2: cannot split the line into words"),
    ("create a hash:ip\n1.2.3.4\n", r"sets:2: not an ipset save/list line: '1.2.3.4'"),
    ("Name: a\nType: hash:ip\nColour: blue\n", r"sets:3: not an ipset save/list line: 'Colour: blue'"),
])
def test_a_line_that_is_neither_save_nor_list_output_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ipset.parse(text, "sets")
