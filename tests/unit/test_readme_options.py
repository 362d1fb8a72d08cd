"""Every option of every subcommand is documented in the README, in its command's section (audit 12).

The README is the reference users read; `--help` is what the code accepts. This compares the two:
each click option's long name (or its only name) must appear as `` `--name`` `` in the README section
that documents the command (for check/probe/firewall also the shared "Options of the network commands"
table). A new option without a README line fails here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest

from feedback_check.cli import COMMANDS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
NETWORK = "### Options of the network commands"
#: command -> the headings (their start) of the README sections that document its options.
SECTIONS = {
    "check": ["### Before go-live: `check`", NETWORK],
    "probe": ["### One URL: `probe`", NETWORK],
    "firewall": ["### Firewall rules: `firewall`", NETWORK],
    "sign": ["### Signatures: `sign`, `verify`"],
    "verify": ["### Signatures: `sign`, `verify`"],
    "explain": ["### Codes: `explain`", "### Other commands"],
    "ranges": ["### Other commands"],
    "demo": ["### Other commands"],
    "init": ["### Other commands"],
    "serve": ["### Prometheus: the exporter (`feedback-check serve`)"],
    "logs": ["## Access logs"],
}


def section(heading: str) -> str:
    """The README text from `heading` to the next heading of the same or a higher level."""
    start = README.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    after = README.index("\n", start)
    following = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(README, after)
    return README[start:following.start() if following else len(README)]


def command(name: str) -> click.Command:
    module, attribute, _ = COMMANDS[name]
    found = getattr(importlib.import_module(module), attribute)
    assert isinstance(found, click.Command)
    return found


def options(cmd: click.Command) -> dict[str, list[str]]:
    """Each option's main name (its first long one) -> every spelling of it (`-t`, `--timeout`)."""
    found = {}
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.hidden or "--help" in param.opts:
            continue
        spellings = [*param.opts, *param.secondary_opts]
        longs = [o for o in spellings if o.startswith("--")]
        found[longs[0] if longs else spellings[0]] = spellings
    return found


def documented(spelling: str, text: str) -> bool:
    """`--name`, `--name VALUE`, `-x, --name …` or `` `-x` `` in a table cell or list item."""
    return bool(re.search(rf"`(?:-\w, )?{re.escape(spelling)}(?![\w-])", text))


def test_every_command_has_a_readme_section() -> None:
    assert set(SECTIONS) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_in_the_readme(name: str) -> None:
    text = "".join(section(h) for h in SECTIONS[name])
    missing = [main for main, spellings in options(command(name)).items()
               if not any(documented(s, text) for s in spellings)]
    assert not missing, f"{name}: options in --help but not in the README's section: {missing}"


def test_the_network_table_heading_names_exactly_the_options_firewall_shares() -> None:
    text = section(NETWORK)
    heading = text.splitlines()[0]
    named = re.findall(r"`(-[\w-]+)`", heading.split("`firewall` takes", 1)[1])
    firewall = {s for spellings in options(command("firewall")).values() for s in spellings}
    rows = re.findall(r"^\| `(?:-\w, )?(--[\w-]+)", text, re.MULTILINE)
    shared = [row for row in rows if row in firewall]
    assert all(n in firewall for n in named), f"{heading}: names an option firewall does not have"
    assert {next(o for o in options(command("firewall")) if n in options(command("firewall"))[o]) for n in named} \
        == set(shared), f"{heading}: firewall shares {shared}"
