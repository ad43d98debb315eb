"""What a signed origin may say about other origins: only its own node's past and printers.

A signature proves who wrote an event, not that its writer may say what it
says of another node (h30): a certified node retired a live node with an
`origin_started` of its own (mid-chain, or naming it in `also_retires`), so its
printers went for good and `standing_printer` handed its jobs to the rogue's
printer of the same name; and it replaced another node's printer list with a
`printers_announced` naming that node. Every intake (a node's journal, head
office, `edge verify`) now refuses both (`authorize` in the event registry),
while a restored or copied folder, which keeps its `tls/` and so its node
name, still retires its own past.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from signing_support import STORE_ID, SignedChain, identity, store_ca
from test_signing_upgrade import apply_each

from edge.api import commands  # noqa: F401  (registers the projections)
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.chain import Event
from edge.journal.store import EVENT_COLUMNS, Journal
from edge.journal.verify import verify_journal
from edge.trust.certificates import cert_pem

KITCHEN = {"name": "kitchen", "kind": "escpos", "tills": []}
BAR = {"name": "bar", "kind": "escpos", "tills": []}


def started(predecessor: str, retires: bool = True, also: list[str] = ()) -> dict[str, object]:
    return {"predecessor": predecessor, "reason": "restored_from_backup",
            "cut": {"seq": 0, "hash": ""}, "retires_predecessor": retires,
            "also_retires": list(also)}


@pytest.fixture
async def victim(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = Journal(tmp_path / "victim.sqlite3", origin="v1ct1m", trust=identity("victim"))
    await journal.open()
    yield journal
    await journal.close()


async def printers(journal: Journal) -> set[tuple[str, str]]:
    return {(row["node"], row["name"])
            for row in await journal.read_all("SELECT node, name FROM store_printers")}


def verify_with(journal_path: Path, forged: list[Event], tmp_path: Path) -> list[str]:
    """`edge verify`'s problems once `forged` is slipped into a copy of the file, unchecked."""
    source, db = sqlite3.connect(journal_path), sqlite3.connect(tmp_path / "copy.sqlite3")
    try:
        source.backup(db)  # with what is still in the open journal's WAL
        with db:
            db.executemany(
                f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.origin, e.seq, e.id, e.time, e.type, orjson.dumps(e.body).decode(),
                  e.prev_hash, e.hash, e.sig) for e in forged])
        return verify_journal(db, store_ca()[1], STORE_ID).problems
    finally:
        source.close()
        db.close()


async def test_a_certified_node_cannot_retire_another_live_node(
    victim: Journal, tmp_path: Path,
) -> None:
    n2 = SignedChain("n0de02")
    n2.add("printers_announced", {"node": "n0de02", "printers": [KITCHEN]})
    # Mid-chain: the rogue's own origin, after it sold something.
    mid = SignedChain("r0gue1")
    mid.add("product_upserted", {"id": "x", "barcode": None, "name": "x", "price": 5,
                                 "vat_rate": 550})
    mid.add("origin_started", started("n0de02", also=["n0de03"]))
    # At its start (#2), but n0de02 was certified under another node name.
    fresh = SignedChain("r0gue2", identity("r0gue1"))
    fresh.add("origin_started", started("n0de02"))
    # Naming the live node among the origins the folder "ran since".
    also = SignedChain("r0gue3", identity("r0gue1"))
    also.add("origin_started", started("0ld000", retires=False, also=["n0de02"]))

    assert await apply_each(victim, n2.events) == ["new", "new"]
    assert await apply_each(victim, mid.events) == ["new", "new", "Unauthorized"]
    assert await apply_each(victim, fresh.events) == ["new", "Unauthorized"]
    assert await apply_each(victim, also.events) == ["new", "Unauthorized"]
    assert await victim.read_all("SELECT * FROM retired_origins") == []
    assert await victim.read_all("SELECT * FROM origin_lineage") == []
    # n0de02's later announcements still count: it was never retired.
    n2.add("printers_announced", {"node": "n0de02", "printers": [KITCHEN, BAR]})
    assert await apply_each(victim, n2.events[-1:]) == ["new"]
    assert await printers(victim) == {("n0de02", "kitchen"), ("n0de02", "bar")}

    problems = verify_with(victim.path, [mid.events[-1], fresh.events[-1], also.events[-1]],
                           tmp_path)
    assert any(p.startswith("r0gue1#3: origin_started comes only right after") for p in problems)
    assert any(p.startswith("r0gue2#2: node 'r0gue1' may not retire n0de02") for p in problems)
    assert any(p.startswith("r0gue3#2: node 'r0gue1' may not retire n0de02") for p in problems)


async def test_a_node_announces_only_its_own_printers(victim: Journal, tmp_path: Path) -> None:
    n2 = SignedChain("n0de02")
    n2.add("printers_announced", {"node": "n0de02", "printers": [KITCHEN]})
    rogue = SignedChain("r0gue1")
    rogue.add("printers_announced", {"node": "n0de02", "printers": [
        {"name": "kitchen", "kind": "escpos", "tills": ["T01"]}, BAR]})
    n2.add("printers_announced", {"node": "n0de02", "printers": [BAR, BAR]})
    assert await apply_each(victim, n2.events + rogue.events) == [
        "new", "new", "Unauthorized", "new", "Unauthorized"]
    rows = await victim.read_all("SELECT node, name, tills FROM store_printers")
    assert [dict(row) for row in rows] == [{"node": "n0de02", "name": "kitchen", "tills": "[]"}]
    problems = verify_with(victim.path, rogue.events[-1:], tmp_path)
    assert any(p.startswith("r0gue1#2: announces the printers of node 'n0de02'")
               for p in problems)


async def test_a_restored_node_still_retires_its_own_past(
    victim: Journal, tmp_path: Path,
) -> None:
    """Same tls/ (so the same node name) on every origin of the folder; an origin from
    before signing (no certificate here) may be retired too: the node's past, for all
    anyone can tell."""
    till_room = identity("till-room")
    first = SignedChain("f1rst0", till_room)
    first.add("printers_announced", {"node": "f1rst0", "printers": [KITCHEN]})
    between = SignedChain("b3twen", till_room)
    between.add("origin_started", started("f1rst0"))
    between.add("printers_announced", {"node": "b3twen", "printers": [KITCHEN]})
    now = SignedChain("n0wnow", till_room)
    now.add("origin_started", started("f1rst0", also=["b3twen", "0ld000"]))
    now.add("printers_announced", {"node": "n0wnow", "printers": [KITCHEN, BAR]})
    assert set(await apply_each(victim, first.events + between.events + now.events)) == {"new"}
    retired = await victim.read_all("SELECT origin, successor FROM retired_origins")
    assert {(row["origin"], row["successor"]) for row in retired} == {
        ("f1rst0", "b3twen"), ("f1rst0", "n0wnow"), ("b3twen", "n0wnow"), ("0ld000", "n0wnow")}
    # What the retired origins announce later (peers still held it) stays ignored.
    first.add("printers_announced", {"node": "f1rst0", "printers": [BAR]})
    assert await apply_each(victim, first.events[-1:]) == ["new"]
    assert await printers(victim) == {("n0wnow", "kitchen"), ("n0wnow", "bar")}
    assert verify_with(victim.path, [], tmp_path) == []


# Head office refuses them too (parked as conflicts, never stored).

STORE = "paris-11"


@pytest.fixture
async def storage(headoffice_db: str) -> AsyncIterator[HeadOfficeStorage]:
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    await storage.add_store(STORE, "Paris 11")
    await storage.pin_store_ca(STORE, cert_pem(store_ca(STORE)[1]))
    yield storage
    await storage.close()


async def test_head_office_refuses_what_a_node_may_not_say_of_another(
    storage: HeadOfficeStorage,
) -> None:
    n2 = SignedChain("n0de02", store_id=STORE)
    n2.add("printers_announced", {"node": "n0de02", "printers": [KITCHEN]})
    rogue = SignedChain("r0gue1", store_id=STORE)
    rogue.add("origin_started", started("n0de02"))
    other = SignedChain("r0gue2", identity("r0gue1", STORE), store_id=STORE)
    other.add("printers_announced", {"node": "n0de02", "printers": [BAR]})
    own = SignedChain("n0de2b", identity("n0de02", STORE), store_id=STORE)
    own.add("origin_started", started("n0de02"))
    first = await storage.receive(STORE, "n0de02", list(enumerate(n2.events, start=1)))
    assert (first.stored, first.conflicts) == (2, [])
    receipt = await storage.receive(STORE, "r0gue1", list(enumerate(
        rogue.events + other.events + own.events, start=1)))
    assert receipt.stored == 4  # the two certificates, and n0de02's own successor's start
    assert len(receipt.conflicts) == 2
    assert "may not retire n0de02" in receipt.conflicts[0]
    assert "announces the printers of node 'n0de02'" in receipt.conflicts[1]
