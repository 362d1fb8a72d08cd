"""`--state FILE`: remember the last verdict and finding codes per shop and URL, and say what changed.

`StateUpdate(path)` locks the state file (fcntl, `<file>.lock`: concurrent runs take turns), `apply(report)`
reads the previous state, compares it with the report and returns the report with `Report.changes`
filled in; `commit()`, called once the report was written, writes the new state (atomically:
temporary file in the same folder, fsync, rename). `apply_state(report, path)` does all three::

    {"state_file": "...", "previous_run": "2026-11-26T20:00:00+00:00" | None, "first_run": bool,
     "new":             [{"shop", "role", "url", "code", "severity"}, ...],
     "resolved":        [{"shop", "role", "url", "code", "severity"}, ...],
     "verdict_changes": [{"shop", "role", "url", "from", "to"}, ...]}

What is compared: each post-sale URL (shop, role, url), each firewall analysis (shop, "firewall",
"port N"), each shop's access logs (shop, "logs", ""), each shop's own findings outside those
(config.*, feedback.no_request) and its verdict where it was or is UNKNOWN (shop, "shop", ""), and
the findings not tied to a shop (role "profile").
On the first run nothing is new: there is nothing to compare with (`first_run` says so).

One rule decides what is resolved: **a remembered finding is resolved only when this run ran the check
that finds it, and it did not**. A check that did not run keeps its findings in the state as they were:

- a whole entry this run did not produce - a shop left out with ``--shop``, ``--no-firewall``,
  ``--no-logs``, a probe that hit the run deadline - is kept unchanged;
- within a URL, the probe's checks that did not run (`TargetSummary.checks`): ``--no-forgery-check`` or
  ``check_forgery: false`` (no forgery or re-signed requests), and phases the probe did not reach (no
  TLS or HTTP findings are judged when the connection failed, no forgery check without an accepted
  answer). Their codes stay remembered, so they are neither "resolved" now nor "new" when the check
  runs again and finds them still there.

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
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from feedback_check import inputfile, jsonfile
from feedback_check.errors import ConfigError
from feedback_check.findings import Finding, Severity, Verdict, verdict_of
from feedback_check.outputfile import PreparedWrite, prepare_file
from feedback_check.report import Report, general_findings, probe_check_of

log = logging.getLogger(__name__)

STATE_MARKER = "feedback-check-state"
STATE_SCHEMA_VERSION = 1
FIREWALL_ROLE = "firewall"
LOGS_ROLE = "logs"
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
    checks: tuple[str, ...] | None = None   # probe checks this run ran (None: all; not stored)

    @property
    def key(self) -> Key:
        return (self.shop, self.role, self.url)

    def judged(self, code: str) -> bool:
        """Whether this run ran the check that finds `code` (see the module docstring: one rule)."""
        if self.checks is None:
            return True
        check = probe_check_of(code)
        return check is None or check in self.checks

    def to_dict(self) -> dict[str, Any]:
        return {"shop": self.shop, "role": self.role, "url": self.url, "verdict": self.verdict,
                "findings": dict(sorted(self.findings.items()))}


@dataclass(frozen=True)
class State:
    """The content of a state file."""

    entries: Mapping[Key, Remembered]
    previous_run: str | None
    damaged: int = 0                   # entries dropped because they could not be read


#: How long a run waits for another run holding the state file's lock before giving up.
LOCK_WAIT_SECONDS = 120.0


class StateUpdate:
    """One run's use of a state file: lock, read and compare (`apply`), then write (`commit`).

    The lock (fcntl, on a `.lock` file next to the state file) is held from reading to writing, so two
    runs on one state file take turns and neither loses the other's entries. `commit` is called by
    the CLI only after the report was written: a report that could not be delivered leaves the state
    as it was, and the next run reports the same changes again.
    """

    def __init__(self, path: str | Path, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.path = str(path)
        self.wait_seconds = wait_seconds
        self.entered = False
        self._lock_fd: int | None = None
        self._merged: Mapping[Key, Remembered] | None = None
        self._started: dt.datetime | None = None
        self._prepared: PreparedWrite | None = None

    def __enter__(self) -> Self:
        self._lock_fd = _lock(self.path, self.wait_seconds)
        self.entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._prepared is not None:
            self._prepared.discard()          # prepared but never committed: the old state stays
            self._prepared = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)           # releases the lock
            self._lock_fd = None

    def apply(self, report: Report) -> Report:
        """The report with `changes` (and a note when damaged entries had to be dropped)."""
        state = load_state(self.path)
        current = remembered_from(report)
        changes = compare(state, current, self.path)
        self._merged = merged(state, current)
        self._started = report.started
        notes = report.notes
        if state.damaged:
            plural = "entry" if state.damaged == 1 else "entries"
            note = (f"The state file {self.path} had {state.damaged} damaged {plural}; they were dropped and "
                    "start afresh.")
            notes = (*notes, note)
        return replace(report, changes=changes, notes=notes)

    def prepare(self) -> None:
        """Write the new state to a temporary file next to the state file (ConfigError when it cannot be
        written: a full disk, permissions); `commit` renames it into place."""
        if self._merged is None or self._started is None:
            raise RuntimeError("StateUpdate.prepare() before apply()")
        if self._prepared is None:
            self._prepared = prepare_state(self.path, self._merged, self._started)

    def commit(self) -> None:
        """Put the new state in place (atomically)."""
        self.prepare()
        assert self._prepared is not None
        self._prepared.commit()
        self._prepared = None


def apply_state(report: Report, path: str | Path) -> Report:
    """Compare the report with the remembered state at `path`, write the new state, and return the report
    with `changes` (and a note when damaged entries had to be dropped)."""
    with StateUpdate(path) as update:
        report = update.apply(report)
        update.commit()
    return report


def _lock(path: str, wait_seconds: float) -> int:
    """An exclusive lock on `path`.lock (created if needed), waiting up to `wait_seconds` for another run."""
    if os.path.isdir(path):
        raise ConfigError("is a directory, not a state file", file=path)
    lock_path = os.path.realpath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        raise ConfigError(f"cannot write state file: {e.strerror}", file=path) from None
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ConfigError(f"another feedback-check run has held the state file's lock for more than "
                                  f"{wait_seconds:g} s", file=path) from None
            time.sleep(0.05)
        except OSError as e:
            os.close(fd)
            raise ConfigError(f"cannot lock state file: {e.strerror}", file=path) from None


def remembered_from(report: Report) -> dict[Key, Remembered]:
    """What this run would remember: one entry per URL, firewall, the profile, and each shop's verdict."""
    out: dict[Key, Remembered] = {}

    def put(shop: str, role: str, url: str, verdict: Verdict, findings: Iterable[Finding],
            checks: tuple[str, ...] | None = None) -> None:
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
            if checks is not None:
                checks = None if previous.checks is None else tuple(sorted({*checks, *previous.checks}))
        out[key] = Remembered(shop, role, url, verdict.name, codes, checks)

    for t in report.targets:
        if t.unknown:        # not checked (a resolver this machine cannot reach): keeps its remembered state
            continue
        put(t.shop, t.role, t.url, t.verdict, t.findings, t.checks)
    for fw in report.firewalls:
        put(fw.shop, FIREWALL_ROLE, f"port {fw.port}", fw.verdict, fw.findings)
    for logs in report.logs:
        if getattr(logs, "shop", ""):
            put(logs.shop, LOGS_ROLE, "", logs.verdict, logs.findings)
    # The rest: findings of the whole run (role "profile") and of one shop outside its URLs, firewall and
    # logs (config.*, feedback.no_request), with that shop - so a shop left out keeps them.
    in_logs = {_identity(f) for logs in report.logs for f in logs.findings}
    rest = [f for f in general_findings(report) if _identity(f) not in in_logs]
    general = [f for f in rest if not f.shop]
    if general or report.targets or report.firewalls:
        put("", PROFILE_ROLE, "", verdict_of(general), general)
    of_shop: dict[str, list[Finding]] = {}
    for f in rest:
        if f.shop:
            of_shop.setdefault(f.shop, []).append(f)
    for shop in report.shops:
        put(shop.name, SHOP_ROLE, "", shop.verdict, of_shop.get(shop.name, ()))
    return out


def _identity(finding: Finding) -> tuple[str, str | None, str, str]:
    return (finding.code, finding.shop, finding.target, finding.detail)


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
                         if c not in now.findings and now.judged(c)]
    return {"state_file": state_file, "previous_run": state.previous_run, "first_run": first_run,
            "new": new, "resolved": resolved, "verdict_changes": verdicts}


def merged(state: State, current: Mapping[Key, Remembered]) -> dict[Key, Remembered]:
    """The state to write: the remembered entries, replaced by this run's, which keep the remembered codes
    of checks that did not run this time (the one rule of the module docstring)."""
    out = dict(state.entries)
    for key, now in current.items():
        before = state.entries.get(key)
        kept = {c: s for c, s in before.findings.items() if c not in now.findings and not now.judged(c)} \
            if before is not None else {}
        out[key] = replace(now, findings={**now.findings, **kept}) if kept else now
    return out


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
    """Write the state atomically: a temporary file in the same folder, flushed to disk, then renamed
    (through a symbolic link to its file; a device or pipe is refused, never replaced)."""
    prepare_state(path, entries, run_started).commit()


def prepare_state(path: str | Path, entries: Mapping[Key, Remembered], run_started: dt.datetime) -> PreparedWrite:
    """The state document written to its temporary file, ready to be renamed into place."""
    document = {
        "tool": STATE_MARKER,
        "schema_version": STATE_SCHEMA_VERSION,
        "run_started": run_started.isoformat(),
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "entries": [e.to_dict() for e in sorted(entries.values(), key=lambda e: e.key)],
    }
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    return prepare_file(str(path), text, what="state file", streams=False)
