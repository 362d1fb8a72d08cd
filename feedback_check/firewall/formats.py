"""The registry of firewall formats: one module per format, all parsed into the common rule model.

Each format module provides:

    NAME: str                                    # the --type name, e.g. "iptables"
    def detect(text: str) -> bool                # cheap content sniff for auto-detection
    def parse(text: str, file: str, context: ParseContext) -> Ruleset
        # unreadable input: raise ConfigError(problem, file=..., line=...);
        # lines it cannot interpret: keep them in Ruleset.unparsed (never silently skip)
    def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
                  context: ParseContext) -> list[str]
        # lines in the file's own syntax that admit `missing` on context.port, placed where they take
        # effect (before the rule that blocks), e.g. `iptables -I INPUT 3 -p tcp -s ... --dport 443 -j ACCEPT`

Modules are imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

#: --type name -> module. Detection is tried in this order (most specific formats first).
FORMAT_MODULES: dict[str, str] = {
    "nftables": "feedback_check.firewall.nftables",
    # ufw before iptables: /etc/ufw/user.rules is iptables-restore syntax too, with ufw's own markers.
    "ufw": "feedback_check.firewall.ufw",
    "iptables": "feedback_check.firewall.iptables",
    "aws-sg": "feedback_check.firewall.cloud_aws",
    "azure-nsg": "feedback_check.firewall.cloud_azure",
    "gcp-firewall": "feedback_check.firewall.cloud_gcp",
    "nginx": "feedback_check.firewall.nginx",
    "apache": "feedback_check.firewall.apache",
    "plain": "feedback_check.firewall.plain",
}


@dataclass(frozen=True)
class ParseContext:
    """What a parser may need beyond the file's text."""

    port: int                                   # the feedback port (80 or 443)
    path: str | None = None                     # URL path: nginx/Apache pick the location serving it
    host: str | None = None                     # URL host: nginx server_name / Apache virtual host
    base_dir: Path | None = None                # for relative `include` files
    ipsets: Mapping[str, Any] = field(default_factory=dict)   # `ipset save` data by set name
    # The published ranges being checked: fix_lines may admit a whole published range rather than
    # the fragments of it that are blocked (simpler to read, same effect). None: unknown.
    published: Any = None                       # AddressSet | None


def first_lines(text: str, count: int) -> list[str]:
    """`text.splitlines()[:count]` without splitting all of a large file (for detect())."""
    head = text[:1 << 16]
    lines = head.splitlines()
    if len(lines) > count or len(head) == len(text):
        return lines[:count]       # the line cut off at the end of `head`, if any, is not among them
    return text.splitlines()[:count]


def format_module(name: str) -> ModuleType:
    if name not in FORMAT_MODULES:
        raise KeyError(name)
    return importlib.import_module(FORMAT_MODULES[name])
