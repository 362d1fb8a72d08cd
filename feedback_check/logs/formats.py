"""Access-log formats: presets, the server's own definitions, JSON lines and AWS ALB, and detection.

A `LineFormat` turns one raw line (bytes) into a `LogRecord`, or None when the line does not have the
format's shape. Text formats are compiled from their definition into one regular expression with a
group per field: an nginx `log_format` string (`$remote_addr - $remote_user [$time_local] ...`) or an
Apache `LogFormat` string (`%h %l %u %t "%r" %>s %b ...`); the presets are Apache definitions (nginx's
`combined` is the same line). JSON lines map keys to fields (nginx `escape=json`, Caddy, Traefik).

`client_position` tells the prefilter where the client address starts without parsing the line: the
number of space-separated fields before it (0 for the common formats), or a JSON key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from feedback_check.errors import ConfigError

PRESETS: dict[str, str] = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
}
#: Names `--log-format` accepts besides a definition.
FORMAT_NAMES = ("auto", *PRESETS, "json", "caddy", "traefik", "alb")
#: How many lines auto-detection looks at.
DETECT_LINES = 50

_MONTHS = {m.encode(): i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


@dataclass(frozen=True)
class LogRecord:
    """One request as the log recorded it. `seconds` is the answer time when the format logs one."""

    peer: str                      # the address that connected (the format's client field)
    time: dt.datetime | None       # aware, UTC
    method: str
    path: str                      # without the query string
    status: int
    seconds: float | None = None
    upstream: str | None = None    # nginx $upstream_response_time: "-" when nginx answered itself
    forwarded_for: str | None = None
    cf_connecting_ip: str | None = None
    true_client_ip: str | None = None
    host: str | None = None        # the requested Host (never the server's own name: %v, $server_name)


@dataclass(frozen=True)
class LineFormat:
    """A compiled log format."""

    name: str                                  # "combined", "nginx log_format ...", "json (traefik)" ...
    parse: Callable[[bytes], LogRecord | None]
    client_field: int | None = None            # space-separated fields before the client address
    client_key: bytes | None = None            # JSON: the key whose value is the client address
    logs_seconds: bool = False                 # whether answer times are in the log
    definition: str = ""


# -- time -------------------------------------------------------------------------------------------------

_TZ_CACHE: dict[bytes, dt.timezone] = {}


def parse_clf_time(text: bytes) -> dt.datetime | None:
    """`10/Oct/2000:13:55:36 -0700` (nginx $time_local, Apache %t) as an aware UTC datetime."""
    try:
        day, month, year = int(text[0:2]), _MONTHS[text[3:6]], int(text[7:11])
        hour, minute, second = int(text[12:14]), int(text[15:17]), int(text[18:20])
        zone = text[21:26]
        tz = _TZ_CACHE.get(zone)
        if tz is None:
            sign = -1 if zone[:1] == b"-" else 1
            tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
            _TZ_CACHE[zone] = tz
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(dt.UTC)
    except (KeyError, ValueError, IndexError):
        return None


def parse_iso_time(text: str) -> dt.datetime | None:
    """ISO 8601 (nginx $time_iso8601, Traefik, ALB), naive taken as UTC."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def parse_epoch(value: Any) -> dt.datetime | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number > 1e12:               # milliseconds
        number /= 1000
    try:
        return dt.datetime.fromtimestamp(number, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(value: Any, scale: float) -> float | None:
    try:
        number = float(value) * scale
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


# -- text formats compiled from a definition ------------------------------------------------------------

# canonical field -> how its text becomes a LogRecord value
_NGINX_FIELDS = {
    "remote_addr": "client", "time_local": "time_clf", "time_iso8601": "time_iso", "msec": "time_epoch",
    "request": "request", "request_method": "method", "request_uri": "uri", "uri": "path",
    "document_uri": "path", "args": "query", "query_string": "query", "status": "status",
    "request_time": "seconds", "upstream_response_time": "upstream",
    "http_x_forwarded_for": "xff", "proxy_add_x_forwarded_for": "xff",
    "http_cf_connecting_ip": "cf_ip", "http_true_client_ip": "true_client_ip",
    "host": "host", "http_host": "host",
}
_APACHE_HEADERS = {"x-forwarded-for": "xff", "cf-connecting-ip": "cf_ip", "true-client-ip": "true_client_ip",
                   "host": "host"}
_NGINX_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_APACHE_DIRECTIVE = re.compile(r"%([<>]?)(?:!?\d{3}(?:,\d{3})*)?(?:\{([^}]*)\})?([<>]?)([a-zA-Z%])")


def _apache_field(letter: str, argument: str | None) -> str | None:
    if letter in "ha":
        return "client"
    if letter == "t":
        if argument is None:
            return "time_clf"
        return {"sec": "time_epoch", "msec": "time_epoch_ms", "usec": "time_epoch_us"}.get(argument)
    if letter == "i" and argument:
        return _APACHE_HEADERS.get(argument.lower())
    if letter == "T":
        return {None: "seconds_whole", "s": "seconds_whole", "ms": "seconds_ms", "us": "seconds_us"}.get(argument)
    return {"r": "request", "m": "method", "U": "path", "q": "query", "s": "status", "D": "seconds_us",
            }.get(letter)


def _pieces_nginx(definition: str) -> list[tuple[str, str | None]]:
    """(literal, None) and (variable name, canonical field or None) in order."""
    out: list[tuple[str, str | None]] = []
    position = 0
    for match in _NGINX_VARIABLE.finditer(definition):
        if match.start() > position:
            out.append((definition[position:match.start()], None))
        name = match.group(1) or match.group(2)
        field = _NGINX_FIELDS.get(name)
        if field is None and name.startswith("http_"):
            field = _APACHE_HEADERS.get(name[5:].replace("_", "-"))
        out.append(("$" + name, field or ""))
        position = match.end()
    if position < len(definition):
        out.append((definition[position:], None))
    return out


def _pieces_apache(definition: str) -> list[tuple[str, str | None]]:
    definition = definition.replace("\\t", "\t").replace('\\"', '"')
    out: list[tuple[str, str | None]] = []
    position = 0
    for match in _APACHE_DIRECTIVE.finditer(definition):
        if match.start() > position:
            out.append((definition[position:match.start()], None))
        letter = match.group(4)
        if letter == "%":
            out.append(("%", None))
        elif letter == "t" and match.group(2) is None:
            out += [("[", None), ("%t", "time_clf"), ("]", None)]    # Apache writes the brackets itself
        else:
            out.append(("%" + letter, _apache_field(letter, match.group(2)) or ""))
        position = match.end()
    if position < len(definition):
        out.append((definition[position:], None))
    return out


def _field_pattern(pieces: list[tuple[str, str | None]], index: int) -> str:
    """The regular expression of the field `pieces[index]`, from the literal text around it: a quoted
    field may hold escaped quotes, a field runs up to the first character of the text after it."""
    following = next((t for t, f in pieces[index + 1:index + 2] if f is None), "")
    previous = pieces[index - 1][0] if index and pieces[index - 1][1] is None else ""
    if previous.endswith('"') and following.startswith('"'):
        return r'(?:[^"\\]|\\.)*'
    if following:
        return f"[^{re.escape(following[0])}]*" if following[0] != " " else r"\S*"
    return ".*"


def _require_fields(present: set[str], definition: str) -> None:
    """ConfigError unless the format logs what the analysis needs: client address, status and path."""
    if "client" not in present:
        raise ConfigError(f"log format {definition!r} does not log the client address "
                          "($remote_addr / %h / %a): PostFinance's requests cannot be recognised")
    if "status" not in present:
        raise ConfigError(f"log format {definition!r} does not log the status ($status / %>s)")
    if not present & {"request", "path", "uri"}:
        raise ConfigError(f"log format {definition!r} does not log the request path ($request, $request_uri, "
                          "$uri / %r, %U)")


def _compile_text(pieces: list[tuple[str, str | None]], name: str, definition: str, *,
                  anchored_end: bool) -> LineFormat:
    regex: list[str] = ["^"]
    groups: list[str] = []
    client_field: int | None = None
    fields_before = 0
    simple_prefix = True          # only unquoted, space-free fields so far: the client's field is countable
    for index, (text, field) in enumerate(pieces):
        if field is None:
            regex.append(re.escape(text))
            if simple_prefix:
                if '"' in text or "[" in text:
                    simple_prefix = False
                fields_before += text.count(" ")
            continue
        body = _field_pattern(pieces, index)
        if field == "client" and client_field is None and simple_prefix:
            client_field = fields_before
        if field:
            group = f"g{len(groups)}"
            groups.append(field)
            regex.append(f"(?P<{group}>{body})")
        else:
            regex.append(body)
    if anchored_end:
        regex.append(r"\s*$")
    try:
        pattern = re.compile("".join(regex).encode("utf-8"), re.DOTALL)
    except re.error as e:
        raise ConfigError(f"log format {definition!r} cannot be compiled: {e}") from None
    present = set(groups)
    _require_fields(present, definition)
    group_fields = tuple(groups)
    match = pattern.match

    def parse(line: bytes) -> LogRecord | None:
        found = match(line)
        if found is None:
            return None
        values: dict[str, bytes] = {}
        for i, field_name in enumerate(group_fields):
            if field_name not in values:
                values[field_name] = found.group(i + 1)
        return _record(values)

    return LineFormat(name=name, parse=parse, client_field=client_field,
                      logs_seconds=bool(present & {"seconds", "seconds_us", "seconds_ms", "seconds_whole"}),
                      definition=definition)


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else ""


def _split_request(request: str) -> tuple[str, str]:
    """`POST /path?x HTTP/1.1` -> (POST, /path?x); an absolute-form target (ALB) keeps only its path."""
    parts = request.split(" ")
    if len(parts) < 2:
        return "", ""
    target = parts[1]
    if "://" in target:
        after = target.split("://", 1)[1]
        slash = after.find("/")
        target = after[slash:] if slash >= 0 else "/"
    return parts[0], target


def _header_value(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = _text(value).strip()
    return None if text in ("", "-") else text


def _record(values: Mapping[str, bytes]) -> LogRecord | None:
    client = _text(values.get("client")).strip()
    try:
        status = int(values.get("status") or b"")
    except ValueError:
        return None
    if not client or not 100 <= status <= 999:
        return None
    method, target = "", ""
    if "request" in values:
        method, target = _split_request(_text(values["request"]))
    if "method" in values:
        method = _text(values["method"])
    if "uri" in values:
        target = _text(values["uri"])
    elif "path" in values and not target:
        target = _text(values["path"])
    path = target.split("?", 1)[0]
    time: dt.datetime | None = None
    if "time_clf" in values:
        time = parse_clf_time(values["time_clf"])
    elif "time_iso" in values:
        time = parse_iso_time(_text(values["time_iso"]))
    elif "time_epoch" in values:
        time = parse_epoch(values["time_epoch"])
    elif "time_epoch_ms" in values:
        time = parse_epoch(float(values["time_epoch_ms"] or 0) / 1000)
    elif "time_epoch_us" in values:
        time = parse_epoch(float(values["time_epoch_us"] or 0) / 1e6)
    seconds = None
    for key, scale in (("seconds", 1.0), ("seconds_us", 1e-6), ("seconds_ms", 1e-3), ("seconds_whole", 1.0)):
        if key in values:
            seconds = _seconds(values[key], scale)
            break
    upstream = _text(values["upstream"]) if "upstream" in values else None
    return LogRecord(peer=client, time=time, method=method.upper(), path=path, status=status, seconds=seconds,
                     upstream=upstream, forwarded_for=_header_value(values.get("xff")),
                     cf_connecting_ip=_header_value(values.get("cf_ip")),
                     true_client_ip=_header_value(values.get("true_client_ip")),
                     host=_header_value(values.get("host")))


def apache_format(definition: str, name: str | None = None) -> LineFormat:
    """A format from an Apache `LogFormat` string."""
    return _compile_text(_pieces_apache(definition), name or f"Apache LogFormat {definition!r}", definition,
                         anchored_end=name is None)


def nginx_format(definition: str, name: str | None = None) -> LineFormat:
    """A format from an nginx `log_format` string (JSON-shaped definitions become a JSON format)."""
    if definition.lstrip().startswith("{"):
        return _nginx_json_format(definition, name)
    return _compile_text(_pieces_nginx(definition), name or f"nginx log_format {definition!r}", definition,
                         anchored_end=True)


def preset(name: str) -> LineFormat:
    # Presets are not anchored at the end: many servers append fields to `combined`.
    return _compile_text(_pieces_apache(PRESETS[name]), name, PRESETS[name], anchored_end=False)


def definition_format(definition: str) -> LineFormat:
    """`--log-format`: a preset name, json/caddy/traefik/alb, an nginx or an Apache definition."""
    text = definition.strip()
    if text in PRESETS:
        return preset(text)
    if text in JSON_FLAVOURS:
        return json_format(text)
    if text == "json":
        return json_format("nginx")
    if text == "alb":
        return alb_format()
    if "$" in text:
        return nginx_format(text)
    if "%" in text:
        return apache_format(text)
    raise ConfigError(f"--log-format {definition!r}: not a format name ({', '.join(FORMAT_NAMES[1:])}), "
                      "nginx log_format ($variables) or Apache LogFormat (%directives)")


# -- JSON lines -----------------------------------------------------------------------------------------

# flavour -> canonical field -> key path (dotted) candidates, first present wins
JSON_FLAVOURS: dict[str, dict[str, tuple[str, ...]]] = {
    "traefik": {
        "client": ("ClientHost",), "time_iso": ("StartUTC", "time"), "method": ("RequestMethod",),
        "path": ("RequestPath",), "status": ("DownstreamStatus", "OriginStatus"), "seconds_ns": ("Duration",),
        "xff": ("request_X-Forwarded-For",), "cf_ip": ("request_Cf-Connecting-Ip",),
        "true_client_ip": ("request_True-Client-Ip",), "host": ("RequestHost",),
    },
    "caddy": {
        "client": ("request.remote_ip",), "time_epoch": ("ts",), "method": ("request.method",),
        "path": ("request.uri",), "status": ("status",), "seconds": ("duration",),
        "xff": ("request.headers.X-Forwarded-For",), "cf_ip": ("request.headers.Cf-Connecting-Ip",),
        "true_client_ip": ("request.headers.True-Client-Ip",), "host": ("request.host",),
    },
    "nginx": {
        "client": ("remote_addr", "client_ip", "clientip", "remote_ip", "ip", "client"),
        "time_iso": ("time_iso8601", "time", "@timestamp", "timestamp"), "time_clf": ("time_local",),
        "time_epoch": ("msec",), "request": ("request",), "method": ("request_method", "method"),
        "path": ("request_uri", "uri", "path"), "status": ("status",),
        "seconds": ("request_time", "duration", "response_time"), "upstream": ("upstream_response_time",),
        "xff": ("http_x_forwarded_for", "x_forwarded_for", "xff"), "cf_ip": ("http_cf_connecting_ip",),
        "true_client_ip": ("http_true_client_ip",), "host": ("host", "http_host"),
    },
}


def _dig(document: Any, path: str) -> Any:
    node = document
    if path in node:                 # Traefik keys contain no dots; a flat key is tried first
        return node[path]
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        matched = node.get(part)
        if matched is None:          # header names differ in case between servers
            lowered = part.lower()
            matched = next((v for k, v in node.items() if isinstance(k, str) and k.lower() == lowered), None)
        node = matched
        if node is None:
            return None
    return node


def _json_parser(keys: Mapping[str, tuple[str, ...]]) -> Callable[[bytes], LogRecord | None]:
    def parse(line: bytes) -> LogRecord | None:
        try:
            document = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(document, dict):
            return None
        values: dict[str, Any] = {}
        for field, candidates in keys.items():
            for key in candidates:
                value = _dig(document, key)
                if value is not None:
                    values[field] = value
                    break
        return _json_record(values)
    return parse


def _first(value: Any) -> str:
    if isinstance(value, list):       # Caddy logs headers as lists
        return ", ".join(str(v) for v in value)
    return str(value)


def _json_record(values: Mapping[str, Any]) -> LogRecord | None:
    text = {k: _first(v) for k, v in values.items()}
    client = text.get("client", "").strip()
    if client.count(":") == 1 and "." in client:      # Traefik ClientAddr-style host:port
        client = client.split(":")[0]
    try:
        status = int(text.get("status", ""))
    except ValueError:
        return None
    if not client or not 100 <= status <= 999:
        return None
    method, target = "", ""
    if "request" in text:
        method, target = _split_request(text["request"])
    method = text.get("method", method)
    target = text.get("path", target)
    time = None
    if "time_iso" in text:
        time = parse_iso_time(text["time_iso"])
    if time is None and "time_clf" in text:
        time = parse_clf_time(text["time_clf"].encode())
    if time is None and "time_epoch" in text:
        time = parse_epoch(text["time_epoch"])
    seconds = None
    if "seconds" in text:
        seconds = _seconds(text["seconds"], 1.0)
    elif "seconds_ns" in text:
        seconds = _seconds(text["seconds_ns"], 1e-9)

    def header(key: str) -> str | None:
        value = text.get(key, "").strip()
        return None if value in ("", "-") else value

    return LogRecord(peer=client, time=time, method=method.upper(), path=target.split("?", 1)[0],
                     status=status, seconds=seconds, upstream=text.get("upstream"),
                     forwarded_for=header("xff"), cf_connecting_ip=header("cf_ip"),
                     true_client_ip=header("true_client_ip"), host=header("host"))


def json_format(flavour: str, keys: Mapping[str, tuple[str, ...]] | None = None,
                name: str | None = None, definition: str = "") -> LineFormat:
    chosen = dict(keys or JSON_FLAVOURS[flavour])
    client_keys = chosen.get("client", ())
    client_key = client_keys[0].rsplit(".", 1)[-1].encode() if len(client_keys) == 1 else None
    return LineFormat(name=name or f"json ({flavour})", parse=_json_parser(chosen), client_key=client_key,
                      logs_seconds=bool({"seconds", "seconds_ns"} & set(chosen)), definition=definition)


def _nginx_json_format(definition: str, name: str | None) -> LineFormat:
    """`log_format x escape=json '{"addr":"$remote_addr",...}'`: each key maps to its variable's field."""
    keys: dict[str, tuple[str, ...]] = {}
    for key, value in re.findall(r'"([^"]+)"\s*:\s*"?([^",}]*)"?', definition):
        variable = _NGINX_VARIABLE.fullmatch(value.strip())
        if variable is None:
            continue
        field = _NGINX_FIELDS.get(variable.group(1) or variable.group(2))
        if field == "time_clf":
            keys.setdefault("time_clf", (key,))
        elif field == "uri":
            keys.setdefault("path", (key,))
        elif field:
            keys.setdefault(field, (key,))
    if "client" not in keys:
        raise ConfigError(f"JSON log format {definition!r} does not log $remote_addr")
    return json_format("nginx", keys, name=name or "json (nginx log_format)", definition=definition)


def _json_flavour_of(document: Mapping[str, Any]) -> str:
    if "ClientHost" in document or "DownstreamStatus" in document:
        return "traefik"
    if isinstance(document.get("request"), dict) and "remote_ip" in document["request"]:
        return "caddy"
    return "nginx"


def _json_detected(document: Mapping[str, Any]) -> LineFormat:
    flavour = _json_flavour_of(document)
    if flavour != "nginx":
        return json_format(flavour)
    # nginx escape=json with user-chosen keys: keep the candidates this log has, so the prefilter knows
    # the client key
    keys = {field: tuple(k for k in candidates if _dig(document, k) is not None) or candidates
            for field, candidates in JSON_FLAVOURS["nginx"].items()}
    return json_format("nginx", keys, name="json (nginx)")


# -- AWS Application Load Balancer ----------------------------------------------------------------------

_ALB = re.compile(rb'^(\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) "((?:[^"\\]|\\.)*)"')
ALB_TYPES = (b"http", b"https", b"h2", b"grpcs", b"ws", b"wss")


def _alb_parse(line: bytes) -> LogRecord | None:
    found = _ALB.match(line)
    if found is None or found.group(1) not in ALB_TYPES:
        return None
    client = _text(found.group(4))
    client = client.rsplit(":", 1)[0] if client.count(":") == 1 else client.rsplit(":", 1)[0].strip("[]")
    try:
        status = int(found.group(9))
    except ValueError:
        return None
    method, target = _split_request(_text(found.group(13)))
    parts = [_seconds(found.group(i), 1.0) for i in (6, 7, 8)]
    seconds = sum(p for p in parts if p is not None) if all(p is not None for p in parts) else None
    return LogRecord(peer=client, time=parse_iso_time(_text(found.group(2))), method=method.upper(),
                     path=target.split("?", 1)[0], status=status, seconds=seconds)


def alb_format() -> LineFormat:
    return LineFormat(name="aws-alb", parse=_alb_parse, client_field=3, logs_seconds=True,
                      definition="AWS ALB access log")


# -- detection ------------------------------------------------------------------------------------------

def detect(lines: Sequence[bytes]) -> LineFormat | None:
    """The format most of `lines` (the first non-empty lines of a file) have, or None."""
    sample = [ln.strip() for ln in lines if ln.strip()][:DETECT_LINES]
    if not sample:
        return None
    if sample[0].startswith(b"{"):
        for line in sample:
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict):
                return _json_detected(document)
        return None
    candidates: list[LineFormat] = []
    if sample[0].split(b" ", 1)[0] in ALB_TYPES:
        candidates.append(alb_format())
    candidates += [preset("vhost_combined"), preset("combined"), preset("common")]
    best, best_count = None, 0
    for candidate in candidates:
        count = sum(1 for line in sample if candidate.parse(line) is not None)
        if count > best_count:
            best, best_count = candidate, count
    return best if best_count * 2 >= len(sample) else None


def formats_from_definitions(definitions: Iterable[str]) -> list[LineFormat]:
    return [definition_format(d) for d in definitions]
