"""kill -9 at a random moment loses no acknowledged sale and breaks no chain."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import subprocess
import sys
import uuid

import aiohttp
from conftest import EDGE, EdgeProcess, Till

from edge.selling.tills import create_pairing_code

BARCODES = ["2000001000014", "2000002000013", "2000003000012", "2000004000011"]
TILLS = 4
ROUNDS = 3


async def sell_until_cut(url: str, token: str, acknowledged: dict[str, str]) -> None:
    """Sell as fast as possible; note each sale the node said was done."""
    with contextlib.suppress(aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{url}/api/ws"
        ) as ws:
            till = Till(ws)
            await till.call("auth", token=token)
            await till.call("login", cashier_id="alice", pin="1234")
            basket = await till.call("basket/get")
            while True:
                basket_id = basket["id"] if basket else str(uuid.uuid4())
                for barcode in random.sample(BARCODES, 2):
                    await till.call("basket/add", basket_id=basket_id,
                                    line_id=str(uuid.uuid4()), barcode=barcode)
                sale = await till.call("sale/complete", basket_id=basket_id,
                                       tenders=[{"method": "cash", "amount": 1000}])
                acknowledged[sale["id"]] = sale["receipt_number"]
                basket = None


def stored_sales(data_dir) -> dict[str, str]:
    conn = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        rows = conn.execute("SELECT id, till, receipt_no FROM sales").fetchall()
    finally:
        conn.close()
    return {sale_id: f"{till}-{number:06d}" for sale_id, till, number in rows}


async def test_kill_9_mid_sales_loses_nothing_acknowledged(edge_process: EdgeProcess) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    edge_process.start()
    tokens = []
    async with aiohttp.ClientSession() as session:
        for number in range(TILLS):
            code = create_pairing_code(edge_process.data_dir / "edge.sqlite3")
            async with session.post(f"{edge_process.url}/api/pair",
                                    json={"code": code, "name": f"Caisse {number}"}) as r:
                tokens.append((await r.json())["token"])

    acknowledged: dict[str, str] = {}
    for round_number in range(ROUNDS):
        if round_number:
            edge_process.start()
        sellers = [asyncio.create_task(sell_until_cut(edge_process.url, token, acknowledged))
                   for token in tokens]
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        edge_process.kill()
        await asyncio.wait_for(asyncio.gather(*sellers), 15)

    assert len(acknowledged) > 10, f"too few sales to mean anything (seed {seed})"
    stored = stored_sales(edge_process.data_dir)
    lost = {sale: number for sale, number in acknowledged.items() if stored.get(sale) != number}
    assert not lost, f"acknowledged sales lost (seed {seed}): {lost}"
    per_till: dict[str, list[int]] = {}
    for number in stored.values():
        till, receipt = number.rsplit("-", 1)  # "<till code>-<6 digits>"
        per_till.setdefault(till, []).append(int(receipt))
    for till, numbers in per_till.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), f"gap in {till}'s receipts"

    verify = await asyncio.to_thread(
        subprocess.run, [*EDGE, "verify", "--data", str(edge_process.data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "every hash chain intact" in verify.stdout
    # The node comes back and carries on from where its chain stopped.
    edge_process.start()
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"{edge_process.url}/api/ws"
    ) as ws:
        till = Till(ws)
        await till.call("auth", token=tokens[0])
        await till.call("login", cashier_id="alice", pin="1234")
        basket = await till.call("basket/get")
        basket_id = basket["id"] if basket else str(uuid.uuid4())
        await till.call("basket/add", basket_id=basket_id, line_id=str(uuid.uuid4()),
                        barcode=BARCODES[0])
        sale = await till.call("sale/complete", basket_id=basket_id,
                               tenders=[{"method": "cash", "amount": 5000}])
    assert sale["receipt_no"] == len(per_till.get(sale["till"], [])) + 1
    print(f"seed {seed}: {len(acknowledged)} acknowledged sales, all present", file=sys.stderr)
