"""A store's catalogue import, checked whole then written a batch per transaction.

`edge catalogue import` and the store IT page (edge/selling/catalogue_admin.py)
hand their files' texts to `import_texts`: every line checked first (the CSV
rules are edge/selling/catalogue_import.py's), then every batch against what
the store holds (head office's products are refused), and nothing written if
one line does not fit; then only the differences become events, read
IMPORT_BATCH products at a time and written in slices the tills' sales go
between (`Journal.write_in_slices`).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from edge.journal.signing import is_headoffice_origin
from edge.journal.store import Journal, Tx
from edge.selling.catalogue import TILE_DEFAULTS
from edge.selling.catalogue_batches import batched
from edge.selling.catalogue_import import (
    CatalogueError,
    CheckedFile,
    check_catalogue,
    parse_promotion_rows,
)
from edge.selling.promotions import PROMOTION_FIELDS, store_promotion_ids

# Products read and checked at a time: bounded memory; each batch is written in
# slices of a few hundredths of a second, so a till's sale never waits for more.
IMPORT_BATCH = 1000
InFile = Callable[[str], bool]
PRODUCT_FIELDS = ("id", "barcode", "name", "price", "vat_rate", "category", *TILE_DEFAULTS)


@dataclass
class ImportSummary:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    promotions_added: int = 0
    promotions_changed: int = 0
    promotions_unchanged: int = 0
    promotions_ended: int = 0

    def __str__(self) -> str:
        text = f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged"
        promotions = (self.promotions_added + self.promotions_changed
                      + self.promotions_unchanged + self.promotions_ended)
        if promotions:
            text += (f"; promotions: {self.promotions_added} added, {self.promotions_changed} "
                     f"changed, {self.promotions_unchanged} unchanged, "
                     f"{self.promotions_ended} ended")
        return text


# The import itself, in one write transaction

def import_into(tx: Tx, products: list[tuple[int, dict[str, Any]]],
                promotions: list[tuple[int, dict[str, Any]]] | None,
                in_file: InFile | None = None, write: bool = True) -> ImportSummary:
    """Check the parsed files against the store and write the differences; CatalogueError
    (every problem, by line) and nothing written if one does not fit. `in_file`: is a
    product id in the products file (by default: among `products`); not `write`: the
    checks and the summary only."""
    summary, problems = ImportSummary(), []
    if in_file is None:
        ids = {product["id"] for _, product in products}
        in_file = ids.__contains__
    upserts = []
    # What the store holds of the batch's ids and barcodes: two reads, not two per line.
    holding = {row["id"]: row for row in _rows_naming(
        tx, "SELECT * FROM products WHERE id IN ({})", [p["id"] for _, p in products])}
    owners: dict[str, list[sqlite3.Row]] = {}
    for row in _rows_naming(
            tx, "SELECT id, name, listed_origin, declared_barcode FROM products "
                "WHERE declared_barcode IN ({}) AND active ORDER BY declared_barcode, rowid",
            [p["barcode"] for _, p in products if p["barcode"] is not None]):
        owners.setdefault(row["declared_barcode"], []).append(row)
    for line, product in products:
        held = holding.get(product["id"])
        if held is not None and is_headoffice_origin(held["listed_origin"]):
            problems.append(f"line {line}: id {product['id']} is head office's product "
                            f"({held['name']}): give the store's own products ids of their "
                            f"own, e.g. L-{product['id']}")
            continue
        if product["barcode"] is not None:
            owner = next((row for row in owners.get(product["barcode"], [])
                          if row["id"] != product["id"]), None)
            if owner is not None and (not in_file(owner["id"])
                                      or is_headoffice_origin(owner["listed_origin"])):
                problems.append(f"line {line}: barcode {product['barcode']} is product "
                                f"{owner['id']}'s ({owner['name']}): change or remove one")
                continue
        if held is None or held["listed_time"] == "":
            summary.added += 1
        elif held["active"] and _same_product(held, product):
            summary.unchanged += 1
            continue
        else:
            summary.changed += 1
        upserts.append(product)
    endings: list[str] = []
    if promotions is not None:
        endings = _promotion_changes(tx, promotions, in_file, summary, problems)
    if problems:
        raise CatalogueError(problems)
    if not write:
        return summary
    # A hundred products an event (catalogue_batches.py): one signature and chain link
    # each, not one per product.
    for type_, body in batched([("product_upserted", product) for product in upserts]):
        tx.append(type_, body)
    for _, promotion in promotions or []:
        if promotion.get("write"):
            tx.append("promotion_upserted", {key: value for key, value in promotion.items()
                                             if key != "write"})
    for promotion_id in endings:
        tx.append("promotion_ended", {"id": promotion_id})
    return summary


def _rows_naming(tx: Tx, sql: str, keys: list[str]) -> list[sqlite3.Row]:
    """`sql`'s rows for `keys` (its `IN ({})`), asked in parts SQLite takes."""
    rows = []
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        rows += tx.fetchall(sql.format(", ".join("?" * len(part))), part)
    return rows


def _same_product(held: sqlite3.Row, product: dict[str, Any]) -> bool:
    now = {key: held[key] for key in PRODUCT_FIELDS} | {
        "barcode": held["declared_barcode"], "open_price": bool(held["open_price"])}
    return now == {key: product[key] for key in PRODUCT_FIELDS}


def _promotion_changes(tx: Tx, promotions: list[tuple[int, dict[str, Any]]], in_file: InFile,
                       summary: ImportSummary, problems: list[str]) -> list[str]:
    """Mark the promotions to write; the store's own ones to end (not in the file)."""
    current = store_promotion_ids(tx.db)
    for line, promotion in promotions:
        unknown = [product_id for product_id in promotion["products"]
                   if not in_file(product_id) and tx.fetchone(
                       "SELECT 1 FROM products WHERE id = ? AND active", (product_id,)) is None]
        held = tx.fetchone("SELECT listed_origin, listed_time FROM promotions WHERE id = ?",
                           (promotion["id"],))
        if unknown:
            problems.append(f"promotions line {line}: product(s) {', '.join(unknown)} not in "
                            "the catalogue")
        elif held is not None and is_headoffice_origin(held["listed_origin"]):
            problems.append(f"promotions line {line}: id {promotion['id']} is head office's "
                            "promotion: give the store's own promotions ids of their own")
        elif held is None or held["listed_time"] == "":
            summary.promotions_added += 1
            promotion["write"] = True
        elif _same_promotion(current.get(promotion["id"]), promotion):
            summary.promotions_unchanged += 1
        else:
            summary.promotions_changed += 1
            promotion["write"] = True
    named = {promotion["id"] for _, promotion in promotions}
    endings = sorted(promotion_id for promotion_id, held in current.items()
                     if promotion_id not in named and not is_headoffice_origin(held["origin"]))
    summary.promotions_ended = len(endings)
    return endings


def _same_promotion(held: dict[str, Any] | None, promotion: dict[str, Any]) -> bool:
    return held is not None and all(held.get(key) == promotion.get(key)
                                    for key in PROMOTION_FIELDS)


async def import_texts(journal: Journal, products_text: str,
                       promotions_text: str | None) -> ImportSummary:
    """Check both files whole (every problem at once), then import them.

    Read a batch of IMPORT_BATCH products at a time, in bounded memory, the
    tills selling between two batches: every line checked, then every batch
    against the store; nothing is written if one line does not fit. Then
    written, a slice of a batch per transaction. A crash (power cut, kill) while writing
    leaves the batches written so far, never half of one: the same import run
    again writes only what is still missing (only differences become events).
    """
    checked = CheckedFile()
    try:
        parse_problems: list[str] = []
        store_problems: list[str] = []
        promotions = None
        try:  # every line read first (every id met: a product may name a later one);
            # in a thread: a million lines take seconds the tills' scans must not wait
            await asyncio.to_thread(check_catalogue, products_text, checked)
        except CatalogueError as error:
            parse_problems += error.problems
        if promotions_text is not None:
            try:
                promotions = await asyncio.to_thread(parse_promotion_rows, promotions_text)
            except CatalogueError as error:
                parse_problems += error.problems
        if parse_problems:
            raise CatalogueError(parse_problems)
        for problems in await journal.write_in_slices(
                _every_row(checked), lambda tx, part: _problems(tx, part, None, checked)):
            store_problems += problems
        if promotions is not None:
            store_problems += await journal.write(
                lambda tx: _problems(tx, [], promotions, checked))
        if store_problems:
            raise CatalogueError(store_problems)
        return await _write_in_batches(journal, promotions, checked)
    finally:
        checked.close()


Rows = list[tuple[int, dict[str, Any]]]


def _problems(tx: Tx, batch: Rows, promotions: Rows | None, checked: CheckedFile
              ) -> list[str]:
    """In a write that writes nothing: what does not fit the store in `batch`."""
    try:
        import_into(tx, batch, promotions and [(line, dict(promotion))
                                               for line, promotion in promotions],
                    _in_file(checked), write=False)
    except CatalogueError as error:
        return error.problems
    return []


def _every_row(checked: CheckedFile) -> Iterator[tuple[int, dict[str, Any]]]:
    """The file's products, read IMPORT_BATCH at a time (bounded memory)."""
    return itertools.chain.from_iterable(checked.batches(IMPORT_BATCH))


def _in_file(checked: CheckedFile) -> InFile:
    return lambda product_id: checked.has("id", product_id)


async def _write_in_batches(journal: Journal, promotions: Rows | None,
                            checked: CheckedFile) -> ImportSummary:
    summary, last_line = ImportSummary(), 0
    in_file = _in_file(checked)

    def write(tx: Tx, part: Rows) -> None:
        nonlocal last_line
        done = import_into(tx, part, None, in_file)
        summary.added += done.added
        summary.changed += done.changed
        summary.unchanged += done.unchanged
        last_line = part[-1][0]

    try:
        # In slices of a few hundredths of a second: the tills' scans go between.
        await journal.write_in_slices(_every_row(checked), write)
        if promotions is not None:
            done = await journal.write(
                lambda tx: import_into(tx, [], promotions, in_file))
            summary.promotions_added = done.promotions_added
            summary.promotions_changed = done.promotions_changed
            summary.promotions_unchanged = done.promotions_unchanged
            summary.promotions_ended = done.promotions_ended
    except CatalogueError as error:  # the store changed between the check and the write
        written = ([f"the products up to line {last_line} were imported: correct the file "
                    "and import it again"] if last_line else [])
        raise CatalogueError([*error.problems, *written]) from None
    return summary


# The running node's side: parts of an upload, then the import
