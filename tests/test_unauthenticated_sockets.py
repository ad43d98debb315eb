"""Websockets that never authenticate cannot fill the node: tills still connect and sell.

The connection guard never closes a connection "being served", and a till
websocket is served for its whole life, authenticated or not; nothing asks
it to `auth` within a time. Someone on the shop Wi-Fi with a few addresses
(five loopback addresses here, each under its per-address bound) opens
websockets on /api/ws and answers the pings: on a 256-descriptor node the
total bound is reached, and a till that comes (back) cannot connect, nor can
store IT read /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp
import conftest
import pytest
from conftest import EdgeProcess, free_port
from test_connection_limits import LIMITED_EDGE
from test_peers import pair

from edge.api.connections import PER_CLIENT


@pytest.fixture
def limited_node(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EdgeProcess]:
    monkeypatch.setattr(conftest, "EDGE", LIMITED_EDGE)
    node = EdgeProcess(tmp_path / "data", free_port(), ["--no-advertise"])
    node.start()
    yield node
    node.stop()


async def test_unauthenticated_websockets_do_not_lock_tills_out(
    limited_node: EdgeProcess,
) -> None:
    node = limited_node
    token = await pair(node)
    async with contextlib.AsyncExitStack() as stack:
        opened = 0
        for address in range(2, 7):  # 5 addresses x 32 sockets: 160, over the 128 bound
            session = await stack.enter_async_context(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(f"127.0.9.{address}", 0),
                                               limit=0)))
            for _ in range(PER_CLIENT):
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    await stack.enter_async_context(session.ws_connect(
                        f"{node.url}/api/ws", timeout=aiohttp.ClientWSTimeout(ws_close=1)))
                    opened += 1
        assert opened >= 100
        await asyncio.sleep(1.0)
        # A till comes back from 127.0.0.1 (a blip, a reboot): it must get in and sell.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.1", 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"{node.url}/healthz",
                                   timeout=aiohttp.ClientTimeout(total=5)) as answer:
                assert answer.status == 200
            async with session.ws_connect(f"{node.url}/api/ws",
                                          timeout=aiohttp.ClientWSTimeout(ws_close=1)) as ws:
                await ws.send_json({"id": 1, "type": "auth", "token": token})
                reply = await ws.receive_json(timeout=5)
                assert reply["success"], reply
