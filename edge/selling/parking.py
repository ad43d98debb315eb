"""Parked baskets: a customer set aside under a name, served later on any till.

A till parks its open basket (`basket_parked`): the till then has no open
basket and serves the next customer. A parked basket has no live holder, so
any till of the store may resume it, once: the resume is a takeover
(`basket_taken_over`, edge/selling/baskets.py) one generation above the
holder that parked it, so two tills resuming it at once on two nodes settle
on one holder by the takeover's own rule (highest generation, then hash), on
every node, and the other till is told `basket_held`.

Parked or not is never stored as a flag a later event could forget to clear:
a basket is parked while its latest park (highest generation, then hash) is
of its current holder's generation (the `parked` column, migration 23). A
resume raises the holder's generation past it, whichever of the two arrives
first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import BASKET_MISMATCH, EMPTY_BASKET, NO_OPEN_BASKET, EdgeError
from edge.selling.basket_events import ensure_basket, touch
from edge.selling.baskets import (
    LINES_SQL,
    Seller,
    basket_json,
    held_elsewhere,
    open_basket_in,
    require_open_basket,
    today,
)
from edge.selling.promotions import active_promotions, active_promotions_read

# The longest name a parked basket takes (it is shown on a button).
MAX_NAME = 40
# The most parked baskets a till is shown at once (a store parks a handful).
MAX_LISTED = 50

PARKED_COLUMNS = ("id, till, cashier, opened_at, parked_name, parked_by, parked_at, "
                  "(SELECT discount FROM basket_discounts WHERE basket_id = baskets.id) "
                  "AS discount")
# A partial index covers exactly the open baskets ever parked (migration 23).
PARKED_SQL = f"""SELECT {PARKED_COLUMNS} FROM baskets
    WHERE status = 'open' AND parked_generation IS NOT NULL AND parked = 1"""


def clean_name(name: str | None, default: str) -> str:
    """The name as shown: spaces trimmed and collapsed, at most MAX_NAME characters;
    the default (the cashier's name) when nothing is left."""
    cleaned = " ".join((name or "").split())[:MAX_NAME]
    return cleaned or " ".join(default.split())[:MAX_NAME]


def _parked_json(row: sqlite3.Row, lines: list[sqlite3.Row],
                 promotions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    totals = basket_json(row, lines, promotions)["totals"]
    return {"id": row["id"], "name": row["parked_name"], "till": row["till"],
            "cashier": row["parked_by"], "parked_at": row["parked_at"],
            "opened_at": row["opened_at"], "items": totals["items"], "total": totals["total"]}


def _parked_in(tx: Tx, basket_id: str) -> dict[str, Any]:
    row = tx.fetchone(f"{PARKED_SQL} AND id = ?", (basket_id,))
    assert row is not None
    return _parked_json(row, tx.fetchall(LINES_SQL, (basket_id,)),
                        active_promotions(tx.db, today()))


def _park(tx: Tx, seller: Seller, basket_id: str, name: str) -> dict[str, Any]:
    row = tx.fetchone("SELECT till, status, parked, holder_generation FROM baskets WHERE id = ?",
                      (basket_id,))
    if row is not None and row["status"] == "open" and row["parked"]:
        if row["till"] != seller.till:
            raise held_elsewhere(row["till"], basket_id, how="was parked")
        return _parked_in(tx, basket_id)
    basket = require_open_basket(tx, seller.till, basket_id)
    if not basket["lines"]:
        raise EdgeError(EMPTY_BASKET, "an empty basket is not parked: start the next sale")
    assert row is not None  # a basket with lines has its row
    tx.append("basket_parked", {"basket_id": basket_id, "till": seller.till,
                                "cashier": seller.cashier, "name": name,
                                "generation": row["holder_generation"]})
    return _parked_in(tx, basket_id)


async def park(journal: Journal, seller: Seller, basket_id: str, name: str) -> dict[str, Any]:
    """Park the till's open basket under `name` (already cleaned); parking it again is a no-op.

    Returns the parked basket as `list_parked` shows it.
    """
    return await journal.write(lambda tx: _park(tx, seller, basket_id, name))


async def park_open_basket(journal: Journal, seller: Seller, name: str) -> dict[str, Any] | None:
    """At logout: park the till's open basket if it has lines (never hand it to the next
    cashier); None if there was nothing to park."""

    def work(tx: Tx) -> dict[str, Any] | None:
        basket = open_basket_in(tx, seller.till)
        if basket is None or not basket["lines"]:
            return None
        return _park(tx, seller, basket["id"], name)

    return await journal.write(work)


async def resume(journal: Journal, seller: Seller, basket_id: str) -> dict[str, Any]:
    """Make a parked basket this till's open basket, on any till, once store-wide.

    Resuming again a basket this till already resumed returns it. A basket
    another till resumed (or holds) is refused with `basket_held`. The till's
    own open basket must be empty (it is then voided), else `basket_mismatch`.
    """

    def work(tx: Tx) -> dict[str, Any]:
        row = tx.fetchone("SELECT till, status, parked, holder_generation FROM baskets "
                          "WHERE id = ?", (basket_id,))
        if row is None or row["status"] != "open":
            how = f"is {row['status']}" if row is not None else "is not known here"
            raise EdgeError(NO_OPEN_BASKET, f"basket {basket_id} {how}: nothing to resume")
        if not row["parked"]:
            mine = open_basket_in(tx, seller.till)
            if row["till"] == seller.till and mine is not None and mine["id"] == basket_id:
                return mine  # resumed already (a resend)
            raise held_elsewhere(row["till"], basket_id)
        current = open_basket_in(tx, seller.till)
        if current is not None and current["lines"]:
            raise EdgeError(BASKET_MISMATCH, f"till {seller.till} has basket {current['id']} "
                            "open: park, sell or void it first", {"basket_id": current["id"]})
        if current is not None:
            tx.append("basket_voided", {"basket_id": current["id"], "till": seller.till,
                                        "cashier": seller.cashier, "lines": [], "total": 0})
        tx.append("basket_taken_over", {
            "basket_id": basket_id, "from_till": row["till"], "till": seller.till,
            "cashier": seller.cashier, "generation": row["holder_generation"] + 1,
            "resumed": True})
        return open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def list_parked(journal: Journal) -> list[dict[str, Any]]:
    """The store's parked baskets, the latest parked first (at most MAX_LISTED)."""

    rows = await journal.read_all(f"{PARKED_SQL} ORDER BY parked_at DESC, id LIMIT ?",
                                  (MAX_LISTED,))
    promotions = await active_promotions_read(journal, today())
    return [_parked_json(row, await journal.read_all(LINES_SQL, (row["id"],)), promotions)
            for row in rows]


@dataclass(slots=True)
class BasketParked:
    basket_id: str
    till: str
    cashier: str
    name: str
    generation: int = 0  # the parking holder's (0: the till that opened it)


@event_type("basket_parked", schema=BasketParked,
            merge="the latest park of a basket is its highest (generation, event hash); the "
                  "basket is parked while that generation is its holder's (a resume is a "
                  "takeover one generation up, in either order); counts as activity")
def _basket_parked(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    basket_id = body["basket_id"]
    ensure_basket(db, event, basket_id, "open")
    generation = body.get("generation", 0)
    db.execute(
        """UPDATE baskets SET parked_generation = ?, parked_event = ?, parked_name = ?,
            parked_by = ?, parked_at = ?
        WHERE id = ? AND (parked_generation IS NULL
                          OR (parked_generation, parked_event) < (?, ?))""",
        (generation, event.hash, body["name"], body["cashier"], event.time, basket_id,
         generation, event.hash),
    )
    touch(db, event, basket_id)
