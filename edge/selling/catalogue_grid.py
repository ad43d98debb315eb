"""The till's product grid: categories of touch tiles, favourites first.

Bread carries no barcode: a tile tap is how most of a bakery's sales are
rung up, so the grid must come as fast as a scan. Every query here walks an
index (migration 22: products by (category, name) and by favourite rank,
both of products on sale only) and is bounded, whatever the catalogue's size:
at most `MAX_CATEGORIES` categories, each at most `tiles` tiles.

The store decides the order (`[grid]` in the config): its favourites (product
ids) first, then the catalogue's (`favourite` rank > 0, lowest first, then by
name); its categories in the order it lists them, then the others by name,
the products without a category last. Tiles go by name, then id (two products
may share a name: the order is the same everywhere). A till offline builds the same grid
from its copy of the catalogue with the same rule (catalogue/export gives it
the store's settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.journal.store import Journal

MAX_CATEGORIES = 40
MAX_TILES = 200
TILE_COLUMNS = "id, name, price, unit, colour, image, open_price"


@dataclass(frozen=True)
class GridSettings:
    categories: tuple[str, ...] = ()  # the store's order; the others follow by name
    favourites: tuple[str, ...] = ()  # product ids shown first, in this order
    tiles: int = 48  # most tiles per category (favourites included)

    def as_json(self) -> dict[str, Any]:
        return {"categories": list(self.categories), "favourites": list(self.favourites),
                "tiles": self.tiles}


def tile_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "price": row["price"], "unit": row["unit"],
            "colour": row["colour"], "image": row["image"],
            "open_price": bool(row["open_price"])}


# Each distinct category by an index seek from the last one: a few seeks, not a scan.
CATEGORIES = """
WITH RECURSIVE seen(category, k) AS (
    SELECT (SELECT MIN(category) FROM products WHERE active), 1
    UNION ALL
    SELECT (SELECT MIN(category) FROM products WHERE active AND category > seen.category),
           k + 1
    FROM seen WHERE seen.category IS NOT NULL AND k <= ?
)
SELECT category FROM seen WHERE category IS NOT NULL
"""


def category_order(found: list[str], settings: GridSettings) -> list[str]:
    """The store's categories first (those with products), the others by name, '' last."""
    present = set(found)
    listed = [name for name in dict.fromkeys(settings.categories) if name in present]
    rest = sorted(name for name in present - set(listed) if name)
    return [*listed, *rest, *([""] if "" in present and "" not in listed else [])]


async def grid(journal: Journal, settings: GridSettings) -> dict[str, Any]:
    """`catalogue/grid`: {categories: [{name, favourites, tiles, more}], more_categories}."""
    tiles = max(1, min(settings.tiles, MAX_TILES))
    # One more than shown says whether there are more: categories, then tiles.
    found = [row["category"] for row in await journal.read_all(CATEGORIES, (MAX_CATEGORIES,))]
    listed = list(dict.fromkeys(settings.categories))[:MAX_CATEGORIES]
    if listed:  # the store's own, wherever they fall in the alphabet
        marks = ", ".join("?" * len(listed))
        found += [row["category"] for row in await journal.read_all(
            f"SELECT DISTINCT category FROM products WHERE active AND category IN ({marks})",
            tuple(listed))]
    names = category_order(found, settings)
    more_categories = len(names) > MAX_CATEGORIES
    names = names[:MAX_CATEGORIES]
    answer: list[dict[str, Any]] = []
    favourites = await _favourites(journal, settings, tiles)
    if favourites:
        answer.append({"name": "", "favourites": True, "tiles": favourites[:tiles],
                       "more": False})
    if names:
        parts = " UNION ALL ".join(
            f"SELECT * FROM (SELECT {TILE_COLUMNS}, category FROM products "
            "WHERE active AND category = ? ORDER BY name, id LIMIT ?)" for _ in names)
        params: list[Any] = []
        for name in names:
            params += [name, tiles + 1]
        by_category: dict[str, list[Any]] = {name: [] for name in names}
        for row in await journal.read_all(parts, tuple(params)):
            by_category[row["category"]].append(row)
        for name in names:
            rows = by_category[name]
            answer.append({"name": name, "favourites": False,
                           "tiles": [tile_json(row) for row in rows[:tiles]],
                           "more": len(rows) > tiles})
    return {"categories": answer, "more_categories": more_categories}


async def _favourites(journal: Journal, settings: GridSettings,
                      tiles: int) -> list[dict[str, Any]]:
    chosen = list(dict.fromkeys(settings.favourites))[:tiles]
    shown: dict[str, dict[str, Any]] = {}
    if chosen:
        marks = ", ".join("?" * len(chosen))
        rows = await journal.read_all(
            f"SELECT {TILE_COLUMNS} FROM products WHERE active AND id IN ({marks})",
            tuple(chosen))
        held = {row["id"]: tile_json(row) for row in rows}
        shown = {product_id: held[product_id] for product_id in chosen if product_id in held}
    if len(shown) < tiles:
        rows = await journal.read_all(
            f"SELECT {TILE_COLUMNS} FROM products WHERE active AND favourite > 0 "
            "ORDER BY favourite, name, id LIMIT ?", (tiles + len(shown),))
        for row in rows:
            shown.setdefault(row["id"], tile_json(row))
    return list(shown.values())[:tiles]
