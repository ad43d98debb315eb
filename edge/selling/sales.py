"""Sales: a sold basket, or a sale a till made offline, recorded as one event.

A sale carries the till's own receipt number (the till is the source of truth
for its numbering) and asks the till's printer for a receipt (and the drawer,
for cash) in the same transaction. Resending a sale records nothing twice,
through one node or several.

A sale's id is its basket's, qualified by the till that sold it
(`sale_id_for`): one till sending its sale again, through any node, makes one
sale; two tills that both sold one basket (taken over while the nodes were cut
apart) make two, both kept and shown as a basket sold twice, never one hiding
the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from edge.devices import print_jobs, store_printers
from edge.devices.receipt import euros
from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import EMPTY_BASKET, RECEIPT_NUMBER_USED, TRAINING_MISMATCH, EdgeError
from edge.selling.basket_events import close_basket
from edge.selling.baskets import (
    Seller,
    held_elsewhere,
    refuse_past_limit,
    require_open_basket,
)
from edge.selling.money import DEFAULT_MEAL_VOUCHER_CAP, settle
from edge.selling.tenders import with_payments

# The events that take a number of a till's receipt series: a sale, and a refund
# (a negative sale, edge/selling/refunds.py).
SALE_EVENT_TYPES = frozenset({"sale_completed", "sale_refunded"})


def receipt_number(till: str, receipt_no: int, training: bool = False) -> str:
    """`T01-8dfc74-000042`; a training sale's series has an E: `T01-8dfc74-E000042`."""
    return f"{till}-{'E' if training else ''}{receipt_no:06d}"


# What the fiscal layer adds to a sale or refund of a till, decided in its own
# transaction (edge/fiscal/shifts.py `sale_marks`): `training: true` on a till in
# training mode, its open shift's `shift_id`; it refuses one outside a required shift.
Marks = Callable[[Tx, str], dict[str, Any]]


def is_training_body(body: dict[str, Any]) -> bool:
    return body.get("training") is True


def refuse_training_card_payment(tenders: list[dict[str, Any]]) -> None:
    """A training sale takes no real money from a card: only tenders typed by hand."""
    if any(tender.get("payment_id") for tender in tenders):
        raise EdgeError(TRAINING_MISMATCH, "training mode takes no card through the terminal: "
                        "type the card tender by hand")


def refuse_real_basket(db: sqlite3.Connection, till: str, basket_id: str) -> None:
    """TRAINING_MISMATCH unless the basket was rung in training: opened after the till's
    switch to training, and never held by another till (a takeover, a resumed basket)."""
    switched = db.execute("SELECT changed FROM till_modes WHERE till = ? AND training = 1",
                          (till,)).fetchone()
    basket = db.execute("SELECT opened_at, holder_generation FROM baskets WHERE id = ?",
                        (basket_id,)).fetchone()
    if switched is None or basket is None:
        return
    if basket[0] < switched[0] or basket[1] > 0:
        raise EdgeError(TRAINING_MISMATCH, "this basket was rung before the till went into "
                        "training mode, or on another till: it is a real sale; leave "
                        "training mode to sell it, or void it")


def last_training_no_in(tx: Tx, till: str) -> int:
    """The till's last training number (kept below zero in `sales`: `keep_sale_row`)."""
    row = tx.fetchone("SELECT MIN(receipt_no) AS n FROM sales WHERE till = ? AND receipt_no < 0",
                      (till,))
    return -((row["n"] if row else None) or 0)


def sale_id_for(till: str, basket_id: str) -> str:
    """The id of the sale of `basket_id` by `till` (web/basket.js makes the same)."""
    return f"{basket_id}@{till}"


def this_tills_sale_of(tx: Tx, till: str, basket_id: str) -> dict[str, Any] | None:
    """This till's sale of that basket, whatever form its id took (resent, or from a till
    of before sale ids, whose sale id was the basket id)."""
    # A refund's row is never a basket's sale, whatever id a client gave its basket.
    done = tx.fetchone("SELECT body, time, hash FROM sales WHERE basket_id = ? AND till = ? "
                       "AND json_type(body, '$.refund_of') IS NULL "
                       "ORDER BY hash LIMIT 1", (basket_id, till))
    return sale_json(orjson.loads(done["body"]), done["time"], done["hash"]) if done else None


def _sold_by(tx: Tx, till: str, basket_id: str) -> dict[str, Any] | None:
    """This till's sale of that basket (a resend); refused if the basket was sold by another.

    A basket that another till's offline sale did not close (this till held
    it) is still this till's to sell.
    """
    done = this_tills_sale_of(tx, till, basket_id)
    if done is not None:
        return done
    other = tx.fetchone(
        "SELECT sales.till FROM baskets JOIN sales ON sales.basket_id = baskets.id "
        "WHERE baskets.id = ? AND baskets.status = 'sold' ORDER BY sales.hash LIMIT 1",
        (basket_id,))
    if other is not None:
        raise held_elsewhere(other["till"], basket_id, how="was sold")
    return None


def sale_json(body: dict[str, Any], time: str, hash_: str) -> dict[str, Any]:
    return {**body, "time": time, "hash": hash_}


def refuse_used_number(tx: Tx, till: str, receipt_no: int) -> None:
    """Two online sales never share a fiscal number (two tabs of a till, a stale counter)."""
    if tx.fetchone("SELECT 1 FROM sales WHERE till = ? AND receipt_no = ?", (till, receipt_no)):
        following = last_receipt_no_in(tx, till) + 1
        raise EdgeError(
            RECEIPT_NUMBER_USED,
            f"receipt {receipt_number(till, receipt_no)} is already used by another sale: "
            f"the next free number is {following}",
            {"till": till, "receipt_no": receipt_no, "next_receipt_no": following},
        )


async def complete_sale(
    journal: Journal,
    seller: Seller,
    basket_id: str,
    tenders: list[dict[str, Any]],
    receipt_no: int | None = None,
    print_receipt: bool = True,
    meal_voucher_cap: int = DEFAULT_MEAL_VOUCHER_CAP,
    discount_limit: int = 10_000,
    marks: Marks | None = None,
) -> dict[str, Any]:
    """Sell the till's open basket. `receipt_no` is the till's own numbering (none in
    training mode: the node numbers the training series).

    Its tenders must settle its total by the one rule (`settle`: meal vouchers
    up to the store's cap, no change but from cash).

    `print_receipt` False (the customer wants no ticket): no receipt is asked
    for, a cash sale still opens the drawer; the sale says `receipt:
    "not_printed"`, and its receipt can be printed later as the original.
    """

    def work(tx: Tx) -> dict[str, Any]:
        done = _sold_by(tx, seller.till, basket_id)
        if done is not None:
            return done
        basket = require_open_basket(tx, seller.till, basket_id)
        if not basket["lines"]:
            raise EdgeError(EMPTY_BASKET, "the basket is empty")
        # Checked again as the basket stands here: a discount and a quantity cut made
        # through two nodes each passed the check alone (h42).
        refuse_past_limit(tx, seller.till, discount_limit)
        totals = basket["totals"]
        settled = settle(totals["total"], tenders, meal_voucher_cap)
        extra = marks(tx, seller.till) if marks is not None else {}
        training = is_training_body(extra)
        if training:
            refuse_training_card_payment(tenders)
            refuse_real_basket(tx.db, seller.till, basket_id)  # rung before: a real sale
        tenders_recorded = with_payments(tx, seller.till, basket_id, tenders)
        if training:
            number = last_training_no_in(tx, seller.till) + 1
        else:
            if receipt_no is not None:
                refuse_used_number(tx, seller.till, receipt_no)
            number = receipt_no or last_receipt_no_in(tx, seller.till) + 1
        body = {
            "id": sale_id_for(seller.till, basket_id),
            "basket_id": basket_id,
            "till": seller.till,
            "receipt_no": number,
            "receipt_number": receipt_number(seller.till, number, training),
            "cashier": seller.cashier,
            "lines": basket["lines"],
            "totals": totals,
            "tenders": tenders_recorded,
            "change": settled["change"],
            **settled_extras(basket.get("discount"), settled),
        }
        if basket["promotions"]:
            body["promotions"] = basket["promotions"]
        body |= extra
        printer = store_printers.route(tx, seller.till)
        body["receipt"] = "printed" if print_receipt else "not_printed"  # the cashier's choice
        event = tx.append("sale_completed", body)
        if printer is not None:
            # Training money is pretend: the drawer stays shut.
            cash = any(t["method"] == "cash" for t in tenders) and not training
            if print_receipt:
                print_jobs.request_receipt(tx, printer, body["id"], open_drawer=cash)
            elif cash:
                print_jobs.request_sale_drawer(tx, printer, body["id"])
        return sale_json(body, event.time, event.hash)

    return await journal.write(work)


async def held_receipt_numbers(journal: Journal, till: str, since: int) -> list[int]:
    """The receipt numbers of `till` from `since` on that this node holds."""
    rows = await journal.read_all(
        "SELECT DISTINCT receipt_no FROM sales WHERE till = ? AND receipt_no >= ? "
        "ORDER BY receipt_no LIMIT 5000",
        (till, since),
    )
    return [row["receipt_no"] for row in rows]


def baskets_sold_twice(db: sqlite3.Connection, limit: int = 20) -> dict[str, str]:
    """Baskets that more than one sale sold, in words: two tills each took the money.

    It happens when a basket is taken over while nodes are cut apart, or a
    till sells offline a basket another till took. Both sales are kept; a
    manager settles it with the customer.
    """
    rows = db.execute(
        """SELECT basket_id, json_extract(body, '$.receipt_number'), total FROM sales
        WHERE basket_id IN (
            SELECT basket_id FROM sales GROUP BY basket_id HAVING COUNT(*) > 1 LIMIT ?)
        ORDER BY basket_id, time""",
        (limit,),
    ).fetchall()
    sold: dict[str, list[str]] = {}
    for basket_id, number, total in rows:
        sold.setdefault(f"basket {basket_id}", []).append(f"{number} ({euros(total)} EUR)")
    return {basket: "sold more than once: " + ", ".join(sales) for basket, sales in sold.items()}


def last_receipt_no_in(tx: Tx, till: str) -> int:
    row = tx.fetchone("SELECT MAX(receipt_no) AS n FROM sales WHERE till = ? AND receipt_no > 0",
                      (till,))
    return (row["n"] if row else None) or 0


async def last_receipt_no(journal: Journal, till: str) -> int:
    row = await journal.read_one("SELECT MAX(receipt_no) AS n FROM sales WHERE till = ? "
                                 "AND receipt_no > 0", (till,))
    return (row["n"] if row else None) or 0


def settled_extras(discount: dict[str, Any] | None,
                    settled: dict[str, int]) -> dict[str, Any]:
    """The basket's discount and the meal vouchers' excess kept, when there are."""
    extras: dict[str, Any] = {}
    if discount:
        extras["discount"] = discount
    if settled.get("voucher_excess"):
        extras["voucher_excess"] = settled["voucher_excess"]
    return extras


async def find_sale(journal: Journal, sale_id: str) -> dict[str, Any] | None:
    row = await journal.read_one("SELECT body, time, hash FROM sales WHERE id = ?", (sale_id,))
    return sale_json(orjson.loads(row["body"]), row["time"], row["hash"]) if row else None


def keep_sale_row(db: sqlite3.Connection, event: Event, basket_id: str) -> None:
    """The row in `sales` of a sale (or a refund), one per id: the smaller event hash wins.

    A training sale's number is kept below zero: the real series (its last number, its
    gaps, `sale/held`) never sees the training one."""
    body = event.body
    number = -body["receipt_no"] if is_training_body(body) else body["receipt_no"]
    db.execute(
        """INSERT INTO sales (id, till, receipt_no, cashier, time, total, body, hash, basket_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET till = excluded.till, receipt_no = excluded.receipt_no,
            cashier = excluded.cashier, time = excluded.time, total = excluded.total,
            body = excluded.body, hash = excluded.hash, basket_id = excluded.basket_id
        WHERE excluded.hash < sales.hash""",
        (body["id"], body["till"], number, body["cashier"], event.time,
         body["totals"]["total"], orjson.dumps(body).decode(), event.hash, basket_id),
    )


@dataclass(slots=True)
class SoldLine:
    id: str
    product_id: str
    name: str
    unit_price: int
    vat_rate: int
    quantity: int
    total: int
    barcode: str | None = None


@dataclass(slots=True)
class VatLine:
    rate: int
    base: int
    vat: int
    total: int


@dataclass(slots=True)
class SaleTotals:
    total: int
    items: int
    vat: list[VatLine]


@dataclass(slots=True)
class Tender:
    method: str
    amount: int
    reference: str | None = None


@dataclass(slots=True)
class SaleCompleted:
    id: str
    till: str
    receipt_no: int
    cashier: str
    lines: list[SoldLine]
    totals: SaleTotals
    tenders: list[Tender]
    receipt_number: str = ""
    basket_id: str = ""  # none in sales of before sale ids: their id was their basket's
    closes_basket: bool = True
    change: int = 0
    offline: bool = False
    resent: bool = False
    flags: list[str] = field(default_factory=list)


@event_type("sale_completed", schema=SaleCompleted,
            merge="one sale per id: the smaller event hash wins; its basket is sold unless "
                  "the sale says it was held by another till (decided when it was recorded)")
def _sale_completed(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    basket_id = body.get("basket_id") or body["id"]
    # The same sale recorded through two nodes (a till resending after a
    # failover) stays one sale; every node keeps the same one of the two.
    keep_sale_row(db, event, basket_id)
    if body.get("closes_basket", True):
        close_basket(db, event, basket_id, "sold")
