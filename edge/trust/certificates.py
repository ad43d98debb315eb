"""The store's certificates: made, issued and checked here; pure, no I/O.

- The store CA: ECDSA P-256, self-signed, its subject naming the store.
- A node's TLS certificate: ECDSA P-256, for its names and addresses, usable
  as a server (tills, peers dialling it) and as a client (dialling peers).
- A signing certificate: an Ed25519 public key (every event an origin
  writes is signed with the matching key) for a node or for head office.

Every certificate the CA issues names the store (`urn:edge:store:<id>`), so a
certificate of one store is refused by another even if both were somehow
issued by one CA.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Apple refuses TLS certificates valid for longer, even from a private CA.
TLS_DAYS = 825
# Signatures are checked for as long as the books are kept (6 years in France,
# more with the archive): a signing certificate outlives that.
SIGNING_DAYS = 30 * 366
CA_DAYS = 30 * 366
# A certificate is dated a little in the past: a till whose clock runs slow
# still accepts it on the day it is made.
BACKDATE = datetime.timedelta(hours=1)

ROLES = ("node", "headoffice")


class CertificateRefused(Exception):
    """A certificate that does not prove what it claims (wrong CA, store, role or key)."""


@dataclass(frozen=True)
class Signer:
    """Who a signing certificate speaks for."""

    name: str
    role: str  # "node" or "headoffice"
    store_id: str
    public_key: ed25519.Ed25519PublicKey


def store_uri(store_id: str) -> str:
    return f"urn:edge:store:{store_id}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def make_store_ca(
    store_id: str, seed: bytes | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new store CA: its key (kept on one node only) and its certificate (on every node).

    `seed`: the demo store only. Demo nodes sharing a store key make the same CA
    key from it (and the store id), so a demo of several nodes needs no `edge
    tls join`; whoever holds a demo's store key is its CA. A real store's CA
    key is random and lives on one node.
    """
    if seed is None:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        secret = int.from_bytes(hashlib.sha256(
            b"edge demo store CA:" + store_id.encode() + b":" + seed).digest())
        key = ec.derive_private_key(secret % (order - 1) + 1, ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, store_id),
        x509.NameAttribute(NameOID.COMMON_NAME, f"edge store CA {store_id}"[:64]),
    ])
    start = _now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(store_uri(store_id))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issued(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
            subject: x509.Name, public_key: object, days: int) -> x509.CertificateBuilder:
    start = _now() - BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
    )


def issue_tls_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, store_id: str,
    node_name: str, public_key: ec.EllipticCurvePublicKey,
    dns_names: list[str], ip_addresses: list[str],
) -> x509.Certificate:
    """A node's TLS certificate: served to tills and peers, and shown to peers it dials."""
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
    names += [x509.IPAddress(ipaddress.ip_address(address))
              for address in dict.fromkeys(ip_addresses)]
    names.append(x509.UniformResourceIdentifier(store_uri(store_id)))
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, store_id),
        x509.NameAttribute(NameOID.COMMON_NAME, node_name[:64]),
    ])
    return (
        _issued(ca_key, ca_cert, subject, public_key, TLS_DAYS)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def issue_signing_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, store_id: str,
    name: str, public_key: ed25519.Ed25519PublicKey, role: str = "node",
) -> x509.Certificate:
    """A certificate for the key that signs every event of a node (or of head office)."""
    if role not in ROLES:
        raise ValueError(f"unknown signing role {role!r}")
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, store_id),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        x509.NameAttribute(NameOID.COMMON_NAME, name[:64]),
    ])
    return (
        _issued(ca_key, ca_cert, subject, public_key, SIGNING_DAYS)
        .add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(store_uri(store_id))]), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def stores_named(cert: x509.Certificate) -> list[str]:
    """The store ids a certificate names (`urn:edge:store:<id>` in its SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    prefix = store_uri("")
    return [uri.removeprefix(prefix)
            for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
            if uri.startswith(prefix)]


def check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate, store_id: str) -> None:
    """CertificateRefused unless the store CA issued `cert` for this store."""
    if cert.issuer != ca_cert.subject:
        raise CertificateRefused("not issued by this store's CA")
    ca_key = ca_cert.public_key()
    if not isinstance(ca_key, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
        raise CertificateRefused("the store CA's key is not the kind edge makes")
    try:
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes,
                      ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        raise CertificateRefused("not issued by this store's CA") from None
    if store_id not in stores_named(cert):
        raise CertificateRefused(f"issued for another store, not {store_id!r}")


def check_signing_certificate(pem: str, ca_cert: x509.Certificate, store_id: str) -> Signer:
    """Who `pem` (a signing certificate) speaks for; CertificateRefused if it proves nothing.

    Expiry is not checked: an event signed while the certificate was valid stays
    valid; when it was signed is the journal's business (its chain and closures).
    """
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise CertificateRefused("not a PEM certificate") from None
    check_issued_by(cert, ca_cert, store_id)
    public_key = cert.public_key()
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise CertificateRefused("a signing certificate must hold an Ed25519 key")
    role = _attribute(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if role not in ROLES:
        raise CertificateRefused(f"a certificate for no known role ({role!r})")
    return Signer(_attribute(cert.subject, NameOID.COMMON_NAME), role, store_id, public_key)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER bytes, in hex: what store IT compares by eye."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def key_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
