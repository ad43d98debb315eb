"""The journal: an append-only SQLite log of events, and the projections fed from it.

One writer task owns the write connection. Writes are functions of a `Tx`;
the writer runs every write waiting at once inside one transaction (group
commit), each in its own savepoint so a failing one changes nothing, commits
with `synchronous=FULL`, and only then answers each caller. A till told
"done" is therefore told after fsync.

Projections (tables the tills read) are updated in the same transaction as
the event that feeds them, by handlers registered with `@projection(type)`.
Applying an event twice changes nothing: events are unique by (origin, seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import orjson

from edge.chain import ChainHead, Event, canonical_json
from edge.migrations import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")
Projection = Callable[[aiosqlite.Connection, Event], Awaitable[None]]
Listener = Callable[[list[Event]], None]

_PROJECTIONS: dict[str, list[Projection]] = {}


def projection(event_type: str) -> Callable[[Projection], Projection]:
    """Register a handler that updates read tables when `event_type` is applied."""

    def register(handler: Projection) -> Projection:
        _PROJECTIONS.setdefault(event_type, []).append(handler)
        return handler

    return register


def _connect_pragmas() -> list[str]:
    return [
        "PRAGMA journal_mode = WAL",
        # FULL: the WAL is fsync'd at every commit, so a commit survives power loss.
        "PRAGMA synchronous = FULL",
        "PRAGMA foreign_keys = ON",
        "PRAGMA busy_timeout = 5000",
    ]


def _row_event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    origin, seq, event_id, time, type_, body, prev_hash, hash_ = row
    return Event(origin, seq, event_id, time, type_, orjson.loads(body), prev_hash, hash_)


# Bounds one transaction, so one slow batch cannot hold every till's answer.
MAX_BATCH = 500

EVENT_COLUMNS = "origin, seq, id, time, type, body, prev_hash, hash"


class Tx:
    """A write in progress: the open transaction and this node's chain head."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.db = journal._writer_db
        self.events: list[Event] = []

    async def append(self, type_: str, body: dict[str, Any]) -> Event:
        """Write a new event of this node's origin and apply its projections."""
        journal = self._journal
        event = journal.head.next(journal.origin, type_, body)
        await self._insert(event)
        journal.head = ChainHead(event.seq, event.hash)
        return event

    async def _insert(self, event: Event) -> bool:
        cursor = await self.db.execute(
            f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.origin,
                event.seq,
                event.id,
                event.time,
                event.type,
                canonical_json(event.body).decode(),
                event.prev_hash,
                event.hash,
            ),
        )
        if cursor.rowcount == 0:
            return False
        for handler in _PROJECTIONS.get(event.type, ()):
            await handler(self.db, event)
        self.events.append(event)
        return True

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())


class Journal:
    """The node's SQLite file: one group-committing writer, one reader."""

    def __init__(self, path: Path, origin: str) -> None:
        self.path = path
        self.origin = origin
        self.head = ChainHead()
        self._writes: asyncio.Queue[tuple[Callable[[Tx], Awaitable[Any]], asyncio.Future[Any]]]
        self._writes = asyncio.Queue()
        self._listeners: list[Listener] = []
        self._writer_task: asyncio.Task[None] | None = None
        self.commits = 0
        self.committed_events = 0

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._migrate)
        self._writer_db = await self._connect()
        self._reader_db = await self._connect()
        await self._load_head()
        self._writer_task = asyncio.create_task(self._write_loop(), name="journal-writer")

    def _migrate(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            for pragma in _connect_pragmas():
                conn.execute(pragma)
            migrate(conn)
        finally:
            conn.close()

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        for pragma in _connect_pragmas():
            await db.execute(pragma)
        return db

    async def _load_head(self) -> None:
        row = await self.read_one(
            "SELECT seq, hash FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1",
            (self.origin,),
        )
        self.head = ChainHead(row["seq"], row["hash"]) if row else ChainHead()

    async def close(self) -> None:
        if self._writer_task:
            self._writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
        while not self._writes.empty():
            _, future = self._writes.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the journal is closed"))
        await self._writer_db.close()
        await self._reader_db.close()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each batch of events once it is committed."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def write(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `work` in a transaction; return once its result is durable."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.put_nowait((work, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._writes.get()]
            while not self._writes.empty() and len(batch) < MAX_BATCH:
                batch.append(self._writes.get_nowait())
            await self._commit_batch(batch)

    async def _commit_batch(
        self, batch: list[tuple[Callable[[Tx], Awaitable[Any]], asyncio.Future[Any]]]
    ) -> None:
        db = self._writer_db
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        committed: list[Event] = []
        await db.execute("BEGIN IMMEDIATE")
        try:
            for work, future in batch:
                tx = Tx(self)
                head_before = self.head
                await db.execute("SAVEPOINT work")
                try:
                    result = await work(tx)
                except Exception as error:
                    await db.execute("ROLLBACK TO work")
                    await db.execute("RELEASE work")
                    self.head = head_before
                    outcomes.append((future, None, error))
                else:
                    await db.execute("RELEASE work")
                    outcomes.append((future, result, None))
                    committed.extend(tx.events)
            await db.execute("COMMIT")
        except BaseException as error:
            # The batch is lost as a whole: nobody was told "done", so nothing
            # acknowledged is lost. The chain head goes back to what is on disk.
            log.exception("journal commit failed")
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            with contextlib.suppress(Exception):
                await self._load_head()
            for _, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError(f"journal commit failed: {error}"))
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        self.commits += 1
        self.committed_events += len(committed)
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        if committed:
            for listener in list(self._listeners):
                try:
                    listener(committed)
                except Exception:
                    log.exception("journal listener failed")

    async def read_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with self._reader_db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def read_all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._reader_db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def events(self, origin: str | None = None) -> AsyncIterator[Event]:
        """Every event, per origin in seq order."""
        where, params = ("WHERE origin = ?", (origin,)) if origin else ("", ())
        async with self._reader_db.execute(
            f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY origin, seq", params
        ) as cursor:
            async for row in cursor:
                yield _row_event(tuple(row))

    async def meta(self, key: str) -> str | None:
        row = await self.read_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None


def read_events(path: Path) -> list[Event]:
    """Every event of a journal file, for offline checks (no server needed)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY origin, seq")
        return [_row_event(row) for row in rows]
    finally:
        conn.close()
