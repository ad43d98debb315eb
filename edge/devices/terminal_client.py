"""One Caisse-AP payment over TCP: send the request, read the whole answer, close.

Two failures, told apart by whether a card can have been charged:
- `TerminalUnreachable`: the connection was never made, NOTHING was sent;
  the cashier can use the standalone terminal.
- `AnswerUnknown`: the request went out (or may have) but no trustworthy
  answer came back (closed early, garbage, too long, the overall timeout):
  the card may be charged, only the terminal's slip can tell. Never retry.

The answer has no terminator and terminals send it in several TCP segments
(reading once turned accepted payments into errors), so we read until the
records so far are complete AND the line has been quiet for `quiet` seconds,
or the terminal closed after a complete answer.
"""

from __future__ import annotations

import asyncio

from edge.devices.caisse_ap import Decoder, Records, encode

MAX_ANSWER = 16 * 1024  # bytes: a real answer is a few hundred
_CHUNK = 4096


class TerminalError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TerminalUnreachable(TerminalError):
    """No connection: nothing was sent to the terminal."""


class AnswerUnknown(TerminalError):
    """The request was sent; whether the card was charged is unknown."""


async def run_payment(
    host: str, port: int, request_records: Records, *, connect_timeout: float,
    overall_timeout: float, quiet: float = 0.3,
) -> Records:
    """The terminal's answer records (read them with `caisse_ap.read_answer`)."""
    payload = encode(request_records)  # a bad request raises ValueError before dialling
    loop = asyncio.get_running_loop()
    deadline = loop.time() + overall_timeout
    try:
        async with asyncio.timeout(min(connect_timeout, overall_timeout)):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise TerminalUnreachable(f"no connection to {host}:{port} within "
                                  f"{connect_timeout:g} s") from None
    except OSError as error:
        raise TerminalUnreachable(f"no connection to {host}:{port}: "
                                  f"{error.strerror or error}") from None
    try:
        return await _exchange(reader, writer, payload, deadline, quiet)
    finally:
        await _close(writer)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes,
    deadline: float, quiet: float,
) -> Records:
    loop = asyncio.get_running_loop()
    decoder = Decoder()
    try:
        async with asyncio.timeout_at(deadline):
            writer.write(payload)
            await writer.drain()
    except TimeoutError:
        raise AnswerUnknown("the terminal did not take the request in time") from None
    except OSError as error:
        raise AnswerUnknown(f"the link broke while sending: {error}") from None
    while True:
        remaining = deadline - loop.time()
        complete = decoder.complete()
        if remaining <= 0:
            if complete:
                return decoder.records()
            raise AnswerUnknown("no complete answer before the overall timeout")
        try:
            async with asyncio.timeout(min(quiet, remaining) if complete else remaining):
                chunk = await reader.read(_CHUNK)
        except TimeoutError:
            if complete:
                return decoder.records()  # complete and quiet: the answer is over
            raise AnswerUnknown("no complete answer before the overall timeout") from None
        except OSError as error:
            if complete:
                return decoder.records()
            raise AnswerUnknown(f"the link broke before a complete answer: {error}") from None
        if not chunk:
            if complete:
                return decoder.records()
            raise AnswerUnknown("the terminal closed the line before a complete answer")
        decoder.feed(chunk)
        if decoder.error is not None:
            raise AnswerUnknown(f"the answer is not Caisse-AP: {decoder.error}")
        if decoder.size > MAX_ANSWER:
            raise AnswerUnknown(f"the answer is longer than {MAX_ANSWER} bytes")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(1):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
