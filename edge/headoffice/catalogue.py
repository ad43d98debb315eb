"""Head office's catalogue: a CSV of every product on sale becomes the events that change it.

The CSV is checked as a whole first (the same rules as a node's, a row at a
time into a scratch file: catalogue_staging.py): one bad row and nothing is
imported, the bad rows named by line. The differences are then published a
page at a time in one transaction (catalogue_storage.py): memory stays flat
for a million products.
Only differences become events: a new or changed product is
`product_upserted`, a product missing from the CSV is `product_delisted`
(unless the import says to keep what it does not mention).
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from edge.headoffice.catalogue_staging import stage_catalogue
from edge.headoffice.catalogue_storage import apply_staged
from edge.headoffice.storage import PRODUCT_FIELDS, HeadOfficeStorage
from edge.selling.catalogue_batches import one_by_one

Change = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class ImportSummary:
    added: int
    changed: int
    delisted: int

    def __str__(self) -> str:
        return f"{self.added} new, {self.changed} changed, {self.delisted} delisted"


def catalogue_changes(
    products: list[dict[str, Any]], current: dict[str, dict[str, Any]], keep_missing: bool
) -> list[Change]:
    """The events that turn `current` (head office's products) into `products`.

    The rule in memory, for a few products; an import applies the same rule in
    SQL, a page at a time (catalogue_storage.py)."""
    changes: list[Change] = []
    for product in products:
        held = current.get(product["id"])
        if held is None or not held["active"] or any(
            held[key] != product[key] for key in PRODUCT_FIELDS
        ):
            changes.append(("product_upserted", product))
    if not keep_missing:
        listed = {product["id"] for product in products}
        changes += [("product_delisted", {"id": product_id})
                    for product_id, held in sorted(current.items())
                    if held["active"] and product_id not in listed]
    return changes


async def import_catalogue_csv(
    storage: HeadOfficeStorage, text: str, keep_missing: bool = False
) -> ImportSummary:
    """Import a catalogue CSV; CatalogueError (its bad lines) and nothing changed if it is bad."""
    return await import_catalogue_stream(storage, io.StringIO(text.removeprefix("\ufeff")),
                                         keep_missing)


async def import_catalogue_file(
    storage: HeadOfficeStorage, path: Path, keep_missing: bool = False
) -> ImportSummary:
    """`import_catalogue_csv` of a file, read as a stream (a million products in flat memory)."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return await import_catalogue_stream(storage, stream, keep_missing)


async def import_catalogue_stream(
    storage: HeadOfficeStorage, stream: TextIO, keep_missing: bool = False
) -> ImportSummary:
    # Checked whole first, into a scratch file (the columns head office keeps: a
    # store adds how its tills show them, its own import); then the differences
    # published a page at a time in one transaction.
    staged = await asyncio.to_thread(stage_catalogue, stream)
    try:
        return ImportSummary(*await apply_staged(storage, staged, keep_missing))
    finally:
        await asyncio.to_thread(staged.close)


async def delist(storage: HeadOfficeStorage, product_ids: list[str]) -> int:
    """Take products off sale in every store; unknown or already delisted ids are skipped."""

    def changes_for(current: dict[str, dict[str, Any]]) -> list[Change]:
        wanted = dict.fromkeys(product_ids)  # each once, in the order given
        return [("product_delisted", {"id": product_id}) for product_id in wanted
                if current.get(product_id, {}).get("active")]

    events = await storage.change_catalogue(changes_for)
    return sum(len(one_by_one(event.type, event.body)) for event in events)
