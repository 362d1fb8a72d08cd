"""The shipped example profiles do what their headers and the README say (audit 11).

`examples/profiles/shop-ch.yaml` names three firewall layers (cloud SG, host iptables, nginx) from the
example files under examples/firewall. The README's Nagios example runs it; here its URLs point at a
handler on 127.0.0.1 (shop.example.ch answered by a stub DNS server on loopback, so the nginx layer
matches the shop's own server block) and no packet leaves the machine.
"""

from __future__ import annotations

import re
from pathlib import Path

from feedback_check.platform import load_platform
from feedback_check.profile import load_profile
from tests.acceptance.test_cli_check import PASSPHRASE, assert_no_traceback, run_cli
from tests.servers.http_servers import LoopbackServer, ShaOutVerifier, app
from tests.unit.test_reporters_nagios import parse as parse_nagios

ROOT = Path(__file__).resolve().parents[2]
SHOP_CH = ROOT / "examples" / "profiles" / "shop-ch.yaml"


def test_shop_ch_has_the_three_layers_its_header_names() -> None:
    shop = load_profile(SHOP_CH, load_platform(), environ={"SHOP_CH_SHA_OUT": "s3cret-ch"}).shops[0]
    assert [layer.type for layer in shop.firewall] == ["aws-sg", "iptables", "nginx"]
    for layer in shop.firewall:
        assert Path(layer.file).is_file(), layer.file
        assert Path(layer.file).resolve().is_relative_to(ROOT / "examples" / "firewall")
    text = SHOP_CH.read_text(encoding="utf-8")
    assert "# test_order:" in text and "# logs:" in text


def test_shop_ch_nagios_line_carries_the_firewall_perfdata(tmp_path: Path, dns_stub) -> None:  # type: ignore[no-untyped-def]
    """The README's `check --config shop.yaml --shop shop-ch --format nagios -w 3 -c 10 -C 30,14`."""
    with LoopbackServer(app({"/postfinance/feedback": ShaOutVerifier(PASSPHRASE),
                             "/postfinance/status": ShaOutVerifier(PASSPHRASE)})) as server:
        resolver = dns_stub({"shop.example.ch": {"A": ["127.0.0.1"]}})
        text = SHOP_CH.read_text(encoding="utf-8")
        # The handler listens on a loopback port; the layers still guard 443 (where the shop's nginx is).
        text = text.replace("https://shop.example.ch/", f"http://shop.example.ch:{server.port}/")
        text = re.sub(r"file: \.\./(\S+)\}", lambda m: f"file: {ROOT / 'examples' / m.group(1)}, port: 443}}", text)
        profile = tmp_path / "shop.yaml"
        profile.write_text(text, encoding="utf-8")
        result = run_cli("check", "--config", str(profile), "--shop", "shop-ch", "--format", "nagios", "-w", "3",
                         "-c", "10", "-C", "30,14", "--lab", "--resolver", resolver, "--no-forgery-check",
                         env={"SHOP_CH_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    state, reason, perf, _ = parse_nagios(result.stdout)
    assert (result.returncode, state) == (2, "CRITICAL"), result.stdout + result.stderr
    # The nginx layer denies all but the 2019 hosts: 2,301 of the 2,304 published addresses blocked.
    assert perf["blocked_addresses"].value == 2301 and perf["blocked_addresses"].max == "2304"
    assert perf["urls_critical"].value == 0 and perf["urls_ok"].value + perf["urls_warning"].value == 3
    assert perf["total"].warn == "3" and perf["total"].crit == "10"
    assert reason.startswith("2,301 published addresses blocked; 0 of 3 URLs failing, 3 warnings"), reason
