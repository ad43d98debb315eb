"""How many connections the node holds open, and for how long a request may take to arrive.

A shop's network carries whatever a customer's phone sends. Left alone,
aiohttp keeps a connection that never finishes its request head for an hour,
and any number of them: 300 idle sockets used up a 256-descriptor limit and
`/healthz` stopped answering. So:

- **Per client address** (an IPv6 /64 counts as one) at most
  `PER_CLIENT` connections; a further one is closed as soon as it opens.
- **In all** at most what the descriptor limit leaves after a reserve for
  the journal, printers and peers. When full, the oldest connection that
  has not yet sent a whole request makes room, else the oldest idle one
  (between requests); if none, the new one is closed. A till's websocket,
  a peer's link, a request being served are never closed for a newcomer.
- **A request head** must arrive within `HEAD_SECONDS` of the connection
  opening or of the previous answer (aiohttp's keep-alive timer, which it
  arms at both; it also closes idle keep-alive connections), and a request
  body within `BODY_SECONDS` (`read_body_in_time`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from edge.selling.tills import client_key

log = logging.getLogger(__name__)

PER_CLIENT = 32  # a browser till opens about 6 plus its websocket; a peer one or two
RESERVED_FDS = 64  # journal, readers, sync, printers, zeroconf, outgoing peer links
HEAD_SECONDS = 10.0
BODY_SECONDS = 10.0  # the node's request bodies are at most 64 KiB (client_max_size)
MAX_OPEN_FILES = 65536  # the soft limit is raised to the hard one, up to this
BACKLOG = 64  # the listening socket's queue (TCPSite's `backlog`), plenty for a shop


def raise_open_file_limit() -> int:
    """Raise the soft descriptor limit to the hard one (systemd's LimitNOFILE); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return MAX_OPEN_FILES if soft == resource.RLIM_INFINITY else soft


class ConnectionGuard:
    """Counts the server's connections per client address and in all; closes the excess."""

    def __init__(self, per_client: int = PER_CLIENT, total: int | None = None) -> None:
        if total is None:
            open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if open_files == resource.RLIM_INFINITY:
                open_files = MAX_OPEN_FILES
            # asyncio accepts up to BACKLOG sockets in one go before the guard
            # sees any of them: those must fit too, or accept() fails (EMFILE).
            total = max(16, open_files - max(RESERVED_FDS, open_files // 4) - BACKLOG)
        self.per_client = per_client
        self.total = total
        self.refused = 0
        self.evicted = 0
        self._clients: Counter[str] = Counter()
        # Admitted connections, oldest first: handler -> (client, transport).
        self._open: dict[RequestHandler, tuple[str, asyncio.Transport]] = {}
        self._served: set[RequestHandler] = set()  # sent a whole request head at least once
        self._busy: Counter[RequestHandler] = Counter()  # requests being served on each
        # Websockets that have shown no credentials yet: as evictable as idle ones.
        self._untrusted: set[RequestHandler] = set()
        self._last_warning = 0.0

    def install(self, server: web.Server) -> None:
        """Watch `server`'s connections (a runner's `server`, once set up).

        aiohttp tells the server of each connection as it opens and closes
        (`connection_made` / `connection_lost`), before any byte is read:
        the one place to refuse one without a request. It has no hook for
        it, so the two are wrapped on this server object.
        """
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._admit(handler, transport)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            self._forget(handler)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    @contextlib.contextmanager
    def serving(self, handler: Any) -> Iterator[None]:
        """While `handler`'s connection is being served (a websocket: its whole life).

        A connection that has sent no whole request yet, or sits idle
        between requests, is one a newcomer may take the place of.
        """
        if handler not in self._open:
            yield
            return
        self._served.add(handler)
        self._busy[handler] += 1
        try:
            yield
        finally:
            self._busy[handler] -= 1
            if self._busy[handler] <= 0:
                del self._busy[handler]

    def untrusted(self, handler: Any) -> Callable[[], None]:
        """Mark a websocket as not yet authenticated (a newcomer may take its place);
        returns what to call once it is."""
        if handler not in self._open:
            return lambda: None
        self._untrusted.add(handler)
        return lambda: self._untrusted.discard(handler)

    @property
    def open(self) -> int:
        return len(self._open)

    def _admit(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        client = client_key(peer[0] if isinstance(peer, tuple) and peer else None)
        if self._clients[client] >= self.per_client:
            self._refuse(transport, f"{client} holds {self.per_client} connections already")
            return
        if len(self._open) >= self.total and not self._evict_one():
            self._refuse(transport, f"{self.total} connections open, each busy")
            return
        self._open[handler] = (client, transport)
        self._clients[client] += 1

    def _forget(self, handler: RequestHandler) -> None:
        entry = self._open.pop(handler, None)
        self._served.discard(handler)
        self._untrusted.discard(handler)
        self._busy.pop(handler, None)
        if entry is not None:
            self._clients[entry[0]] -= 1
            if self._clients[entry[0]] <= 0:
                del self._clients[entry[0]]

    def _evict_one(self) -> bool:
        """Make room: close the oldest websocket that showed no credentials, else the oldest
        connection that never sent a whole request, else the oldest idle one (between
        requests); False if every one is being served."""
        idle = [handler for handler in self._open if handler not in self._busy]
        victim = next((handler for handler in self._open if handler in self._untrusted),
                      None) or next(
            (handler for handler in idle if handler not in self._served),
            idle[0] if idle else None)
        if victim is None:
            return False
        transport = self._open[victim][1]
        self._forget(victim)
        transport.abort()
        self.evicted += 1
        self._warn(f"{self.total} connections open: closed the oldest idle one "
                   f"({self.evicted} so far)")
        return True

    def _refuse(self, transport: asyncio.Transport, why: str) -> None:
        self.refused += 1
        # Not at once: aiohttp's handler for it has not started yet (Python < 3.12
        # starts it on the next turn), and must find its connection when it does.
        asyncio.get_running_loop().call_soon(transport.abort)
        self._warn(f"connection refused: {why} ({self.refused} refused so far)")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60:  # one line a minute, however hard the flood
            self._last_warning = now
            log.warning("%s", message)


CONNECTIONS = web.AppKey("connections", ConnectionGuard)


@web.middleware
async def read_body_in_time(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Mark the connection as being served; a request body must come within BODY_SECONDS.

    Read here (aiohttp keeps it for the handler): a client that trickles its
    body would otherwise hold the connection and its handler for ever.
    """
    with request.app[CONNECTIONS].serving(request.protocol):
        if request.body_exists:
            try:
                async with asyncio.timeout(BODY_SECONDS):
                    await request.read()
            except TimeoutError:
                raise web.HTTPRequestTimeout(
                    text=f"the request body did not arrive within {BODY_SECONDS:.0f} s"
                ) from None
        return await handler(request)
