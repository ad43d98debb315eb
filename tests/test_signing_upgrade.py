"""Events written before signing, after the upgrade: vouched for, taken, and never faked.

The node holding the store CA key vouches, as the CA, for the last event it
holds of every origin written before signing (`unsigned_heads_vouched`,
edge/journal/vouches.py): peers and head office then take those origins'
events from anyone, as far as a vouch covers them, so a node added later
gets the store's history. A vouch of any other node is refused (h28: any
certified node could vouch a forged history in), and what only a non-CA node
held stays on it, said in words. `edge verify` and `edge restore` decide what
may be unsigned from those signed vouches alone, never from the file's own
tables or schema number. Journals from before signing are built here by hand
as an edge of schema 18 wrote them (unsigned events, no `sig` column).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from conftest import EDGE, ROOT, STORE_KEY, EdgeProcess, free_port, start_all, store_node_config
from cryptography.hazmat.primitives.asymmetric import ed25519
from signing_support import SignedChain, ca_node_identity, identity, store_ca

from edge.api import commands  # noqa: F401  (registers the projections)
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.backup import BackupError, restore
from edge.journal.chain import ChainError, ChainGap, ChainHead, Event, event_hash
from edge.journal.migrations import MIGRATIONS
from edge.journal.signing import SignatureRefused, headoffice_key_certificate, public_hex
from edge.journal.store import EVENT_COLUMNS, Journal, Tx
from edge.journal.verify import verify_journal
from edge.journal.vouches import (
    NotVouched,
    Unproven,
    VouchConflict,
    ca_vouch_body,
    ca_vouch_valid,
)
from edge.trust.certificates import cert_pem, make_store_ca
from edge.trust.folder import CA_KEY, TrustFolder

STORE = "paris-11"


def product(number: str) -> dict[str, object]:
    return {"id": f"p-{number}", "barcode": None, "name": f"Pain {number}", "price": 120,
            "vat_rate": 550}


def unsigned_chain(origin: str, count: int, first: int = 1) -> list[Event]:
    """`count` events of `origin` as an edge from before signing wrote them (no `sig`)."""
    head, events = ChainHead(), []
    for number in range(first, first + count):
        event = head.next(origin, "product_upserted", product(f"{origin}-{number}"))
        head = ChainHead(event.seq, event.hash)
        events.append(event)
    return events


def legacy_journal(path: Path, own: str, events: list[Event]) -> None:
    """A journal at schema 18 (before signing) holding `events`, writing as `own`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for number, script in enumerate(MIGRATIONS[:18], start=1):
            db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        db.execute("BEGIN")
        for event in events:
            db.execute("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (event.origin, event.seq, event.id, event.time, event.type,
                        orjson.dumps(event.body, option=orjson.OPT_SORT_KEYS).decode(),
                        event.prev_hash, event.hash))
            project_as_before_signing(db, event)
        db.execute("INSERT INTO meta (key, value) VALUES ('origin', ?)", (own,))
        db.execute("COMMIT")
    finally:
        db.close()


def project_as_before_signing(db: sqlite3.Connection, event: Event) -> None:
    """A listing as the edge of schema 18 projected it (today's projection needs the
    columns later steps add); the upgrade's migrations take it from there."""
    assert event.type == "product_upserted", event.type
    body = event.body
    db.execute(
        "INSERT INTO products (id, barcode, declared_barcode, name, price, vat_rate, category, "
        "listed_time, listed_hash, active) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, 1)",
        (body["id"], body["barcode"], body["barcode"], body["name"], body["price"],
         body["vat_rate"], event.time, event.hash))


def insert_unsigned(db: sqlite3.Connection, events: list[Event]) -> None:
    """Slip events into a journal file as a forger with no key would."""
    db.executemany("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, sig) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
                   [(e.origin, e.seq, e.id, e.time, e.type,
                     orjson.dumps(e.body, option=orjson.OPT_SORT_KEYS).decode(), e.prev_hash,
                     e.hash) for e in events])


def vouch(voucher: str, heads: list[Event], store_id: str = "test-store",
          by_ca: bool = True) -> list[Event]:
    """`voucher`'s chain: its certificate, then a vouch for each of `heads`, signed by
    the store CA (`by_ca`), or carrying the node's own signature only."""
    chain = SignedChain(voucher, store_id=store_id)
    heads_body = [{"origin": e.origin, "seq": e.seq, "hash": e.hash} for e in heads]
    chain.add("unsigned_heads_vouched", ca_vouch_body(heads_body, store_ca(store_id)[0])
              if by_ca else {"heads": heads_body})
    return chain.events


async def apply(journal: Journal, events: list[Event]) -> list[bool]:
    return await journal.write(lambda tx: [tx.apply(event) for event in events])


@pytest.fixture
async def observer(tmp_path: Path) -> AsyncIterator[Journal]:
    """A node that holds nothing from before signing (added after the upgrade)."""
    journal = Journal(tmp_path / "observer.sqlite3", origin="observer",
                      trust=identity("observer"))
    await journal.open()
    yield journal
    await journal.close()


# The journal: the upgrade vouches once, peers take what a vouch covers.

async def test_an_upgraded_journal_vouches_once_for_every_origin_from_before_signing(
    tmp_path: Path,
) -> None:
    own, peer = unsigned_chain("a1b2c3", 3), unsigned_chain("d4e5f6", 2)
    path = tmp_path / "data" / "edge.sqlite3"
    legacy_journal(path, "a1b2c3", own + peer)
    for _ in range(2):  # opened again: no second vouch
        journal = Journal(path, trust=ca_node_identity("upgraded"))
        await journal.open()
        try:
            events = [e async for e in journal.events(journal.origin)]
        finally:
            await journal.close()
    assert [e.type for e in events] == ["origin_certified", "origin_started",
                                        "unsigned_heads_vouched"]
    assert events[1].body["reason"] == "journal_from_before_signing"
    assert events[2].body["heads"] == [
        {"origin": "a1b2c3", "seq": 3, "hash": own[-1].hash},
        {"origin": "d4e5f6", "seq": 2, "hash": peer[-1].hash}]
    assert events[2].sig  # signed by the node's certified key
    assert ca_vouch_valid(events[2].body, store_ca()[1])  # and by the store CA


async def test_a_peer_takes_events_from_before_signing_as_far_as_a_vouch_covers_them(
    observer: Journal,
) -> None:
    old = unsigned_chain("a1b2c3", 3)
    # Nobody vouched yet: a gap, asked for again later, not a forgery.
    with pytest.raises(NotVouched, match="not vouched for by the store CA"):
        await apply(observer, old[:1])
    assert issubclass(NotVouched, ChainGap)
    await apply(observer, vouch("n1", [old[1]]))  # n1 held it up to #2 at its upgrade
    # #1 is below the vouch: staged until #2 (the vouched head) proves it, then both.
    assert await apply(observer, old[:2]) == [False, True]
    assert (await observer.version_vector())["a1b2c3"] == 2
    with pytest.raises(NotVouched, match=r"vouched up to #2 only"):
        await apply(observer, old[2:])
    # Another node that held more vouches further: the rest comes in.
    await apply(observer, vouch("n2", [old[2]]))
    assert await apply(observer, old[2:]) == [True]
    row = await observer.read_one("SELECT name FROM products WHERE id = 'p-a1b2c3-3'")
    assert row is not None


async def test_an_event_from_before_signing_that_is_not_the_vouched_one_is_refused(
    observer: Journal,
) -> None:
    old = unsigned_chain("a1b2c3", 2)
    rival = unsigned_chain("a1b2c3", 2)  # same origin, other events: a fork or a forgery
    await apply(observer, vouch("n1", [old[1]]))
    assert await apply(observer, rival[:1]) == [False]  # below the vouch: staged, not taken
    with pytest.raises(VouchConflict, match="not the event n1 vouched for"):
        await apply(observer, rival[1:])
    assert await observer.read_one("SELECT 1 FROM events WHERE origin = 'a1b2c3'") is None
    assert await apply(observer, old) == [False, True]  # the vouched run: taken whole


async def test_a_forged_start_below_the_vouch_is_not_taken_and_the_real_history_is(
    observer: Journal, caplog: pytest.LogCaptureFixture,
) -> None:
    """h30: a certified peer hands a node lacking an old origin a forged #1..#k below the
    vouched #N (a manager PIN, a paired till...): staged, never projected, and dropped as
    forged once the real run reaches the vouched head."""
    real = unsigned_chain("a1b2c3", 4)
    forged = unsigned_events("a1b2c3", [
        ("cashier_added", {"id": "mgr", "name": "Marie", "role": "manager", "pin_salt": "bb",
                           "pin_hash": "00" * 32}),
        ("till_paired", {"code": "T99", "name": "evil", "token_sha256": "00" * 32}),
        ("product_upserted", {**product("a1b2c3-3"), "price": 1}),
    ])
    await apply(observer, vouch("ca-node", [real[-1]]))
    assert await apply_each(observer, forged) == ["held"] * 3  # staged, not taken
    assert await observer.read_one("SELECT 1 FROM cashiers WHERE id = 'mgr'") is None
    assert (await observer.version_vector()).get("a1b2c3") is None
    assert await apply_each(observer, real) == ["held", "held", "held", "new"]
    assert (await observer.version_vector())["a1b2c3"] == 4
    assert [row[0] for row in await observer.read_all(
        "SELECT hash FROM events WHERE origin = 'a1b2c3' ORDER BY seq")] == [
        event.hash for event in real]
    assert "not on the chain the store CA vouched for: forged" in caplog.text
    assert len(observer.staged) == 0


async def test_a_vouched_head_without_the_run_below_it_is_a_gap(observer: Journal) -> None:
    real = unsigned_chain("a1b2c3", 3)
    await apply(observer, vouch("ca-node", [real[-1]]))
    with pytest.raises(Unproven, match="not all here"):
        await apply(observer, real[2:])
    assert issubclass(Unproven, ChainGap)  # asked for again, not refused
    assert await apply(observer, real[:1]) == [False]
    with pytest.raises(Unproven):
        await apply(observer, real[2:])  # #2 still missing: the run does not link
    assert await apply(observer, real[1:2]) == [True]  # completes #1..#3, in order
    assert (await observer.version_vector())["a1b2c3"] == 3


async def test_two_vouches_naming_different_events_at_one_seq_are_a_fork(
    observer: Journal,
) -> None:
    old, rival = unsigned_chain("a1b2c3", 2), unsigned_chain("a1b2c3", 2)
    await apply(observer, vouch("n1", [old[1]]))
    await apply(observer, vouch("n2", [dataclasses.replace(old[1], hash=rival[1].hash)]))
    await apply(observer, old[:1])
    with pytest.raises(VouchConflict, match="vouched for with different hashes"):
        await apply(observer, old[1:])


# Real nodes: one was off during the upgrade, one is added after it.

def products(node: EdgeProcess) -> set[str]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT id FROM products WHERE id LIKE 'p-%'")}
    finally:
        db.close()


def joined_without_the_ca_key(node: EdgeProcess, name: str) -> None:
    """Give a demo node its certificates as it would make them, less the CA key: a node
    joined to the store (`edge tls join`), not the one holding the store CA."""
    folder = TrustFolder(node.data_dir)
    folder.init_store("demo-boulangerie", name, ["localhost"], ["127.0.0.1"],
                      demo_seed=STORE_KEY.encode())
    (folder.path / CA_KEY).unlink()


async def test_after_the_upgrade_the_ca_node_vouches_and_what_only_another_node_held_stays(
    tmp_path: Path,
) -> None:
    a_old, b_old = unsigned_chain("aaaaaa", 2), unsigned_chain("bbbbbb", 2)
    ports = [free_port() for _ in range(3)]
    nodes, configs = [], []
    for n, port in enumerate(ports):
        peers = [f"http://127.0.0.1:{p}" for p in ports if p != port]
        configs.append(store_node_config(tmp_path / f"n{n}", peers))
        nodes.append(EdgeProcess(tmp_path / f"n{n}" / "data", port,
                                 ["--config", str(configs[-1])]))
    a, b, c = nodes  # a holds the store CA key (its demo certificates keep it)
    legacy_journal(a.data_dir / "edge.sqlite3", "aaaaaa", a_old + b_old[:1])
    # b was stopped before its last sale reached a; c is added after the upgrade.
    legacy_journal(b.data_dir / "edge.sqlite3", "bbbbbb", a_old[:1] + b_old)
    joined_without_the_ca_key(b, "b")
    joined_without_the_ca_key(c, "c")
    vouched = {"p-aaaaaa-1", "p-aaaaaa-2", "p-bbbbbb-1"}
    try:
        start_all(*nodes)
        for _ in range(300):
            if products(b) >= vouched and products(c) == vouched:
                break
            await asyncio.sleep(0.1)
        # The CA node's vouch brings everything it held to the others, c included.
        assert products(a) == vouched and products(c) == vouched
        # b's last sale from before signing: no CA vouch names it, it stays on b.
        assert products(b) == vouched | {"p-bbbbbb-2"}
        for node in nodes:
            assert node.proc.poll() is None  # nothing crashed on it
            log = node.log.read_text()
            assert "tampered or forked" not in log and "Traceback" not in log
            assert log.count("bbbbbb#2: written before signing and not vouched") <= 1
        assert b.log.read_text().count("does not hold the store CA key") == 1
        said = await asyncio.to_thread(
            subprocess.run,
            [*EDGE, "status", "--config", str(configs[1]), "--data", str(b.data_dir)],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert "bbbbbb #2 to #2: written before signing, held on this node only" in said.stdout, \
            said.stdout + said.stderr
    finally:
        for node in nodes:
            node.stop()


# h28's attacks: a certified node that is not the CA node vouches for forged history.

PRODUCT = {"id": "p1", "barcode": None, "name": "Pain", "price": 1, "vat_rate": 550}


def unsigned_events(origin: str, items: list[tuple[str, dict[str, object]]]) -> list[Event]:
    head, events = ChainHead(), []
    for type_, body in items:
        event = head.next(origin, type_, body)
        head = ChainHead(event.seq, event.hash)
        events.append(event)
    return events


async def apply_each(journal: Journal, events: list[Event]) -> list[str]:
    """What became of each event applied alone: "new", "held" or the error's class."""
    seen = []
    for event in events:
        try:
            seen.append("new" if await journal.write(lambda tx, e=event: tx.apply(e)) else "held")
        except ChainError as error:
            seen.append(type(error).__name__)
    return seen


async def test_a_vouch_not_signed_by_the_store_ca_is_refused_and_vouches_for_nothing(
    observer: Journal, tmp_path: Path,
) -> None:
    fake = unsigned_events("headoffice-abcdef", [("product_upserted", PRODUCT)])
    forged = vouch("r0gue1", fake, by_ca=False)
    assert await apply_each(observer, forged + fake) == ["new", "SignatureRefused", "NotVouched"]
    assert await observer.read_one("SELECT price FROM products WHERE id = 'p1'") is None
    # Nor does it pass as unsigned history (its type never was) or get past `edge verify`.
    unsigned_vouch = unsigned_events("a1b2c3", [("unsigned_heads_vouched", {"heads": [
        {"origin": "headoffice-abcdef", "seq": 1, "hash": fake[0].hash}]})])
    with pytest.raises(SignatureRefused, match="unsigned unsigned_heads_vouched"):
        await apply(observer, unsigned_vouch)
    db = sqlite3.connect(observer.path)
    with db:
        db.execute(f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (forged[1].origin, forged[1].seq, forged[1].id, forged[1].time,
                    forged[1].type, orjson.dumps(forged[1].body).decode(), forged[1].prev_hash,
                    forged[1].hash, forged[1].sig))
        db.execute("INSERT OR IGNORE INTO unsigned_vouches (origin, seq, hash, voucher) "
                   "VALUES ('headoffice-abcdef', 1, ?, 'r0gue1')", (fake[0].hash,))
        insert_unsigned(db, fake)
    report = verify_journal(db, store_ca()[1], "test-store")
    db.close()
    assert any("not signed by the store CA" in p for p in report.problems), report.problems
    assert any(p.startswith("headoffice-abcdef#1: unsigned, and no signed vouch covers it")
               for p in report.problems), report.problems


async def test_an_unsigned_headoffice_key_trusted_is_never_history_from_before_signing(
    observer: Journal,
) -> None:
    # h28 2: its projection took a foreign CA's key unchecked; even vouched by the CA
    # itself, no edge from before signing wrote one.
    mine = ed25519.Ed25519PrivateKey.generate()
    evil_key, evil_ca = make_store_ca("test-store", seed=b"evil")
    cert = headoffice_key_certificate(evil_key, evil_ca, "test-store", public_hex(mine))
    legacy = unsigned_events("a1b2c3", [("headoffice_key_trusted", {"cert": cert})])
    fake_ho = SignedChain("headoffice-abcdef", mine)
    fake_ho.add("product_upserted", PRODUCT)
    for voucher in (vouch("r0gue1", legacy, by_ca=False), vouch("n1", legacy)):
        await apply_each(observer, voucher)
    assert await apply_each(observer, legacy + fake_ho.events) == [
        "SignatureRefused", "HeadOfficeKeyUnknown", "ChainGap"]
    assert await observer.read_one("SELECT price FROM products WHERE id = 'p1'") is None


async def test_unsigned_events_follow_the_role_rule_and_never_certify(observer: Journal) -> None:
    # A head-office origin from before signing wrote the catalogue, never a sale.
    sale = unsigned_events("headoffice-abcdef", [("sale_completed", {"id": "s1", "total": 1})])
    certified = unsigned_events("c0ffee", [("origin_certified", {"role": "node"})])
    await apply(observer, vouch("n1", [sale[0], certified[0]]))
    with pytest.raises(SignatureRefused, match="a headoffice may not write sale_completed"):
        await apply(observer, sale)
    with pytest.raises(SignatureRefused):
        await apply(observer, certified)


async def test_a_forged_vouch_does_not_hijack_a_real_signed_origin(observer: Journal) -> None:
    real = SignedChain("n0de01")
    for number in range(3):
        real.add("product_upserted", {**PRODUCT, "id": f"p-real-{number}", "price": 300})
    forged = unsigned_events("n0de01", [("product_upserted", PRODUCT)])
    seen = await apply_each(observer, vouch("r0gue1", forged, by_ca=False) + forged)
    assert seen == ["new", "SignatureRefused", "NotVouched"]
    assert await apply_each(observer, real.events) == ["new"] * 4  # the real history comes in
    assert await observer.read_one("SELECT price FROM products WHERE id = 'p1'") is None


async def test_a_wrong_vouch_by_a_node_cannot_block_real_history(observer: Journal) -> None:
    legacy = unsigned_chain("d4e5f6", 3)
    bogus = unsigned_events("d4e5f6", [("product_upserted", PRODUCT)] * 3)[-1]
    seen = await apply_each(observer, vouch("r0gue1", [bogus], by_ca=False)
                            + vouch("upgr4d", [legacy[-1]]) + legacy)
    # legacy #1, #2 staged until the vouched #3 proves them: then all three.
    assert seen == ["new", "SignatureRefused", "new", "new", "held", "held", "new"]


async def test_a_forged_vouch_does_not_cross_real_peers(tmp_path: Path) -> None:
    # h28: a node with the store's certificates (not the CA's key) pre-loads a vouch of
    # its own for a forged head-office catalogue and a forged origin; a fresh peer
    # started with it takes neither, and says why.
    pm, pv = free_port(), free_port()
    cm = store_node_config(tmp_path / "m", [f"http://127.0.0.1:{pv}"])
    cv = store_node_config(tmp_path / "v", [f"http://127.0.0.1:{pm}"])
    mallory = EdgeProcess(tmp_path / "m" / "data", pm, ["--config", str(cm)])
    victim = EdgeProcess(tmp_path / "v" / "data", pv, ["--config", str(cv)])
    joined_without_the_ca_key(mallory, "mallory")
    joined_without_the_ca_key(victim, "victim")
    mallory.start()
    mallory.stop()
    trust = TrustFolder(mallory.data_dir).load("demo-boulangerie")
    fake_ho = unsigned_events("headoffice-abcdef",
                              [("product_upserted", {**PRODUCT, "id": "baguette-x"})])
    fake_node = unsigned_events("c0ffee", [("product_upserted", {**PRODUCT, "id": "croissant-x"})])
    journal = Journal(mallory.data_dir / "edge.sqlite3", trust=trust)
    await journal.open()
    try:
        def forge(tx: Tx) -> list[bool]:
            tx.append("unsigned_heads_vouched", {"heads": [
                {"origin": e.origin, "seq": e.seq, "hash": e.hash}
                for e in (fake_ho[-1], fake_node[-1])]})
            return [tx.apply(e) for e in fake_ho + fake_node]
        assert await journal.write(forge) == [True, True]
        (origin,) = {e.origin async for e in journal.events(journal.origin)}
    finally:
        await journal.close()
    start_all(mallory, victim)
    try:
        for _ in range(300):
            if "not signed by the store CA" in victim.log.read_text():
                break
            await asyncio.sleep(0.1)
        assert "not signed by the store CA" in victim.log.read_text()
        db = sqlite3.connect(f"file:{victim.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
        try:
            assert db.execute("SELECT COUNT(*) FROM events WHERE origin IN "
                              "('headoffice-abcdef', 'c0ffee') OR type = "
                              "'unsigned_heads_vouched'").fetchone() == (0,)
            assert db.execute("SELECT COUNT(*) FROM products WHERE id IN "
                              "('baguette-x', 'croissant-x')").fetchone() == (0,)
            # What mallory wrote before its forged vouch still came in.
            assert db.execute("SELECT COUNT(*) FROM events WHERE origin = ?",
                              (origin,)).fetchone()[0] >= 1
        finally:
            db.close()
    finally:
        mallory.stop()
        victim.stop()


# Head office: what no vouch covers yet waits (resent after the next pull), never parked.

@pytest.fixture
async def storage(headoffice_db: str) -> AsyncIterator[HeadOfficeStorage]:
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    await storage.add_store(STORE, "Paris 11")
    await storage.pin_store_ca(STORE, cert_pem(store_ca(STORE)[1]))
    yield storage
    await storage.close()


async def test_head_office_takes_events_from_before_signing_once_vouched_for(
    storage: HeadOfficeStorage,
) -> None:
    old = unsigned_chain("a1b2c3", 3)
    voucher = vouch("n1", [old[2]], store_id=STORE)
    # The node pushes in its own order: the events from before signing first.
    first = await storage.receive(STORE, "n1", list(enumerate(old + voucher, start=1)))
    assert (first.acknowledged, first.stored, first.conflicts) == (5, 2, [])
    assert first.waiting == ["a1b2c3#1", "a1b2c3#2", "a1b2c3#3"]
    assert await storage.held(STORE, ["a1b2c3"]) == {"a1b2c3": 0}  # so the node resends them
    again = await storage.receive(STORE, "n1", list(enumerate(old, start=1)))
    assert (again.stored, again.waiting, again.conflicts) == (3, [], [])
    assert await storage.events(STORE, "a1b2c3") == old
    # Past the vouch, or not the vouched event: never taken.
    more = unsigned_chain("a1b2c3", 1)[0]
    later = dataclasses.replace(more, seq=4, prev_hash=old[2].hash)
    later = dataclasses.replace(later, hash=event_hash(
        later.origin, 4, later.id, later.time, later.type, later.body, later.prev_hash))
    past = await storage.receive(STORE, "n1", [(10, later)])
    assert (past.stored, past.waiting) == (0, ["a1b2c3#4"])


async def test_head_office_parks_an_event_other_than_the_vouched_one(
    storage: HeadOfficeStorage,
) -> None:
    old, rival = unsigned_chain("a1b2c3", 2), unsigned_chain("a1b2c3", 2)
    await storage.receive(STORE, "n1", list(enumerate(vouch("n1", [old[1]], STORE), start=1)))
    receipt = await storage.receive(STORE, "n2", list(enumerate(rival, start=1)))
    # rival #1 is below the vouch: staged (waiting), never stored; #2 is parked.
    assert receipt.stored == 0 and receipt.waiting == ["a1b2c3#1"]
    assert len(receipt.conflicts) == 1
    assert "not the event n1 vouched for" in receipt.conflicts[0]
    receipt = await storage.receive(STORE, "n1", list(enumerate(old, start=1)))
    assert receipt.stored == 2 and receipt.waiting == []
    assert [e.hash for e in await storage.events(STORE, "a1b2c3")] == [e.hash for e in old]


async def test_head_office_takes_no_forged_history_below_a_vouch(
    storage: HeadOfficeStorage,
) -> None:
    """h30 at head office: a certified node pushes a forged #1..#3 of an old origin before
    the CA node resends the real one: staged (`waiting`), never stored; the real run is."""
    real = unsigned_chain("a1b2c3", 4)
    first = await storage.receive(STORE, "ca-node",
                                  list(enumerate(real + vouch("ca-node", [real[-1]], STORE),
                                                 start=1)))
    assert first.stored == 2 and first.waiting == [f"a1b2c3#{n}" for n in range(1, 5)]
    forged = unsigned_events("a1b2c3", [("product_upserted", {**product("x"), "price": 1})] * 3)
    attack = await storage.receive(STORE, "r0gue1", list(enumerate(forged, start=1)))
    assert attack.stored == 0 and attack.conflicts == []
    again = await storage.receive(STORE, "ca-node", list(enumerate(real, start=1)))
    assert again.stored == 4 and again.conflicts == [] and again.waiting == []
    assert [e.hash for e in await storage.events(STORE, "a1b2c3")] == [e.hash for e in real]


async def test_head_office_refuses_a_vouch_the_store_ca_did_not_sign(
    storage: HeadOfficeStorage,
) -> None:
    # h28: a certified node pushed its own vouch for a forged head of another node's
    # origin, and head office then parked the real node's history as conflicts.
    real = SignedChain("n0de02", store_id=STORE)
    for number in range(2):
        real.add("product_upserted", {**PRODUCT, "id": f"p{number}", "price": 300})
    forged = unsigned_events("n0de02", [("product_upserted", PRODUCT)])
    pushed = await storage.receive(STORE, "r0gue1", list(enumerate(
        vouch("r0gue1", forged, STORE, by_ca=False) + forged, start=1)))
    assert pushed.stored == 1 and pushed.waiting == ["n0de02#1"]
    assert len(pushed.conflicts) == 1 and "not signed by the store CA" in pushed.conflicts[0]
    honest = await storage.receive(STORE, "n0de02", list(enumerate(real.events, start=1)))
    assert (honest.stored, honest.conflicts) == (3, [])


# `edge verify` and `edge restore`: signed vouches decide, not the file's own tables.

async def upgraded_journal(folder: Path) -> Path:
    """A data folder whose journal was upgraded (it vouched), with the store CA beside it."""
    path = folder / "edge.sqlite3"
    legacy_journal(path, "a1b2c3", unsigned_chain("a1b2c3", 2))
    journal = Journal(path, trust=ca_node_identity("upgraded"))
    await journal.open()
    try:
        await journal.write(lambda tx: tx.append("product_delisted", {"id": "p-a1b2c3-1"}))
    finally:
        await journal.close()
    (folder / "tls").mkdir()
    (folder / "tls" / "store-ca.pem").write_text(cert_pem(store_ca()[1]))
    return path


async def edge_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [*EDGE, "verify", *args],
                                   capture_output=True, text=True, timeout=60, cwd=ROOT)


def report_of(path: Path) -> tuple[list[str], list[str], bool]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        report = verify_journal(db, store_ca()[1])
    finally:
        db.close()
    return report.problems, report.unsigned, report.signed


async def test_verify_takes_unsigned_events_only_as_a_signed_vouch_covers_them(
    tmp_path: Path,
) -> None:
    clean = await upgraded_journal(tmp_path / "clean")
    assert report_of(clean) == ([], ["a1b2c3"], True)

    def tampered(name: str) -> Path:
        copy = tmp_path / name / "edge.sqlite3"
        copy.parent.mkdir()
        shutil.copy(clean, copy)
        return copy

    # A forged origin, unsigned, listed in the file as one from before signing.
    forged = tampered("forged")
    db = sqlite3.connect(forged)
    with db:
        insert_unsigned(db, unsigned_chain("f0f0f0", 1))
        db.execute("INSERT INTO unsigned_origins (origin, last_seq) VALUES ('f0f0f0', 1)")
    db.close()
    problems, _, _ = report_of(forged)
    assert any(p.startswith("f0f0f0#1: unsigned, and no signed vouch covers it")
               for p in problems), problems

    # The node's own signed origin rewritten without its key, listed the same way.
    rewritten = tampered("rewritten")
    db = sqlite3.connect(rewritten)
    (own,) = db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    with db:
        db.execute("DELETE FROM events WHERE origin = ?", (own,))
        insert_unsigned(db, unsigned_chain(own, 4))
        db.execute("INSERT INTO unsigned_origins (origin, last_seq) VALUES (?, 4)", (own,))
    db.close()
    problems, _, _ = report_of(rewritten)
    assert any(p.startswith(f"{own}#1: unsigned, and no signed vouch covers it")
               for p in problems), problems

    # An old origin given one more unsigned event, past what was vouched.
    extended = tampered("extended")
    db = sqlite3.connect(extended)
    (last,) = db.execute("SELECT hash FROM events WHERE origin = 'a1b2c3' AND seq = 2").fetchone()
    extra = ChainHead(2, last).next("a1b2c3", "product_upserted", product("x"))
    with db:
        insert_unsigned(db, [extra])
    db.close()
    problems, _, _ = report_of(extended)
    assert any(p.startswith("a1b2c3#3: unsigned, and no signed vouch covers it (vouched up "
                            "to #2 only)") for p in problems), problems

    # An old origin held only below its vouched head (h30: a forged #1 looks the same).
    cut = tampered("cut")
    db = sqlite3.connect(cut)
    with db:
        db.execute("DELETE FROM events WHERE origin = 'a1b2c3' AND seq = 2")
    db.close()
    problems, _, _ = report_of(cut)
    assert any(p.startswith("a1b2c3: held up to #1 only, vouched for up to #2") for p in problems)
    with pytest.raises(BackupError, match="held up to #1 only"):
        restore(cut, tmp_path / "clean", tmp_path / "clean" / "restored.sqlite3")

    # The schema number set back: chains only, never "every signature verified".
    downgraded = tampered("downgraded")
    db = sqlite3.connect(downgraded)
    db.execute("PRAGMA user_version = 18")
    db.close()
    assert report_of(downgraded)[2] is False
    ca_file = tmp_path / "clean" / "tls" / "store-ca.pem"
    said = await edge_verify("--data", str(downgraded.parent), "--ca", str(ca_file))
    assert said.returncode == 2, said.stdout + said.stderr
    assert "NOT SIGNED: chains only" in said.stdout
    assert "every signature verified" not in said.stdout
    said = await edge_verify("--data", str(clean.parent))
    assert said.returncode == 0 and "every signature verified" in said.stdout, said.stdout


async def test_restore_refuses_a_backup_with_unvouched_unsigned_events(tmp_path: Path) -> None:
    database = await upgraded_journal(tmp_path / "data")
    backup = tmp_path / "kept.sqlite3"
    shutil.copy(database, backup)
    db = sqlite3.connect(backup)
    with db:
        insert_unsigned(db, unsigned_chain("f0f0f0", 1))
        db.execute("INSERT INTO unsigned_origins (origin, last_seq) VALUES ('f0f0f0', 1)")
    db.close()
    with pytest.raises(BackupError, match="f0f0f0#1: unsigned, and no signed vouch covers it"):
        restore(backup, database.parent, database)
    db = sqlite3.connect(backup)
    with db:
        db.execute("DELETE FROM events WHERE origin = 'f0f0f0'")
    db.execute("PRAGMA user_version = 18")
    db.close()
    with pytest.raises(BackupError, match="from before events were signed"):
        restore(backup, database.parent, database)
    assert restore(database, database.parent, tmp_path / "data" / "restored.sqlite3")[0].events
