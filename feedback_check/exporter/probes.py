"""Running the exporter's probes: one check per scrape, answered from a per-target cache within the
minimum interval, and never two at once for the same target (a second scrape waits for the first).

`Prober.probe(request)` returns a `ProbeResult` whose `text` is the exposition of the report (the
families of `reporters/prometheus.py`) plus `feedback_check_result_age_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from feedback_check.errors import FeedbackCheckError
from feedback_check.exporter.config import FIREWALL_MODULE, SHOP_MODULE, ExporterConfig
from feedback_check.platform import Platform
from feedback_check.profile import Profile
from feedback_check.reporters.prometheus import escape_help, format_value, render, render_failure
from feedback_check.runner import CheckOptions, run_check

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL = 60.0
#: Without X-Prometheus-Scrape-Timeout-Seconds (a scrape by hand): the run deadline.
DEFAULT_DEADLINE = 30.0
#: Seconds kept back from Prometheus's scrape timeout for writing the answer (blackbox's timeout_offset).
TIMEOUT_OFFSET = 0.5


class ProbeRefused(Exception):
    """A /probe request that names nothing configured; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProbeRequest:
    shop: str | None
    target: str | None
    module: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        return ("shop", self.shop or "", self.module or SHOP_MODULE) if self.shop else \
            ("target", self.target or "", self.module or "")


@dataclass(frozen=True)
class ProbeResult:
    text: str
    measured_at: float            # time.time() of the measurement
    duration_seconds: float
    cached: bool
    module: str


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    result: ProbeResult | None = None
    monotonic: float = 0.0


@dataclass(frozen=True)
class ProbeSettings:
    """What `serve`'s options set for every probe."""

    resolvers: tuple[str, ...] = ()
    ca_bundle: str | None = None
    lab: bool = False
    min_interval: float = DEFAULT_MIN_INTERVAL
    default_deadline: float = DEFAULT_DEADLINE


class Prober:
    """Runs and caches probes for the configuration `config()` returns (swapped on reload)."""

    def __init__(self, config: Callable[[], ExporterConfig], platform: Callable[[], Platform],
                 settings: ProbeSettings) -> None:
        self._config = config
        self._platform = platform
        self.settings = settings
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._entries_lock = threading.Lock()

    def resolve(self, request: ProbeRequest) -> tuple[list[Profile], CheckOptions, str]:
        """The profiles and options for one request; ProbeRefused for anything not configured."""
        config = self._config()
        s = self.settings
        if request.shop is not None:
            if request.target is not None:
                raise ProbeRefused(400, "give either shop or target, not both")
            shop = config.shop(request.shop)
            if shop is None:
                raise ProbeRefused(404, f"unknown shop {request.shop!r}: not in the loaded profiles")
            module = request.module or SHOP_MODULE
            if module not in (SHOP_MODULE, FIREWALL_MODULE):
                raise ProbeRefused(400, f"unknown module {module!r} for a shop (use {SHOP_MODULE} or "
                                        f"{FIREWALL_MODULE}; modules of the profile take target=URL)")
            if module == FIREWALL_MODULE and not shop.firewall:
                raise ProbeRefused(404, f"shop {shop.name!r} has no firewall layers configured")
            profile = Profile(file="<exporter>", shops=(shop,),
                              findings=tuple(f for p in config.profiles for f in p.findings if f.shop == shop.name))
            options = CheckOptions(resolvers=s.resolvers, ca_bundle=s.ca_bundle, lab=s.lab,
                                   firewall=module == FIREWALL_MODULE, probes=module == SHOP_MODULE)
            return [profile], options, module
        if request.target is None:
            raise ProbeRefused(400, "give shop=NAME, or target=URL with module=NAME")
        if not request.module:
            raise ProbeRefused(400, "target=URL needs module=NAME (a module of the profile)")
        found = config.modules.get(request.module)
        if found is None:
            raise ProbeRefused(400, f"unknown module {request.module!r}")
        if request.target not in found.targets:
            # Never sign for an arbitrary URL: an open signer would post simulated orders anywhere.
            raise ProbeRefused(404, f"target not configured for module {found.name!r}")
        profile = Profile(file="<exporter>", shops=(found.shop_for(request.target),))
        options = CheckOptions(resolvers=s.resolvers, ca_bundle=found.ca_bundle or s.ca_bundle,
                               lab=found.lab or s.lab, firewall=False, check_forgery=found.shop.check_forgery)
        return [profile], options, found.name

    def probe(self, request: ProbeRequest, scrape_timeout: float | None = None) -> ProbeResult:
        profiles, options, module = self.resolve(request)
        with self._entries_lock:
            entry = self._entries.setdefault(request.key, _Entry())
        with entry.lock:            # one probe per target at a time; the others wait and reuse it
            if entry.result is not None and time.monotonic() - entry.monotonic < self.settings.min_interval:
                return _aged(entry.result, cached=True)
            deadline = max(0.5, (scrape_timeout if scrape_timeout else self.settings.default_deadline) - TIMEOUT_OFFSET)
            from dataclasses import replace
            options = replace(options, max_runtime=deadline)
            started = time.monotonic()
            try:
                text = render(run_check(profiles, self._platform(), options, command="serve"))
            except FeedbackCheckError as e:
                # A probe that cannot run (an unusable CA bundle, ...) is an answer, as a failed textfile run
                # is: feedback_check_up 0 with the reason, so the UNKNOWN alert fires.
                text = render_failure(str(e))
            duration = time.monotonic() - started
            entry.result = ProbeResult(text, time.time(), duration, False, module)
            entry.monotonic = started
            return _aged(entry.result, cached=False)

    def forget(self) -> None:
        """Drop every cached result (after a reload the settings may differ)."""
        with self._entries_lock:
            self._entries.clear()


def _aged(result: ProbeResult, *, cached: bool) -> ProbeResult:
    age = max(0.0, time.time() - result.measured_at)
    name = "feedback_check_result_age_seconds"
    extra = (f"# HELP {name} {escape_help('Seconds since this result was measured (reused within the minimum interval).')}\n"
             f"# TYPE {name} gauge\n{name} {format_value(round(age, 3))}\n")
    return ProbeResult(result.text + extra, result.measured_at, result.duration_seconds, cached, result.module)
