"""What head office has not acknowledged yet, kept in memory: read at no cost.

/healthz, /metrics, the store IT page and `edge sync` show the backlog at
every call; counting the events past the cursor was a scan of the whole
backlog each time (434 ms a /healthz with a million events waiting).

It rests on what the journal guarantees: each origin's events are gapless
in seq, and their `events.position` (the order they were committed here)
grows with their seq. So with the cursor at position p, the events of an
origin past it are its seqs acked+1 .. last, where `acked` is the seq of
its last event at or below p; the backlog is the sum of last - acked over
the origins that are pushed (every one but head office's own).

- `last`: read from the `origins` table (kept by a trigger) when the cursor
  is followed, then raised by every commit (a journal listener): the node's
  sales, peers' events, anything else committed here.
- `acked`: found by a binary search over the origin's seqs (a handful of
  index reads per origin, never a scan) each time the saved cursor moves,
  forward or back (head office restored from a backup). `follow` reads the
  cursor as the database holds it, so whatever order the moves come in
  (two rounds at once, late or stale answers), it ends where the cursor is.
- The oldest unsent: the time of each origin's first event past the cursor
  (its seq acked+1), the earliest of them.

Only the seqs are kept, never on disk: at start, after a crash (kill -9
between a commit and this count's update) or a restored backup, it is
worked out again from the journal as it stands. Both sides take the lock
only to read or set a few numbers: the event loop never waits on a read.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.headoffice.protocol import is_headoffice_origin
from edge.journal.chain import Event


@dataclass
class _Origin:
    acked: int = 0  # seq of its last event at or below the cursor (0: none)
    last: int = 0  # its last seq committed here
    first_unsent: str | None = None  # time of seq acked + 1, once that is known here


class Backlog:
    """Events past the head-office cursor, per origin; `count()` answers in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._origins: dict[str, _Origin] = {}
        self.position: int | None = None  # the cursor the counts are for (None: not read)

    def committed(self, events: list[Event]) -> None:
        """A journal listener (on the event loop): raise `last` by what was committed."""
        with self._lock:
            for event in events:
                if is_headoffice_origin(event.origin):
                    continue  # never pushed: head office's own catalogue
                entry = self._origins.get(event.origin)
                if entry is None:
                    entry = self._origins[event.origin] = _Origin()
                if event.seq == entry.acked + 1:
                    entry.first_unsent = event.time
                entry.last = max(entry.last, event.seq)

    def count(self) -> tuple[int, str | None]:
        """(events not acknowledged by head office, time of the oldest of them)."""
        with self._lock:
            waiting = [(entry.last - entry.acked, entry.first_unsent)
                       for entry in self._origins.values() if entry.last > entry.acked]
        times = [time for _, time in waiting if time is not None]
        return sum(count for count, _ in waiting), min(times, key=_instant) if times else None

    def follow(self, db: sqlite3.Connection) -> None:
        """In a thread of its own: bring the counts to the cursor the database holds now.

        Reads one snapshot of the journal: the cursor, each origin's last
        seq, and for each origin whose events past the cursor may have
        changed, where the cursor falls among its seqs.
        """
        began = not db.in_transaction
        if began:
            db.execute("BEGIN")
        try:
            (position,) = db.execute(
                "SELECT acknowledged_position FROM headoffice_sync WHERE id = 1").fetchone()
            with self._lock:
                before = self.position
                known = {origin: entry.acked for origin, entry in self._origins.items()}
            forward = before is not None and position >= before
            found: dict[str, tuple[int, int, str | None]] = {}
            for origin, last in db.execute("SELECT origin, last_seq FROM origins").fetchall():
                if is_headoffice_origin(origin):
                    continue
                start = known.get(origin, 0) if forward else 0
                if forward and (start >= last or position == before):
                    continue  # the cursor passed none of its events
                acked = acked_seq(db, origin, position, start, last)
                found[origin] = (acked, last, _time_of(db, origin, acked + 1))
        finally:
            if began:
                db.execute("COMMIT")
        with self._lock:
            for origin, (acked, last, first_unsent) in found.items():
                entry = self._origins.get(origin)
                if entry is None:
                    entry = self._origins[origin] = _Origin()
                entry.acked = acked
                entry.last = max(entry.last, last)
                if entry.last <= acked:
                    entry.first_unsent = None
                elif first_unsent is not None:
                    entry.first_unsent = first_unsent
                else:  # committed since the snapshot, and already counted by `committed`
                    entry.first_unsent = _time_of(db, origin, acked + 1)
            # An origin only `committed` knows (acked 0) came after the snapshot: past it.
            self.position = position


def acked_seq(db: sqlite3.Connection, origin: str, position: int, known: int,
              last: int) -> int:
    """The seq of `origin`'s last event at or below `position` (0: none).

    A binary search on the (origin, seq) index, as positions grow with seqs
    (and every origin starts at seq 1). `known`: a seq already known to be
    at or below `position` (where the cursor was before it moved forward).
    """
    low, high = known, last + 1  # low: at or below the cursor (or 0); high: past it
    while high - low > 1:
        middle = (low + high) // 2
        row = db.execute("SELECT position FROM events WHERE origin = ? AND seq = ?",
                         (origin, middle)).fetchone()
        if row is not None and row[0] <= position:
            low = middle
        else:
            high = middle
    return low


def unsent(db: sqlite3.Connection) -> tuple[int, str | None]:
    """The backlog read from a journal file (`edge status`, node running or not): no scan."""
    backlog = Backlog()
    backlog.follow(db)
    return backlog.count()


def _time_of(db: sqlite3.Connection, origin: str, seq: int) -> str | None:
    row = db.execute("SELECT time FROM events WHERE origin = ? AND seq = ?",
                     (origin, seq)).fetchone()
    return None if row is None else str(row[0])


def _instant(time: str) -> datetime:
    """For comparing event times written with different offsets ("Z", "+01:00")."""
    try:
        return datetime.fromisoformat(time)
    except ValueError:  # never for an event that passed its schema
        return datetime.max.replace(tzinfo=UTC)
