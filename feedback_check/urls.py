"""What a post-sale URL's scheme implies, in one place: its default port.

Used by the probe (the URL check, the Host header, the connection), by the runner (the port a shop's
firewall layers must admit) and by `firewall --url`. No import beyond the standard library, so the
firewall command and the runner can use it without loading the probe.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

#: The port a URL reaches when it names none (RFC 9110, sections 4.2.1 and 4.2.2).
DEFAULT_PORTS = {"http": 80, "https": 443}


def url_port(url: str | SplitResult) -> int | None:
    """The TCP port a request to `url` goes to: the port it names, else its scheme's default; None for a
    scheme without one (not http or https). ValueError when the named port is not a number in 0-65535
    (as `SplitResult.port`); port 0, which no server listens on, counts as not named."""
    parts = urlsplit(url) if isinstance(url, str) else url
    return parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
