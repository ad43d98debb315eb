"""Tills: pairing with a one-time code, and the token each till then uses.

Codes and tokens are kept only as SHA-256 digests. A code lives in a local
table (it is a node's secret, never journaled); a paired till is a
`till_paired` event carrying its token's digest, so every node of the store
will recognise it.

A till's code (`T03-8dfc74`: a number, then the node that paired it) is
unique by construction: only that node hands out codes ending in its id, and
it knows every till it paired itself. So two nodes that never heard of each
other cannot give the same code, and no later pairing ever renames a till.
Plain codes (`T01`) come from edge before codes carried their node; those
are settled as they always were (docs/architecture.md, "Till codes").
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import INVALID_PAIRING_CODE, INVALID_TOKEN, TOO_MANY_ATTEMPTS, EdgeError

log = logging.getLogger(__name__)

PAIRING_CODE_TTL = 15 * 60.0

# A code from edge before codes carried their node: "T" and two or more digits.
LEGACY_CODE = re.compile(r"T\d{2,}")
# The number of any till code, plain or node-qualified.
CODE_NUMBER = re.compile(r"T(\d+)")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_pairing_code(db_path: Path, ttl: float = PAIRING_CODE_TTL) -> str:
    """A fresh 6-digit one-time code (used by `edge pair`, with or without a server)."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        with conn:
            conn.execute("DELETE FROM pairing_codes WHERE expires_at < ?", (time.time(),))
            conn.execute(
                "INSERT OR REPLACE INTO pairing_codes (code_sha256, expires_at) VALUES (?, ?)",
                (digest(code), time.time() + ttl),
            )
    finally:
        conn.close()
    return code


def qualified_code(number: int, node: str) -> str:
    """`T03-8dfc74`: the number a cashier says, then the node that paired the till."""
    return f"T{number:02d}-{node}"


def next_till_code(db: sqlite3.Connection, node: str) -> str:
    """The code `node` gives the till it pairs now, in its write transaction.

    The number follows the highest one this node knows of, so tills paired
    by a caught-up node are numbered store-wide; the node's id makes the code
    unique even when it is not caught up. Any code ending in `-<node>` comes
    from this node's own events, all known here, so none has this number.
    """
    numbers = [int(match.group(1)) for (code,) in db.execute("SELECT code FROM tills")
               if (match := CODE_NUMBER.match(code))]
    return qualified_code(max(numbers, default=0) + 1, node)


@dataclass(slots=True)
class TillPaired:
    code: str
    name: str
    token_sha256: str


@event_type("till_paired", schema=TillPaired,
            merge="one till per token; a code as given (unique by construction); a plain "
                  "code from before: the smallest event hash keeps it, the others become "
                  "`<code>-<their node>`")
def _till_paired(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    known = db.execute(
        "SELECT 1 FROM tills WHERE token_sha256 = ?", (body["token_sha256"],)
    ).fetchone()
    if known is not None:
        return
    code = body["code"]
    if LEGACY_CODE.fullmatch(code):
        code = _settle_legacy_code(db, event, code)
    elif db.execute("SELECT 1 FROM tills WHERE code = ?", (code,)).fetchone() is not None:
        # Cannot happen while one process writes each origin (a node-qualified
        # code clashes only with its own node's tills). Events of one origin
        # apply in seq order everywhere, so marking the later one still
        # agrees on every node, and no till that has its code loses it.
        log.error("till code %s given twice by %s: the later till becomes %s-%d",
                  code, event.origin, code, event.seq)
        code = f"{code}-{event.seq}"
    db.execute(
        """INSERT INTO tills (code, name, token_sha256, paired_at, event_hash, origin)
        VALUES (?, ?, ?, ?, ?, ?)""",
        (code, body["name"], body["token_sha256"], event.time, event.hash, event.origin),
    )


def _settle_legacy_code(db: sqlite3.Connection, event: Event, code: str) -> str:
    """A plain code from edge before codes carried their node: the rule it always had.

    Two old nodes cut apart both gave `T01`. Among the events giving one plain
    code, the smallest hash keeps it and the others become `T01-<their node>`,
    whatever the order they arrive in (the till-codes migration in
    edge/migrations.py applied this rule to the tills known at the upgrade).
    A till is renamed here only when such an old event reaches a node after
    the upgrade; new codes never clash.
    """
    holder = db.execute(
        "SELECT token_sha256, event_hash, origin FROM tills WHERE code = ?", (code,)
    ).fetchone()
    if holder is None:
        return code
    if event.hash < holder[1]:
        db.execute("UPDATE tills SET code = ? WHERE token_sha256 = ?",
                   (f"{code}-{holder[2]}", holder[0]))
        return code
    return f"{code}-{event.origin}"


@dataclass
class PairingThrottle:
    """At most `limit` wrong codes a minute for the whole node: 6 digits stay unguessable."""

    limit: int = 10
    _failures: list[float] = field(default_factory=list)

    def check(self) -> None:
        now = time.monotonic()
        self._failures = [t for t in self._failures if now - t < 60]
        if len(self._failures) >= self.limit:
            raise EdgeError(TOO_MANY_ATTEMPTS, "too many wrong pairing codes: wait a minute")

    def failed(self) -> None:
        self._failures.append(time.monotonic())


async def pair(journal: Journal, code: str, name: str) -> tuple[str, dict[str, str]]:
    """Trade a pairing code for a new till and its token."""
    token = secrets.token_urlsafe(32)

    def work(tx: Tx) -> dict[str, str]:
        cursor = tx.db.execute(
            "DELETE FROM pairing_codes WHERE code_sha256 = ? AND expires_at >= ?",
            (digest(code), time.time()),
        )
        if cursor.rowcount == 0:
            raise EdgeError(INVALID_PAIRING_CODE, "this pairing code is wrong, used or expired")
        till_code = next_till_code(tx.db, tx.origin)
        tx.append("till_paired", {"code": till_code, "name": name, "token_sha256": digest(token)})
        return {"code": till_code, "name": name}

    till = await journal.write(work)
    return token, till


async def authenticate(journal: Journal, token: str) -> dict[str, Any]:
    row = await journal.read_one(
        "SELECT code, name FROM tills WHERE token_sha256 = ?", (digest(token),)
    )
    if row is None:
        raise EdgeError(INVALID_TOKEN, "this till is not paired with the store: pair it again")
    return {"code": row["code"], "name": row["name"]}
