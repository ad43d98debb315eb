"""A catch-up yields to the tills: it takes the node's idle time, not a scan's.

A till's command (a scan, a line, a sale) is answered in about a millisecond;
one catch-up batch (an SQLite read in the reader's thread, then a frame to
send) costs about as much, on the same cores. Measured during a 1,000,000-event
catch-up, the slowest scans were those that landed while a batch was being
read (six times more often than chance), which put the scans' p99 at 1.5x
before.

So the till websocket marks each command with `busy()`, and before each read
and each send of a catch-up batch the link waits for `quiet()`: no command in
flight, and none answered in the last QUIET_AFTER (a till often sends the
next command at once: a scan, then its line). Batches are small, so a command
that lands mid-batch waits for little. A stream of commands that never
pauses (a stress test, a till gone mad) cannot starve a catch-up: past
MAX_WAIT it goes on anyway, one batch, then yields again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_AFTER = 0.003  # seconds after a till's answer before catch-up work resumes
MAX_WAIT = 0.1  # the longest one catch-up step (a read, a send) waits for the tills


class TillActivity:
    """Whether a till command is in flight here, or was answered a moment ago."""

    def __init__(self, quiet_after: float = QUIET_AFTER, max_wait: float = MAX_WAIT) -> None:
        self.quiet_after = quiet_after
        self.max_wait = max_wait
        self.in_flight = 0
        self.last_answered = float("-inf")
        self._idle: list[asyncio.Future[None]] = []

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Around one till command, from its arrival to its answer."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.last_answered = time.monotonic()
            if self.in_flight == 0:
                waiters, self._idle = self._idle, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    def is_quiet(self) -> bool:
        return (self.in_flight == 0
                and time.monotonic() - self.last_answered >= self.quiet_after)

    async def quiet(self) -> bool:
        """Return once the tills are quiet (or after MAX_WAIT); True if it had to wait."""
        if self.is_quiet():
            return False
        deadline = time.monotonic() + self.max_wait
        while not self.is_quiet():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.in_flight:
                waiter = asyncio.get_running_loop().create_future()
                self._idle.append(waiter)
                try:
                    await asyncio.wait({waiter}, timeout=left)
                finally:
                    if waiter in self._idle:
                        self._idle.remove(waiter)
            else:
                since = time.monotonic() - self.last_answered
                await asyncio.sleep(min(self.quiet_after - since, left))
        return True
