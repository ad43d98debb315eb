"""The journal: an append-only SQLite log of events, and the projections fed from it.

One thread owns the write connection. Writes are plain functions of a `Tx`;
the writer hands every write waiting at once to that thread as one batch, run
inside one transaction (group commit), each write in its own savepoint so a
failing one changes nothing, committed with `synchronous=FULL`; only then is
each caller answered. A till told "done" is therefore told after fsync.

Why a thread of our own and not aiosqlite for writes: aiosqlite hops to its
thread per statement, and a sale is dozens of statements (measured: ~135 hops
a sale, 10 ms); here a whole batch is one hop. Reads, single statements, go
through aiosqlite.

Projections (tables the tills read) are updated in the same transaction as
the event that feeds them, by the projection its type declares in the one
registry of event types (edge/event_types.py). An event of an unknown type,
or whose body does not fit its type's schema, is refused, written here or
sent from elsewhere. Applying an event twice changes nothing: events are
unique by (origin, seq). A write's own work is in edge/journal/tx.py (`Tx`:
append ours, judge and apply theirs); which origin this folder writes under
is edge/journal/ownership.py's call, made as the journal opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import orjson
from cryptography.x509.oid import NameOID

from edge.journal.chain import (
    ChainHead,
    Event,
    utc_now,
)
from edge.journal.checkpoints import Checkpointer
from edge.journal.datafolder import (
    FolderLock,
    HeadMark,
    write_head_mark,
    write_node_id,
)
from edge.journal.migrations import migrate
from edge.journal.ownership import claim_origin, key_change, stored_head, vouch_for_unsigned
from edge.journal.signing import (
    OriginKeys,
    SigningIdentity,
)
from edge.journal.tx import (
    EVENT_COLUMNS,
    OriginClash,
    OwnOriginSeen,
    Params,
    Tx,
    bind_params,
)
from edge.journal.vouches import (
    StagedUnsigned,
)
from edge.messages import DISK_FULL, EdgeError

log = logging.getLogger(__name__)

T = TypeVar("T")
Item = TypeVar("Item")
Listener = Callable[[list[Event]], None]
Work = Callable[["Tx"], Any]

# How often (seconds) the head mark beside the journal follows the head: a
# journal put back that is older than this is seen as replaced.
MARK_EVERY = 5.0

# Bounds one transaction, so one slow batch cannot hold every till's answer.
MAX_BATCH = 500

# A long write (a catalogue import, head office's changes) is cut into slices that
# each hold the writer about this long: a till's scan queued behind it waits for one
# slice, then goes alone (issue 12: a 20,000-price change stalled scans 0.7 s). With
# its commit a 25 ms slice held the writer 30-70 ms: scans during a 20,000-price import
# reached 83-118 ms (six runs), 78 ms at 15 ms, the import as long (7.9 s, 7.0-9.1 before).
SLICE_SECONDS = 0.015
FIRST_SLICE = 50
MOST_IN_A_SLICE = 2000


def _weighed_part(rest: Iterator[Item], size: int,
                  weight: Callable[[Item], int] | None) -> list[Item]:
    """The next items of `rest` weighing `size` together (at least one, however heavy)."""
    if weight is None:
        return list(itertools.islice(rest, size))
    part: list[Item] = []
    total = 0
    for item in rest:
        part.append(item)
        total += max(1, weight(item))
        if total >= size:
            break
    return part


PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # FULL: the WAL is fsync'd at every commit, so a commit survives power loss.
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the journal's settings, owned by the calling thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def row_event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    """An event from a row of EVENT_COLUMNS."""
    origin, seq, event_id, time, type_, body, prev_hash, hash_, sig = tuple(row)
    return Event(origin, seq, event_id, time, type_, orjson.loads(body), prev_hash, hash_, sig)


class SigningKeyChanged(Exception):
    """A journal given its origin whose first event certifies another key than the one given."""


class JournalStopped(Exception):
    """The journal refuses writes: its origin clashed, or it is closed."""


class DiskFull(EdgeError):
    """The disk holding the journal is full: this write was refused, nothing of it kept.

    Unlike an origin clash, not fatal: nothing was acknowledged (the whole
    batch was rolled back before anyone was told "done"), the node keeps
    serving, and the next write that fits, once space is freed, goes through
    with no restart. A till is told `disk_full` and keeps the sale.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(DISK_FULL, "the node's disk is full: this was not recorded (nothing "
                                    "was changed); keep the sale on the till and tell store IT "
                                    f"to free space ({detail})")


# Free space under which a disk that filled up is still called full: a small
# write may fit in the meantime, a day of sales will not.
ROOM_AGAIN = 1024 * 1024  # bytes


def has_room(folder: Path) -> bool:
    try:
        disk = os.statvfs(folder)
    except OSError:
        return True  # cannot tell: the commit that just went through says so
    return disk.f_bavail * disk.f_frsize >= ROOM_AGAIN


def is_disk_full(error: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full"), or the OS's ENOSPC / EDQUOT."""
    if isinstance(error, sqlite3.Error):
        return (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


class Journal:
    """The node's SQLite file: one group-committing writer thread, one reader.

    With no `origin` given, the journal claims the origin its data folder
    writes when it opens (and a new one if the folder was restored or copied,
    or its signing key changed: `rotation` then says why); tests pass one to
    make bare journals. `trust` (set before `open`): the node's signing key,
    and the store CA every other origin's key must be certified by.
    """

    def __init__(self, path: Path, origin: str | None = None,
                 trust: SigningIdentity | None = None) -> None:
        self.path = path
        self.origin = origin or ""
        self.trust = trust
        self.keys = OriginKeys()  # each origin's certified key, read once
        self._not_vouched_said: set[str] = set()  # origins whose unvouched events were logged
        # Unsigned events below a vouched head, until their run reaches it (h30).
        self.staged = StagedUnsigned()
        self._claims_origin = origin is None
        self.head_mark: HeadMark | None = None  # kept beside the journal (datafolder.py)
        self.head_marked_at = 0.0
        self._seen_own: str | None = None  # a peer showed us our own origin: stop after commit
        self.rotation: dict[str, Any] | None = None
        self.head = ChainHead()
        # Set once the journal refuses writes for good (its origin clashed).
        self.stopped: str | None = None
        # Since when (UTC, ISO) the last commit failed for want of disk space; None
        # once one fits again. Shown on /healthz, `edge status` and to systemd.
        self.disk_full_since: str | None = None
        self.on_stopped: Callable[[str], None] | None = None
        # None asks the writer to finish what is queued and stop.
        self._writes: asyncio.Queue[tuple[Work, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._listeners: list[Listener] = []
        self._writer_task: asyncio.Task[None] | None = None
        self._writer_db: sqlite3.Connection | None = None
        self._reader_db: aiosqlite.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        # Jobs that open a connection of their own to the file (see with_own_connection).
        self._own_connections = ThreadPoolExecutor(max_workers=2,
                                                   thread_name_prefix="journal-own-connection")
        self.commits = 0
        self.committed_events = 0
        self.checkpointer = Checkpointer(self.path)

    @property
    def identity(self) -> SigningIdentity:
        if self.trust is None:
            raise RuntimeError("this journal has no signing key (Journal.trust)")
        return self.trust

    async def open(self) -> None:
        if self.trust is None:  # it signs what it writes, and checks what it is sent
            raise RuntimeError("a journal opens with its node's signing key (Journal.trust)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer_db = await self._in_writer(self._open_writer)
            await self.checkpointer.open()
            self._reader_db = await aiosqlite.connect(self.path, isolation_level=None)
            self._reader_db.row_factory = sqlite3.Row
            for pragma in PRAGMAS:
                await self._reader_db.execute(pragma)
        except BaseException:
            await self.close()
            raise
        self._writer_task = asyncio.create_task(self._write_loop(), name="journal-writer")

    def _open_writer(self) -> sqlite3.Connection:
        db = connect(self.path)
        # Never in a commit a till waits for: the checkpointer's thread does it.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            migrate(db)
            if self._claims_origin:
                claim_origin(self, db)
            elif key_change(self, db, self.origin):
                raise SigningKeyChanged(f"origin {self.origin} was certified with another "
                                        "signing key (or before events were signed)")
            else:
                self.head = stored_head(db, self.origin)
                db.execute("BEGIN IMMEDIATE")
                try:
                    vouch_for_unsigned(self, db)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except BaseException:
            db.close()
            raise
        self.head = stored_head(db, self.origin)
        return db

    def note_not_vouched(self, origin: str, why: str) -> None:
        """Say once per origin (per run) why its events from before signing are held back."""
        if origin not in self._not_vouched_said:
            self._not_vouched_said.add(origin)
            log.warning("%s", why)

    async def _in_writer(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def with_own_connection(self, function: Callable[..., T], *args: Any) -> T:
        """Run off the loop a job that opens its own connection to the database.

        `close` waits for these before it lets the checkpointer close its descriptor,
        which drops every POSIX lock the process holds on the file, theirs included.
        """
        return await asyncio.get_running_loop().run_in_executor(
            self._own_connections, function, *args)

    async def close(self) -> None:
        """Commit and answer every write already asked for, then close."""
        await asyncio.get_running_loop().run_in_executor(None, self._own_connections.shutdown)
        if self._writer_task:
            self._writes.put_nowait(None)
            await self._writer_task
            self._writer_task = None
        if self._writer_db is not None:
            try:
                await self._in_writer(self._update_mark, True)
            except OSError as error:  # a full disk: the mark lags, which is safe
                log.warning("could not update the head mark beside the journal: %s", error)
            await self._in_writer(self._writer_db.close)
            self._writer_db = None
        self._thread.shutdown(wait=True)
        if self._reader_db is not None:
            await self._reader_db.close()
            self._reader_db = None
        # Last: it closes a descriptor of the file, which drops the process's locks on it.
        await self.checkpointer.close()

    def troubles(self) -> dict[str, str | None]:
        """What stands in the way of its writes, for /healthz and systemd's status line:
        a full disk (since when), a failed write-back (why: the node needs a restart)."""
        return {"disk_full_since": self.disk_full_since,
                "write_back_failed": self.checkpointer.failed}

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each batch of events once it is committed."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def write(self, work: Callable[[Tx], T]) -> T:
        """Run `work` (in the writer thread) in a transaction; return once it is durable."""
        if self.stopped:
            raise JournalStopped(self.stopped)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.put_nowait((work, future))
        return await future

    async def write_when_there_is_room(self, work: Callable[[Tx], T], waiting: str) -> T:
        """`write`, waiting for room while the disk is full (logging `waiting` once): what a
        device did must be recorded as it happened, never guessed at a restart."""
        said = False
        while True:
            try:
                return await self.write(work)
            except DiskFull:
                if not said:
                    log.warning("%s", waiting)
                    said = True
                await asyncio.sleep(1.0)

    async def write_in_slices(self, items: Iterable[Item], write: Callable[[Tx, list[Item]], T],
                              weight: Callable[[Item], int] | None = None) -> list[T]:
        """`write(tx, part)` for consecutive parts of `items`, one transaction each, sized
        from the last one's time so that each holds the writer about SLICE_SECONDS.

        `items` is read a part at a time (a stream keeps memory bounded). Each part is
        committed on its own: a crash keeps the parts written so far, so `write` must be
        one the rest can follow later (events in chain order, an import that writes only
        what is still missing). `weight`: what an item costs, in units of the lightest
        (head office's batch: its products); slices are sized in those units, so a first
        slice of FIRST_SLICE is never fifty batches of a hundred products (h68).
        """
        results: list[T] = []
        rest, size = iter(items), FIRST_SLICE
        while part := _weighed_part(rest, size, weight):
            def timed(tx: Tx, part: list[Item] = part) -> tuple[T, float]:
                began = time.perf_counter()
                return write(tx, part), time.perf_counter() - began

            result, took = await self.write(timed)
            results.append(result)
            done = len(part) if weight is None else sum(max(1, weight(item)) for item in part)
            size = max(1, min(MOST_IN_A_SLICE, int(done * SLICE_SECONDS / max(took, 1e-6))))
        return results

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[Work, asyncio.Future[Any]]] = []
            item = await self._writes.get()
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if stopping or self._writes.empty() or len(batch) >= MAX_BATCH:
                    break
                item = self._writes.get_nowait()
            if batch:
                await self._run_batch(batch)

    async def _run_batch(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        if self.stopped:
            for _, future in batch:
                if not future.done():
                    future.set_exception(JournalStopped(self.stopped))
            return
        try:
            outcomes, committed = await self._in_writer(
                self._commit_batch, [work for work, _ in batch]
            )
        except OriginClash as clash:
            await self._stop_for_good(str(clash))
            outcomes = [(None, JournalStopped(self.stopped))] * len(batch)
            committed = []
        except Exception as error:
            if is_disk_full(error):
                # Not fatal (an origin clash is): the batch was rolled back whole, so
                # nobody is told "done" and nothing acknowledged is lost; each
                # caller gets `disk_full`, and the next batch tries again.
                self._note_disk_full(error)
                outcomes = [(None, DiskFull(str(error)))] * len(batch)
            else:
                log.exception("journal commit failed")
                outcomes = [(None, RuntimeError(f"journal commit failed: {error}"))] * len(batch)
            committed = []
        else:
            self.commits += 1
            self.committed_events += len(committed)
            self.checkpointer.after_commit()
            if self.disk_full_since is not None and has_room(self.path.parent):
                log.warning("the disk has room again: the journal writes again (it was full "
                            "since %s)", self.disk_full_since)
                self.disk_full_since = None
        if self._seen_own and not self.stopped:
            # What was committed with it stays acknowledged; nothing after it is.
            await self._stop_for_good(f"a peer holds an event of this node's origin that it "
                                      f"never wrote ({self._seen_own}): a copy of this data "
                                      "folder may be running elsewhere")
        for (_, future), (result, error) in zip(batch, outcomes, strict=True):
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

    def _commit_batch(
        self, batch: list[Work]
    ) -> tuple[list[tuple[Any, BaseException | None]], list[Event]]:
        """In the writer thread: every write of the batch, one commit."""
        db = self._writer_db
        outcomes: list[tuple[Any, BaseException | None]] = []
        committed: list[Event] = []
        head_at_start = self.head
        db.execute("BEGIN IMMEDIATE")
        try:
            for work in batch:
                tx = Tx(self, db)
                head_before = self.head
                db.execute("SAVEPOINT work")
                try:
                    result = work(tx)
                except OriginClash:
                    raise  # the whole batch is rolled back: nothing of it is acknowledged
                except Exception as error:
                    if is_disk_full(error):
                        # SQLite may already have rolled the whole transaction back:
                        # the batch is lost as a whole (see below), never half kept.
                        raise
                    db.execute("ROLLBACK TO work")
                    db.execute("RELEASE work")
                    self.keys.forget()
                    if isinstance(error, OwnOriginSeen):
                        self._seen_own = str(error)
                    self.head = head_before
                    outcomes.append((None, error))
                else:
                    db.execute("RELEASE work")
                    outcomes.append((result, None))
                    committed.extend(tx.events)
            db.execute("COMMIT")
        except BaseException:
            # Lost as a whole: nobody was told "done", so nothing acknowledged
            # is lost. The chain head goes back to what is on disk.
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.head = head_at_start
            self.keys.forget()
            raise
        try:
            self._update_mark(False)
        except OSError as error:
            if not is_disk_full(error):
                log.exception("could not update the head mark beside the journal")
            else:
                # A lagging mark is safe (it only ever trails the journal); try again
                # in MARK_EVERY, not at every commit, and in one line.
                self.head_marked_at = time.monotonic()
                log.warning("disk full: the head mark beside the journal lags behind (%s)",
                            error)
        return outcomes, committed

    def _note_disk_full(self, error: BaseException) -> None:
        """One line in the log when the disk fills (not a traceback per refused sale)."""
        if self.disk_full_since is None:
            self.disk_full_since = utc_now()
            log.error("disk full: the journal %s cannot grow (%s); sales are refused with "
                      "disk_full until space is freed (nothing acknowledged is lost)",
                      self.path, error)

    def _update_mark(self, closing: bool) -> None:
        """In the writer thread, after a commit: keep the head mark a few seconds behind."""
        mark = self.head_mark
        if mark is None or self.head.seq <= mark.head or self.stopped:
            return
        now = time.monotonic()
        if closing or now - self.head_marked_at >= MARK_EVERY:
            self.head_mark = HeadMark(mark.origin, mark.tokens, self.head.seq)
            write_head_mark(self.path.parent, self.head_mark)
            self.head_marked_at = now

    async def _stop_for_good(self, why: str) -> None:
        """Refuse every write from now on, and make the next start take a new origin."""
        if self.stopped:
            return
        self.stopped = f"this node stopped writing: {why}"
        log.critical("origin %s clashed (%s): refusing every write; the node must restart "
                     "and will continue under a new origin", self.origin, why)

        def fence() -> None:
            self._writer_db.execute(  # type: ignore[union-attr]
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('origin_fenced', ?)", (why,))

        try:
            await self._in_writer(fence)
        except Exception:
            log.exception("could not record the clash; the next start checks again")
        if self.on_stopped is not None:
            self.on_stopped(self.stopped)

    async def read_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self._reader_db.execute_fetchall(sql, bind_params(params))
        return next(iter(rows), None)  # type: ignore[arg-type]

    async def read_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return list(await self._reader_db.execute_fetchall(sql, bind_params(params)))  # type: ignore[arg-type]

    async def read_in_snapshot(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """`read(db)` in the reader's thread, all its statements in one read snapshot.

        For answers whose parts must agree (a version and the rows sent with it).
        aiosqlite runs one function at a time in its thread, so nothing else
        reads on that connection meanwhile: keep `read` short.
        """
        reader = self._reader_db

        def in_snapshot() -> T:
            db: sqlite3.Connection = reader._conn  # type: ignore[union-attr]
            db.execute("BEGIN")
            try:
                return read(db)
            finally:
                db.execute("COMMIT")

        return await reader._execute(in_snapshot)  # type: ignore[union-attr]

    async def events(self, origin: str | None = None) -> AsyncIterator[Event]:
        """Every event, per origin in seq order."""
        where, params = ("WHERE origin = ?", (origin,)) if origin else ("", ())
        async with self._reader_db.execute(
            f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY origin, seq", params
        ) as cursor:
            async for row in cursor:
                yield row_event(row)

    async def version_vector(self) -> dict[str, int]:
        """{origin: last seq held here}: what a peer needs to tell what we lack."""
        rows = await self.read_all("SELECT origin, last_seq FROM origins")
        return {row["origin"]: row["last_seq"] for row in rows}

    async def meta(self, key: str) -> str | None:
        row = await self.read_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None


def folder_trust(data_dir: Path) -> SigningIdentity:
    """The signing key and store CA in a data folder's `tls/` (edge/trust/folder.py).

    TrustProblem, in plain words, when the folder has none (a node makes the
    demo store's at its first start; a real store's come from `edge tls`).
    """
    from edge.trust.certificates import load_cert
    from edge.trust.folder import CA_CERT, TrustFolder, TrustProblem

    folder = TrustFolder(data_dir)
    try:
        ca_cert = load_cert((folder.path / CA_CERT).read_bytes())
    except (OSError, ValueError) as error:
        raise TrustProblem(f"cannot read the store CA in {folder.path} ({error}): start the "
                           "node once (demo), or run `edge tls init` / `edge tls join`") from None
    store = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return folder.load(str(store[0].value) if store else "")


@contextlib.asynccontextmanager
async def local_journal(data_dir: Path, database: Path, what: str,
                        trust: SigningIdentity | None = None) -> AsyncIterator[Journal]:
    """The folder's journal for a command run while no node runs (locked as a node would).

    Raises FolderInUse when a node (or another command) holds the folder: then
    the command must ask the running node instead. It signs what it writes with
    the folder's key (`trust`, else the one in `<data>/tls/`).
    """
    lock = FolderLock(data_dir)
    lock.acquire(what)
    try:
        journal = Journal(database, trust=trust or folder_trust(data_dir))
        await journal.open()
        try:
            write_node_id(data_dir, journal.origin)
            yield journal
        finally:
            await journal.close()
    finally:
        lock.release()
