"""Plugin-style thresholds (`-w`, `-c`, `-C`, `-t`, as on check_curl) mapped onto the platform profile.

A monitoring user changes a threshold on the command line instead of writing a whole `--platform` file:

- ``-w/--warning-time SECONDS``: the slow threshold (`timing.slow_seconds`, finding `http.slow`);
- ``-c/--critical-time SECONDS``: the time budget of one post-sale request (`timing.budget_seconds`):
  an answer later than this fails the post-sale (`http.timeout`, CRITICAL);
- ``-t/--timeout SECONDS``: how long one request may take at most; with ``-c`` as well, the smaller of
  the two is the budget (waiting longer than the critical time only delays a CRITICAL);
- ``-C/--certificate DAYS[,DAYS]``: certificate warning and critical windows (`tls.cert_warning_days`,
  `tls.cert_critical_days`); with one number, the critical window stays the platform's (at most DAYS).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from feedback_check.errors import UsageError
from feedback_check.platform import Platform


@dataclass(frozen=True)
class PluginThresholds:
    warning_time: float | None = None
    critical_time: float | None = None
    timeout: float | None = None
    certificate: str | None = None          # "DAYS[,DAYS]" as given

    def budget(self) -> float | None:
        """The request budget the options ask for (None: the platform's)."""
        given = [v for v in (self.critical_time, self.timeout) if v is not None]
        return min(given) if given else None


def certificate_days(text: str, platform: Platform) -> tuple[int, int]:
    """`-C 30` or `-C 30,14`: (warning days, critical days)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise UsageError(f"-C/--certificate {text!r}: expected DAYS or WARNING_DAYS,CRITICAL_DAYS (whole days)")
    warning = int(parts[0])
    critical = int(parts[1]) if len(parts) == 2 else min(platform.cert_critical_days, warning)
    if critical > warning:
        raise UsageError(f"-C/--certificate {text!r}: the critical window ({critical} days) is longer than the "
                         f"warning window ({warning} days)")
    return warning, critical


def apply_thresholds(platform: Platform, thresholds: PluginThresholds) -> Platform:
    """The platform with the thresholds the options set. The budget itself is applied by the runner
    (`CheckOptions.timeout` = `thresholds.budget()`); here it only bounds the warning time."""
    budget = thresholds.budget()
    if budget is not None:
        platform = platform.with_budget(budget)
    if thresholds.warning_time is not None:
        if thresholds.warning_time >= platform.budget_seconds:
            raise UsageError(f"-w/--warning-time {thresholds.warning_time:g}: must be below the critical time "
                             f"({platform.budget_seconds:g} s)")
        platform = replace(platform, slow_seconds=thresholds.warning_time)
    if thresholds.certificate is not None:
        warning, critical = certificate_days(thresholds.certificate, platform)
        platform = replace(platform, cert_warning_days=warning, cert_critical_days=critical)
    return platform
