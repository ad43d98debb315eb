"""The till's product grid: favourites first, the store's categories in its order, bounded,
and every query on an index."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from signing_support import identity

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.journal.store import Journal
from edge.selling.catalogue_grid import CATEGORIES, MAX_CATEGORIES, GridSettings, grid


def product(product_id: str, name: str, category: str, favourite: int = 0,
            **extra: object) -> dict[str, object]:
    return {"id": product_id, "name": name, "price": 100, "vat_rate": 550,
            "category": category, "favourite": favourite, **extra}


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = Journal(tmp_path / "store.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    products = [
        product("b1", "Baguette", "Pain", 2, colour="brown"),
        product("b2", "Ficelle", "Pain"),
        product("b3", "Bâtard", "Pain"),
        product("v1", "Croissant", "Viennoiserie", 1, colour="#f5c542", image="img/c.webp"),
        product("v2", "Chausson", "Viennoiserie"),
        product("d1", "Divers", "", 3, open_price=True, price=0),
        product("a1", "Bière", "Alcool"),
        product("gone", "Ancien", "Pain", 1),
        product("w1", "Comté", "Crèmerie", unit="kg"),
    ]

    def seed(tx):  # type: ignore[no-untyped-def]
        for body in products:
            tx.append("product_upserted", body)

    await journal.write(seed)
    await asyncio.sleep(0.01)  # a later time: the delisting wins (a tie would go by hash)
    await journal.write(lambda tx: tx.append("product_delisted", {"id": "gone"}))
    yield journal
    await journal.close()


def _shown(answer: dict) -> list[tuple[str, list[str], bool]]:
    return [(c["name"] or ("*" if c["favourites"] else ""), [t["id"] for t in c["tiles"]],
             c["more"]) for c in answer["categories"]]


async def test_favourites_then_the_store_s_categories_then_the_rest(journal: Journal) -> None:
    answer = await grid(journal, GridSettings(categories=("Viennoiserie", "Pain", "Nowhere"),
                                              favourites=("w1", "v1", "missing"), tiles=2))
    assert answer["more_categories"] is False
    assert _shown(answer) == [
        ("*", ["w1", "v1"], False),  # the store's, then the catalogue's ranks (cut at 2)
        ("Viennoiserie", ["v2", "v1"], False),
        ("Pain", ["b1", "b3"], True),  # by name, bounded; "more" says search finds the rest
        ("Alcool", ["a1"], False),
        ("Crèmerie", ["w1"], False),
        ("", ["d1"], False),  # no category: last
    ]
    croissant = answer["categories"][0]["tiles"][1]
    assert croissant == {"id": "v1", "name": "Croissant", "price": 100, "unit": "piece",
                         "colour": "#f5c542", "image": "img/c.webp", "open_price": False}
    assert answer["categories"][-1]["tiles"][0]["open_price"] is True
    assert answer["categories"][0]["tiles"][0]["unit"] == "kg"


async def test_without_settings_the_catalogue_s_favourites_and_names(journal: Journal) -> None:
    answer = await grid(journal, GridSettings())
    assert _shown(answer)[0] == ("*", ["v1", "b1", "d1"], False)
    assert [c["name"] for c in answer["categories"][1:]] == [
        "Alcool", "Crèmerie", "Pain", "Viennoiserie", ""]


async def test_products_sharing_a_name_go_by_id_whatever_order_they_came_in(
    journal: Journal,
) -> None:
    """As the till's offline grid orders them (web/grid-layout.js), never by arrival."""
    def same_names(tx):  # type: ignore[no-untyped-def]
        for product_id in ("t3", "t1", "t2"):
            tx.append("product_upserted", product(product_id, "Pain de mie", "Tie", 5))

    await journal.write(same_names)
    answer = await grid(journal, GridSettings(tiles=5))
    assert _shown(answer)[0] == ("*", ["v1", "b1", "d1", "t1", "t2"], False)
    assert ("Tie", ["t1", "t2", "t3"], False) in _shown(answer)


async def test_categories_are_bounded(journal: Journal) -> None:
    def many(tx):  # type: ignore[no-untyped-def]
        for n in range(MAX_CATEGORIES + 5):
            tx.append("product_upserted", product(f"x{n}", f"X {n}", f"Rayon {n:02d}"))

    await journal.write(many)
    answer = await grid(journal, GridSettings(categories=("Rayon 44",)))
    names = [c["name"] for c in answer["categories"] if not c["favourites"]]
    assert answer["more_categories"] is True and len(names) == MAX_CATEGORIES
    assert names[0] == "Rayon 44"  # the store's own, though past the first 40 by name


def test_every_grid_query_walks_an_index(tmp_path: Path) -> None:
    from edge.journal.migrations import migrate

    db = sqlite3.connect(tmp_path / "plan.sqlite3")
    migrate(db)

    def plan(sql: str, params: tuple) -> str:
        return " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))

    assert "SCAN products" not in plan(CATEGORIES, (40,))
    assert "products_by_category" in plan(CATEGORIES, (40,))
    tiles = plan("SELECT id FROM products WHERE active AND category = ? ORDER BY name "
                 "LIMIT ?", ("Pain", 10))
    assert "products_by_category" in tiles and "TEMP B-TREE" not in tiles
    favourites = plan("SELECT id FROM products WHERE active AND favourite > 0 "
                      "ORDER BY favourite, name LIMIT ?", (10,))
    assert "products_by_favourite" in favourites and "TEMP B-TREE" not in favourites
    db.close()
