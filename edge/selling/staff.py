"""Cashiers and their PINs.

PINs are stored as salted PBKDF2 hashes in `cashier_added` events, so any node
of the store can check a login. Hashing is slow on purpose and runs in a
thread, off the event loop. Wrong PINs are throttled per till.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal
from edge.messages import INVALID_PIN, TOO_MANY_ATTEMPTS, EdgeError

PIN_ITERATIONS = 60_000
ROLES = ("cashier", "manager")


def hash_pin(pin: str, salt: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), PIN_ITERATIONS)
    return digest.hex()


def cashier_added_body(
    cashier_id: str, name: str, role: str, pin: str, salt: str | None = None
) -> dict[str, Any]:
    """`salt` is random unless given (the demo store's public PINs use fixed ones)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise ValueError("a PIN is 4 to 8 digits")
    salt = salt or secrets.token_hex(16)
    return {
        "id": cashier_id,
        "name": name,
        "role": role,
        "pin_salt": salt,
        "pin_hash": hash_pin(pin, salt),
    }


@dataclass(slots=True)
class CashierAdded:
    id: str
    name: str
    role: str
    pin_salt: str
    pin_hash: str


@event_type("cashier_added", schema=CashierAdded,
            merge="one cashier per id: the latest (time, event hash) wins")
def _cashier_added(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT INTO cashiers (id, name, role, pin_salt, pin_hash, event_time, event_hash)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
            pin_salt = excluded.pin_salt, pin_hash = excluded.pin_hash,
            event_time = excluded.event_time, event_hash = excluded.event_hash
        WHERE (excluded.event_time, excluded.event_hash)
            > (cashiers.event_time, cashiers.event_hash)""",
        (body["id"], body["name"], body["role"], body["pin_salt"], body["pin_hash"],
         event.time, event.hash),
    )


async def list_cashiers(journal: Journal) -> list[dict[str, str]]:
    rows = await journal.read_all("SELECT id, name, role FROM cashiers ORDER BY name")
    return [{"id": row["id"], "name": row["name"], "role": row["role"]} for row in rows]


@dataclass
class LoginThrottle:
    """After `limit` wrong PINs in a row on a till, refuse logins for `lockout` seconds."""

    limit: int = 5
    lockout: float = 30.0
    _failures: dict[str, int] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def check(self, till: str) -> None:
        remaining = self._locked_until.get(till, 0.0) - time.monotonic()
        if remaining > 0:
            raise EdgeError(
                TOO_MANY_ATTEMPTS, f"too many wrong PINs: try again in {int(remaining) + 1} s"
            )

    def failed(self, till: str) -> None:
        failures = self._failures.get(till, 0) + 1
        self._failures[till] = failures
        if failures >= self.limit:
            self._locked_until[till] = time.monotonic() + self.lockout
            self._failures[till] = 0

    def succeeded(self, till: str) -> None:
        self._failures.pop(till, None)


async def login(
    journal: Journal, throttle: LoginThrottle, till: str, cashier_id: str, pin: str
) -> dict[str, str]:
    throttle.check(till)
    row = await journal.read_one(
        "SELECT id, name, role, pin_salt, pin_hash FROM cashiers WHERE id = ?", (cashier_id,)
    )
    # Hash even for an unknown cashier, so timing does not tell who exists.
    salt = row["pin_salt"] if row else "00" * 16
    candidate = await asyncio.to_thread(hash_pin, pin, salt)
    if row is None or not hmac.compare_digest(candidate, row["pin_hash"]):
        throttle.failed(till)
        raise EdgeError(INVALID_PIN, "unknown cashier or wrong PIN")
    throttle.succeeded(till)
    return {"id": row["id"], "name": row["name"], "role": row["role"]}
