"""Streaming our journal to one peer: from a cursor, in bounded batches, each event once.

A peer that has been away (or is new) may lack millions of events. They are
never loaded at once: `Outflow` keeps, per origin, the last seq the peer
holds or was sent on this link, and hands out one batch at a time; the link
sends it and waits for the socket to drain before asking for the next
(backpressure: a slow peer slows the reads, it does not grow a queue).

Batches come from `JournalReader`, a read-only SQLite connection of the
peers' own in a thread of its own, so a catch-up neither waits on nor
holds up the tills' reads; SQLite itself writes the batch's JSON, so the
loop only ever holds one batch, already encoded for the wire.

A catch-up yields to the tills (`edge/replication/pacing.py`): each batch
is read, and sent, only once no till command is in flight here. Batches are
small (100 events, about 70 KB: a read of about half a millisecond) so that
a scan landing mid-batch barely waits; the peer's applying, not our reads,
sets the catch-up's pace, so small batches cost it little.

Events committed while the peer is up to date (the steady state) go out
from memory, without a read. Anything else (a catch-up in progress, more
committed than the small live buffer holds) is left to the reader, which
fills every hole in seq order: the peer never sees a gap from us, and a
new vector never starts a second catch-up, it only moves the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from edge.journal.chain import Event
from edge.replication.pacing import TillActivity

# One batch: at most this many events, and about this many bytes on the wire.
# Small: a till command that lands while one is read waits for at most that read.
MAX_EVENTS = 100
READER_NICENESS = 10  # the catch-up reader thread yields the core to the event loop
MAX_BYTES = 128 * 1024
# Live events kept in memory for a peer that is up to date; past it, the reader serves.
LIVE_MAX = 2 * MAX_EVENTS

EVENT_COLUMNS = "origin, seq, id, time, type, body, prev_hash, hash, sig"


@dataclass(frozen=True)
class Batch:
    """One `events` message, ready for the wire."""

    payload: bytes
    count: int
    last: dict[str, int]  # origin -> the last seq this batch carries


def encode_events(events: Iterable[Event]) -> Batch:
    items = [event.as_dict() for event in events]
    last: dict[str, int] = {}
    for item in items:
        last[item["origin"]] = max(last.get(item["origin"], 0), item["seq"])
    return Batch(orjson.dumps({"type": "events", "events": items}), len(items), last)


# One origin's next events as a JSON array, built by SQLite (in C, the GIL
# released: a catch-up barely touches the loop that answers the tills), at
# most `limit` of them and about `max_bytes` of bodies (at least one). As a
# blob: Python gets the bytes as they are, no decoding and encoding again
# while holding the GIL.
READ_ORIGIN = f"""
    SELECT count(*), max(seq), CAST(json_group_array(json_object(
        'origin', origin, 'seq', seq, 'id', id, 'time', time, 'type', type,
        'body', json(body), 'prev_hash', prev_hash, 'hash', hash, 'sig', sig)) AS BLOB)
    FROM (
        SELECT * FROM (
            SELECT *, sum(length(body)) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS upto
            FROM (SELECT {EVENT_COLUMNS} FROM events WHERE origin = ? AND seq > ?
                  ORDER BY seq LIMIT ?)
        ) WHERE upto - length(body) < ? ORDER BY seq
    )"""


def read_batch(db: sqlite3.Connection, cursor: Mapping[str, int],
               max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> Batch | None:
    """The events after `cursor`, each origin in seq order, bounded; None if there are none."""
    heads = db.execute("SELECT origin, last_seq FROM origins ORDER BY origin").fetchall()
    arrays: list[memoryview] = []
    last: dict[str, int] = {}
    count = size = 0
    for origin, head in heads:
        since = cursor.get(origin, 0)
        if head <= since:
            continue
        found, last_seq, array = db.execute(
            READ_ORIGIN, (origin, since, max_events - count, max_bytes - size)
        ).fetchone()
        if not found:
            continue
        arrays.append(memoryview(array)[1:-1])  # the array's items, without a copy
        last[origin] = last_seq
        count += found
        size += len(array)
        if count >= max_events or size >= max_bytes:
            break
    if not arrays:
        return None
    payload = b'{"type":"events","events":[' + b",".join(arrays) + b"]}"
    return Batch(payload, count, last)


class JournalReader:
    """A read-only connection to the journal in a thread of its own, for catch-ups."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peer-reader")

    async def open(self) -> None:
        self._db = await self._in_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        # In this thread: a catch-up may wait, a till's scan may not. Linux
        # gives each thread its own nice value; raising ours needs no privilege.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICENESS)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA query_only = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        return db

    async def close(self) -> None:
        if self._db is not None:
            await self._in_thread(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    async def batch_after(self, cursor: Mapping[str, int]) -> Batch | None:
        assert self._db is not None, "the reader is not open"
        return await self._in_thread(read_batch, self._db, dict(cursor))

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)


class Outflow:
    """What one link sends its peer next: each event once, in seq order per origin.

    `heads` is ours (origin -> last seq committed here), kept by the caller;
    `known` is what the peer told us it holds (its vectors, and the events it
    sent us: never echoed back), shared by every link to that peer. With
    `tills`, each catch-up batch waits for them to be quiet before it is read
    and again before it is handed out to be sent.
    """

    def __init__(self, reader: JournalReader, heads: Mapping[str, int],
                 known: dict[str, int], tills: TillActivity | None = None) -> None:
        self.reader = reader
        self.heads = heads
        self.known = known
        self.tills = tills
        self.yields = 0  # catch-up batches that waited for a till command
        self.sent: dict[str, int] = {}
        self.started = False  # once the peer's first vector on this link said where it stands
        self.high_water = 0  # most events held at once for this peer (live buffer + batch)
        self.wake = asyncio.Event()
        self._live: deque[Event] = deque()
        self._epoch = 0

    def start(self, vector: Mapping[str, int]) -> None:
        """The peer's first vector on this link: stream from there."""
        self.sent = dict(vector)
        self.started = True
        self.wake.set()

    def rewind(self, vector: Mapping[str, int]) -> None:
        """The peer could not apply what we sent (a gap, a failed commit): resend from `vector`."""
        self.known.clear()
        self.known.update(vector)
        self.sent = dict(vector)
        self._live.clear()
        self._epoch += 1
        self.started = True
        self.wake.set()

    def offer(self, events: list[Event]) -> None:
        """Events just committed here; kept only while there is room, else the reader serves."""
        if not self.started or len(self._live) + len(events) > LIVE_MAX:
            self.wake.set()
            return
        self._live.extend(events)
        self.high_water = max(self.high_water, len(self._live))
        self.wake.set()

    def _held(self, origin: str) -> int:
        return max(self.sent.get(origin, 0), self.known.get(origin, 0))

    def behind(self) -> bool:
        """Does the peer lack anything we hold (as far as we know)?"""
        return any(head > self._held(origin) for origin, head in self.heads.items())

    async def next_batch(self) -> Batch | None:
        """The next batch to send (the cursor moves past it), or None if the peer has it all."""
        if not self.started:
            return None
        ready: list[Event] = []
        size = 0  # bodies' bytes, bounded as the reader's batches are (a catalogue batch
        # from head office is tens of KB: a hundred of them would pass the peer's limit)
        while self._live and len(ready) < MAX_EVENTS and size < MAX_BYTES:
            event = self._live.popleft()
            held = self._held(event.origin)
            if event.seq == held + 1:
                ready.append(event)
                size += len(orjson.dumps(event.body))
                self.sent[event.origin] = event.seq
            elif event.seq > held + 1:
                # A hole (a catch-up still running, or the buffer overflowed):
                # the reader sends it all in order.
                self._live.clear()
        if ready:
            return encode_events(ready)
        if not self.behind():
            return None
        waited = await self._yield_to_tills()
        epoch = self._epoch
        # Origins in neither map: the peer holds none of them, they go from #1.
        batch = await self.reader.batch_after(
            {origin: self._held(origin) for origin in {*self.sent, *self.known}}
        )
        if batch is not None:
            # Sending it costs about what a till's command does, too.
            waited = await self._yield_to_tills() or waited
        if batch is None or epoch != self._epoch:
            return None if batch is None else await self.next_batch()
        self.yields += waited
        for origin, seq in batch.last.items():
            self.sent[origin] = max(self.sent.get(origin, 0), seq)
        self.high_water = max(self.high_water, batch.count + len(self._live))
        return batch

    async def _yield_to_tills(self) -> bool:
        """Wait for the tills to be quiet; True if that meant waiting."""
        return self.tills is not None and await self.tills.quiet()
