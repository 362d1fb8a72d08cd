"""`ranges`: the published PostFinance ranges in use, their source and age."""

from __future__ import annotations

import json

import click

from feedback_check.cli.options import platform_option


@click.command()
@click.option("--ranges", "ranges_file", type=click.Path(dir_okay=False), default=None,
              help="A range list to show instead of the shipped one (YAML or one CIDR per line).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@platform_option
def ranges(ranges_file: str | None, output_format: str, platform_file: str | None) -> int:
    """Show the published ranges in use, their source and age (exit 1 when the list is stale)."""
    from feedback_check.platform import load_platform, load_range_list

    platform = load_platform(platform_file)
    in_use = load_range_list(ranges_file, platform) if ranges_file else platform.ranges
    age = in_use.age_days()
    stale = in_use.is_stale()
    if output_format == "json":
        click.echo(json.dumps({
            "ranges": [{"cidr": r.cidr, "provenance": r.provenance, "addresses": r.addresses.size()}
                       for r in in_use.ranges],
            "source": in_use.source, "retrieved": in_use.retrieved.isoformat() if in_use.retrieved else None,
            "age_days": age, "max_age_days": in_use.max_age_days, "stale": stale, "custom": in_use.custom,
            "note": in_use.note, "ports": list(platform.feedback_ports),
            "legacy": {"source": platform.legacy_source, "cidrs": list(platform.legacy_ranges)},
        }, indent=2))
        return 1 if stale else 0
    kind = "custom list" if in_use.custom else "shipped list"
    click.echo(f"Published PostFinance post-sale source ranges ({kind}), TCP {', '.join(map(str, platform.feedback_ports))}:")
    for r in in_use.ranges:
        size = r.addresses.size()
        click.echo(f"  {r.cidr:<20} {size:>6,} {'address  ' if size == 1 else 'addresses'}  [{r.provenance}]")
    click.echo(f"Source:    {in_use.source}")
    retrieved = in_use.retrieved.isoformat() if in_use.retrieved else "unknown"
    click.echo(f"Retrieved: {retrieved}" + (f" ({age} days ago; stale after {in_use.max_age_days})" if age is not None else ""))
    if in_use.note:
        click.echo(f"Note:      {in_use.note}")
    if platform.legacy_ranges:
        click.echo(f"Legacy (pre-2019, {platform.legacy_source}), not enough on their own:")
        click.echo("  " + " ".join(platform.legacy_ranges))
    if stale:
        click.echo(f"WARNING: the list is older than {in_use.max_age_days} days: compare it with PostFinance's "
                   "firewall configuration page and pass a fresh one with --ranges.")
        return 1
    return 0
