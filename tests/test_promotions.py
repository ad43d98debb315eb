"""Promotions as catalogue events: the latest listing wins, an ending is remembered
whatever the order of arrival, and `active_promotions` gives those running on a day."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from signing_support import identity

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.demo import DEMO_PROMOTIONS
from edge.journal.store import Journal
from edge.selling.catalogue import DEMO_CATALOGUE, parse_catalogue_csv
from edge.selling.catalogue_import import parse_promotions_csv
from edge.selling.promotions import active_promotions, active_promotions_read

THREE_FOR_TWO = {"id": "p1", "name": "3 pour 2", "kind": "n_for_m", "products": ["c"],
                 "n": 3, "m": 2}
SUMMER = {"id": "p2", "name": "Été", "kind": "nth_percent", "products": ["c", "e"], "n": 2,
          "percent": 5000, "starts": "2026-06-01", "ends": "2026-08-31"}


@pytest.fixture
async def journals(tmp_path: Path) -> AsyncIterator[tuple[Journal, Journal]]:
    a = Journal(tmp_path / "a.sqlite3", origin="node-a", trust=identity("node-a"))
    b = Journal(tmp_path / "b.sqlite3", origin="node-b", trust=identity("node-b"))
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


def _table(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT * FROM promotions ORDER BY id").fetchall()
    finally:
        db.close()


async def test_an_ending_holds_whatever_the_order_of_arrival(
        journals: tuple[Journal, Journal], tmp_path: Path) -> None:
    a, b = journals

    async def write(journal: Journal, type_: str, body: dict) -> list:  # type: ignore[type-arg]
        # The latest by time wins, ties by hash (the merge rule): a manager's changes a
        # millisecond apart at least, as any two a person makes.
        await asyncio.sleep(0.002)

        def append(tx):  # type: ignore[no-untyped-def]
            tx.append(type_, body)
            return tx.events
        return await journal.write(append)

    listed = await write(a, "promotion_upserted", THREE_FOR_TWO)
    changed = await write(a, "promotion_upserted", {**THREE_FOR_TWO, "n": 4, "m": 3})
    ended = await write(a, "promotion_ended", {"id": "p1"})
    summer = await write(a, "promotion_upserted", SUMMER)
    # b takes a's chain, part of it twice (other origins' interleavings: the property test).
    await b.write(lambda tx: [tx.apply(e) for e in [*listed, *changed, *ended, *summer,
                                                     *listed]])
    assert _table(tmp_path / "a.sqlite3") == _table(tmp_path / "b.sqlite3")
    with sqlite3.connect(tmp_path / "a.sqlite3") as db:
        assert active_promotions(db, "2026-05-31") == []
        assert active_promotions(db, "2026-06-01") == [SUMMER]
        assert active_promotions(db, "2026-08-31") == [SUMMER]
        assert active_promotions(db, "2026-09-01") == []
    # Listed again later (b's own, a new time): on again, with b's details.
    await write(b, "promotion_upserted", THREE_FOR_TWO)
    assert [p["id"] for p in await active_promotions_read(b, "2026-07-01")] == ["p1", "p2"]


async def test_a_promotion_this_node_cannot_apply_is_left_out(
        journals: tuple[Journal, Journal]) -> None:
    a, _ = journals
    await a.write(lambda tx: tx.append("promotion_upserted", {
        **THREE_FOR_TWO, "id": "future", "kind": "mystery_kind"}))
    await a.write(lambda tx: tx.append("promotion_upserted", THREE_FOR_TWO))
    assert [p["id"] for p in await active_promotions_read(a, "2026-01-01")] == ["p1"]


def test_the_demo_store_has_believable_promotions() -> None:
    products = {p["id"]: p for p in parse_catalogue_csv(DEMO_CATALOGUE.read_text())}
    promotions = parse_promotions_csv(DEMO_PROMOTIONS.read_text(), set(products))
    kinds = {p["kind"]: p for p in promotions}
    assert set(kinds) == {"n_for_m", "nth_percent", "bundle"}
    assert [products[i]["name"] for i in kinds["n_for_m"]["products"]] == [
        "Croissant pur beurre"]
    assert kinds["bundle"]["price"] == 890
