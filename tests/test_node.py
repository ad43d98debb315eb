"""The node as store IT sees it: health, metrics, the app, receipts and the drawer."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest
from conftest import EDGE, NodeUnderTest, node_of

from edge import __version__
from edge.config import Config
from edge.devices.escpos import drawer_pulse
from edge.journal.migrations import MIGRATIONS
from edge.node import ClockBehind, DataFolderProblem, Node, StoreMismatch

BAGUETTE = "2000001000014"


async def sell(node: NodeUnderTest, tenders: list[dict]) -> dict:
    async with node.till() as till:
        basket = str(uuid.uuid4())
        await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                        barcode=BAGUETTE)
        return await till.call("sale/complete", basket_id=basket, tenders=tenders)


async def printed_jobs(node: NodeUnderTest, count: int) -> list[sqlite3.Row]:
    journal = node_of(node).journal
    for _ in range(200):
        rows = await journal.read_all("SELECT status FROM print_jobs WHERE status = 'done'")
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError("receipts were not printed")


async def test_healthz_says_who_and_how_the_node_is(node: NodeUnderTest) -> None:
    async with node.session.get(f"{node.url}/healthz") as response:
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "ok"
    assert health["store_id"] == "demo-boulangerie"
    assert health["node_id"] == (node.data_dir / "node-id").read_text().strip()
    assert health["version"] == __version__
    assert health["journal"]["seq"] > 300  # the demo catalogue
    assert health["printers"][0]["state"] == "ready"


async def test_metrics_count_sales(node: NodeUnderTest) -> None:
    await sell(node, [{"method": "cash", "amount": 200}])
    await printed_jobs(node, 1)
    async with node.session.get(f"{node.url}/metrics") as response:
        text = await response.text()
    assert "edge_sales_total 1\n" in text
    assert "edge_receipts_printed_total 1\n" in text
    assert f'edge_info{{store="demo-boulangerie",node="{node_of(node).node_id}"' in text


async def test_the_till_app_is_served_with_safe_headers(node: NodeUnderTest) -> None:
    async with node.session.get(f"{node.url}/") as response:
        assert response.status == 200
        assert "<html" in (await response.text()).lower()
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    async with node.session.get(f"{node.url}/../pyproject.toml") as response:
        assert response.status in (403, 404)


async def test_a_cash_sale_opens_the_drawer_and_a_card_sale_does_not(
    node: NodeUnderTest,
) -> None:
    await sell(node, [{"method": "cash", "amount": 500}])
    await sell(node, [{"method": "card", "amount": 120, "reference": "A1"}])
    await printed_jobs(node, 2)
    raw = (node.data_dir / "printer" / "escpos.bin").read_bytes()
    assert raw.count(drawer_pulse(2)) == 1
    receipts = raw.split(b"\x1b@")[1:]
    assert drawer_pulse(2) in receipts[0] and drawer_pulse(2) not in receipts[1]
    assert receipts[0].startswith(b"\x1bt\x13")  # code page with the euro sign
    journal = node_of(node).journal
    opened = await journal.read_all("SELECT body FROM events WHERE type = 'drawer_opened'")
    assert len(opened) == 1


async def test_a_data_folder_belongs_to_one_store(tmp_path: Path) -> None:
    first = Node(Config(data_dir=tmp_path, advertise=False))
    await first.start()
    await first.stop()
    other = Node(Config(data_dir=tmp_path, advertise=False, store_id="another-store"))
    with pytest.raises(DataFolderProblem, match="certificates of store 'demo-boulangerie'"):
        await other.start()
    # Without its certificates, the journal still knows whose it is.
    shutil.rmtree(tmp_path / "tls")
    again = Node(Config(data_dir=tmp_path, advertise=False, store_id="another-store"))
    with pytest.raises(StoreMismatch, match="holds the data of store 'demo-boulangerie'"):
        await again.start()
    await again.stop()


async def test_a_database_from_a_newer_edge_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "edge.sqlite3")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    node = Node(Config(data_dir=tmp_path, advertise=False))
    with pytest.raises(RuntimeError, match="upgrade edge"):
        await node.start()
    await node.journal.close()


def test_verify_finds_a_tampered_sale(tmp_path: Path) -> None:
    async def make_sale() -> None:
        node = Node(Config(data_dir=tmp_path, advertise=False))
        await node.start()
        await node.stop()

    asyncio.run(make_sale())
    db = tmp_path / "edge.sqlite3"
    ok = subprocess.run([*EDGE, "verify", "--data", str(tmp_path)], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE events SET body = replace(body, '120', '12') "
                     "WHERE type = 'product_upserted' AND body LIKE '%Baguette tradition%'")
    conn.close()
    broken = subprocess.run([*EDGE, "verify", "--data", str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert broken.returncode == 1
    assert "hash does not match its content" in broken.stdout


async def test_sigterm_stops_the_node_even_with_tills_connected(edge_process) -> None:
    """systemd stops the service with SIGTERM: tills are told and the node exits cleanly."""
    edge_process.start()
    token = await pair_process(edge_process)
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"{edge_process.url}/api/ws"
    ) as ws:
        await ws.send_json({"id": 1, "type": "auth", "token": token})
        assert (await ws.receive_json())["success"]
        edge_process.proc.terminate()
        closing = await ws.receive(timeout=15)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    assert await asyncio.to_thread(edge_process.proc.wait, 15) == 0


async def pair_process(process) -> str:
    from edge.selling.tills import create_pairing_code

    code = create_pairing_code(process.data_dir / "edge.sqlite3")
    async with aiohttp.ClientSession() as session, session.post(
        f"{process.url}/api/pair", json={"code": code}
    ) as response:
        return (await response.json())["token"]


async def test_a_clock_behind_the_journal_refuses_to_sell_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config(data_dir=tmp_path / "data", advertise=False)
    node = Node(config)
    await node.start()
    # The node last wrote tomorrow, by its clock then: a box whose clock has
    # since gone back (no battery, booted offline) must not date sales before it.
    monkeypatch.setattr("edge.journal.chain.utc_now", lambda: "2099-01-01T00:00:00.000Z")
    await node.journal.write(lambda tx: tx.append("product_delisted", {"id": "clock test"}))
    monkeypatch.undo()
    await node.stop()
    with pytest.raises(ClockBehind, match="before this node's last event"):
        await Node(config).start()
    started = await asyncio.to_thread(
        subprocess.run, [*EDGE, "serve", "--data", str(config.data_dir), "--port", "0",
                         "--no-advertise"], capture_output=True, text=True, timeout=60)
    assert started.returncode == 1
    assert "Set the date and time" in started.stderr and "--accept-clock" in started.stderr
    accepted = Node(config.with_overrides(accept_clock=True))  # store IT: the clock is right
    await accepted.start()
    await accepted.stop()
