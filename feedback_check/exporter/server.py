"""The exporter's HTTP side: a threaded standard-library server (a probe waits on the network, one thread
per scrape is what blackbox_exporter's goroutines are), the routes and the exporter's own metrics.

Own metrics (`/metrics`) use prometheus_client, the field's library for exposition: build info,
probes in flight, probe durations (a histogram per module), probes by result (run / cached / refused),
config reload success and its timestamp, and the process collector's CPU and memory.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from feedback_check import __version__
from feedback_check.errors import FeedbackCheckError
from feedback_check.exporter.config import ExporterConfig, load_config
from feedback_check.exporter.probes import Prober, ProbeRefused, ProbeRequest, ProbeSettings
from feedback_check.platform import Platform

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9803"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROBE_PARAMETERS = {"shop", "target", "module"}
#: Longest query the exporter reads (a URL target and a module name fit many times over).
MAX_QUERY_CHARS = 8192


class Exporter:
    """The loaded configuration (swapped atomically on reload), the prober and the own metrics."""

    def __init__(self, files: Sequence[str], load_platform: Callable[[], Platform], settings: ProbeSettings) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.files = tuple(files)
        self._load_platform = load_platform
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        Gauge("feedback_check_exporter_build_info", "feedback-check version of the exporter.", ["version"],
              registry=self.registry).labels(version=__version__).set(1)
        self.in_flight = Gauge("feedback_check_exporter_probes_in_flight", "Probes running now.",
                               registry=self.registry)
        self.durations = Histogram("feedback_check_exporter_probe_duration_seconds",
                                   "Seconds a probe took (cached answers excluded).", ["module"],
                                   buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
                                   registry=self.registry)
        self.probes = Counter("feedback_check_exporter_probes", "Probe requests by result: run, cached, refused, error.",
                              ["result"], registry=self.registry)
        self.reload_ok = Gauge("feedback_check_exporter_config_last_reload_successful",
                               "1 when the last reload of the profiles succeeded.", registry=self.registry)
        self.reload_time = Gauge("feedback_check_exporter_config_last_reload_success_timestamp_seconds",
                                 "When the profiles were last loaded successfully (Unix time).", registry=self.registry)
        self.platform = load_platform()
        self.config: ExporterConfig = load_config(self.files, self.platform)    # a bad start is an error
        self.reload_ok.set(1)
        self.reload_time.set(time.time())
        self.prober = Prober(lambda: self.config, lambda: self.platform, settings)

    def reload(self) -> str | None:
        """Reload platform and profiles; None when it worked, else the reason (the old ones stay)."""
        with self._lock:
            try:
                platform = self._load_platform()
                config = load_config(self.files, platform)
            except FeedbackCheckError as e:
                self.reload_ok.set(0)
                log.warning("reload failed, keeping the loaded profiles: %s", e)
                return str(e)
            self.platform, self.config = platform, config
            self.prober.forget()
            self.reload_ok.set(1)
            self.reload_time.set(time.time())
            log.info("reloaded %d shops, %d modules", len(config.shop_names), len(config.modules))
            return None

    def metrics(self) -> bytes:
        from prometheus_client import generate_latest
        result: bytes = generate_latest(self.registry)
        return result


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = f"feedback-check/{__version__}"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        exporter = self.server.exporter
        parts = urlsplit(self.path)
        if parts.path == "/probe":
            self._probe(parts.query)
        elif parts.path == "/metrics":
            self._answer(200, exporter.metrics(), CONTENT_TYPE)
        elif parts.path == "/-/healthy":
            self._answer(200, b"Healthy.\n")
        elif parts.path == "/-/reload":
            self._answer(HTTPStatus.METHOD_NOT_ALLOWED, b"reload with POST\n")
        elif parts.path == "/":
            names = "\n".join(f"  /probe?shop={name}" for name in exporter.config.shop_names)
            modules = "\n".join(f"  /probe?module={m}&target=..." for m in exporter.config.modules)
            self._answer(200, (f"feedback-check exporter {__version__}\n\n/metrics\n{names}\n{modules}\n").encode())
        else:
            self._answer(404, b"not found\n")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/-/reload":
            self._answer(404, b"not found\n")
            return
        problem = self.server.exporter.reload()
        if problem is None:
            self._answer(200, b"reloaded\n")
        else:
            self._answer(500, f"reload failed, the loaded profiles stay: {problem}\n".encode())

    def _probe(self, query: str) -> None:
        exporter = self.server.exporter
        try:
            request = _probe_request(query)
            timeout = _scrape_timeout(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
            exporter.in_flight.inc()
            try:
                result = exporter.prober.probe(request, timeout)
            finally:
                exporter.in_flight.dec()
        except ProbeRefused as e:
            exporter.probes.labels(result="refused").inc()
            self._answer(e.status, f"{e}\n".encode())
            return
        except FeedbackCheckError as e:
            exporter.probes.labels(result="refused").inc()
            self._answer(400, f"{e}\n".encode())
            return
        except Exception as e:        # never a traceback on the exporter's stderr, never a dropped scrape
            log.debug("probe failed", exc_info=True)
            exporter.probes.labels(result="error").inc()
            self._answer(500, f"internal error: {type(e).__name__}: {e}\n".encode())
            return
        exporter.probes.labels(result="cached" if result.cached else "run").inc()
        if not result.cached:
            exporter.durations.labels(module=result.module).observe(result.duration_seconds)
        self._answer(200, result.text.encode("utf-8"), CONTENT_TYPE)


def _probe_request(query: str) -> ProbeRequest:
    if len(query) > MAX_QUERY_CHARS:
        raise ProbeRefused(400, "query too long")
    params = parse_qs(query, keep_blank_values=True, max_num_fields=10)
    unknown = sorted(set(params) - PROBE_PARAMETERS)
    if unknown:
        # Settings and secrets live in the profile, never in a query.
        raise ProbeRefused(400, f"unknown parameter {unknown[0]!r} (the exporter takes shop, target and module; "
                                "everything else is in the profile)")
    for name, values in params.items():
        if len(values) > 1:
            raise ProbeRefused(400, f"parameter {name!r} given twice")
    value = {name: values[0] for name, values in params.items()}
    return ProbeRequest(value.get("shop"), value.get("target"), value.get("module"))


def _scrape_timeout(header: str | None) -> float | None:
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        raise ProbeRefused(400, f"X-Prometheus-Scrape-Timeout-Seconds {header[:40]!r} is not a number") from None
    if not 0 < seconds < 3600:
        raise ProbeRefused(400, "X-Prometheus-Scrape-Timeout-Seconds out of range")
    return seconds


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    exporter: Exporter


def parse_listen(text: str) -> tuple[str, int]:
    """`ADDR:PORT`, `[IPv6]:PORT` or `:PORT` (all addresses)."""
    from feedback_check.errors import UsageError
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:          # 0: any free port
        raise UsageError(f"--listen {text!r}: expected ADDR:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "0.0.0.0", int(port)


def make_server(exporter: Exporter, listen: str) -> _Server:
    import socket

    host, port = parse_listen(listen)
    _Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        server = _Server((host, port), _Handler)
    except OSError as e:
        from feedback_check.errors import UsageError
        raise UsageError(f"--listen {listen}: {e.strerror}") from None
    server.exporter = exporter
    return server


def serve_forever(server: _Server, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads the profiles."""
    exporter = server.exporter

    def hangup(signum: int, frame: Any) -> None:
        threading.Thread(target=exporter.reload, name="reload", daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGHUP, hangup)
    signal.signal(signal.SIGTERM, stop)
    if on_ready is not None:
        host, port = server.server_address[:2]
        on_ready(f"{host!s}:{port}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
