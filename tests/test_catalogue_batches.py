"""Head office's catalogue in events of many products (edge/selling/catalogue_batches.py).

A node projects each product of a batch as its own event would be; head office
packs its changes into batches only for stores that read them. (Head office's
side: tests/test_headoffice.py; a till following them: tests/test_sync_catalogue.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from signing_support import SignedChain, headoffice_key, headoffice_trusted, identity

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.journal.chain import ChainError
from edge.journal.signing import public_hex
from edge.journal.store import Journal
from edge.selling.catalogue_batches import (
    MOST_IN_AN_EVENT,
    PRODUCTS_PER_EVENT,
    batched,
    one_by_one,
)
from edge.selling.catalogue_versions import Request, TouchedCache, changes
from edge.sync.client import apply_pulled

HEADOFFICE = "headoffice-1a2b3c"
# Changes a millisecond or more apart (within one, their hash orders them), each with its
# time: one stamped "now" is later than these once the clock passes them (CI did, 10:00 UTC).
AT = ["2026-12-01T10:00:00.000Z", "2026-12-01T10:00:01.000Z", "2026-12-01T10:00:02.000Z"]


def product(number: int, price: int = 100) -> dict[str, Any]:
    return {"id": f"p{number}", "barcode": None, "name": f"Produit {number}",
            "price": price + number, "vat_rate": 550, "category": "Rayon"}


async def pulled(journal: Journal, events: list) -> int:
    """As the sync client applies what a pull brought (head office's key certified)."""
    return await apply_pulled(journal, events,
                              {public_hex(headoffice_key()): headoffice_trusted()["cert"]})


async def on_sale(journal: Journal) -> dict[str, int]:
    return {row["id"]: row["price"] for row in await journal.read_all(
        "SELECT id, price FROM products WHERE active ORDER BY id")}


def test_changes_are_packed_by_runs_of_one_type_a_hundred_at_most_each_id_once() -> None:
    changes = [("product_upserted", product(n)) for n in range(250)]
    changes += [("product_delisted", {"id": "p1"}), ("product_delisted", {"id": "p2"}),
                ("promotion_ended", {"id": "x"}), ("product_upserted", product(7)),
                ("product_upserted", product(7, price=500))]
    packed = batched(changes)
    assert [(type_, len(body.get("products", body.get("ids", [])))) for type_, body in packed] \
        == [("products_listed", PRODUCTS_PER_EVENT), ("products_listed", PRODUCTS_PER_EVENT),
            ("products_listed", 50), ("products_delisted", 2), ("promotion_ended", 0),
            ("products_listed", 1), ("products_listed", 1)]  # p7 twice: two batches
    # Opened again, the same changes in the same order.
    assert [change for type_, body in packed for change in one_by_one(type_, body)] \
        == [change for change in changes if change[0] != "promotion_ended"]


async def test_a_batch_lists_and_delists_as_its_products_would_one_by_one(
    journal: Journal, tmp_path: Path,
) -> None:
    office = SignedChain(HEADOFFICE)
    office.add("products_listed", {"products": [product(n) for n in range(1, 6)]}, time=AT[0])
    office.add("products_delisted", {"ids": ["p2", "p4"]}, time=AT[1])
    office.add("products_listed", {"products": [product(4, price=300)]}, time=AT[2])
    assert await pulled(journal, office.events) == 8  # each product counted
    assert await on_sale(journal) == {"p1": 101, "p3": 103, "p4": 304, "p5": 105}

    # The same changes one product an event, on another node: the same catalogue.
    single = Journal(tmp_path / "other.sqlite3", origin="node-b", trust=identity("node-b"))
    await single.open()
    try:
        one = SignedChain(HEADOFFICE)
        for event in office.events[1:]:
            for type_, body in one_by_one(event.type, event.body):
                one.add(type_, body, time=event.time)
        await pulled(single, one.events)
        assert await on_sale(single) == await on_sale(journal)
    finally:
        await single.close()


async def test_a_till_asking_the_changes_gets_every_product_of_a_batch(journal: Journal) -> None:
    office = SignedChain(HEADOFFICE)
    office.add("products_listed", {"products": [product(n) for n in range(1, 4)]})
    await pulled(journal, office.events)
    first = await journal.read_in_snapshot(
        lambda db: changes(db, Request(None, None, None, 100), TouchedCache()))
    office.add("products_listed", {"products": [product(2, price=200)]})
    office.add("products_delisted", {"ids": ["p3"]})
    await pulled(journal, office.events[-2:])
    delta = await journal.read_in_snapshot(lambda db: changes(
        db, Request(first["version"], None, None, 100), TouchedCache()))
    assert delta["full"] is False and delta["version"][HEADOFFICE] == office.head.seq
    rows = orjson.loads(orjson.dumps(delta["products"]))
    # Only what changed: p2's new price, p3 delisted; p1 is not sent again.
    assert [(row[0], row[3]) for row in rows] == [("p2", 202)]
    assert delta["delisted"] == ["p3"]


async def test_a_batch_too_large_or_naming_a_product_twice_is_handled_the_same_everywhere(
    journal: Journal,
) -> None:
    office = SignedChain(HEADOFFICE)
    # The same id twice in one batch (head office never writes it): the first listing
    # is kept, on every node alike (the batch's order is in its hash).
    office.add("products_listed", {"products": [product(1, price=100), product(1, price=900)]})
    await pulled(journal, office.events)
    assert await on_sale(journal) == {"p1": 101}
    too_many = SignedChain("headoffice-4d5e6f")
    too_many.add("products_listed",
                  {"products": [product(n) for n in range(MOST_IN_AN_EVENT + 1)]})
    with pytest.raises(ChainError, match="more than"):
        await pulled(journal, too_many.events)
