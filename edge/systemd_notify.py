"""Telling systemd how the node stands (`Type=notify`), in a few lines of stdlib.

systemd hands a service a datagram socket in `$NOTIFY_SOCKET` (a path, or an
abstract socket name written with a leading '@') and reads newline-separated
`KEY=value` lines from it: `READY=1` once the node serves (so `systemctl
start` returns only then, and units ordered after edge wait for it),
`STATUS=...` in plain words for `systemctl status edge`, `WATCHDOG=1` at
least every `$WATCHDOG_USEC` (or systemd kills and restarts the node: a hung
event loop is caught), and `STOPPING=1` when it begins to stop.

Without `$NOTIFY_SOCKET` (run by hand, in tests, in the demo) every call is a
no-op. A lost notification is never fatal: the node's work comes first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# How often the plain-words status is refreshed when it changes.
STATUS_EVERY = 5.0  # seconds


def notify(*lines: str) -> bool:
    """Send `KEY=value` lines to systemd; False when not under systemd (or it is gone)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # Linux abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError as error:
        log.debug("could not notify systemd at %s: %s", address, error)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between two WATCHDOG=1, half of what systemd allows; None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None  # no watchdog, or it watches another process (a child of ours)
    try:
        return max(int(usec) / 1_000_000 / 2, 0.01)
    except ValueError:
        return None


class SystemdNotifier:
    """READY, STATUS and the watchdog for one `edge serve`; run `keep_told` supervised."""

    def __init__(self, describe: Callable[[], Awaitable[str]]) -> None:
        self.describe = describe  # the node's state in plain words, for STATUS=
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._last_status: str | None = None

    async def ready(self) -> None:
        if self.enabled:
            notify("READY=1", f"STATUS={await self.describe()}", f"MAINPID={os.getpid()}")

    def stopping(self, why: str = "stopping") -> None:
        if self.enabled:
            notify("STOPPING=1", f"STATUS={why}")

    async def keep_told(self) -> None:
        """Ping the watchdog at half its period and refresh STATUS when it changes.

        The ping comes from the event loop itself: a loop blocked (a stuck
        disk, a runaway computation) stops pinging and systemd restarts the node.
        """
        if not self.enabled:
            return
        every = min(watchdog_interval() or STATUS_EVERY, STATUS_EVERY)
        watchdog = watchdog_interval() is not None
        while True:
            lines = ["WATCHDOG=1"] if watchdog else []
            try:
                status = await self.describe()
            except Exception:  # the watchdog must not wait on a restart's backoff
                log.exception("could not describe the node for systemd")
                status = "running"
            if status != self._last_status:
                lines.append(f"STATUS={status}")
                self._last_status = status
            if lines:
                notify(*lines)
            await asyncio.sleep(every)
