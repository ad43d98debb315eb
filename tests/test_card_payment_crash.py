"""Issue 13, acceptance 3: the terminal's node killed (kill -9) while the terminal holds a payment.

Two nodes: A owns the terminal (a fake terminal process holding the payment),
the till is on B. The terminal goes on and charges the card while A is dead:
its answer reaches nobody. Once A is back, the till (still on B) learns the
payment is `unknown`; the cashier settles it from the terminal's slip; the
terminal is never dialled again for it, and the sale is recorded once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ROOT, EdgeProcess, Till
from printing import eventually
from test_card_payments import basket, fails, until_pushed
from test_print_exactly_once import two_nodes

from edge.config import load_config
from edge.selling.tills import create_pairing_code
from edge.status import collect_status


@pytest.fixture
def held_terminal(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[str]]]:
    """A fake terminal process holding every payment until a line comes on its stdin."""
    log = tmp_path / "terminal.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_terminal", "--script", "hold", "--log", str(log)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield port, log, process
    finally:
        process.terminate()
        process.wait(10)


def requests_received(log: Path) -> list[dict[str, str]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [dict(map(tuple, json.loads(line)["request"])) for line in lines]


def query(node: EdgeProcess, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(node.data_dir / "edge.sqlite3", timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


async def until(check: Any, what: str) -> None:
    await eventually(lambda: asyncio.to_thread(check), within=30, what=what)


async def connected_till(session: aiohttp.ClientSession, node: EdgeProcess,
                         token: str) -> tuple[aiohttp.ClientWebSocketResponse, Till]:
    ws = await session.ws_connect(f"{node.url}/api/ws")
    till = Till(ws, token)
    await till.call("auth", token=token)
    await till.call("login", cashier_id="alice", pin="1234")
    return ws, till


async def test_a_payment_cut_by_kill_9_reads_unknown_is_settled_from_the_slip_and_sold_once(
    tmp_path: Path, held_terminal: tuple[int, Path, subprocess.Popen[str]],
) -> None:
    port, log, terminal = held_terminal
    a, b = nodes = two_nodes(
        tmp_path, more_a=f'[[terminals]]\nname = "tpe-1"\nhost = "127.0.0.1"\nport = {port}\n')
    for node in nodes:
        await asyncio.to_thread(node.start)
    try:
        async with aiohttp.ClientSession() as session:
            code = create_pairing_code(b.data_dir / "edge.sqlite3")
            async with session.post(f"{b.url}/api/pair",
                                    json={"code": code, "name": "Caisse 1"}) as response:
                token = (await response.json())["token"]
            await until(lambda: query(b, "SELECT 1 FROM store_terminals"),
                        "A's terminal announced to B")
            ws, till = await connected_till(session, b, token)
            basket_id, total = await basket(till)
            payment_id = str(uuid.uuid4())
            await till.call("payment/card", basket_id=basket_id, payment_id=payment_id,
                            amount=total)
            # Asked on B, dialled by A: the till on B is told it started.
            await until_pushed(till, payment_id, "started")
            await until(lambda: len(requests_received(log)) == 1, "the terminal's request")
            await asyncio.to_thread(a.kill)

            # The customer typed the PIN meanwhile: the terminal approves, for nobody.
            assert terminal.stdin is not None
            terminal.stdin.write("release\n")
            terminal.stdin.flush()
            # With A gone, nothing more can be asked of its terminal.
            await fails("terminal_unreachable", till, "payment/card", basket_id=basket_id,
                        payment_id=str(uuid.uuid4()), amount=total)
            await ws.close()

            await asyncio.to_thread(a.start)
            ws, till = await connected_till(session, b, token)

            async def unknown() -> dict[str, Any] | None:
                state = (await till.call("payment/card_status", payment_id=payment_id))
                return state["payment"] if state["payment"]["status"] == "unknown" else None

            state = await eventually(unknown, within=30, what="the payment read unknown on B")
            assert (state["code"], state["settled"]) == ("node_stopped", None)
            # A resend answers the state: the terminal is not dialled again.
            resent = await till.call("payment/card", basket_id=basket_id,
                                     payment_id=payment_id, amount=total)
            assert resent["payment"] == state
            settled = await till.call("payment/card_settle", payment_id=payment_id,
                                      approved=True, reference="TPE 000042")
            assert settled["payment"]["settled"] == "approved"

            # The sale, with the settled payment; resent (a till unsure it got through).
            tender = {"method": "card", "amount": total, "payment_id": payment_id}
            sale = await till.call("sale/complete", basket_id=basket_id, tenders=[tender])
            again = await till.call("sale/complete", basket_id=basket_id, tenders=[tender])
            assert again["id"] == sale["id"]
            [card] = sale["tenders"]
            assert card["payment_id"] == payment_id and card["amount"] == total
            other, _ = await basket(till)  # the payment is the first basket's
            await fails("card_payment_mismatch", till, "sale/complete", basket_id=other,
                        tenders=[tender])
            await ws.close()
        await until(lambda: query(a, "SELECT settled FROM card_payments") == [("approved",)],
                    "the settlement on A")
        assert [request["CB"] for request in requests_received(log)] == [f"{total:02d}"]
    finally:
        for node in nodes:
            node.stop()
    for node in nodes:
        assert query(node, "SELECT COUNT(*) FROM sales WHERE basket_id = ?", (basket_id,)) \
            == [(1,)]
    assert query(b, "SELECT status, settled FROM card_payments") == [("unknown", "approved")]
    status = collect_status(load_config(tmp_path / "a" / "edge.toml")
                            .with_overrides(data_dir=a.data_dir))
    [(asked_at,)] = query(a, "SELECT requested_at FROM card_payments")
    assert status["card terminals"] == {"tpe-1": (
        f"127.0.0.1:{port}, tills every other till; last payment unknown (asked at {asked_at})")}
