"""Pages of other sites cannot use a node's API, and a node answers only to its own names.

A real `edge serve` process whose store has a second node (listed in its
config, not running). Browsers send `Origin` on every websocket and POST;
raw sockets stand in for them here, each header set by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import EdgeProcess, free_port, store_node_config
from raw_websocket import RawWebsocket
from test_peers import pair

from edge.selling.tills import create_pairing_code


@pytest.fixture
def store_node(tmp_path: Path) -> Iterator[tuple[EdgeProcess, int]]:
    """A node, and the port of the store's other node (configured, not running)."""
    other = free_port()
    config = store_node_config(tmp_path / "node", [f"http://127.0.0.1:{other}"])
    node = EdgeProcess(tmp_path / "node" / "data", free_port(), ["--config", str(config)])
    node.start()
    yield node, other
    node.stop()


async def upgrade(node: EdgeProcess, **headers: str) -> int:
    status, ws = await RawWebsocket.open(node.host, node.port, headers=headers)
    try:
        if status == 101:  # and it serves: a till command gets its answer
            assert (await ws.call("ping"))["result"] == "pong"
        return status
    finally:
        await ws.close()


async def test_the_till_websocket_opens_only_for_pages_of_the_store(
    store_node: tuple[EdgeProcess, int],
) -> None:
    node, other = store_node
    port = node.port
    # Non-browser clients (the Python till, peers) send no Origin.
    assert await upgrade(node) == 101
    # Pages this node served, by any of its names.
    assert await upgrade(node, Origin=f"http://127.0.0.1:{port}") == 101
    assert await upgrade(node, Origin=f"http://localhost:{port}") == 101
    assert await upgrade(node, Origin=f"https://edge-{node.node_id}.local:{port}") == 101
    # A till page served by the store's other node, failing over to this one.
    assert await upgrade(node, Origin=f"http://127.0.0.1:{other}") == 101
    assert await upgrade(node, Origin=f"http://localhost:{other}") == 101
    # Anything else: another site, another machine, another local service, a file.
    for origin in ("http://evil.example", f"http://evil.example:{port}",
                   f"http://192.0.2.7:{port}", f"http://127.0.0.1:{free_port()}",
                   f"http://edge-{node.node_id}.local.evil.example:{port}", "null",
                   "file://", f"http://127.0.0.1:{port}/path"):
        assert await upgrade(node, Origin=origin) == 403, origin


async def test_the_api_refuses_other_sites_pages_and_names_that_are_not_the_nodes(
    store_node: tuple[EdgeProcess, int],
) -> None:
    node, _ = store_node
    async with aiohttp.ClientSession() as session:
        # A page of another site posting a (right) pairing code: refused, code not used.
        code = create_pairing_code(node.data_dir / "edge.sqlite3")
        body = json.dumps({"code": code, "name": "Pirate"})
        async with session.post(f"{node.url}/api/pair", data=body, headers={
                "Origin": "http://evil.example", "Content-Type": "text/plain"}) as response:
            assert response.status == 403
        async with session.post(f"{node.url}/api/pair", data=body, headers={
                "Origin": node.url, "Content-Type": "text/plain"}) as response:
            assert response.status == 200, await response.text()
        # DNS rebinding: a name of the attacker's pointing at the node's address.
        for host, status in ((f"evil.example:{node.port}", 421), ("evil.example", 421),
                             (f"127.0.0.1:{node.port}", 200), (f"localhost:{node.port}", 200),
                             (f"edge-{node.node_id}.local:{node.port}", 200),
                             (f"EDGE-{node.node_id}.LOCAL.", 200), ("10.1.2.3", 200)):
            async with session.get(f"{node.url}/healthz", headers={"Host": host}) as response:
                assert response.status == status, host
            async with session.get(f"{node.url}/", headers={"Host": host}) as response:
                assert response.status == status, host
        assert await upgrade(node, Host=f"evil.example:{node.port}") == 421
    # A till still pairs and sells from the node's own page.
    token = await pair(node)
    status, ws = await RawWebsocket.open(node.host, node.port,
                                         headers={"Origin": node.url})
    try:
        assert status == 101
        assert (await ws.call("auth", token=token))["success"]
    finally:
        await ws.close()
    log = node.log.read_text()
    assert "Origin 'http://evil.example' is not a page of this store" in log
    assert "Traceback" not in log
