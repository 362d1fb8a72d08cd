"""`serve`: the Prometheus exporter (feedback_check/exporter/). Option parsing only."""

from __future__ import annotations

import click

from feedback_check.cli.options import checked_ca_bundle, platform_option


@click.command()
@click.option("--config", "configs", multiple=True, type=click.Path(dir_okay=False),
              help="Merchant profile with shops and modules (repeatable). Default: ./feedback-check.yaml.")
@click.option("--listen", default="127.0.0.1:9803", show_default=True, metavar="ADDR:PORT",
              help="Where to answer scrapes (loopback by default; the exporter signs simulated post-sales).")
@click.option("--min-interval", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="Reuse a target's result this long: every probe posts simulated orders to a live shop.")
@click.option("--resolver", "resolvers", multiple=True, metavar="ADDR[:PORT]",
              help="DNS server to ask (repeatable). Default: the system's.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None, callback=checked_ca_bundle,
              help="Trust store (PEM). Default: the public CA bundle; a module's ca_bundle wins.")
@click.option("--lab", is_flag=True, help="Every probe in lab mode (a module's lab: true sets it per module).")
@platform_option
def serve(configs: tuple[str, ...], listen: str, min_interval: float, resolvers: tuple[str, ...],
          ca_bundle: str | None, lab: bool, platform_file: str | None) -> int:
    """A Prometheus exporter like blackbox_exporter: /probe?shop=NAME, /probe?target=URL&module=NAME,
    /probe?shop=NAME&module=firewall, /metrics; POST /-/reload or SIGHUP reloads the profiles."""
    import logging

    from feedback_check.exporter.probes import ProbeSettings
    from feedback_check.exporter.server import Exporter, make_server, serve_forever
    from feedback_check.platform import load_platform
    from feedback_check.profile import DEFAULT_PROFILE

    logging.basicConfig(level=logging.INFO, format="feedback-check serve: %(levelname)s %(message)s")
    settings = ProbeSettings(resolvers=resolvers, ca_bundle=ca_bundle, lab=lab, min_interval=min_interval)
    exporter = Exporter(configs or (DEFAULT_PROFILE,), lambda: load_platform(platform_file), settings)
    server = make_server(exporter, listen)
    serve_forever(server, lambda where: click.echo(f"feedback-check serve: listening on http://{where}/", err=True))
    return 0
