"""`--live`: read the running machine's rules (iptables-save, ip6tables-save, ipset save, nft -j list ruleset).

Reading needs root (CAP_NET_ADMIN) and the tools; when a source cannot be read the result says why
(missing binary, not root, the tool failed, nothing loaded), so the user is never left guessing.
On iptables-nft systems the iptables tables also show up in `nft list ruleset`: the nft ruleset is
then used only when it holds tables iptables did not create (family inet/bridge/netdev, or other
table names), so the same rules are not analysed twice.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from feedback_check import jsonfile
from feedback_check.errors import ConfigError
from feedback_check.firewall.analysis import LayerSource

log = logging.getLogger(__name__)

IPTABLES_TABLES = {"filter", "nat", "mangle", "raw", "security"}
TIMEOUT_SECONDS = 15.0

#: (argv) -> (return code, stdout, stderr); injectable for tests.
Runner = Callable[[Sequence[str]], tuple[int, str, str]]


def run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run a read-only listing command with a timeout; never raises for the command's own failure."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"no answer within {TIMEOUT_SECONDS:g} s"
    except OSError as e:
        return 126, "", e.strerror or str(e)
    return done.returncode, done.stdout, done.stderr


@dataclass(frozen=True)
class LiveRules:
    """What --live could read: firewall layers, ipset data, and why anything else could not be read."""

    layers: tuple[LayerSource, ...]
    ipsets: tuple[LayerSource, ...]
    problems: tuple[str, ...]          # one sentence per source that could not be read
    notes: tuple[str, ...] = ()


def read_live(*, runner: Runner = run_command, which: Callable[[str], str | None] = shutil.which,
              euid: int | None = None) -> LiveRules:
    """Read the running machine's rules. Never raises for a missing tool or permission."""
    uid = os.geteuid() if euid is None else euid
    problems: list[str] = []
    notes: list[str] = []
    layers: list[LayerSource] = []
    ipsets: list[LayerSource] = []
    if uid != 0:
        problems.append("not running as root: reading the kernel's rules needs root (CAP_NET_ADMIN); "
                        "run `sudo feedback-check firewall --live` or pass the output of iptables-save as a file")
        return LiveRules((), (), tuple(problems))

    def read(tool: str, *args: str) -> str | None:
        path = which(tool)
        if path is None:
            problems.append(f"{tool}: not installed (not found on PATH)")
            return None
        code, out, err = runner([path, *args])
        if code != 0:
            first = (err.strip().splitlines() or [f"exit code {code}"])[0]
            problems.append(f"{tool} {' '.join(args)}".strip() + f": failed: {first}")
            return None
        return out

    v4 = read("iptables-save")
    v6 = read("ip6tables-save")
    iptables_text = "\n".join(t for t in (v4, v6) if t and t.strip())
    if iptables_text:
        layers.append(LayerSource("iptables-save + ip6tables-save (live)", "iptables", "iptables (live)",
                                  iptables_text))
    elif v4 is not None or v6 is not None:
        notes.append("iptables-save printed no rules: no iptables tables are loaded")
    nft = read("nft", "-j", "list", "ruleset")
    if nft is not None:
        native = _native_nft_tables(nft)
        if native:
            layers.append(LayerSource("nft -j list ruleset (live)", "nftables", "nftables (live)", nft))
        elif native is not None:
            notes.append("the nft ruleset holds no tables besides iptables' own: analysed through iptables-save")
    sets = read("ipset", "save")
    if sets and sets.strip():
        ipsets.append(LayerSource("ipset save (live)", "ipset", "ipsets (live)", sets))
    if not layers:
        problems.append("no firewall rules are loaded on this machine (or none could be read)")
    return LiveRules(tuple(layers), tuple(ipsets), tuple(problems), tuple(notes))


def _native_nft_tables(text: str) -> list[str] | None:
    """Tables in `nft -j list ruleset` that iptables-nft did not create; None when the JSON is unreadable."""
    try:
        data = jsonfile.loads(text, "nft -j list ruleset")
    except (ValueError, ConfigError):
        log.debug("nft -j output is not JSON")
        return None
    out = []
    for item in data.get("nftables", []) if isinstance(data, dict) else []:
        table = item.get("table") if isinstance(item, dict) else None
        if not isinstance(table, dict):
            continue
        family, name = table.get("family"), table.get("name")
        if family not in ("ip", "ip6") or name not in IPTABLES_TABLES:
            out.append(f"{family} {name}")
    return out
