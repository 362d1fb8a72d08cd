"""The benchmarks' target: a separate process serving HTTP/1.1 on 127.0.0.1, answering every request
`--delay` seconds after reading it (200 OK, empty body), keeping connections alive unless the client
asks to close. With --cert/--key it serves HTTPS. Prints `PORT <n>` on stdout once listening; GET
/__requests answers the number of requests served so far (not delayed, not counted).

    python benchmarks/delayed_server.py --delay 0.2 [--cert c.pem --key k.pem]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

COUNT = {"requests": 0}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip() or 0)
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            if length:
                await reader.readexactly(length)
            if lines[0].startswith(b"GET /__requests "):
                body = str(COUNT["requests"]).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                continue
            COUNT["requests"] += 1
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + (b"Connection: close\r\n" if close else b"")
                         + b"\r\n")
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.delay), "127.0.0.1", 0, backlog=8192,
                                        ssl=context)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
