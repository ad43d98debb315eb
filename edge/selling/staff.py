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

Logging in, and the lock on guessing PINs, are edge/selling/logins.py's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal

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


def pin_matches(row: sqlite3.Row | None, key: PinKey, pin: str) -> bool:
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
