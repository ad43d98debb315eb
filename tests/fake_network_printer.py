"""A fake network receipt printer: raw TCP on 127.0.0.1, answering DLE EOT like the real ones.

It runs on the test's event loop. It keeps every byte it receives (across
connections: that is the paper), answers status requests from its state, and
can go away (connections reset, nothing listening) and come back on the same
port, at a moment the test chooses (`after`), or freeze as the next job
begins (`freeze_at_next_job`): nothing of it reaches the paper.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

DLE_EOT = b"\x10\x04"


class FakeNetworkPrinter:
    def __init__(self) -> None:
        self.received = bytearray()
        self.paper_out = False
        # Set: the next job's first bytes are swallowed, and the printer hangs
        # (answers nothing, takes no new connection) until `come_back`.
        self.freeze_at_next_job = False
        self.frozen = False
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._triggers: list[tuple[int, Callable[[], None]]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.go_away()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def go_away(self) -> None:
        """Power cut: every connection reset, nothing listening."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def come_back(self) -> None:
        """Power back on: whatever connection the freeze left open is reset first
        (waiting for its peer to close it could wait for ever)."""
        self.go_away()
        if self._server is not None:
            await self._server.wait_closed()
        self.frozen = self.freeze_at_next_job = False
        await self.start()

    def after(self, printed_bytes: int, action: Callable[[], None]) -> None:
        """Run `action` (once) as soon as `printed_bytes` have reached the paper."""
        self._triggers.append((printed_bytes, action))

    def printed(self) -> bytes:
        out, index, data = bytearray(), 0, bytes(self.received)
        while index < len(data):
            if data[index:index + 2] == DLE_EOT:
                index += 3
            else:
                out.append(data[index])
                index += 1
        return bytes(out)

    def _status(self, request: int) -> int:
        bits = {1: 0x08 if self.paper_out else 0, 2: 0x20 if self.paper_out else 0, 3: 0,
                4: 0x60 if self.paper_out else 0}
        return 0x12 | bits.get(request, 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        pending = b""
        try:
            while data := await reader.read(4096):
                if self.freeze_at_next_job and _job_bytes(data):
                    self.frozen, self.freeze_at_next_job = True, False
                    if self._server is not None:
                        self._server.close()  # no new connection either
                if self.frozen:
                    continue  # swallowed: never printed, never answered
                self.received += data
                pending += data
                replies = bytearray()
                while (index := pending.find(DLE_EOT)) != -1 and index + 2 < len(pending):
                    replies.append(self._status(pending[index + 2]))
                    pending = pending[index + 3:]
                pending = pending[-2:]  # a request may be split across reads
                self._fire_triggers()
                if writer.transport.is_closing():  # it went away
                    return
                writer.write(bytes(replies))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _fire_triggers(self) -> None:
        printed = len(self.printed())
        due = [t for t in self._triggers if t[0] <= printed]
        self._triggers = [t for t in self._triggers if t[0] > printed]
        for _, action in due:
            action()


def _job_bytes(data: bytes) -> bytes:
    """What is left of `data` once status requests (DLE EOT n) are taken out."""
    out, index = bytearray(), 0
    while index < len(data):
        if data[index:index + 2] == DLE_EOT:
            index += 3
        else:
            out.append(data[index])
            index += 1
    return bytes(out)
