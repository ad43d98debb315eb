"""The till websocket: small registered commands with declared arguments.

A command is an async handler registered with `@command(type, Args)`; its
arguments are checked against the `Args` dataclass before it runs. Handlers
just raise `EdgeError`; `Connection.handle` is the one place that turns any
failure into an error reply, so the connection always keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from edge import messages
from edge.messages import EdgeError
from edge.schema import parse

if TYPE_CHECKING:
    from edge.node import Node

log = logging.getLogger(__name__)

# Room for the largest command (an offline sale of 500 lines), not for abuse.
MAX_MESSAGE_BYTES = 1024 * 1024
# What a till may leave unread (replies and pushed events) before the node
# hangs up on it: a catalogue page of 2,000 products is about 0.5 MiB, so a
# till that reads never comes near; one that never reads costs at most this.
MAX_UNSENT_BYTES = 4 * 1024 * 1024
MAX_UNSENT_MESSAGES = 2000
# What all of a node's tills together may leave unread: many tills each under
# their own bound must not add up to more (the one with most unread goes).
NODE_UNSENT_BYTES = 64 * 1024 * 1024
# Said to a till closed for not reading (it may come back and read this time).
CLOSE_UNREAD = WSCloseCode.POLICY_VIOLATION
CLOSE_SECONDS = 2.0  # for the close frame to go out before the socket is cut
# An error reply names what it refused, but never echoes more than this of it.
MAX_ECHO = 64
# A socket that has not shown a till's token by then is closed: sockets that
# never authenticate would otherwise hold the node's connections for good
# (they are "being served", so never evicted as idle).
AUTH_WITHIN = 5.0  # seconds
# Pushes one till follows at once (events, catalogue, printers): a handful in use.
MAX_SUBSCRIPTIONS = 16
CLOSE_NO_AUTH = 4003
Access = Literal["anyone", "till", "cashier"]
Handler = Callable[["Connection", Any], Awaitable[Any]]


@dataclass(frozen=True)
class NoArgs:
    pass


@dataclass(frozen=True)
class Command:
    type: str
    args: type
    handler: Handler
    access: Access
    # Answered beside the till's next commands, not before them: a long read (a page
    # of the catalogue) must not hold up a scan sent after it. Such a handler reads
    # only its arguments: `conn.current_id` stays the other commands' (a subscription's
    # id, read after an await, must never become the page's).
    aside: bool = False


COMMANDS: dict[str, Command] = {}


@dataclass(frozen=True)
class AsBinary:
    """A handler's result sent in a binary frame: the same JSON message, as UTF-8
    bytes. A browser hands a large one (a catalogue page) to its worker as it came,
    without decoding it on the page's main thread, where the cashier's scans run."""

    result: Any


def command(
    type_: str, args: type = NoArgs, *, access: Access = "cashier", aside: bool = False
) -> Callable[[Handler], Handler]:
    """Register a till command. `access` says who may call it; `aside`: see Command."""

    def register(handler: Handler) -> Handler:
        COMMANDS[type_] = Command(type_, args, handler, access, aside)
        return handler

    return register


class UnsentBudget:
    """The bytes every till connection of a node has queued and not yet sent."""

    def __init__(self, max_bytes: int = NODE_UNSENT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.connections: set[Connection] = set()

    def over(self) -> bool:
        return self.bytes > self.max_bytes

    def most_behind(self) -> Connection | None:
        return max(self.connections, key=lambda c: c.unsent_bytes, default=None)


class Outbox:
    """A connection's messages not yet sent, in order; bounded in bytes and in count."""

    def __init__(self, max_bytes: int = MAX_UNSENT_BYTES,
                 max_messages: int = MAX_UNSENT_MESSAGES,
                 budget: UnsentBudget | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self.budget = budget or UnsentBudget()
        self.bytes = 0
        self._items: deque[tuple[bytes, bool]] = deque()  # (message, in a binary frame)
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, data: bytes, binary: bool = False) -> bool:
        """Queue `data` (`binary`: for a binary frame); False (nothing queued) if that
        would pass the bound.

        One message alone always fits: a large reply to a till that reads is fine.
        """
        if self._closed:
            return True  # the connection is going: nothing more is sent, nothing kept
        if self._items and (len(self._items) >= self.max_messages
                            or self.bytes + len(data) > self.max_bytes):
            return False
        self._items.append((data, binary))
        self._count(len(data))
        self._ready.set()
        return True

    def _count(self, change: int) -> None:
        self.bytes += change
        self.budget.bytes += change

    async def get(self) -> tuple[bytes, bool] | None:
        """The next message and whether it goes in a binary frame; None once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        data, binary = self._items.popleft()
        self._count(-len(data))
        return data, binary

    def close(self, *, drop: bool = False) -> None:
        """No more messages; `drop`: forget those waiting too (they will never be read)."""
        self._closed = True
        if drop:
            self._items.clear()
            self._count(-self.bytes)
        self._ready.set()


class Connection:
    """One till's websocket: who is on it, and its subscriptions."""

    def __init__(self, node: Node, ws: web.WebSocketResponse,
                 abort: Callable[[], None] | None = None,
                 on_authenticated: Callable[[], None] | None = None) -> None:
        self.node = node
        self.ws = ws
        self.till: dict[str, Any] | None = None
        self.cashier: dict[str, Any] | None = None
        self.subscriptions: dict[int, Callable[[], None]] = {}
        # The node's own watches on this connection (a revoked token): name -> stop.
        self.watches: dict[str, Callable[[], None]] = {}
        self.current_id = 0
        self._budget: UnsentBudget = node.unsent
        self._outbox = Outbox(budget=self._budget)
        self._aside: asyncio.Task[None] | None = None  # a command answered aside (Command)
        self._abort = abort  # cuts the socket (its transport's abort)
        self._on_authenticated = on_authenticated
        self._closing: asyncio.Task[None] | None = None

    def subscribe(self, stop: Callable[[], None]) -> None:
        """Keep `stop` under this command's id until unsubscribed or the till goes.

        A resend of the same id replaces (and stops) what it held: nothing is left
        listening for a connection that is gone. Bounded: a till that keeps asking
        without unsubscribing is refused, with its listener stopped.
        """
        older = self.subscriptions.pop(self.current_id, None)
        if older is not None:
            older()
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            stop()
            raise EdgeError(messages.TOO_MANY_SUBSCRIPTIONS,
                            f"a till follows at most {MAX_SUBSCRIPTIONS} subscriptions at once: "
                            "unsubscribe_events first")
        self.subscriptions[self.current_id] = stop

    @property
    def who(self) -> str:
        return f"till {self.till['code']}" if self.till else "an unauthenticated till"

    def send(self, message: dict[str, Any], binary: bool = False) -> None:
        """Queue a message; one writer keeps replies and pushed events in order.

        A till that does not read what it is sent is hung up on once its
        unread messages pass the bound: it would otherwise grow the node's
        memory without end (issue 9, point 5).
        """
        if not self._outbox.put(orjson.dumps(message), binary):
            self._drop_for_unread("")
        while self._budget.over() and (behind := self._budget.most_behind()) is not None:
            behind._drop_for_unread(f" while the node's tills together left over "
                                    f"{self._budget.max_bytes // 2**20} MiB unread")

    @property
    def unsent_bytes(self) -> int:
        return self._outbox.bytes

    def _drop_for_unread(self, why: str) -> None:
        self._budget.connections.discard(self)
        if self._closing is None:
            log.warning("%s left %d messages (%d KiB) unread%s: connection closed (code %d)",
                        self.who, len(self._outbox), self._outbox.bytes // 1024, why,
                        CLOSE_UNREAD)
            self.hang_up(CLOSE_UNREAD, b"replies not read")
        self._outbox.close(drop=True)

    def hang_up(self, code: int, why: bytes) -> None:
        """Close the connection now, from anywhere (a journal listener, the outbox)."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(code, why), name="ws-hang-up")

    async def _close(self, code: int, why: bytes) -> None:
        """Say why (if the till reads at all), then cut the socket with whatever it holds."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.ws.close(code=code, message=why)
        if self._abort is not None:
            self._abort()

    async def _write_loop(self) -> None:
        try:
            while (item := await self._outbox.get()) is not None:
                if self.ws.closed:
                    return
                data, binary = item
                try:
                    if binary:
                        await self.ws.send_bytes(data)
                    else:
                        await self.ws.send_str(data.decode())
                except ConnectionError as error:  # reset, or lost while draining
                    log.info("%s: connection lost while sending to it (%s)", self.who,
                             error.strerror or error)
                    return
        finally:
            self._outbox.close(drop=True)

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        self._budget.connections.add(self)
        deadline = asyncio.get_running_loop().call_later(AUTH_WITHIN, self._auth_overdue)
        try:
            async for msg in self.ws:
                if self._closing is not None:
                    break  # hung up on: what it still sends is not read
                if msg.type == WSMsgType.TEXT:
                    if self._aside is None and _runs_aside(msg.data):
                        # One at a time, beside the rest; a second waits its turn inline.
                        self._aside = asyncio.create_task(self._handle_aside(msg.data),
                                                          name="ws-aside")
                        continue
                    await self.handle(msg.data)
                    if self.till is not None and self._on_authenticated is not None:
                        self._on_authenticated()
                        self._on_authenticated = None
                elif msg.type == WSMsgType.BINARY:
                    self.send(messages.error_message(
                        None, messages.INVALID_MESSAGE, "messages are JSON text, not binary"
                    ))
                elif msg.type == WSMsgType.ERROR:
                    log.info("till websocket closed with error: %s", self.ws.exception())
        finally:
            self._budget.connections.discard(self)
            deadline.cancel()
            if self._aside is not None:
                await self._aside
            for unsubscribe in [*self.subscriptions.values(), *self.watches.values()]:
                unsubscribe()
            self.subscriptions.clear()
            self.watches.clear()
            self._outbox.close()
            await writer
            if self._closing is not None:
                await self._closing

    async def _handle_aside(self, raw: str) -> None:
        try:
            await self.handle(raw)
        finally:
            self._aside = None

    def _auth_overdue(self) -> None:
        if self.till is None:
            log.info("a till socket showed no valid token within %.0f s: closed", AUTH_WITHIN)
            self.hang_up(CLOSE_NO_AUTH, b"authenticate first")

    async def handle(self, raw: str) -> None:
        msg_id, message = None, None
        try:
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise EdgeError(messages.INVALID_JSON, "the message is not valid JSON") from None
            if isinstance(message, dict) and _is_int(message.get("id")):
                msg_id = message["id"]
            if msg_id is None or not isinstance(message.get("type"), str):
                raise EdgeError(
                    messages.INVALID_MESSAGE,
                    "a message is a JSON object with an integer 'id' and a string 'type'",
                )
            cmd = COMMANDS.get(message["type"])
            if cmd is None:
                raise EdgeError(messages.UNKNOWN_COMMAND,
                                f"unknown command {_echo(message['type'])!r}")
            if not cmd.aside:  # (an aside command may run while another one reads it)
                self.current_id = msg_id
            self._check_access(cmd)
            args = parse(cmd.args, message, plain_text=True)
            self.node.metrics.commands += 1
            # Marked busy: a peer's catch-up waits for the answer (replication/pacing.py).
            with self.node.peers.till_activity.busy():
                result = await cmd.handler(self, args)
                if isinstance(result, AsBinary):
                    self.send(messages.result_message(msg_id, result.result), binary=True)
                else:
                    self.send(messages.result_message(msg_id, result))
        except EdgeError as error:
            self.node.metrics.command_errors += 1
            self.send(messages.error_message(msg_id, error.code, error.message, error.data))
        except Exception:
            # The command's name only: its arguments may be a PIN or a token.
            kind = message.get("type") if isinstance(message, dict) else None
            log.exception("command %.64r (id %s) failed", kind, msg_id)
            self.node.metrics.command_errors += 1
            self.send(messages.error_message(
                msg_id, messages.INTERNAL_ERROR, "internal error: nothing was changed"
            ))

    def _check_access(self, cmd: Command) -> None:
        if cmd.access == "anyone":
            return
        if self.till is None:
            raise EdgeError(messages.UNAUTHORIZED, "authenticate the till first ('auth')")
        if cmd.access == "cashier" and self.cashier is None:
            raise EdgeError(messages.NOT_LOGGED_IN, "a cashier must log in first")


def _runs_aside(raw: str) -> bool:
    """Is this message a command answered aside (Command.aside)? A peek at its type."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    kind = message.get("type") if isinstance(message, dict) else None
    cmd = COMMANDS.get(kind) if isinstance(kind, str) else None
    return cmd is not None and cmd.aside


def _echo(text: str) -> str:
    """What a reply repeats of a client's text: its start only."""
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

