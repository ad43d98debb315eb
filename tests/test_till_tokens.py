"""Till tokens: store IT lists and revokes tills; a token alone reads little; sales are flagged.

Real `edge serve` processes; `edge tills` run as store IT runs it, while
the node holds the folder (so through the node).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import EDGE, ROOT, STORE_KEY, EdgeProcess, NodeUnderTest, Till, free_port, start_all
from raw_websocket import CLOSE, RawWebsocket, close_code
from test_peers import wait_for_till

from edge.selling.money import Line, basket_totals

CLOSE_REVOKED = 4001  # docs/protocol.md
BAGUETTE = {"product_id": "p0001", "barcode": "2000001000014", "name": "Baguette tradition",
            "unit_price": 120, "vat_rate": 550}
SALE_EVENTS = {"sale_completed", "basket_line_added", "basket_voided", "print_requested"}


def node_config(folder: Path, port: int, peers: list[str]) -> Path:
    """A node of a two-node demo store, its port in its config (for `edge tills`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "store.key").write_text(STORE_KEY + "\n")
    urls = ", ".join(f'"{url}"' for url in peers)
    config = folder / "edge.toml"
    config.write_text(f'[store]\nid = "demo-boulangerie"\nkey_file = "store.key"\ndemo = true\n'
                      f'[server]\nport = {port}\nadvertise = false\ndata = "data"\n'
                      f"[peers]\nurls = [{urls}]\n")
    return config


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[list[tuple[EdgeProcess, Path]]]:
    ports = [free_port(), free_port()]
    made = []
    try:
        for number, port in enumerate(ports):
            other = ports[1 - number]
            config = node_config(tmp_path / f"node{number}", port, [f"http://127.0.0.1:{other}"])
            made.append((EdgeProcess(config.parent / "data", port, ["--config", str(config)]),
                         config))
        start_all(*(node for node, _ in made))
        yield made
    finally:
        for node, _ in made:
            node.stop()


async def edge_tills(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*EDGE, "tills", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)


@contextlib.asynccontextmanager
async def node_under_test(node: EdgeProcess) -> AsyncIterator[NodeUnderTest]:
    async with aiohttp.ClientSession() as session:
        yield NodeUnderTest(node.url, node.data_dir, session)


async def closed_with(ws: RawWebsocket, within: float = 15) -> int | None:
    """The close code the node hangs up with (None: the socket just ended)."""
    try:
        async with asyncio.timeout(within):
            while True:
                opcode, payload = await ws.receive(within)
                if opcode == CLOSE:
                    return close_code(payload)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def test_edge_tills_lists_and_revokes_and_every_node_hangs_up_on_the_till(
    two_nodes: list[tuple[EdgeProcess, Path]],
) -> None:
    (first, first_config), (second, _) = two_nodes
    async with node_under_test(first) as on_first:
        token = await on_first.pair("Caisse volée")
        kept = await on_first.pair("Caisse 2")
        await wait_for_till(second, token)
        await wait_for_till(second, kept)
        sockets = []
        for node in (first, second):
            status, ws = await RawWebsocket.open(node.host, node.port)
            assert status == 101
            auth = await ws.call("auth", token=token)
            assert auth["success"]
            assert (await ws.call("login", cashier_id="alice", pin="1234"))["success"]
            sockets.append(ws)
        code = auth["result"]["till"]["code"]

        listed = await edge_tills(first_config, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        tills = {till["code"]: till for till in json.loads(listed.stdout)}
        assert tills[code]["name"] == "Caisse volée" and tills[code]["connected"] == 1
        assert tills[code]["last_seen"] and tills[code]["paired_at"]
        assert tills[code]["revoked_at"] is None
        assert "token" not in json.dumps(tills)  # nor its digest

        revoked = await edge_tills(first_config, "revoke", code)
        assert revoked.returncode == 0, revoked.stderr
        assert "by the running node" in revoked.stdout
        # Hung up on at once where the till is connected, on both nodes.
        assert await asyncio.gather(*map(closed_with, sockets)) == [CLOSE_REVOKED] * 2
        for ws in sockets:
            await ws.close()
        for node in (first, second):
            async with node_under_test(node) as there, \
                    there.session.ws_connect(f"{node.url}/api/ws") as ws:
                till = Till(ws)
                reply = await till.reply("auth", token=token)
                assert reply["error"]["code"] == "invalid_token"
                assert "revoked" in reply["error"]["message"]
                assert (await till.reply("auth", token=kept))["success"]  # the other till sells on
        again = await edge_tills(first_config, "revoke", code)
        assert again.returncode == 0 and "already" in again.stdout
        listed = await edge_tills(first_config, "list")
        assert listed.returncode == 0, listed.stderr
        assert f"{code} (Caisse volée)" in listed.stdout and "REVOKED" in listed.stdout
        unknown = await edge_tills(first_config, "revoke", "T99-nowhere")
        assert unknown.returncode == 1 and "no till" in unknown.stderr
    # The store IT page's source counts it (counts only: anyone may read /healthz).
    async with aiohttp.ClientSession() as session, \
            session.get(f"{second.url}/healthz") as response:
        health = await response.json()
    assert health["tills"]["revoked"] == 1 and health["tills"]["paired"] >= 2
    for node in (first, second):
        assert "Traceback" not in node.log.read_text()


async def test_edge_tills_without_a_running_node_works_under_the_folder_lock(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = node_config(tmp_path / "node", port, [])
    node = EdgeProcess(config.parent / "data", port, ["--config", str(config)])
    node.start()
    try:
        async with node_under_test(node) as there:
            token = await there.pair("Caisse")
            async with there.till(token) as till:
                code = (await till.call("auth", token=token))["till"]["code"]
    finally:
        node.stop()
    revoked = await edge_tills(config, "revoke", code)
    assert revoked.returncode == 0, revoked.stderr
    assert "by the running node" not in revoked.stdout
    node.start()
    try:
        async with node_under_test(node) as there, \
                there.session.ws_connect(f"{node.url}/api/ws") as ws:
            reply = await Till(ws).reply("auth", token=token)
            assert reply["error"]["code"] == "invalid_token"
    finally:
        node.stop()


async def _events_until_pong(till: Till) -> set[str]:
    """The types pushed to `till` so far (a ping's answer comes after any queued push)."""
    await till.call("ping")
    types = {message["event"]["type"] for message in till.events}
    till.events.clear()
    return types


async def _sell(till: Till) -> None:
    basket = str(uuid.uuid4())
    await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                    barcode=BAGUETTE["barcode"])
    await till.call("sale/complete", basket_id=basket,
                    tenders=[{"method": "cash", "amount": 200}])


async def test_a_till_token_alone_reads_no_sales_and_no_roles(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    async with node_under_test(edge_process) as node, node.till() as seller, \
            node.till(cashier=None) as stolen:
        await stolen.call("subscribe_events")  # every public type
        await _sell(seller)
        assert not await _events_until_pong(stolen) & SALE_EVENTS
        # Logged in, the same subscription streams the store's sales ...
        await stolen.call("login", cashier_id="alice", pin="1234")
        await _sell(seller)
        assert {"sale_completed", "basket_line_added"} <= await _events_until_pong(stolen)
        # ... and no more once the cashier logged out.
        await stolen.call("logout")
        await _sell(seller)
        assert not await _events_until_pong(stolen) & SALE_EVENTS
        # The catalogue still reaches a till with nobody logged in (it sells offline from it).
        assert (await stolen.call("catalogue/export", limit=5))["products"]
        reply = await stolen.reply("basket/list_open")
        assert reply["error"]["code"] == "not_logged_in"
        # The login screen's list: who, never a role (a manager is whom to guess first).
        auth = await stolen.call("auth", token=stolen.token)
        assert auth["cashiers"] and all(set(c) == {"id", "name"} for c in auth["cashiers"])


def _offline_sale(cashier: str, receipt_no: int) -> dict[str, Any]:
    line = {**BAGUETTE, "id": str(uuid.uuid4()), "quantity": 1}
    totals = basket_totals([Line(line["unit_price"], 1, line["vat_rate"])])
    return {"id": str(uuid.uuid4()), "receipt_no": receipt_no, "cashier": cashier,
            "time": "2026-11-25T10:42:07.123Z", "lines": [line],
            "tenders": [{"method": "cash", "amount": 120}], "totals": totals, "change": 0}


async def test_a_sale_for_another_or_an_unknown_cashier_is_recorded_and_flagged(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    async with node_under_test(edge_process) as node, node.till() as till:  # alice
        own = await till.call("sale/record", sale=_offline_sale("alice", 1))
        other = await till.call("sale/record", sale=_offline_sale("bruno", 2))
        unknown = await till.call("sale/record", sale=_offline_sale("mallory", 3))
    assert own["flags"] == []
    assert other["flags"] == ["cashier_differs"] and other["cashier"] == "bruno"
    assert set(unknown["flags"]) == {"cashier_differs", "unknown_cashier"}
    bodies = {body["receipt_no"]: body for body in _sale_bodies(edge_process)}
    assert bodies[2]["logged_in_cashier"] == "alice" and bodies[2]["flags"] == ["cashier_differs"]
    assert "logged_in_cashier" not in bodies[1]


def _sale_bodies(node: EdgeProcess) -> list[dict[str, Any]]:
    import sqlite3

    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return [json.loads(body) for (body,) in db.execute(
            "SELECT body FROM events WHERE type = 'sale_completed' ORDER BY position")]
    finally:
        db.close()
