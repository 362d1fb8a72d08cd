"""Run a whole check: every shop of every profile, concurrently, within one run deadline.

The runner turns profiles into probe requests and firewall analyses, runs them with bounded
concurrency (`asyncio`), and assembles one `Report`. It never prints: progress goes to an observer.
A probe that overruns its own deadline, or the run deadline, is reported - it never delays the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from feedback_check.findings import Finding, apply_lab_mode, make_finding
from feedback_check.platform import Platform, RangeList
from feedback_check.probe import lag_meter
from feedback_check.profile import Profile, Shop, check_input_files
from feedback_check.report import (
    FirewallSummary,
    Report,
    ShopSummary,
    TargetSummary,
    assumptions_used,
    redact_report,
)
from feedback_check.urls import url_port

if TYPE_CHECKING:  # multiprocessing is imported only for a run that has firewall analyses and a deadline
    from feedback_check.workers import Workers

log = logging.getLogger(__name__)

#: Probes at once, at most. High on purpose: probes wait on the network, not the CPU (500 shops whose
#: handlers take 200 ms are checked in about one wait). Lowered automatically to what the open-file
#: limit allows, and at run time to what the CPU serves without delaying the measurements (`_Admission`).
DEFAULT_CONCURRENCY = 512
SOCKETS_PER_PROBE = 4       # the connection per address, a TLS fallback or SNI check, a follow-up, DNS
LAG_NOTE = ("This machine's event loop lagged by up to {lag:.0f} ms during the run: {count} timing "
            "measurement{s} may be that much too long per step, and were not reported as slow or timed out "
            "({targets}).")
PROBE_NOTE = ("The probe left from this machine, not from PostFinance's published addresses: it shows what "
              "this machine reaches. Only the firewall analysis shows whether PostFinance's own addresses "
              "are admitted.")
LAB_NOTE = ("Lab mode was on: private/loopback addresses and non-standard ports are reported as "
            "information instead of critical findings.")


class Observer(Protocol):
    """Progress callback (implemented by the CLI)."""

    def on_target_done(self, done: int, total: int, label: str) -> None: ...


@dataclass(frozen=True)
class CheckOptions:
    resolvers: tuple[str, ...] = ()
    ca_bundle: str | None = None
    timeout: float | None = None           # --timeout: the budget of one post-sale request
    lab: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    max_runtime: float | None = None       # run deadline, seconds
    shops: tuple[str, ...] = ()            # --shop selection (empty: all)
    firewall: bool = True
    probes: bool = True                    # False: only the firewall analysis (the exporter's firewall module)
    check_forgery: bool = True
    ranges: RangeList | None = None        # --ranges
    status: int | None = None              # force a STATUS in the simulated requests
    logs: bool = True                      # read the shops' access logs (`logs:` in the profile)


@dataclass
class _Job:
    shop: Shop
    kind: str                              # "probe" | "firewall" | "logs"
    label: str
    role: str = ""
    url: str = ""
    result: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def select_shops(profiles: Sequence[Profile], names: Sequence[str]) -> list[Shop]:
    """Every shop of the profiles, or those named by --shop (unknown names are an error)."""
    from feedback_check.errors import UsageError

    shops = [shop for profile in profiles for shop in profile.shops]
    if not names:
        return shops
    known = {s.name for s in shops}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"--shop {unknown[0]!r}: no such shop (known: {', '.join(sorted(known))})")
    return [s for s in shops if s.name in names]


def usable_concurrency(requested: int) -> int:
    """`requested`, lowered so that the probes cannot run out of file descriptors. Raises the soft
    open-file limit to the hard one first (the usual practice of network tools)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return max(1, requested)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.debug("could not raise the open-file limit from %s", soft)
    return max(1, min(requested, (soft - 64) // SOCKETS_PER_PROBE))


def firewall_port(shop: Shop, platform: Platform) -> tuple[int, str | None, str | None]:
    """The port (and URL path and host) the firewall layers must admit: the first post-sale URL's."""
    for feedback_url in shop.urls:
        parts = urlsplit(feedback_url.url.replace("<PARAMVAR>", shop.paramvar or "x"))
        try:
            port = url_port(parts)
        except ValueError:
            continue
        if port is None:          # not http(s): the probe reports url.scheme; no port to analyse for it
            continue
        return port, parts.path or "/", parts.hostname
    return platform.feedback_ports[-1], None, None


async def check_shops(profiles: Sequence[Profile], platform: Platform, options: CheckOptions,
                      observer: Observer | None = None, *, command: str = "check") -> Report:
    """Probe every post-sale URL and analyse every shop's firewall layers; one Report."""
    from feedback_check.probe.probe import ProbeSettings
    from feedback_check.probe.url import redact_url

    started = time.monotonic()
    if options.ranges is not None:
        platform = platform.with_ranges(options.ranges)
    if options.timeout is not None:
        platform = platform.with_budget(options.timeout)
    shops = select_shops(profiles, options.shops)
    # A missing rule file or access log is the profile's mistake: found before any request is sent.
    check_input_files(shops, firewall=options.firewall, logs=options.logs)
    settings = ProbeSettings(resolvers=options.resolvers, ca_bundle=options.ca_bundle,
                             budget_seconds=platform.budget_seconds, check_forgery=options.check_forgery)

    jobs: list[_Job] = []
    for shop in shops:
        if options.probes and shop.timing != "no_request":
            for feedback_url in shop.urls:
                # The label is shown on the progress line and in errors: credentials in the URL masked.
                jobs.append(_Job(shop, "probe", f"{shop.name} {feedback_url.role} {redact_url(feedback_url.url)}",
                                 role=feedback_url.role, url=feedback_url.url))
        if options.firewall and shop.firewall:
            jobs.append(_Job(shop, "firewall", f"{shop.name} firewall"))
        if options.logs and shop.logs:
            jobs.append(_Job(shop, "logs", f"{shop.name} access logs"))

    from feedback_check.redact import Masker, masking

    # Text from outside (a shop's answer) is masked where the probe reads it; redact_report checks the rest.
    with lag_meter.running() as meter, masking(Masker.from_secrets(_passphrases(shops))):
        jobs_done = await _run_jobs(jobs, platform, options, settings, observer, meter, started)
    return _assemble(profiles, shops, jobs_done, platform, options, command, time.monotonic() - started)


class _Admission:
    """Admits a new probe only while the event loop keeps up: the in-flight limit grows while the
    loop's lag stays under `LAG_TARGET`, and shrinks below what is in flight when the lag is over it
    and this process is what keeps the CPU busy (its own CPU time over `BUSY_SHARE` of the wall time
    since the last check) - so the probes' timings measure the network, not this machine's CPU. Lag
    that other processes cause is not cured by admitting fewer probes: then the limit keeps growing,
    and the lag meter marks the measurements it affects. Never below `FLOOR`, never above the
    configured concurrency."""

    START = 32
    FLOOR = 4
    LAG_TARGET = 0.05
    BUSY_SHARE = 0.7
    CHECK_EVERY = 5             # ticks between CPU-share checks

    def __init__(self, ceiling: int, meter: lag_meter.LagMeter) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = min(self.ceiling, self.START)
        self.in_flight = 0
        self._meter = meter
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ticks = 0
        self._busy = False
        self._last = (time.monotonic(), time.process_time())
        meter.listeners.append(self._on_tick)

    def _on_tick(self, lag: float) -> None:
        self._ticks += 1
        if self._ticks % self.CHECK_EVERY == 0:
            now, cpu = time.monotonic(), time.process_time()
            wall = now - self._last[0]
            self._busy = wall > 0 and (cpu - self._last[1]) / wall > self.BUSY_SHARE
            self._last = (now, cpu)
        if lag > self.LAG_TARGET and self._busy:
            self.limit = max(min(self.FLOOR, self.ceiling), min(self.limit, self.in_flight * 3 // 4))
        elif self.in_flight >= self.limit:
            self.limit = min(self.ceiling, max(self.limit + 1, self.limit * 5 // 4))
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    async def acquire(self) -> None:
        if not self._waiters and self.in_flight < self.limit:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()


async def _run_jobs(jobs: list[_Job], platform: Platform, options: CheckOptions, settings: Any,
                    observer: Observer | None, meter: lag_meter.LagMeter, started: float) -> list[_Job]:
    from feedback_check.probe.probe import ProbeRequest, probe_url

    admission = _Admission(usable_concurrency(options.concurrency), meter)
    done = 0
    # A single probe never runs longer than this, whatever the server does (several requests per URL:
    # each address, the other method, the forged signature).
    probe_cap = platform.dns_timeout_seconds + 4 * platform.budget_seconds + 5

    async def run(job: _Job) -> None:
        nonlocal done
        await admission.acquire()
        try:
            try:
                if job.kind == "probe":
                    request = ProbeRequest(
                        shop=job.shop.name, role=job.role, url=job.url, method=job.shop.method,
                        timing=job.shop.timing, paramvar=job.shop.paramvar, parameters=job.shop.parameters,
                        signature=job.shop.signature, order_prefix=job.shop.order_prefix, status=options.status,
                        test_order=job.shop.test_order, replay=job.shop.replay, replay_origin=job.shop.replay_origin)
                    shop_settings = settings if job.shop.check_forgery else replace(settings, check_forgery=False)
                    job.result = await asyncio.wait_for(probe_url(request, platform, shop_settings), probe_cap)
                elif job.kind == "logs":
                    deadline = started + options.max_runtime if options.max_runtime is not None else None
                    job.result = await asyncio.to_thread(_read_logs, job.shop, platform, deadline)
                elif workers is not None:
                    job.result = await workers.run(_analyse_layers, *_firewall_task(job.shop, platform))
                else:
                    job.result = await asyncio.to_thread(_analyse_firewall, job.shop, platform)
            except TimeoutError:
                job.error = f"{job.label}: did not finish within {probe_cap:.0f} s"
            except asyncio.CancelledError:
                job.error = f"{job.label}: not finished within the run deadline (--max-runtime)"
                raise
            except Exception as e:
                from feedback_check.errors import FeedbackCheckError
                if isinstance(e, FeedbackCheckError):
                    raise
                log.debug("job %s failed", job.label, exc_info=True)   # the report names it; no traceback
                job.error = f"{job.label}: internal error: {type(e).__name__}: {e}"
        finally:
            admission.release()
        done += 1
        if observer is not None:
            observer.on_target_done(done, len(jobs), job.label)

    # With a run deadline, firewall analyses run in processes the deadline can stop (a thread cannot be).
    firewall_jobs = sum(1 for job in jobs if job.kind == "firewall")
    workers: Workers | None = None
    if options.max_runtime is not None and firewall_jobs:
        from feedback_check.workers import Workers
        workers = Workers(firewall_jobs)
    tasks = [asyncio.create_task(run(job)) for job in jobs]
    if tasks:
        try:
            finished, pending = await asyncio.wait(tasks, timeout=options.max_runtime)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            if workers is not None:
                workers.close(kill=True)
        for task in finished:
            exc = task.exception()
            if exc is not None:
                raise exc
    for job in jobs:
        if job.result is None and job.error is None:
            job.error = f"{job.label}: not finished within the run deadline (--max-runtime {options.max_runtime:g} s)"
    return jobs


def _firewall_task(shop: Shop, platform: Platform) -> tuple[Any, ...]:
    """The arguments of `_analyse_layers` for a shop (no passphrase: they may go to a worker process)."""
    port, path, host = firewall_port(shop, platform)
    explicit = {layer.port for layer in shop.firewall if layer.port}
    if explicit:
        port = explicit.pop()
    return shop.firewall, platform, port, path, host, shop.name


def _analyse_layers(layers: Any, platform: Platform, port: int, path: str | None, host: str | None,
                    shop: str) -> FirewallSummary:
    from feedback_check.firewall.analysis import analyse_layers

    return analyse_layers(layers, platform, port=port, path=path, host=host, shop=shop, ranges=platform.ranges)


def _analyse_firewall(shop: Shop, platform: Platform) -> FirewallSummary:
    return _analyse_layers(*_firewall_task(shop, platform))


def _read_logs(shop: Shop, platform: Platform, deadline: float | None = None) -> Any:
    """The shop's access-log evidence: every `logs:` entry read with the shop's post-sale paths."""
    from feedback_check.logs.evidence import FeedbackPath
    from feedback_check.logs.judgement import LogsSummary, check_logs
    from feedback_check.logs.query import query_for_shop

    summaries = []
    for spec in shop.logs:
        paths = []
        for feedback_url in shop.urls:
            parts = urlsplit(feedback_url.url)
            host = parts.hostname.lower().rstrip(".") if parts.hostname else None
            paths.append(FeedbackPath(parts.path or "/", feedback_url.url, feedback_url.role, host))
        query = query_for_shop(spec, tuple(paths), shop.method, expect_postsales=shop.timing != "no_request")
        summaries.append(check_logs(spec.files, platform, query, shop=shop.name, deadline=deadline))
    if len(summaries) == 1:
        return summaries[0]
    return LogsSummary(summaries[0].evidence, tuple(f for s in summaries for f in s.findings), shop.name)


@dataclass
class _Results:
    """What the finished jobs produced, gathered shop by shop for the report."""

    adjust: Callable[[Iterable[Finding]], list[Finding]]
    targets: list[TargetSummary] = field(default_factory=list)
    firewalls: list[FirewallSummary] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)

    def shop_summary(self, shop: Shop, jobs: Iterable[_Job], findings: Iterable[Finding]) -> ShopSummary:
        """The shop's summary: its profile findings, then its jobs' results in job order (each job's
        findings given the shop, and the URL's role); a job that failed, or a URL that could not be
        checked, is one of the shop's errors."""
        shop_findings = list(findings)
        errors: list[str] = []
        for job in jobs:
            if job.error:
                errors.append(job.error)
                continue
            shop_findings += self._take(shop, job, errors)
        if shop.timing == "no_request":
            shop_findings.append(replace(make_finding(
                "feedback.no_request", shop.name,
                detail="The back office is set to send no post-sale request: the shop learns of payments only "
                       "through the customer's redirect, which is lost when the customer closes the browser."),
                shop=shop.name))
        return ShopSummary(shop.name, tuple(shop_findings), "; ".join(errors) or None)

    def _take(self, shop: Shop, job: _Job, errors: list[str]) -> tuple[Finding, ...]:
        if job.kind == "probe":
            target: TargetSummary = job.result
            target = replace(target, findings=tuple(
                replace(f, shop=shop.name, role=job.role) for f in self.adjust(target.findings)))
            self.targets.append(target)
            if target.unknown:           # e.g. a resolver this machine cannot reach: not checked
                errors.append(f"{job.label}: {target.unknown}")
            return target.findings
        if job.kind == "logs":
            self.logs.append(job.result)
            return tuple(job.result.findings)
        summary: FirewallSummary = job.result
        summary = replace(summary, findings=tuple(replace(f, shop=shop.name) for f in self.adjust(summary.findings)))
        self.firewalls.append(summary)
        return summary.findings


def _assemble(profiles: Sequence[Profile], shops: Sequence[Shop], jobs: Sequence[_Job], platform: Platform,
              options: CheckOptions, command: str, duration: float) -> Report:
    results = _Results(apply_lab_mode if options.lab else list)
    selected = {s.name for s in shops}
    # One pass over findings and jobs, grouped by shop: no per-shop scan of everything.
    findings_of: defaultdict[str, list[Finding]] = defaultdict(list)
    for profile in profiles:
        for finding in profile.findings:
            if finding.shop is not None and finding.shop in selected:
                findings_of[finding.shop].append(finding)
    jobs_of: defaultdict[int, list[_Job]] = defaultdict(list)
    for job in jobs:
        jobs_of[id(job.shop)].append(job)
    shop_summaries = [results.shop_summary(shop, jobs_of.get(id(shop), ()), findings_of.get(shop.name, ()))
                      for shop in shops]
    findings = [f for s in shop_summaries for f in s.findings]
    assumption_texts = {a.key: platform.describe(a) for a in platform.assumptions}
    report = Report(
        command=command, findings=tuple(findings), targets=tuple(results.targets),
        firewalls=tuple(results.firewalls), shops=tuple(shop_summaries), platform=platform_summary(platform),
        logs=tuple(results.logs), assumptions=assumptions_used(findings, assumption_texts),
        notes=_run_notes(results.targets, results.firewalls, options, command), lab=options.lab,
        duration_seconds=duration)
    return redact_report(report, _passphrases(shops))


def _run_notes(targets: Sequence[TargetSummary], firewalls: Sequence[FirewallSummary], options: CheckOptions,
               command: str) -> tuple[str, ...]:
    """Where the probe left from, which shops had no firewall analysis, lab mode, event-loop lag."""
    notes = []
    if targets:
        notes.append(PROBE_NOTE)
        note = _no_firewall_note(targets, firewalls, options, command)
        if note:
            notes.append(note)
    if options.lab:
        notes.append(LAB_NOTE)
    lag = _lag_note(targets)
    if lag:
        notes.append(lag)
    return tuple(notes)


def _lag_note(targets: Sequence[TargetSummary]) -> str | None:
    """LAG_NOTE when the event loop lagged behind a measurement of some URLs (their timings not judged)."""
    lags = [(t, t.probe.loop_lag) for t in targets if t.probe is not None and t.probe.loop_lag is not None]
    if not lags:
        return None
    disturbed = [t for t, _ in lags]
    worst = max(round(lag.worst_seconds, 4) for _, lag in lags)
    count = sum(len(lag.not_reported) for _, lag in lags)
    names = ", ".join(f"{t.shop} {t.role}" for t in disturbed[:5]) + (" and more" if len(disturbed) > 5 else "")
    return LAG_NOTE.format(lag=worst * 1000, count=count, s="s" * (count != 1), targets=names)


def _no_firewall_note(targets: Sequence[TargetSummary], firewalls: Sequence[FirewallSummary],
                      options: CheckOptions, command: str) -> str | None:
    """Which probed shops had no firewall analysis, so PROBE_NOTE's "only the firewall analysis shows..."
    is not read as "and it showed nothing" (not for `probe`: it takes no firewall layers)."""
    if command == "probe":
        return None
    analysed = {f.shop for f in firewalls}
    missing = list(dict.fromkeys(t.shop for t in targets if t.shop not in analysed))
    if not missing:
        return None
    if not options.firewall:
        return ("The firewall analysis was skipped (--no-firewall): this report does not show whether "
                "PostFinance's published addresses are admitted.")
    names = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    which = "any shop" if not analysed else f"shop{'s' * (len(missing) > 1)} {names}"
    return (f"No firewall was analysed for {which}: the profile names no firewall layers (firewall:), so this "
            "report does not show whether PostFinance's published addresses are admitted. Add each filter on "
            "the way (cloud security group, host firewall, web server rules) as a firewall: layer, or run "
            "`feedback-check firewall FILE`.")


def _passphrases(shops: Sequence[Shop]) -> tuple[str, ...]:
    """The shops' passphrases, which must not appear in a report in any spelling (see `redact_report`)."""
    return tuple(secret.reveal() for shop in shops
                 for secret in (shop.signature.passphrase, shop.signature.test_passphrase) if secret)


def platform_summary(platform: Platform) -> dict[str, Any]:
    """What a report says about the platform facts it used (Platform.summary: one shape for every command)."""
    return platform.summary()


def run_check(profiles: Sequence[Profile], platform: Platform, options: CheckOptions,
              observer: Observer | None = None, *, command: str = "check") -> Report:
    """Synchronous wrapper for the CLI (uvloop when installed: feedback_check.probe.loop). The report's
    duration is the whole run's, masking and the event loop's shutdown included."""
    from feedback_check.probe.loop import run

    started = time.monotonic()
    report = run(check_shops(profiles, platform, options, observer, command=command))
    return replace(report, duration_seconds=time.monotonic() - started)
