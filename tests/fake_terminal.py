"""A fake Caisse-AP card terminal on 127.0.0.1, scripted per test.

In-process (on the test's event loop):

    from fake_terminal import FakeTerminal
    async with FakeTerminal("approved") as terminal:      # port 0: terminal.port
        ...dial 127.0.0.1:terminal.port...
        terminal.requests        # list of request records received, in order
        terminal.connections     # connections accepted
        terminal.open_connections         # connections still open (did the client hang up?)
        await terminal.wait_requests(1)   # until a request came (TimeoutError after 5 s)
        assert await terminal.wait_hung_up()   # the client closed every line (within 5 s)
        terminal.script = "declined-05"   # the script of the next connections
        terminal.release()                # let `hold` payments answer (approved)
        await terminal.use("refuse")      # stop listening (same port); use(other) listens again

A script may be a sequence, "approved,declined-05": each request takes the
first one, the last one stays (a connection that sends no request takes none).
Options: `pause` (seconds between the pieces of `split`, default 0.02: keep it
below the client's `quiet`), `af_text` (text after AF's 2 digits),
`release_file` (a Path: `hold` answers once it exists), `log` (a Path: one
JSON line per request received).

As a process (a node can dial it):

    python -m tests.fake_terminal --script NAME[,NAME...] [--port P]
        [--release-file PATH] [--log PATH] [--pause S] [--af-text TEXT]

prints its port alone on its first stdout line (flushed), then runs until
SIGTERM/SIGINT. A line on its stdin releases `hold` payments (as does
`--release-file` appearing), except a line `script NAME[,NAME...]`, which
switches the script of the next connections (`refuse` included).

Scripts (every answer echoes the request's records, then adds its own):
- approved      AE 10, AC, AA (masked, ends 1234), AB, AI, CC, CI and CB = the amount; closes
- declined-XX   AE 01, AF XX (+ af_text), CB echoed; "declined" alone is declined-04
- partial       approved for half the amount (CB lower)
- cancel        AE 01, AF 11, no CB (the operator pressed the red button)
- split         the approved answer cut at every record boundary and inside every record,
                `pause` seconds between pieces
- open          the approved answer, then the line stays open until the client closes it
- garbage       bytes that are not Caisse-AP, line left open
- wrong-echo    approved, but CA (the till number) differs
- silent        reads the request, never answers, line left open
- hold          waits for `release()` / a stdin line / the release file, then approved
                (once released, later `hold` payments answer at once)
- cut           the approved answer but its last 3 bytes (a record cut short), then closes
- flood         21 KiB of valid records (over the client's bound), line left open
- hangup        accepts and closes at once, without reading
- refuse        nothing listens on the port: the connection is refused
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge.devices.caisse_ap import Decoder, Records, encode

CARD = "4970XXXXXXXX1234"
AUTHORISATION = "123456"
_WANTED = {"CA", "CB", "CD", "CE"}  # a request is read once these came


def approved_answer(request: Records, amount: int | None = None) -> Records:
    """What `approved` answers; `amount` (cents) replaces CB for a partial authorisation."""
    echo = [(tag, value) for tag, value in request if tag != "CB"]
    cents = dict(request)["CB"] if amount is None else f"{amount:02d}"
    return [*echo, ("AE", "10"), ("AC", AUTHORISATION), ("AA", CARD), ("AB", "2812"),
            ("AI", "A0000000421010"), ("CC", "CB"), ("CI", "C"), ("CB", cents)]


def answer_for(script: str, request: Records, af_text: str = "") -> Records:
    cents = int(dict(request)["CB"])
    if script == "partial":
        return approved_answer(request, max(1, cents // 2))
    if script == "wrong-echo":
        till = int(dict(request)["CA"])
        return [("CA", f"{(till + 1) % 100:02d}") if tag == "CA" else (tag, value)
                for tag, value in approved_answer(request)]
    if script == "cancel":
        return [*((t, v) for t, v in request if t != "CB"), ("AE", "01"), ("AF", "11")]
    if script.startswith("declined"):
        code = script.partition("-")[2] or "04"
        return [*request, ("AE", "01"), ("AF", code + af_text)]
    return approved_answer(request)


class FakeTerminal:
    def __init__(self, script: str = "approved", *, pause: float = 0.02, af_text: str = "",
                 release_file: Path | None = None, log: Path | None = None) -> None:
        self.script = script
        self.pause = pause
        self.af_text = af_text
        self.release_file = release_file
        self.log = log
        self.port = 0
        self.connections = 0
        self.requests: list[Records] = []
        self._released = asyncio.Event()
        self._request_seen = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def script(self) -> str:
        return ",".join(self._scripts)

    @script.setter
    def script(self, value: str) -> None:
        self._scripts = [name.strip() for name in value.split(",") if name.strip()]

    def _next_script(self) -> str:
        return self._scripts.pop(0) if len(self._scripts) > 1 else self._scripts[0]

    async def __aenter__(self) -> FakeTerminal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._scripts[0] == "refuse":
            if not self.port:  # a port nothing listens on
                server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
                self.port = server.sockets[0].getsockname()[1]
                server.close()
                await server.wait_closed()
            return
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def use(self, script: str) -> None:
        """Switch script; to or from `refuse`, stop or start listening on the same port."""
        self.script = script
        if self._scripts[0] == "refuse" and self._server is not None:
            await self._close_server()
        elif self._scripts[0] != "refuse" and self._server is None:
            await self.start()

    @property
    def open_connections(self) -> int:
        """Connections still being served (a line the client did not hang up counts)."""
        return len(self._tasks)

    async def wait_requests(self, count: int = 1, within: float = 5) -> None:
        """Until `count` requests have come (TimeoutError after `within` seconds)."""
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self._request_seen.clear()
                await self._request_seen.wait()

    async def wait_hung_up(self, within: float = 5) -> bool:
        """Whether every line got closed within `within` seconds."""
        for _ in range(int(within / 0.01)):
            if not self._tasks:
                return True
            await asyncio.sleep(0.01)
        return not self._tasks

    def release(self) -> None:
        self._released.set()

    async def stop(self) -> None:
        await self._close_server()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            # A sequence moves on per request, so a connection that sends nothing
            # (a reachability probe) does not use up a script; `hangup` is per connection.
            if self._scripts[0] == "hangup":
                self._next_script()
            else:
                request = await _read_request(reader)
                if request is not None:
                    script = self._next_script()
                    self.requests.append(request)
                    self._request_seen.set()
                    self._log(script, request)
                    await self._play(script, request, reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()  # what was written still goes out, then FIN
            self._tasks.discard(task)

    def _log(self, script: str, request: Records) -> None:
        if self.log is not None:
            with self.log.open("a") as out:
                out.write(json.dumps({"script": script, "request": request}) + "\n")

    async def _play(self, script: str, request: Records, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        if script in ("silent", "garbage", "flood"):
            if script == "garbage":
                writer.write(b"\x00\xffHELLO, I AM NOT CAISSE-AP\r\n")
            elif script == "flood":
                writer.write(encode([("CZ", "0300")] + [("ZZ", "x" * 999)] * 21))
            await writer.drain()
            await reader.read()  # until the client closes
            return
        if script == "hold":
            while not self._released.is_set() and not (
                    self.release_file is not None and self.release_file.exists()):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._released.wait()
        answer = encode(answer_for(script, request, self.af_text))
        if script == "split":
            for piece in _pieces(answer):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(self.pause)
        elif script == "cut":
            writer.write(answer[:-3])  # inside the last record
        else:
            writer.write(answer)
        await writer.drain()
        if script == "open":
            await reader.read()


async def _read_request(reader: asyncio.StreamReader) -> Records | None:
    decoder = Decoder()
    while not (decoder.at_boundary() and {tag for tag, _ in decoder.records()} >= _WANTED):
        chunk = await reader.read(4096)
        if not chunk:
            return None
        decoder.feed(chunk)
        if decoder.error is not None:
            return None
    return decoder.records()


def _pieces(answer: bytes) -> list[bytes]:
    """Cut at every record boundary and in the middle of every record."""
    cuts, index = [], 0
    while index < len(answer):
        length = int(answer[index + 2:index + 5])
        cuts += [index + 3, index + 5 + length]
        index += 5 + length
    starts = [0, *cuts[:-1]]
    return [answer[start:end] for start, end in zip(starts, cuts, strict=True)]


async def _main(args: argparse.Namespace) -> None:
    terminal = FakeTerminal(args.script, pause=args.pause, af_text=args.af_text,
                            release_file=args.release_file, log=args.log)
    terminal.port = args.port
    await terminal.start()
    print(terminal.port, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    switches: list[asyncio.Task[None]] = []

    def on_line(line: str) -> None:
        if line.startswith("script "):
            switches.append(loop.create_task(terminal.use(line.split(None, 1)[1].strip())))
        else:
            terminal.release()

    def read_stdin() -> None:
        for line in sys.stdin:
            with contextlib.suppress(RuntimeError):  # the loop is gone
                loop.call_soon_threadsafe(on_line, line)

    threading.Thread(target=read_stdin, daemon=True).start()
    await stop.wait()
    await asyncio.gather(*switches, return_exceptions=True)
    await terminal.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Caisse-AP terminal on 127.0.0.1.")
    parser.add_argument("--script", default="approved")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--release-file", type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--af-text", default="")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
