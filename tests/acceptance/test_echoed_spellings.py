"""Shops that echo a non-ASCII SHA-OUT passphrase in every spelling a server, a framework or a wrong
decoding produces: its UTF-8 bytes read as ISO-8859-1 (status line, headers), an ISO-8859-1 page read
as UTF-8, upper case, URL-encoded (upper and lower hex), hex, base64, the repr of the bytes in a
malformed header, and a copy across the 200- and 300-byte cuts of the body excerpts. Real servers on
127.0.0.1; every output format, stdout, stderr, --output and --state are searched for every spelling
(and for the passphrase's first characters)."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.acceptance.hostile import run_bounded
from tests.servers.http_servers import LoopbackServer, Response, Route, app, read_request

PASSPHRASE = "Sécret-Échø-Phräse-42"
UTF8 = PASSPHRASE.encode("utf-8")
LATIN1 = PASSPHRASE.encode("iso-8859-1")
FORMATS = ("text", "json", "nagios", "prometheus", "junit")

#: What must never appear in any output (compared case-insensitively).
FORBIDDEN = {
    "raw": PASSPHRASE,
    "utf-8 read as latin-1": UTF8.decode("iso-8859-1"),
    "latin-1 read as utf-8": LATIN1.decode("utf-8", "replace"),
    "bytes repr": repr(UTF8)[2:-1],
    "latin-1 bytes repr": repr(LATIN1)[2:-1],
    "url": quote(PASSPHRASE, safe=""),
    "url plus": quote_plus(PASSPHRASE),
    "url latin-1": quote(LATIN1, safe=""),
    "hex": UTF8.hex(),
    "hex latin-1": LATIN1.hex(),
    "base64": base64.b64encode(UTF8).decode(),
    "base64 latin-1": base64.b64encode(LATIN1).decode(),
    "first characters": PASSPHRASE[:5],
}


def as_header(data: bytes) -> str:
    """A header/status text that the test server (latin-1) puts on the wire as exactly `data`."""
    return data.decode("iso-8859-1")


def route(body: bytes, *, reason: bytes = b"Internal Server Error",
          headers: dict[str, bytes] | None = None) -> Route:
    fields = {"Content-Type": "text/html; charset=iso-8859-1", **{k: as_header(v) for k, v in (headers or {}).items()}}
    return lambda request: Response(500, body, fields, reason=as_header(reason))


ROUTES: dict[str, Route] = {
    "/mojibake": route(b"<p>failed</p>", reason=b"Bad " + UTF8, headers={"Server": b"php/" + UTF8}),
    "/latin1-page": route(b"<pre>shaOut=" + LATIN1 + b"</pre>"),
    "/upper": route(b"<pre>SHAOUT=" + PASSPHRASE.upper().encode() + b"</pre>", headers={"X-Powered-By": UTF8.upper()}),
    "/encoded": route(b"<pre>" + quote(PASSPHRASE).encode() + b" " + quote_plus(PASSPHRASE).lower().encode()
                      + b" " + quote(LATIN1).encode() + b"</pre>"),
    "/hex": route(b"<pre>" + UTF8.hex().encode() + b" " + LATIN1.hex().upper().encode() + b"</pre>"),
    "/base64": route(b"<pre>" + base64.b64encode(UTF8) + b" " + base64.b64encode(LATIN1) + b"</pre>"),
    "/cut200": route(b"A" * 193 + LATIN1 + b" and more"),
    "/cut300": route(b"B" * 292 + UTF8 + b" and more"),
    "/redirect": lambda request: Response(302, b"", {"Location": "https://127.0.0.1/fb?k=" + quote(PASSPHRASE)}),
}


def malformed_header(data: bytes) -> Callable[[socket.socket, LoopbackServer], None]:
    """A header line without a colon, holding `data` (an HTTP library quotes it as a bytes repr)."""
    def behaviour(conn: socket.socket, server: LoopbackServer) -> None:
        if read_request(conn) is None:
            return
        conn.sendall(b"HTTP/1.1 500 Oops\r\n" + data + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    return behaviour


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("echoing")
    with LoopbackServer(app(ROUTES)) as server, LoopbackServer(malformed_header(UTF8)) as broken, \
            LoopbackServer(malformed_header(LATIN1)) as broken_latin1:
        urls = [server.url(path) for path in ROUTES] + [broken.url("/fb"), broken_latin1.url("/fb")]
        shops_yaml = "".join(f"""  - name: shop{index}
    feedback: {{urls: {{accepted: "{url}"}}}}
    signature: {{passphrase_env: ECHO_SHA_OUT}}
""" for index, url in enumerate(urls))
        (folder / "profile.yaml").write_text(f"version: 1\nshops:\n{shops_yaml}", encoding="utf-8")
        yield folder


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        yield from (s for item in value for s in _strings(item))


def leaks(text: str) -> list[str]:
    """The names of the spellings found in `text`, also once backslash escapes (JSON, Prometheus labels)
    and JSON string escapes are undone."""
    views = [text, text.replace("\\\\", "\\")]
    try:
        views.append("\n".join(_strings(json.loads(text))))
    except ValueError:
        pass
    lowered = "\n".join(views).lower()
    return [name for name, spelling in FORBIDDEN.items() if spelling.lower() in lowered]


@pytest.mark.parametrize("output_format", FORMATS)
def test_no_spelling_of_the_passphrase_in_any_format_or_file(shops: Path, output_format: str) -> None:
    env = {"ECHO_SHA_OUT": PASSPHRASE, "FEEDBACK_CHECK_DEBUG": "1"}
    printed = run_bounded("check", "--config", str(shops / "profile.yaml"), "--lab", "--format", output_format, env=env)
    assert printed.returncode == 2, printed.stderr
    assert leaks(printed.stdout) == [] and leaks(printed.stderr) == []
    report = shops / f"report.{output_format}"
    state = shops / f"state.{output_format}.json"
    written = run_bounded("check", "--config", str(shops / "profile.yaml"), "--lab", "--format", output_format,
                          "--output", str(report), "--state", str(state), env=env)
    assert written.returncode == 2, written.stderr
    assert leaks(written.stdout + written.stderr) == []
    assert leaks(report.read_text(encoding="utf-8")) == []
    assert leaks(state.read_text(encoding="utf-8")) == []
    if output_format == "json":
        # The masking did happen where the spellings were (not a report that lost the answers).
        assert printed.stdout.count("********") >= len(ROUTES)


def test_probe_and_a_debug_log_mask_every_spelling(shops: Path) -> None:
    with LoopbackServer(app(ROUTES)) as server:
        for path in ("/mojibake", "/cut300"):
            result = run_bounded("probe", server.url(path), "--lab", "--passphrase-env", "ECHO_SHA_OUT",
                                 env={"ECHO_SHA_OUT": PASSPHRASE, "FEEDBACK_CHECK_DEBUG": "1"})
            assert result.returncode == 2, result.stderr
            assert leaks(result.stdout + result.stderr) == [], path


def test_control_the_shops_do_put_every_spelling_into_an_unmasked_report(shops: Path) -> None:
    # Signed with another passphrase, the tool cannot know what to mask: the same report shows what the
    # shops echoed, so the test above is not passing on a report that never held the spellings.
    result = run_bounded("check", "--config", str(shops / "profile.yaml"), "--lab", "--format", "json",
                         env={"ECHO_SHA_OUT": "an-unrelated-passphrase"})
    assert result.returncode == 2, result.stderr
    assert set(FORBIDDEN) - set(leaks(result.stdout)) == set()
