"""Parameters of a post-sale (or payment) request, read from what a merchant has at hand.

Four shapes are understood, all strictly (bad input is a ConfigError naming file and line, never a
silent guess):

- a query string, or a whole URL with one (``orderID=12&amount=15&...``);
- a form body (``application/x-www-form-urlencoded``: the same syntax, ``+`` is a space);
- ``key=value`` lines (values taken literally, ``#`` comments, blank lines ignored);
- a captured HTTP request: request line, headers, blank line, body (GET: the query; POST: the body).

Percent-escapes are decoded in the account's character encoding (UTF-8 or ISO-8859-1): the platform
encodes values in it, so ``Pa%EDses`` is ``Países`` for an ISO-8859-1 account and invalid for UTF-8.
The values as received (still URL-encoded) are kept too: hashing them is a classic mistake the doctor
recognises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from feedback_check import inputfile
from feedback_check.errors import ConfigError
from feedback_check.redact import excerpt
from feedback_check.signature import ENCODINGS, normalise_encoding

KINDS = ("auto", "query", "form", "lines", "http")
KIND_NAMES = {"query": "query string", "form": "form body", "lines": "key=value lines", "http": "HTTP request"}

_REQUEST_LINE = re.compile(r"^([A-Z]{3,10}) (\S+) HTTP/\d(?:\.\d)?$")
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class ParameterInput:
    """Parameters in the order received: decoded values, and the values exactly as they arrived."""

    pairs: tuple[tuple[str, str], ...]        # (name as received, decoded value)
    raw: tuple[tuple[str, str], ...]          # (name as received, value as received: URL-encoded if it was)
    kind: str                                 # query | form | lines | http
    origin: str                               # file name, "-" (stdin) or "<argument>"
    method: str | None = None                 # GET / POST for a captured request
    notes: tuple[str, ...] = ()

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    def get(self, name: str) -> str | None:
        """The value of `name`, compared case-insensitively (the platform mixes cases)."""
        wanted = name.upper()
        return next((value for key, value in self.pairs if key.upper() == wanted), None)

    @property
    def shasign(self) -> str | None:
        return self.get("SHASIGN")


def decode_component(text: str, encoding: str, *, plus_is_space: bool, where: str = "") -> str:
    """Percent-decode one name or value strictly in `encoding`; literal characters stay as they are."""
    codec = ENCODINGS[normalise_encoding(encoding)]
    bad = _BAD_ESCAPE.search(text)
    if bad:
        snippet = text[bad.start():bad.start() + 3]
        raise ValueError(f"invalid percent-escape {snippet!r}{where}")
    if plus_is_space:
        text = text.replace("+", " ")

    def run(match: re.Match[str]) -> str:
        data = bytes.fromhex(match.group(0).replace("%", ""))
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            hint = " (if the account uses ISO-8859-1, pass --encoding ISO-8859-1)" if codec == "utf-8" else ""
            raise ValueError(f"{match.group(0)!r}{where} is not valid {normalise_encoding(encoding)}{hint}") from None

    return _ESCAPE_RUN.sub(run, text)


def parse_query(text: str, *, encoding: str = "UTF-8", origin: str = "<argument>", line: int | None = None,
                kind: str = "query") -> ParameterInput:
    """A query string (optionally a whole URL, or starting with '?') or a form body."""
    body = text.strip("\r\n")
    if kind == "query" and "?" in body:
        body = body.split("?", 1)[1]
    body = body.split("#", 1)[0] if kind == "query" else body
    pairs: list[tuple[str, str]] = []
    raw: list[tuple[str, str]] = []
    for segment in body.split("&"):
        if segment == "":
            continue                          # "a=1&&b=2" and a trailing "&" are harmless
        if "=" not in segment:
            raise ConfigError(f"{KIND_NAMES[kind]}: {excerpt(segment, 40)!r} has no '=' (expected name=value)",
                              file=origin, line=line)
        raw_name, raw_value = segment.split("=", 1)
        try:
            name = decode_component(raw_name, encoding, plus_is_space=True, where=f" in name {excerpt(raw_name, 40)!r}")
            value = decode_component(raw_value, encoding, plus_is_space=True, where=f" in the value of {name or '(a parameter with an empty name)'}")
        except ValueError as e:
            raise ConfigError(f"{KIND_NAMES[kind]}: {e}", file=origin, line=line) from None
        if not name.strip():
            raise ConfigError(f"{KIND_NAMES[kind]}: a parameter has an empty name ({excerpt(segment, 40)!r})",
                              file=origin, line=line)
        pairs.append((name, value))
        raw.append((name, raw_value))
    _reject_duplicates(pairs, origin, [line] * len(pairs))
    if not pairs:
        raise ConfigError(f"{KIND_NAMES[kind]}: no parameters found", file=origin, line=line)
    return ParameterInput(tuple(pairs), tuple(raw), kind, origin)


def parse_lines(text: str, *, origin: str = "<argument>") -> ParameterInput:
    """`name=value` lines; the value is everything after the first '=' (surrounding spaces removed)."""
    pairs: list[tuple[str, str]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "=" not in stripped:
            raise ConfigError(f"{excerpt(stripped, 40)!r} is not name=value", file=origin, line=number)
        name, value = stripped.split("=", 1)
        if not name.strip():
            raise ConfigError("a parameter has an empty name", file=origin, line=number)
        pairs.append((name.strip(), value.strip()))
        lines.append(number)
    _reject_duplicates(pairs, origin, lines)
    if not pairs:
        raise ConfigError("no name=value line found", file=origin)
    return ParameterInput(tuple(pairs), tuple(pairs), "lines", origin)


def parse_http_request(text: str, *, encoding: str = "UTF-8", origin: str = "<argument>") -> ParameterInput:
    """A captured request: `GET /path?a=1 HTTP/1.1` or `POST ...` + headers + blank line + form body."""
    request = _CapturedRequest.read(text, origin)
    notes: list[str] = []
    body = request.body_as_sent(encoding, notes)
    if request.method == "GET" or (request.method != "POST" and not body):
        parsed = request.query_parameters(body, encoding, notes)
    else:
        parsed = request.body_parameters(body, encoding, notes)
    return ParameterInput(parsed.pairs, parsed.raw, "http", origin, method=request.method, notes=tuple(notes))


@dataclass(frozen=True)
class _CapturedRequest:
    """A captured HTTP request split into request line, headers and body, with the line numbers to cite."""

    origin: str
    method: str
    target: str
    headers: dict[str, str]               # lower-case name -> value
    request_line: int
    body: str
    body_line: int

    @classmethod
    def read(cls, text: str, origin: str) -> _CapturedRequest:
        lines = text.split("\n")
        first = 0
        while first < len(lines) and not lines[first].strip():
            first += 1
        if first == len(lines):
            raise ConfigError("empty HTTP request", file=origin)
        match = _REQUEST_LINE.match(lines[first].rstrip("\r"))
        if not match:
            raise ConfigError("not an HTTP request line (expected e.g. 'POST /feedback HTTP/1.1')",
                              file=origin, line=first + 1)
        headers: dict[str, str] = {}
        index = first + 1
        while index < len(lines) and lines[index].rstrip("\r") != "":
            header = _HEADER.match(lines[index].rstrip("\r"))
            if not header:
                raise ConfigError(f"malformed header line {excerpt(lines[index].rstrip(), 40)!r}", file=origin,
                                  line=index + 1)
            headers[header.group(1).lower()] = header.group(2)
            index += 1
        return cls(origin, match.group(1), match.group(2), headers, first + 1, "\n".join(lines[index + 1:]),
                   index + 2)

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def body_as_sent(self, encoding: str, notes: list[str]) -> str:
        """The body, cut at Content-Length (measured in the account's encoding) when the request gives one."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            raise ConfigError("chunked bodies are not supported: paste the decoded body", file=self.origin,
                              line=self.body_line)
        length = self.headers.get("content-length")
        if length is None or not length.isdigit():
            return self.body.rstrip("\r\n")
        wanted = int(length)
        codec = ENCODINGS[normalise_encoding(encoding)]
        data = self.body.encode(codec, errors="replace")
        if len(data) < wanted:
            notes.append(f"the body is shorter than Content-Length ({len(data)} < {wanted} bytes): capture truncated?")
            return self.body
        return data[:wanted].decode(codec, errors="replace")

    def query_parameters(self, body: str, encoding: str, notes: list[str]) -> ParameterInput:
        """The parameters of a GET post-sale (or a bodiless request of another method): its query string."""
        if not self.query:
            raise ConfigError(f"{self.method} request without a query string: no parameters", file=self.origin,
                              line=self.request_line)
        if body.strip():
            notes.append(f"{self.method} request with a body: the body was ignored (GET post-sales carry the query)")
        return parse_query(self.query, encoding=encoding, origin=self.origin, line=self.request_line)

    def body_parameters(self, body: str, encoding: str, notes: list[str]) -> ParameterInput:
        """The parameters of a POST post-sale: its form body."""
        content_type = self.headers.get("content-type", "application/x-www-form-urlencoded").lower()
        if "multipart/" in content_type:
            raise ConfigError("multipart bodies are not supported (the platform sends "
                              "application/x-www-form-urlencoded)", file=self.origin, line=self.body_line)
        if not body.strip():
            raise ConfigError(f"{self.method} request with an empty body: no parameters (a handler reading only "
                              "the query string would see none either)", file=self.origin, line=self.body_line)
        if "x-www-form-urlencoded" not in content_type:
            notes.append(f"Content-Type is {content_type!r}; the body was read as a form body")
        if self.query:
            notes.append("parameters in the URL's query string were not read: in POST mode the platform sends "
                         "the post-sale parameters in the body")
        return parse_query(body, encoding=encoding, origin=self.origin, line=self.body_line, kind="form")


def detect_kind(text: str) -> str:
    """Which of the shapes `text` is: http, lines or query."""
    meaningful = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if meaningful and _REQUEST_LINE.match(meaningful[0]):
        return "http"
    if len(meaningful) > 1:
        return "lines"
    return "query"


def parse_text(text: str, *, kind: str = "auto", encoding: str = "UTF-8",
               origin: str = "<argument>") -> ParameterInput:
    """Parse `text` as `kind` (or detect it)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown input format {kind!r} (use one of {', '.join(KINDS)})", file=origin)
    chosen = detect_kind(text) if kind == "auto" else kind
    if chosen == "http":
        return parse_http_request(text, encoding=encoding, origin=origin)
    if chosen == "lines":
        return parse_lines(text, origin=origin)
    content = [n for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if len(content) > 1:
        raise ConfigError(f"a {KIND_NAMES[chosen]} must be on one line", file=origin, line=content[1])
    line = content[0] if content and origin != "<argument>" else None
    single = text.strip()
    return parse_query(single, encoding=encoding, origin=origin, line=line, kind=chosen)


def read_parameters(path: str, *, kind: str = "auto", encoding: str = "UTF-8",
                    stdin: bytes | None = None) -> ParameterInput:
    """Read a file ('-' = the given stdin bytes), decoded in the account's encoding, and parse it."""
    codec = ENCODINGS[normalise_encoding(encoding)]
    if path == "-":
        data = stdin if stdin is not None else b""
    else:
        data = inputfile.read_bytes(path, inputfile.PARAMETERS)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"not valid {normalise_encoding(encoding)} text (if the account uses ISO-8859-1, "
                          "pass --encoding ISO-8859-1)", file=path, line=line) from None
    if not text.strip():
        raise ConfigError("empty: no parameters", file=path)
    return parse_text(text, kind=kind, encoding=encoding, origin=path)


def _reject_duplicates(pairs: list[tuple[str, str]], origin: str, lines: Sequence[int | None]) -> None:
    seen: dict[str, str] = {}
    for (name, _), line in zip(pairs, lines):
        key = name.upper()
        if key in seen:
            raise ConfigError(f"parameter {name!r} appears twice (also as {seen[key]!r}); the platform sends "
                              "each name once", file=origin, line=line)
        seen[key] = name
