"""Run inside a network namespace by the kernel ground-truth tests (`ip netns exec NS python -m ...`).

    python -m tests.kernel.netprobe listen PORT...
        Listen on every address (IPv4 and IPv6) on each port; print "ready" once listening; accept and
        close connections until killed.
    python -m tests.kernel.netprobe connect --timeout S --server4 A --server6 B --port P SOURCE...
        Open one TCP connection per source address (bound to it) in parallel; print a JSON object
        {source: "open" | "refused" | "unreachable" | "timeout"}.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor


def listen(ports: list[int]) -> None:
    sockets = []
    for port in ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(4096)
        sockets.append(s)

    def serve(s: socket.socket) -> None:
        while True:
            connection, _ = s.accept()
            connection.close()

    for s in sockets:
        threading.Thread(target=serve, args=(s,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def attempt(source: str, server: str, port: int, timeout: float) -> str:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        try:
            s.connect((server, port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError as e:
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
                return "unreachable"
            raise
        return "open"


def connect(sources: list[str], server4: str, server6: str, port: int, timeout: float) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=max(1, min(256, len(sources)))) as pool:
        futures = {source: pool.submit(attempt, source, server6 if ":" in source else server4, port, timeout)
                   for source in sources}
        return {source: future.result() for source, future in futures.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p_listen = sub.add_parser("listen")
    p_listen.add_argument("ports", type=int, nargs="+")
    p_connect = sub.add_parser("connect")
    p_connect.add_argument("--timeout", type=float, default=1.0)
    p_connect.add_argument("--server4", required=True)
    p_connect.add_argument("--server6", required=True)
    p_connect.add_argument("--port", type=int, required=True)
    p_connect.add_argument("sources", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "listen":
        listen(args.ports)
        return 0
    print(json.dumps(connect(args.sources, args.server4, args.server6, args.port, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
