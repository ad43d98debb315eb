"""Head office's key is certified by the store CA, never vouched for by a node.

Issue 9, point 2 ("a node cannot mint head office's catalogue events"). A
node of the store, certified or not, that records a key of its own as head
office's and then writes a `headoffice-` origin signed with it gets nothing
applied anywhere: peers refuse its record (logged) and hold its fake origin
back as a gap, so the real head office's origin keeps its name; `edge verify`
names both. The node holding the store CA key certifies head office's key
when its pull first meets it, and that certificate takes head office's
catalogue to every node; a node without the CA key that syncs alone applies
nothing and says, in its log and `edge status`, what it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from conftest import STORE_KEY, NodeUnderTest, free_port, node_of
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from headoffice_support import CertificateAuthority, HeadOffice, tuned_sync, wait_for
from signing_support import STORE_ID, SignedChain, identity, store_ca
from test_forged_events import Faker, ca_of, logged, node_identity

from edge.api.server import make_app
from edge.config import load_config
from edge.headoffice.catalogue import import_catalogue_csv
from edge.headoffice.protocol import PUSH_PATH
from edge.journal.chain import Event
from edge.journal.signing import public_hex
from edge.journal.store import Journal
from edge.journal.verify import verify_journal
from edge.status import collect_status, format_status
from edge.sync.client import Timing
from edge.trust.certificates import (
    cert_pem,
    check_signing_certificate,
    issue_signing_certificate,
    load_cert,
    make_store_ca,
)
from edge.trust.folder import TrustFolder

STORE = "demo-boulangerie"  # the store of store_node_config / write_store_config
FAKE = {"id": "p0001", "barcode": None, "name": "Baguette", "price": 1, "vat_rate": 550}
REAL = {**FAKE, "price": 120}
CATALOGUE = ("id,barcode,name,price,vat_rate,category\n"
             "ho-1,2100000000012,Tarte aux pommes,1850,550,Pâtisserie\n")


def certificate(ca_key: Any, ca_cert: x509.Certificate, key: ed25519.Ed25519PrivateKey,
                store: str, role: str = "headoffice") -> str:
    return cert_pem(issue_signing_certificate(ca_key, ca_cert, store, "head office",
                                              key.public_key(), role))


def products(data_dir: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT id, price FROM products"))
    finally:
        db.close()


def origins(data_dir: Path) -> set[str]:
    db = sqlite3.connect(f"file:{data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return {origin for (origin,) in db.execute("SELECT DISTINCT origin FROM events")}
    finally:
        db.close()


async def test_a_certified_node_cannot_make_its_own_key_head_offices(store_nodes) -> None:
    """h25's attack, over a real peer link: each way a node may vouch for a key is refused,
    logged, and nothing of the fake head office is applied; the real one then is."""
    (a,) = store_nodes(1)
    ca_key, ca_pem = ca_of(a)
    ca_cert = load_cert(ca_pem)
    before = products(a.data_dir)
    mine = ed25519.Ed25519PrivateKey.generate()
    other_ca_key, other_ca = make_store_ca(STORE)  # a CA of its own, naming the store
    rogue = node_identity(ca_key, ca_pem, "r0gue")  # a real node: it joined with a code
    attempts = [  # (origin, the record it writes, the key it signs head office's origin with)
        ("r1", {"public_key": public_hex(mine)}, mine),
        ("r2", {"cert": certificate(other_ca_key, other_ca, mine, STORE)}, mine),
        ("r3", {"cert": rogue.signing_cert_pem}, rogue.signing_key),  # its own, role node
    ]
    async with Faker(a) as faker:
        for origin, record, key in attempts:
            node = SignedChain(origin, node_identity(ca_key, ca_pem, origin))
            node.add("headoffice_key_trusted", record)
            fake = SignedChain("headoffice-abcdef", key)
            fake.add("product_upserted", FAKE)
            await faker.send(node.events + fake.events)
            await logged(a, f"peer faker sent events of {origin} that do not follow what this "
                            "node holds")
            await logged(a, f"{origin}#2: head office's key is not certified by this store's CA")
        assert faker.open
    assert "headoffice-abcdef" not in origins(a.data_dir)
    assert products(a.data_dir) == before

    # The real head office, its key certified by the store CA and relayed by any node,
    # is taken under that very origin name: the rogue took nothing first.
    real_key = ed25519.Ed25519PrivateKey.generate()
    relay = SignedChain("v1", node_identity(ca_key, ca_pem, "v1"))
    relay.add("headoffice_key_trusted", {"cert": certificate(ca_key, ca_cert, real_key, STORE)})
    real = SignedChain("headoffice-abcdef", real_key)
    real.add("product_upserted", REAL)
    async with Faker(a) as faker:
        await faker.send(relay.events + real.events)
        await wait_for(lambda: products(a.data_dir).get("p0001") == 120, 20,
                       "the real head office's price")


async def test_head_office_takes_a_head_office_key_record_only_with_the_store_cas_certificate(
        tmp_path: Path, ca: CertificateAuthority) -> None:
    ca_key, ca_cert = store_ca(STORE)
    headoffice = HeadOffice(f"sqlite://{tmp_path / 'headoffice.sqlite3'}", ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        mine = ed25519.Ed25519PrivateKey.generate()
        other_ca_key, other_ca = make_store_ca(STORE)
        connector = aiohttp.TCPConnector(ssl=ca.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:

            async def push(origin: str, record: dict[str, str]) -> tuple[int, Any]:
                chain = SignedChain(origin, identity(origin, STORE))
                chain.add("headoffice_key_trusted", record)
                body = {"node": origin, "store_ca": cert_pem(ca_cert), "events": [
                    {"position": n + 1, **e.as_dict()} for n, e in enumerate(chain.events)]}
                async with session.post(
                        f"{headoffice.url}{PUSH_PATH}", data=gzip.compress(orjson.dumps(body)),
                        headers={"Authorization": f"Bearer {token}",
                                 "Content-Encoding": "gzip"}) as response:
                    return response.status, await response.json()

            # The CA node's record: stored.
            status, answer = await push("n1", {"cert": certificate(ca_key, ca_cert, mine, STORE)})
            assert status == 200 and answer["conflicts"] == [], answer
            # A node's bare word: no longer an event of that type at all.
            status, answer = await push("r1", {"public_key": public_hex(mine)})
            assert (status, answer["error"]["code"]) == (400, "unfit_event"), answer
            # A certificate from a CA of its own: parked as a conflict.
            status, answer = await push(
                "r2", {"cert": certificate(other_ca_key, other_ca, mine, STORE)})
            assert status == 200, answer
            [conflict] = answer["conflicts"]
            assert conflict.startswith("r2#2: head office's key is not certified by this "
                                       "store's CA"), conflict
        stored = {(e.origin, e.seq) for e in await server.storage.events(STORE)}
        assert stored == {("n1", 1), ("n1", 2), ("r2", 1)}
    finally:
        await headoffice.stop()


async def _raw_journal(path: Path, events: list[Event]) -> None:
    """A journal holding `events` as they are: as if an intake had let them in."""
    journal = Journal(path, origin="observer", trust=identity("observer"))
    await journal.open()
    await journal.close()
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, sig) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.origin, e.seq, e.id, e.time, e.type, orjson.dumps(e.body).decode(),
              e.prev_hash, e.hash, e.sig) for e in events])
    db.close()


def _verify(path: Path) -> list[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return verify_journal(db, store_ca()[1], STORE_ID).problems
    finally:
        db.close()


async def test_edge_verify_takes_head_office_only_with_the_store_cas_certificate(
        tmp_path: Path) -> None:
    ca_key, ca_cert = store_ca()
    mine = ed25519.Ed25519PrivateKey.generate()
    rogue = SignedChain("r0gue1")  # a certified node of the store
    rogue.add("headoffice_key_trusted", {"public_key": public_hex(mine)})
    fake = SignedChain("headoffice-abcdef", mine)
    fake.add("product_upserted", FAKE)
    await _raw_journal(tmp_path / "forged.sqlite3", rogue.events + fake.events)
    problems = _verify(tmp_path / "forged.sqlite3")
    assert any(p.startswith("r0gue1#2: head office's key is not certified by this store's CA")
               for p in problems), problems
    assert any(p.startswith("headoffice-abcdef#1: head office's key here was never certified "
                            "by the store CA") for p in problems), problems

    relay = SignedChain("n1")
    relay.add("headoffice_key_trusted", {"cert": certificate(ca_key, ca_cert, mine, STORE_ID)})
    await _raw_journal(tmp_path / "certified.sqlite3", relay.events + fake.events)
    assert _verify(tmp_path / "certified.sqlite3") == []


def _write_config(folder: Path, port: int, peer_port: int, headoffice: HeadOffice,
                  token: str, ca: CertificateAuthority) -> Path:
    """One node of the demo store: data in `folder/data`, one peer, head office configured."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "store.key").write_text(STORE_KEY + "\n")
    (folder / "headoffice.token").write_text(token + "\n")
    path = folder / "edge.toml"
    path.write_text(
        f'[store]\nid = "{STORE}"\nkey_file = "store.key"\ndemo = true\n'
        f'[server]\ndata = "data"\nadvertise = false\nport = {port}\n'
        f'[peers]\nurls = ["http://127.0.0.1:{peer_port}"]\n'
        f'[headoffice]\nurl = "{headoffice.url}"\ntoken_file = "headoffice.token"\n'
        f'ca_file = "{ca.ca_file}"\n')
    return path


@contextlib.asynccontextmanager
async def peered_node(config_path: Path, holds_ca_key: bool) -> AsyncIterator[NodeUnderTest]:
    """A node in this process; without the CA key, its demo certificates are made first
    and the key removed (a node that joined with a code holds none)."""
    config = load_config(config_path)
    if not holds_ca_key:
        TrustFolder(config.data_dir).init_store(
            config.store_id, f"demo-{config_path.parent.name}", ["localhost"], ["127.0.0.1"],
            demo_seed=config.store_key())
        (config.data_dir / "tls" / "store-ca.key").unlink()
    timing = Timing(first_retry=0.02, max_retry=0.2, push_delay=0.01, pull_every=0.2,
                    timeout=10)
    with tuned_sync(timing):
        app = make_app(config)
        server = TestServer(app, host="127.0.0.1", port=config.port)
        await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield NodeUnderTest(f"http://127.0.0.1:{config.port}", config.data_dir, session, app)
    finally:
        await server.close()


async def test_the_ca_node_certifies_head_office_and_a_node_without_the_ca_key_waits_for_it(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(f"sqlite://{tmp_path / 'headoffice.sqlite3'}", ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        await import_catalogue_csv(server.storage, CATALOGUE)
        a_port, b_port = free_port(), free_port()
        a_config = _write_config(tmp_path / "a", a_port, b_port, headoffice, token, ca)
        b_config = _write_config(tmp_path / "b", b_port, a_port, headoffice, token, ca)
        async with peered_node(b_config, holds_ca_key=False) as b:
            # Alone (its peer, the CA node, is not up): it applies nothing and says why.
            b_sync = node_of(b).sync
            await wait_for(lambda: "not certified by the store CA" in (b_sync.last_error or ""),
                           30, "the node without the CA key to say what it waits for")
            assert "ho-1" not in products(b.data_dir)
            assert not any(o.startswith("headoffice-") for o in origins(b.data_dir))
            status = await asyncio.to_thread(collect_status, load_config(b_config))
            status = format_status(status)  # as `edge status` shows it (no peer heard yet)
            assert "peers:\n  none yet" in status
            assert "the node holding the store CA key" in status
            assert "must sync with head office once" in status
            assert b_sync.counters.failures == 0  # head office answered: no backoff

            async with peered_node(a_config, holds_ca_key=True) as a:
                await wait_for(lambda: products(a.data_dir).get("ho-1") == 1850, 30,
                               "the catalogue on the CA node")
                db = sqlite3.connect(f"file:{a.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
                try:
                    records = db.execute("SELECT origin, body FROM events "
                                         "WHERE type = 'headoffice_key_trusted'").fetchall()
                    (headoffice_key,) = db.execute(
                        "SELECT public_key FROM origin_keys WHERE role = 'headoffice'"
                    ).fetchone()
                finally:
                    db.close()
                [(origin, body)] = records
                assert origin == node_of(a).node_id
                signer = check_signing_certificate(orjson.loads(body)["cert"],
                                                   node_of(a).trust.ca_cert, STORE)
                assert signer.role == "headoffice"
                assert public_hex(signer.public_key) == headoffice_key

                # The certificate reaches B from its peer, and the catalogue with it.
                await wait_for(lambda: products(b.data_dir).get("ho-1") == 1850, 30,
                               "the catalogue on the node without the CA key")
                await wait_for(lambda: b_sync.state == "ok", 30, "its own pull to go through")
                db = sqlite3.connect(f"file:{b.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
                try:
                    assert verify_journal(db, node_of(b).trust.ca_cert, STORE).problems == []
                finally:
                    db.close()
    finally:
        await headoffice.stop()
