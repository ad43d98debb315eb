"""Signed events for tests: a store CA, node signing identities, head office's key, chains.

Every event a journal, a peer or head office takes must be signed by its
origin's certified key (edge/journal/signing.py). Tests that make journals or
craft events use these, never a key of their own:

    journal = Journal(path, origin="node-a", trust=identity("node-a"))
    chain = SignedChain("n1")                       # a node of STORE_ID
    events = [chain.add("sale_completed", {...}) for ...]   # seq 1 is origin_certified
    rehashed(event, body=...)                       # a forgery: new hash, old signature

Keys are derived from names, so a history built twice is the same bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edge.journal.chain import ChainHead, Event, event_hash
from edge.journal.signing import (
    HEADOFFICE,
    ORIGIN_CERTIFIED,
    Identity,
    headoffice_certified_body,
    headoffice_key_certificate,
    node_certified_body,
    public_hex,
    sign,
)
from edge.trust.certificates import cert_pem, issue_signing_certificate, make_store_ca

STORE_ID = "test-store"


@functools.cache
def store_ca(store_id: str = STORE_ID, seed: bytes = b"tests"
             ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return make_store_ca(store_id, seed=seed + store_id.encode())


def derived_key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"edge test key:" + name.encode()).digest())


@functools.cache
def identity(name: str = "node", store_id: str = STORE_ID, seed: bytes = b"tests",
             role: str = "node") -> Identity:
    """A node's signing identity, its certificate issued by `store_ca(store_id, seed)`."""
    ca_key, ca_cert = store_ca(store_id, seed)
    key = derived_key(f"{store_id}/{name}/{seed.hex()}/{role}")
    cert = issue_signing_certificate(ca_key, ca_cert, store_id, name, key.public_key(), role)
    return Identity(store_id, name, ca_cert, key, cert_pem(cert))


@dataclasses.dataclass(frozen=True)
class CANodeIdentity(Identity):
    """The identity of the node holding the store CA key (the one that vouches)."""

    ca_key: ec.EllipticCurvePrivateKey | None = None


@functools.cache
def ca_node_identity(name: str = "ca-node", store_id: str = STORE_ID,
                     seed: bytes = b"tests") -> CANodeIdentity:
    """`identity(name)` holding the store CA key too (`edge tls init`'s node)."""
    base = identity(name, store_id, seed)
    return CANodeIdentity(base.store_id, base.node_name, base.ca_cert, base.signing_key,
                          base.signing_cert_pem, ca_key=store_ca(store_id, seed)[0])


def headoffice_key(name: str = "headoffice") -> ed25519.Ed25519PrivateKey:
    return derived_key(f"head office {name}")


def headoffice_trusted(key: ed25519.Ed25519PrivateKey | None = None, store_id: str = STORE_ID,
                       seed: bytes = b"tests") -> dict[str, Any]:
    """A `headoffice_key_trusted` body: the store CA's certificate for head office's key."""
    ca_key, ca_cert = store_ca(store_id, seed)
    return {"cert": headoffice_key_certificate(ca_key, ca_cert, store_id,
                                               public_hex(key or headoffice_key()))}


class SignedChain:
    """One origin's chain, each event signed; its first event certifies its key."""

    def __init__(self, origin: str, signer: Identity | ed25519.Ed25519PrivateKey | None = None,
                 *, certify: bool = True, store_id: str = STORE_ID) -> None:
        self.origin = origin
        if signer is None:
            signer = headoffice_key() if origin.startswith("headoffice-") \
                else identity(origin, store_id)
        self.signer = signer
        self.head = ChainHead()
        self.events: list[Event] = []
        self._certify = certify

    @property
    def key(self) -> ed25519.Ed25519PrivateKey:
        signer = self.signer
        return signer if isinstance(signer, ed25519.Ed25519PrivateKey) else signer.signing_key

    def certified_body(self) -> dict[str, Any]:
        signer = self.signer
        if isinstance(signer, ed25519.Ed25519PrivateKey):
            return headoffice_certified_body(signer)
        return node_certified_body(signer)

    def add(self, type_: str, body: dict[str, Any], **fixed: Any) -> Event:
        """The next event (after the certificate, when this is the first), signed."""
        if self._certify and self.head.seq == 0 and type_ != ORIGIN_CERTIFIED:
            self.add(ORIGIN_CERTIFIED, self.certified_body())
        event = self.head.next(self.origin, type_, body)
        if fixed:  # a fixed id or time (a history built twice must be the same)
            event = rehashed(event, **fixed)
        event = sign(event, self.key)
        self.head = ChainHead(event.seq, event.hash)
        self.events.append(event)
        return event


def chain(origin: str, count: int, type_: str = "sale_completed",
          store_id: str = STORE_ID) -> list[Event]:
    """`origin_certified` then `count` events of `type_` (bodies `{"id", "total"}`)."""
    signed = SignedChain(origin, store_id=store_id)
    for number in range(1, count + 1):
        signed.add(type_, {"id": f"s{number}", "total": number})
    return signed.events


def rehashed(event: Event, **changes: Any) -> Event:
    """`event` changed and hashed again, keeping its signature (what a forger can do)."""
    changed = dataclasses.replace(event, **changes)
    return dataclasses.replace(changed, hash=event_hash(
        changed.origin, changed.seq, changed.id, changed.time, changed.type, changed.body,
        changed.prev_hash))


__all__ = ["HEADOFFICE", "STORE_ID", "CANodeIdentity", "SignedChain", "ca_node_identity", "chain",
           "derived_key", "headoffice_key", "headoffice_trusted", "identity", "rehashed",
           "store_ca"]
