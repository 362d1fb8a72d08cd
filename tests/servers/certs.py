"""A throwaway PKI generated at test time: a root CA, an intermediate, and leaf certificates for every
certificate problem the TLS phase must tell apart.

    pki = TestPki(tmp_path)                 # or the session fixture `pki`
    pki.ca_bundle                           # PEM with the root only (pass as ProbeSettings.ca_bundle)
    files = pki.leaf("valid")               # LeafFiles(cert_file=leaf+intermediate, key_file, ...)
    context = files.server_context()        # an ssl server context serving that chain

Kinds: valid, expired, not_yet_valid, wrong_host, self_signed, missing_intermediate, expiring (5 days
left), expiring_warning (15 days left), private_ca. Leaves cover `shop.test`, `*.shop.test` and
127.0.0.1 (wrong_host covers other.test only). Leaves issued by the intermediate carry an AIA
caIssuers URL, as public CA certificates do. EC P-256 keys keep generation fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

HOST = "shop.test"
NAMES = (HOST, f"*.{HOST}", "127.0.0.1")
KINDS = ("valid", "expired", "not_yet_valid", "wrong_host", "self_signed", "missing_intermediate", "expiring",
         "expiring_warning", "private_ca")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "feedback-check tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


@dataclass
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_ca(common_name: str, *, issuer: Authority | None = None, now: dt.datetime,
            path_length: int | None = None) -> Authority:
    """A CA certificate: self-signed root when `issuer` is None, else an intermediate."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(issuer.cert.subject if issuer else _name(common_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(_key_usage(ca=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    return Authority(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_leaf(issuer: Authority | None, names: tuple[str, ...], *, not_before: dt.datetime,
              not_after: dt.datetime, aia: str | None = None) -> Authority:
    """A server certificate for `names`, issued by `issuer` (self-signed when None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(names[0])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(_san(names), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(ca=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    signer = issuer.key if issuer else key
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if aia:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia))]), critical=False)
    return Authority(builder.sign(signer, hashes.SHA256()), key)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class LeafFiles:
    kind: str
    cert: x509.Certificate
    cert_file: Path          # the chain the server sends: leaf, then any intermediate
    key_file: Path

    def server_context(self, *, minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None,
                       ciphers: str | None = None) -> ssl.SSLContext:
        """A server context sending this chain."""
        import warnings

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if ciphers:
                context.set_ciphers(ciphers)
            if minimum is not None:
                context.minimum_version = minimum
            if maximum is not None:
                context.maximum_version = maximum
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class TestPki:
    """Root, intermediate and one leaf per kind, written as PEM files under `folder`."""

    __test__ = False   # not a pytest test class

    def __init__(self, folder: Path, now: dt.datetime | None = None) -> None:
        self.folder = folder
        self.now = now or dt.datetime.now(dt.UTC)
        self.root = make_ca("feedback-check Test Root CA", now=self.now)
        self.intermediate = make_ca("feedback-check Test Issuing CA 1", issuer=self.root, now=self.now, path_length=0)
        self.private_root = make_ca("Private Corp Internal CA", now=self.now)
        self.ca_bundle = folder / "test-ca-bundle.pem"
        self.ca_bundle.write_bytes(_pem(self.root.cert))
        self.aia_url = "http://ca.test/issuing-ca-1.der"
        self._leaves: dict[str, LeafFiles] = {}

    def leaf(self, kind: str) -> LeafFiles:
        if kind not in self._leaves:
            self._leaves[kind] = self._make(kind)
        return self._leaves[kind]

    def _make(self, kind: str) -> LeafFiles:
        now, day = self.now, dt.timedelta(days=1)
        names = NAMES
        not_before, not_after = now - 10 * day, now + 80 * day
        issuer: Authority | None = self.intermediate
        send_intermediate = True
        if kind == "expired":
            not_before, not_after = now - 100 * day, now - 2 * day
        elif kind == "not_yet_valid":
            not_before, not_after = now + 3 * day, now + 90 * day
        elif kind == "wrong_host":
            names = ("other.test",)
        elif kind == "self_signed":
            issuer = None
        elif kind == "missing_intermediate":
            send_intermediate = False
        elif kind == "expiring":
            not_after = now + 5 * day
        elif kind == "expiring_warning":
            not_after = now + 15 * day
        elif kind == "private_ca":
            issuer = self.private_root
        elif kind != "valid":
            raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        aia = self.aia_url if issuer is self.intermediate else None
        leaf = make_leaf(issuer, names, not_before=not_before, not_after=not_after, aia=aia)
        chain = _pem(leaf.cert)
        if issuer is self.intermediate and send_intermediate:
            chain += _pem(self.intermediate.cert)
        cert_file, key_file = self.folder / f"{kind}.crt", self.folder / f"{kind}.key"
        cert_file.write_bytes(chain)
        key_file.write_bytes(leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        return LeafFiles(kind, leaf.cert, cert_file, key_file)


@pytest.fixture(scope="session", name="pki")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPki]:
    """One test PKI for the whole session."""
    yield TestPki(tmp_path_factory.mktemp("pki"))
