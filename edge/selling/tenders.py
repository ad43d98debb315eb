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
once (edge/selling/sales.py), so no other sale can spend it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.devices.card_payments import paid_amount, payment_row
from edge.journal.store import Tx
from edge.messages import (
    CARD_PAYMENT_MISMATCH,
    CARD_PAYMENT_NOT_APPROVED,
    CARD_PAYMENT_PENDING,
    UNKNOWN_PAYMENT,
    EdgeError,
)

# What a receipt prints of a payment the terminal made (columns of `card_payments`).
FROM_TERMINAL = ("authorisation", "last4", "application", "read_mode")


def with_payments(tx: Tx, till: str, basket_id: str, tenders: Sequence[dict[str, Any]],
                  refund: bool = False) -> list[dict[str, Any]]:
    """`tenders` as the sale records them, each card one checked against its payment.

    `basket_id`: the basket the till sells (a refund: the refund's id as the till
    gave it). Raises an EdgeError, nothing recorded, for a payment that is not
    this till's and this basket's, not approved, or of another amount.
    """
    return [_card_tender(tx, till, basket_id, tender, refund) if tender["method"] == "card"
            else tender_as_recorded(tender) for tender in tenders]


def recorded_after_the_fact(tx: Tx, till: str, basket_id: str, tenders: Sequence[dict[str, Any]],
                            refund: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """An offline (or resent) sale's tenders, and whether a card payment it names could
    not be checked here: the money changed hands, so it is recorded all the same
    (its payment id kept) and the sale is flagged `card_payment_unverified`."""
    try:
        return with_payments(tx, till, basket_id, tenders, refund), False
    except EdgeError:
        return [{**tender_as_recorded(tender),
                 **({"payment_id": tender["payment_id"]} if tender.get("payment_id") else {})}
                for tender in tenders], True


def _card_tender(tx: Tx, till: str, basket_id: str, tender: dict[str, Any],
                 refund: bool) -> dict[str, Any]:
    payment_id = tender.get("payment_id")
    if not payment_id:
        return tender_as_recorded(tender)
    row = payment_row(tx, payment_id)
    if row is None or row["request"] == "{}":
        raise EdgeError(UNKNOWN_PAYMENT, f"no card payment {payment_id} is known here: if the "
                        "terminal was just used, try again in a moment")
    what = "refund" if refund else "basket"
    if row["till"] != till or row["basket_id"] != basket_id or bool(row["refund"]) != refund:
        raise EdgeError(CARD_PAYMENT_MISMATCH,
                        f"card payment {payment_id} is not this till's for this {what}")
    if row["status"] in ("requested", "started"):
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


def tender_as_recorded(tender: dict[str, Any]) -> dict[str, Any]:
    """A tender as the sale records it: what was given, by what, and its reference and
    kind if any."""
    kept = {"method": tender["method"], "amount": tender["amount"]}
    for optional in ("reference", "kind"):
        if tender.get(optional):
            kept[optional] = tender[optional]
    return kept
