"""A stub DNS server on 127.0.0.1 (UDP and TCP on the same port), built with dnspython's message API.

It answers like a recursive resolver would for a small zone given as a dict, so tests can exercise
every DNS outcome of the probe against a real socket:

    zone = {
        "shop.test": {"A": ["203.0.113.10"], "AAAA": ["2001:db8::10"]},
        "www.shop.test": {"CNAME": "shop.test"},       # the chain and the final records are answered
        "v6.test": {"AAAA": ["2001:db8::6"]},           # A query: NOERROR, no answer (NODATA)
        "gone.test": "NXDOMAIN",
        "broken.test": "SERVFAIL",                      # also "REFUSED"
        "silent.test": "TIMEOUT",                       # the query is never answered
        "flaky.test": {"A": ["203.0.113.5"], "AAAA": "SERVFAIL"},   # an outcome per record type
        "big.test": {"A": [...40 addresses...]},        # too big for UDP: TC bit, answered over TCP
        "tc.test": {"A": ["203.0.113.7"], "truncate": True},        # always truncated over UDP
        "stall.test": {"A": ["203.0.113.7"], "truncate": "stall"},  # truncated; TCP accepts, never answers
        "junk.test": "GARBAGE",                         # hostile: bytes that are not DNS at all
        "cut.test": "MALFORMED",                        # hostile: right query id, body cut short
    }

Names not in the zone are NXDOMAIN; a name that only has descendants in the zone exists (NODATA).

Use the `dns_stub` fixture (import it into a test module or conftest):

    from tests.servers import dns_stub as dns_stub_plugin
    dns_stub = dns_stub_plugin.dns_stub          # or: pytest_plugins = ["tests.servers.dns_stub"] in conftest

    def test_x(dns_stub):
        resolver = dns_stub({"shop.test": {"A": ["127.0.0.1"]}})   # -> "127.0.0.1:PORT"
        queries = dns_stub.servers[resolver].queries                # [(name, type, transport), ...]

or `with DnsStub(zone) as stub: stub.address` outside pytest.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Self

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

Zone = Mapping[str, Any]

SPECIAL_OUTCOMES = ("NXDOMAIN", "SERVFAIL", "REFUSED", "TIMEOUT", "GARBAGE", "MALFORMED")
UDP_DEFAULT_PAYLOAD = 512
TTL = 300
MAX_CHAIN = 16
_SOA = "ns.stub.test. hostmaster.stub.test. 1 3600 600 86400 60"


def _key(name: str | dns.name.Name) -> str:
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.rstrip(".").lower()


class DnsStub:
    """A threaded stub DNS server for one zone, listening on 127.0.0.1 UDP and TCP (same port)."""

    def __init__(self, zone: Zone, *, host: str = "127.0.0.1") -> None:
        self.zone: dict[str, Any] = {_key(name): value for name, value in zone.items()}
        for value in self.zone.values():
            if isinstance(value, str) and value not in SPECIAL_OUTCOMES:
                raise ValueError(f"unknown outcome {value!r}; use one of {SPECIAL_OUTCOMES} or a record dict")
        self.host = host
        self.queries: list[tuple[str, str, str]] = []   # (name, type, "udp"|"tcp") in arrival order
        self._udp, self._tcp = self._bind(host)
        self.port: int = self._udp.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-stub-{self.port}", daemon=True)

    @property
    def address(self) -> str:
        """The resolver address in `--resolver` syntax: 127.0.0.1:PORT."""
        return f"{self.host}:{self.port}"

    # -- life cycle ------------------------------------------------------------------------------
    @staticmethod
    def _bind(host: str) -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((host, 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            return udp, tcp
        raise RuntimeError("no free port with both UDP and TCP available")

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._udp.close()
        self._tcp.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, "udp")
            selector.register(self._tcp, selectors.EVENT_READ, "tcp")
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    try:
                        if key.data == "udp":
                            self._serve_udp()
                        else:
                            self._serve_tcp()
                    except OSError:
                        continue

    def _serve_udp(self) -> None:
        wire, peer = self._udp.recvfrom(65535)
        answer = self._answer(wire, "udp")
        if answer is not None:
            self._udp.sendto(answer, peer)

    def _serve_tcp(self) -> None:
        connection, _ = self._tcp.accept()
        with connection:
            connection.settimeout(2)
            while True:
                header = _recv_exact(connection, 2)
                if header is None:
                    return
                wire = _recv_exact(connection, struct.unpack("!H", header)[0])
                if wire is None:
                    return
                answer = self._answer(wire, "tcp")
                if answer is None:
                    return
                connection.sendall(struct.pack("!H", len(answer)) + answer)

    # -- answering -------------------------------------------------------------------------------
    def _answer(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        self.queries.append((_key(qname), dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype)), transport))
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        outcome = self._fill(response, qname, qtype)
        entry = self.zone.get(_key(qname))
        if outcome == "TIMEOUT":
            return None
        if outcome == "GARBAGE":
            return b"\xffnot a DNS message\x00" * 4
        if outcome == "MALFORMED":
            response.answer.append(dns.rrset.from_text(qname, TTL, "IN", "A", "192.0.2.1"))
            return response.to_wire()[:-3]
        if transport == "tcp" and isinstance(entry, Mapping) and entry.get("truncate") == "stall":
            self._stop.wait(30)     # hold the connection open without answering
            return None
        if outcome in ("SERVFAIL", "REFUSED"):
            response.answer.clear()
            response.set_rcode(dns.rcode.from_text(outcome))
            return response.to_wire()
        if transport == "udp":
            limit = query.payload if query.edns >= 0 else UDP_DEFAULT_PAYLOAD
            forced = isinstance(entry, Mapping) and entry.get("truncate")
            try:
                if forced:
                    raise dns.exception.TooBig
                return response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                truncated = dns.message.make_response(query)
                truncated.flags |= dns.flags.TC | dns.flags.RA
                return truncated.to_wire()
        return response.to_wire()

    def _fill(self, response: dns.message.Message, qname: dns.name.Name, qtype: int) -> str:
        """Put the answer for qname/qtype into response (following CNAMEs); returns the outcome."""
        name = qname
        seen: set[str] = set()
        for _ in range(MAX_CHAIN):
            key = _key(name)
            if key in seen:
                return "SERVFAIL"  # a CNAME loop: what a recursive resolver answers
            seen.add(key)
            entry = self.zone.get(key)
            if isinstance(entry, str):
                if entry == "NXDOMAIN":
                    response.set_rcode(dns.rcode.NXDOMAIN)
                    self._add_soa(response)
                    return "NXDOMAIN"
                return entry
            if entry is None:
                if any(other.endswith("." + key) for other in self.zone):
                    self._add_soa(response)    # empty non-terminal: exists, no records
                    return "NODATA"
                response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(response)
                return "NXDOMAIN"
            type_text = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))
            records = entry.get(type_text)
            if isinstance(records, str) and records in SPECIAL_OUTCOMES:
                return records
            if "CNAME" in entry and qtype != dns.rdatatype.CNAME:
                target = dns.name.from_text(entry["CNAME"])
                response.answer.append(dns.rrset.from_text(name, TTL, "IN", "CNAME", target.to_text()))
                name = target
                continue
            if records:
                values = [records] if isinstance(records, str) else list(records)
                response.answer.append(dns.rrset.from_text_list(name, TTL, "IN", type_text, values))
                return "NOERROR"
            self._add_soa(response)
            return "NODATA"
        return "SERVFAIL"

    @staticmethod
    def _add_soa(response: dns.message.Message) -> None:
        response.authority.append(dns.rrset.from_text("stub.test.", TTL, "IN", "SOA", _SOA))


def _recv_exact(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = connection.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


class StubFactory:
    """What the `dns_stub` fixture yields: call it with a zone to start a server."""

    def __init__(self) -> None:
        self.servers: dict[str, DnsStub] = {}

    def __call__(self, zone: Zone) -> str:
        stub = DnsStub(zone).start()
        self.servers[stub.address] = stub
        return stub.address

    def stop_all(self) -> None:
        for stub in self.servers.values():
            stub.stop()


@pytest.fixture
def dns_stub() -> Iterator[StubFactory]:
    """Start stub DNS servers: `dns_stub(zone) -> "127.0.0.1:PORT"`; all stop after the test."""
    factory = StubFactory()
    try:
        yield factory
    finally:
        factory.stop_all()
