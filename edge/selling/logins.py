"""Logging in: a cashier's PIN checked, and the lock on guessing it.

Guessing is limited by `LoginThrottle`, per cashier and per till, and every
attempt is counted before its PIN is hashed (see there). A lock is an event
(`login_locked`), so it holds on every node of the store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from edge.journal.chain import Event, utc_now
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import INVALID_PIN, MANAGER_REQUIRED, TOO_MANY_ATTEMPTS, EdgeError
from edge.selling.staff import PinKey, pin_matches

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoginLocked:
    scope: Literal["cashier", "till"]
    subject: str  # the cashier's id or the till's code
    until: str  # UTC, as event times are
    seconds: int
    failures: int
    till: str  # where the last wrong PIN was typed


@event_type("login_locked", schema=LoginLocked,
            merge="one lock per cashier or till: the latest end (`until`) holds")
def _login_locked(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT INTO login_locks (scope, subject, until) VALUES (?, ?, ?)
        ON CONFLICT (scope, subject) DO UPDATE SET until = MAX(until, excluded.until)""",
        (body["scope"], body["subject"], body["until"]),
    )


@dataclass(slots=True)
class LoginAttempt:
    cashier: str
    till: str


@event_type("login_failed", schema=LoginAttempt,
            merge="one row per event: every node counts every node's wrong PINs")
def _login_failed(db: sqlite3.Connection, event: Event) -> None:
    db.execute("INSERT OR IGNORE INTO login_failures (event_hash, origin, cashier, till, time) "
               "VALUES (?, ?, ?, ?, ?)", (event.hash, event.origin, event.body["cashier"],
                                         event.body["till"], event.time))


@event_type("cashier_logged_in", schema=LoginAttempt,
            merge="a cashier's latest login (time) holds: wrong PINs before it are forgiven")
def _cashier_logged_in(db: sqlite3.Connection, event: Event) -> None:
    db.execute("""INSERT INTO last_logins (cashier, time) VALUES (?, ?)
        ON CONFLICT (cashier) DO UPDATE SET time = MAX(time, excluded.time)""",
               (event.body["cashier"], event.time))


@dataclass(slots=True)
class _Count:
    """Wrong PINs for one cashier or one till, and the lock they earned."""

    failures: int = 0  # leaks away with time: one every `*_leak` seconds
    pending: int = 0  # attempts being hashed now: counted as failures until they are not
    level: int = 0  # locks in a row: each one lasts twice as long as the one before
    locked_until: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class Attempt:
    till: str
    cashier: str | None  # None: no such cashier (only the till counts it)
    elsewhere: int = 0  # the cashier's wrong PINs other nodes saw lately


@dataclass(frozen=True, slots=True)
class Lock:
    scope: Literal["cashier", "till"]
    subject: str
    seconds: int
    failures: int


@dataclass
class LoginThrottle:
    """Wrong PINs, counted per cashier (on any till) and per till (for any cashier).

    - An attempt is reserved (`reserve`) before its PIN is hashed, in the
      same step as the check, so a burst of parallel logins cannot all slip
      through one window: while `limit` attempts are failed or in flight,
      the next is refused without hashing.
    - `cashier_limit` wrong PINs for one cashier lock that cashier (on every
      till); `till_limit` wrong PINs on one till, whoever for, lock the till.
      Each lock lasts twice as long as the one before, from `first_lockout`
      up to `max_lockout`; `level_forget` seconds without a lock start again
      from `first_lockout`.
    - A cashier's count is cleared only by that cashier's own correct PIN (a
      cashier who knows her PIN cannot reset the manager's count by logging
      in between guesses); it otherwise leaks one failure per
      `cashier_leak` seconds. A till's count only leaks (one per
      `till_leak` seconds): a correct PIN takes back its own attempt, never
      earlier failures.
    - Counts are this node's; a lock is journaled (`login_locked`), so every
      node of the store holds it too.
    """

    cashier_limit: int = 5
    till_limit: int = 10
    first_lockout: float = 30.0
    max_lockout: float = 900.0
    level_forget: float = 3600.0
    cashier_leak: float = 3600.0
    till_leak: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _cashiers: dict[str, _Count] = field(default_factory=dict)
    _tills: dict[str, _Count] = field(default_factory=dict)

    def reserve(self, till: str, cashier: str | None, elsewhere: int = 0) -> Attempt:
        """Count an attempt before it is checked; TOO_MANY_ATTEMPTS if it may not be made.

        `elsewhere`: the cashier's wrong PINs other nodes of the store saw
        lately (journaled): they count against the cashier here too.
        """
        now = self.clock()
        counts = [(self._count(self._tills, till, self.till_leak, now), self.till_limit, 0)]
        if cashier is not None:
            counts.append((self._count(self._cashiers, cashier, self.cashier_leak, now),
                           self.cashier_limit, elsewhere))
        for count, limit, others in counts:
            if count.locked_until > now or count.failures + count.pending + others >= limit:
                wait = max(count.locked_until - now, 1.0)
                raise EdgeError(TOO_MANY_ATTEMPTS,
                                f"too many wrong PINs: try again in {math.ceil(wait)} s")
        for count, _, _ in counts:
            count.pending += 1
        return Attempt(till, cashier, elsewhere)

    def succeeded(self, attempt: Attempt) -> None:
        """The PIN was right: the cashier's own count is cleared, the till's attempt taken back."""
        self._tills[attempt.till].pending -= 1
        if attempt.cashier is not None:
            count = self._cashiers[attempt.cashier]
            count.pending -= 1
            count.failures, count.level = 0, 0

    def failed(self, attempt: Attempt) -> list[Lock]:
        """The PIN was wrong (or the check never finished): the locks it brought about."""
        now = self.clock()
        locks = []
        subjects: list[tuple[Literal["cashier", "till"], str, dict[str, _Count], float, int]] = [
            ("till", attempt.till, self._tills, self.till_leak, self.till_limit)]
        if attempt.cashier is not None:
            subjects.append(("cashier", attempt.cashier, self._cashiers, self.cashier_leak,
                             self.cashier_limit))
        for scope, subject, counts, leak, limit in subjects:
            count = self._count(counts, subject, leak, now)
            count.pending -= 1
            count.failures += 1
            others = attempt.elsewhere if scope == "cashier" else 0
            if count.failures + others >= limit:
                if now - count.locked_until > self.level_forget:
                    count.level = 0
                seconds = min(self.first_lockout * 2 ** count.level, self.max_lockout)
                count.locked_until = now + seconds
                count.level += 1
                locks.append(Lock(scope, subject, math.ceil(seconds), count.failures + others))
                count.failures = 0
        return locks

    @staticmethod
    def _count(counts: dict[str, _Count], key: str, leak: float, now: float) -> _Count:
        count = counts.get(key)
        if count is None:
            count = counts[key] = _Count(updated=now)
        leaked = int((now - count.updated) // leak)  # whole failures: a count is a count
        if leaked:
            count.failures = max(0, count.failures - leaked)
            count.updated += leaked * leak
        if not count.failures:
            count.updated = now
        return count


def _lock_body(lock: Lock, till: str) -> dict[str, Any]:
    until = datetime.now(UTC) + timedelta(seconds=lock.seconds)
    return {"scope": lock.scope, "subject": lock.subject, "seconds": lock.seconds,
            "failures": lock.failures, "till": till,
            "until": until.isoformat(timespec="milliseconds").replace("+00:00", "Z")}


async def _journaled_lock(journal: Journal, till: str, cashier_id: str) -> int | None:
    """Seconds left of a lock of this cashier or till, from any node of the store."""
    row = await journal.read_one(
        "SELECT MAX(until) AS until FROM login_locks WHERE (scope = 'cashier' AND subject = ?) "
        "OR (scope = 'till' AND subject = ?)", (cashier_id, till))
    if row is None or row["until"] is None or row["until"] <= utc_now():
        return None
    until = datetime.fromisoformat(row["until"].replace("Z", "+00:00"))
    return max(1, math.ceil((until - datetime.now(UTC)).total_seconds()))


async def login(
    journal: Journal, throttle: LoginThrottle, key: PinKey, till: str, cashier_id: str, pin: str
) -> dict[str, str]:
    """The cashier, if `pin` is theirs; INVALID_PIN or TOO_MANY_ATTEMPTS otherwise."""
    cashier = await check_pin(journal, throttle, key, till, cashier_id, pin)
    await _journal_login(journal, cashier["id"], till)
    return cashier


async def approve_as_manager(
    journal: Journal, throttle: LoginThrottle, key: PinKey, till: str, manager_id: str, pin: str
) -> dict[str, str]:
    """The manager who approves something on the spot, on the till where it happens.

    The PIN is checked as a login's, against the same counters and locks, so
    an approval prompt is no way around the lockout; MANAGER_REQUIRED if the
    PIN is right but not a manager's. Nobody logs in: the event approved
    records `approved_by`.
    """
    cashier = await check_pin(journal, throttle, key, till, manager_id, pin)
    if cashier["role"] != "manager":
        raise EdgeError(MANAGER_REQUIRED, f"{cashier['name']} is not a manager")
    return cashier


async def check_pin(
    journal: Journal, throttle: LoginThrottle, key: PinKey, till: str, cashier_id: str, pin: str
) -> dict[str, str]:
    """The cashier, if `pin` is theirs (wrong PINs counted store-wide); else an EdgeError."""
    row = await journal.read_one(
        "SELECT id, name, role, pin_salt, pin_hash, pin_key, disabled FROM cashiers "
        "WHERE id = ?", (cashier_id,))
    left = await _journaled_lock(journal, till, cashier_id)
    if left is not None:
        raise EdgeError(TOO_MANY_ATTEMPTS, f"too many wrong PINs: try again in {left} s")
    elsewhere = await _wrong_pins_elsewhere(journal, cashier_id, throttle.cashier_leak) \
        if row is not None else 0
    # Reserved before hashing, with no await in between since the check: see LoginThrottle.
    attempt = throttle.reserve(till, cashier_id if row is not None else None, elsewhere)
    matched = False
    try:
        matched = await asyncio.to_thread(pin_matches, row, key, pin)
    finally:
        if matched:
            throttle.succeeded(attempt)
        else:
            locks = throttle.failed(attempt)
            await _journal_failure(journal, locks, till, cashier_id if row is not None else None)
    if not matched or row is None:
        raise EdgeError(INVALID_PIN, "unknown cashier or wrong PIN")
    return {"id": row["id"], "name": row["name"], "role": row["role"]}


async def _wrong_pins_elsewhere(journal: Journal, cashier_id: str, within: float) -> int:
    """The cashier's wrong PINs other nodes saw within `within` seconds and since the
    cashier last logged in (on any node)."""
    since = (datetime.now(UTC) - timedelta(seconds=within)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    row = await journal.read_one(
        """SELECT COUNT(*) AS n FROM login_failures WHERE cashier = ? AND origin != ?
        AND time > ? AND time > COALESCE((SELECT time FROM last_logins WHERE cashier = ?), '')""",
        (cashier_id, journal.origin, since, cashier_id))
    return row["n"] if row else 0


async def _journal_failure(journal: Journal, locks: list[Lock], till: str,
                           cashier_id: str | None) -> None:
    """A wrong PIN for a known cashier, and any lock it earned, for every node to count."""
    for lock in locks:
        log.warning("login locked for %d s: %s %s, after %d wrong PINs (last on till %s)",
                    lock.seconds, lock.scope, lock.subject, lock.failures, till)
    bodies = [_lock_body(lock, till) for lock in locks]
    if cashier_id is None and not bodies:
        return

    def work(tx: Tx) -> None:
        if cashier_id is not None:
            tx.append("login_failed", {"cashier": cashier_id, "till": till})
        for body in bodies:
            tx.append("login_locked", body)

    await _journal(journal, work)


async def _journal_login(journal: Journal, cashier_id: str, till: str) -> None:
    await _journal(journal, lambda tx: tx.append("cashier_logged_in",
                                                 {"cashier": cashier_id, "till": till}))


async def _journal(journal: Journal, work: Callable[[Tx], Any]) -> None:
    try:
        await journal.write(work)
    except Exception:  # the count and any lock hold on this node all the same
        log.exception("could not journal a login's outcome")
