"""Catalogue and promotions CSV files, checked as a whole: pure, no I/O.

Shared by head office's import (edge/headoffice/catalogue.py) and a store's
own (`edge catalogue import`, edge/selling/catalogue_admin.py): the same
rules and the same line-numbered problems, every bad line named at once, and
nothing returned when one is bad (`CatalogueError`).

Head office reads the columns it keeps (`store_fields=False`: id, barcode,
name, price, vat_rate, category; a barcode required); a store also reads how
its till shows and sells each product (unit, colour, image, favourite,
open_price), and a product without a barcode (bread is sold from a tile).

Both refuse a first line naming a column twice and text a till or a receipt
would show otherwise than it is held, and take off the quote `edge catalogue
export` puts before a cell a spreadsheet would run (edge/selling/catalogue_text.py).
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from edge.selling.barcodes import is_valid_gtin
from edge.selling.catalogue_text import from_spreadsheet_safe, hidden_character

VAT_RATES = (210, 550, 1000, 2000)
UNITS = ("piece", "kg")  # kg: the price is per kilogram, the till sells grams
# Tile colours by name (the till has a shade for each), or any "#rrggbb".
COLOURS = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown",
           "grey")
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
# An image is a path on the node serving the till (the till's CSP allows no other
# origin): relative, plain characters, no scheme, no way up.
IMAGE_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~/-]{0,199}")
MAX_ID = 64
MAX_NAME = 120
MAX_CATEGORY = 60
MAX_FAVOURITE = 9999
PROMOTION_KINDS = ("n_for_m", "nth_percent", "bundle")
MAX_PROMOTION_PRODUCTS = 100
MAX_N = 99
YES = ("1", "yes", "true", "oui", "y", "o")
NO = ("", "0", "no", "false", "non", "n")

PRODUCT_COLUMNS = ("id", "barcode", "name", "price", "vat_rate")
PROMOTION_COLUMNS = ("id", "name", "kind", "products", "n")


@dataclass(eq=False)
class CatalogueError(Exception):
    """Rows of an import that are wrong; nothing of the import is applied."""

    problems: list[str]

    def __str__(self) -> str:
        return "; ".join(self.problems)


def parse_catalogue_csv(text: str, *, store_fields: bool = True) -> list[dict[str, Any]]:
    """Products from CSV text, or CatalogueError listing every bad line.

    Each product: {id, barcode, name, price, vat_rate, category}, and with
    `store_fields` also {unit, colour, image, favourite, open_price} (their
    defaults when a column is absent).
    """
    return [product for _, product in parse_catalogue_rows(text, store_fields=store_fields)]


def parse_catalogue_rows(text: str, *,
                         store_fields: bool = True) -> list[tuple[int, dict[str, Any]]]:
    """`parse_catalogue_csv`, each product with its line number (for later checks)."""
    products, problems = [], []
    for line, product, problem in _catalogue_lines(text, store_fields, KeysInMemory()):
        if problem:
            problems.append(problem)
        elif product is not None:
            products.append((line, product))
    if problems:
        raise CatalogueError(problems)
    return products


def check_catalogue(text: str, checked: CheckedFile, *, store_fields: bool = True) -> int:
    """Every line of a products file checked one at a time, each good product kept in
    `checked`: how many, or CatalogueError naming every bad line (as
    `parse_catalogue_rows`, for a file of any size)."""
    count, problems = 0, []
    for line, product, problem in _catalogue_lines(text, store_fields, checked):
        if problem:
            problems.append(problem)
        elif product is not None and not problems:  # a bad file is not imported
            checked.keep(line, product)
            count += 1
    if problems:
        raise CatalogueError(problems)
    return count


Line = tuple[int, dict[str, Any] | None, str | None]


def _catalogue_lines(text: str, store_fields: bool, seen: KeysInMemory | CheckedFile | None
                     ) -> Iterator[Line]:
    """Each line: its number, its product (None if bad) and its problem (None if fine).
    With `seen`, an id or a barcode met on an earlier line is a problem."""
    reader = csv.DictReader(text_lines(text.removeprefix("\ufeff")))
    _check_columns(reader, PRODUCT_COLUMNS)
    for row in reader:
        line = reader.line_num
        try:
            product = product_from_row(row, store_fields)
        except ValueError as error:
            yield line, None, f"line {line}: {error}"
            continue
        if seen is not None:
            # Both recorded, whatever the first says: the next repeat of either is named.
            new_id = seen.add("id", product["id"])
            new_barcode = product["barcode"] is None or seen.add("barcode", product["barcode"])
            if not new_id:
                yield line, None, f"line {line}: id {product['id']} appears twice"
            if not new_barcode:
                yield line, None, f"line {line}: barcode {product['barcode']} appears twice"
            if not (new_id and new_barcode):
                continue
        yield line, product, None


def text_lines(text: str) -> Iterator[str]:
    """The lines of `text`, each with its end: what `io.StringIO(text)` gives, without
    its copy of the whole text at four bytes a character (275 MB for a million
    products)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


class KeysInMemory:
    """The ids and barcodes met in a file, in sets (a file held whole anyway)."""

    def __init__(self) -> None:
        self._keys: set[tuple[str, str]] = set()

    def add(self, kind: str, key: str) -> bool:
        """False if it was met before."""
        if (kind, key) in self._keys:
            return False
        self._keys.add((kind, key))
        return True


class CheckedFile:
    """A products file as checked line by line: the ids and barcodes met (a repeat is a
    problem) and each good product, in a private temporary SQLite database (on disk
    once large), so a million lines are read once and use bounded memory."""

    def __init__(self) -> None:
        # Used by one thread at a time: the import's, or the journal writer's it waits for.
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute("CREATE TABLE seen (kind TEXT, key TEXT, PRIMARY KEY (kind, key)) "
                         "WITHOUT ROWID")
        self._db.execute("CREATE TABLE kept (line INTEGER PRIMARY KEY, product BLOB)")

    def add(self, kind: str, key: str) -> bool:
        """False if it was met before."""
        try:
            self._db.execute("INSERT INTO seen VALUES (?, ?)", (kind, key))
        except sqlite3.IntegrityError:
            return False
        return True

    def has(self, kind: str, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM seen WHERE kind = ? AND key = ?",
                                (kind, key)).fetchone() is not None

    def keep(self, line: int, product: dict[str, Any]) -> None:
        self._db.execute("INSERT INTO kept VALUES (?, ?)", (line, orjson.dumps(product)))

    def batches(self, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        """The products kept, `size` at a time, in the file's order."""
        after = 0
        while rows := self._db.execute("SELECT line, product FROM kept WHERE line > ? "
                                       "ORDER BY line LIMIT ?", (after, size)).fetchall():
            yield [(line, orjson.loads(product)) for line, product in rows]
            after = rows[-1][0]

    def close(self) -> None:
        self._db.close()


def _check_columns(reader: csv.DictReader[str], required: tuple[str, ...],
                   where: str = "line 1") -> None:
    problems = header_problems(reader.fieldnames or [], required, where)
    if problems:
        raise CatalogueError(problems)


def header_problems(columns: list[str], required: tuple[str, ...],
                    where: str = "line 1") -> list[str]:
    """What is wrong with a file's first line: a required column missing, a column
    named twice (a supplier's price and the shop's: csv.DictReader would silently
    take the last), a column name holding a hidden character (two columns shown
    `price`, one read). Empty names (a spreadsheet's blank columns) are never read."""
    missing = [column for column in required if column not in columns]
    if missing:
        return [f"{where}: missing column(s) {', '.join(missing)}"]
    problems = [f"{where}: column {number} {problem}" for number, column
                in enumerate(columns, start=1) if (problem := hidden_character(column))]
    # " Price" is price to whoever reads the file, whichever one DictReader reads.
    counted = Counter(column.strip().casefold() for column in columns if column.strip())
    return problems + [f"{where}: column {name} appears twice"
                       for name, count in sorted(counted.items()) if count > 1]


def _text(row: dict[str, str], column: str) -> str:
    return from_spreadsheet_safe((row.get(column) or "").strip())


def _bounded_text(value: str, what: str, longest: int) -> str:
    if len(value) > longest:
        raise ValueError(f"{what} is longer than {longest} characters")
    problem = hidden_character(value)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value


def product_from_row(row: dict[str, str], store_fields: bool = True) -> dict[str, Any]:
    product_id = _bounded_text(_text(row, "id"), "id", MAX_ID)
    barcode = _text(row, "barcode")
    name = _bounded_text(_text(row, "name"), "name", MAX_NAME)
    if not product_id:
        raise ValueError("id is empty")
    if (barcode or not store_fields) and not is_valid_gtin(barcode):
        raise ValueError(f"barcode {barcode!r} is not a valid EAN/GTIN")
    if not name:
        raise ValueError("name is empty")
    price = _whole(row.get("price"), "price", "is not a whole number of cents")
    vat_rate = _whole(row.get("vat_rate"), "vat_rate", "is not a number")
    if vat_rate not in VAT_RATES:
        allowed = ", ".join(map(str, VAT_RATES))
        raise ValueError(f"vat_rate {vat_rate} is not one of {allowed} (basis points)")
    product: dict[str, Any] = {
        "id": product_id,
        "barcode": barcode or None,
        "name": name,
        "price": price,
        "vat_rate": vat_rate,
        "category": _bounded_text(_text(row, "category"), "category", MAX_CATEGORY),
    }
    if not store_fields:
        if price <= 0:
            raise ValueError(f"price {price} must be positive")
        return product
    product |= tile_fields(row)
    if price < 0 or (price == 0 and not product["open_price"]):
        why = " (0 only with open_price: the price is typed at the till)" if price == 0 else ""
        raise ValueError(f"price {price} must be positive{why}")
    if product["open_price"] and product["unit"] != "piece":
        raise ValueError("an open_price product is sold by the piece (unit piece)")
    return product


def _whole(raw: str | None, column: str, problem: str) -> int:
    text = (raw or "").strip()
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise ValueError(f"{column} {raw!r} {problem}")
    return int(text)


def tile_fields(row: dict[str, str]) -> dict[str, Any]:
    """How the till shows and sells a product: unit, colour, image, favourite, open_price."""
    unit = _text(row, "unit").lower() or "piece"
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {', '.join(UNITS)}")
    colour = _text(row, "colour")
    if colour and colour.lower() not in COLOURS and not HEX_COLOUR.fullmatch(colour):
        raise ValueError(f"colour {colour!r} is not #rrggbb nor one of {', '.join(COLOURS)}")
    image = _text(row, "image")
    if image and not image_path_ok(image):
        raise ValueError(f"image {image[:40]!r} is not a relative path on the node (letters, "
                         "digits, . _ ~ / -; at most 200 characters; no '..')")
    favourite_text = _text(row, "favourite") or "0"
    favourite = _whole(favourite_text, "favourite", "is not a whole number")
    if not 0 <= favourite <= MAX_FAVOURITE:
        raise ValueError(f"favourite {favourite} must be 0 (not a favourite) to {MAX_FAVOURITE}")
    open_text = _text(row, "open_price").lower()
    if open_text not in YES + NO:
        raise ValueError(f"open_price {open_text!r} is not yes or no")
    return {"unit": unit, "colour": colour.lower(), "image": image, "favourite": favourite,
            "open_price": open_text in YES}


def image_path_ok(image: str) -> bool:
    return bool(IMAGE_PATH.fullmatch(image)) and ".." not in image.split("/") \
        and "//" not in image


# Promotions

def parse_promotions_csv(text: str, known_products: set[str] | None = None,
                         label: str = "promotions") -> list[dict[str, Any]]:
    """Promotions from CSV text (columns id, name, kind, products as ids separated by
    `|`, n, m, percent, price, starts, ends), or CatalogueError naming every bad line
    as "`label` line N". `known_products`: ids a promotion may name (None: any)."""
    return [promotion for _, promotion in parse_promotion_rows(text, known_products, label)]


def parse_promotion_rows(text: str, known_products: set[str] | None = None,
                         label: str = "promotions") -> list[tuple[int, dict[str, Any]]]:
    """`parse_promotions_csv`, each promotion with its line number."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    _check_columns(reader, PROMOTION_COLUMNS, f"{label} line 1")
    promotions, problems = [], []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            promotion = promotion_from_row(row)
            unknown = [product for product in promotion["products"]
                       if known_products is not None and product not in known_products]
            if unknown:
                raise ValueError(f"product(s) {', '.join(unknown)} not in the catalogue")
        except ValueError as error:
            problems.append(f"{label} line {line}: {error}")
            continue
        if promotion["id"] in seen:
            problems.append(f"{label} line {line}: id {promotion['id']} appears twice")
        seen.add(promotion["id"])
        promotions.append((line, promotion))
    if problems:
        raise CatalogueError(problems)
    return promotions


def promotion_from_row(row: dict[str, str]) -> dict[str, Any]:
    promotion_id = _bounded_text(_text(row, "id"), "id", MAX_ID)
    name = _bounded_text(_text(row, "name"), "name", MAX_NAME)
    if not promotion_id:
        raise ValueError("id is empty")
    if not name:
        raise ValueError("name is empty")
    products = [product.strip() for product in _text(row, "products").split("|")]
    if products == [""] or "" in products:
        raise ValueError("products must be product ids separated by |, none empty")
    for product in products:
        _bounded_text(product, "products", MAX_ID)
    body: dict[str, Any] = {"id": promotion_id, "name": name, "kind": _text(row, "kind"),
                            "products": products}
    for column in ("n", "m", "percent", "price"):
        if _text(row, column):
            body[column] = _whole(row.get(column), column, "is not a whole number")
    for column in ("starts", "ends"):
        if _text(row, column):
            body[column] = _text(row, column)
    problem = promotion_problem(body)
    if problem:
        raise ValueError(problem)
    return body


KIND_FIELDS = {"n_for_m": "m", "nth_percent": "percent", "bundle": "price"}


def promotion_problem(body: dict[str, Any]) -> str | None:
    """What makes a promotion unusable (None: it is fine). The same rules for a CSV row
    and an event held (the pricing function is never given one that breaks them)."""
    kind = body.get("kind")
    if kind not in PROMOTION_KINDS:
        return f"kind {kind!r} is not one of {', '.join(PROMOTION_KINDS)}"
    products = body.get("products")
    if not isinstance(products, list) or not 1 <= len(products) <= MAX_PROMOTION_PRODUCTS:
        return f"a promotion names 1 to {MAX_PROMOTION_PRODUCTS} products"
    if len(set(products)) != len(products):
        return "a product appears twice in products"
    n = body.get("n")
    if not isinstance(n, int) or not 2 <= n <= MAX_N:
        return f"n must be a whole number from 2 to {MAX_N} (the group size)"
    needed = KIND_FIELDS[kind]
    for column in KIND_FIELDS.values():
        if column != needed and body.get(column) is not None:
            return f"{column} is not used by a {kind} promotion (leave it empty)"
    value = body.get(needed)
    if not isinstance(value, int):
        return f"a {kind} promotion needs {needed}"
    if kind == "n_for_m" and not 1 <= value < n:
        return f"m must be at least 1 and less than n ({n}): {value}"
    if kind == "nth_percent" and not 1 <= value <= 10000:
        return f"percent must be 1 to 10000 (basis points: 5000 = 50 %): {value}"
    if kind == "bundle" and value <= 0:
        return f"price {value} must be positive (cents)"
    days = []
    for column in ("starts", "ends"):
        text = body.get(column)
        if text is None:
            continue
        try:
            days.append(date.fromisoformat(text))
        except (TypeError, ValueError):
            return f"{column} {text!r} is not a date (YYYY-MM-DD)"
        if len(text) != 10:
            return f"{column} {text!r} is not a date (YYYY-MM-DD)"
    if len(days) == 2 and days[1] < days[0]:
        return "ends is before starts"
    return None
