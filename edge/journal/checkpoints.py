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
log can queue behind a large checkpoint's sync of the database file (210 ms
against 610 ms after a 20,000-price change at 1M, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0


class Checkpointer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = 0
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-checkpoint")
        self._running: asyncio.Task[None] | None = None
        self._last = 0.0
        self._failing = False

    async def open(self) -> None:
        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def after_commit(self) -> None:
        """On the event loop, after a commit: start a checkpoint unless one ran lately."""
        if self._db is None or self._running is not None \
                or time.monotonic() - self._last < CHECKPOINT_EVERY:
            return
        self._running = asyncio.get_running_loop().create_task(self._checkpoint(),
                                                               name="journal-checkpoint")

    async def _checkpoint(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._passive)
            self.checkpoints += 1
            self._failing = False
        except sqlite3.Error as error:  # the next one tries again; nothing is lost meanwhile
            if not self._failing:  # once, not every second (a full disk)
                log.warning("could not checkpoint the journal's log (the log grows until "
                            "it can): %s", error)
            self._failing = True
        finally:
            self._last = time.monotonic()
            self._running = None

    def _passive(self) -> None:
        assert self._db is not None
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        if self._running is not None:
            await self._running
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)
