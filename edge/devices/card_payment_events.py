"""Card payments' events and their projection into the `card_payments` table.

The rules that write them are edge/devices/card_payments.py's. Projections
are the same whatever the order in which events arrive: a payment's row is
made by whichever of its events comes first; its request fills it in;
started and result come from the terminal's node alone (in its order), and
one result and one settlement are kept per payment.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Literal

from edge.journal.chain import Event, canonical_json
from edge.journal.event_types import CertifiedBody, Unauthorized, event_type
from edge.schema import limits


@dataclass(slots=True)
class PaymentRequested:
    payment_id: str = field(metadata=limits(min=1, max_length=64))
    till: str = field(metadata=limits(min=1, max_length=64))
    cashier: str = field(metadata=limits(min=1, max_length=64))
    terminal: str = field(metadata=limits(min=1, max_length=64))
    node: str = field(metadata=limits(min=1, max_length=64))
    amount: int = field(metadata=limits(min=1))
    refund: bool = False
    basket_id: str = field(default="", metadata=limits(max_length=128))
    requested_at: str = field(default="", metadata=limits(max_length=40))
    # A refund: the sale it gives back to the card (its card tenders bound it), or the
    # manager who let it go without one.
    sale_id: str | None = field(default=None, metadata=limits(min=1, max_length=128))
    approved_by: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@dataclass(slots=True)
class PaymentStarted:
    payment_id: str = field(metadata=limits(min=1, max_length=64))
    node: str = field(metadata=limits(min=1, max_length=64))
    terminal: str = field(metadata=limits(min=1, max_length=64))


@dataclass(slots=True)
class PaymentResult:
    payment_id: str = field(metadata=limits(min=1, max_length=64))
    node: str = field(metadata=limits(min=1, max_length=64))
    terminal: str = field(metadata=limits(min=1, max_length=64))
    status: Literal["approved", "declined", "unreachable", "unknown"]
    code: str | None = None
    reason: str | None = None
    authorised: int | None = field(default=None, metadata=limits(min=0))
    authorisation: str | None = None
    last4: str | None = None
    card: str | None = None
    application: str | None = None
    read_mode: str | None = None
    transaction: str | None = None


@dataclass(slots=True)
class PaymentSettled:
    payment_id: str = field(metadata=limits(min=1, max_length=64))
    approved: bool
    reference: str = field(metadata=limits(max_length=64))
    amount: int = field(metadata=limits(min=0))
    cashier: str = field(default="", metadata=limits(max_length=64))


def _terminal_node_only(event: Event, certified: CertifiedBody) -> None:
    """Only the node that dials the terminal says how a payment on it goes."""
    if event.body.get("node") != event.origin:
        raise Unauthorized(f"{event.origin}#{event.seq}: a {event.type} for a terminal of "
                           f"node {event.body.get('node')!r}: only that node dials it")


def _row(db: sqlite3.Connection, event: Event) -> str:
    """The payment's row, made bare if this is the first we hear of it; its id.

    The terminal's node's events all name the same terminal: a bare row takes it.
    """
    body = event.body
    payment_id = str(body["payment_id"])
    db.execute("INSERT OR IGNORE INTO card_payments (payment_id) VALUES (?)", (payment_id,))
    if "node" in body and "terminal" in body:
        db.execute("UPDATE card_payments SET node = ?, terminal = ? WHERE payment_id = ? "
                   "AND request = '{}'", (body["node"], body["terminal"], payment_id))
    return payment_id


@event_type("card_payment_requested", schema=PaymentRequested,
            merge="one payment per id: the earliest request (requested_at, then event hash) "
                  "is kept whichever arrives first; a row made by later events is filled in, "
                  "its status kept")
def _card_payment_requested(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT INTO card_payments (payment_id, till, cashier, basket_id, terminal, node,
            amount, refund, requested_at, request, request_event)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (payment_id) DO UPDATE SET till = excluded.till,
            cashier = excluded.cashier, basket_id = excluded.basket_id,
            terminal = excluded.terminal, node = excluded.node, amount = excluded.amount,
            refund = excluded.refund, requested_at = excluded.requested_at,
            request = excluded.request, request_event = excluded.request_event
        WHERE card_payments.request = '{}'
           OR (excluded.requested_at, excluded.request_event)
              < (card_payments.requested_at, card_payments.request_event)""",
        (body["payment_id"], body["till"], body["cashier"], body.get("basket_id", ""),
         body["terminal"], body["node"], body["amount"], int(bool(body.get("refund"))),
         body.get("requested_at", ""), canonical_json(body).decode(), event.hash),
    )


@event_type("card_payment_started", schema=PaymentStarted, authorize=_terminal_node_only,
            merge="the terminal's node's own, in its order: requested becomes started, "
                  "never a result back")
def _card_payment_started(db: sqlite3.Connection, event: Event) -> None:
    db.execute("UPDATE card_payments SET status = 'started' WHERE payment_id = ? "
               "AND status = 'requested'", (_row(db, event),))


RESULT_FIELDS = ("code", "reason", "authorised", "authorisation", "last4", "card",
                 "application", "read_mode")


@event_type("card_payment_result", schema=PaymentResult, authorize=_terminal_node_only,
            merge="one result per payment, the terminal's node's (the smaller event hash "
                  "should there ever be two)")
def _card_payment_result(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        f"""UPDATE card_payments SET status = ?, {", ".join(f"{f} = ?" for f in RESULT_FIELDS)},
            transaction_id = ?, result_event = ?
        WHERE payment_id = ? AND (result_event = '' OR ? < result_event)""",
        (body["status"], *(body.get(f) for f in RESULT_FIELDS), body.get("transaction"),
         event.hash, _row(db, event), event.hash),
    )


@event_type("card_payment_settled", schema=PaymentSettled,
            merge="one settlement per payment: the smaller event hash wins")
def _card_payment_settled(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """UPDATE card_payments SET settled = ?, settled_reference = ?, settled_amount = ?,
            settled_by = ?, settled_event = ?
        WHERE payment_id = ? AND (settled_event = '' OR ? < settled_event)""",
        ("approved" if body["approved"] else "declined", body["reference"], body["amount"],
         body.get("cashier", ""), event.hash, _row(db, event), event.hash),
    )
