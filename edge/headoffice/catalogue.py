"""Head office's catalogue: a CSV of every product on sale becomes the events that change it.

The CSV is checked as a whole first (`parse_catalogue_csv`, the same rules as
a node's): one bad row and nothing is imported, every bad row named by line.
Only differences become events: a new or changed product is
`product_upserted`, a product missing from the CSV is `product_delisted`
(unless the import says to keep what it does not mention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.headoffice.storage import PRODUCT_FIELDS, HeadOfficeStorage
from edge.selling.catalogue_import import parse_catalogue_csv

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
    """The events that turn `current` (head office's products) into `products`."""
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


def summarise(changes: list[Change], current: dict[str, dict[str, Any]]) -> ImportSummary:
    upserted = [body["id"] for type_, body in changes if type_ == "product_upserted"]
    added = sum(1 for product_id in upserted if product_id not in current)
    delisted = sum(1 for type_, _ in changes if type_ == "product_delisted")
    return ImportSummary(added, len(upserted) - added, delisted)


async def import_catalogue_csv(
    storage: HeadOfficeStorage, text: str, keep_missing: bool = False
) -> ImportSummary:
    """Import a catalogue CSV; CatalogueError (every bad line) and nothing changed if it is bad."""
    # The columns head office keeps (a store adds how its tills show them: its own import).
    products = parse_catalogue_csv(text, store_fields=False)
    summaries: list[ImportSummary] = []

    def changes_for(current: dict[str, dict[str, Any]]) -> list[Change]:
        changes = catalogue_changes(products, current, keep_missing)
        summaries.append(summarise(changes, current))
        return changes

    await storage.change_catalogue(changes_for)
    return summaries[-1]


async def delist(storage: HeadOfficeStorage, product_ids: list[str]) -> int:
    """Take products off sale in every store; unknown or already delisted ids are skipped."""

    def changes_for(current: dict[str, dict[str, Any]]) -> list[Change]:
        wanted = dict.fromkeys(product_ids)  # each once, in the order given
        return [("product_delisted", {"id": product_id}) for product_id in wanted
                if current.get(product_id, {}).get("active")]

    return len(await storage.change_catalogue(changes_for))
