"""The benchmarks' floor for a Python prober: a minimal asyncio client doing the exchange the probe
does per URL - one TCP connection, the signed POST (SHA-512 over the sorted parameters), then the
forged POST on the same kept-alive connection (or a new one when the server closed it) - and nothing
else: no DNS, no findings, no report. Prints the number of 2xx answers.

    python benchmarks/minimal_client.py --port N --shops 500 [--no-forgery] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from urllib.parse import urlencode

PASSPHRASE = "benchmark-passphrase"


def body(shop: int, forged: bool) -> bytes:
    params = {"orderID": f"FBCHECK-{shop}", "amount": "1", "currency": "CHF", "PM": "CreditCard",
              "ACCEPTANCE": "TEST", "STATUS": "9", "PAYID": str(5_000_000 + shop), "NCERROR": "0", "BRAND": "VISA"}
    signed = "".join(f"{k.upper()}={v}{PASSPHRASE}" for k, v in sorted(params.items(), key=lambda i: i[0].upper()))
    shasign = hashlib.sha512(signed.encode()).hexdigest().upper()
    if forged:
        shasign = shasign[::-1]
    return urlencode({**params, "SHASIGN": shasign}).encode()


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, shop: int,
               forged: bool) -> tuple[int, bool]:
    data = body(shop, forged)
    writer.write(f"POST /shop-{shop:04d}/feedback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(data)}\r\n\r\n"
                 .encode() + data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, keep = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"connection" and b"close" in value.lower():
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def one(port: int, shop: int, forgery: bool, limit: asyncio.Semaphore) -> int:
    async with limit:
        async with asyncio.timeout(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, keep = await post(reader, writer, port, shop, False)
            ok = int(200 <= status < 300)
            if forgery and ok:
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                await post(reader, writer, port, shop, True)
            writer.close()
            return ok


async def main(args: argparse.Namespace) -> int:
    limit = asyncio.Semaphore(args.concurrency)
    results = await asyncio.gather(*(one(args.port, i, not args.no_forgery, limit) for i in range(args.shops)))
    return sum(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--no-forgery", action="store_true")
    parser.add_argument("--uvloop", action="store_true")
    namespace = parser.parse_args()
    if namespace.uvloop:
        import uvloop
        print(uvloop.run(main(namespace)))
    else:
        print(asyncio.run(main(namespace)))
