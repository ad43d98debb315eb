"""The catalogue in events of many products: one signature, one chain link and one
journal row for up to PRODUCTS_PER_EVENT products (issue 12, a million products), as
head office and a store's own CSV import (edge/selling/catalogue_loading.py) write it.

`products_listed` carries listings as `product_upserted` bodies, `products_delisted`
product ids; each product is projected exactly as its own event would be, stamped with
the batch's (time, hash). Ids within one batch are distinct (head office writes them
so); should one repeat, its first listing in the batch is the one kept, on every node
alike (the batch's order is part of its hash). Head office writes them only once every
store it knows has said its edge reads them (`reads: ["catalogue_batches"]` in its
pull, edge/headoffice/protocol.py): an edge from before would refuse them as unknown types and
stop taking head office's catalogue. A store's nodes are upgraded together (as for
any new event type, docs/architecture.md), so a node's own import writes them always.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.schema import limits
from edge.selling.catalogue import (
    CATALOGUE_MERGE,
    CATALOGUE_WRITERS,
    ProductUpserted,
    _product_delisted,
    _product_upserted,
)

# Products per event: a node applies one event in one transaction, so this bounds
# how long a till's sale may wait behind one (about 100 µs a product at 1M).
PRODUCTS_PER_EVENT = 100
BATCH_TYPES = {"product_upserted": "products_listed", "product_delisted": "products_delisted"}
BATCH_EVENT_TYPES = frozenset(BATCH_TYPES.values())
# Every type that lists or delists products, one at a time or many.
PRODUCT_EVENT_TYPES = frozenset(BATCH_TYPES) | BATCH_EVENT_TYPES
# A node checks what it applies against this, not PRODUCTS_PER_EVENT: head office may
# one day write larger ones.
MOST_IN_AN_EVENT = 1000


@dataclass(slots=True)
class ProductsListed:
    products: list[ProductUpserted] = field(metadata=limits(min=1, max_length=MOST_IN_AN_EVENT))


@dataclass(slots=True)
class ProductsDelisted:
    ids: list[str] = field(metadata=limits(min=1, max_length=MOST_IN_AN_EVENT))


@event_type("products_listed", schema=ProductsListed, written_by=CATALOGUE_WRITERS,
            merge=CATALOGUE_MERGE + " (each product of the batch as its own listing, "
            "stamped with the batch's time and hash)")
def _products_listed(db: sqlite3.Connection, event: Event) -> None:
    for product in event.body["products"]:
        _product_upserted(db, dataclasses.replace(event, body=product))


@event_type("products_delisted", schema=ProductsDelisted, written_by=CATALOGUE_WRITERS,
            merge=CATALOGUE_MERGE + " (each id of the batch as its own delisting, stamped "
            "with the batch's time and hash)")
def _products_delisted(db: sqlite3.Connection, event: Event) -> None:
    for product_id in event.body["ids"]:
        _product_delisted(db, dataclasses.replace(event, body={"id": product_id}))


def one_by_one(type_: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A product event as the one-product events it stands for (others: none)."""
    if type_ == "products_listed":
        return [("product_upserted", product) for product in body["products"]]
    if type_ == "products_delisted":
        return [("product_delisted", {"id": product_id}) for product_id in body["ids"]]
    return [(type_, body)] if type_ in BATCH_TYPES else []


def one_product_each(events: Iterable[Event]) -> Iterator[Event]:
    """`events`, each batch as the one-product events it stands for (its origin, seq and
    time): what a till following product events hears, whichever way they were written."""
    for event in events:
        if event.type in BATCH_EVENT_TYPES:
            for type_, body in one_by_one(event.type, event.body):
                yield dataclasses.replace(event, type=type_, body=body)
        else:
            yield event


def batched(changes: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """`changes` (product_upserted / product_delisted bodies, in order) with each run of
    one type packed into events of at most PRODUCTS_PER_EVENT products; other changes as
    they are. A repeated id starts a new event, so that each batch names an id once."""
    packed: list[tuple[str, dict[str, Any]]] = []
    run: list[Any] = []
    ids: set[str] = set()
    run_type = ""

    def close() -> None:
        if run:
            key = "products" if run_type == "product_upserted" else "ids"
            packed.append((BATCH_TYPES[run_type], {key: list(run)}))
            run.clear()
            ids.clear()

    for type_, body in changes:
        if type_ not in BATCH_TYPES:
            close()
            packed.append((type_, body))
            continue
        if type_ != run_type or len(run) >= PRODUCTS_PER_EVENT or body["id"] in ids:
            close()
            run_type = type_
        run.append(body if type_ == "product_upserted" else body["id"])
        ids.add(body["id"])
    close()
    return packed
