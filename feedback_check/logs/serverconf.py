"""Log formats read from the web server's own configuration (nginx `log_format`, Apache `LogFormat`).

The configuration is read with the firewall analysis' nginx and Apache readers (includes followed the
same way); only the format definitions are used. Formats an `access_log` / `CustomLog` line uses come
first, so detection tries the formats the server really writes before the others.
"""

from __future__ import annotations

from pathlib import Path

from feedback_check.errors import ConfigError
from feedback_check.firewall import apache, nginx
from feedback_check.firewall.formats import ParseContext
from feedback_check.logs.formats import PRESETS, LineFormat, apache_format, nginx_format, preset

MAX_CONFIG_BYTES = 16 << 20


def _walk_nginx(directives: list[nginx.Directive]) -> list[nginx.Directive]:
    out = []
    for directive in directives:
        out.append(directive)
        if directive.block:
            out += _walk_nginx(directive.block)
    return out


def _walk_apache(nodes: list[apache.Node]) -> list[apache.Node]:
    out = []
    for node in nodes:
        out.append(node)
        if node.children:
            out += _walk_apache(node.children)
    return out


def formats_from_config(file: str) -> list[LineFormat]:
    """The log formats an nginx or Apache configuration file defines (with its includes)."""
    path = Path(file)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not a server configuration", file=file)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=file) from None
    context = ParseContext(port=80, base_dir=path.resolve().parent)
    if nginx.detect(text) or "log_format" in text:
        return _nginx_formats(text, file, context)
    if apache.detect(text) or "logformat" in text.lower():
        return _apache_formats(text, file, context)
    raise ConfigError("neither an nginx nor an Apache configuration (no log_format / LogFormat found)", file=file)


def _nginx_formats(text: str, file: str, context: ParseContext) -> list[LineFormat]:
    reader = nginx._Reader(context)
    directives = _walk_nginx(nginx._read(text, file, reader))
    defined: dict[str, LineFormat] = {"combined": preset("combined")}
    for d in directives:
        if d.name == "log_format" and len(d.args) >= 2:
            strings = [a for a in d.args[1:] if not a.startswith("escape=")]
            try:
                defined[d.args[0]] = nginx_format("".join(strings), name=f"nginx log_format {d.args[0]} "
                                                  f"({d.file}:{d.line})")
            except ConfigError as e:
                raise ConfigError(e.problem, file=d.file, line=d.line, field=f"log_format {d.args[0]}") from None
    used = [d.args[1] if len(d.args) > 1 else "combined" for d in directives
            if d.name == "access_log" and d.args and d.args[0] != "off"]
    return _ordered(defined, used, file, "log_format")


def _apache_formats(text: str, file: str, context: ParseContext) -> list[LineFormat]:
    reader = apache._Reader(context)
    nodes = _walk_apache(apache._read(text, file, reader))
    defined: dict[str, LineFormat] = {}
    used: list[str] = []
    for node in nodes:
        try:
            if node.name == "logformat" and node.args:
                nickname = node.args[1] if len(node.args) > 1 else "default"
                defined[nickname] = apache_format(node.args[0], name=f"Apache LogFormat {nickname} "
                                                  f"({node.file}:{node.line})")
            elif node.name == "customlog" and len(node.args) >= 2:
                if "%" in node.args[1]:
                    nickname = f"inline:{node.line}"
                    defined[nickname] = apache_format(node.args[1], name=f"Apache CustomLog ({node.file}:{node.line})")
                else:
                    nickname = node.args[1]
                used.append(nickname)
        except ConfigError as e:
            raise ConfigError(e.problem, file=node.file, line=node.line) from None
    for name in PRESETS:                     # defined in apache2.conf, which a site file does not include
        defined.setdefault(name, preset(name))
    return _ordered(defined, used, file, "LogFormat")


def _ordered(defined: dict[str, LineFormat], used: list[str], file: str, what: str) -> list[LineFormat]:
    if not defined:
        raise ConfigError(f"no {what} defined", file=file)
    order = [n for n in dict.fromkeys(used) if n in defined] + [n for n in defined if n not in used]
    return [defined[n] for n in order]
