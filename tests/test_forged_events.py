"""Forged events of every kind are refused, logged and change nothing, everywhere.

Issue 9, acceptance 2 (the forged-events half). A peer that passed the store
key handshake (on loopback plain HTTP: the attacker of issue 9 relayed it) and
then sends events: unsigned, signed by a key the store CA never certified, a
real node's key signing for another origin, a node writing under a head-office
origin, an event re-hashed with its old signature, an origin whose first event
certifies nothing, a certificate from another CA or for another store, and
events of the node's own origin it never wrote. A real node refuses each, logs
why, applies nothing, and the link and the store go on. Head office refuses
the same pushed to it, and a store CA other than the one it pinned; `edge
verify` names an event re-hashed without its origin's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from conftest import EDGE, STORE_KEY, EdgeProcess
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from headoffice_support import CertificateAuthority, HeadOffice
from signing_support import SignedChain, identity, rehashed, store_ca
from test_peers import BARCODES, journal_of, pair

from edge.headoffice.protocol import PUSH_PATH
from edge.journal.chain import ChainHead, Event, event_from_dict
from edge.journal.signing import Identity, sign
from edge.replication.peers import proof
from edge.till_client import TillClient
from edge.trust.certificates import cert_pem, issue_signing_certificate, load_cert, make_store_ca

STORE = "demo-boulangerie"  # store_node_config's


def node_identity(ca_key: ec.EllipticCurvePrivateKey, ca_pem: str, name: str,
                  store: str = STORE, role: str = "node") -> Identity:
    """A signing key with a certificate from `ca_key` (a real node of the store, or not)."""
    key = ed25519.Ed25519PrivateKey.generate()
    ca_cert = load_cert(ca_pem)
    cert = issue_signing_certificate(ca_key, ca_cert, store, name, key.public_key(), role)
    return Identity(store, name, ca_cert, key, cert_pem(cert))


def forgeries(ca_key: ec.EllipticCurvePrivateKey, ca_pem: str, store: str = STORE
              ) -> tuple[list[list[Event]], list[tuple[str, str]]]:
    """(batches to send, [(origin, why it must be refused)]). Origins v1 and w1 are real
    nodes (their keys certified by the store CA): what they sign as themselves is taken."""
    valid = node_identity(ca_key, ca_pem, "v1", store)
    other_valid = node_identity(ca_key, ca_pem, "w1", store)
    batches: list[list[Event]] = []
    refused: list[tuple[str, str]] = []

    # Unsigned: a real certificate, no signature; and a certified origin's unsigned #2.
    unsigned = SignedChain("u1", node_identity(ca_key, ca_pem, "u1", store))
    unsigned.add("origin_certified", unsigned.certified_body())
    batches.append([dataclasses.replace(unsigned.events[0], sig="")])
    refused.append(("u1", "u1#1: not signed"))
    later = SignedChain("t1", node_identity(ca_key, ca_pem, "t1", store))
    later.add("product_delisted", {"id": "p0001"})
    batches.append([later.events[0], dataclasses.replace(later.events[1], sig="")])
    refused.append(("t1", "t1#2: not signed"))

    # Signed by a key the CA never certified (the certificate names another key).
    stolen_cert = SignedChain("k1", node_identity(ca_key, ca_pem, "k1", store))
    stolen_cert.add("origin_certified", stolen_cert.certified_body())
    batches.append([sign(stolen_cert.events[0], ed25519.Ed25519PrivateKey.generate())])
    refused.append(("k1", "k1#1: the signature does not verify with its origin's key"))

    # A real node's key signing as another (real) origin.
    w1 = SignedChain("w1", other_valid)
    w1.add("product_delisted", {"id": "p0001"})
    batches.append([w1.events[0], sign(w1.events[1], valid.signing_key)])
    refused.append(("w1", "w1#2: the signature does not verify with its origin's key"))

    # A node writing under a head-office origin, with its own (valid) certificate.
    as_headoffice = SignedChain("headoffice-f00d01", valid)
    as_headoffice.add("product_upserted", {"id": "p0001", "barcode": BARCODES[0],
                                           "name": "Baguette", "price": 1, "vat_rate": 550})
    batches.append(as_headoffice.events)
    refused.append(("headoffice-f00d01", "a head-office origin certified as 'node'"))

    # Re-hashed with its old signature: a real node's sale made 1 cent.
    v1 = SignedChain("v1", valid)
    v1.add("product_delisted", {"id": "p0002"})
    genuine = v1.add("product_upserted", {"id": "p0001", "barcode": BARCODES[0],
                                          "name": "Baguette", "price": 120, "vat_rate": 550})
    batches.append([*v1.events[:2], rehashed(genuine, body={**genuine.body, "price": 1})])
    refused.append(("v1", "v1#3: the signature does not verify with its origin's key"))

    # An origin whose first event certifies nothing.
    uncertified = SignedChain("x1", valid, certify=False)
    uncertified.add("product_delisted", {"id": "p0001"})
    batches.append(uncertified.events)
    refused.append(("x1", "x1#1: an origin's first event must be origin_certified"))

    # A certificate from another CA (same store name), or from ours for another store,
    # or for head office's role certifying a node's origin.
    other_ca_key, other_ca = make_store_ca(store)
    for origin, signer, why in (
        ("y1", node_identity(other_ca_key, cert_pem(other_ca), "y1", store),
         "not issued by this store's CA"),
        ("z1", node_identity(ca_key, ca_pem, "z1", store="another-store"),
         "issued for another store"),
        ("r1", node_identity(ca_key, ca_pem, "r1", store, role="headoffice"),
         "a headoffice certificate cannot certify a node's origin"),
    ):
        chain = SignedChain(origin, signer)
        chain.add("product_delisted", {"id": "p0001"})
        batches.append(chain.events)
        refused.append((origin, why))
    return batches, refused


class Faker:
    """A peer that passed the store-key handshake (as issue 9's relay did) and sends events."""

    def __init__(self, node: EdgeProcess) -> None:
        self.node = node
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._drain: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Faker:
        self._session = aiohttp.ClientSession()
        self.ws = await self._session.ws_connect(f"{self.node.url}/api/peer")
        hello = json.loads((await self.ws.receive()).data)
        mine = "1" * 32
        await self.ws.send_json({
            "type": "hello", "protocol": 1, "store": STORE, "node": "faker",
            "url": "http://127.0.0.1:1", "nonce": mine,
            "proof": proof(STORE_KEY.encode(), "dialer", (hello["nonce"], mine), "faker"),
        })
        assert json.loads((await self.ws.receive()).data)["type"] == "welcome"
        self._drain = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for _ in self.ws:  # its vectors and pings, until it closes
            pass

    async def send(self, events: list[Event]) -> None:
        assert self.ws is not None
        await self.ws.send_json({"type": "events", "events": [e.as_dict() for e in events]})

    @property
    def open(self) -> bool:
        return self.ws is not None and not self.ws.closed

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)
        if self._session is not None:
            await self._session.close()


def own_events(node: EdgeProcess) -> list[Event]:
    conn = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT origin, seq, id, time, type, body, prev_hash, hash, sig "
                            "FROM events WHERE origin = ? ORDER BY seq",
                            (node.node_id,)).fetchall()
    finally:
        conn.close()
    keys = ("origin", "seq", "id", "time", "type", "body", "prev_hash", "hash", "sig")
    return [event_from_dict({**dict(zip(keys, row, strict=True)), "body": json.loads(row[5])})
            for row in rows]


async def logged(node: EdgeProcess, words: str, within: float = 10) -> None:
    for _ in range(int(within / 0.05)):
        if words in node.log.read_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not in the log: {words!r}\n{node.log.read_text()[-3000:]}")


def ca_of(node: EdgeProcess) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """The store CA's key (a demo's first node holds it) and certificate: what the store
    issues its real nodes' certificates with."""
    key = serialization.load_pem_private_key(
        (node.data_dir / "tls" / "store-ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, node.ca_file.read_text()


async def test_forged_events_of_every_kind_are_refused_logged_and_change_nothing(
    store_nodes,
) -> None:
    (a,) = store_nodes(1)
    before = set(journal_of(a))
    ca_key, ca_pem = ca_of(a)
    batches, refused = forgeries(ca_key, ca_pem)
    async with Faker(a) as faker:
        for batch in batches:
            await faker.send(batch)
        for origin, why in refused:
            await logged(a, f"peer faker sent events of {origin} that do not follow what this "
                            "node holds")
            await logged(a, why)
        assert faker.open, "the link goes on: only the forged origins are held back"
    after = set(journal_of(a))
    taken = {origin for origin, _, _ in after - before}
    # Only what real nodes signed as themselves: v1's and w1's first events, t1's #1.
    assert taken <= {"v1", "w1", "t1"}, taken
    assert {(o, s) for o, s, _ in after - before} == {("v1", 1), ("v1", 2), ("w1", 1), ("t1", 1)}
    for origin, _ in refused:
        held = {seq for o, seq, _ in after if o == origin}
        assert held <= {1, 2}, (origin, held)
    assert before <= after

    # Events of the node's own origin it never wrote, not signed with its key: forgeries,
    # refused like any other (a node stops only for its own key's signature: a clone).
    mine = own_events(a)
    head = ChainHead(mine[-1].seq, mine[-1].hash)
    next_one = sign(head.next(a.node_id, "product_delisted", {"id": "p0001"}),
                    ed25519.Ed25519PrivateKey.generate())
    sale_like = next(e for e in mine if e.type == "product_upserted")
    one_cent = rehashed(sale_like, body={**sale_like.body, "price": 1})
    for forged in (next_one, one_cent):
        async with Faker(a) as faker:
            await faker.send([forged])
            await logged(a, f"{a.node_id}#{forged.seq}: an event of this node's own origin "
                            "that it never wrote, not signed with its key: forged")
            assert faker.open
    assert own_events(a) == mine
    assert a.proc is not None and a.proc.poll() is None

    # The store goes on: a till pairs and sells on it.
    token = await pair(a, "after the forgeries")
    async with TillClient([a.url], token, "alice", "1234") as till:
        sale = await till.sell(BARCODES[:1], 200)
    assert sale["id"]
    products = sqlite3.connect(f"file:{a.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        prices = [row[0] for row in products.execute("SELECT price FROM products")]
    finally:
        products.close()
    assert 1 not in prices, "no forged 1-cent price reached the catalogue"


async def test_a_clone_signing_with_the_nodes_own_key_still_stops_it(store_nodes) -> None:
    """Signed with the node's own key, an event of its origin it never wrote means a copy of
    its data folder runs elsewhere: it stops writing and restarts under a new origin."""
    (a,) = store_nodes(1)
    mine = own_events(a)
    key = serialization.load_pem_private_key(
        (a.data_dir / "tls" / "signing.key").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    head = ChainHead(mine[-1].seq, mine[-1].hash)
    clone = sign(head.next(a.node_id, "product_delisted", {"id": "p0001"}), key)
    before = a.node_id
    async with Faker(a) as faker:
        await faker.send([clone])
        assert a.proc is not None and await asyncio.to_thread(a.proc.wait, 20) == 3
    assert "a copy of this data folder may be running elsewhere" in a.log.read_text()
    assert own_events(a) == mine
    a.start()
    assert a.node_id != before


async def test_head_office_refuses_forged_pushes_and_another_store_ca(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority,
) -> None:
    store = "paris-11"
    ca_key, ca_cert = store_ca(store)
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(store)
        connector = aiohttp.TCPConnector(ssl=ca.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:

            async def push(events: list[Event], store_ca: str | None = cert_pem(ca_cert),
                           first: int = 1) -> tuple[int, dict[str, Any]]:
                body: dict[str, Any] = {"node": "n1", "events": [
                    {"position": first + n, **e.as_dict()} for n, e in enumerate(events)]}
                if store_ca is not None:
                    body["store_ca"] = store_ca
                async with session.post(
                        f"{headoffice.url}{PUSH_PATH}", data=gzip.compress(orjson.dumps(body)),
                        headers={"Authorization": f"Bearer {token}",
                                 "Content-Encoding": "gzip"}) as response:
                    return response.status, await response.json()

            # No CA pinned and none sent: nothing can be checked, nothing is stored.
            honest = SignedChain("n1", identity("n1", store))
            honest.add("product_delisted", {"id": "p1"})
            status, answer = await push(honest.events, store_ca=None)
            assert (status, answer["error"]["code"]) == (400, "store_ca_required")
            status, answer = await push(honest.events)  # the first push pins the store CA
            assert status == 200 and answer["stored"] == 2 and answer["conflicts"] == []

            batches, refused = forgeries(ca_key, cert_pem(ca_cert), store)
            batches = [[dataclasses.replace(e) for e in batch] for batch in batches]
            conflicts: list[str] = []
            for number, batch in enumerate(batches):
                batch = [e for e in batch if not e.origin.startswith("headoffice-")]
                if not batch:
                    continue
                status, answer = await push(batch, first=100 * (number + 1))
                assert status == 200, answer
                conflicts += answer["conflicts"]
            for origin, why in refused:
                if origin.startswith("headoffice-"):
                    continue  # head office's own origins: a store's copy of them is skipped
                assert any(c.startswith(f"{origin}#") and why.split(": ")[-1] in c
                           for c in conflicts), (origin, why, conflicts)
            stored = {(e.origin, e.seq) for e in await server.storage.events(store)}
            assert stored == {("n1", 1), ("n1", 2), ("v1", 1), ("v1", 2), ("w1", 1), ("t1", 1)}
            # Sales and prices: nothing forged at head office either.
            assert await server.storage.sale_ids(store) == []

            # Another CA for the store, later: refused, nothing stored.
            other_key, other_ca = make_store_ca(store)
            intruder = SignedChain("m1", node_identity(other_key, cert_pem(other_ca), "m1",
                                                       store=store))
            intruder.add("product_delisted", {"id": "p1"})
            status, answer = await push(intruder.events, store_ca=cert_pem(other_ca),
                                        first=5000)
            assert (status, answer["error"]["code"]) == (409, "store_ca_changed")
            assert "m1" not in {e.origin for e in await server.storage.events(store)}
            # The store's own pushes go on.
            honest.add("product_delisted", {"id": "p2"})
            status, answer = await push(honest.events[2:], first=6000)
            assert status == 200 and answer["stored"] == 1
    finally:
        await headoffice.stop()


def rehash_from(db: sqlite3.Connection, origin: str, seq: int, body: dict[str, Any]) -> None:
    """Change one event and hash it and every later event of its origin again (a forger
    without the key keeps their old signatures): every chain still holds."""
    rows = db.execute("SELECT origin, seq, id, time, type, body, prev_hash, hash, sig "
                      "FROM events WHERE origin = ? AND seq >= ? ORDER BY seq",
                      (origin, seq)).fetchall()
    keys = ("origin", "seq", "id", "time", "type", "body", "prev_hash", "hash", "sig")
    prev = None
    for row in rows:
        event = event_from_dict({**dict(zip(keys, row, strict=True)), "body": json.loads(row[5])})
        changes: dict[str, Any] = {}
        if event.seq == seq:
            changes["body"] = body
        if prev is not None:
            changes["prev_hash"] = prev
        forged = rehashed(event, **changes)
        db.execute("UPDATE events SET body = ?, prev_hash = ?, hash = ? WHERE origin = ? "
                   "AND seq = ?", (orjson.dumps(forged.body, option=orjson.OPT_SORT_KEYS)
                                   .decode(), forged.prev_hash, forged.hash, origin, event.seq))
        prev = forged.hash


def test_edge_verify_rejects_a_journal_with_an_event_rehashed_without_its_key(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    edge_process.stop()
    data = edge_process.data_dir

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*EDGE, "verify", "--data", str(data), *extra],
                              capture_output=True, text=True, timeout=60)

    ok = verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "every signature verified" in ok.stdout
    db = sqlite3.connect(data / "edge.sqlite3")
    with db:
        origin, seq, body = db.execute(
            "SELECT origin, seq, body FROM events WHERE type = 'product_upserted' "
            "AND body LIKE '%Baguette tradition%'").fetchone()
        rehash_from(db, origin, seq, {**json.loads(body), "price": 1})
    db.close()
    broken = verify()
    assert broken.returncode == 1, broken.stdout
    assert "hash does not match" not in broken.stdout and "prev_hash" not in broken.stdout
    assert (f"{origin}#{seq}: the signature does not verify with its origin's key"
            in broken.stdout.splitlines()[1])
    # Against another store's CA, even the untouched events fail: every one is named.
    other = data.parent / "other-ca.pem"
    other.write_text(cert_pem(make_store_ca("demo-boulangerie")[1]))
    assert "not issued by this store's CA" in verify("--ca", str(other)).stdout
