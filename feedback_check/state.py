"""`--state FILE`: remember the last verdict and finding codes per shop and URL, and say what changed.

`apply_state(report, path)` reads the previous state, compares it with the report, writes the new state
(atomically: temporary file in the same folder, fsync, rename) and returns the report with
`Report.changes` filled in::

    {"state_file": "...", "previous_run": "2026-11-26T20:00:00+00:00" | None, "first_run": bool,
     "new":             [{"shop", "role", "url", "code", "severity"}, ...],
     "resolved":        [{"shop", "role", "url", "code", "severity"}, ...],
     "verdict_changes": [{"shop", "role", "url", "from", "to"}, ...]}

What is compared: each post-sale URL (shop, role, url), each firewall analysis (shop, "firewall",
"port N"), the findings not tied to a shop (role "profile"), and each shop's own verdict where it was or
is UNKNOWN (the shop could not be checked). Only what this run checked is compared and updated: URLs
and shops left out (``--shop``, a shop that hit the run deadline) keep their remembered state, so
their findings are not reported as resolved. On the first run nothing is new: there is nothing to
compare with (`first_run` says so).

A state file that cannot be used, decided case by case:

- missing or empty: a first run;
- not JSON, or JSON without this tool's marker: `ConfigError` (exit 3), and the file is left untouched —
  it is probably another file given by mistake (a profile), which overwriting would destroy;
- written by a newer schema: `ConfigError`, left untouched (a newer feedback-check owns it);
- this tool's file with damaged entries: the damaged entries are dropped, a note says so in the report,
  and the run goes on (monitoring should not stop over its own memory);
- unreadable or unwritable (permissions, a directory): `ConfigError` naming the file.

The state holds codes, severities, verdicts, shop names and URLs, never finding texts or evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from feedback_check import inputfile, jsonfile
from feedback_check.diagnosis import Report
from feedback_check.errors import ConfigError
from feedback_check.findings import Finding, Severity, Verdict, verdict_of
from feedback_check.reporters.text import general_findings

log = logging.getLogger(__name__)

STATE_MARKER = "feedback-check-state"
STATE_SCHEMA_VERSION = 1
FIREWALL_ROLE = "firewall"
PROFILE_ROLE = "profile"
SHOP_ROLE = "shop"

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Remembered:
    """What the state file keeps for one shop × URL (or firewall, or the profile)."""

    shop: str
    role: str
    url: str
    verdict: str
    findings: Mapping[str, str]        # code -> worst severity

    @property
    def key(self) -> Key:
        return (self.shop, self.role, self.url)

    def to_dict(self) -> dict[str, Any]:
        return {"shop": self.shop, "role": self.role, "url": self.url, "verdict": self.verdict,
                "findings": dict(sorted(self.findings.items()))}


@dataclass(frozen=True)
class State:
    """The content of a state file."""

    entries: Mapping[Key, Remembered]
    previous_run: str | None
    damaged: int = 0                   # entries dropped because they could not be read


def apply_state(report: Report, path: str | Path) -> Report:
    """Compare the report with the remembered state at `path`, write the new state, and return the report
    with `changes` (and a note when damaged entries had to be dropped)."""
    name = str(path)
    state = load_state(path)
    current = remembered_from(report)
    changes = compare(state, current, name)
    merged = {**state.entries, **current}
    write_state(path, merged, report.started)
    notes = report.notes
    if state.damaged:
        plural = "entry" if state.damaged == 1 else "entries"
        note = f"The state file {name} had {state.damaged} damaged {plural}; they were dropped and start afresh."
        notes = (*notes, note)
    return replace(report, changes=changes, notes=notes)


def remembered_from(report: Report) -> dict[Key, Remembered]:
    """What this run would remember: one entry per URL, firewall, the profile, and each shop's verdict."""
    out: dict[Key, Remembered] = {}

    def put(shop: str, role: str, url: str, verdict: Verdict, findings: Iterable[Finding]) -> None:
        codes: dict[str, str] = {}
        for f in findings:
            if f.severity is Severity.INFO:
                continue
            known = codes.get(f.code)
            if known is None or Severity(known).rank < f.severity.rank:
                codes[f.code] = f.severity.value
        key = (shop, role, url)
        if key in out:  # the same URL listed twice for one role: remember the union
            previous = out[key]
            codes = {**previous.findings, **codes}
            verdict = max(verdict, Verdict[previous.verdict], key=lambda v: v.value)
        out[key] = Remembered(shop, role, url, verdict.name, codes)

    for t in report.targets:
        put(t.shop, t.role, t.url, t.verdict, t.findings)
    for fw in report.firewalls:
        put(fw.shop, FIREWALL_ROLE, f"port {fw.port}", fw.verdict, fw.findings)
    general = general_findings(report)
    if general or report.targets or report.firewalls:
        put("", PROFILE_ROLE, "", verdict_of(general), general)
    for shop in report.shops:
        put(shop.name, SHOP_ROLE, "", shop.verdict, ())
    return out


def compare(state: State, current: Mapping[Key, Remembered], state_file: str) -> dict[str, Any]:
    """The changes between the remembered state and this run (only keys this run checked)."""
    first_run = not state.entries
    new: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    if not first_run:
        for key, now in current.items():
            before = state.entries.get(key)
            where = {"shop": now.shop, "role": now.role, "url": now.url}
            if before is None:
                new += [{**where, "code": c, "severity": s} for c, s in now.findings.items()]
                continue
            if before.verdict != now.verdict and _verdict_change_counts(now, before):
                verdicts.append({**where, "from": before.verdict, "to": now.verdict})
            new += [{**where, "code": c, "severity": s} for c, s in now.findings.items() if c not in before.findings]
            resolved += [{**where, "code": c, "severity": s} for c, s in before.findings.items()
                         if c not in now.findings]
    return {"state_file": state_file, "previous_run": state.previous_run, "first_run": first_run,
            "new": new, "resolved": resolved, "verdict_changes": verdicts}


def _verdict_change_counts(now: Remembered, before: Remembered) -> bool:
    # A shop's own verdict only says something the URLs do not when it could not be checked.
    return now.role != SHOP_ROLE or Verdict.UNKNOWN.name in (now.verdict, before.verdict)


# --- the file -----------------------------------------------------------------------------------------

def load_state(path: str | Path) -> State:
    """The remembered state at `path` (an empty State when the file is missing or empty)."""
    name = str(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        return State({}, None)              # a dangling symlink too: the state is written through it
    except (OSError, ValueError):
        pass                                # the bounded reader words the problem
    try:
        data_bytes = inputfile.read_bytes(path, inputfile.STATE)
    except ConfigError as e:
        raise ConfigError(e.problem.replace("cannot read:", "cannot read state file:"), file=name) from None
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a feedback-check state file (not UTF-8 text); refusing to overwrite it",
                          file=name) from None
    if not text.strip():
        return State({}, None)
    try:
        data = jsonfile.loads(text, name)
    except ConfigError:
        raise
    except json.JSONDecodeError as e:
        raise ConfigError(f"not a feedback-check state file (not JSON: {e.msg}); refusing to overwrite it",
                          file=name, line=e.lineno) from None
    if not isinstance(data, dict) or data.get("tool") != STATE_MARKER:
        raise ConfigError("not a feedback-check state file (no state marker); refusing to overwrite it",
                          file=name)
    version = data.get("schema_version")
    if not isinstance(version, int) or version > STATE_SCHEMA_VERSION:
        raise ConfigError(f"state file schema {version!r} is newer than this feedback-check understands "
                          f"({STATE_SCHEMA_VERSION}); use a new state file", file=name, field="schema_version")
    entries: dict[Key, Remembered] = {}
    damaged = 0
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list):
        damaged += 1
        raw_entries = []
    for raw in raw_entries:
        entry = _entry(raw)
        if entry is None:
            damaged += 1
        else:
            entries[entry.key] = entry
    previous = data.get("run_started")
    if damaged:
        log.warning("state file %s: %d damaged entries dropped", name, damaged)
    return State(entries, previous if isinstance(previous, str) else None, damaged)


def _entry(raw: Any) -> Remembered | None:
    if not isinstance(raw, dict):
        return None
    shop, role, url, verdict, findings = (raw.get(k) for k in ("shop", "role", "url", "verdict", "findings"))
    if not (isinstance(shop, str) and isinstance(role, str) and isinstance(url, str)
            and isinstance(verdict, str) and verdict in Verdict.__members__ and isinstance(findings, dict)):
        return None
    severities = {s.value for s in Severity}
    if not all(isinstance(c, str) and s in severities for c, s in findings.items()):
        return None
    return Remembered(shop, role, url, verdict, dict(findings))


def write_state(path: str | Path, entries: Mapping[Key, Remembered], run_started: dt.datetime) -> None:
    """Write the state atomically: a temporary file in the same folder, flushed to disk, then renamed."""
    target = Path(path)
    document = {
        "tool": STATE_MARKER,
        "schema_version": STATE_SCHEMA_VERSION,
        "run_started": run_started.isoformat(),
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "entries": [e.to_dict() for e in sorted(entries.values(), key=lambda e: e.key)],
    }
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    temp_name = None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
        temp_name = None
    except OSError as e:
        raise ConfigError(f"cannot write state file: {e.strerror}", file=str(path)) from None
    finally:
        if temp_name is not None:
            try:
                os.unlink(temp_name)
            except OSError:
                pass
