"""The catalogue: products as the tills see them, fed by catalogue events.

Catalogue events come from head office, or from a CSV loaded by store IT
(the demo store loads `edge/data/demo_catalogue.csv`).
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import UNKNOWN_BARCODE, UNKNOWN_PRODUCT, EdgeError
from edge.schema import limits

# The CSV rules moved to their own module; still importable from here.
from edge.selling.catalogue_import import (  # noqa: F401
    VAT_RATES,
    CatalogueError,
    parse_catalogue_csv,
)

PRODUCT_COLUMNS = ("id, barcode, name, price, vat_rate, category, unit, colour, image, "
                   "favourite, open_price")
DEMO_CATALOGUE = Path(__file__).parents[1] / "data" / "demo_catalogue.csv"
# What a product is without them (a listing from before they existed, head office's).
TILE_DEFAULTS: dict[str, Any] = {"unit": "piece", "colour": "", "image": "", "favourite": 0,
                                 "open_price": False}


def product_json(row: sqlite3.Row) -> dict[str, Any]:
    """A product as tills get it: the shape of a `product_upserted` body, every field."""
    return {
        "id": row["id"],
        "barcode": row["barcode"],
        "name": row["name"],
        "price": row["price"],
        "vat_rate": row["vat_rate"],
        "category": row["category"],
        "unit": row["unit"],
        "colour": row["colour"],
        "image": row["image"],
        "favourite": row["favourite"],
        "open_price": bool(row["open_price"]),
    }


@dataclass(slots=True)
class ProductUpserted:
    id: str
    name: str
    price: int
    vat_rate: int
    barcode: str | None = None
    category: str = ""
    # How the till shows and sells it (issue 10); absent from older listings.
    unit: str | None = field(default=None, metadata=limits(max_length=8))
    colour: str | None = field(default=None, metadata=limits(max_length=7))
    image: str | None = field(default=None, metadata=limits(max_length=200))
    favourite: int | None = None
    open_price: bool | None = None


@dataclass(slots=True)
class ProductDelisted:
    id: str


CATALOGUE_MERGE = ("one product per id: its latest listing (time, then event hash) gives "
                   "its details, and it is on sale if that listing is later than its latest "
                   "delisting; a barcode named by several products goes to one on sale, "
                   "then the one listed latest")


def _settle_barcodes(db: sqlite3.Connection, barcodes: set[str | None]) -> None:
    """Give each barcode to one product naming it, the same on every node.

    The products on sale first, then the one listed latest: a barcode moved
    to another product leaves the old one, whatever order their events
    arrive in.
    """
    for barcode in barcodes - {None}:
        db.execute("UPDATE products SET barcode = NULL WHERE barcode = ?", (barcode,))
        db.execute(
            """UPDATE products SET barcode = ? WHERE id = (
                SELECT id FROM products WHERE declared_barcode = ?
                ORDER BY active DESC, listed_time DESC, listed_hash DESC LIMIT 1)""",
            (barcode, barcode),
        )


def _named_barcode(db: sqlite3.Connection, product_id: str) -> str | None:
    row = db.execute("SELECT declared_barcode FROM products WHERE id = ?",
                     (product_id,)).fetchone()
    return row[0] if row else None


# On sale: listed after it was last delisted ('' when never: every time is later).
ACTIVE = "(listed_time, listed_hash) > (delisted_time, delisted_hash)"


# Head office's catalogue, and a node loading a CSV: the only types head office writes.
CATALOGUE_WRITERS = ("node", "headoffice")


@event_type("product_upserted", schema=ProductUpserted, merge=CATALOGUE_MERGE,
            written_by=CATALOGUE_WRITERS)
def _product_upserted(db: sqlite3.Connection, event: Event) -> None:
    product = event.body
    named = _named_barcode(db, product["id"])
    # Made bare first if this is its first event here, then filled in unless
    # a later listing of it is already here.
    db.execute(
        "INSERT OR IGNORE INTO products (id, name, price, vat_rate, active) "
        "VALUES (?, '', 0, 0, 0)", (product["id"],))
    tile = {key: product.get(key, default) for key, default in TILE_DEFAULTS.items()}
    db.execute(
        """UPDATE products SET declared_barcode = ?, name = ?, price = ?, vat_rate = ?,
            category = ?, unit = ?, colour = ?, image = ?, favourite = ?, open_price = ?,
            listed_origin = ?, listed_time = ?, listed_hash = ? WHERE id = ?
            AND (listed_time, listed_hash) < (?, ?)""",
        (product.get("barcode"), product["name"], product["price"], product["vat_rate"],
         product.get("category", ""), tile["unit"], tile["colour"], tile["image"],
         tile["favourite"], int(tile["open_price"]), event.origin, event.time, event.hash,
         product["id"], event.time, event.hash),
    )
    db.execute(f"UPDATE products SET active = {ACTIVE} WHERE id = ?", (product["id"],))
    _settle_barcodes(db, {named, product.get("barcode")})


@event_type("product_delisted", schema=ProductDelisted, merge=CATALOGUE_MERGE,
            written_by=CATALOGUE_WRITERS)
def _product_delisted(db: sqlite3.Connection, event: Event) -> None:
    product_id = event.body["id"]
    # Delisted before its listing arrived: the row remembers it, so that the
    # older listing, arriving later, does not put the product on sale.
    db.execute(
        "INSERT OR IGNORE INTO products (id, name, price, vat_rate, active) "
        "VALUES (?, '', 0, 0, 0)", (product_id,))
    db.execute(
        """UPDATE products SET delisted_time = ?, delisted_hash = ? WHERE id = ?
            AND (delisted_time, delisted_hash) < (?, ?)""",
        (event.time, event.hash, product_id, event.time, event.hash),
    )
    db.execute(f"UPDATE products SET active = {ACTIVE} WHERE id = ?", (product_id,))
    _settle_barcodes(db, {_named_barcode(db, product_id)})


def find_product(
    tx: Tx, *, barcode: str | None = None, product_id: str | None = None
) -> dict[str, Any]:
    """A product still on sale, by barcode or id, inside a write."""
    if barcode is not None:
        row = tx.fetchone(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE barcode = ? AND active", (barcode,)
        )
        if row is None:
            raise EdgeError(UNKNOWN_BARCODE, f"no product has the barcode {barcode}")
    else:
        row = tx.fetchone(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ? AND active", (product_id,)
        )
        if row is None:
            raise EdgeError(UNKNOWN_PRODUCT, f"no product has the id {product_id}")
    return product_json(row)


async def lookup(journal: Journal, barcode: str) -> dict[str, Any]:
    row = await journal.read_one(
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE barcode = ? AND active", (barcode,)
    )
    if row is None:
        raise EdgeError(UNKNOWN_BARCODE, f"no product has the barcode {barcode}")
    return product_json(row)


async def export(journal: Journal, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Products on sale by id, a page after `after` (a till's offline copy)."""
    rows = await journal.read_all(
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE active AND id > ? ORDER BY id LIMIT ?",
        (after or "", limit),
    )
    return [product_json(row) for row in rows]


def fts_query(text: str) -> str | None:
    """Every word of `text` as a prefix, accents and punctuation dropped."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in plain if not unicodedata.combining(char))
    words = re.findall(r"\w+", plain.lower())
    return " ".join(f'"{word}"*' for word in words[:8]) or None


# Ranking only a bounded set of candidates keeps a one-letter query cheap
# on a large catalogue.
SEARCH_CANDIDATES = 200


async def search(journal: Journal, text: str, limit: int) -> list[dict[str, Any]]:
    query = fts_query(text)
    if query is None:
        return []
    rows = await journal.read_all(
        f"""SELECT {PRODUCT_COLUMNS} FROM (
                SELECT rowid, rank FROM products_fts WHERE products_fts MATCH ?
                LIMIT {SEARCH_CANDIDATES}
            ) AS hits JOIN products ON products.rowid = hits.rowid
            WHERE products.active ORDER BY hits.rank, products.name LIMIT ?""",
        (query, limit),
    )
    return [product_json(row) for row in rows]


async def import_products(journal: Journal, products: Iterable[dict[str, Any]]) -> int:
    """Record each product as an event, all in one transaction."""
    products = list(products)

    def work(tx: Tx) -> int:
        for product in products:
            tx.append("product_upserted", product)
        return len(products)

    return await journal.write(work)
