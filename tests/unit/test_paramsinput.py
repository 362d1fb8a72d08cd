"""Reading parameters from a query string, a form body, key=value lines and captured HTTP requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.signature.params import (
    detect_kind,
    parse_http_request,
    parse_lines,
    parse_query,
    parse_text,
    read_parameters,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "signature"


def test_query_string_decodes_in_order_and_keeps_raw_values() -> None:
    inp = parse_query("orderID=12&CN=Pa%C3%ADses+Bajos&TRXDATE=08%2F24%2F17&ECI=&SHASIGN=AB")
    assert inp.pairs == (("orderID", "12"), ("CN", "Países Bajos"), ("TRXDATE", "08/24/17"), ("ECI", ""),
                         ("SHASIGN", "AB"))
    assert dict(inp.raw)["CN"] == "Pa%C3%ADses+Bajos"
    assert inp.shasign == "AB" and inp.get("orderid") == "12"


def test_whole_url_and_leading_question_mark() -> None:
    assert parse_query("https://shop.example/fb?shop=ch&amount=15#frag").pairs == (("shop", "ch"), ("amount", "15"))
    assert parse_query("?amount=15").pairs == (("amount", "15"),)


def test_iso_8859_1_escapes_need_the_account_encoding() -> None:
    assert parse_query("CN=Pa%EDses", encoding="ISO-8859-1").pairs == (("CN", "Países"),)
    with pytest.raises(ConfigError, match="not valid UTF-8.*ISO-8859-1"):
        parse_query("CN=Pa%EDses", encoding="UTF-8")


@pytest.mark.parametrize(("text", "message"), [
    ("amount=15&orderID", "has no '='"),
    ("amount=15&CN=%zz", "invalid percent-escape"),
    ("amount=15&CN=%4", "invalid percent-escape"),
    ("=15", "empty name"),
    ("amount=15&AMOUNT=16", "appears twice"),
    ("&&", "no parameters"),
])
def test_malformed_query_strings(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_query(text, origin="capture.txt", line=4)
    try:
        parse_query(text, origin="capture.txt", line=4)
    except ConfigError as e:
        assert str(e).startswith("capture.txt:4: ")


def test_form_body_plus_is_space_and_trailing_ampersand_is_harmless() -> None:
    inp = parse_text("CN=Jean+Dupont&amount=15&", kind="form")
    assert inp.pairs == (("CN", "Jean Dupont"), ("amount", "15")) and inp.kind == "form"


def test_key_value_lines_are_literal_with_comments() -> None:
    text = "# captured from the log\norderID = 12\n\nCN=50% off & more\nECI=\n"
    inp = parse_lines(text, origin="p.txt")
    assert inp.pairs == (("orderID", "12"), ("CN", "50% off & more"), ("ECI", ""))


def test_key_value_line_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"p.txt:3: 'oops' is not name=value"):
        parse_lines("a=1\n# c\noops\n", origin="p.txt")
    with pytest.raises(ConfigError, match=r"p.txt:2: .*appears twice"):
        parse_lines("orderID=1\nORDERID=2\n", origin="p.txt")


def test_captured_post_reads_the_body_and_notes_the_query() -> None:
    raw = ("POST /fb?shop=ch HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           "Content-Length: 18\r\n\r\namount=15&STATUS=9")
    inp = parse_http_request(raw, origin="c.http")
    assert inp.method == "POST" and inp.pairs == (("amount", "15"), ("STATUS", "9"))
    assert any("query string were not read" in n for n in inp.notes)


def test_captured_post_honours_content_length() -> None:
    raw = "POST /fb HTTP/1.1\nContent-Length: 9\n\namount=15garbage"
    assert parse_http_request(raw).pairs == (("amount", "15"),)


def test_captured_get_reads_the_query() -> None:
    inp = parse_http_request("GET /fb?amount=15&CN=A%20B HTTP/1.1\nHost: x\n\n")
    assert inp.method == "GET" and inp.pairs == (("amount", "15"), ("CN", "A B"))



@pytest.mark.parametrize(("raw", "pairs", "note"), [
    ("POST /fb HTTP/1.1\nContent-Length: 40\n\namount=15", (("amount", "15"),),
     "shorter than Content-Length (9 < 40 bytes)"),
    ("GET /fb?amount=15 HTTP/1.1\nHost: x\n\nSTATUS=9", (("amount", "15"),), "GET request with a body: the body was ignored"),
    ("PUT /fb HTTP/1.1\nContent-Type: text/plain\n\namount=15", (("amount", "15"),),
     "Content-Type is 'text/plain'; the body was read as a form body"),
    ("DELETE /fb?amount=15 HTTP/1.1\n\n", (("amount", "15"),), None),
])
def test_captured_request_notes(raw: str, pairs: tuple[tuple[str, str], ...], note: str | None) -> None:
    """What a capture says about itself: a truncated body, a body a GET does not carry, another content type;
    a bodiless request of another method is read by its query string."""
    inp = parse_http_request(raw)
    assert inp.pairs == pairs
    assert [n for n in inp.notes if note and note in n] if note else inp.notes == ()

@pytest.mark.parametrize(("raw", "message", "line"), [
    ("POST /fb HTTP/1.1\nHost: x\n\n", "empty body", 4),
    ("GET /fb HTTP/1.1\nHost: x\n\n", "without a query string", 1),
    ("POST /fb HTTP/1.1\nHost x\n\na=1", "malformed header", 2),
    ("POST /fb HTTP/1.1\nContent-Type: multipart/form-data; boundary=x\n\n--x", "multipart", 4),
    ("POST /fb HTTP/1.1\nTransfer-Encoding: chunked\n\n5\r\na=1&b\r\n0", "chunked", 4),
    ("\n\n  \n", "empty HTTP request", None),
    ("\nPOST /fb\nHost: x\n\na=1", "not an HTTP request line", 2),
])
def test_captured_request_errors(raw: str, message: str, line: int | None) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_http_request(raw, origin="c.http")
    assert info.value.line == line and info.value.file == "c.http"


def test_detect_kind() -> None:
    assert detect_kind("POST /x HTTP/1.1\nHost: a\n\nb=1") == "http"
    assert detect_kind("a=1\nb=2\n") == "lines"
    assert detect_kind("a=1&b=2\n") == "query"
    assert detect_kind("# comment\na=1&b=2\n") == "query"


def test_query_text_on_two_lines_is_refused() -> None:
    with pytest.raises(ConfigError, match="one line"):
        parse_text("a=1&b=2\nc=3&d=4", kind="query", origin="q.txt")


def test_read_parameters_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.txt: file not found"):
        read_parameters(str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="directory"):
        read_parameters(str(tmp_path))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_parameters(str(empty))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("orderID=1\nCN=Pa\u00edses\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.txt:2: not valid UTF-8"):
        read_parameters(str(latin))
    assert read_parameters(str(latin), encoding="ISO-8859-1").get("CN") == "Países"


def test_stdin_bytes() -> None:
    assert read_parameters("-", stdin=b"amount=15&STATUS=9").pairs == (("amount", "15"), ("STATUS", "9"))


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.http")))
def test_every_example_capture_parses(name: str) -> None:
    encoding = "ISO-8859-1" if "iso-8859-1" in name else "UTF-8"
    inp = read_parameters(str(EXAMPLES / name), encoding=encoding)
    assert inp.kind == "http" and inp.shasign and inp.get("CN") == "Países Bajos"
