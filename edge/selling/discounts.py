"""A cashier's discounts: on one line, or on the whole basket, with a reason.

A discount is an amount (cents off) or a percent (basis points), with the
reason the cashier gave. Above the store's limit (`selling.discount_limit`,
basis points of what is discounted) a manager approves on the spot
(edge/api/approvals.py) and the event records who. The pricing function
(edge/selling/money.py `price_basket`) turns discounts into line totals, the
same way on the node and on the offline till.

Each discount is an event; the latest (time, hash) of a line's or a basket's
discount events is the one that holds, whatever order they arrive in, kept
apart from the line itself so that a discount arriving before its line (a
till that failed over between the two) is not lost. Setting none removes it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.schema import limits

MAX_REASON = 120
BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class Discount:
    kind: Literal["amount", "percent"]
    value: int = field(metadata=limits(min=1, max=10_000_000))
    reason: str = field(metadata=limits(min=1, max_length=MAX_REASON))
    approved_by: str | None = None
    # What the approval was given on (the line's price, or the basket's after
    # promotions, in cents): a manager approves that much, not what the basket
    # grows to after (h42: 100 % approved on one loaf, then 9999 loaves).
    approved_on: int | None = None


def past_limit(basket: dict[str, Any], limit: int) -> bool:
    """Do the discounts no manager approved take off more than a cashier may alone?

    `basket` is priced (edge/selling/baskets.py). Checked whenever the basket
    changes, not only when a discount is set: an amount off a line of ten,
    then the quantity cut to one, would give the line away. Each discount on
    its own (a line's against its price, the basket's against the lines after
    theirs) and all of them together against the basket after promotions:
    two discounts each under the limit do not add up past it. `limit` is in
    basis points (`selling.discount_limit`).
    """
    lines = basket["lines"]
    unapproved = 0
    for line in lines:
        discount = line.get("discount")
        if discount and not approved(discount, line["gross"]):
            if line["discount_amount"] * BASIS_POINTS > limit * line["gross"]:
                return True
            unapproved += line["discount_amount"]
    discount = basket.get("discount")
    if discount and not approved(discount, basket_size(basket)):
        shared = sum(line["basket_share"] for line in lines)
        after_lines = sum(line["total"] + line["basket_share"] for line in lines)
        if shared * BASIS_POINTS > limit * after_lines:
            return True
        unapproved += shared
    return unapproved * BASIS_POINTS > limit * basket_size(basket)


def discount_json(raw: str | None) -> dict[str, Any] | None:
    return orjson.loads(raw) if raw else None


@dataclass(slots=True)
class BasketLineDiscounted:
    basket_id: str
    line_id: str
    discount: Discount | None = None


@dataclass(slots=True)
class BasketDiscounted:
    basket_id: str
    discount: Discount | None = None


LATEST_WINS = ("the latest (time, hash) of the line's (or basket's) discount events holds, "
               "kept apart from the line so it may arrive first; none once the basket closed")

# Not for a basket already sold or voided here (a late event changes nothing).
NOT_CLOSED = "NOT EXISTS (SELECT 1 FROM baskets WHERE id = ? AND status != 'open')"


@event_type("basket_line_discounted", schema=BasketLineDiscounted, merge=LATEST_WINS)
def _basket_line_discounted(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    changed = f"{event.time} {event.hash}"
    discount = orjson.dumps(body["discount"]).decode() if body.get("discount") else None
    db.execute(
        f"""INSERT INTO basket_line_discounts (basket_id, line_id, discount, changed)
        SELECT ?, ?, ?, ? WHERE {NOT_CLOSED}
        ON CONFLICT (basket_id, line_id) DO UPDATE SET
            discount = excluded.discount, changed = excluded.changed
        WHERE excluded.changed > changed""",
        (body["basket_id"], body["line_id"], discount, changed, body["basket_id"]),
    )


@event_type("basket_discounted", schema=BasketDiscounted, merge=LATEST_WINS)
def _basket_discounted(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    changed = f"{event.time} {event.hash}"
    discount = orjson.dumps(body["discount"]).decode() if body.get("discount") else None
    db.execute(
        f"""INSERT INTO basket_discounts (basket_id, discount, changed)
        SELECT ?, ?, ? WHERE {NOT_CLOSED}
        ON CONFLICT (basket_id) DO UPDATE SET
            discount = excluded.discount, changed = excluded.changed
        WHERE excluded.changed > changed""",
        (body["basket_id"], discount, changed, body["basket_id"]),
    )


def basket_size(basket: dict[str, Any]) -> int:
    """What the basket costs after promotions, before any discount (priced)."""
    return sum(line["gross"] - line["promotion"] for line in basket["lines"])


def approved(discount: dict[str, Any], now_on: int) -> bool:
    """Approved by a manager for what it is now taken off (no more than it was then)."""
    if not discount.get("approved_by"):
        return False
    return discount.get("approved_on") is None or now_on <= discount["approved_on"]


# A removed line's discount row, kept so that no later discount event, nor a line
# added again under its id (a till never does), brings a discount back. Sorts
# after every event time, so no discount event ever wins over it.
REMOVED = "~ removed"


def forget_line_discount(db: sqlite3.Connection, basket_id: str, line_id: str) -> None:
    db.execute(
        f"""INSERT INTO basket_line_discounts (basket_id, line_id, discount, changed)
        SELECT ?, ?, NULL, ? WHERE {NOT_CLOSED}
        ON CONFLICT (basket_id, line_id) DO UPDATE SET
            discount = NULL, changed = excluded.changed""",
        (basket_id, line_id, REMOVED, basket_id))


def line_was_removed(db: sqlite3.Connection, basket_id: str, line_id: str) -> bool:
    return db.execute(
        "SELECT 1 FROM basket_line_discounts WHERE basket_id = ? AND line_id = ? "
        "AND changed = ?", (basket_id, line_id, REMOVED)).fetchone() is not None


def forget_discounts(db: sqlite3.Connection, basket_id: str) -> None:
    """A sold or voided basket's discounts are in its sale (or gone with it)."""
    db.execute("DELETE FROM basket_line_discounts WHERE basket_id = ?", (basket_id,))
    db.execute("DELETE FROM basket_discounts WHERE basket_id = ?", (basket_id,))
