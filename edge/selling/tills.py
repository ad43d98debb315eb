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
import ipaddress
import json
import logging
import math
import re
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import INVALID_PAIRING_CODE, INVALID_TOKEN, TOO_MANY_ATTEMPTS, EdgeError
from edge.schema import limits

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


# How many earlier codes one pairing may take over (a till paired again and again
# while it held sales of each code): far more than a store sees, and a bound.
MAX_TAKEN_OVER = 32
# How many earlier tokens a till may show when it pairs again.
MAX_PREVIOUS_TOKENS = 8


@dataclass(slots=True)
class TillPaired:
    code: str
    name: str
    token_sha256: str
    # The codes of this store's tills whose unsent offline sales this till sends
    # (it showed their tokens when it paired: "Paired again", docs/protocol.md).
    takes_over: list[str] | None = field(default=None, metadata=limits(max_length=MAX_TAKEN_OVER))


@event_type("till_paired", schema=TillPaired,
            merge="one till per token; a code as given (unique by construction); a plain "
                  "code from before: the smallest event hash keeps it, the others become "
                  "`<code>-<their node>`; the codes it takes over as given, with it")
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
    taken_over = body.get("takes_over")
    db.execute(
        """INSERT INTO tills (code, name, token_sha256, paired_at, event_hash, origin, takes_over)
        VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (code, body["name"], body["token_sha256"], event.time, event.hash, event.origin,
         json.dumps(taken_over) if taken_over else None),
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


def client_key(address: str | None) -> str:
    """Whom a limit counts: an IPv4 address, or an IPv6 /64 (one host may hold a whole /64)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class PairingThrottle:
    """At most `limit` pairing attempts a minute from each client address.

    An attempt is counted *before* its code is checked (and given back if
    the code was right): 500 guesses sent at once from one address get at
    most `limit` checks, not as many as arrive before the first answer.
    Counting per address means a flood from one machine never blocks a till
    pairing from another. The table holds at most `max_clients` addresses
    (a /64 counts as one), each with at most `limit` times, so no number of
    addresses grows it: when it is full of addresses that tried within the
    minute, a new address waits like a throttled one.
    """

    limit: int = 10
    window: float = 60.0
    max_clients: int = 4096
    # Wrong codes from all addresses together before the codes not yet used are
    # withdrawn: many addresses, each under `limit`, must not add up to a guess.
    max_wrong: int = 50
    _attempts: dict[str, deque[float]] = field(default_factory=dict)
    _wrong: int = 0

    def attempt(self, client: str, now: float | None = None) -> None:
        """Count an attempt from `client` now; TOO_MANY_ATTEMPTS (nothing counted) if over."""
        now = time.monotonic() if now is None else now
        key = client_key(client)
        times = self._attempts.get(key)
        if times is None:
            if len(self._attempts) >= self.max_clients:
                self._forget_idle(now)
            if len(self._attempts) >= self.max_clients:
                raise self._refusal(min(t[0] for t in self._attempts.values()) - now)
            times = self._attempts[key] = deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            raise self._refusal(times[0] - now)
        times.append(now)

    def succeeded(self, client: str) -> None:
        """The code was right: that attempt does not count against the address."""
        times = self._attempts.get(client_key(client))
        if times:
            times.pop()

    def wrong_guess(self) -> bool:
        """One more wrong code, whatever the address; True when the codes must go."""
        self._wrong += 1
        if self._wrong < self.max_wrong:
            return False
        self._wrong = 0
        return True

    def _forget_idle(self, now: float) -> None:
        for key in [key for key, times in self._attempts.items()
                    if not times or now - times[-1] >= self.window]:
            del self._attempts[key]

    def _refusal(self, oldest_in: float) -> EdgeError:
        wait = max(1, math.ceil(oldest_in + self.window))
        return EdgeError(TOO_MANY_ATTEMPTS,
                         f"too many pairing attempts from this address: try again in {wait} s",
                         {"retry_after": wait})


async def withdraw_pairing_codes(journal: Journal) -> int:
    """Every pairing code not yet used is void (too many wrong guesses): how many."""
    return await journal.write(
        lambda tx: tx.db.execute("DELETE FROM pairing_codes WHERE 1").rowcount)


async def pair(journal: Journal, code: str, name: str,
               previous_tokens: Iterable[str] = ()) -> tuple[str, dict[str, Any]]:
    """Trade a pairing code for a new till and its token.

    `previous_tokens`: the tokens this browser held before (a till paired
    again: its token revoked while it sold offline, or store IT pairing it
    anew). Each one this store gave, revoked or not, is the proof that this
    till was that one: the new till takes over the codes they had (and those
    they had taken over), so it may send their unsent offline sales
    (`sale/record`). A token this store never gave (another store's, or
    made up) proves nothing and is passed over.
    """
    token = secrets.token_urlsafe(32)
    previous = [digest(old) for old in previous_tokens]

    def work(tx: Tx) -> dict[str, Any]:
        cursor = tx.db.execute(
            "DELETE FROM pairing_codes WHERE code_sha256 = ? AND expires_at >= ?",
            (digest(code), time.time()),
        )
        if cursor.rowcount == 0:
            raise EdgeError(INVALID_PAIRING_CODE, "this pairing code is wrong, used or expired")
        till_code = next_till_code(tx.db, tx.origin)
        taken_over = codes_proven(tx.db, previous)
        body: dict[str, Any] = {"code": till_code, "name": name, "token_sha256": digest(token)}
        if taken_over:
            body["takes_over"] = taken_over
        tx.append("till_paired", body)
        return {"code": till_code, "name": name,
                **({"takes_over": taken_over} if taken_over else {})}

    till = await journal.write(work)
    return token, till


def codes_proven(db: sqlite3.Connection, token_digests: Iterable[str]) -> list[str]:
    """The codes of this store's tills whose tokens these are, revoked or not, with the
    codes each had taken over: what a till paired again with those tokens takes over."""
    codes: list[str] = []
    for token_sha256 in token_digests:
        row = db.execute("SELECT code, takes_over FROM tills WHERE token_sha256 = ?",
                         (token_sha256,)).fetchone()
        if row is None:
            continue
        for code in [row[0], *json.loads(row[1] or "[]")]:
            if code not in codes:
                codes.append(code)
    return codes[:MAX_TAKEN_OVER]


async def authenticate(journal: Journal, token: str) -> dict[str, Any]:
    row = await journal.read_one(
        """SELECT tills.code AS code, tills.name AS name, revoked.revoked_at AS revoked_at,
        tills.takes_over AS takes_over
        FROM tills LEFT JOIN till_revocations AS revoked USING (token_sha256)
        WHERE tills.token_sha256 = ?""", (digest(token),)
    )
    if row is None:
        raise EdgeError(INVALID_TOKEN, "this till is not paired with the store: pair it again")
    if row["revoked_at"] is not None:
        raise EdgeError(INVALID_TOKEN, f"this till ({row['code']}) was revoked by store IT: "
                                       "pair it again")
    till: dict[str, Any] = {"code": row["code"], "name": row["name"]}
    if row["takes_over"]:
        # The codes whose unsent sales this till sends (it was them before it paired again).
        till["takes_over"] = json.loads(row["takes_over"])
    return till


# Revoking a till (`edge tills revoke`): its token is refused from then on

@dataclass(slots=True)
class TillRevoked:
    token_sha256: str = field(metadata=limits(min=1, max_length=64))
    code: str = field(metadata=limits(min=1, max_length=64))  # as it was when revoked


@event_type("till_revoked", schema=TillRevoked,
            merge="one revocation per token, for good: the earliest (time, then hash) is "
                  "kept; it may arrive before the pairing it revokes")
def _till_revoked(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        """INSERT INTO till_revocations (token_sha256, code, revoked_at, origin, event_hash)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (token_sha256) DO UPDATE SET code = excluded.code,
            revoked_at = excluded.revoked_at, origin = excluded.origin,
            event_hash = excluded.event_hash
        WHERE (excluded.revoked_at, excluded.event_hash) < (revoked_at, event_hash)""",
        (event.body["token_sha256"], event.body["code"], event.time, event.origin, event.hash),
    )


def revoke(tx: Tx, code: str) -> dict[str, Any] | None:
    """In the writer: revoke the till `code` (None if there is none); what it was."""
    row = tx.fetchone(
        """SELECT tills.code AS code, tills.name AS name, tills.token_sha256 AS token_sha256,
        revoked.revoked_at AS revoked_at
        FROM tills LEFT JOIN till_revocations AS revoked USING (token_sha256)
        WHERE tills.code = ?""",
        (code,))
    if row is None:
        return None
    if row["revoked_at"] is None:
        tx.append("till_revoked", {"token_sha256": row["token_sha256"], "code": row["code"]})
    return {"code": row["code"], "name": row["name"],
            "already_revoked": row["revoked_at"] is not None}


def revoked_tokens(events: list[Event]) -> set[str]:
    """The token digests that `events` revoke (a node hangs up on those tills)."""
    return {event.body["token_sha256"] for event in events if event.type == "till_revoked"}


# When each till was last seen: local to a node (one line a till, never journaled)

SEEN_EVERY = 60.0  # a till's line is written at most this often


@dataclass
class LastSeen:
    """Notes when a till authenticates or works here, at most once a minute per till."""

    written: dict[str, float] = field(default_factory=dict)

    async def saw(self, journal: Journal, token_sha256: str) -> None:
        now = time.monotonic()
        if now - self.written.get(token_sha256, -SEEN_EVERY) < SEEN_EVERY:
            return
        if len(self.written) > 10_000:  # tills are few: only a bug or an attack gets here
            self.written.clear()
        self.written[token_sha256] = now
        seen_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

        def note(tx: Tx) -> None:
            tx.db.execute(
                "INSERT OR REPLACE INTO till_last_seen (token_sha256, seen_at) VALUES (?, ?)",
                (token_sha256, seen_at))

        try:
            await journal.write(note)
        except Exception as error:  # a note for store IT never stops a till (disk full)
            log.info("could not note when a till was last seen: %s", error)


TILL_COLUMNS = """tills.code AS code, tills.name AS name, tills.paired_at AS paired_at,
    seen.seen_at AS last_seen, revoked.revoked_at AS revoked_at"""


async def till_counts(journal: Journal) -> dict[str, int]:
    """How many tills are paired and how many revoked: what anyone may know."""
    row = await journal.read_one(
        """SELECT COUNT(*) AS paired, COUNT(revoked.token_sha256) AS revoked FROM tills
        LEFT JOIN till_revocations AS revoked USING (token_sha256)""")
    return {"paired": row["paired"] if row else 0, "revoked": row["revoked"] if row else 0}


async def list_tills(journal: Journal, waiting_sales: bool = True) -> list[dict[str, Any]]:
    """Every till the store paired, as store IT sees it (never its token's digest).

    `sales_waiting`: the till's sales this node holds that head office has not
    acknowledged from it (None when `waiting_sales` is off: no head office).
    """
    rows = await journal.read_all(
        f"""SELECT {TILL_COLUMNS} FROM tills
        LEFT JOIN till_last_seen AS seen USING (token_sha256)
        LEFT JOIN till_revocations AS revoked USING (token_sha256)
        ORDER BY tills.code LIMIT 1000""")
    waiting: dict[str, int] = {}
    if waiting_sales:
        cursor = await journal.read_one("SELECT acknowledged_position FROM headoffice_sync")
        waiting = {row[0]: row[1] for row in await journal.read_all(
            """SELECT json_extract(body, '$.till'), COUNT(*) FROM events
            WHERE position > ? AND type IN ('sale_completed', 'sale_refunded') GROUP BY 1""",
            (cursor[0] if cursor else 0,))}
    return [{"code": row["code"], "name": row["name"], "paired_at": row["paired_at"],
             "last_seen": row["last_seen"], "revoked_at": row["revoked_at"],
             "sales_waiting": waiting.get(row["code"], 0) if waiting_sales else None}
            for row in rows]
