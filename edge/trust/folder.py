"""A node's trust files, in `<data>/tls/`: the store CA, its TLS and signing certificates.

    store-ca.pem   the store CA's certificate (every node)
    store-ca.key   the store CA's key (the first node only: `edge tls init`)
    node.key/.pem  this node's TLS key and certificate (ECDSA P-256)
    signing.key/.pem  this node's event-signing key (Ed25519) and its certificate

Keys are written 0600 in a 0700 folder. The folder belongs to the node's
installation, not to its journal: a journal restored from a backup (a new
origin, edge/journal/datafolder.py) goes on signing with the same key.
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from edge.trust.certificates import (
    CertificateRefused,
    Signer,
    cert_pem,
    check_issued_by,
    check_signing_certificate,
    issue_signing_certificate,
    issue_tls_certificate,
    key_pem,
    load_cert,
    make_store_ca,
)

TLS_FOLDER = "tls"
CA_CERT = "store-ca.pem"
CA_KEY = "store-ca.key"
TLS_KEY = "node.key"
TLS_CERT = "node.pem"
SIGNING_KEY = "signing.key"
SIGNING_CERT = "signing.pem"


class TrustProblem(Exception):
    """The trust files are missing, unreadable or do not belong together: in plain words."""


def default_node_name() -> str:
    """This machine's host name, as a DNS label (`edge-<name>.local`)."""
    label = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower())
    return label.strip("-")[:40] or "node"


@dataclass(frozen=True)
class NodeTrust:
    """What a running node proves and checks with; loaded once at start."""

    folder: Path
    store_id: str
    node_name: str
    ca_cert: x509.Certificate
    signing_key: ed25519.Ed25519PrivateKey
    signing_cert_pem: str
    signer: Signer

    @property
    def ca_file(self) -> Path:
        return self.folder / CA_CERT

    @property
    def tls_cert_file(self) -> Path:
        return self.folder / TLS_CERT

    @property
    def tls_key_file(self) -> Path:
        return self.folder / TLS_KEY

    @property
    def holds_ca_key(self) -> bool:
        return (self.folder / CA_KEY).exists()

    def server_context(self, public: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """HTTPS/WSS for tills and peers; a peer's client certificate is checked
        against the store CA when it shows one (tills show none).

        `public`: a certificate and key from a public CA for the shop's own domain
        (docs/tls.md), shown to whoever asks for one of its names (SNI), so tills
        opening that name need no store CA installed. Everyone else, peers above
        all, gets the store's certificate.
        """
        context = self._server_context(self.tls_cert_file, self.tls_key_file)
        if public is not None:
            names = dns_names(load_cert(public[0].read_bytes()))
            public_context = self._server_context(*public)

            def by_name(connection: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
                if name is not None and any(name_matches(name, n) for n in names):
                    connection.context = public_context

            context.sni_callback = by_name  # type: ignore[assignment]
        return context

    def _server_context(self, cert_file: Path, key_file: Path) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def client_context(self) -> ssl.SSLContext:
        """Dialling a peer: it must show a certificate of this store's CA, and so do we."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in san.get_values_for_type(x509.DNSName)]


def name_matches(name: str, pattern: str) -> bool:
    """Does a host name fall under a certificate's DNS name (`*.` covers one label)?"""
    name, pattern = name.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return name == pattern


def _write(path: Path, data: bytes, secret: bool) -> None:
    temporary = path.with_suffix(path.suffix + ".new")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(temporary, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class TrustFolder:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / TLS_FOLDER

    def exists(self) -> bool:
        return (self.path / SIGNING_CERT).exists()

    def holds_ca_key(self) -> bool:
        return (self.path / CA_KEY).exists()

    def ca_cert(self) -> x509.Certificate:
        return load_cert(self._read(CA_CERT))

    def _read(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            raise TrustProblem(
                f"{self.path / name} is missing: this node has no store certificate. Run "
                "`edge tls init` on the store's first node, or `edge tls join` on the others."
            ) from None
        except PermissionError:
            raise TrustProblem(f"{self.path / name} cannot be read by this user "
                               f"(uid {os.getuid()})") from None

    def load(self, store_id: str) -> NodeTrust:
        """The node's trust, checked to belong together and to `store_id`."""
        ca_cert = load_cert(self._read(CA_CERT))
        signing_key = serialization.load_pem_private_key(self._read(SIGNING_KEY), None)
        if not isinstance(signing_key, ed25519.Ed25519PrivateKey):
            raise TrustProblem(f"{self.path / SIGNING_KEY} is not an Ed25519 key")
        signing_pem = self._read(SIGNING_CERT).decode()
        ca_store = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if ca_store and ca_store[0].value != store_id:
            raise TrustProblem(f"{self.path} holds the certificates of store "
                               f"{ca_store[0].value!r}, not {store_id!r}: use another data "
                               "folder")
        try:
            signer = check_signing_certificate(signing_pem, ca_cert, store_id)
            check_issued_by(load_cert(self._read(TLS_CERT)), ca_cert, store_id)
        except CertificateRefused as refused:
            raise TrustProblem(f"the certificates in {self.path} do not belong to store "
                               f"{store_id!r}: {refused}") from None
        if signer.public_key.public_bytes_raw() != signing_key.public_key().public_bytes_raw():
            raise TrustProblem(f"{self.path / SIGNING_KEY} does not match its certificate")
        self._read(TLS_KEY)
        return NodeTrust(self.path, store_id, signer.name, ca_cert, signing_key,
                         signing_pem, signer)

    def init_store(self, store_id: str, node_name: str, dns_names: list[str],
                   ip_addresses: list[str], demo_seed: bytes | None = None) -> NodeTrust:
        """Make the store CA here and this node's certificates with it (`edge tls init`)."""
        if (self.path / CA_CERT).exists():
            raise TrustProblem(f"{self.path} already holds a store CA: nothing was changed")
        ca_key, ca_cert = make_store_ca(store_id, demo_seed)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(self.path / CA_KEY, key_pem(ca_key), secret=True)
        _write(self.path / CA_CERT, cert_pem(ca_cert).encode(), secret=False)
        tls_key, signing_key = self.make_keys()
        tls_pem, signing_pem = issue_node(ca_key, ca_cert, store_id, node_name,
                                          tls_key.public_key(), signing_key.public_key(),
                                          dns_names, ip_addresses)
        self.install(cert_pem(ca_cert), tls_pem, signing_pem)
        return self.load(store_id)

    def make_keys(self) -> tuple[ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]:
        """This node's new keys, written (0600) before any certificate exists for them."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        tls_key = ec.generate_private_key(ec.SECP256R1())
        signing_key = ed25519.Ed25519PrivateKey.generate()
        _write(self.path / TLS_KEY, key_pem(tls_key), secret=True)
        _write(self.path / SIGNING_KEY, key_pem(signing_key), secret=True)
        return tls_key, signing_key

    def install(self, ca_pem: str, tls_pem: str, signing_pem: str) -> None:
        """The certificates the store CA issued for this node's keys."""
        _write(self.path / CA_CERT, ca_pem.encode(), secret=False)
        _write(self.path / TLS_CERT, tls_pem.encode(), secret=False)
        _write(self.path / SIGNING_CERT, signing_pem.encode(), secret=False)

    def ca_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self._read(CA_KEY), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TrustProblem(f"{self.path / CA_KEY} is not an EC key")
        return key


def issue_node(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, store_id: str,
    node_name: str, tls_public_key: ec.EllipticCurvePublicKey,
    signing_public_key: ed25519.Ed25519PublicKey, dns_names: list[str], ip_addresses: list[str],
) -> tuple[str, str]:
    """A node's TLS and signing certificates (PEM), as the CA node issues them."""
    tls = issue_tls_certificate(ca_key, ca_cert, store_id, node_name, tls_public_key,
                                dns_names, ip_addresses)
    signing = issue_signing_certificate(ca_key, ca_cert, store_id, node_name,
                                        signing_public_key)
    return cert_pem(tls), cert_pem(signing)
