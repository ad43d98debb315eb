"""Card payments through the store's terminals: the `card_payments` table read, the rules.

A till asks for a payment on its terminal (`payment/card`, edge/api/payment_commands.py);
the node it is connected to journals `card_payment_requested`, naming the
terminal and the node that owns it (terminals belong to one node, like
printers, and are announced the same way: edge/devices/store_terminals.py). That node's
worker (edge/devices/terminals.py) journals `card_payment_started` before
it dials the terminal, and `card_payment_result` after: `approved`,
`declined`, `unreachable` (nothing was sent: the card was not charged) or
`unknown` (the request went out, the answer was lost: only the terminal's
slip can tell). An `unknown` payment is settled by the cashier from that slip
(`card_payment_settled`). Nothing is ever dialled twice for one payment id:
a resend answers the payment's state.

The clock decides twice: a payment asked for more than `NOT_TAKEN_AFTER`
ago that its terminal's node has not started reads `unreachable` (code
`not_taken`; a reading, never journaled), and that node refuses to start one
older than `STALE_AFTER` by its own clock (result `unreachable`, code
`stale_request`), so a request held up by a partition never charges a card
after the cashier moved on.

Its events and their projections are edge/devices/card_payment_events.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.devices.card_payment_events import RESULT_FIELDS
from edge.devices.store_terminals import TerminalRef
from edge.journal.chain import Event, utc_now
from edge.journal.store import Journal, Tx
from edge.messages import (
    CARD_PAYMENT_MISMATCH,
    CARD_PAYMENT_TOO_MUCH,
    INVALID_FIELD,
    PAYMENT_ALREADY_SETTLED,
    PAYMENT_ID_REUSED,
    PAYMENT_NOT_UNKNOWN,
    TERMINAL_BUSY,
    UNKNOWN_PAYMENT,
    EdgeError,
)

# A request its terminal's node has not started by then reads `unreachable`
# (`not_taken`) everywhere; that node starts none older than `STALE_AFTER`.
NOT_TAKEN_AFTER = timedelta(seconds=30)
STALE_AFTER = timedelta(seconds=15)
UNFINISHED = ("requested", "started")
RESULTS = ("approved", "declined", "unreachable", "unknown")
NO_REQUEST = "{}"  # the row was made by a later event; its request has not arrived yet

# What the till is told of each reading of ours (its screen translates by code).
NOT_TAKEN = ("not_taken", "the terminal's node did not take the payment within 30 s: look at "
                          "the terminal; if it shows no payment, nothing was charged")
STALE = ("stale_request", "the request reached the terminal's node too late (over 15 s): it "
                          "was not sent to the terminal, nothing was charged")
NODE_RESTARTED = ("node_restarted", "the terminal's node restarted before sending the payment "
                                    "to the terminal: nothing was charged")
NODE_STOPPED = ("node_stopped", "the node stopped during the payment: read the terminal's slip")
NO_TERMINAL_HERE = ("no_terminal", "the terminal is not configured on its node any more: "
                                   "nothing was sent")
NODE_RETIRED = ("node_retired", "the terminal's node was restored from a backup taken during "
                                "the payment: nobody can tell how it ended; read the terminal's "
                                "slip")


# --- reading a payment ---

def utc(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def older_than(row: Mapping[str, Any], age: timedelta, now: datetime) -> bool:
    """Asked more than `age` before `now`, or claiming to be asked more than `age` after
    it: a requesting node whose clock runs ahead does not make a request held up by a
    partition look fresh when it arrives."""
    asked = utc(row["requested_at"] or "")
    return asked is None or abs(now - asked) > age


def not_taken(row: Mapping[str, Any], now: datetime) -> bool:
    """Asked for, and not started by its terminal's node within `NOT_TAKEN_AFTER`."""
    return row["status"] == "requested" and older_than(row, NOT_TAKEN_AFTER, now)


# A payment's row, and whether its terminal's node was retired by a successor (a
# restored backup, edge/journal/lineage.py): that node finishes nothing any more.
PAYMENT_SQL = """SELECT *, node IN (SELECT origin FROM retired_origins) AS node_retired
    FROM card_payments WHERE payment_id = ?"""


def payment_row(tx: Tx | sqlite3.Connection, payment_id: str) -> sqlite3.Row | None:
    if isinstance(tx, sqlite3.Connection):
        return tx.execute(PAYMENT_SQL, (payment_id,)).fetchone()  # type: ignore[no-any-return]
    return tx.fetchone(PAYMENT_SQL, (payment_id,))


async def read_payment(journal: Journal, payment_id: str) -> sqlite3.Row | None:
    return await journal.read_one(PAYMENT_SQL, (payment_id,))


def stranded(row: Mapping[str, Any]) -> bool:
    """Unfinished on a node since retired: it may have dialled after the backup was taken,
    and nobody will hear it finish (a reading, never journaled, like print jobs')."""
    try:
        retired = bool(row["node_retired"])
    except (KeyError, IndexError):
        retired = False
    return retired and row["status"] in UNFINISHED


def status_of(row: Mapping[str, Any]) -> str:
    """The payment's status as the rules read it: a stranded one is `unknown`."""
    return "unknown" if stranded(row) else str(row["status"])


def paid_amount(row: Mapping[str, Any]) -> int | None:
    """The cents the payment took for sure (for a tender): the authorised amount of an
    approved one, the settled amount of an unknown one settled approved; else None."""
    if row["status"] == "approved":
        return int(row["authorised"] if row["authorised"] is not None else row["amount"])
    if status_of(row) == "unknown" and row["settled"] == "approved":
        return int(row["settled_amount"])
    return None


def may_have_taken(row: Mapping[str, Any], now: datetime) -> int:
    """The cents the payment took or may still take: what it paid for sure, all it asked
    while unfinished or unknown and unsettled; nothing if refused, never sent, settled
    declined, or never taken by its node (which now refuses to start it)."""
    paid = paid_amount(row)
    if paid is not None:
        return paid
    status = status_of(row)
    if status in UNFINISHED:
        return 0 if not_taken(row, now) else int(row["amount"])
    if status == "unknown" and row["settled"] is None:
        return int(row["amount"])
    return 0


def state_of(row: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """What the till is told of a payment (docs/protocol.md, "Card payments")."""
    status, code, reason = row["status"], row["code"], row["reason"]
    if stranded(row):
        status, (code, reason) = "unknown", NODE_RETIRED
    elif not_taken(row, now or datetime.now(UTC)):
        status, (code, reason) = "unreachable", NOT_TAKEN
    return {"payment_id": row["payment_id"], "status": status, "amount": row["amount"],
            "refund": bool(row["refund"]), "terminal": row["terminal"],
            "authorised": row["authorised"], "authorisation": row["authorisation"],
            "last4": row["last4"], "card": row["card"], "application": row["application"],
            "read_mode": row["read_mode"], "code": code, "reason": reason,
            "settled": row["settled"], "settled_reference": row["settled_reference"],
            "settled_amount": row["settled_amount"]}


# --- the rules of a till's commands, each in its write ---

@dataclass(frozen=True)
class PaymentAsk:
    payment_id: str
    till: str
    cashier: str
    amount: int
    refund: bool
    basket_id: str  # the basket, or the refund's id


def _same_request(row: Mapping[str, Any], ask: PaymentAsk) -> bool:
    return (row["till"], row["basket_id"], row["amount"], bool(row["refund"])) == (
        ask.till, ask.basket_id, ask.amount, ask.refund)


def known_request(tx: Tx, ask: PaymentAsk) -> dict[str, Any] | None:
    """A resend of a payment already asked for: its state now (never dialled twice);
    `payment_id_reused` if that id was asked for something else. None if new."""
    row = payment_row(tx, ask.payment_id)
    if row is None or row["request"] == NO_REQUEST:
        return None
    if not _same_request(row, ask):
        raise EdgeError(PAYMENT_ID_REUSED,
                        f"payment {ask.payment_id} was asked for another amount or basket: "
                        "use a new payment id")
    return state_of(row)


def busy_with(tx: Tx, terminal: TerminalRef, but: str, now: datetime) -> str | None:
    """The unfinished payment the terminal is on (other than `but`), if any."""
    for row in tx.fetchall(
            "SELECT payment_id, status, requested_at FROM card_payments WHERE node = ? "
            "AND terminal = ? AND status IN ('requested', 'started') AND request != '{}' "
            "AND payment_id != ?", (terminal.node, terminal.name, but)):
        if not not_taken(row, now):
            return str(row["payment_id"])
    return None


def request_payment(tx: Tx, ask: PaymentAsk, terminal: TerminalRef, left: int | None,
                    of_what: str = "", extra: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """Journal the request (the caller checked the till and the terminal's node);
    `left`: the most it may take or give back (edge/selling/tenders.py counts it, `of_what`
    says what it is; None: a manager let a refund go without its sale); `extra`: the
    refund's `sale_id` or `approved_by`."""
    known = known_request(tx, ask)
    if known is not None:
        return known
    now = datetime.now(UTC)
    other = busy_with(tx, terminal, ask.payment_id, now)
    if other is not None:
        raise EdgeError(TERMINAL_BUSY, f"terminal {terminal.name} is busy with another "
                        "payment: wait for it to end", {"payment_id": other})
    if left is not None and ask.amount > left:
        raise EdgeError(CARD_PAYMENT_TOO_MUCH, f"{ask.amount} cents is more than the "
                        f"{max(left, 0)} cents {of_what}", {"left": max(left, 0)})
    body = {"payment_id": ask.payment_id, "till": ask.till, "cashier": ask.cashier,
            "terminal": terminal.name, "node": terminal.node, "amount": ask.amount,
            "refund": ask.refund, "basket_id": ask.basket_id, "requested_at": utc_now(),
            **(extra or {})}
    tx.append("card_payment_requested", body)
    row = payment_row(tx, ask.payment_id)
    assert row is not None
    return state_of(row, now)


def settle_payment(tx: Tx, payment_id: str, approved: bool, reference: str,
                   amount: int | None, cashier: str, till: str) -> dict[str, Any]:
    """The cashier of the payment's till read an `unknown` payment's slip: record what it
    says (once). Another till's is refused: only that till can spend it, and a stranger
    settling it would decide what the slip says for a cashier who holds it."""
    row = payment_row(tx, payment_id)
    if row is None or row["request"] == NO_REQUEST:
        raise EdgeError(UNKNOWN_PAYMENT, f"no card payment {payment_id} in this store")
    if row["till"] != till:
        raise EdgeError(CARD_PAYMENT_MISMATCH, f"card payment {payment_id} is another till's: "
                        "its own till settles it")
    settled = "approved" if approved else "declined"
    if row["settled"] is not None:
        if (row["settled"], row["settled_reference"]) == (settled, reference):
            return state_of(row)  # a resend
        raise EdgeError(PAYMENT_ALREADY_SETTLED, f"payment {payment_id} was already settled "
                        f"({row['settled']}, slip {row['settled_reference']})")
    if status_of(row) != "unknown":
        raise EdgeError(PAYMENT_NOT_UNKNOWN, f"payment {payment_id} is {row['status']}, not "
                        "unknown: only a payment whose answer was lost is settled from the slip")
    amount = row["amount"] if amount is None else amount
    if not 0 < amount <= row["amount"]:
        raise EdgeError(INVALID_FIELD, f"'amount' must be between 1 and the {row['amount']} "
                        "cents asked")
    tx.append("card_payment_settled", {"payment_id": payment_id, "approved": approved,
                                       "reference": reference, "amount": amount,
                                       "cashier": cashier})
    row = payment_row(tx, payment_id)
    assert row is not None
    return state_of(row)


# --- following a payment for the till that asked (pushes) ---

def advance(state: Mapping[str, Any], event: Event) -> dict[str, Any] | None:
    """The payment's state after `event`, if `event` changes it (pure: from the bodies)."""
    body = event.body
    if body.get("payment_id") != state["payment_id"]:
        return None
    if event.type == "card_payment_started" and (
            state["status"] == "requested" or state["code"] == NOT_TAKEN[0]):
        return {**state, "status": "started", "code": None, "reason": None}
    if event.type == "card_payment_result":
        return {**state, "status": body["status"], **{f: body.get(f) for f in RESULT_FIELDS}}
    if event.type == "card_payment_settled":
        return {**state, "settled": "approved" if body["approved"] else "declined",
                "settled_reference": body["reference"], "settled_amount": body["amount"]}
    return None


def finished(state: Mapping[str, Any]) -> bool:
    """Nothing more will happen to it: a result, and an unknown one settled."""
    if state["status"] == "unknown":
        return state["settled"] is not None
    return state["status"] in RESULTS and state["code"] != NOT_TAKEN[0]
