"""Signed events in the journal: who may write what, head office's key, key changes, upgrades.

The forged events a peer or head office may be sent are in
tests/test_forged_events.py (real processes); this is the journal's side of
the rules (edge/journal/signing.py), with bare journals.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from signing_support import (
    SignedChain,
    ca_node_identity,
    headoffice_key,
    headoffice_trusted,
    identity,
    store_ca,
)

from edge.api import commands  # noqa: F401  (registers the projections)
from edge.journal.chain import ChainGap, ChainHead, Event
from edge.journal.migrations import MIGRATIONS
from edge.journal.signing import HeadOfficeKeyUnknown, SignatureRefused, sign
from edge.journal.store import Journal
from edge.journal.verify import verify_journal

PRODUCT = {"id": "p1", "barcode": None, "name": "Pain", "price": 120, "vat_rate": 550}


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = Journal(tmp_path / "observer.sqlite3", origin="observer",
                      trust=identity("observer"))
    await journal.open()
    yield journal
    await journal.close()


async def apply(journal: Journal, events: list[Event]) -> list[bool]:
    return await journal.write(lambda tx: [tx.apply(event) for event in events])


async def origins(journal: Journal) -> set[str]:
    return set(await journal.version_vector())


async def test_head_office_is_taken_once_the_store_ca_certified_its_key(
        journal: Journal) -> None:
    catalogue = SignedChain("headoffice-1a2b3c")
    catalogue.add("product_upserted", PRODUCT)
    with pytest.raises(HeadOfficeKeyUnknown, match="is not certified by the store CA here yet"):
        await apply(journal, catalogue.events)
    assert isinstance(HeadOfficeKeyUnknown("x"), ChainGap)  # asked for again, not refused
    assert await origins(journal) == set()
    # The store CA's certificate for another key does not do: it must be this one.
    node = SignedChain("n1")
    node.add("headoffice_key_trusted", headoffice_trusted(headoffice_key("other")))
    await apply(journal, node.events)
    with pytest.raises(HeadOfficeKeyUnknown):
        await apply(journal, catalogue.events)
    # Relayed by any node: the certificate, not the node, vouches for the key.
    node.add("headoffice_key_trusted", headoffice_trusted())
    await apply(journal, node.events[2:])
    assert await apply(journal, catalogue.events) == [True, True]
    row = await journal.read_one("SELECT price FROM products WHERE id = 'p1'")
    assert row is not None and row["price"] == 120


async def test_head_office_writes_its_catalogue_only(journal: Journal) -> None:
    await journal.write(lambda tx: tx.append("headoffice_key_trusted", headoffice_trusted()))
    catalogue = SignedChain("headoffice-1a2b3c")
    catalogue.add("till_paired", {"code": "T01", "name": "Caisse", "token_sha256": "ab" * 32})
    await apply(journal, catalogue.events[:1])
    with pytest.raises(SignatureRefused, match="a headoffice may not write till_paired events"):
        await apply(journal, catalogue.events[1:])
    assert await journal.read_all("SELECT * FROM tills") == []


async def test_an_origin_is_certified_once_by_its_first_event(journal: Journal) -> None:
    node = SignedChain("n1")
    node.add("origin_certified", node.certified_body())
    node.add("origin_certified", node.certified_body())  # again, at #2
    with pytest.raises(SignatureRefused, match="n1#2: an origin is certified once"):
        await apply(journal, node.events)
    assert await origins(journal) == set()  # the write is refused whole
    assert await apply(journal, node.events[:1]) == [True]


async def test_an_event_already_held_is_never_checked_again(journal: Journal) -> None:
    """Events written before signing stay: a peer sending them again changes nothing."""
    old = ChainHead().next("old", "product_upserted", PRODUCT)  # unsigned, uncertified
    db = sqlite3.connect(journal.path)
    with db:
        db.execute("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (old.origin, old.seq, old.id, old.time, old.type,
                    orjson.dumps(old.body, option=orjson.OPT_SORT_KEYS).decode(),
                    old.prev_hash, old.hash))
    db.close()
    assert await apply(journal, [old]) == [False]
    # But its origin takes nothing signed: no key ever certified it.
    later = sign(ChainHead(1, old.hash).next("old", "product_delisted", {"id": "p1"}),
                 identity("old").signing_key)
    with pytest.raises(SignatureRefused, match="its origin was written before signing"):
        await apply(journal, [later])


async def test_a_new_signing_key_continues_under_a_new_origin(tmp_path: Path) -> None:
    path = tmp_path / "data" / "edge.sqlite3"
    first = Journal(path, trust=identity("before"))
    await first.open()
    try:
        await first.write(lambda tx: tx.append("product_delisted", {"id": "p1"}))
        old_origin = first.origin
    finally:
        await first.close()
    rejoined = Journal(path, trust=identity("after"))  # `edge tls join` again: a new key
    await rejoined.open()
    try:
        assert rejoined.origin != old_origin
        assert rejoined.rotation is not None
        assert rejoined.rotation["reason"] == "new_signing_key"
        assert rejoined.rotation["predecessor"] == old_origin
        events = [event async for event in rejoined.events(rejoined.origin)]
        assert [(e.seq, e.type) for e in events] == [(1, "origin_certified"),
                                                     (2, "origin_started")]
        assert events[0].body["cert"] == identity("after").signing_cert_pem
    finally:
        await rejoined.close()


async def test_a_journal_from_before_signing_signs_on_under_a_new_origin(tmp_path: Path) -> None:
    path = tmp_path / "data" / "edge.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(path)  # as an edge of schema 18 left it: unsigned events
    for number, script in enumerate(MIGRATIONS[:18], start=1):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    head, rows = ChainHead(), []
    for n in range(3):
        event = head.next("a1b2c3", "product_delisted", {"id": f"p{n}"})
        head = ChainHead(event.seq, event.hash)
        rows.append((event.origin, event.seq, event.id, event.time, event.type,
                     orjson.dumps(event.body).decode(), event.prev_hash, event.hash))
    with db:
        db.executemany("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("INSERT INTO meta (key, value) VALUES ('origin', 'a1b2c3')")
    db.close()
    journal = Journal(path, trust=ca_node_identity("upgraded"))
    await journal.open()
    try:
        assert journal.rotation is not None
        assert journal.rotation["reason"] == "journal_from_before_signing"
        assert journal.rotation["cut"]["seq"] == 3
        await journal.write(lambda tx: tx.append("product_delisted", {"id": "p9"}))
    finally:
        await journal.close()
    ca = store_ca()[1]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        report = verify_journal(db, ca)
    finally:
        db.close()
    assert report.problems == [] and report.unsigned == ["a1b2c3"]
    # An unsigned origin no signed vouch covers is no old one: it fails.
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
                   "SELECT 'slipped', seq, id || 'x', time, type, body, prev_hash, hash "
                   "FROM events WHERE origin = 'a1b2c3' AND seq = 1")
    try:
        report = verify_journal(db, ca)
    finally:
        db.close()
    assert any(p.startswith("slipped#1: unsigned, and no signed vouch covers it")
               for p in report.problems), report.problems
