"""`feedback-check firewall FILE...`: do the allowlists admit every published PostFinance range?

Several files are several layers on the path, outermost first (security group, host firewall, web
server). `--type` names the format: once for every file, or once per file in the same order
(`auto` to keep detection for one of them). `ipset save` files are recognised and used to resolve
`--match-set`, whether passed with `--ipset` or among the files.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import click

from feedback_check.cli.options import OutputOptions, Seconds, emit, output_options, platform_option
from feedback_check.firewall.formats import FORMAT_MODULES
from feedback_check.urls import url_port

TYPE_CHOICES = ("auto", *FORMAT_MODULES, "ipset")


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--type", "types", multiple=True, type=click.Choice(TYPE_CHOICES), metavar="TYPE",
              help="Format of the files: once for all, or once per file in order "
                   f"({', '.join(TYPE_CHOICES)}). Default: detected.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Feedback port to analyse (default: from --url, else 443).")
@click.option("--url", default=None, help="Post-sale URL: gives the port, and the host/path nginx and Apache match.")
@click.option("--ipset", "ipset_files", multiple=True, type=click.Path(dir_okay=False),
              help="`ipset save` output resolving -m set --match-set (repeatable).")
@click.option("--ranges", "ranges_file", type=click.Path(dir_okay=False), default=None,
              help="Published ranges to use instead of the shipped ones (YAML or one CIDR per line).")
@click.option("--live", is_flag=True,
              help="Read this machine's rules (iptables-save, ip6tables-save, ipset save, nft); needs root.")
@click.option("--max-runtime", type=Seconds(), default=None, metavar="SECONDS",
              help="Deadline for the analysis (it runs in a worker process stopped then): exit 3 past it.")
@platform_option
@output_options
def firewall(files: tuple[str, ...], types: tuple[str, ...], port: int | None, url: str | None,
             ipset_files: tuple[str, ...], ranges_file: str | None, live: bool, max_runtime: float | None,
             platform_file: str | None, output_format: str, output: str | None, quiet: bool, fail_on: str) -> int:
    """Which published PostFinance ranges reach the feedback port through FILE... (outermost layer first)?

    \b
    Examples:
      feedback-check firewall /etc/iptables/rules.v4
      feedback-check firewall sg.json rules.v4 site.conf --url https://shop.example/postfinance/feedback
      feedback-check firewall --type iptables --type nginx dump.txt site.conf
      feedback-check firewall rules.v4 --ipset ipsets.save
      sudo feedback-check firewall --live
    """
    from feedback_check.errors import UsageError
    from feedback_check.firewall.analysis import LayerSource, analyse_layers
    from feedback_check.platform import load_platform, load_range_list
    from feedback_check.report import Report

    started = time.monotonic()
    if not files and not live:
        raise UsageError("name at least one rule file (outermost layer first), or use --live")
    if types and len(types) not in (1, len(files)):
        raise UsageError(f"--type given {len(types)} times for {len(files)} files: give it once (for every file) "
                         "or once per file, in the same order")
    chosen_port, path, host = _port_path_host(port, url)
    platform = load_platform(platform_file)
    range_list = load_range_list(ranges_file, platform) if ranges_file else platform.ranges
    per_file = types * len(files) if len(types) == 1 else (types or ("auto",) * len(files))
    layers = [LayerSource(file, kind) for file, kind in zip(files, per_file)]
    ipsets = [LayerSource(f, "ipset") for f in ipset_files]
    notes: list[str] = []
    if live:
        from feedback_check.firewall.live import read_live

        found = read_live()
        if not found.layers:
            raise UsageError("--live could not read any rules: " + "; ".join(found.problems))
        layers.extend(found.layers)
        ipsets.extend(found.ipsets)
        notes.extend(f"--live: {p}" for p in found.problems)
        notes.extend(f"--live: {n}" for n in found.notes)
    if port is None and url is None:
        notes.append(f"no --port or --url: port {chosen_port} (HTTPS) analysed")
    if chosen_port not in platform.feedback_ports:
        notes.append(f"port {chosen_port} is not one PostFinance sends post-sale requests to "
                     f"({', '.join(map(str, platform.feedback_ports))})")
    if max_runtime is None:
        summary = analyse_layers(layers, platform, port=chosen_port, path=path, host=host, ranges=range_list,
                                 ipsets=ipsets)
    else:
        from feedback_check.workers import run_with_deadline
        summary = run_with_deadline(
            max(0.1, max_runtime - (time.monotonic() - started)), _analyse, layers, platform, chosen_port, path,
            host, range_list, ipsets, what=f"the firewall analysis (--max-runtime {max_runtime:g} s)")
    report = Report(
        command="firewall", findings=summary.findings, firewalls=(summary,),
        platform=platform.with_ranges(range_list).summary(),
        notes=tuple(notes), duration_seconds=time.monotonic() - started)
    return emit(report, OutputOptions(format=output_format, output=output, quiet=quiet, fail_on=fail_on))


def _analyse(layers: Any, platform: Any, port: int, path: str | None, host: str | None, ranges: Any,
             ipsets: Any) -> Any:
    from feedback_check.firewall.analysis import analyse_layers

    return analyse_layers(layers, platform, port=port, path=path, host=host, ranges=ranges, ipsets=ipsets)


def _port_path_host(port: int | None, url: str | None) -> tuple[int, str | None, str | None]:
    from feedback_check.errors import UsageError

    if url is None:
        return (port or 443), None, None
    try:
        parts = urlsplit(url)
        implied = url_port(parts)
    except ValueError as e:
        raise UsageError(f"--url {url!r} cannot be parsed: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r} must be an http:// or https:// URL with a host")
    assert implied is not None      # http or https
    if port is not None and port != implied:
        raise UsageError(f"--port {port} contradicts --url {url} (port {implied})")
    return implied, parts.path or "/", parts.hostname
