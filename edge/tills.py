"""Tills: pairing with a one-time code, and the token each till then uses.

Codes and tokens are kept only as SHA-256 digests. A code lives in a local
table (it is a node's secret, never journaled); a paired till is a
`till_paired` event carrying its token's digest, so every node of the store
will recognise it.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.chain import Event
from edge.journal import Journal, Tx, projection
from edge.messages import INVALID_PAIRING_CODE, INVALID_TOKEN, TOO_MANY_ATTEMPTS, EdgeError

PAIRING_CODE_TTL = 15 * 60.0


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


@projection("till_paired")
def _till_paired(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    code = body["code"]
    clash = db.execute(
        "SELECT token_sha256, event_hash, origin FROM tills WHERE code = ?", (code,)
    ).fetchone()
    if clash is not None and clash[0] != body["token_sha256"]:
        # Two nodes gave one code at once, before hearing of each other. Every
        # node settles it the same way: the smaller hash keeps it, the other
        # till's code gets its pairing node's mark (the till learns it at auth).
        if event.hash < clash[1]:
            db.execute("UPDATE tills SET code = ? WHERE token_sha256 = ?",
                       (f"{code}-{clash[2]}", clash[0]))
        else:
            code = f"{code}-{event.origin}"
    db.execute(
        """INSERT OR IGNORE INTO tills (code, name, token_sha256, paired_at, event_hash, origin)
        VALUES (?, ?, ?, ?, ?, ?)""",
        (code, body["name"], body["token_sha256"], event.time, event.hash, event.origin),
    )


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
        row = tx.fetchone("SELECT COUNT(*) AS n FROM tills")
        till_code = f"T{row['n'] + 1:02d}" if row else "T01"
        tx.append(
            "till_paired", {"code": till_code, "name": name, "token_sha256": digest(token)}
        )
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
