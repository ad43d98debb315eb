"""`closure_made`: a day's (Z), a month's or a year's closure, one signed event.

A node closes a period for the whole store (closing.py says when it may, and
what the body holds): its totals per VAT rate and tender, sales and refunds
apart, what arrived late, the perpetual grand totals, the previous closure's
hash, and `covers`, each origin's last seq and hash it took in, so a deleted
tail or an old backup restored shows at the next closure and in an archive.

One closure per period: every `closure_made` is kept in `closures`, and the
**winners** of a kind form one chain (`winning_hashes`): the latest period's
smallest event hash, then the closure each names as `previous`, back to the
chain's start (before it, each period's smallest hash), whatever the order
they arrive in; the others are shown superseded (two nodes closing at once:
the sales only the loser counted fall in the next closure, which builds on
the winner). A chain, not each period's smallest hash: two nodes cut apart
that each closed a day alone, then the next day on their own closure, have
forked; the winners must be the closures the latest one counted from, or a
sale is counted twice or never (h55). Nothing ever changes a closure: a late
sale falls in the next.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from edge.journal.chain import Event
from edge.journal.event_types import event_type

CLOSURE_MADE = "closure_made"
CLOSURE_VERSION = 1


@dataclass(slots=True)
class Bounds:
    start: str
    end: str


@dataclass(slots=True)
class ClosureMade:
    kind: Literal["day", "month", "year"]
    period: str  # 2026-11-30, 2026-11, 2026
    bounds: Bounds
    number: int  # Z n°: 1 for the store's first closure of this kind
    covers: dict[str, Any]  # {origin: {seq, hash}}
    totals: dict[str, Any]  # edge/fiscal/totals.py `totals_of`
    late: dict[str, Any]  # {count, total}: counted, recorded before the period's start
    grand_total: int
    grand_total_abs: int
    sales_digest: str
    made_by: str  # the manager's cashier id, or "cli"
    version: int
    previous: str | None = None  # the previous closure of this kind's event hash
    parts: list[str] = field(default_factory=list)  # a month's days, a year's months
    alone: list[str] = field(default_factory=list)  # forced: the nodes it had not heard
    store_ca: str = ""  # the store CA's SHA-256 fingerprint, printed on the Z


@event_type(CLOSURE_MADE, schema=ClosureMade,
            merge="every closure kept; one per (kind, period) wins: the smaller event hash, "
                  "wherever it arrives first; the others are shown superseded")
def _closure_made(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute("INSERT INTO closures (hash, kind, period, origin, seq, time, body) "
               "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
               (event.hash, body["kind"], body["period"], event.origin, event.seq, event.time,
                orjson.dumps(body).decode()))


@dataclass(frozen=True)
class Closure:
    """A closure as `closures` holds it."""

    hash: str
    origin: str
    seq: int
    time: str
    body: dict[str, Any]
    winner: bool = True

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def period(self) -> str:
        return str(self.body["period"])

    def as_json(self) -> dict[str, Any]:
        """What a till and `edge close` are shown."""
        return {**self.body, "hash": self.hash, "origin": self.origin, "seq": self.seq,
                "time": self.time, "superseded": not self.winner}


COLUMNS = "hash, origin, seq, time, body"


def _closure(row: Any, winner: bool = True) -> Closure:
    digest, origin, seq, time, body = tuple(row)[:5]
    return Closure(digest, origin, seq, time, orjson.loads(body), winner)


# (hash, period, previous) of every closure of a kind. Parameter: kind.
CHAIN_SQL = "SELECT hash, period, json_extract(body, '$.previous') FROM closures WHERE kind = ?"


def winning_hashes(closures: Iterable[Any]) -> dict[str, str]:
    """{period: its winner's hash}, from (hash, period, previous) of one kind's closures:
    the latest period's smallest hash, then the previous each names, back to the start
    of that chain; before it, each period's smallest hash."""
    rows = {digest: (period, previous) for digest, period, previous in closures}
    winners: dict[str, str] = {}
    for digest, (period, _) in rows.items():
        if period not in winners or digest < winners[period]:
            winners[period] = digest
    digest = winners[max(winners)] if winners else None
    while digest in rows:
        period, digest_before = rows[digest]
        winners[period] = digest
        digest = digest_before
    return winners


def winners_of(db: sqlite3.Connection, kind: str) -> dict[str, str]:
    return winning_hashes(db.execute(CHAIN_SQL, (kind,)))


def winner(db: sqlite3.Connection, kind: str, period: str) -> Closure | None:
    """The closure of `period`, if any node closed it: the winners' chain's."""
    digest = winners_of(db, kind).get(period)
    row = db.execute(f"SELECT {COLUMNS} FROM closures WHERE hash = ?",
                     (digest,)).fetchone() if digest else None
    return _closure(row) if row else None


def last_winner(db: sqlite3.Connection, kind: str, before: str | None = None) -> Closure | None:
    """The winner of the latest period of `kind` closed (before `before`, if given)."""
    where, params = ("AND period < ?", (kind, before)) if before else ("", (kind,))
    row = db.execute(f"SELECT period FROM closures WHERE kind = ? {where} "
                     "ORDER BY period DESC LIMIT 1", params).fetchone()
    return winner(db, kind, row[0]) if row else None


def first_period(db: sqlite3.Connection, kind: str) -> str | None:
    row = db.execute("SELECT MIN(period) FROM closures WHERE kind = ?", (kind,)).fetchone()
    return row[0] if row else None


def winners_between(db: sqlite3.Connection, kind: str, first: str,
                    last: str) -> dict[str, Closure]:
    """{period: its winner} for the periods of `kind` from `first` to `last`."""
    wanted = {digest for period, digest in winners_of(db, kind).items()
              if first <= period <= last}
    rows = db.execute(f"SELECT {COLUMNS}, period FROM closures WHERE kind = ? AND period "
                      "BETWEEN ? AND ?", (kind, first, last))
    return {row[5]: _closure(row) for row in rows if row[0] in wanted}


# Every closure of the latest N periods of a kind closed, newest first (`from_listing`
# puts each period's winner first). Parameters: kind, kind, N.
LISTING_SQL = (f"SELECT {COLUMNS}, period FROM closures WHERE kind = ? AND period IN ("
               "SELECT DISTINCT period FROM closures WHERE kind = ? ORDER BY period DESC "
               "LIMIT ?) ORDER BY period DESC, hash")


def from_listing(rows: Any, winners: dict[str, str]) -> list[Closure]:
    """LISTING_SQL's rows as closures, each marked winner (`winners`: `winning_hashes`)
    or superseded; each period's winner first."""
    shown = [_closure(row, winners.get(row[5]) == row[0]) for row in rows]
    return sorted(shown, key=lambda closure: (closure.period, closure.winner),
                  reverse=True)


def listing(db: sqlite3.Connection, kind: str, limit: int) -> list[Closure]:
    return from_listing(db.execute(LISTING_SQL, (kind, kind, limit)), winners_of(db, kind))
