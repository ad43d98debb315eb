"""Every event signed by its origin's key, and the one rule that checks it at every intake.

An event's `sig` is the hex Ed25519 signature of `b"edge event v1:" + hash` by
its origin's key; the hash (edge/journal/chain.py) does not cover it. Who owns
a key is said once, by the origin's first event, `origin_certified`:
- a node: `{"role": "node", "name", "cert"}`, a signing certificate the store
  CA issued (edge/trust/certificates.py), checked against that CA;
- head office: `{"role": "headoffice", "public_key": <hex>}` under a
  `headoffice-` origin, accepted only once the journal holds a certificate
  the store CA issued for that key, role headoffice (`headoffice_key_trusted`
  `{"cert"}`: the node holding the CA key writes it when its pull first meets
  the key over the authenticated head-office link). Whichever node relays
  that event does not matter: only the CA key makes such a certificate, so a
  node, certified or not, can never vouch for a key of its own.

Every later event of the origin must verify with that key, and be of a type
its role may write (`written_by` in the registry, edge/journal/event_types.py).
So an event forged, relayed under another origin, or re-hashed without its
origin's key is refused by peers, the head-office pull, head office itself
and `edge verify` alike. An event already held is never checked again.
Events written before signing (an upgrade) are taken only as far as an
upgraded node vouched for them, signed (edge/journal/vouches.py); their
origins take no new event.

Pure (no I/O): the journal (store.py), head office (edge/headoffice/storage.py)
and `edge verify` (verify.py) keep the keys and call these.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edge.journal.chain import ChainError, ChainGap, Event
from edge.journal.event_types import event_type, registry
from edge.trust.certificates import (
    CertificateRefused,
    cert_pem,
    check_signing_certificate,
    issue_signing_certificate,
)

SIGNED_PREFIX = b"edge event v1:"
ORIGIN_CERTIFIED = "origin_certified"
HEADOFFICE_KEY_TRUSTED = "headoffice_key_trusted"
NODE, HEADOFFICE = "node", "headoffice"

# Every head-office origin starts so (edge/headoffice/protocol.py): `headoffice-<6 hex>`
# for a new database, `headoffice-<6 hex>-<8 hex>` for one continued after a restore.
HEADOFFICE_ORIGIN_PREFIX = "headoffice-"


def is_headoffice_origin(origin: str) -> bool:
    return origin.startswith(HEADOFFICE_ORIGIN_PREFIX)


class SigningIdentity(Protocol):
    """What a journal signs its own events with and checks others' against.

    `edge.trust.folder.NodeTrust` is one (a node's); `Identity` another (tests, tools).
    """

    @property
    def store_id(self) -> str: ...
    @property
    def node_name(self) -> str: ...
    @property
    def ca_cert(self) -> x509.Certificate: ...
    @property
    def signing_key(self) -> ed25519.Ed25519PrivateKey: ...
    @property
    def signing_cert_pem(self) -> str: ...


@dataclass(frozen=True)
class Identity:
    store_id: str
    node_name: str
    ca_cert: x509.Certificate
    signing_key: ed25519.Ed25519PrivateKey
    signing_cert_pem: str


class SignatureRefused(ChainError):
    """An event its origin's key did not sign, or that its origin may not write: refused."""


class HeadOfficeKeyUnknown(ChainGap):
    """A head-office origin certified with a key the store CA has not certified here yet.

    Not refused: the node holding the store CA certifies it when it syncs with
    head office (and the peers then hold that certificate), so it is asked for
    again later, like a gap.
    """


@dataclass(frozen=True)
class OriginKey:
    """An origin's certified key and role."""

    role: str
    public_key: ed25519.Ed25519PublicKey
    name: str = ""

    @property
    def hex(self) -> str:
        return self.public_key.public_bytes_raw().hex()


def public_hex(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return public.public_bytes_raw().hex()


def load_public_hex(value: Any) -> ed25519.Ed25519PublicKey | None:
    """A raw Ed25519 public key from 64 hex digits; None if it is not one."""
    if not isinstance(value, str) or len(value) != 64:
        return None
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    except ValueError:
        return None


def sign(event: Event, key: ed25519.Ed25519PrivateKey) -> Event:
    return dataclasses.replace(event, sig=key.sign(SIGNED_PREFIX + event.hash.encode()).hex())


def signature_valid(event: Event, public_key: ed25519.Ed25519PublicKey) -> bool:
    if len(event.sig) != 128:
        return False
    try:
        public_key.verify(bytes.fromhex(event.sig), SIGNED_PREFIX + event.hash.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


def node_certified_body(identity: SigningIdentity) -> dict[str, Any]:
    return {"role": NODE, "name": identity.node_name, "cert": identity.signing_cert_pem}


def headoffice_certified_body(key: ed25519.Ed25519PrivateKey) -> dict[str, Any]:
    return {"role": HEADOFFICE, "public_key": public_hex(key)}


def certified_key(event: Event, ca_cert: x509.Certificate, store_id: str,
                  headoffice_trusted: Any = None) -> OriginKey:
    """The key an origin's first event certifies; SignatureRefused if it certifies nothing.

    `headoffice_trusted(hex) -> bool`: does the journal hold a store-CA
    certificate for that key as head office's (`headoffice_keys`, filled only
    from certificates checked at intake; else HeadOfficeKeyUnknown); None: no
    head-office origin is accepted.
    """
    where = f"{event.origin}#{event.seq}"
    if event.type != ORIGIN_CERTIFIED:
        raise SignatureRefused(f"{where}: an origin's first event must be {ORIGIN_CERTIFIED} "
                               f"(this one is {event.type!r}: unsigned, from before events "
                               "were signed, or forged)")
    body = event.body
    role = body.get("role")
    if is_headoffice_origin(event.origin):
        if role != HEADOFFICE:
            raise SignatureRefused(f"{where}: a head-office origin certified as {role!r}: "
                                   "only head office writes under a head-office origin")
        public_key = load_public_hex(body.get("public_key"))
        if public_key is None:
            raise SignatureRefused(f"{where}: no Ed25519 public key (64 hex digits)")
        key = OriginKey(HEADOFFICE, public_key, "head office")
        if headoffice_trusted is None or not headoffice_trusted(key.hex):
            raise HeadOfficeKeyUnknown(f"{where}: head office's key {key.hex[:16]}… is not "
                                       "certified by the store CA here yet (the node holding "
                                       "the store CA certifies it when it syncs with head "
                                       "office)")
    else:
        if role != NODE:
            raise SignatureRefused(f"{where}: a node's origin certified as {role!r}")
        try:
            signer = check_signing_certificate(str(body.get("cert", "")), ca_cert, store_id)
        except CertificateRefused as refused:
            raise SignatureRefused(f"{where}: its signing certificate is refused: {refused}") \
                from None
        if signer.role != NODE:
            raise SignatureRefused(f"{where}: a {signer.role} certificate cannot certify a "
                                   "node's origin")
        if body.get("name") != signer.name:
            # The name is what an origin's lineage is judged by (a node retires only its
            # own past): it is the certificate's, never a claim beside it.
            raise SignatureRefused(f"{where}: names node {body.get('name')!r}, but its "
                                   f"certificate is node {signer.name!r}'s")
        key = OriginKey(NODE, signer.public_key, signer.name)
    check_signed(event, key, ca_cert, store_id)
    return key


def check_signed(event: Event, key: OriginKey, ca_cert: x509.Certificate | None = None,
                 store_id: str = "") -> None:
    """SignatureRefused unless `key` signed `event` and its role may write its type.

    A `headoffice_key_trusted` is also refused unless the store CA (`ca_cert`,
    `store_id`) issued its certificate: without them, it is refused, never
    taken unchecked.
    """
    where = f"{event.origin}#{event.seq}"
    if event.type == ORIGIN_CERTIFIED and event.seq != 1:
        raise SignatureRefused(f"{where}: an origin is certified once, by its first event")
    kind = registry().get(event.type)
    if kind is not None and key.role not in kind.written_by:
        raise SignatureRefused(f"{where}: a {key.role} may not write {event.type} events")
    if not event.sig:
        raise SignatureRefused(f"{where}: not signed")
    if not signature_valid(event, key.public_key):
        raise SignatureRefused(f"{where}: the signature does not verify with its origin's key "
                               "(forged, or re-hashed without that key)")
    if event.type == HEADOFFICE_KEY_TRUSTED:
        if ca_cert is None:
            raise SignatureRefused(f"{where}: a head-office key's certificate cannot be checked "
                                   "here (no store CA given)")
        try:
            certified_headoffice_key(event.body, ca_cert, store_id)
        except CertificateRefused as refused:
            raise SignatureRefused(f"{where}: head office's key is not certified by this "
                                   f"store's CA: {refused}") from None


# Head office's key, certified by the store CA (`headoffice_key_trusted` `{"cert"}`).

HEADOFFICE_CERT_NAME = "head office"


def headoffice_key_certificate(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                               store_id: str, public_key: str) -> str:
    """The store CA's certificate (PEM) for head office's key (hex), role headoffice.

    Only the node holding the CA key can make it: that is what lets every
    node, head office and `edge verify` take a head-office origin from
    whoever relays it. ValueError if `public_key` is no Ed25519 key.
    """
    public = load_public_hex(public_key)
    if public is None:
        raise ValueError("head office's key is not an Ed25519 public key (64 hex digits)")
    return cert_pem(issue_signing_certificate(ca_key, ca_cert, store_id, HEADOFFICE_CERT_NAME,
                                              public, role=HEADOFFICE))


def certified_headoffice_key(body: Any, ca_cert: x509.Certificate, store_id: str) -> str:
    """The key (hex) a `headoffice_key_trusted` body's certificate makes head office's.

    CertificateRefused unless the store CA issued it for this store, role
    headoffice: a bare `{"public_key"}` (any node could write one) proves nothing.
    """
    cert = body.get("cert") if isinstance(body, dict) else None
    if not isinstance(cert, str):
        raise CertificateRefused("no certificate (a bare key vouched for by a node proves "
                                 "nothing)")
    signer = check_signing_certificate(cert, ca_cert, store_id)
    if signer.role != HEADOFFICE:
        raise CertificateRefused(f"a {signer.role} certificate, not head office's")
    return public_hex(signer.public_key)


def certified_headoffice_keys(bodies: Any, ca_cert: x509.Certificate, store_id: str) -> set[str]:
    """The keys that `headoffice_key_trusted` `bodies` certify (others are left out)."""
    keys = set()
    for body in bodies:
        try:
            keys.add(certified_headoffice_key(body, ca_cert, store_id))
        except CertificateRefused:
            continue
    return keys


# The two event types of signing, in the one registry.

@dataclass(slots=True)
class OriginCertified:
    role: str
    name: str = ""
    cert: str = ""
    public_key: str = ""


@dataclass(slots=True)
class HeadOfficeKeyTrusted:
    cert: str  # the store CA's signing certificate for head office's key, role headoffice


def stored_public_key(event: Event) -> tuple[str, str]:
    """(role, public key hex) of an origin_certified event already checked at intake."""
    body = event.body
    if body.get("role") == HEADOFFICE:
        return HEADOFFICE, str(body.get("public_key", ""))
    try:
        cert = x509.load_pem_x509_certificate(str(body.get("cert", "")).encode())
        public = cert.public_key()
    except ValueError:
        return str(body.get("role", "")), ""
    if not isinstance(public, ed25519.Ed25519PublicKey):
        return str(body.get("role", "")), ""
    return NODE, public_hex(public)


@event_type(ORIGIN_CERTIFIED, schema=OriginCertified, written_by=(NODE, HEADOFFICE),
            merge="one per origin (its first event): the origin's key and role, as certified")
def _origin_certified(db: sqlite3.Connection, event: Event) -> None:
    role, key = stored_public_key(event)
    db.execute("INSERT OR IGNORE INTO origin_keys (origin, role, name, public_key) "
               "VALUES (?, ?, ?, ?)", (event.origin, role, str(event.body.get("name", "")), key))


def _certificate_key(pem: str) -> str:
    """The Ed25519 key (hex) in a certificate, unchecked; "" if it holds none."""
    try:
        public = x509.load_pem_x509_certificate(pem.encode()).public_key()
    except ValueError:
        return ""
    return public_hex(public) if isinstance(public, ed25519.Ed25519PublicKey) else ""


@event_type(HEADOFFICE_KEY_TRUSTED, schema=HeadOfficeKeyTrusted,
            merge="a set of (key, node that relayed it): the store CA's certificate makes the "
                  "key head office's, whoever wrote it")
def _headoffice_key_trusted(db: sqlite3.Connection, event: Event) -> None:
    # Its certificate was checked against the store CA at intake (check_signed);
    # this node's own were made with the CA key.
    # A bare `{"public_key"}` (before the CA certified head office's key) trusts nothing.
    key = _certificate_key(str(event.body.get("cert", "")))
    if key:
        db.execute("INSERT OR IGNORE INTO headoffice_keys (public_key, origin, time) "
                   "VALUES (?, ?, ?)", (key, event.origin, event.time))


class OriginKeys:
    """Each origin's certified key as this journal holds it (`origin_keys`), read once."""

    def __init__(self) -> None:
        self._keys: dict[str, OriginKey] = {}

    def get(self, db: sqlite3.Connection, origin: str) -> OriginKey | None:
        key = self._keys.get(origin)
        if key is None:
            row = db.execute("SELECT role, name, public_key FROM origin_keys WHERE origin = ?",
                             (origin,)).fetchone()
            public = load_public_hex(row[2]) if row else None
            if public is None:
                return None
            key = self._keys[origin] = OriginKey(row[0], public, row[1])
        return key

    def forget(self) -> None:
        """After a rollback: what was read inside it may not be there any more."""
        self._keys.clear()


def headoffice_key_trusted(db: sqlite3.Connection, public_key: str) -> bool:
    """Does this journal hold the store CA's certificate for `public_key` as head office's."""
    return db.execute("SELECT 1 FROM headoffice_keys WHERE public_key = ? LIMIT 1",
                      (public_key,)).fetchone() is not None
