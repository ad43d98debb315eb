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
restarting it.

A write-back that fails is final for this process: SQLite already counts the
copied pages as in the file, and Linux marks pages whose write failed clean and
reports the error once, so a later sync would "succeed" without them. The log
is then the only good copy, and stays whole until the node restarts (whose first
open reads it back whole and copies it again): the pin is never let go, and a
lock of the file's own descriptor (an OFD lock on SQLite's shared bytes) keeps
the process's last connection from deleting the log as it closes. The node
sells on meanwhile, its log growing, and says it needs a restart (`failed`,
on /healthz and `edge status`).

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
import fcntl
import logging
import os
import sqlite3
import struct
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
# SQLite's lock bytes in the database file (os_unix.c): a read lock on its shared range
# keeps any connection from taking the exclusive lock it needs to delete the log.
SHARED_FIRST, SHARED_SIZE = 0x40000000 + 2, 510


class Checkpointer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = 0
        self._db: sqlite3.Connection | None = None
        self._pin: sqlite3.Connection | None = None
        self._fd: int | None = None  # the file's, for its write-back: closed last (above)
        # Why the file could not be written back: the node needs a restart (above).
        self.failed: str | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-checkpoint")
        self._running: asyncio.Task[None] | None = None
        self._last = 0.0
        self._failing = False

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)

    def _connect(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Its copies are synced by write_back, not by SQLite (the module's docstring). OFF
        # also skips syncing the log before copying it: every writer syncs it at each
        # commit (synchronous = FULL, journal/store.py), and must go on doing so.
        self._db.execute("PRAGMA synchronous = OFF")
        self._pin = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._pin.execute("PRAGMA synchronous = FULL")  # should it close last (below)
        self._fd = os.open(self.path, os.O_RDONLY)

    def after_commit(self) -> None:
        """On the event loop, after a commit: start a checkpoint unless one ran lately."""
        if self._db is None or self._running is not None or self.failed \
                or time.monotonic() - self._last < CHECKPOINT_EVERY:
            return
        self._running = asyncio.get_running_loop().create_task(self.checkpoint(),
                                                               name="journal-checkpoint")

    async def checkpoint(self) -> None:
        """One checkpoint now, in the thread (after_commit starts them on its own)."""
        if self.failed:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._passive)
            if not self.failed:
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
        self._pin_log()
        try:
            _busy, logged, _copied = self._db.execute(
                "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:  # it counts nothing copied until it has copied all it could
            self._let_go()
            raise
        if logged > 0:
            try:
                self.write_back()
            except OSError as error:
                self._keep_log_whole(error)
                return
        self._let_go()  # only once the file has what it copied

    def _keep_log_whole(self, error: OSError) -> None:
        """The file may lack what was copied into it: the log stays whole (module doc)."""
        assert self._fd is not None
        self.failed = (f"the journal's database file could not be written to disk "
                       f"({error}); it sells on, its log keeping everything: restart the "
                       f"node and check the disk")
        log.error("%s", self.failed)
        lock = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, SHARED_FIRST, SHARED_SIZE, 0)
        try:
            fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, lock)
        except OSError as refused:  # an old kernel: the last connection may delete the log
            log.error("could not lock the journal's file to keep its log: %s", refused)

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

    def _let_go(self) -> None:
        assert self._pin is not None
        self._pin.execute("ROLLBACK")

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
            # Whichever connection of the process closes last copies the log back as it
            # closes, with its own setting: this one's is set back.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.close()
            self._db = None
        if self.failed:
            return  # the pin and the file's lock stay until the process ends (module doc)
        if self._pin is not None:
            self._pin.close()
            self._pin = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
