"""Requests per probe and the time the follow-up judgment adds, against the handler models.

Each case probes a model of a real handler (tests/servers/shop_handlers.py) on a loopback server twice:
with the follow-ups (other method, forged SHASIGN, re-signed variants) and without them
(check_forgery=False, try_other_method=False: the genuine request only). It prints, per case, the requests
the handler received and the median wall time of `probe_url` with and without, over --repeat runs.

    .venv/bin/python benchmarks/judgment.py --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_check.platform import load_platform
from feedback_check.probe.probe import ProbeRequest, ProbeSettings, probe_url
from feedback_check.profile import Secret, SignatureSettings
from tests.servers.http_servers import LoopbackServer, app
from tests.servers.shop_handlers import OLD_LIST, Django, HandWrittenPhp, Magento1, Odoo

PASSPHRASE = "Benchmark-Sha-Out-Passphrase-3"
ORDER = (("orderID", "S1-1"), ("amount", "49.90"), ("currency", "CHF"))
ORDERS = {"S1-1": ("49.90", "CHF")}


def cases() -> list[tuple[str, Any, dict[str, Any]]]:
    return [
        ("Odoo 16, real order (accepted: forgery check)", Odoo(PASSPHRASE, orders=dict(ORDERS)), {"order": ORDER}),
        ("Odoo 16, unknown order (422: full catalogue)", Odoo(PASSPHRASE, orders=dict(ORDERS)), {"order": ()}),
        ("Odoo 16, wrong algorithm (403 -> variant 303)", Odoo(PASSPHRASE, algorithm="sha256", orders=dict(ORDERS)),
         {"order": ORDER}),
        ("Odoo 16, wrong passphrase (403 throughout)", Odoo("other", orders=dict(ORDERS)), {"order": ORDER}),
        ("Magento 1, PAYIDSUB sent (stale list)", Magento1(PASSPHRASE, orders=dict(ORDERS)), {"order": ORDER}),
        ("hand-written PHP, unknown order (404)", HandWrittenPhp(PASSPHRASE, orders=dict(ORDERS)), {"order": ()}),
        ("Django, stale list", Django(PASSPHRASE, orders=dict(ORDERS), sha_list=OLD_LIST), {"order": ORDER}),
    ]


def run(url: str, order: tuple[tuple[str, str], ...], follow_ups: bool) -> float:
    platform = load_platform()
    request = ProbeRequest(shop="bench", role="accepted", url=url, method="POST", timing="always_deferred",
                           paramvar=None, parameters=platform.default_parameters,
                           signature=SignatureSettings("SHA-512", "UTF-8", Secret(PASSPHRASE, "bench")),
                           order_prefix=platform.test_order_prefix, test_order=order)
    settings = ProbeSettings(budget_seconds=5, check_forgery=follow_ups, try_other_method=follow_ups)
    started = time.perf_counter()
    asyncio.run(probe_url(request, platform, settings))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':50} {'requests':>8} {'with':>9} {'without':>9} {'added':>9}")
    for label, handler, options in cases():
        with LoopbackServer(app({handler.path: handler})) as server:
            url = server.url(handler.path)
            with_times, without_times, counts = [], [], []
            for _ in range(args.repeat):
                before = len(server.requests)
                with_times.append(run(url, options["order"], True))
                counts.append(len(server.requests) - before)
                without_times.append(run(url, options["order"], False))
        with_median, without_median = statistics.median(with_times), statistics.median(without_times)
        print(f"{label:50} {max(counts):>8} {with_median * 1000:>7.1f}ms {without_median * 1000:>7.1f}ms "
              f"{(with_median - without_median) * 1000:>7.1f}ms")


if __name__ == "__main__":
    main()
