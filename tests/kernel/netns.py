"""A two-namespace lab for the kernel ground-truth tests: a "client" namespace holding many source
addresses and a "server" namespace whose firewall is under test, joined by a veth pair.

Nothing leaves the namespaces the lab creates: the client only routes to the server's addresses over
the veth, the server answers over it (default route on the veth), and both namespaces (with the veth
pair) are deleted on exit, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

REPO = Path(__file__).resolve().parents[2]
SERVER4 = "198.18.0.1"            # RFC 2544 benchmarking range: never routed anywhere real
SERVER6 = "fd00:fbc::1"
# Interface names avoid the veth* prefix: the analysers treat veth*/docker0/br-* as internal bridges.
CLIENT_IF = "fbkc0"
SERVER_IF = "fbks0"
REQUIRED_TOOLS = ("ip", "nft")


class LabUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no CAP_NET_ADMIN, tools missing)."""


def run(args: Sequence[str], *, input_text: str | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), input=input_text, capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def unavailable_reason(extra_tools: Iterable[str] = ()) -> str | None:
    """Why the lab cannot run here, or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    missing = [tool for tool in (*REQUIRED_TOOLS, *extra_tools) if shutil.which(tool) is None]
    if missing:
        return f"tools missing: {', '.join(missing)} (install iproute2, nftables, iptables, ipset)"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN/CAP_NET_ADMIN)"
    probe = f"fbkprobe{uuid.uuid4().hex[:6]}"
    result = run(["ip", "netns", "add", probe], check=False)
    if result.returncode != 0:
        return f"network namespaces not permitted here: {result.stderr.strip()}"
    run(["ip", "netns", "del", probe], check=False)
    return None


class Lab:
    """Context manager: client and server namespaces joined by a veth pair."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.client = f"fbk{tag}c"
        self.server = f"fbk{tag}s"
        self._listener: subprocess.Popen[str] | None = None
        self._sources: set[str] = set()
        self._client_mac = ""

    # -- set-up and tear-down --------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _setup(self) -> None:
        run(["ip", "netns", "add", self.client])
        run(["ip", "netns", "add", self.server])
        run(["ip", "link", "add", CLIENT_IF, "netns", self.client, "type", "veth",
             "peer", "name", SERVER_IF, "netns", self.server])
        batch_server = [
            "link set lo up", f"link set {SERVER_IF} up",
            f"addr add {SERVER4}/32 dev {SERVER_IF}", f"addr add {SERVER6}/128 dev {SERVER_IF} nodad",
            f"route add default dev {SERVER_IF}", f"route add ::/0 dev {SERVER_IF}",
        ]
        batch_client = [
            "link set lo up", f"link set {CLIENT_IF} up",
            f"route add {SERVER4}/32 dev {CLIENT_IF}", f"route add {SERVER6}/128 dev {CLIENT_IF}",
        ]
        run(["ip", "-n", self.server, "-batch", "-"], input_text="\n".join(batch_server) + "\n")
        run(["ip", "-n", self.client, "-batch", "-"], input_text="\n".join(batch_client) + "\n")
        # ICMP error rate limits (per host, and the per-namespace global budget of 50 at once) would
        # swallow REJECT answers when many sources are tried in parallel.
        for namespace in (self.server, self.client):
            run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0",
                 "net.ipv6.icmp.ratelimit=0", "net.ipv4.icmp_msgs_per_sec=1000000",
                 "net.ipv4.icmp_msgs_burst=1000000"])

        # IPv6 neighbour discovery is ICMPv6, which a generated ruleset may drop, and a burst of ARP
        # requests for hundreds of sources can be slower than the connect timeout: static neighbours
        # keep the test about TCP only (permanent entries do not count against the neighbour-table
        # garbage-collection thresholds since Linux 4.20).
        self._client_mac = self._mac(self.client, CLIENT_IF)
        server_mac = self._mac(self.server, SERVER_IF)
        run(["ip", "-n", self.client, "neigh", "replace", SERVER6, "lladdr", server_mac, "dev", CLIENT_IF,
             "nud", "permanent"])
        self._listener = subprocess.Popen(
            ["ip", "netns", "exec", self.server, sys.executable, "-m", "tests.kernel.netprobe", "listen",
             "80", "443"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._listener.stdout is not None
        line = self._listener.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"listener did not start: {line!r} {self._listener.stderr.read() if self._listener.stderr else ''}")

    @staticmethod
    def _mac(namespace: str, interface: str) -> str:
        info = json.loads(run(["ip", "-n", namespace, "-j", "link", "show", "dev", interface]).stdout)
        return str(info[0]["address"])

    def close(self) -> None:
        if self._listener is not None:
            self._listener.kill()
            self._listener.wait(timeout=10)
            for stream in (self._listener.stdout, self._listener.stderr):
                if stream is not None:
                    stream.close()
            self._listener = None
        for namespace in (self.client, self.server):
            run(["ip", "netns", "del", namespace], check=False)

    # -- use --------------------------------------------------------------------------------------
    def add_sources(self, addresses: Iterable[str]) -> None:
        """Give the client side these source addresses (as /32 and /128 on its veth)."""
        new = sorted(set(addresses) - self._sources)
        if not new:
            return
        lines = [f"addr add {a}/{128 if ':' in a else 32} dev {CLIENT_IF}" + (" nodad" if ":" in a else "")
                 for a in new]
        run(["ip", "-n", self.client, "-batch", "-"], input_text="\n".join(lines) + "\n")
        neighbours = [f"neigh replace {a} lladdr {self._client_mac} dev {SERVER_IF} nud permanent"
                      for a in new]
        if neighbours:
            run(["ip", "-n", self.server, "-batch", "-"], input_text="\n".join(neighbours) + "\n")
        self._sources.update(new)

    def server_exec(self, args: Sequence[str], input_text: str | None = None,
                    check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.server, *args], input_text=input_text, check=check)

    def load_nft(self, text: str) -> None:
        self.reset_firewall()
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as handle:
            handle.write(text)
        try:
            self.server_exec(["nft", "-f", handle.name])
        finally:
            os.unlink(handle.name)

    def load_iptables(self, rules_v4: str, rules_v6: str | None, ipsets: str | None) -> None:
        self.reset_firewall()
        if ipsets:
            self.server_exec(["ipset", "restore"], input_text=ipsets)
        self.server_exec(["iptables-restore"], input_text=rules_v4)
        if rules_v6:
            self.server_exec(["ip6tables-restore"], input_text=rules_v6)

    def reset_firewall(self) -> None:
        self.server_exec(["nft", "flush", "ruleset"])
        if shutil.which("ipset"):
            self.server_exec(["ipset", "destroy"], check=False)

    def connect(self, sources: Sequence[str], port: int, timeout: float = 1.0) -> dict[str, str]:
        """What the server's kernel does with a new connection from each source to `port`."""
        self.add_sources(sources)
        result = run(["ip", "netns", "exec", self.client, sys.executable, "-m", "tests.kernel.netprobe",
                      "connect", "--timeout", str(timeout), "--server4", SERVER4, "--server6", SERVER6,
                      "--port", str(port), *sources], timeout=120)
        outcome: dict[str, str] = json.loads(result.stdout)
        return outcome
