"""Shifts (cash sessions): a till's drawer from its counted float to its counted close.

A shift opens with the float the cashier counted into the drawer
(`shift_opened`), takes cash paid in or out with a reason (`cash_moved`:
+ in, - out), and closes with what the cashier counted per tender
(`shift_closed`: counted, expected and their difference, per tender). What is
expected is read from the journal: the float, the moves, and the tenders of
the shift's sales and refunds, each sale once (edge/fiscal/totals.py, which
leaves training sales out: their money is pretend).

A shift belongs to one business day (edge/fiscal/periods.py, the store's
cut-off hour): it ends with it (`ends_at`, fixed when it opens), so no shift
outlives the day its closure counts. Once it has ended the till sells no more
in it (when shifts are required), takes no cash move, and can only be closed.
The till warns `WARN_BEFORE` ahead.

With `fiscal.shifts` on, a till sells only within an open shift of the day
(`sale_marks`, called in the sale's own transaction); off (the default), a
store sells as before, and a shift a till opens anyway still has its sales
marked and counted. A sale of an open shift carries its `shift_id`; one
without (an offline sale, a till of before) counts in the till's shift whose
time it falls in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from edge.fiscal import periods, training
from edge.fiscal.totals import add, is_training, tenders_of, totals_of
from edge.journal.chain import Event, utc_now
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import (
    INVALID_FIELD,
    NO_SHIFT,
    SHIFT_ENDED,
    SHIFT_OPEN,
    EdgeError,
)

WARN_BEFORE = timedelta(minutes=15)
CASH = "cash"
# What a close may count: the tender keys of edge/fiscal/totals.py `tender_key`.
COUNTABLE = ("cash", "card", "meal_voucher/paper", "meal_voucher/card", "cheque",
             "gift_voucher")


def shift_id_for(till: str, shift_id: str) -> str:
    """The id of shift `shift_id` (made up by the till) of `till`: a retry, through any
    node, is the same shift."""
    return f"{shift_id}@{till}"


@dataclass(frozen=True)
class Day:
    """The business day a moment falls in, and when it ends (UTC event times)."""

    label: str  # 2026-11-30
    ends_at: str
    warn_at: str


def day_of(moment: str, cutoff: int) -> Day:
    """The business day holding the event time `moment`, with the store's cut-off hour."""
    when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    day = periods.business_day(when, cutoff=cutoff)
    _, end = periods.business_day_bounds(day, cutoff=cutoff)
    warn = datetime.fromisoformat(end.replace("Z", "+00:00")) - WARN_BEFORE
    return Day(day.isoformat(), end, periods.event_time(warn))


# --- reading ------------------------------------------------------------------------------

def _shift_json(row: sqlite3.Row | Mapping[str, Any]) -> dict[str, Any]:
    shift = {key: row[key] for key in ("shift_id", "till", "cashier", "float", "business_day",
                                       "ends_at", "opened_at", "closed_at")}
    shift["close"] = orjson.loads(row["close_body"]) if row["close_body"] else None
    return shift


def open_shift(tx: Tx, till: str) -> dict[str, Any] | None:
    """The till's open shift as known here: the latest opened and not closed."""
    row = tx.fetchone("SELECT * FROM shifts WHERE till = ? AND opened_at != '' "
                      "AND closed_at IS NULL ORDER BY opened_at DESC, open_event LIMIT 1",
                      (till,))
    return _shift_json(row) if row else None


def _shift(tx: Tx, shift_id: str) -> dict[str, Any] | None:
    row = tx.fetchone("SELECT * FROM shifts WHERE shift_id = ? AND opened_at != ''",
                      (shift_id,))
    return _shift_json(row) if row else None


def _shift_sales(db: sqlite3.Connection, shift: Mapping[str, Any],
                 until: str) -> list[dict[str, Any]]:
    """The sales and refunds the shift holds, each once (the `sales` table's copy): marked
    with its id, or (made offline, unmarked) of its till within its time."""
    rows = db.execute(
        """SELECT body FROM sales WHERE till = ?
        AND (json_extract(body, '$.shift_id') = ? OR (json_extract(body, '$.shift_id') IS NULL
             AND COALESCE(json_extract(body, '$.till_time'), time) >= ?
             AND COALESCE(json_extract(body, '$.till_time'), time) < ?))""",
        (shift["till"], shift["shift_id"], shift["opened_at"], until)).fetchall()
    return [orjson.loads(body) for (body,) in rows]


def _moves(db: sqlite3.Connection, shift_id: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT move_id, amount, reason, cashier, time FROM cash_moves "
                      "WHERE shift_id = ? ORDER BY time, move_id", (shift_id,)).fetchall()
    return [dict(zip(("move_id", "amount", "reason", "cashier", "time"), row, strict=True))
            for row in rows]


def x_report(db: sqlite3.Connection, shift: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The shift's figures now (an X report): its sales and refunds' totals, its cash
    moves, and what the drawer should hold per tender."""
    until = shift["closed_at"] or now
    counted = [body for body in _shift_sales(db, shift, until) if not is_training(body)]
    totals = totals_of(counted)
    moves = _moves(db, shift["shift_id"])
    expected: dict[str, int] = {CASH: shift["float"]}
    for body in counted:
        expected = add(expected, tenders_of(body))
    expected[CASH] += sum(move["amount"] for move in moves)
    return {"shift": dict(shift), "totals": totals, "moves": moves, "expected": expected,
            "at": until}


# --- writing ------------------------------------------------------------------------------

def _require_usable(shift: dict[str, Any] | None, now: str) -> dict[str, Any]:
    if shift is None:
        raise EdgeError(NO_SHIFT, "no shift is open on this till: open one, counting the "
                        "float in the drawer")
    if shift["ends_at"] <= now:
        raise EdgeError(SHIFT_ENDED, f"the shift of {shift['business_day']} ended with its "
                        "business day: close it (count the drawer), then open today's",
                        {"shift_id": shift["shift_id"], "ended_at": shift["ends_at"]})
    return shift


async def open_new(journal: Journal, till: str, cashier: str, shift_id: str, float_: int,
                   cutoff: int) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        qualified = shift_id_for(till, shift_id)
        done = _shift(tx, qualified)
        if done is not None:
            return done
        current = open_shift(tx, till)
        if current is not None:
            raise EdgeError(SHIFT_OPEN, f"a shift is open on this till since "
                            f"{current['opened_at']} ({current['cashier']}): close it first",
                            {"shift_id": current["shift_id"]})
        now = utc_now()
        day = day_of(now, cutoff)
        body = {"shift_id": qualified, "till": till, "cashier": cashier, "float": float_,
                "business_day": day.label, "ends_at": day.ends_at}
        tx.append("shift_opened", body)
        shift = _shift(tx, qualified)
        assert shift is not None
        return shift

    return await journal.write(work)


async def move_cash(journal: Journal, till: str, cashier: str, move_id: str, amount: int,
                    reason: str) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        qualified = f"{move_id}@{till}"
        done = tx.fetchone("SELECT shift_id, amount, reason, time FROM cash_moves "
                           "WHERE move_id = ?", (qualified,))
        if done is not None:
            return {"move_id": qualified, **dict(done)}
        shift = _require_usable(open_shift(tx, till), utc_now())
        event = tx.append("cash_moved", {"move_id": qualified, "shift_id": shift["shift_id"],
                                         "till": till, "cashier": cashier, "amount": amount,
                                         "reason": reason})
        return {"move_id": qualified, "shift_id": shift["shift_id"], "amount": amount,
                "reason": reason, "time": event.time}

    return await journal.write(work)


def checked_counts(counted: Any) -> dict[str, int]:
    """The counts a close gives: tender key -> cents; INVALID_FIELD in words otherwise."""
    if not isinstance(counted, Mapping) or not counted:
        raise EdgeError(INVALID_FIELD, "'counted' must name each tender counted, in cents, "
                        "like {\"cash\": 15230, \"card\": 48000}", {"field": "counted"})
    for key, cents in counted.items():
        if key not in COUNTABLE:
            raise EdgeError(INVALID_FIELD, f"'counted' names {key!r}: count one of "
                            f"{', '.join(COUNTABLE)}", {"field": "counted"})
        if type(cents) is not int or not 0 <= cents <= 100_000_000:
            raise EdgeError(INVALID_FIELD, f"'counted.{key}' must be whole cents, 0 or more",
                            {"field": "counted"})
    return dict(counted)


async def close(journal: Journal, till: str, cashier: str, counted: Mapping[str, int],
                shift_id: str | None = None) -> dict[str, Any]:
    """Close the till's open shift (an ended one too) with the cashier's counts: every
    tender it expects must be counted. The report at close is the reply."""

    def work(tx: Tx) -> dict[str, Any]:
        if shift_id is not None:
            known = _shift(tx, shift_id)
            if known is None or known["till"] != till:
                raise EdgeError(NO_SHIFT, f"no shift {shift_id} of till {till} on this node")
            if known["closed_at"] is not None:
                return _closed_reply(tx, known)  # a retry: closed already
        shift = open_shift(tx, till)
        if shift is None or (shift_id is not None and shift["shift_id"] != shift_id):
            raise EdgeError(NO_SHIFT, "no shift is open on this till" if shift is None else
                            f"shift {shift_id} is not the one open on this till")
        report = x_report(tx.db, shift, utc_now())
        expected = report["expected"]
        missing = sorted(key for key, cents in expected.items()
                         if key not in counted and (cents or key == CASH))
        if missing:
            raise EdgeError(INVALID_FIELD, f"count every tender of the shift: "
                            f"{', '.join(missing)} missing", {"field": "counted",
                                                             "missing": missing})
        keys = sorted({*expected, *counted})
        difference = {key: counted.get(key, 0) - expected.get(key, 0) for key in keys}
        tx.append("shift_closed", {
            "shift_id": shift["shift_id"], "till": till, "cashier": cashier,
            "counted": dict(counted), "expected": expected, "difference": difference,
            "sales": report["totals"]["sales"]["count"],
            "refunds": report["totals"]["refunds"]["count"],
            "net": report["totals"]["net"]["total"]})
        closed = _shift(tx, shift["shift_id"])
        assert closed is not None
        return _closed_reply(tx, closed)

    return await journal.write(work)


def _closed_reply(tx: Tx, shift: dict[str, Any]) -> dict[str, Any]:
    return {**x_report(tx.db, shift, shift["closed_at"]), "close": shift["close"]}


async def current(journal: Journal, till: str) -> dict[str, Any] | None:
    return await journal.write(lambda tx: open_shift(tx, till))


async def report(journal: Journal, till: str, shift_id: str | None = None,
                 any_till: bool = False) -> dict[str, Any]:
    """The X report of the till's open shift (or of `shift_id`, open or closed: this
    till's, or any till's for a manager, `any_till`: the cash a drawer should hold is
    not every cashier's to read)."""

    def read(tx: Tx) -> dict[str, Any]:
        shift = _shift(tx, shift_id) if shift_id else open_shift(tx, till)
        if shift is not None and not any_till and shift["till"] != till:
            shift = None
        if shift is None:
            raise EdgeError(NO_SHIFT, "no shift is open on this till" if shift_id is None
                            else f"no shift {shift_id} on this node")
        return x_report(tx.db, shift, utc_now())

    return await journal.write(read)


def sale_marks(shifts_required: bool) -> Callable[[Tx, str], dict[str, Any]]:
    """What a sale or refund of `till` carries, decided in its own transaction: `training`
    on a till in training mode (needing no shift), else its open shift's id; with shifts
    required, NO_SHIFT or SHIFT_ENDED refuse it."""

    def marks(tx: Tx, till: str) -> dict[str, Any]:
        if training.in_training(tx.db, till):
            return {"training": True}
        shift = open_shift(tx, till)
        now = utc_now()
        if shifts_required:
            return {"shift_id": _require_usable(shift, now)["shift_id"]}
        if shift is not None and shift["ends_at"] > now:
            return {"shift_id": shift["shift_id"]}
        return {}

    return marks


# --- events and projections ---------------------------------------------------------------

@dataclass(slots=True)
class ShiftOpened:
    shift_id: str
    till: str
    cashier: str
    float: int
    business_day: str
    ends_at: str


@dataclass(slots=True)
class CashMoved:
    move_id: str
    shift_id: str
    till: str
    cashier: str
    amount: int
    reason: str


@dataclass(slots=True)
class ShiftClosed:
    shift_id: str
    till: str
    cashier: str
    counted: dict[str, Any]
    expected: dict[str, Any]
    difference: dict[str, Any]
    sales: int = 0
    refunds: int = 0
    net: int = 0


@event_type("shift_opened", schema=ShiftOpened,
            merge="one shift per id (the till's, qualified by it): the smaller event hash "
                  "wins its opening; its close is shift_closed's, whichever comes first")
def _shift_opened(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT INTO shifts (shift_id, till, cashier, float, business_day, ends_at,
            opened_at, open_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (shift_id) DO UPDATE SET till = excluded.till, cashier = excluded.cashier,
            float = excluded.float, business_day = excluded.business_day,
            ends_at = excluded.ends_at, opened_at = excluded.opened_at,
            open_event = excluded.open_event
        WHERE shifts.open_event = '' OR excluded.open_event < shifts.open_event""",
        (body["shift_id"], body["till"], body["cashier"], body["float"], body["business_day"],
         body["ends_at"], event.time, event.hash))


@event_type("cash_moved", schema=CashMoved,
            merge="one move per id (the till's, qualified by it): the smaller event hash wins")
def _cash_moved(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT INTO cash_moves (move_id, shift_id, till, cashier, amount, reason, time,
            event_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (move_id) DO UPDATE SET shift_id = excluded.shift_id,
            till = excluded.till, cashier = excluded.cashier, amount = excluded.amount,
            reason = excluded.reason, time = excluded.time, event_hash = excluded.event_hash
        WHERE excluded.event_hash < cash_moves.event_hash""",
        (body["move_id"], body["shift_id"], body["till"], body["cashier"], body["amount"],
         body["reason"], event.time, event.hash))


@event_type("shift_closed", schema=ShiftClosed,
            merge="one close per shift: the smaller event hash wins (two nodes cut apart "
                  "each closing it keep both events); a row made by whichever of the "
                  "shift's events comes first")
def _shift_closed(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        """INSERT INTO shifts (shift_id, closed_at, close_body, close_event)
        VALUES (?, ?, ?, ?)
        ON CONFLICT (shift_id) DO UPDATE SET closed_at = excluded.closed_at,
            close_body = excluded.close_body, close_event = excluded.close_event
        WHERE shifts.close_event = '' OR excluded.close_event < shifts.close_event""",
        (event.body["shift_id"], event.time, orjson.dumps(event.body).decode(), event.hash))
