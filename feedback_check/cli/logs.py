"""`feedback-check logs FILE...`: did PostFinance's post-sales arrive, and what did the shop answer?"""

from __future__ import annotations

import click

from feedback_check.cli.options import OutputOptions, emit, output_options, platform_option


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--url", "urls", multiple=True, help="Post-sale URL whose path to look for (repeatable).")
@click.option("--path", "paths", multiple=True, help="Feedback path to look for, e.g. /postfinance/feedback "
              "(repeatable; <PARAMVAR> matches one segment). Default: every path PostFinance requested.")
@click.option("--since", default=None, metavar="TIME", help="Only requests from TIME on (ISO date/time, or 2h, 7d ago).")
@click.option("--until", default=None, metavar="TIME", help="Only requests up to TIME.")
@click.option("--at", default=None, metavar="TIME", help="Show PostFinance's requests around TIME (a reported process error).")
@click.option("--window", default="30m", show_default=True, metavar="DURATION", help="How far around --at.")
@click.option("--log-format", default=None, metavar="FMT",
              help="combined, common, vhost_combined, json, caddy, traefik, alb; an nginx log_format or Apache "
                   "LogFormat string; or the server's configuration file defining it. Default: detected.")
@click.option("--trusted-proxy", "trusted", multiple=True, metavar="CIDR|PRESET",
              help="A proxy/CDN in front of the server whose forwarding headers are believed (repeatable; "
                   "presets: cloudflare, fastly, loopback, private).")
@click.option("--method", type=click.Choice(["GET", "POST"], case_sensitive=False), default=None,
              help="The method the account sends (judges a GET where POST is expected).")
@click.option("--expect-every", default="1d", show_default=True, metavar="DURATION",
              help="The shop gets a payment at least this often: a log covering less cannot prove none arrived.")
@click.option("--ranges", "ranges_file", type=click.Path(dir_okay=False), default=None,
              help="Published ranges to use instead of the shipped ones (YAML or one CIDR per line).")
@platform_option
@output_options
def logs(files: tuple[str, ...], urls: tuple[str, ...], paths: tuple[str, ...], since: str | None,
         until: str | None, at: str | None, window: str, log_format: str | None, trusted: tuple[str, ...],
         method: str | None, expect_every: str, ranges_file: str | None, platform_file: str | None,
         output_format: str, output: str | None, quiet: bool, fail_on: str) -> int:
    """Evidence from PostFinance's own addresses in the web server's access logs FILE... (- for stdin).

    \b
    Examples:
      feedback-check logs /var/log/nginx/access.log*
      feedback-check logs access.log --url https://shop.example/postfinance/feedback --method POST
      feedback-check logs access.log.2.gz access.log.1 access.log --at '2026-11-30 14:02'
      zcat old.gz | feedback-check logs - --path /postfinance/feedback --trusted-proxy cloudflare
      feedback-check logs access.log --log-format /etc/nginx/nginx.conf
    """
    from feedback_check.logs.judgement import check_logs
    from feedback_check.logs.query import build_query
    from feedback_check.logs.sources import describe_presets
    from feedback_check.platform import load_platform, load_range_list
    from feedback_check.report import Report, assumptions_used

    platform = load_platform(platform_file)
    if ranges_file:
        platform = platform.with_ranges(load_range_list(ranges_file, platform))
    query = build_query(urls=urls, paths=paths, since=since, until=until, at=at, window=window,
                        log_format=log_format, trusted=trusted, method=method, expect_every=expect_every)
    summary = check_logs(files, platform, query)
    notes = describe_presets(query.trusted)
    if not query.paths:
        notes.append("no --url or --path: every path PostFinance's addresses requested is treated as a feedback "
                     "path" + ("; the logs were read a second time for other addresses on those paths"
                               if summary.evidence.strangers_checked else
                               "; requests from other addresses were not looked at (standard input cannot be "
                               "read twice)"))
    texts = {a.key: platform.describe(a) for a in platform.assumptions}
    report = Report(command="logs", findings=summary.findings, logs=(summary,),
                    assumptions=assumptions_used(summary.findings, texts),
                    platform={**platform.summary(),
                              "legacy_ranges": {"cidrs": list(platform.legacy_ranges),
                                                "source": platform.legacy_source}},
                    notes=tuple(notes))
    return emit(report, OutputOptions(format=output_format, output=output, quiet=quiet, fail_on=fail_on))
