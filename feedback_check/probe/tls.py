"""TLS phase: what the server on one address negotiates, and what is wrong with its certificate.

How it works, and why:
- The first handshake is the platform's (floor, trust store, host name check), on the connection the
  request then uses (`tls_phase`). The chain the server SENT is judged offline as well
  (cryptography), so each problem is told apart: expired, not yet valid, untrusted (self-signed /
  private CA), intermediate not sent, host name not covered - a verifying handshake alone would only
  say "failed". When it refuses the certificate, one handshake with verification off (SNI = the URL's
  host name) captures the chain to judge.
- When the handshake at the platform's TLS floor fails, a second one with every protocol and cipher
  allowed (OpenSSL security level 0, the only way OpenSSL 3 still speaks TLS 1.0/1.1 or 3DES/NULL)
  finds out what the server does speak: tls.protocol_too_old or tls.weak_cipher_only.
- After a working handshake with SNI, one without SNI shows whether the server needs it.

`tls_phase` returns a `TlsSession` - the frozen `TlsResult` and the connection the request continues
on (never raises for a network outcome); `sni_check` adds the SNI verdict; `tls_findings` turns the
result into tls.* findings.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import ipaddress
import logging
import os
import re
import ssl
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time cryptography is imported on the first certificate to judge (HTTPS only)
    from cryptography import x509

from feedback_check.errors import ConfigError
from feedback_check.platform import Platform
from feedback_check.probe.deadline import Deadline
from feedback_check.probe.exchange import (
    ConnectFailed,
    Connection,
    TlsFailed,
    describe_tls_error,
    open_connection,
)

log = logging.getLogger(__name__)

#: Cipher list of the "what does it speak at all" handshake: everything OpenSSL has, security level 0.
PERMISSIVE_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
#: Substrings of OpenSSL cipher names that stand for each weak family of the platform profile.
_WEAK_MARKERS = {"3DES": ("DES-CBC3", "3DES"), "DES": ("DES",), "RC4": ("RC4",), "EXPORT": ("EXP",),
                 "NULL": ("NULL",)}


class TlsStatus(str, enum.Enum):
    OK = "ok"                                 # handshake at or above the floor with a usable cipher
    PROTOCOL_TOO_OLD = "protocol_too_old"
    WEAK_CIPHER_ONLY = "weak_cipher_only"
    FAILED = "failed"
    TIMEOUT = "timeout"


class CertProblem(str, enum.Enum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNTRUSTED = "untrusted"
    CHAIN_INCOMPLETE = "chain_incomplete"
    HOSTNAME_MISMATCH = "hostname_mismatch"


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What a report says about one certificate the server sent."""

    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]                # subjectAltName DNS names and IP addresses
    self_signed: bool
    ca_issuers: tuple[str, ...] = ()      # AIA caIssuers URLs
    sha256: str = ""

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateInfo:
        from cryptography.hazmat.primitives import hashes
        return cls(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                   not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                   names=tuple(_san_names(cert)), self_signed=cert.issuer == cert.subject,
                   ca_issuers=tuple(_ca_issuers(cert)), sha256=cert.fingerprint(hashes.SHA256()).hex())


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Offline verdict on the chain the server sent: every problem found, each with its reason."""

    problems: tuple[CertProblem, ...]
    reasons: dict[str, str] = field(default_factory=dict)     # problem value -> why
    days_left: float | None = None


@dataclass(frozen=True, slots=True)
class TlsResult:
    """Outcome of the TLS phase on one address."""

    address: str
    port: int
    host: str                              # the URL's host (SNI when it is a name)
    status: TlsStatus
    seconds: float = 0.0                   # duration of the first handshake (after the TCP connect)
    version: str | None = None             # what was negotiated, e.g. "TLSv1.3"
    cipher: str | None = None
    error: str = ""                        # why the handshake at the floor failed
    chain: tuple[CertificateInfo, ...] = ()
    check: ChainCheck | None = None
    sni_required: bool | None = None       # None: not tested (IP literal, or no handshake)
    sni_evidence: str = ""
    #: OpenSSL's reason code of that failure (ssl.SSLError.reason, e.g. WRONG_VERSION_NUMBER), or "".
    ssl_reason: str = ""

    @property
    def handshake_ok(self) -> bool:
        return self.status is TlsStatus.OK

    @property
    def certificate_ok(self) -> bool:
        return self.check is not None and not self.check.problems

    @property
    def trusted(self) -> bool:
        """True when a verifying client at the platform's floor would complete the handshake."""
        return self.handshake_ok and self.certificate_ok

    @property
    def leaf(self) -> CertificateInfo | None:
        return self.chain[0] if self.chain else None


# --- contexts -------------------------------------------------------------------------------------

def tls_version(text: str) -> ssl.TLSVersion:
    """'1.2' -> TLSVersion.TLSv1_2 (the platform profile's `tls.min_version`)."""
    name = "TLSv1" if text.strip() in ("1", "1.0") else "TLSv" + text.strip().replace(".", "_")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ssl.TLSVersion[name]
    except KeyError:
        raise ConfigError(f"unknown TLS version {text!r}", field="tls.min_version") from None


def version_tuple(negotiated: str | None) -> tuple[int, int]:
    """'TLSv1.2' -> (1, 2); 'TLSv1' -> (1, 0); 'SSLv3' -> (0, 3)."""
    if not negotiated:
        return (0, 0)
    if negotiated.startswith("SSLv"):
        return (0, int(negotiated[4:] or 0))
    rest = negotiated.removeprefix("TLSv")
    major, _, minor = rest.partition(".")
    return (int(major or 1), int(minor or 0))


def floor_tuple(platform: Platform) -> tuple[int, int]:
    major, _, minor = platform.tls_min_version.partition(".")
    return (int(major), int(minor or 0))


def capture_context(platform: Platform, *, permissive: bool = False) -> ssl.SSLContext:
    """A client context that verifies nothing (the chain is judged offline). Strict: the platform's
    floor and OpenSSL's default ciphers. Permissive: every protocol and cipher OpenSSL has."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated in the ssl module; speaking them is the point of this context.
        warnings.simplefilter("ignore", DeprecationWarning)
        if permissive:
            context.set_ciphers(PERMISSIVE_CIPHERS)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            try:
                context.minimum_version = ssl.TLSVersion.TLSv1
            except (ValueError, ssl.SSLError):
                pass
        else:
            context.minimum_version = tls_version(platform.tls_min_version)
    return context


def verifying_context(platform: Platform, ca_bundle: str | None) -> ssl.SSLContext:
    """A client context like the platform's: the floor, a trust store, host name checking. Shared
    between requests (loading a public bundle costs ~30 ms of CPU, which would stall the event loop)."""
    path = trust_bundle_path(ca_bundle)
    try:
        mtime = Path(path).stat().st_mtime
    except OSError as e:
        raise ConfigError(f"cannot read CA bundle: {e.strerror}", file=path) from None
    return _verifying_context(path, mtime, platform.tls_min_version)


@functools.lru_cache(maxsize=8)
def _verifying_context(path: str, mtime: float, min_version: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"not a usable CA bundle ({e})", file=path) from None
    context.minimum_version = tls_version(min_version)
    return context


def trust_bundle_path(ca_bundle: str | None) -> str:
    """The CA bundle file in use: the given one, else the public bundle (certifi)."""
    if ca_bundle:
        return ca_bundle
    import certifi
    return str(certifi.where())


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@functools.lru_cache(maxsize=8)
def _load_trust(path: str, mtime: float) -> tuple[x509.Certificate, ...]:
    from cryptography import x509

    from feedback_check import inputfile

    data = inputfile.read_bytes(path, inputfile.CA_BUNDLE)
    certificates = []
    for block in _PEM_CERTIFICATE.findall(data):
        # Public bundles carry a few old roots cryptography deprecates (e.g. a zero serial number);
        # one odd root must not take the whole trust store down.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                certificates.append(x509.load_pem_x509_certificate(block))
            except ValueError as e:
                log.debug("skipping a certificate of %s: %s", path, e)
    if not certificates:
        raise ConfigError("no PEM certificate in the CA bundle", file=path)
    return tuple(certificates)


def load_trust(ca_bundle: str | None) -> tuple[x509.Certificate, ...]:
    """The trust anchors of the CA bundle (ConfigError when it cannot be read: missing, not a regular
    file, too large - feedback_check.inputfile's one wording - or without a PEM certificate)."""
    from feedback_check import inputfile

    path = trust_bundle_path(ca_bundle)
    handle, _ = inputfile.open_input(path, inputfile.CA_BUNDLE)
    with handle:
        mtime = os.fstat(handle.fileno()).st_mtime
    return _load_trust(path, mtime)


# --- certificates ---------------------------------------------------------------------------------

def _san_names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in san.get_values_for_type(x509.DNSName)] + \
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _ca_issuers(cert: x509.Certificate) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]


def _dns_matches(pattern: str, host: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        suffix = pattern[2:]
        label, _, rest = host.partition(".")
        # RFC 6125: the wildcard stands for exactly one whole left-most label, never a public suffix.
        return bool(label) and rest == suffix and suffix.count(".") >= 1
    return False


def covers_host(cert: x509.Certificate, host: str) -> bool:
    """Whether the certificate is valid for `host` (subjectAltName; the subject CN only when the
    certificate has no DNS name at all, as OpenSSL does)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    name = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        address = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names, ip_names = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns_names, ip_names = [], []
    if address is not None:
        return address in ip_names
    if not dns_names:
        dns_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_matches(p, name) for p in dns_names)


def _verifier_subject(cert: x509.Certificate, host: str) -> x509.verification.Subject:
    """A name the certificate covers (the host when it does), so the trust check does not repeat
    the host name check."""
    from cryptography import x509
    candidates = [host] if covers_host(cert, host) else _san_names(cert) or [host]
    chosen = candidates[0].replace("*", "probe", 1)
    try:
        return x509.IPAddress(ipaddress.ip_address(chosen))
    except ValueError:
        return x509.DNSName(chosen)


def _validity_moment(chain: Sequence[x509.Certificate], now: dt.datetime) -> dt.datetime:
    """`now`, or a moment when every sent certificate is valid, so that expiry is judged separately."""
    start = max(c.not_valid_before_utc for c in chain)
    end = min(c.not_valid_after_utc for c in chain)
    if start <= now <= end:
        return now
    if start < end:
        return start + (end - start) / 2
    leaf = chain[0]
    return leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2


def classify_chain(chain: Sequence[x509.Certificate], host: str, trust: Sequence[x509.Certificate],
                   now: dt.datetime | None = None) -> ChainCheck:
    """Every problem of the chain the server sent (leaf first), judged against the trust anchors."""
    now = now or dt.datetime.now(dt.UTC)
    leaf = chain[0]
    problems: list[CertProblem] = []
    reasons: dict[str, str] = {}
    days_left = (leaf.not_valid_after_utc - now).total_seconds() / 86400
    for position, cert in enumerate(chain):
        who = "the certificate" if position == 0 else f"the sent intermediate {cert.subject.rfc4514_string()}"
        if now > cert.not_valid_after_utc and CertProblem.EXPIRED not in problems:
            problems.append(CertProblem.EXPIRED)
            reasons[CertProblem.EXPIRED.value] = \
                f"{who} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        if now < cert.not_valid_before_utc and CertProblem.NOT_YET_VALID not in problems:
            problems.append(CertProblem.NOT_YET_VALID)
            reasons[CertProblem.NOT_YET_VALID.value] = \
                f"{who} is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    trust_problem = _trust_problem(chain, host, trust, now)
    if trust_problem is not None:
        problems.append(trust_problem[0])
        reasons[trust_problem[0].value] = trust_problem[1]
    if not covers_host(leaf, host):
        problems.append(CertProblem.HOSTNAME_MISMATCH)
        names = ", ".join(_san_names(leaf)) or "no subjectAltName"
        reasons[CertProblem.HOSTNAME_MISMATCH.value] = f"{host} is not among the certificate's names ({names})"
    return ChainCheck(tuple(problems), reasons, days_left)


def _trust_problem(chain: Sequence[x509.Certificate], host: str, trust: Sequence[x509.Certificate],
                   now: dt.datetime) -> tuple[CertProblem, str] | None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
    leaf, sent = chain[0], list(chain[1:])
    if not trust:
        return CertProblem.UNTRUSTED, "the trust store is empty"
    try:
        verifier = (PolicyBuilder().store(Store(list(trust))).time(_validity_moment(chain, now))
                    .build_server_verifier(_verifier_subject(leaf, host)))
        verifier.verify(leaf, sent)
        return None
    except (VerificationError, ValueError, TypeError) as e:
        verifier_error = str(e) or type(e).__name__
    # Follow the issuer links through what the server sent, to the top of the sent chain.
    top, seen = leaf, {leaf.fingerprint(hashes.SHA256())}
    while True:
        parent = next((c for c in sent if c.subject == top.issuer and c.fingerprint(hashes.SHA256()) not in seen),
                      None)
        if parent is None:
            break
        seen.add(parent.fingerprint(hashes.SHA256()))
        top = parent
    anchored = any(t.subject == top.issuer for t in trust)
    if top.issuer == top.subject and not any(t == top for t in trust):
        what = "a self-signed certificate" if top is leaf else \
            f"a chain ending in the private root {top.subject.rfc4514_string()}"
        return CertProblem.UNTRUSTED, f"the server sends {what}, which is not in the trust store"
    if not anchored and top.issuer != top.subject:
        issuer = top.issuer.rfc4514_string()
        if _ca_issuers(top):
            return CertProblem.CHAIN_INCOMPLETE, (
                f"the server does not send the intermediate certificate {issuer}; the certificate names "
                f"where to download it ({', '.join(_ca_issuers(top))}), which server-side clients do not do")
        return CertProblem.UNTRUSTED, (
            f"issued by {issuer}, which is neither sent by the server nor in the trust store: a private CA "
            "(or an intermediate the server fails to send)")
    return CertProblem.UNTRUSTED, f"the chain does not verify against the trust store: {verifier_error}"


# --- handshakes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Attempt:
    ok: bool
    seconds: float = 0.0
    version: str | None = None
    cipher: str | None = None
    chain: tuple[bytes, ...] = ()
    error: str = ""
    timed_out: bool = False
    refused_certificate: bool = False      # a verifying handshake refused the certificate
    ssl_reason: str = ""                   # ssl.SSLError.reason of the failure


def _sent_chain(ssl_object: Any) -> tuple[bytes, ...]:
    """DER of the certificates the server sent, leaf first (verification was off)."""
    public = getattr(ssl_object, "get_unverified_chain", None)     # Python 3.13+
    if public is not None:
        return tuple(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                     for c in public())
    inner = getattr(ssl_object, "_sslobj", None)
    if inner is not None and hasattr(inner, "get_unverified_chain"):
        return tuple(c.public_bytes(ssl._ssl.ENCODING_DER) for c in inner.get_unverified_chain() or ())  # type: ignore[attr-defined]
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def describe_ssl_error(error: BaseException) -> str:
    return describe_tls_error(error)


async def _handshake(address: str, port: int, server_hostname: str | None, context: ssl.SSLContext,
                     deadline: Deadline, *, connection: Connection | None = None,
                     keep: bool = False) -> tuple[_Attempt, Connection | None]:
    """One handshake (on `connection`, else on a new one); the connection is returned open when the
    handshake worked and `keep` is set, else closed."""
    started = time.monotonic()
    try:
        if connection is None:
            connection = await open_connection(address, port, deadline=deadline)
        started = time.monotonic()
        seconds = await connection.start_tls(context, server_hostname, deadline=deadline)
    except ConnectFailed as e:
        return _Attempt(False, time.monotonic() - started, error=str(e), timed_out=e.timed_out), None
    except TlsFailed as e:
        reason = e.cause.reason if isinstance(e.cause, ssl.SSLError) else None
        return _Attempt(False, time.monotonic() - started, error=str(e), timed_out=e.timed_out,
                        refused_certificate=e.verification, ssl_reason=reason or ""), None
    ssl_object = connection.ssl_object
    assert ssl_object is not None
    cipher = ssl_object.cipher()
    attempt = _Attempt(True, seconds, ssl_object.version(), cipher[0] if cipher else None, _sent_chain(ssl_object))
    if keep:
        return attempt, connection
    connection.abort()
    return attempt, None


def _parse_chain(ders: Sequence[bytes]) -> tuple[list[x509.Certificate], str]:
    """The sent certificates, and why the chain cannot be judged when one of them cannot be parsed."""
    from cryptography import x509
    chain = []
    for position, der in enumerate(ders):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # odd but parseable certificates are judged, not warned about
            try:
                chain.append(x509.load_der_x509_certificate(der))
            except ValueError as e:
                return chain if position else [], \
                    f"certificate {position + 1} the server sent cannot be parsed ({e})"
    return chain, ""


async def speaks_tls(address: str, port: int, host: str, platform: Platform, *, deadline: Deadline) -> str | None:
    """The TLS version the port negotiates (any version, any cipher) before `deadline`, or None when it
    does not speak TLS."""
    sni = None if _is_ip(host) else host
    attempt, _ = await _handshake(address, port, sni, capture_context(platform, permissive=True), deadline)
    return attempt.version if attempt.ok else None


def is_weak_cipher(cipher: str | None, platform: Platform) -> bool:
    if not cipher:
        return False
    name = cipher.upper()
    return any(marker in name for family in platform.weak_ciphers
               for marker in _WEAK_MARKERS.get(family.upper(), (family.upper(),)))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class TlsSession:
    """The TLS phase on one address and the connection it leaves for the request."""

    result: TlsResult
    connection: Connection | None          # open, TLS done: the request goes here (None: no handshake worked)
    verified: bool                         # that connection verified the certificate like the platform does
    refusal: str = ""                      # why a verifying handshake refused the certificate, if it did


async def tls_phase(connection: Connection, host: str, *, platform: Platform, ca_bundle: str | None,
                    deadline: Deadline, now: dt.datetime | None = None) -> TlsSession:
    """The TLS phase on a fresh TCP `connection`, all handshakes before `deadline`.

    The first handshake is the platform's own (its TLS floor, the trust store, host name checking),
    on the connection the request then uses: when it works, that is the only handshake the request
    needs. The chain it received is judged offline as well (expiry soon, and every problem told apart).
    Only when it fails does a second one on a new connection capture what the server sends without
    verification (and, failing at the floor, a third with everything allowed)."""
    address, port = connection.address, connection.port
    trust = load_trust(ca_bundle)
    sni = None if _is_ip(host) else host
    verifying = verifying_context(platform, ca_bundle)
    attempt, kept = await _handshake(address, port, host, verifying, deadline, connection=connection, keep=True)
    verified, refusal, strict = attempt.ok, "", attempt
    status, error = TlsStatus.OK, ""
    if attempt.timed_out:
        return TlsSession(TlsResult(address, port, host, TlsStatus.TIMEOUT, attempt.seconds, error=attempt.error),
                          None, False)
    if not attempt.ok:
        if attempt.refused_certificate:
            refusal = attempt.error
            strict, kept = await _handshake(address, port, sni, capture_context(platform), deadline, keep=True)
            if strict.timed_out:
                return TlsSession(TlsResult(address, port, host, TlsStatus.TIMEOUT, strict.seconds,
                                            error=strict.error), None, False)
        attempt = strict
    if not strict.ok:
        error = strict.error
        permissive, kept = await _handshake(address, port, sni, capture_context(platform, permissive=True),
                                            deadline, keep=True)
        if not permissive.ok:
            return TlsSession(TlsResult(address, port, host, TlsStatus.FAILED, strict.seconds, error=strict.error,
                                        ssl_reason=strict.ssl_reason), None, False)
        attempt = permissive
        if version_tuple(permissive.version) < floor_tuple(platform):
            status = TlsStatus.PROTOCOL_TOO_OLD
        elif is_weak_cipher(permissive.cipher, platform):
            status = TlsStatus.WEAK_CIPHER_ONLY
        else:
            status = TlsStatus.FAILED
            error = (f"{strict.error} (a handshake succeeds only with OpenSSL's security level lowered to 0: "
                     f"{permissive.version}, {permissive.cipher})")
    chain, unparsed = _parse_chain(attempt.chain)
    check = classify_chain(chain, host, trust, now) if chain else None
    if unparsed:
        check = ChainCheck((CertProblem.UNTRUSTED,), {CertProblem.UNTRUSTED.value: unparsed},
                           check.days_left if check else None)
    result = TlsResult(address, port, host, status, attempt.seconds, attempt.version, attempt.cipher, error,
                       tuple(CertificateInfo.of(c) for c in chain), check, ssl_reason=strict.ssl_reason)
    return TlsSession(result, kept, verified, refusal)


async def sni_check(result: TlsResult, platform: Platform, *, deadline: Deadline) -> TlsResult:
    """`result` with sni_required filled in: a handshake without SNI, compared with the one with SNI
    (not for IP literals, nor without a working handshake)."""
    from cryptography.hazmat.primitives import hashes
    if _is_ip(result.host) or result.version is None or deadline.expired:
        return result
    context = capture_context(platform, permissive=result.status is not TlsStatus.OK)
    bare, _ = await _handshake(result.address, result.port, None, context, deadline)
    if not bare.ok:
        return replace(result, sni_required=True, sni_evidence=f"without SNI the handshake fails: {bare.error}")
    sent = result.chain[0].sha256 if result.chain else None
    other = _parse_chain(bare.chain[:1])[0] if bare.chain[:1] else []
    if other and result.chain and other[0].fingerprint(hashes.SHA256()).hex() != sent and \
            not covers_host(other[0], result.host):
        return replace(result, sni_required=True,
                       sni_evidence=f"without SNI the server sends another certificate "
                                    f"({other[0].subject.rfc4514_string()})")
    return replace(result, sni_required=False)
