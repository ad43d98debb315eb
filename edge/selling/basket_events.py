"""What happened to baskets, as events: each type, its body and its projection.

Every change a till makes to a basket (edge/selling/baskets.py) is one of
these events; the projections keep `baskets` and `basket_lines` the same on
every node whatever order the events of several origins arrive in (each
type's merge rule says how). A sale or a void closes the basket
(`close_basket`), even before its lines arrive.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.selling.discounts import forget_discounts, forget_line_discount

LINE_COLUMNS = ("line_id, product_id, barcode, name, unit_price, vat_rate, quantity, unit, "
                "price_embedded")


def touch(db: sqlite3.Connection, event: Event, basket_id: str) -> None:
    """Record that the basket changed at the event's time (the latest time wins)."""
    db.execute(
        "UPDATE baskets SET active_at = MAX(active_at, ?) WHERE id = ?", (event.time, basket_id)
    )


def ensure_basket(db: sqlite3.Connection, event: Event, basket_id: str, status: str) -> None:
    """The basket's row, made by whichever of its events arrives first.

    Whatever the arrival order, it opened at its earliest event, and until a
    takeover its till and cashier are that event's (the opener's).
    """
    body = event.body
    db.execute(
        """INSERT INTO baskets (id, till, cashier, opened_at, status, active_at)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
            till = CASE WHEN holder_generation = 0 AND excluded.opened_at < opened_at
                        THEN excluded.till ELSE till END,
            cashier = CASE WHEN holder_generation = 0 AND excluded.opened_at < opened_at
                           THEN excluded.cashier ELSE cashier END,
            opened_at = MIN(opened_at, excluded.opened_at)""",
        (basket_id, body["till"], body["cashier"], event.time, status, event.time),
    )


@dataclass(slots=True)
class BasketTakenOver:
    basket_id: str
    till: str
    cashier: str
    from_till: str = ""
    generation: int = 1  # events from before generations count as 1
    forced: bool = False


@event_type("basket_taken_over", schema=BasketTakenOver,
            merge="the highest (generation, event hash) holds the basket")
def _basket_taken_over(db: sqlite3.Connection, event: Event) -> None:
    """The highest (generation, hash) holds the basket, on every node, in any order.

    A takeover normally replaces the holder it saw (generation + 1); two
    accepted by nodes cut apart share a generation and the hash settles it.
    Events from before generations existed count as generation 1.
    """
    body = event.body
    generation = body.get("generation", 1)
    ensure_basket(db, event, body["basket_id"], "open")
    db.execute(
        """UPDATE baskets SET till = ?, cashier = ?, holder_generation = ?, holder_event = ?
        WHERE id = ? AND (holder_generation, holder_event) < (?, ?)""",
        (body["till"], body["cashier"], generation, event.hash, body["basket_id"],
         generation, event.hash),
    )
    touch(db, event, body["basket_id"])


@dataclass(slots=True)
class BasketLineAdded:
    basket_id: str
    till: str
    cashier: str
    line_id: str
    product_id: str
    name: str
    unit_price: int
    vat_rate: int
    quantity: int
    barcode: str | None = None
    unit: Literal["piece", "g"] = "piece"  # "g": quantity is grams, unit_price per kilo
    price_embedded: bool = False
    approved_by: str | None = None  # the manager who let a typed price through


@event_type("basket_line_added", schema=BasketLineAdded,
            merge="a basket opens at its earliest event, by its opener's till; a line is "
                  "one per id, as its earliest add gave it (its quantity: the latest change), "
                  "ranked by that add's (time, hash); it stays out of a basket already sold "
                  "or voided")
def _basket_line_added(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    ensure_basket(db, event, body["basket_id"], "open")
    touch(db, event, body["basket_id"])
    # A line arriving (from a peer) after its basket was sold or voided stays out.
    # A line added twice (resent through another node after a failover) is
    # the earliest add's, whichever arrives first.
    added = f"{event.time} {event.hash}"
    values = (body["line_id"], body["product_id"], body["barcode"], body["name"],
              body["unit_price"], body["vat_rate"], body["quantity"], body.get("unit", "piece"),
              int(body.get("price_embedded", False)))
    # Its quantity is the latest of those its adds and quantity changes gave.
    db.execute(
        f"""INSERT INTO basket_lines (basket_id, position, added, changed, {LINE_COLUMNS})
        SELECT ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
        WHERE EXISTS (SELECT 1 FROM baskets WHERE id = ? AND status = 'open')
        ON CONFLICT (basket_id, line_id) DO UPDATE SET
            added = MIN(added, excluded.added),
            product_id = IIF(excluded.added < added, excluded.product_id, product_id),
            barcode = IIF(excluded.added < added, excluded.barcode, barcode),
            name = IIF(excluded.added < added, excluded.name, name),
            unit_price = IIF(excluded.added < added, excluded.unit_price, unit_price),
            vat_rate = IIF(excluded.added < added, excluded.vat_rate, vat_rate),
            unit = IIF(excluded.added < added, excluded.unit, unit),
            price_embedded = IIF(excluded.added < added, excluded.price_embedded, price_embedded),
            quantity = IIF(excluded.changed > changed, excluded.quantity, quantity),
            changed = MAX(changed, excluded.changed)""",
        (body["basket_id"], added, added, *values, body["basket_id"]),
    )
    _rank_lines(db, body["basket_id"])


def _rank_lines(db: sqlite3.Connection, basket_id: str) -> None:
    """A line's place is its rank by the event that added it (time, then hash), not by
    arrival: lines added through two nodes are in the same order everywhere."""
    db.execute(
        """UPDATE basket_lines SET position = (
            SELECT COUNT(*) FROM basket_lines AS other
            WHERE other.basket_id = basket_lines.basket_id AND other.added <= basket_lines.added)
        WHERE basket_id = ?""",
        (basket_id,),
    )


@dataclass(slots=True)
class BasketQuantitySet:
    basket_id: str
    line_id: str
    quantity: int


@event_type("basket_quantity_set", schema=BasketQuantitySet,
            merge="a line's quantity is the latest (time, hash) of its adds and changes; the "
                  "latest change time counts as activity")
def _basket_quantity_set(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    changed = f"{event.time} {event.hash}"
    db.execute(
        """UPDATE basket_lines SET quantity = ?, changed = ?
        WHERE basket_id = ? AND line_id = ? AND changed < ?""",
        (body["quantity"], changed, body["basket_id"], body["line_id"], changed),
    )
    touch(db, event, body["basket_id"])


@dataclass(slots=True)
class BasketLineRemoved:
    basket_id: str
    line_id: str


@event_type("basket_line_removed", schema=BasketLineRemoved,
            merge="the line is gone, and its discount for good; the latest change time counts "
                  "as activity")
def _basket_line_removed(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        "DELETE FROM basket_lines WHERE basket_id = ? AND line_id = ?",
        (body["basket_id"], body["line_id"]),
    )
    forget_line_discount(db, body["basket_id"], body["line_id"])
    _rank_lines(db, body["basket_id"])
    touch(db, event, body["basket_id"])


def close_basket(db: sqlite3.Connection, event: Event, basket_id: str, status: str) -> None:
    """Mark a basket sold or voided, even one whose lines have not arrived yet.

    Events of several origins arrive in any order: a basket closed before its
    lines arrive (from a node that died, through another) must stay closed
    when they do. Sold wins over voided.
    """
    ensure_basket(db, event, basket_id, status)
    db.execute(
        "UPDATE baskets SET status = ? WHERE id = ? AND status != 'sold'", (status, basket_id)
    )
    touch(db, event, basket_id)
    db.execute("DELETE FROM basket_lines WHERE basket_id = ?", (basket_id,))
    forget_discounts(db, basket_id)


@dataclass(slots=True)
class BasketVoided:
    basket_id: str
    till: str
    cashier: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


@event_type("basket_voided", schema=BasketVoided,
            merge="the basket closes for good, even before its lines arrive; sold wins "
                  "over voided")
def _basket_voided(db: sqlite3.Connection, event: Event) -> None:
    close_basket(db, event, event.body["basket_id"], "voided")
