"""The catalogue: products as the tills see them, fed by catalogue events.

Catalogue events come from head office, or from a CSV loaded by store IT
(the demo store loads `edge/data/demo_catalogue.csv`).
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import UNKNOWN_BARCODE, UNKNOWN_PRODUCT, EdgeError
from edge.selling.barcodes import is_valid_gtin

VAT_RATES = (210, 550, 1000, 2000)
PRODUCT_COLUMNS = "id, barcode, name, price, vat_rate, category"
DEMO_CATALOGUE = Path(__file__).parents[1] / "data" / "demo_catalogue.csv"


def product_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "barcode": row["barcode"],
        "name": row["name"],
        "price": row["price"],
        "vat_rate": row["vat_rate"],
        "category": row["category"],
    }


@dataclass(slots=True)
class ProductUpserted:
    id: str
    name: str
    price: int
    vat_rate: int
    barcode: str | None = None
    category: str = ""


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
    db.execute(
        """UPDATE products SET declared_barcode = ?, name = ?, price = ?, vat_rate = ?,
            category = ?, listed_time = ?, listed_hash = ? WHERE id = ?
            AND (listed_time, listed_hash) < (?, ?)""",
        (product.get("barcode"), product["name"], product["price"], product["vat_rate"],
         product.get("category", ""), event.time, event.hash, product["id"],
         event.time, event.hash),
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


@dataclass(frozen=True)
class CatalogueError(Exception):
    """Rows of an import that are wrong; nothing of the import is applied."""

    problems: list[str]

    def __str__(self) -> str:
        return "; ".join(self.problems)


def parse_catalogue_csv(text: str) -> list[dict[str, Any]]:
    """Products from CSV text, or CatalogueError listing every bad line."""
    reader = csv.DictReader(io.StringIO(text))
    required = ["id", "barcode", "name", "price", "vat_rate"]
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise CatalogueError([f"line 1: missing column(s) {', '.join(missing)}"])
    products, problems = [], []
    seen_ids: set[str] = set()
    seen_barcodes: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            product = _product_from_row(row)
        except ValueError as error:
            problems.append(f"line {line}: {error}")
            continue
        if product["id"] in seen_ids:
            problems.append(f"line {line}: id {product['id']} appears twice")
        if product["barcode"] in seen_barcodes:
            problems.append(f"line {line}: barcode {product['barcode']} appears twice")
        seen_ids.add(product["id"])
        seen_barcodes.add(product["barcode"])
        products.append(product)
    if problems:
        raise CatalogueError(problems)
    return products


def _product_from_row(row: dict[str, str]) -> dict[str, Any]:
    product_id = (row.get("id") or "").strip()
    barcode = (row.get("barcode") or "").strip()
    name = (row.get("name") or "").strip()
    if not product_id:
        raise ValueError("id is empty")
    if not is_valid_gtin(barcode):
        raise ValueError(f"barcode {barcode!r} is not a valid EAN/GTIN")
    if not name:
        raise ValueError("name is empty")
    try:
        price = int(row["price"])
    except (TypeError, ValueError):
        raise ValueError(f"price {row.get('price')!r} is not a whole number of cents") from None
    if price <= 0:
        raise ValueError(f"price {price} must be positive")
    try:
        vat_rate = int(row["vat_rate"])
    except (TypeError, ValueError):
        raise ValueError(f"vat_rate {row.get('vat_rate')!r} is not a number") from None
    if vat_rate not in VAT_RATES:
        allowed = ", ".join(map(str, VAT_RATES))
        raise ValueError(f"vat_rate {vat_rate} is not one of {allowed} (basis points)")
    return {
        "id": product_id,
        "barcode": barcode,
        "name": name,
        "price": price,
        "vat_rate": vat_rate,
        "category": (row.get("category") or "").strip(),
    }


async def import_products(journal: Journal, products: Iterable[dict[str, Any]]) -> int:
    """Record each product as an event, all in one transaction."""
    products = list(products)

    def work(tx: Tx) -> int:
        for product in products:
            tx.append("product_upserted", product)
        return len(products)

    return await journal.write(work)
