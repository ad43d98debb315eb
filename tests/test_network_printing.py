"""Network receipt printers on raw TCP 9100, against a fake printer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from conftest import EdgeProcess, NodeUnderTest, free_port, node_of
from fake_network_printer import FakeNetworkPrinter
from printing import (
    BARCODES,
    all_done,
    events,
    eventually,
    interrupted_mark_bytes,
    job_statuses,
    printing_node,
    receipt_bytes,
    sell,
)

from edge.config import Config, PrinterConfig
from edge.devices import escpos
from edge.devices.escpos import FEED_AND_CUT
from edge.devices.receipt import layout, receipt_store
from edge.selling.tills import create_pairing_code


@pytest.fixture
async def fake_printer() -> AsyncIterator[FakeNetworkPrinter]:
    printer = FakeNetworkPrinter()
    await printer.start()
    yield printer
    await printer.stop()


def network(printer: FakeNetworkPrinter) -> PrinterConfig:
    return PrinterConfig("comptoir", kind="network", host="127.0.0.1", port=printer.port)


async def test_a_network_printer_that_goes_away_mid_job_resumes_without_duplicating_or_losing(
    tmp_path: Path, fake_printer: FakeNetworkPrinter
) -> None:
    config = network(fake_printer)
    async with printing_node(tmp_path, [config]) as node, node.till() as till:
        fake_printer.after(300, fake_printer.go_away)  # a power cut 300 bytes in
        sale = await sell(till, "card", barcodes=BARCODES * 10)
        worker = node_of(node).print_queue.workers["comptoir"]
        await eventually(lambda: worker.status.detail.startswith(
            f"not reachable at 127.0.0.1:{config.port}"), what="the loss")
        assert worker.status.state == "unreachable"
        assert await job_statuses(node) == ["interrupted"]
        await fake_printer.come_back()
        await eventually(all_done(node, 1), what="the receipt")
        receipt = await receipt_bytes(node, sale["id"], config)
        paper = fake_printer.printed()
        fragment = paper[: paper.index(interrupted_mark_bytes(config))]
        assert 300 <= len(fragment) < len(receipt) and receipt.startswith(fragment)
        assert paper == fragment + interrupted_mark_bytes(config) + receipt
        assert paper.count(receipt) == 1 and paper.count(FEED_AND_CUT) == 2
        done = await events(node, "print_job_done")
        assert [(d["outcome"], d["copy"]) for d in done] == [("done", "original")]
        # And the printer goes on as before.
        after = await sell(till, "card")
        await eventually(all_done(node, 2), what="the next receipt")
        assert fake_printer.printed() == paper + await receipt_bytes(node, after["id"], config)


async def test_an_unreachable_network_printer_is_explained(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = PrinterConfig("comptoir", kind="network", host="127.0.0.1", port=port)
    async with printing_node(tmp_path, [config]) as node:
        status = node_of(node).print_queue.statuses()[0]
        assert status["state"] == "unreachable"
        assert status["detail"] == (f"not reachable at 127.0.0.1:{port} (connection refused): "
                                    "is it switched on and on this network?")
        assert status["device"] == f"network printer 127.0.0.1:{port}"


def _job_rows(database: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT status, attempts FROM print_jobs ORDER BY rowid").fetchall()
    finally:
        conn.close()


async def test_a_node_killed_mid_receipt_prints_the_original_after_a_mark_on_restart(
    tmp_path: Path, fake_printer: FakeNetworkPrinter
) -> None:
    """kill -9 while a receipt is half sent: after restart it is never lost. The cut
    had not gone out (the journal says so before sending it), so no complete receipt
    exists: the fragment is closed by the IMPRESSION INTERROMPUE slip, and the receipt
    that follows is the original, the customer's ticket."""
    config_file = tmp_path / "edge.toml"
    config_file.write_text(
        '[store]\nid = "demo-boulangerie"\ndemo = true\n[server]\nadvertise = false\n'
        f'[[printers]]\nname = "comptoir"\nkind = "network"\nhost = "127.0.0.1"\n'
        f"port = {fake_printer.port}\n"
    )
    data = tmp_path / "data"
    edge = EdgeProcess(data, free_port(), ["--config", str(config_file)])
    # In threads: the fake printer runs on this event loop and must keep answering.
    await asyncio.to_thread(edge.start)
    try:
        async with aiohttp.ClientSession() as session:
            node = NodeUnderTest(edge.url, data, session)
            code = create_pairing_code(data / "edge.sqlite3")
            async with session.post(f"{edge.url}/api/pair", json={"code": code}) as response:
                token = (await response.json())["token"]
            fake_printer.after(200, lambda: setattr(fake_printer, "paper_out", True))
            async with node.till(token) as till:
                sale = await sell(till, "card", barcodes=BARCODES * 5)
            await eventually(lambda: _job_rows(data / "edge.sqlite3") == [("started", 1)],
                             what="the job to start")
            await asyncio.to_thread(edge.kill)
            await asyncio.to_thread(edge.start)
            fake_printer.paper_out = False
            await eventually(lambda: _job_rows(data / "edge.sqlite3") == [("done", 2)],
                             what="the receipt after the restart")
        paper = fake_printer.printed()
        original = _receipt(data / "edge.sqlite3", sale["id"], "original")
        mark = interrupted_mark_bytes(PrinterConfig("comptoir"))
        assert paper.endswith(mark + original)
        assert b"DUPLICATA" not in paper
        assert paper.count(FEED_AND_CUT) == 2
    finally:
        await asyncio.to_thread(edge.stop)


def _receipt(database: Path, sale_id: str, copy: str) -> bytes:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        body, time, hash_ = conn.execute("SELECT body, time, hash FROM sales WHERE id = ?",
                                         (sale_id,)).fetchone()
    finally:
        conn.close()
    sale = {**orjson.loads(body), "time": time, "hash": hash_, "cashier_name": "Alice"}
    store = receipt_store(Config())  # the demo store's sign, address and legal identity
    return escpos.encode_receipt(layout(sale, store, 48, copy))  # type: ignore[arg-type]
