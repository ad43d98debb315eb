"""A websocket client in a few lines over a plain socket, for tests that misbehave.

Client libraries read what the node sends in the background and answer its
pings; these tests need a client that sends exactly what it is told
(any Origin or Host header, a flood it never reads, a reset mid-reply).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from typing import Any

TEXT, CLOSE = 0x1, 0x8


class RawWebsocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.next_id = 0

    @classmethod
    async def open(cls, host: str, port: int, path: str = "/api/ws",
                   headers: dict[str, str] | None = None) -> tuple[int, RawWebsocket]:
        """Connect and ask for the upgrade: the HTTP status and the socket."""
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        sent = {"Host": f"{host}:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", **(headers or {})}
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items())
        writer.write(head.encode() + b"\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(answer.split(b" ", 2)[1])
        return status, cls(reader, writer)

    @staticmethod
    def frame(payload: bytes, opcode: int = TEXT) -> bytes:
        """A client frame, masked with a zero key (allowed, and the payload stays as is)."""
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        return header + b"\0\0\0\0" + payload

    def command(self, type_: str, **args: Any) -> bytes:
        self.next_id += 1
        return self.frame(json.dumps({"id": self.next_id, "type": type_, **args}).encode())

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, within: float = 10) -> tuple[int, bytes]:
        """The next frame from the node: (opcode, payload)."""
        async with asyncio.timeout(within):
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(size)

    async def call(self, type_: str, **args: Any) -> dict[str, Any]:
        """Send a command; its reply (pushed events before it are skipped)."""
        await self.send(self.command(type_, **args))
        while True:
            opcode, payload = await self.receive()
            if opcode != TEXT:
                raise ConnectionError(f"the node sent opcode {opcode}: {payload[:2]!r}")
            message = json.loads(payload)
            if message.get("type") == "result":
                return message

    def reset(self) -> None:
        """Close with a TCP reset, as a till losing power mid-reply does to the node."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
