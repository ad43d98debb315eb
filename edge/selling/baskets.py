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
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from edge.journal.store import Journal, Tx
from edge.messages import (
    BASKET_HELD,
    BASKET_MISMATCH,
    DISCOUNT_PAST_LIMIT,
    INVALID_FIELD,
    NO_OPEN_BASKET,
    UNKNOWN_LINE,
    EdgeError,
)
from edge.selling.barcodes import read_embedded
from edge.selling.basket_events import LINE_COLUMNS
from edge.selling.catalogue import find_product
from edge.selling.discounts import discount_json, line_was_removed, past_limit
from edge.selling.line_items import line_fields
from edge.selling.money import price_basket
from edge.selling.promotions import active_promotions, active_promotions_read
from edge.selling.tenders import refuse_below_card_taken

# A till that changed its basket this recently is taken to be using it, even
# if it is connected to another node (and so invisible to this one).
HOLD_SECONDS = 120



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
        "unit": row["unit"],
        "price_embedded": bool(row["price_embedded"]),
        "discount": discount_json(row["discount"]),
    }


def priced(lines: list[dict[str, Any]], discount: dict[str, Any] | None,
           promotions: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The lines with what each costs, and the basket's totals: `price_basket`'s, the
    one pricing function (the offline till's web/pricing.js gives the same)."""
    result = price_basket(lines, promotions, discount)
    out = []
    for line, price in zip(lines, result["lines"], strict=True):
        out.append({**line, "gross": price["gross"], "promotion": price["promotion"],
                    "promotion_ids": price["promotion_ids"],
                    "discount_amount": price["discount"],
                    "basket_share": price["basket_share"], "total": price["total"]})
    totals = {key: result[key] for key in ("total", "items", "vat", "discounts")}
    return out, totals


def applied_promotions(lines: list[dict[str, Any]],
                       promotions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The promotions the priced `lines` took part in, as they stood: a sale keeps them,
    so a refund can work out what the customer keeps without today's catalogue."""
    used = {promotion_id for line in lines for promotion_id in line["promotion_ids"]}
    return [promotion for promotion in promotions if promotion["id"] in used]


def basket_json(basket: sqlite3.Row, line_rows: list[sqlite3.Row],
                 promotions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    # Parked baskets' rows have no discount column: `in` on a Row looks at its values.
    discount = discount_json(basket["discount"]) if "discount" in basket.keys() else None  # noqa: SIM118
    lines, totals = priced([_line_json(row) for row in line_rows], discount, promotions)
    return {
        "id": basket["id"],
        "till": basket["till"],
        "cashier": basket["cashier"],
        "discount": discount,
        "lines": lines,
        "totals": totals,
        "promotions": applied_promotions(lines, promotions),
    }


def today() -> str:
    """The store's day (the node's local date): which promotions run."""
    return date.today().isoformat()


# Normally one; after a merge of two nodes' events possibly two for a moment:
# the newest is the one the till works on.
OPEN_BASKET_SQL = """SELECT id, till, cashier,
        (SELECT discount FROM basket_discounts WHERE basket_id = baskets.id) AS discount
    FROM baskets WHERE till = ? AND status = 'open' AND parked = 0
    ORDER BY opened_at DESC, id LIMIT 1"""
# Each line with its discount, kept apart (edge/selling/discounts.py).
LINES_SQL = f"""SELECT {LINE_COLUMNS}, basket_line_discounts.discount AS discount
    FROM basket_lines LEFT JOIN basket_line_discounts USING (basket_id, line_id)
    WHERE basket_lines.basket_id = ? ORDER BY position"""


async def open_basket(journal: Journal, till: str) -> dict[str, Any] | None:
    basket = await journal.read_one(OPEN_BASKET_SQL, (till,))
    if basket is None:
        return None
    return basket_json(basket, await journal.read_all(LINES_SQL, (basket["id"],)),
                        await active_promotions_read(journal, today()))


def open_basket_in(tx: Tx, till: str) -> dict[str, Any] | None:
    basket = tx.fetchone(OPEN_BASKET_SQL, (till,))
    if basket is None:
        return None
    return basket_json(basket, tx.fetchall(LINES_SQL, (basket["id"],)),
                        active_promotions(tx.db, today()))


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
    *,
    grams: int | None = None,
    price: int | None = None,
    layouts: Sequence[dict[str, Any]] = (),
    approved_by: str | None = None,
) -> dict[str, Any]:
    """Add a line of a product found by barcode or id (edge/selling/line_items.py says what
    a weight or price label, a typed weight and a typed price make of it)."""

    def work(tx: Tx) -> dict[str, Any]:
        refuse_if_held_elsewhere(tx, seller.till, basket_id)
        basket = open_basket_in(tx, seller.till)
        if basket is not None and basket["id"] != basket_id:
            raise EdgeError(
                BASKET_MISMATCH,
                f"till {seller.till} has basket {basket['id']} open, not {basket_id}",
            )
        if basket is None:
            closed = tx.fetchone("SELECT IIF(parked, 'parked', status) AS status FROM baskets "
                                 "WHERE id = ?", (basket_id,))  # parked: resume it first
            if closed is not None:
                raise EdgeError(
                    BASKET_MISMATCH, f"basket {basket_id} is already {closed['status']}"
                )
        elif any(line["id"] == line_id for line in basket["lines"]):
            return basket
        if line_was_removed(tx.db, basket_id, line_id):
            raise EdgeError(INVALID_FIELD, f"line {line_id} was removed from this basket: a "
                            "new line takes a new id", {"field": "line_id"})
        embedded = read_embedded(barcode, layouts) if barcode is not None else None
        product = find_product(tx, barcode=embedded["lookup"] if embedded else barcode,
                               product_id=product_id)
        fields = line_fields(product, quantity, embedded=embedded, grams=grams, price=price)
        tx.append(
            "basket_line_added",
            {
                "basket_id": basket_id,
                "till": seller.till,
                "cashier": seller.cashier,
                "line_id": line_id,
                "product_id": product["id"],
                # The label as scanned: its weight or price is part of the sale.
                "barcode": barcode if embedded else product["barcode"],
                "name": product["name"],
                "vat_rate": product["vat_rate"],
                **fields,
                **({"approved_by": approved_by} if approved_by else {}),
            },
        )
        return open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


def refuse_past_limit(tx: Tx, till: str, discount_limit: int) -> dict[str, Any]:
    """The basket as it now stands, unless its discounts went past what a cashier may
    give alone (`discounts.past_limit`: DISCOUNT_PAST_LIMIT) or its total below what the
    card terminal took for it (CARD_PAYMENT_TAKEN): then the change that took it there
    is not made."""
    basket = open_basket_in(tx, till)
    assert basket is not None
    if past_limit(basket, discount_limit):
        raise EdgeError(DISCOUNT_PAST_LIMIT, "with this change the basket's discounts would "
                        "take off more than a cashier may alone: take a discount off first, "
                        "or have a manager approve it", {"basket_id": basket["id"]})
    refuse_below_card_taken(tx, basket["id"], basket["totals"]["total"])
    return basket


async def set_quantity(
    journal: Journal, seller: Seller, basket_id: str, line_id: str, quantity: int,
    discount_limit: int = 10_000,
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
        return refuse_past_limit(tx, seller.till, discount_limit)

    return await journal.write(work)


async def remove_line(
    journal: Journal, seller: Seller, basket_id: str, line_id: str,
    discount_limit: int = 10_000,
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        basket = require_open_basket(tx, seller.till, basket_id)
        if not any(line["id"] == line_id for line in basket["lines"]):
            return basket
        tx.append("basket_line_removed", {"basket_id": basket_id, "line_id": line_id})
        return refuse_past_limit(tx, seller.till, discount_limit)

    return await journal.write(work)


async def void_basket(journal: Journal, seller: Seller, basket_id: str) -> None:
    def work(tx: Tx) -> None:
        basket = open_basket_in(tx, seller.till)
        if basket is None or basket["id"] != basket_id:
            return  # already voided or sold: voiding again is a no-op
        refuse_below_card_taken(tx, basket_id, 0)
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
    """Every open basket of the store, newest first (to resume one from another till).

    Its total is before discounts and promotions: a list to pick from, not a bill.
    """
    rows = await journal.read_all(
        """SELECT baskets.id, till, cashier, opened_at,
                  COALESCE(SUM(IIF(unit = 'g', 1, quantity)), 0) AS items,
                  COALESCE(SUM(IIF(unit = 'g', (2 * quantity * unit_price + 1000) / 2000,
                                   quantity * unit_price)), 0) AS total
           FROM baskets LEFT JOIN basket_lines ON basket_lines.basket_id = baskets.id
           WHERE status = 'open' AND parked = 0 GROUP BY baskets.id ORDER BY opened_at DESC"""
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
