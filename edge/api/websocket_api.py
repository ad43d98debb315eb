"""The till websocket: small registered commands with declared arguments.

A command is an async handler registered with `@command(type, Args)`; its
arguments are checked against the `Args` dataclass before it runs. Handlers
just raise `EdgeError`; `Connection.handle` is the one place that turns any
failure into an error reply, so the connection always keeps working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from aiohttp import WSMsgType, web

from edge import messages
from edge.messages import EdgeError
from edge.schema import parse

if TYPE_CHECKING:
    from edge.node import Node

log = logging.getLogger(__name__)

# Room for the largest command (an offline sale of 500 lines), not for abuse.
MAX_MESSAGE_BYTES = 1024 * 1024
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


COMMANDS: dict[str, Command] = {}


def command(
    type_: str, args: type = NoArgs, *, access: Access = "cashier"
) -> Callable[[Handler], Handler]:
    """Register a till command. `access` says who may call it."""

    def register(handler: Handler) -> Handler:
        COMMANDS[type_] = Command(type_, args, handler, access)
        return handler

    return register


class Connection:
    """One till's websocket: who is on it, and its subscriptions."""

    def __init__(self, node: Node, ws: web.WebSocketResponse) -> None:
        self.node = node
        self.ws = ws
        self.till: dict[str, Any] | None = None
        self.cashier: dict[str, Any] | None = None
        self.subscriptions: dict[int, Callable[[], None]] = {}
        self.current_id = 0
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; one writer keeps replies and pushed events in order."""
        self._outbox.put_nowait(orjson.dumps(message))

    async def _write_loop(self) -> None:
        while (data := await self._outbox.get()) is not None:
            if self.ws.closed:
                return
            await self.ws.send_str(data.decode())

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self.handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.send(messages.error_message(
                        None, messages.INVALID_MESSAGE, "messages are JSON text, not binary"
                    ))
                elif msg.type == WSMsgType.ERROR:
                    log.info("till websocket closed with error: %s", self.ws.exception())
        finally:
            for unsubscribe in self.subscriptions.values():
                unsubscribe()
            self.subscriptions.clear()
            self._outbox.put_nowait(None)
            await writer

    async def handle(self, raw: str) -> None:
        msg_id = None
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
                raise EdgeError(messages.UNKNOWN_COMMAND, f"unknown command {message['type']!r}")
            self.current_id = msg_id
            self._check_access(cmd)
            args = parse(cmd.args, message)
            self.node.metrics.commands += 1
            # Marked busy: a peer's catch-up waits for the answer (replication/pacing.py).
            with self.node.peers.till_activity.busy():
                result = await cmd.handler(self, args)
                self.send(messages.result_message(msg_id, result))
        except EdgeError as error:
            self.node.metrics.command_errors += 1
            self.send(messages.error_message(msg_id, error.code, error.message, error.data))
        except Exception:
            log.exception("command failed: %.200s", raw)
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

