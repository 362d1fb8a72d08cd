"""`check`, `probe` and `demo`: option parsing only; the work is in runner, probe and demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from feedback_check.cli.options import (
    OutputOptions,
    Seconds,
    emit,
    network_options,
    output_options,
    width_option,
)
from feedback_check.reporters import FORMATS

#: `probe --timing`: the short spellings and the profile's (feedback.timing) for the same back-office setting.
TIMING_CHOICES = {"deferred": "always_deferred", "online": "always_online",
                  "online-then-deferred": "online_then_deferred",
                  "always_deferred": "always_deferred", "always_online": "always_online",
                  "online_then_deferred": "online_then_deferred"}


def _platform(platform_file: str | None, ranges_file: str | None = None, thresholds: Any = None) -> Any:
    from feedback_check.platform import load_platform, load_range_list
    from feedback_check.thresholds import apply_thresholds

    platform = load_platform(platform_file)
    if ranges_file:
        platform = platform.with_ranges(load_range_list(ranges_file, platform))
    if thresholds is not None:
        platform = apply_thresholds(platform, thresholds)
    return platform


def _observer(output_format: str, quiet: bool) -> Any:
    if output_format != "text" or quiet:
        return None
    from feedback_check.cli.progress import progress_observer
    return progress_observer()


def _run_with_progress(profiles: Any, platform: Any, options: Any, output_format: str, quiet: bool,
                       command: str = "check") -> Any:
    from feedback_check.runner import run_check

    observer = _observer(output_format, quiet)
    try:
        return run_check(profiles, platform, options, observer, command=command)
    finally:
        if observer is not None:
            observer.finish()


@click.command()
@click.option("--config", "configs", multiple=True, type=click.Path(dir_okay=False),
              help="Merchant profile (repeatable). Default: ./feedback-check.yaml.")
@click.option("--shop", "shops", multiple=True, metavar="NAME", help="Check only this shop (repeatable).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="How many probes run at once (default 512, lowered to what the open-file limit allows).")
@click.option("--max-runtime", type=Seconds(), default=None, metavar="SECONDS",
              help="Deadline for the whole run; unfinished shops are reported as UNKNOWN.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False), default=None,
              help="Remember verdicts here and report what changed since the previous run.")
@click.option("--ranges", "ranges_file", type=click.Path(dir_okay=False), default=None,
              help="Published ranges to use instead of the shipped ones (YAML or one CIDR per line).")
@click.option("--no-firewall", is_flag=True, help="Skip the firewall analysis.")
@click.option("--no-logs", is_flag=True, help="Skip reading the access logs named in the profile (logs:).")
@click.option("--no-forgery-check", is_flag=True,
              help="Do not send the extra request with a wrong SHASIGN.")
@network_options
@output_options
def check(configs: tuple[str, ...], shops: tuple[str, ...], concurrency: int | None, max_runtime: float | None,
          state_file: str | None, ranges_file: str | None, no_firewall: bool, no_logs: bool,
          no_forgery_check: bool, resolvers: tuple[str, ...], ca_bundle: str | None, timeout: float | None,
          warning_time: float | None, critical_time: float | None, certificate: str | None, lab: bool,
          platform_file: str | None, output_format: str, output: str | None, quiet: bool, fail_on: str) -> int:
    """Probe every post-sale URL of the profile and analyse its firewall layers: one diagnosis."""
    from feedback_check.profile import DEFAULT_PROFILE, check_unique_shops, load_profile
    from feedback_check.runner import DEFAULT_CONCURRENCY, CheckOptions
    from feedback_check.thresholds import PluginThresholds

    started = time.monotonic()
    thresholds = PluginThresholds(warning_time, critical_time, timeout, certificate)
    timeout = thresholds.budget()
    platform = _platform(platform_file, ranges_file, thresholds)
    if not configs and not Path(DEFAULT_PROFILE).exists() and not Path(DEFAULT_PROFILE).is_symlink():
        from feedback_check.errors import ConfigError
        raise ConfigError("file not found in this folder (write a starter profile with `feedback-check init`, "
                          "or give one with --config FILE)", file=DEFAULT_PROFILE)
    profiles = [load_profile(path, platform) for path in (configs or (DEFAULT_PROFILE,))]
    check_unique_shops(profiles)
    # --max-runtime counts from here: reading a large profile is part of the run it bounds.
    remaining = None if max_runtime is None else max(0.1, max_runtime - (time.monotonic() - started))
    options = CheckOptions(
        resolvers=resolvers, ca_bundle=ca_bundle, timeout=timeout, lab=lab,
        concurrency=concurrency or DEFAULT_CONCURRENCY, max_runtime=remaining, shops=shops,
        firewall=not no_firewall, logs=not no_logs, check_forgery=not no_forgery_check,
        ranges=platform.ranges if ranges_file else None)
    report = _run_with_progress(profiles, platform, options, output_format, quiet)
    problems: list[str] = []
    if state_file:
        from feedback_check.errors import ConfigError
        from feedback_check.state import StateUpdate
        # Locked from reading to writing (concurrent runs take turns). The new state is written to its
        # temporary file before the report (so a write problem is in the report) and renamed into place
        # only once the report was delivered: an undelivered report is reported again next time.
        wait = 120.0 if max_runtime is None else max(1.0, max_runtime - (time.monotonic() - started))
        update = StateUpdate(state_file, wait_seconds=wait)
        try:
            with update:
                try:
                    report = update.apply(report)
                    update.prepare()
                except ConfigError as e:
                    problems.append(f"--state: {e}")
                return emit(report, OutputOptions(output_format, output, quiet, fail_on), problems,
                            on_delivered=update.commit if not problems else None)
        except ConfigError as e:
            if update.entered:
                raise                # from emit itself (stdout closed): the state stays as it was
            # The lock could not be taken: the check ran, its report is printed anyway (see emit).
            problems.append(f"--state: {e}")
    return emit(report, OutputOptions(output_format, output, quiet, fail_on), problems)


@click.command()
@click.argument("url")
@click.option("--role", type=click.Choice(["accepted", "rejected", "status_change"]), default="accepted",
              show_default=True, help="Which post-sale URL this is (decides the simulated STATUS).")
@click.option("--method", type=click.Choice(["GET", "POST"], case_sensitive=False), default="POST",
              show_default=True, help="Request method configured in the back office.")
@click.option("--status", type=int, default=None, help="STATUS to send (default: one that fits the role).")
@click.option("--timing", type=click.Choice(list(TIMING_CHOICES), case_sensitive=False), default="deferred",
              show_default=True,
              help="Timing of the request configured in the back office (the profile's spellings always_deferred, "
                   "always_online, online_then_deferred work too).")
@click.option("--passphrase-env", metavar="VAR", default=None, help="Environment variable holding the SHA-OUT passphrase.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the SHA-OUT passphrase (first line).")
@click.option("--algorithm", default=None, help="SHA-1, SHA-256 or SHA-512 (default: the platform's, SHA-512).")
@click.option("--encoding", default=None, help="UTF-8 or ISO-8859-1 (default UTF-8).")
@click.option("--paramvar", default=None, help="Value substituted for <PARAMVAR> in the URL.")
@click.option("--parameters", default=None, metavar="NAME,NAME,...",
              help="Dynamic e-Commerce parameters to send (default: the platform's usual set).")
@click.option("--no-forgery-check", is_flag=True,
              help="Do not send the extra requests with a wrong or re-signed SHASIGN.")
@click.option("--order-id", default=None, metavar="ID", help="orderID of an order the shop knows (a test order).")
@click.option("--amount", default=None, metavar="A", help="amount of that order, as the platform sends it (49.90).")
@click.option("--currency", default=None, metavar="C", help="currency of that order (CHF, EUR, ...).")
@click.option("--param", "param_values", multiple=True, metavar="NAME=VALUE",
              help="Value of any parameter to send (repeatable), e.g. --param PAYID=3012345678.")
@click.option("--replay", "replay_file", type=click.Path(dir_okay=False), default=None,
              help="Re-send a captured post-sale (query string, form body, key=value lines or HTTP request, as "
                   "`verify` reads) re-signed with the configured passphrase.")
@network_options
@output_options
def probe(url: str, role: str, method: str, status: int | None, timing: str, passphrase_env: str | None,
          passphrase_file: str | None, algorithm: str | None, encoding: str | None, paramvar: str | None,
          parameters: str | None, no_forgery_check: bool, order_id: str | None, amount: str | None,
          currency: str | None, param_values: tuple[str, ...], replay_file: str | None, resolvers: tuple[str, ...],
          ca_bundle: str | None, timeout: float | None, warning_time: float | None, critical_time: float | None,
          certificate: str | None, lab: bool, platform_file: str | None, output_format: str, output: str | None,
          quiet: bool, fail_on: str) -> int:
    """Send a simulated, signed post-sale request to URL and diagnose every phase."""
    import os

    from feedback_check.errors import UsageError
    from feedback_check.findings import Finding
    from feedback_check.profile import FeedbackUrl, Profile, Secret, Shop, SignatureSettings, read_secret_file
    from feedback_check.runner import CheckOptions
    from feedback_check.signature import normalise_algorithm, normalise_encoding
    from feedback_check.thresholds import PluginThresholds

    thresholds = PluginThresholds(warning_time, critical_time, timeout, certificate)
    timeout = thresholds.budget()
    platform = _platform(platform_file, thresholds=thresholds)
    _usable_url(url, paramvar, platform)
    findings: list[Finding] = []
    if passphrase_env and passphrase_file:
        raise UsageError("give either --passphrase-env or --passphrase-file, not both")
    throwaway = False
    if passphrase_env:
        if passphrase_env not in os.environ:
            raise UsageError(f"--passphrase-env: environment variable {passphrase_env} is not set")
        secret = Secret(os.environ[passphrase_env], f"environment variable {passphrase_env}")
    elif passphrase_file:
        secret = read_secret_file(Path(passphrase_file), findings)
    else:
        import secrets
        secret = Secret(secrets.token_urlsafe(24), "a throwaway passphrase (none was given)")
        throwaway = True
    try:
        signature = SignatureSettings(normalise_algorithm(algorithm or platform.default_algorithm),
                                      normalise_encoding(encoding or platform.default_encoding), secret)
    except ValueError as e:
        raise UsageError(str(e)) from None
    test_order = _test_order(order_id, amount, currency, param_values)
    replay = None
    if replay_file is not None:
        if test_order:
            raise UsageError("--replay sends the captured parameters: give no --order-id/--amount/--currency/--param")
        from feedback_check.signature.params import read_parameters
        replay = read_parameters(replay_file, encoding=signature.encoding).pairs
    shop = Shop(name="probe", timing=TIMING_CHOICES[timing.lower()], method=method.upper(),
                urls=(FeedbackUrl(role, url),), paramvar=paramvar,
                parameters=tuple(p.strip() for p in parameters.split(",") if p.strip()) if parameters
                else platform.default_parameters,
                signature=signature, check_forgery=not no_forgery_check and not throwaway,
                order_prefix=platform.test_order_prefix, test_order=test_order, replay=replay,
                replay_origin=replay_file or "")
    profile = Profile(file="<command line>", shops=(shop,), findings=tuple(findings))
    options = CheckOptions(resolvers=resolvers, ca_bundle=ca_bundle, timeout=timeout, lab=lab, status=status,
                           check_forgery=not no_forgery_check and not throwaway)
    report = _run_with_progress([profile], platform, options, output_format, quiet, command="probe")
    if throwaway:
        from dataclasses import replace
        note = ("No passphrase was given: the request was signed with a throwaway passphrase, so the endpoint's "
                "answer says nothing about its SHA-OUT check (pass --passphrase-env or --passphrase-file).")
        report = replace(report, notes=(*report.notes, note))
    return emit(report, OutputOptions(output_format, output, quiet, fail_on))


def _usable_url(url: str, paramvar: str | None, platform: Any) -> None:
    """A URL typed on the command line that cannot be probed at all (unparsable, no host, not http/https)
    is bad usage - one line, exit 3 - not a CRITICAL about a shop (in a profile it stays a finding)."""
    from feedback_check.errors import UsageError
    from feedback_check.probe.url import check_url, redact_url

    checked = check_url(url, paramvar=paramvar, platform=platform)
    if checked.usable and checked.host:
        return
    problem = next((f for f in checked.findings if f.code in ("url.invalid", "url.scheme")), None)
    reason = problem.detail.rstrip(".") if problem else "it has no host"
    reason = reason[0].lower() + reason[1:] if reason.startswith("The ") else reason
    # The lint's fix speaks of the back office; on the command line only a fix of the text itself helps.
    fix = f"; {problem.fix[0].lower()}{problem.fix[1:].rstrip('.')}" \
        if problem and problem.fix and "back office" not in problem.fix else ""
    raise UsageError(f"URL {redact_url(url)[:200]!r} cannot be probed: {reason}{fix}")


def _test_order(order_id: str | None, amount: str | None, currency: str | None,
                param_values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """--order-id/--amount/--currency and every --param NAME=VALUE as (name, value) pairs."""
    from feedback_check.errors import UsageError

    pairs = [(name, value) for name, value in (("orderID", order_id), ("amount", amount), ("currency", currency))
             if value is not None]
    for item in param_values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not name.strip().replace("_", "").isalnum():
            raise UsageError(f"--param {item[:60]!r}: expected NAME=VALUE (e.g. --param PAYID=3012345678)")
        if name.strip().upper() == "SHASIGN":
            raise UsageError("--param SHASIGN: the probe computes SHASIGN itself")
        pairs.append((name.strip(), value))
    names = [n.upper() for n, _ in pairs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise UsageError(f"{duplicate} is given twice (--order-id/--amount/--currency and --param)")
    return tuple(pairs)


@click.command()
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Report format.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE (atomically) instead of stdout, e.g. --format html --output demo.html.")
@width_option
def demo(output_format: str, output: str | None) -> int:
    """Run the whole check against built-in sample endpoints on 127.0.0.1 and a sample firewall file.

    Needs no configuration and nothing beyond loopback. Exits 0 when the demo ran (the sample shops are
    broken on purpose: the verdict is in the report)."""
    from feedback_check.demo import run_demo

    report = run_demo()
    emit(report, OutputOptions(output_format, output))
    return 0
