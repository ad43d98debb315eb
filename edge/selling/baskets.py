"""Baskets: every change to a basket is an event.

A till works on one open basket. Its id, and each line's id, are made up by
the till, so a command resent after a reconnect (to this node or another)
finds its work already done and changes nothing.

A basket is held by one till at a time: only its holder changes or sells it.
A basket left open on a till that died can be taken over by another till,
never one still in use (docs/protocol.md, "Who holds a basket"). Two nodes
cut apart may each accept a takeover of the same basket: every takeover
carries a generation (one more than the holder's it replaced), and the
highest (generation, event hash) holds it, on every node, whatever the order
events arrive in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import BASKET_HELD, BASKET_MISMATCH, NO_OPEN_BASKET, UNKNOWN_LINE, EdgeError
from edge.selling.catalogue import find_product
from edge.selling.money import Line, basket_totals

# A till that changed its basket this recently is taken to be using it, even
# if it is connected to another node (and so invisible to this one).
HOLD_SECONDS = 120

LINE_COLUMNS = "line_id, product_id, barcode, name, unit_price, vat_rate, quantity"


@dataclass(frozen=True)
class Seller:
    """Who is selling: the till and the cashier logged in on it."""

    till: str
    cashier: str


def _line_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["line_id"],
        "product_id": row["product_id"],
        "barcode": row["barcode"],
        "name": row["name"],
        "unit_price": row["unit_price"],
        "vat_rate": row["vat_rate"],
        "quantity": row["quantity"],
        "total": row["unit_price"] * row["quantity"],
    }


def _totals(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return basket_totals(Line(ln["unit_price"], ln["quantity"], ln["vat_rate"]) for ln in lines)


def _basket_json(basket: sqlite3.Row, line_rows: list[sqlite3.Row]) -> dict[str, Any]:
    lines = [_line_json(row) for row in line_rows]
    return {
        "id": basket["id"],
        "till": basket["till"],
        "cashier": basket["cashier"],
        "lines": lines,
        "totals": _totals(lines),
    }


# Normally one; after a merge of two nodes' events possibly two for a moment:
# the newest is the one the till works on.
OPEN_BASKET_SQL = """SELECT id, till, cashier FROM baskets WHERE till = ? AND status = 'open'
    ORDER BY opened_at DESC, id LIMIT 1"""
LINES_SQL = f"SELECT {LINE_COLUMNS} FROM basket_lines WHERE basket_id = ? ORDER BY position"


async def open_basket(journal: Journal, till: str) -> dict[str, Any] | None:
    basket = await journal.read_one(OPEN_BASKET_SQL, (till,))
    if basket is None:
        return None
    return _basket_json(basket, await journal.read_all(LINES_SQL, (basket["id"],)))


def open_basket_in(tx: Tx, till: str) -> dict[str, Any] | None:
    basket = tx.fetchone(OPEN_BASKET_SQL, (till,))
    if basket is None:
        return None
    return _basket_json(basket, tx.fetchall(LINES_SQL, (basket["id"],)))


def held_elsewhere(holder: str, basket_id: str, how: str = "is held") -> EdgeError:
    """The refusal a till gets for a basket another till holds (or sold)."""
    return EdgeError(
        BASKET_HELD, f"basket {basket_id} {how} by till {holder}", {"till": holder}
    )


def refuse_if_held_elsewhere(tx: Tx, till: str, basket_id: str) -> None:
    row = tx.fetchone("SELECT till FROM baskets WHERE id = ? AND status = 'open'", (basket_id,))
    if row is not None and row["till"] != till:
        raise held_elsewhere(row["till"], basket_id)


def require_open_basket(tx: Tx, till: str, basket_id: str) -> dict[str, Any]:
    refuse_if_held_elsewhere(tx, till, basket_id)
    basket = open_basket_in(tx, till)
    if basket is None:
        raise EdgeError(NO_OPEN_BASKET, f"till {till} has no open basket")
    if basket["id"] != basket_id:
        raise EdgeError(
            BASKET_MISMATCH, f"till {till} has basket {basket['id']} open, not {basket_id}"
        )
    return basket


async def add_line(
    journal: Journal,
    seller: Seller,
    basket_id: str,
    line_id: str,
    quantity: int,
    barcode: str | None = None,
    product_id: str | None = None,
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        refuse_if_held_elsewhere(tx, seller.till, basket_id)
        basket = open_basket_in(tx, seller.till)
        if basket is not None and basket["id"] != basket_id:
            raise EdgeError(
                BASKET_MISMATCH,
                f"till {seller.till} has basket {basket['id']} open, not {basket_id}",
            )
        if basket is None:
            closed = tx.fetchone("SELECT status FROM baskets WHERE id = ?", (basket_id,))
            if closed is not None:
                raise EdgeError(
                    BASKET_MISMATCH, f"basket {basket_id} is already {closed['status']}"
                )
        elif any(line["id"] == line_id for line in basket["lines"]):
            return basket
        product = find_product(tx, barcode=barcode, product_id=product_id)
        tx.append(
            "basket_line_added",
            {
                "basket_id": basket_id,
                "till": seller.till,
                "cashier": seller.cashier,
                "line_id": line_id,
                "product_id": product["id"],
                "barcode": product["barcode"],
                "name": product["name"],
                "unit_price": product["price"],
                "vat_rate": product["vat_rate"],
                "quantity": quantity,
            },
        )
        return open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def set_quantity(
    journal: Journal, seller: Seller, basket_id: str, line_id: str, quantity: int
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        basket = require_open_basket(tx, seller.till, basket_id)
        line = next((ln for ln in basket["lines"] if ln["id"] == line_id), None)
        if line is None:
            raise EdgeError(UNKNOWN_LINE, f"basket {basket_id} has no line {line_id}")
        if line["quantity"] == quantity:
            return basket
        tx.append(
            "basket_quantity_set",
            {"basket_id": basket_id, "line_id": line_id, "quantity": quantity},
        )
        return open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def remove_line(
    journal: Journal, seller: Seller, basket_id: str, line_id: str
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        basket = require_open_basket(tx, seller.till, basket_id)
        if not any(line["id"] == line_id for line in basket["lines"]):
            return basket
        tx.append("basket_line_removed", {"basket_id": basket_id, "line_id": line_id})
        return open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def void_basket(journal: Journal, seller: Seller, basket_id: str) -> None:
    def work(tx: Tx) -> None:
        basket = open_basket_in(tx, seller.till)
        if basket is None or basket["id"] != basket_id:
            return  # already voided or sold: voiding again is a no-op
        tx.append(
            "basket_voided",
            {
                "basket_id": basket_id,
                "till": seller.till,
                "cashier": seller.cashier,
                "lines": basket["lines"],
                "total": basket["totals"]["total"],
            },
        )

    await journal.write(work)


async def list_open(journal: Journal) -> list[dict[str, Any]]:
    """Every open basket of the store, newest first (to resume one from another till)."""
    rows = await journal.read_all(
        """SELECT baskets.id, till, cashier, opened_at,
                  COALESCE(SUM(quantity), 0) AS items,
                  COALESCE(SUM(quantity * unit_price), 0) AS total
           FROM baskets LEFT JOIN basket_lines ON basket_lines.basket_id = baskets.id
           WHERE status = 'open' GROUP BY baskets.id ORDER BY opened_at DESC"""
    )
    return [dict(row) for row in rows]


def holder_is_live(basket: sqlite3.Row, connected_tills: Set[str], now: datetime) -> bool:
    """Is the till holding this basket still using it, as far as this node can tell?

    Yes if it is connected to this node, or changed the basket (or took it
    over) in the last HOLD_SECONDS: a till connected to another node is
    invisible here, but its changes replicate.
    """
    if basket["till"] in connected_tills:
        return True
    last_change = datetime.fromisoformat(basket["active_at"] or basket["opened_at"])
    return now - last_change < timedelta(seconds=HOLD_SECONDS)


async def take_over(
    journal: Journal,
    seller: Seller,
    basket_id: str,
    connected_tills: Set[str],
    force: bool = False,
) -> dict[str, Any]:
    """Make another till's open basket this till's, unless that till is still using it.

    `connected_tills`: the tills connected to this node now. `force` (a
    manager's call, checked by the caller) takes it even from a till that
    looks live: one whose screen froze with its connection still open.
    """

    def work(tx: Tx) -> dict[str, Any]:
        basket = tx.fetchone(
            """SELECT till, opened_at, active_at, holder_generation FROM baskets
            WHERE id = ? AND status = 'open'""",
            (basket_id,),
        )
        if basket is None:
            raise EdgeError(NO_OPEN_BASKET, f"basket {basket_id} is not open")
        if basket["till"] == seller.till:
            return open_basket_in(tx, seller.till)  # type: ignore[return-value]
        current = open_basket_in(tx, seller.till)
        if current is not None and current["id"] != basket_id and current["lines"]:
            raise EdgeError(
                BASKET_MISMATCH,
                f"till {seller.till} has basket {current['id']} open: sell or void it first",
            )
        if not force and holder_is_live(basket, connected_tills, datetime.now(UTC)):
            raise EdgeError(
                BASKET_HELD,
                f"basket {basket_id} is in use on till {basket['till']}: "
                "ask there, or a manager may force the takeover",
                {"till": basket["till"]},
            )
        if current is not None and current["id"] != basket_id:
            tx.append("basket_voided", {"basket_id": current["id"], "till": seller.till,
                                        "cashier": seller.cashier, "lines": [], "total": 0})
        body = {"basket_id": basket_id, "from_till": basket["till"], "till": seller.till,
                "cashier": seller.cashier, "generation": basket["holder_generation"] + 1}
        if force:
            body["forced"] = True
        tx.append("basket_taken_over", body)
        return open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


def _touch(db: sqlite3.Connection, event: Event, basket_id: str) -> None:
    """Record that the basket changed at the event's time (the latest time wins)."""
    db.execute(
        "UPDATE baskets SET active_at = MAX(active_at, ?) WHERE id = ?", (event.time, basket_id)
    )


def _ensure_basket(db: sqlite3.Connection, event: Event, basket_id: str, status: str) -> None:
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
    _ensure_basket(db, event, body["basket_id"], "open")
    db.execute(
        """UPDATE baskets SET till = ?, cashier = ?, holder_generation = ?, holder_event = ?
        WHERE id = ? AND (holder_generation, holder_event) < (?, ?)""",
        (body["till"], body["cashier"], generation, event.hash, body["basket_id"],
         generation, event.hash),
    )
    _touch(db, event, body["basket_id"])


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


@event_type("basket_line_added", schema=BasketLineAdded,
            merge="a basket opens at its earliest event, by its opener's till; a line is "
                  "one per id, as its earliest add gave it (its quantity: the latest change), "
                  "ranked by that add's (time, hash); it stays out of a basket already sold "
                  "or voided")
def _basket_line_added(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    _ensure_basket(db, event, body["basket_id"], "open")
    _touch(db, event, body["basket_id"])
    # A line arriving (from a peer) after its basket was sold or voided stays out.
    # A line added twice (resent through another node after a failover) is
    # the earliest add's, whichever arrives first.
    added = f"{event.time} {event.hash}"
    values = (body["line_id"], body["product_id"], body["barcode"], body["name"],
              body["unit_price"], body["vat_rate"], body["quantity"])
    # Its quantity is the latest of those its adds and quantity changes gave.
    db.execute(
        f"""INSERT INTO basket_lines (basket_id, position, added, changed, {LINE_COLUMNS})
        SELECT ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?
        WHERE EXISTS (SELECT 1 FROM baskets WHERE id = ? AND status = 'open')
        ON CONFLICT (basket_id, line_id) DO UPDATE SET
            added = MIN(added, excluded.added),
            product_id = IIF(excluded.added < added, excluded.product_id, product_id),
            barcode = IIF(excluded.added < added, excluded.barcode, barcode),
            name = IIF(excluded.added < added, excluded.name, name),
            unit_price = IIF(excluded.added < added, excluded.unit_price, unit_price),
            vat_rate = IIF(excluded.added < added, excluded.vat_rate, vat_rate),
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
    _touch(db, event, body["basket_id"])


@dataclass(slots=True)
class BasketLineRemoved:
    basket_id: str
    line_id: str


@event_type("basket_line_removed", schema=BasketLineRemoved,
            merge="the line is gone; the latest change time counts as activity")
def _basket_line_removed(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        "DELETE FROM basket_lines WHERE basket_id = ? AND line_id = ?",
        (body["basket_id"], body["line_id"]),
    )
    _rank_lines(db, body["basket_id"])
    _touch(db, event, body["basket_id"])


def close_basket(db: sqlite3.Connection, event: Event, basket_id: str, status: str) -> None:
    """Mark a basket sold or voided, even one whose lines have not arrived yet.

    Events of several origins arrive in any order: a basket closed before its
    lines arrive (from a node that died, through another) must stay closed
    when they do. Sold wins over voided.
    """
    _ensure_basket(db, event, basket_id, status)
    db.execute(
        "UPDATE baskets SET status = ? WHERE id = ? AND status != 'sold'", (status, basket_id)
    )
    _touch(db, event, basket_id)
    db.execute("DELETE FROM basket_lines WHERE basket_id = ?", (basket_id,))


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
