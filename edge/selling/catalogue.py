"""The catalogue: products as the tills see them, fed by catalogue events.

Catalogue events come from head office, or from a CSV loaded by store IT
(the demo store loads `edge/data/demo_catalogue.csv`).
"""

from __future__ import annotations

import itertools
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
                   "then the one listed latest, then the larger id (a batch lists several "
                   "at one time and hash); its former barcodes are those its listings "
                   "name besides its latest one")

# The barcodes a product's listings named besides its latest one (former_barcodes):
# a till asking for the changes since its version must be sent the product that
# gets a barcode back when another moves away from it, with no event naming it
# (catalogue_versions.sharing_a_barcode). The same set on every node: every
# barcode of its listings held here but the latest's, whatever the order.
_FORMER = "INSERT OR IGNORE INTO former_barcodes (product_id, barcode) VALUES (?, ?)"


def _settle_barcodes(db: sqlite3.Connection, barcodes: set[str | None]) -> None:
    """Give each barcode to one product naming it, the same on every node.

    The products on sale first, then the one listed latest: a barcode moved
    to another product leaves the old one, whatever order their events
    arrive in. Read first, written only when its holder changes (most
    events change no barcode: two index reads, no write).
    """
    for barcode in barcodes - {None}:
        winner = db.execute(
            """SELECT id FROM products WHERE declared_barcode = ?
                ORDER BY active DESC, listed_time DESC, listed_hash DESC, id DESC LIMIT 1""",
            (barcode,)).fetchone()
        holder = db.execute("SELECT id FROM products WHERE barcode = ?", (barcode,)).fetchone()
        if winner == holder:
            continue
        if holder is not None:
            db.execute("UPDATE products SET barcode = NULL WHERE id = ?", (holder[0],))
        if winner is not None:
            db.execute("UPDATE products SET barcode = ? WHERE id = ?", (barcode, winner[0]))


# On sale: listed after it was last delisted ('' when never: every time is later).
ACTIVE = "(listed_time, listed_hash) > (delisted_time, delisted_hash)"

# What a listing sets, in _listing's order, and what is held of it (STANDING's last
# columns, after what an event needs of the product it names: one read by id). An
# update sets only the columns that differ: SQLite rewrites an index whose
# columns or WHERE an UPDATE names even to the same value, so a price change that named
# them all rewrote three index pages beside its row, scattered over a big catalogue (at
# 1M products a 20,000-price import logged about 246 MiB, docs/benchmarks.md).
LISTED = ("declared_barcode", "name", "price", "vat_rate", "category", "unit", "colour",
          "image", "favourite", "open_price")
STANDING = ("SELECT declared_barcode, listed_time, listed_hash, delisted_time, delisted_hash, "
            "name, price, vat_rate, category, unit, colour, image, favourite, open_price, "
            "active FROM products WHERE id = ?")


def _update(db: sqlite3.Connection, product_id: str, changes: dict[str, Any]) -> None:
    """The columns in `changes` (LISTED's and the listing's or delisting's own) set."""
    columns = ", ".join(f"{column} = ?" for column in changes)
    db.execute(f"UPDATE products SET {columns} WHERE id = ?", (*changes.values(), product_id))


# Head office's catalogue, and a node loading a CSV: the only types head office writes.
CATALOGUE_WRITERS = ("node", "headoffice")


def _listing(product: dict[str, Any], event: Event) -> tuple[Any, ...]:
    # null is absent, as the schema reads it (edge/schema.py): the default, not a NULL
    # that a NOT NULL column refuses on every node the listing reaches.
    given = {key: value for key, value in product.items() if value is not None}
    tile = {key: given.get(key, default) for key, default in TILE_DEFAULTS.items()}
    return (given.get("barcode"), product["name"], product["price"], product["vat_rate"],
            given.get("category", ""), tile["unit"], tile["colour"], tile["image"],
            tile["favourite"], int(tile["open_price"]), event.origin, event.time, event.hash)


@event_type("product_upserted", schema=ProductUpserted, merge=CATALOGUE_MERGE,
            written_by=CATALOGUE_WRITERS)
def _product_upserted(db: sqlite3.Connection, event: Event) -> None:
    # One read of what is held, then one write: the row whole if it is new
    # here, its listing if this one is later, nothing if a later listing is
    # already here (its details, whether it is on sale and its barcode's
    # holder are then unchanged). Python compares (time, hash) as SQLite
    # does: code point order is UTF-8 byte order.
    product = event.body
    held = db.execute(STANDING, (product["id"],)).fetchone()
    barcode = product.get("barcode")
    if held is None:
        # New here, so on sale; it takes its barcode unless a product holds it
        # (then no product that names it lacks it: the settling decides).
        db.execute(
            """INSERT INTO products (id, declared_barcode, name, price, vat_rate, category,
                unit, colour, image, favourite, open_price, listed_origin, listed_time,
                listed_hash, active, barcode)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1,
                (SELECT ?2 WHERE NOT EXISTS (SELECT 1 FROM products WHERE barcode = ?2)))""",
            (product["id"], *_listing(product, event)))
        if barcode is not None:
            _settle_barcodes(db, {barcode})
        return
    if (held[1], held[2]) >= (event.time, event.hash):
        # An older listing (or this one again): its barcode is a former one, unless the
        # latest names it too. Most listings name the barcode of the latest: no write.
        if barcode is not None and barcode != held[0]:
            db.execute(_FORMER, (product["id"], barcode))
        return
    active = int((event.time, event.hash) > (held[3], held[4]))
    listed = _listing(product, event)[:len(LISTED)]
    changes = {column: value for column, value, before
               in zip(LISTED, listed, (held[0], *held[5:14]), strict=True) if value != before}
    changes.update(listed_origin=event.origin, listed_time=event.time, listed_hash=event.hash)
    if active != held[14]:
        changes["active"] = active
    _update(db, product["id"], changes)
    if barcode != held[0]:  # a move, rare: the old barcode becomes a former one
        if held[0] is not None:
            db.execute(_FORMER, (product["id"], held[0]))
        if barcode is not None:
            db.execute("DELETE FROM former_barcodes WHERE product_id = ? AND barcode = ?",
                       (product["id"], barcode))
    _settle_barcodes(db, {held[0], barcode})


@event_type("product_delisted", schema=ProductDelisted, merge=CATALOGUE_MERGE,
            written_by=CATALOGUE_WRITERS)
def _product_delisted(db: sqlite3.Connection, event: Event) -> None:
    product_id = event.body["id"]
    held = db.execute(STANDING, (product_id,)).fetchone()
    if held is None:
        # Delisted before its listing arrived: the row remembers it, so that the
        # older listing, arriving later, does not put the product on sale.
        db.execute(
            "INSERT INTO products (id, name, price, vat_rate, active, delisted_time, "
            "delisted_hash) VALUES (?, '', 0, 0, 0, ?, ?)", (product_id, event.time, event.hash))
        return
    if (held[3], held[4]) >= (event.time, event.hash):
        return
    active = int((held[1], held[2]) > (event.time, event.hash))
    changes: dict[str, Any] = {"delisted_time": event.time, "delisted_hash": event.hash}
    if active != held[14]:
        changes["active"] = active
    _update(db, product_id, changes)
    _settle_barcodes(db, {held[0]})


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


def search_words(text: str) -> list[str]:
    """The words of `text` a search matches as prefixes: accents and punctuation dropped."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in plain if not unicodedata.combining(char))
    return re.findall(r"\w+", plain.lower())[:8]


def fts_query(text: str) -> str | None:
    """Every word of `text` as a prefix, accents and punctuation dropped."""
    return " ".join(f'"{word}"*' for word in search_words(text)) or None


# Each kind of match reads the first matches the index gives until `limit` are on
# sale, SEARCH_SLACK more at most (delisted ones are skipped), and sorts only those:
# a one-letter query on a million products costs what a rare word does. No relevance
# score: FTS5's bm25 counts every match of every word first.
SEARCH_SLACK = 20
SEARCH_ORDER = ("products whose name starts with the first word first, then the others "
                "matching every word; each group the first the index finds, shown by name "
                "(ASCII letters' case ignored)")


async def search(journal: Journal, text: str, limit: int) -> list[dict[str, Any]]:
    """Products on sale matching every word of `text` as a prefix (SEARCH_ORDER)."""
    words = search_words(text)
    if not words:
        return []
    rest = [f'"{word}"*' for word in words[1:]]
    found = await _matching(journal, " ".join([f'name : ^"{words[0]}"*', *rest]), limit)
    if len(found) < limit:  # too few start with it: those with the word further on
        held = {product["id"] for product in found}
        found += [product for product in await _matching(
            journal, " ".join([f'"{words[0]}"*', *rest]), limit + len(found))
            if product["id"] not in held][:limit - len(found)]
    return found


async def _matching(journal: Journal, query: str, limit: int) -> list[dict[str, Any]]:
    rows = await journal.read_all(
        f"""SELECT {PRODUCT_COLUMNS} FROM (
                SELECT products.* FROM (
                    SELECT rowid FROM products_fts WHERE products_fts MATCH ? LIMIT ?
                ) AS hits JOIN products ON products.rowid = hits.rowid
                WHERE products.active LIMIT ?
            ) ORDER BY name COLLATE NOCASE, name""",
        (query, limit + SEARCH_SLACK, limit),
    )
    return [product_json(row) for row in rows]


# Products per transaction when loading a catalogue: bounded memory, and the tills'
# sales wait for one batch at most.
IMPORT_BATCH = 1000


async def import_products(journal: Journal, products: Iterable[dict[str, Any]]) -> int:
    """Record each product as an event, IMPORT_BATCH per transaction, as `products` yields
    them (a crash midway leaves whole batches: loading the same products again is safe)."""
    count = 0
    batch: list[dict[str, Any]] = []
    for product in itertools.chain(products, [None]):
        if product is not None:
            batch.append(product)
        if batch and (product is None or len(batch) >= IMPORT_BATCH):
            count += await journal.write(lambda tx, batch=batch: _append_all(tx, batch))
            batch = []
    return count


def _append_all(tx: Tx, products: list[dict[str, Any]]) -> int:
    for product in products:
        tx.append("product_upserted", product)
    return len(products)
