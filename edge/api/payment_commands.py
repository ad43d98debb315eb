"""The till's card payment commands: pay on the till's terminal, read a payment, settle one.

The node the till is connected to journals the request; the node that owns
the terminal dials it (edge/devices/terminals.py). `payment/card` answers at
once and then pushes the payment's state on its own command id each time it
changes, wherever the terminal is. docs/protocol.md ("Card payments")
documents each command; the rules are edge/devices/card_payments.py's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from edge.api.approvals import Approval, approved_by
from edge.api.commands import client_id, seller_of
from edge.api.websocket_api import Connection, command
from edge.devices import card_payments, store_terminals
from edge.devices.card_payments import PaymentAsk, advance, finished, state_of
from edge.journal.chain import Event
from edge.journal.store import Tx
from edge.messages import (
    INVALID_FIELD,
    MANAGER_REQUIRED,
    MISSING_REFERENCE,
    NO_TERMINAL,
    TERMINAL_UNREACHABLE,
    UNKNOWN_PAYMENT,
    EdgeError,
    event_message,
)
from edge.schema import limits
from edge.selling.baskets import require_open_basket
from edge.selling.tenders import card_left_to_give_back, card_left_to_pay

MAX_AMOUNT = 100_000_000  # cents
# Payments a till's connection follows at once (pushes): a till pays on one terminal, one
# payment at a time; resends of one payment replace its follower. Bounded, whatever a
# client resends (each follower is a journal listener).
MAX_FOLLOWED = 4


@dataclass(frozen=True)
class CardArgs:
    payment_id: str = client_id()
    amount: int = field(metadata=limits(min=1, max=MAX_AMOUNT))
    basket_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    refund_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    # A refund: the sale given back (what it took by card bounds it); without one, a
    # manager lets it (the terminal credits the card at once, before the refund is recorded).
    sale_id: str | None = field(default=None, metadata=limits(min=1, max_length=128))
    approval: Approval | None = None


WITHOUT_SALE = "giving money back to a card without the sale it refunds"


@command("payment/card", CardArgs)
async def payment_card(conn: Connection, args: CardArgs) -> dict[str, Any]:
    """Ask the till's terminal for a payment (a refund with `refund_id`); its state now,
    then a push of `{"type": "card_payment", "payment": ...}` at each change."""
    if (args.basket_id is None) == (args.refund_id is None):
        raise EdgeError(INVALID_FIELD, "give exactly one of 'basket_id' or 'refund_id'")
    if args.sale_id is not None and args.refund_id is None:
        raise EdgeError(INVALID_FIELD, "'sale_id' names the sale a refund gives back")
    seller = seller_of(conn)
    node = conn.node
    refund = args.refund_id is not None
    assert conn.cashier is not None
    manager = None  # a PIN typed is checked here; whether one is needed, in the write
    if refund and args.sale_id is None and (
            args.approval is not None or conn.cashier["role"] == "manager"):
        manager = await approved_by(conn, args.approval, WITHOUT_SALE)
    ask = PaymentAsk(args.payment_id, seller.till, seller.cashier, args.amount, refund,
                     str(args.refund_id if refund else args.basket_id))

    def work(tx: Tx) -> dict[str, Any]:
        known = card_payments.known_request(tx, ask)
        if known is not None:
            return known  # a resend: never asked (or dialled) twice
        terminal = store_terminals.terminal_for(tx, seller.till)
        if terminal is None:
            raise EdgeError(NO_TERMINAL, f"no card terminal is set up for till {seller.till}: "
                            "use the standalone terminal and type its slip")
        if not node.reaches(terminal.node):
            raise EdgeError(TERMINAL_UNREACHABLE, f"terminal {terminal.name} belongs to node "
                            f"{terminal.node}, which this node cannot reach now: nothing was "
                            "sent; use the standalone terminal and type its slip",
                            {"terminal": terminal.name, "node": terminal.node})
        if not refund:
            total = require_open_basket(tx, seller.till, ask.basket_id)["totals"]["total"]
            left = card_left_to_pay(tx, ask.basket_id, ask.payment_id, total)
            return card_payments.request_payment(
                tx, ask, terminal, left, f"left to pay by card on this basket (total {total}, "
                "its other card payments counted)")
        if args.sale_id is not None:
            left = card_left_to_give_back(tx, args.sale_id, ask.payment_id)
            return card_payments.request_payment(
                tx, ask, terminal, left, "the sale took by card and has not had back",
                {"sale_id": args.sale_id})
        if manager is None:
            raise EdgeError(MANAGER_REQUIRED, f"{WITHOUT_SALE} needs a manager's approval",
                            {"approval": "required"})
        return card_payments.request_payment(tx, ask, terminal, None,
                                             extra={"approved_by": manager})

    follow = _follow(conn, args.payment_id)
    try:
        state = await node.journal.write(work)
    except BaseException:
        follow.stop()
        raise
    follow.start(state)
    return {"payment": state}


class _Follow:
    """Pushes a payment's state on the command's id until nothing more can happen to it.

    Listening starts before the request is written, so no change is missed.
    """

    def __init__(self, conn: Connection, subscription: int, payment_id: str) -> None:
        self.conn = conn
        self.subscription = subscription
        self.state: dict[str, Any] | None = None
        self.early: list[Event] = []
        self.payment_id = payment_id
        self._stop_listening = conn.node.journal.add_listener(self._on_events)
        self._timer: asyncio.TimerHandle | None = None

    def start(self, state: dict[str, Any]) -> None:
        self.state = state
        for event in self.early:  # committed between the request and its answer
            self._apply(event)
        self.early.clear()
        if finished(self.state):
            self.stop()
            return
        followers = [stop.__self__ for stop in self.conn.subscriptions.values()
                     if isinstance(getattr(stop, "__self__", None), _Follow)]
        others = [f for f in followers if f.payment_id != self.payment_id]
        for older in [f for f in followers if f.payment_id == self.payment_id] \
                + others[:max(0, len(others) - MAX_FOLLOWED + 1)]:
            older.stop()  # a resend's newest command id is pushed to; the oldest others go
        self.conn.subscriptions[self.subscription] = self.stop
        if state["status"] == "requested":
            # Not started within 30 s: the till is told, unasked (`not_taken`).
            self._timer = asyncio.get_running_loop().call_later(
                card_payments.NOT_TAKEN_AFTER.total_seconds() + 0.5, self._not_taken)

    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            if event.type.startswith("card_payment_") \
                    and event.body.get("payment_id") == self.payment_id:
                if self.state is None:
                    self.early.append(event)
                else:
                    self._apply(event)

    def _apply(self, event: Event) -> None:
        assert self.state is not None
        changed = advance(self.state, event)
        if changed is None or changed == self.state:
            return
        self.state = changed
        self._push()
        if finished(changed):
            self.stop()

    def _not_taken(self) -> None:
        self._timer = None
        if self.state is not None and self.state["status"] == "requested":
            code, reason = card_payments.NOT_TAKEN
            self.state = {**self.state, "status": "unreachable", "code": code, "reason": reason}
            self._push()

    def _push(self) -> None:
        self.conn.send(event_message(self.subscription,
                                     {"type": "card_payment", "payment": self.state}))

    def stop(self) -> None:
        self._stop_listening()
        self._stop_listening = _nothing
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.conn.subscriptions.get(self.subscription) == self.stop:
            del self.conn.subscriptions[self.subscription]


def _nothing() -> None:
    pass


def _follow(conn: Connection, payment_id: str) -> _Follow:
    return _Follow(conn, conn.current_id, payment_id)


@dataclass(frozen=True)
class StatusArgs:
    payment_id: str = client_id()


@command("payment/card_status", StatusArgs)
async def payment_card_status(conn: Connection, args: StatusArgs) -> dict[str, Any]:
    """A payment's state now, on any node (a till that reconnected or moved mid-payment)."""
    row = await card_payments.read_payment(conn.node.journal, args.payment_id)
    if row is None or row["request"] == card_payments.NO_REQUEST:
        raise EdgeError(UNKNOWN_PAYMENT, f"no card payment {args.payment_id} in this store "
                        "(yet: its node may not have passed it on)")
    return {"payment": state_of(row)}


@dataclass(frozen=True)
class SettleArgs:
    payment_id: str = client_id()
    approved: bool
    reference: str = field(default="", metadata=limits(max_length=64))
    amount: int | None = field(default=None, metadata=limits(min=1, max=MAX_AMOUNT))


@command("payment/card_settle", SettleArgs)
async def payment_card_settle(conn: Connection, args: SettleArgs) -> dict[str, Any]:
    """An `unknown` payment settled from the terminal's slip: approved (with the slip's
    reference) or declined. Once; a resend answers the state."""
    reference = args.reference.strip()
    if args.approved and not reference:
        raise EdgeError(MISSING_REFERENCE, "an approved slip has a reference: type it")
    seller = seller_of(conn)
    state = await conn.node.journal.write(lambda tx: card_payments.settle_payment(
        tx, args.payment_id, args.approved, reference, args.amount, seller.cashier,
        seller.till))
    return {"payment": state}
