"""The journal's WAL checkpoints, in a thread of their own, never inside a commit.

SQLite copies the write-ahead log back into the database file (a checkpoint)
by default in whichever commit passes 1,000 pages of log: that commit, and
the till's sale waiting behind it, then pays for writing those pages to their
places in the file and syncing it. On a million-product database a 20,000-price
change made one commit in a hundred take up to half a second (measured: p90
25 ms, max 507 ms; without: max 5 ms). So the journal's writer never
checkpoints (`wal_autocheckpoint = 0`), and this checkpointer does, PASSIVE
(it waits for no lock and holds none a commit needs), at most once every
CHECKPOINT_EVERY seconds after commits, on a connection and a thread of its
own. A crash between two loses nothing: the log is synced at every commit and
read back at the next open. The disk is still shared: a commit's sync of the
log could queue behind a large checkpoint's sync of the database file: after a
20,000-price change at 1M, a checkpoint's sync took 470-510 ms and the sale
committed meanwhile 204-229 ms, its log's sync waiting for its pages behind the
checkpoint's on the disk (sampled in the kernel: `folio_wait_bit` against
`rq_qos_wait`). So the checkpoint does not sync in one go: it copies the log's
pages into the file unsynced (`synchronous = OFF` on its connection), then
starts their write-back a step of the file at a time, each step's writes done
before the next (`sync_file_range`), and syncs the file at the end: a commit's
sync queues behind one step's writes at most. Until that final sync the log
must not be overwritten, since it still holds the only durable copy: a read
transaction held on the log meanwhile (`_pin_log`) keeps any writer from
restarting it, and a write-back that fails (a disk error) keeps it held until
one succeeds: the log grows meanwhile, and loses nothing.

The write-back needs a descriptor of the file, and closing one drops every
POSIX lock the process holds on that file, SQLite's connections' included
(another process then took the node for gone: a pairing code it wrote was never
seen). So the checkpointer opens one descriptor with the journal and closes it
last, after every connection of the journal (`Journal.close`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0
# A write-back step: a commit's sync waits behind one step's writes at most. With a
# big change's pages scattered over the file, commits during a write-back took p50
# 5-7 / at most 25-33 ms in steps of 64-256 KiB, 11-17 / 41-106 ms in steps of 1 MiB
# (docs/benchmarks.md); each step costs a system call even where nothing is dirty.
WRITE_BACK_STEP = 1 << 18


def _sync_file_range() -> Callable[[int, int, int], None] | None:
    """Linux's sync_file_range(fd, offset, length), waiting for the range's writes;
    None elsewhere (the final sync alone then writes everything back)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    wait_before, write, wait_after = 1, 2, 4  # SYNC_FILE_RANGE_* (linux/fs.h)

    def sync_range(fd: int, offset: int, length: int) -> None:
        if call(fd, offset, length, wait_before | write | wait_after) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    return sync_range


SYNC_RANGE = _sync_file_range()


class Checkpointer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = 0
        self._db: sqlite3.Connection | None = None
        self._pin: sqlite3.Connection | None = None
        self._fd: int | None = None  # the file's, for its write-back: closed last (above)
        self._pinned = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-checkpoint")
        self._running: asyncio.Task[None] | None = None
        self._last = 0.0
        self._failing = False

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)

    def _connect(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Its copies are synced by write_back, not by SQLite (the module's docstring).
        self._db.execute("PRAGMA synchronous = OFF")
        self._pin = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._fd = os.open(self.path, os.O_RDONLY)

    def after_commit(self) -> None:
        """On the event loop, after a commit: start a checkpoint unless one ran lately."""
        if self._db is None or self._running is not None \
                or time.monotonic() - self._last < CHECKPOINT_EVERY:
            return
        self._running = asyncio.get_running_loop().create_task(self.checkpoint(),
                                                               name="journal-checkpoint")

    async def checkpoint(self) -> None:
        """One checkpoint now, in the thread (after_commit starts them on its own)."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._passive)
            self.checkpoints += 1
            self._failing = False
        except (sqlite3.Error, OSError) as error:  # the next tries again; nothing is lost
            if not self._failing:  # once, not every second (a full disk)
                log.warning("could not checkpoint the journal's log (the log grows until "
                            "it can): %s", error)
            self._failing = True
        finally:
            self._last = time.monotonic()
            self._running = None

    def _passive(self) -> None:
        assert self._db is not None
        if not self._pinned:  # still pinned if the last write-back failed
            self._pin_log()
        _busy, logged, _copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if logged > 0:
            self.write_back()
        self._let_go()  # only once the file has what it copied

    def _pin_log(self) -> None:
        """A read transaction on the log: no writer restarts it (overwriting frames a
        power cut would still need) while this reader is in it.

        Taken before the checkpoint, so it reads the log as it is then. Were the log
        wholly copied already, this reader reads the file alone, and no checkpoint
        copies into a file someone reads alone: nothing is then left unsynced.
        """
        assert self._pin is not None
        self._pin.execute("BEGIN")
        try:
            self._pin.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except BaseException:
            self._pin.execute("ROLLBACK")
            raise
        self._pinned = True

    def _let_go(self) -> None:
        assert self._pin is not None
        self._pin.execute("ROLLBACK")
        self._pinned = False

    def write_back(self) -> None:
        """The database file to disk: a step at a time, then synced."""
        assert self._fd is not None
        if SYNC_RANGE is not None:
            size = os.fstat(self._fd).st_size
            for offset in range(0, size, WRITE_BACK_STEP):
                SYNC_RANGE(self._fd, offset, WRITE_BACK_STEP)
        os.fdatasync(self._fd)

    async def close(self) -> None:
        """After every other connection of this process to the file (the module's docstring)."""
        if self._running is not None:
            await self._running
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown(wait=True)

    def _disconnect(self) -> None:
        if self._db is not None:
            # The process's last connection copies the log back as it closes: synced.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.close()
        if self._pin is not None:
            self._pin.close()
        self._db = self._pin = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
