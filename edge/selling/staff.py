"""Cashiers, their PINs, and the lock on guessing them.

A cashier is a record in the journal: `cashier_added`, then `cashier_changed`
for a new PIN, role or name, or to disable them; any node of the store checks
a login. The PIN is kept as HMAC(pin key, PBKDF2(PIN, salt)): the pin key is
derived from the store key, which the store's nodes share and head office
never holds, so the journal alone (a stolen backup, head office's copy) does
not give a PIN away, however few digits it has. That hash lives in the body's
`secret` field, which head office never receives: the event's hash covers it
through its digest, and the sync client sends the digest in its place
(edge/journal/chain.py), so head office still checks every chain. A store
without a store key (one node, the demo) keeps its pin key in the data folder
(`pin-key`).

Records written before that (`pin_salt`, `pin_hash`: PBKDF2 alone) still log
in; `edge staff set-pin` moves a cashier to the keyed form, and `edge staff
list` says who is left. Hashing is slow on purpose and runs in a thread, off
the event loop.

Guessing is limited by `LoginThrottle`, per cashier and per till, and every
attempt is counted before its PIN is hashed (see there).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from edge.config import Config
from edge.journal.chain import Event, utc_now
from edge.journal.event_types import event_type
from edge.journal.store import Journal
from edge.messages import INVALID_PIN, TOO_MANY_ATTEMPTS, EdgeError

log = logging.getLogger(__name__)

PIN_ITERATIONS = 60_000
ROLES = ("cashier", "manager")
PIN_DIGITS = {"cashier": (4, 8), "manager": (6, 8)}  # fewest, most
PIN_KEY_FILE = "pin-key"
# Computed for an unknown cashier too, so timing does not tell who exists.
_NO_SALT = "00" * 16


# PINs and the store's pin key

@dataclass(frozen=True, slots=True)
class PinKey:
    """The key PIN hashes are made with; `id` tells which key made one (not the key)."""

    secret: bytes = field(repr=False)
    id: str


def pin_key(config: Config) -> PinKey:
    """The store's pin key: from the store key, else from the data folder's own."""
    base = config.store_key() or _local_pin_key(config.data_dir)
    secret = hmac.new(base, b"edge: cashier PINs", hashlib.sha256).digest()
    return PinKey(secret, hashlib.sha256(secret).hexdigest()[:16])


def _local_pin_key(data_dir: Path) -> bytes:
    path = data_dir / PIN_KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another process of this folder
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
        file.flush()
        os.fsync(file.fileno())
    return key


def pin_problem(pin: str, role: str) -> str | None:
    """Why `pin` cannot be this role's PIN (None: it can)."""
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}"
    fewest, most = PIN_DIGITS[role]
    if not (pin.isascii() and pin.isdigit() and fewest <= len(pin) <= most):
        return f"a {role}'s PIN is {fewest} to {most} digits"
    return None


def hash_pin(pin: str, salt: str) -> str:
    """PBKDF2 alone: the hash of records from before keyed PINs (and their check)."""
    return _stretch(pin, salt).hex()


def keyed_pin_hash(key: PinKey, pin: str, salt: str) -> str:
    return hmac.new(key.secret, _stretch(pin, salt), hashlib.sha256).hexdigest()


def _stretch(pin: str, salt: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), PIN_ITERATIONS)


def pin_secret(key: PinKey, pin: str, salt: str | None = None) -> dict[str, str]:
    """A body's `secret`: what checks the PIN, withheld from head office."""
    salt = salt or secrets.token_hex(16)
    return {"pin_salt": salt, "pin_hash": keyed_pin_hash(key, pin, salt), "pin_key": key.id}


def cashier_body(
    cashier_id: str, name: str, role: str, secret: dict[str, str] | None,
    disabled: bool = False,
) -> dict[str, Any]:
    """A cashier's whole record, as `cashier_added` and `cashier_changed` carry it."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    body: dict[str, Any] = {"id": cashier_id, "name": name, "role": role, "disabled": disabled}
    if secret is not None:
        body["secret"] = secret
    return body


def cashier_added_body(
    cashier_id: str, name: str, role: str, pin: str, key: PinKey, salt: str | None = None
) -> dict[str, Any]:
    """`salt` is random unless given (the demo store's public PINs use fixed ones)."""
    problem = pin_problem(pin, role)
    if problem:
        raise ValueError(problem)
    return cashier_body(cashier_id, name, role, pin_secret(key, pin, salt))


# The cashiers table

@dataclass(slots=True)
class CashierRecord:
    id: str
    name: str
    role: str
    # Records from before keyed PINs: PBKDF2 alone, sent to head office with the rest.
    pin_salt: str | None = None
    pin_hash: str | None = None
    # An object (salt, keyed hash, key id) on a node; its digest alone at head office.
    secret: Any = None
    disabled: bool = False


MERGE = "one cashier per id, added or changed: the latest (time, event hash) wins whole"


@event_type("cashier_added", schema=CashierRecord, merge=MERGE)
def _cashier_added(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    secret = body.get("secret")
    if isinstance(secret, dict):
        salt, digest, key_id = (str(secret.get(k, "")) for k in ("pin_salt", "pin_hash", "pin_key"))
        key_id = key_id or "?"  # keyed, by an unknown key: it checks no PIN
    elif body.get("pin_salt") is not None and body.get("pin_hash") is not None:
        salt, digest, key_id = body["pin_salt"], body["pin_hash"], ""  # from before keyed PINs
    else:
        salt, digest, key_id = "", "", "?"  # no PIN here (withheld): nobody logs in with it
    db.execute(
        """INSERT INTO cashiers (id, name, role, pin_salt, pin_hash, pin_key, disabled,
            event_time, event_hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
            pin_salt = excluded.pin_salt, pin_hash = excluded.pin_hash,
            pin_key = excluded.pin_key, disabled = excluded.disabled,
            event_time = excluded.event_time, event_hash = excluded.event_hash
        WHERE (excluded.event_time, excluded.event_hash)
            > (cashiers.event_time, cashiers.event_hash)""",
        (body["id"], body["name"], body["role"], salt, digest, key_id,
         int(bool(body.get("disabled"))), event.time, event.hash),
    )


# The same record, changed: a type of its own so the journal tells an addition from a change.
event_type("cashier_changed", schema=CashierRecord, merge=MERGE)(_cashier_added)


async def list_cashiers(journal: Journal) -> list[dict[str, str]]:
    """The cashiers a till offers to log in (not the disabled ones)."""
    rows = await journal.read_all(
        "SELECT id, name, role FROM cashiers WHERE disabled = 0 ORDER BY name")
    return [{"id": row["id"], "name": row["name"], "role": row["role"]} for row in rows]


# Locks

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

    def reserve(self, till: str, cashier: str | None) -> Attempt:
        """Count an attempt before it is checked; TOO_MANY_ATTEMPTS if it may not be made."""
        now = self.clock()
        counts = [(self._count(self._tills, till, self.till_leak, now), self.till_limit)]
        if cashier is not None:
            counts.append(
                (self._count(self._cashiers, cashier, self.cashier_leak, now), self.cashier_limit))
        for count, limit in counts:
            if count.locked_until > now or count.failures + count.pending >= limit:
                wait = max(count.locked_until - now, 1.0)
                raise EdgeError(TOO_MANY_ATTEMPTS,
                                f"too many wrong PINs: try again in {math.ceil(wait)} s")
        for count, _ in counts:
            count.pending += 1
        return Attempt(till, cashier)

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
            if count.failures >= limit:
                if now - count.locked_until > self.level_forget:
                    count.level = 0
                seconds = min(self.first_lockout * 2 ** count.level, self.max_lockout)
                count.locked_until = now + seconds
                count.level += 1
                locks.append(Lock(scope, subject, math.ceil(seconds), count.failures))
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


def _pin_matches(row: sqlite3.Row | None, key: PinKey, pin: str) -> bool:
    """In a thread: PBKDF2 whatever the row, so every attempt costs the same."""
    salt = row["pin_salt"] if row is not None and row["pin_salt"] else _NO_SALT
    try:
        stretched = _stretch(pin, salt)
    except ValueError:  # a salt that is not hex (a record made by hand)
        return False
    if row is None or row["disabled"] or not row["pin_hash"]:
        return False
    if row["pin_key"] == "":  # from before keyed PINs
        candidate = stretched.hex()
    elif row["pin_key"] == key.id:
        candidate = hmac.new(key.secret, stretched, hashlib.sha256).hexdigest()
    else:
        log.warning("cashier %s's PIN was set under another store key: set it again with "
                    "`edge staff set-pin %s`", row["id"], row["id"])
        return False
    return hmac.compare_digest(candidate, row["pin_hash"])


async def login(
    journal: Journal, throttle: LoginThrottle, key: PinKey, till: str, cashier_id: str, pin: str
) -> dict[str, str]:
    """The cashier, if `pin` is theirs; INVALID_PIN or TOO_MANY_ATTEMPTS otherwise."""
    row = await journal.read_one(
        "SELECT id, name, role, pin_salt, pin_hash, pin_key, disabled FROM cashiers "
        "WHERE id = ?", (cashier_id,))
    left = await _journaled_lock(journal, till, cashier_id)
    if left is not None:
        raise EdgeError(TOO_MANY_ATTEMPTS, f"too many wrong PINs: try again in {left} s")
    # Reserved before hashing, with no await in between since the check: see LoginThrottle.
    attempt = throttle.reserve(till, cashier_id if row is not None else None)
    matched = False
    try:
        matched = await asyncio.to_thread(_pin_matches, row, key, pin)
    finally:
        if matched:
            throttle.succeeded(attempt)
        else:
            locks = throttle.failed(attempt)
            if locks:
                await _journal_locks(journal, locks, till)
    if not matched or row is None:
        raise EdgeError(INVALID_PIN, "unknown cashier or wrong PIN")
    return {"id": row["id"], "name": row["name"], "role": row["role"]}


async def _journal_locks(journal: Journal, locks: list[Lock], till: str) -> None:
    for lock in locks:
        log.warning("login locked for %d s: %s %s, after %d wrong PINs (last on till %s)",
                    lock.seconds, lock.scope, lock.subject, lock.failures, till)
    bodies = [_lock_body(lock, till) for lock in locks]
    try:
        await journal.write(lambda tx: [tx.append("login_locked", body) for body in bodies])
    except Exception:  # the lock holds on this node all the same
        log.exception("could not journal the login lock")

