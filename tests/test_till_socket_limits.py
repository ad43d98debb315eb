"""The till websocket is bounded: a till that never reads, a huge message, a reset mid-reply.

Against a real `edge serve` process: its memory is read from /proc, its log
is read for tracebacks, and a normal till sells throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

import aiohttp
import pytest
from conftest import EdgeProcess, NodeUnderTest, node_of
from raw_websocket import CLOSE, TEXT, RawWebsocket, close_code
from resources import MemoryWatch
from test_peers import BARCODES, pair

from edge.api.websocket_api import MAX_MESSAGE_BYTES
from edge.till_client import TillClient

FLOOD = 10_000
CLOSE_UNREAD = 1008  # docs/protocol.md: closed for leaving too much unread
MAX_ECHO = 64  # an error reply repeats at most this much of a command's type


async def authenticated(node: EdgeProcess, token: str) -> RawWebsocket:
    status, ws = await RawWebsocket.open(node.host, node.port)
    assert status == 101
    assert (await ws.call("auth", token=token))["success"]
    return ws


async def flood_without_reading(ws: RawWebsocket) -> int:
    """Send FLOOD of the heaviest command a bare token may send; how many went out."""
    export = ws.command("catalogue/export", limit=2000)
    sent = 0
    try:
        for _ in range(FLOOD // 100):
            await asyncio.wait_for(ws.send(export * 100), 30)
            sent += 100
    except (ConnectionError, TimeoutError):
        pass  # the node hung up (or stopped reading us): what this test wants
    return sent


async def hung_up_or_all_handled(node: EdgeProcess, sent: int, within: float = 60) -> None:
    """Wait, reading nothing, until the node hung up on the flood or handled all of it."""
    async with aiohttp.ClientSession() as session:
        for _ in range(int(within / 0.2)):
            if "unread: connection closed" in node.log.read_text():
                return
            async with session.get(f"{node.url}/metrics") as response:
                metrics = await response.text()
            handled = re.search(r"^edge_commands_total (\d+)$", metrics, re.MULTILINE)
            if handled and int(handled.group(1)) >= sent:
                return
            await asyncio.sleep(0.2)


async def how_it_ended(ws: RawWebsocket, within: float = 30) -> str:
    """Read what the node left in the pipe: "closed <code>", "reset", or "open"."""
    try:
        async with asyncio.timeout(within):
            while True:
                opcode, payload = await ws.receive(within)
                if opcode == CLOSE:
                    return f"closed {close_code(payload)}"
    except (asyncio.IncompleteReadError, ConnectionError):
        return "reset"
    except TimeoutError:
        return "open"


async def until_one_is_hung_up_on(sockets: list[RawWebsocket], within: float) -> list[str]:
    """Read every socket side by side until the node hung up on one, or `within` passed:
    how each ended ("open" for one still being read then). Side by side, not one after
    the other: each socket left open would otherwise cost the whole `within`."""
    reading = [asyncio.create_task(how_it_ended(ws, within)) for ws in sockets]
    try:
        for ending in asyncio.as_completed(reading):
            if await ending != "open":
                break
    finally:
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
    return [task.result() if not task.cancelled() else "open" for task in reading]


async def test_a_till_that_never_reads_is_hung_up_on_and_the_node_stays_small(
    edge_process: EdgeProcess,
) -> None:
    node = edge_process
    node.start()
    watch = MemoryWatch(node.proc.pid)  # type: ignore[union-attr]
    attacker = await authenticated(node, await pair(node, "Volée"))
    async with TillClient([node.url], await pair(node), "alice", "1234") as till:
        flood = asyncio.create_task(flood_without_reading(attacker))
        try:
            receipts = [(await till.sell(BARCODES[:2], 1000))["receipt_no"] for _ in range(5)]
            sent = await flood
        finally:
            flood.cancel()
        await hung_up_or_all_handled(node, sent)
        watch.check("10,000 catalogue exports never read")
        ended = await how_it_ended(attacker)
        await attacker.close()
        assert ended in (f"closed {CLOSE_UNREAD}", "reset"), (ended, sent)
        # And still selling after it.
        receipts.append((await till.sell(BARCODES[:1], 500))["receipt_no"])
    assert receipts == sorted(set(receipts))
    log = node.log.read_text()
    assert log.count("unread: connection closed") == 1, log[-3000:]
    assert "Traceback" not in log


async def test_an_error_reply_does_not_echo_a_huge_type_back(edge_process: EdgeProcess) -> None:
    node = edge_process
    node.start()
    status, ws = await RawWebsocket.open(node.host, node.port)
    assert status == 101
    try:
        await ws.send(ws.frame(json.dumps({"id": 1, "type": "x" * 500_000}).encode()))
        opcode, payload = await ws.receive()
        assert opcode == TEXT
        reply = json.loads(payload)
        assert reply["error"]["code"] == "unknown_command"
        assert len(payload) < 300, len(payload)
        assert "x" * MAX_ECHO in reply["error"]["message"]
        # The connection keeps working.
        assert (await ws.call("ping"))["result"] == "pong"
    finally:
        await ws.close()


async def test_a_message_over_the_bound_closes_the_socket_and_nothing_else(
    edge_process: EdgeProcess,
) -> None:
    node = edge_process
    node.start()
    status, ws = await RawWebsocket.open(node.host, node.port)
    assert status == 101
    try:
        big = json.dumps({"id": 1, "type": "ping", "pad": "x" * MAX_MESSAGE_BYTES}).encode()
        await ws.send(ws.frame(big))
        assert await how_it_ended(ws, within=10) in ("closed 1009", "reset")
    finally:
        await ws.close()
    async with TillClient([node.url], await pair(node), "alice", "1234") as till:
        assert (await till.sell(BARCODES[:1], 500))["receipt_no"] == 1


async def test_a_till_reset_mid_reply_logs_one_line_not_a_traceback(
    edge_process: EdgeProcess,
) -> None:
    node = edge_process
    node.start()
    token = await pair(node)
    for _ in range(3):
        ws = await authenticated(node, token)
        await ws.send(ws.command("catalogue/export", limit=2000) * 200)
        await asyncio.sleep(0.2)  # the node is writing replies by now
        ws.reset()
    async with TillClient([node.url], token, "alice", "1234") as till:
        assert (await till.sell(BARCODES[:1], 500))["receipt_no"] == 1
    log = node.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "ConnectionResetError" not in log, log[-3000:]


async def test_tills_that_each_stay_under_their_bound_cannot_add_up_past_the_nodes(
    node: NodeUnderTest, caplog: pytest.LogCaptureFixture,
) -> None:
    # Each socket may leave 4 MiB unread; all of a node's together, less (here 2 MiB).
    node_of(node).unsent.max_bytes = 2 * 1024 * 1024
    port = int(node.url.rsplit(":", 1)[1])
    greedy = []
    for name in ("Volée 1", "Volée 2", "Volée 3"):
        status, ws = await RawWebsocket.open("127.0.0.1", port)
        assert status == 101
        assert (await ws.call("auth", token=await node.pair(name)))["success"]
        greedy.append(ws)
    async with node.till() as till:
        export = greedy[0].command("catalogue/export", limit=2000)
        try:
            for _ in range(40):  # until the node's bound is passed (no one socket's can be first)
                for ws in greedy:
                    with contextlib.suppress(ConnectionError):
                        await asyncio.wait_for(ws.send(export * 5), 10)
                await asyncio.sleep(0.05)
                if "unread" in caplog.text:
                    break
            ended = await until_one_is_hung_up_on(greedy, within=5)
            assert any(end in (f"closed {CLOSE_UNREAD}", "reset") for end in ended), ended
            closed = [line for line in caplog.text.splitlines() if "unread" in line]
            assert closed and all("left over 2 MiB unread" in line for line in closed), closed
            assert node_of(node).unsent.bytes <= node_of(node).unsent.max_bytes
            # The till that reads was never the one hung up on, and sells on.
            await till.call("basket/add", basket_id="b-budget", line_id="l-1", barcode=BARCODES[0])
        finally:
            for ws in greedy:
                await ws.close()
