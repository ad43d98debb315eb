"""What a day closure counts, read from a table of events: the one rule, for the node
that closes and for the archive's verifier alike.

A closure C covers, for every origin, the events up to a seq (`covers`). The
sales C has **seen** are the sale and refund ids with a copy within its
covers whose first covered copy was recorded before C's end (training ones
aside). A day closure counts what it has seen and its previous closure P (the
one it names) had not: a sale recorded before P's end but held by no node P
covered (an offline till's, arriving late) falls in C, flagged late when it
was recorded before C's own start. Covers never go back (closing.py refuses
it), so what C counts is never counted again, and nothing in a closed day
ever changes.

The copy that counts is the one with the smaller event hash among those C
covers: the `sales` projection's rule (totals.py `counted_in_id_order`).

Only the sales P may not have seen are read: those recorded between P's end
and C's, and those before C's end beyond P's covers, then every copy of each
(indexes of migration 26); the first closure of a store reads all those
recorded before its end.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from edge.fiscal.totals import SALE_TYPES, Totals, is_training, totals_of
from edge.journal.store import row_event

# Written as migration 26's indexes say it, so SQLite uses them.
SALE_TYPE_SQL = f"type IN ({', '.join(repr(name) for name in SALE_TYPES)})"
CANDIDATES = "temp.closure_candidates"
# The same indexes on an archive's events loaded in a scratch database (the verifier).
INDEXES = (f"CREATE INDEX IF NOT EXISTS sale_events_by_id ON events "
           f"(json_extract(body, '$.id')) WHERE {SALE_TYPE_SQL}",
           f"CREATE INDEX IF NOT EXISTS sale_events_by_time ON events (time) WHERE {SALE_TYPE_SQL}")

# What a closure covers: {origin: {"seq": n, "hash": h}}.
Covers = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Basis:
    """What a closure saw: its covers and its end (the previous one, for the next)."""

    covers: Covers
    end: str

    def holds(self, origin: str, seq: int) -> bool:
        anchor = self.covers.get(origin)
        return anchor is not None and seq <= anchor["seq"]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Basis:
        return cls(body["covers"], body["bounds"]["end"])


@dataclass(frozen=True)
class Figures:
    """What a closure holds of the sales it counts."""

    totals: Totals
    late: dict[str, int]  # {count, total}: those recorded before the period's start
    sales_digest: str
    ids: int


def _seen_since(copies: list[tuple[str, int, str]], basis: Basis) -> bool:
    """Has `basis` seen the sale these copies (origin, seq, time) are of?"""
    times = [time for origin, seq, time in copies if basis.holds(origin, seq)]
    return bool(times) and min(times) < basis.end


def _candidates(db: sqlite3.Connection, table: str, covers: Covers, end: str,
                previous: Basis | None) -> None:
    """CANDIDATES: the ids of the sales `previous` may not have seen, with a copy recorded
    before `end` (a sale counts by its first copy: that one is found, by its time or by
    its seq, and then every copy of it by its id)."""
    db.execute(f"DROP TABLE IF EXISTS {CANDIDATES}")
    db.execute(f"CREATE TABLE {CANDIDATES} (id TEXT PRIMARY KEY) WITHOUT ROWID")
    insert = f"INSERT OR IGNORE INTO {CANDIDATES} "
    sale_id = "json_extract(body, '$.id')"
    if previous is None:
        db.execute(f"{insert} SELECT {sale_id} FROM {table} WHERE {SALE_TYPE_SQL} "
                   "AND time < ?", (end,))
        return
    db.execute(f"{insert} SELECT {sale_id} FROM {table} WHERE {SALE_TYPE_SQL} AND time >= ? "
               "AND time < ?", (previous.end, end))
    for origin in covers:  # what no covers hold is never counted
        anchor = previous.covers.get(origin)
        db.execute(f"{insert} SELECT {sale_id} FROM {table} WHERE origin = ? AND seq > ? "
                   f"AND {SALE_TYPE_SQL} AND time < ?", (origin, anchor["seq"] if anchor else 0,
                                                        end))


def counted_events(db: sqlite3.Connection, covers: Covers, end: str,
                   previous: Basis | None, table: str = "events") -> Iterator[Any]:
    """The events (one per sale id, in id order) a closure covering `covers`, ending at
    `end`, after `previous`, counts; with each, the time of its first covered copy."""
    basis = Basis(covers, end)
    _candidates(db, table, covers, end, previous)
    rows = db.execute(
        f"SELECT c.id, e.origin, e.seq, e.id, e.time, e.type, e.body, e.prev_hash, e.hash, "
        f"e.sig FROM {CANDIDATES} c CROSS JOIN {table} e "  # each candidate, then its copies
        # `+c.id`: a plain value, so the index on the body's id is searched, not scanned
        f"WHERE json_extract(e.body, '$.id') = +c.id AND e.{SALE_TYPE_SQL} ORDER BY c.id, e.hash")
    for _, group in groupby(rows, key=lambda row: row[0]):
        copies = [tuple(row[1:]) for row in group]
        covered = [row for row in copies if basis.holds(row[0], row[1])]
        if not covered or min(row[3] for row in covered) >= end:
            continue
        if previous is not None and _seen_since([(r[0], r[1], r[3]) for r in copies], previous):
            continue
        event = row_event(covered[0])  # the smallest hash: rows come ordered by it
        if not is_training(event.body):
            yield event, min(row[3] for row in covered)


def day_figures(db: sqlite3.Connection, covers: Covers, start: str, end: str,
                previous: Basis | None, table: str = "events") -> Figures:
    """The totals, late sales and digest of a day closure (see the module's rule)."""
    digest = hashlib.sha256()
    late = {"count": 0, "total": 0}
    count = 0

    def bodies() -> Iterator[Mapping[str, Any]]:
        nonlocal count
        for event, first_time in counted_events(db, covers, end, previous, table):
            body = event.body
            count += 1
            digest.update(body["id"].encode() + b"\n")
            if first_time < start:
                late["count"] += 1
                late["total"] += body["totals"]["total"]
            yield body

    totals = totals_of(bodies())
    return Figures(totals, late, digest.hexdigest(), count)


def parts_digest(digests: list[str]) -> str:
    """A month's (a year's) `sales_digest`: over its days' (months') digests, in order."""
    return hashlib.sha256("".join(f"{d}\n" for d in digests).encode()).hexdigest()
