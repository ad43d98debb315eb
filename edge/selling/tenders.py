"""Tenders as a sale or a refund records them; card ones paid through the terminal, or
keyed from its slip.

A card tender with a `payment_id` names a payment the terminal made for this
till and this basket (or refund) (edge/devices/card_payments.py): the sale
takes it only approved (or, its answer lost, settled approved from the
terminal's slip), for exactly the amount the terminal took, and records its
authorisation and masked card (`entry: "terminal"`; settled from the slip:
`entry: "slip"`). A card tender without one is the standalone way, as before
terminals (the cashier keyed the amount on the terminal and reads its slip):
recorded with no `entry`.

A payment is bound to one till and one basket, and a till sells a basket
once (edge/selling/sales.py), so no other sale can spend it; one sale names it
once (two tenders of one payment would be paid once, sold twice).

A card refund through the terminal gives back at most what its sale took by
card and has not had back (`card_left_to_give_back`), asked for before the
refund is recorded: the terminal credits the card at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.devices.card_payments import may_have_taken, paid_amount, payment_row, status_of
from edge.journal.store import Tx
from edge.messages import (
    CARD_PAYMENT_MISMATCH,
    CARD_PAYMENT_NOT_APPROVED,
    CARD_PAYMENT_PENDING,
    CARD_PAYMENT_TAKEN,
    REFUND_OF_REFUND,
    UNKNOWN_PAYMENT,
    UNKNOWN_SALE,
    EdgeError,
)

# What a receipt prints of a payment the terminal made (columns of `card_payments`).
FROM_TERMINAL = ("authorisation", "last4", "application", "read_mode")


def with_payments(tx: Tx, till: str, basket_id: str, tenders: Sequence[dict[str, Any]],
                  refund: bool = False, refund_of: str | None = None,
                  pending_too: bool = True) -> list[dict[str, Any]]:
    """`tenders` as the sale records them, each card one checked against its payment.

    `basket_id`: the basket the till sells (a refund: the refund's id as the till
    gave it; `refund_of`: the sale it refunds). Raises an EdgeError, nothing
    recorded, for a payment that is not this till's and this basket's (a refund's:
    given back for another sale), not approved, or of another amount, or named twice.
    """
    twice = [payment_id for payment_id, count in Counter(
        tender.get("payment_id") for tender in tenders if tender["method"] == "card"
        and tender.get("payment_id")).items() if count > 1]
    if twice:
        raise EdgeError(CARD_PAYMENT_MISMATCH, f"card payment {twice[0]} is named by two "
                        "tenders: the terminal took it once")
    recorded = [_card_tender(tx, till, basket_id, tender, refund, refund_of)
                if tender["method"] == "card" else tender_as_recorded(tender)
                for tender in tenders]
    if not refund:
        refuse_untendered(tx, basket_id, tenders, pending_too)
    return recorded


def recorded_after_the_fact(tx: Tx, till: str, basket_id: str, tenders: Sequence[dict[str, Any]],
                            refund: bool = False, refund_of: str | None = None,
                            ) -> tuple[list[dict[str, Any]], bool]:
    """An offline (or resent) sale's tenders, and whether a card payment it names could
    not be checked here: the money changed hands, so it is recorded all the same
    (its payment id kept) and the sale is flagged `card_payment_unverified`."""
    try:
        return with_payments(tx, till, basket_id, tenders, refund, refund_of,
                             pending_too=False), False
    except EdgeError:
        return [{**tender_as_recorded(tender),
                 **({"payment_id": tender["payment_id"]} if tender.get("payment_id") else {})}
                for tender in tenders], True


def _card_tender(tx: Tx, till: str, basket_id: str, tender: dict[str, Any],
                 refund: bool, refund_of: str | None) -> dict[str, Any]:
    payment_id = tender.get("payment_id")
    if not payment_id:
        return tender_as_recorded(tender)
    row = payment_row(tx, payment_id)
    if row is None or row["request"] == "{}":
        raise EdgeError(UNKNOWN_PAYMENT, f"no card payment {payment_id} is known here: if the "
                        "terminal was just used, try again in a moment")
    what = "refund" if refund else "basket"
    # A sale's payment is its basket's, whichever till holds it now (a basket taken over
    # after its card was charged is sold where it went); a refund's is its till's.
    if ((refund and row["till"] != till) or row["basket_id"] != basket_id
            or bool(row["refund"]) != refund):
        raise EdgeError(CARD_PAYMENT_MISMATCH,
                        f"card payment {payment_id} is not this till's for this {what}")
    given_back_for = orjson.loads(row["request"]).get("sale_id")
    if refund and given_back_for is not None and given_back_for != refund_of:
        raise EdgeError(CARD_PAYMENT_MISMATCH, f"card payment {payment_id} gave back for sale "
                        f"{given_back_for}, not for this one")
    if status_of(row) in ("requested", "started"):
        raise EdgeError(CARD_PAYMENT_PENDING, f"card payment {payment_id} is still in progress "
                        "on the terminal: its answer is not known here yet")
    paid = paid_amount(row)
    if paid is None:
        raise EdgeError(CARD_PAYMENT_NOT_APPROVED,
                        f"card payment {payment_id} was not approved ({row['status']})",
                        {"status": row["status"], "settled": row["settled"]})
    amount = -paid if refund else paid
    if tender["amount"] != amount:
        raise EdgeError(CARD_PAYMENT_MISMATCH,
                        f"card payment {payment_id} took {paid} cents: the tender must be "
                        f"{amount}, not {tender['amount']}", {"paid": paid})
    kept = {"method": "card", "amount": amount, "payment_id": payment_id}
    if row["status"] == "approved":
        return {**kept, "entry": "terminal",
                **{name: row[name] for name in FROM_TERMINAL if row[name] is not None}}
    return {**kept, "entry": "slip", "reference": row["settled_reference"]}


def refuse_untendered(tx: Tx, basket_id: str, tenders: Sequence[dict[str, Any]],
                      pending_too: bool) -> None:
    """A basket is not sold without every card payment that took money for it (h49): a
    second tab of the till, or a till that lost the payment's dialog (a reload, a late
    answer), paying cash for it would leave the card charged for no sale. `pending_too`
    (a sale online): nor while one may still take money (on the terminal, or its answer
    lost and not settled from the slip): its outcome first. Offline, the money changed
    hands: a card charged and missing from the sale only flags it."""
    named = {tender.get("payment_id") for tender in tenders if tender["method"] == "card"}
    now = datetime.now(UTC)
    for row in tx.fetchall(OTHER_PAYMENTS_SQL, (basket_id, "")):
        if row["payment_id"] in named:
            continue
        paid = paid_amount(row)
        if paid is not None:
            raise EdgeError(CARD_PAYMENT_TAKEN, f"the card terminal took {paid} cents for this "
                            f"basket (payment {row['payment_id']}): the sale names it",
                            {"basket_id": basket_id, "card_taken": paid,
                             "payment_id": row["payment_id"]})
        if pending_too and may_have_taken(row, now):
            raise EdgeError(CARD_PAYMENT_PENDING, f"card payment {row['payment_id']} of this "
                            "basket may still take money: wait for its answer (or settle it "
                            "from the terminal's slip)",
                            {"basket_id": basket_id, "payment_id": row["payment_id"]})


def tender_as_recorded(tender: dict[str, Any]) -> dict[str, Any]:
    """A tender as the sale records it: what was given, by what, and its reference and
    kind if any."""
    kept = {"method": tender["method"], "amount": tender["amount"]}
    for optional in ("reference", "kind"):
        if tender.get(optional):
            kept[optional] = tender[optional]
    return kept


OTHER_PAYMENTS_SQL = """SELECT *, node IN (SELECT origin FROM retired_origins) AS node_retired
    FROM card_payments WHERE basket_id = ? AND refund = 0 AND payment_id != ?
    AND request != '{}'"""


def card_taken(tx: Tx, basket_id: str, but: str = "") -> int:
    """The cents the basket's card payments (all, or all `but` one) took, or may still."""
    now = datetime.now(UTC)
    return sum(may_have_taken(row, now)
               for row in tx.fetchall(OTHER_PAYMENTS_SQL, (basket_id, but)))


def card_left_to_pay(tx: Tx, basket_id: str, payment_id: str, total: int) -> int:
    """What a basket of `total` cents leaves to pay by card (`payment_id`) once its other
    card payments that took money, or may still, are counted: a second payment after a
    partial authorisation is for the rest, never the whole basket again."""
    return total - card_taken(tx, basket_id, but=payment_id)


def refuse_below_card_taken(tx: Tx, basket_id: str, total: int) -> None:
    """A basket never goes below what the terminal took for it (or may have): voided or
    cut after the card was charged, the customer would have paid for no sale. It is sold,
    then what the customer does not take is refunded (back to the card, bounded by it)."""
    taken = card_taken(tx, basket_id)
    if total < taken:
        raise EdgeError(CARD_PAYMENT_TAKEN,
                        f"the card terminal took {taken} cents for this basket: it cannot go "
                        f"below that. Complete the sale, then refund what the customer does "
                        f"not take", {"basket_id": basket_id, "card_taken": taken})


# A sale's refunds, as refunds.py finds them (`refund_lines` names each refund's sale).
_REFUNDS_OF_SQL = "SELECT body FROM sales WHERE id IN (SELECT refund_id FROM refund_lines " \
                  "WHERE sale_id = ?)"
_CARD_REFUNDS_OF_SQL = """SELECT *, node IN (SELECT origin FROM retired_origins) AS node_retired
    FROM card_payments WHERE refund = 1 AND payment_id != ? AND request != '{}'
    AND json_extract(request, '$.sale_id') = ?"""


def card_left_to_give_back(tx: Tx, sale_id: str, payment_id: str) -> int:
    """The cents a card refund (`payment_id`) may still give back for `sale_id`: what the
    sale took by card, less its refund payments that gave or may give back (recorded or
    not yet), less the card given back by hand in its recorded refunds."""
    row = tx.fetchone("SELECT body FROM sales WHERE id = ?", (sale_id,))
    if row is None:
        raise EdgeError(UNKNOWN_SALE, f"no sale {sale_id} on this node")
    sale = orjson.loads(row["body"])
    if "refund_of" in sale:
        raise EdgeError(REFUND_OF_REFUND, f"{sale['receipt_number']} is a refund: nothing "
                        "goes back to a card for it")
    left = sum(t["amount"] for t in sale["tenders"] if t["method"] == "card")
    now = datetime.now(UTC)
    counted = {payment_id}
    for payment in tx.fetchall(_CARD_REFUNDS_OF_SQL, (payment_id, sale_id)):
        left -= may_have_taken(payment, now)
        counted.add(payment["payment_id"])
    for refund in tx.fetchall(_REFUNDS_OF_SQL, (sale_id,)):
        left += sum(t["amount"] for t in orjson.loads(refund["body"])["tenders"]
                    if t["method"] == "card" and t.get("payment_id") not in counted)
    return left
