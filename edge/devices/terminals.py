"""The node's card terminals: each dials its payments one at a time, and every step is an event.

A payment is a `card_payment_requested` event (edge/devices/card_payments.py)
naming a terminal this node owns. The terminal's worker takes the oldest one
not started and, each step committed before the next:

1. claims it: `card_payment_started`, journaled BEFORE any byte goes out (or,
   for a request older than 15 s by this node's clock, result `unreachable`,
   code `stale_request`: the cashier may have moved on, so never dialled);
2. dials the terminal (edge/devices/terminal_client.py) and waits for its
   answer, up to the terminal's `timeout` (a payment with a PIN can take
   minutes);
3. `card_payment_result`: approved, declined, unreachable (the connection
   failed: nothing was sent), or unknown (the request went out and no
   trustworthy answer came back: the terminal's slip tells).

So after a crash the journal tells what can have happened: started without
a result → the terminal may have charged the card: `unknown`, recorded at the
next start, for the cashier to settle from the slip; asked and never started
→ nothing was sent: `unreachable` (`node_restarted`). Nothing is ever dialled
again on its own: a payment id is dialled at most once, ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from edge.config import TerminalConfig
from edge.devices import caisse_ap
from edge.devices.card_payments import (
    NO_REQUEST,
    NO_TERMINAL_HERE,
    NODE_RESTARTED,
    NODE_STOPPED,
    RESULTS,
    STALE,
    STALE_AFTER,
    older_than,
    payment_row,
)
from edge.devices.terminal_client import AnswerUnknown, TerminalUnreachable, run_payment
from edge.journal.chain import Event
from edge.journal.store import DiskFull, Journal, Tx

log = logging.getLogger(__name__)
T = TypeVar("T")

# A worker looks for work this often even unwoken (a request replicated in
# while a listener was not yet there); waking is what normally starts a payment.
POLL_INTERVAL = 2.0  # seconds
# Past the terminal's own timeout, the worker gives up on the client itself.
CLIENT_GRACE = 10.0  # seconds


def till_number(code: str) -> int:
    """The till's number as the terminal shows it (`CA`, two digits): T03-8dfc74 → 3."""
    match = re.match(r"[A-Za-z]*0*(\d+)", code)
    return int(match.group(1)) % 100 if match else 1


def result_of(answer: caisse_ap.TerminalAnswer) -> dict[str, Any]:
    """The `card_payment_result` fields of a terminal's answer."""
    return {"status": answer.status, "code": answer.code, "reason": answer.reason,
            "authorised": answer.authorised, "authorisation": answer.authorisation,
            "last4": answer.last4, "card": answer.card, "application": answer.application,
            "read_mode": answer.read_mode, "transaction": answer.transaction}


# --- what the worker journals, each in its write ---

# The oldest payment asked of a terminal (node, name) and not started.
NEXT_REQUEST_SQL = """SELECT payment_id, requested_at FROM card_payments WHERE node = ?
    AND terminal = ? AND status = 'requested' AND request != '{}'
    ORDER BY requested_at, payment_id LIMIT 1"""


def claim(tx: Tx, payment_id: str, now: datetime | None = None) -> sqlite3.Row | None:
    """Start the payment (journaled before any byte goes out); None if not to be dialled:
    already taken, or asked too long ago (result `unreachable`, `stale_request`)."""
    row = payment_row(tx, payment_id)
    if row is None or row["status"] != "requested" or row["request"] == NO_REQUEST:
        return None
    ids = {"payment_id": payment_id, "node": row["node"], "terminal": row["terminal"]}
    if older_than(row, STALE_AFTER, now or datetime.now(UTC)):
        code, reason = STALE
        tx.append("card_payment_result", {**ids, "status": "unreachable", "code": code,
                                           "reason": reason})
        return None
    tx.append("card_payment_started", ids)
    return row


def record_result(tx: Tx, row: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """Journal the payment's result, unless it has one already (False then)."""
    now = payment_row(tx, row["payment_id"])
    if now is None or now["status"] in RESULTS:
        return False
    tx.append("card_payment_result", {"payment_id": row["payment_id"], "node": row["node"],
                                       "terminal": row["terminal"], **result})
    return True


def recover(tx: Tx, node: str, configured: set[str], first_start: bool) -> int:
    """At start: what this node's terminals were doing when it stopped, journaled.

    Started without a result: the request may have reached the terminal and
    the answer was lost: `unknown`, read the slip. Asked and never started
    (first start only; later, the worker takes them, or finds them stale):
    `unreachable`, nothing was sent. Either on a terminal no longer configured
    here: said so. Never dialled again. Returns how many were closed.
    """
    closed = 0
    for row in tx.fetchall("SELECT * FROM card_payments WHERE node = ? AND request != '{}' "
                           "AND status IN ('requested', 'started')", (node,)):
        if row["status"] == "started":
            (code, reason), status = NODE_STOPPED, "unknown"
        elif row["terminal"] not in configured:
            (code, reason), status = NO_TERMINAL_HERE, "unreachable"
        elif first_start:
            (code, reason), status = NODE_RESTARTED, "unreachable"
        else:
            continue
        closed += record_result(tx, row, {"status": status, "code": code, "reason": reason})
    return closed



class TerminalWorker:
    """One terminal: the loop dialling its payments, and what store IT sees of it."""

    def __init__(self, config: TerminalConfig, owner: Terminals) -> None:
        self.config = config
        self.name = config.name
        self.owner = owner
        self.journal = owner.journal
        self.wake = asyncio.Event()
        self.current: str | None = None  # the payment being dialled
        self.last: dict[str, Any] | None = None  # the last payment: id, status, when

    def status_json(self) -> dict[str, Any]:
        """What /healthz shows, to anyone on the shop's network: never the terminal's
        address (a Caisse-AP terminal obeys whoever reaches its port: a refund sent from
        the Wi-Fi credits the sender's card) nor its tills. `edge devices` and `edge
        status` show those to store IT, on the node itself."""
        return {"name": self.name, "busy": self.current is not None,
                "last_payment": self.last}

    async def run(self) -> None:
        row = await self.journal.read_one(
            "SELECT status, requested_at FROM card_payments WHERE node = ? "
            "AND terminal = ? AND request != '{}' ORDER BY requested_at DESC LIMIT 1",
            (self.journal.origin, self.name))
        if row is not None:
            self._remember(row["status"], row["requested_at"])
        while True:
            self.wake.clear()
            try:
                found = await self.journal.read_one(NEXT_REQUEST_SQL,
                                                    (self.journal.origin, self.name))
                if found is not None:
                    await self._take(found["payment_id"], found["requested_at"])
                    continue
            except DiskFull:
                pass  # nothing was started; tried again once there may be room
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.owner.poll_interval):
                    await self.wake.wait()

    def _remember(self, status: str, at: str) -> None:
        self.last = {"status": status, "requested_at": at}

    async def _take(self, payment_id: str, requested_at: str) -> None:
        claimed = await self.journal.write(lambda tx: claim(tx, payment_id))
        if claimed is None:  # stale (result journaled), or taken meanwhile
            self._remember("unreachable", requested_at)
            return
        self.current = payment_id
        self._remember("started", requested_at)
        try:
            result = await self._dial(claimed["till"], claimed["amount"], bool(claimed["refund"]))
        except asyncio.CancelledError:
            # The node is stopping mid-payment: the terminal may charge the card all
            # the same, and its answer will reach nobody. Say so now.
            code, reason = NODE_STOPPED
            await self._record(lambda tx: record_result(
                tx, claimed, {"status": "unknown", "code": code, "reason": reason}))
            raise
        finally:
            self.current = None
        await self._record(lambda tx: record_result(tx, claimed, result))
        self._remember(result["status"], requested_at)
        log.info("terminal %s: payment %s %s (%s)", self.name, payment_id, result["status"],
                 result.get("code") or "-")

    async def _dial(self, till: str, amount: int, refund: bool) -> dict[str, Any]:
        """One payment on the terminal: its answer, or why there is none, as a result."""
        config = self.config
        where = f"{config.host}:{config.port}"
        try:
            request = caisse_ap.payment_request(till_number=till_number(till), amount=amount,
                                                refund=refund)
        except ValueError as error:  # nothing sent
            return {"status": "unreachable", "code": "bad_request", "reason": str(error)}
        try:
            async with asyncio.timeout(config.connect_timeout + config.timeout + CLIENT_GRACE):
                answer = await run_payment(config.host, config.port, request,
                                           connect_timeout=config.connect_timeout,
                                           overall_timeout=config.timeout)
            return result_of(caisse_ap.read_answer(request, answer))
        except TerminalUnreachable as error:
            return {"status": "unreachable", "code": getattr(error, "code", None)
                    or "connection_failed",
                    "reason": f"the terminal at {where} could not be reached ({error}): "
                              "nothing was sent, nothing was charged"}
        except AnswerUnknown as error:
            return {"status": "unknown", "code": getattr(error, "code", None) or "no_answer",
                    "reason": f"no usable answer from the terminal ({error}): read its slip"}
        except TimeoutError:
            return {"status": "unknown", "code": "no_answer",
                    "reason": "the terminal did not finish in time: read its slip"}
        except Exception as error:
            # A bug here must not pass for a refusal: the request may have gone out.
            log.exception("terminal %s: unexpected error during a payment", self.name)
            return {"status": "unknown", "code": "internal_error",
                    "reason": f"the node failed during the payment ({type(error).__name__}): "
                              "read the terminal's slip"}

    async def _record(self, work: Callable[[Tx], T]) -> T:
        """Write what the terminal did; with the disk full, wait for room and write it then."""
        return await self.journal.write_when_there_is_room(
            work, f"terminal {self.name}: the disk is full; the payment's result is recorded "
                  "once there is room")


class Terminals:
    """Every terminal of this node, each with its worker."""

    def __init__(self, journal: Journal, terminals: tuple[TerminalConfig, ...],
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.workers = {config.name: TerminalWorker(config, self) for config in terminals}
        self._unconfigured = asyncio.Event()  # a request for a terminal not configured here
        self._runs = 0

    def statuses(self) -> list[dict[str, Any]]:
        return [worker.status_json() for worker in self.workers.values()]

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if (event.type == "card_payment_requested"
                    and event.body["node"] == self.journal.origin):
                worker = self.workers.get(event.body["terminal"])
                if worker is not None:
                    worker.wake.set()
                else:
                    self._unconfigured.set()

    async def run(self) -> None:
        # What the terminals were doing when the node (or this task) stopped. Requests
        # never started are closed at the node's start only: after a restart of this
        # task alone, the workers take them (or find them stale).
        self._runs += 1
        first = self._runs == 1
        closed = await self.journal.write(
            lambda tx: recover(tx, self.journal.origin, set(self.workers), first))
        if closed:
            log.warning("%d card payment(s) were under way when the node stopped: recorded "
                        "(unknown ones are settled from the terminal's slip)", closed)
        async with asyncio.TaskGroup() as group:
            for worker in self.workers.values():
                group.create_task(worker.run(), name=f"terminal-{worker.name}")
            group.create_task(self._refuse_unconfigured(), name="terminals-unconfigured")

    async def _refuse_unconfigured(self) -> None:
        """Requests naming a terminal this node does not have: said so, never kept waiting."""
        code, reason = NO_TERMINAL_HERE
        while True:
            await self._unconfigured.wait()
            self._unconfigured.clear()

            def work(tx: Tx) -> None:
                for row in tx.fetchall(
                        "SELECT * FROM card_payments WHERE node = ? AND status = 'requested' "
                        "AND request != '{}'", (self.journal.origin,)):
                    if row["terminal"] not in self.workers:
                        record_result(tx, row, {"status": "unreachable", "code": code,
                                                "reason": reason})

            await self.journal.write(work)
