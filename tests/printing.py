"""Helpers for the printer tests: a node with given printers, sales, and what should print."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from conftest import NodeUnderTest, Till, free_port, node_of

from edge.api.server import NODE, make_app
from edge.config import Config, PrinterConfig
from edge.devices import escpos
from edge.devices.receipt import interrupted_mark, layout
from edge.selling.sales import find_sale

BARCODES = ["2000001000014", "2000002000013", "2000003000012", "2000004000011"]
POLL = 0.05  # printer status poll in tests (production: 0.5 s)


@contextlib.asynccontextmanager
async def printing_node(
    data_dir: Path, printers: list[PrinterConfig], usb_backend: Any = None, poll: float = POLL
) -> AsyncIterator[NodeUnderTest]:
    """The demo store on a loopback port, with these printers."""
    config = Config(data_dir=data_dir, advertise=False, printers=tuple(printers))
    app = make_app(config, usb_backend)
    app[NODE].print_queue.poll_interval = poll
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield NodeUnderTest(f"http://127.0.0.1:{server.port}", data_dir, session, app)
    finally:
        await server.close()


async def sell(till: Till, method: str = "cash", barcodes: list[str] | None = None) -> dict:
    """A sale paid in cash (the drawer opens) or by card (it does not)."""
    basket_id = str(uuid.uuid4())
    for barcode in barcodes or BARCODES[:2]:
        basket = await till.call("basket/add", basket_id=basket_id,
                                 line_id=str(uuid.uuid4()), barcode=barcode)
    total = basket["totals"]["total"]
    tender = ({"method": "cash", "amount": total + 500} if method == "cash"
              else {"method": "card", "amount": total, "reference": "TPE-1"})
    return await till.call("sale/complete", basket_id=basket_id, tenders=[tender])


async def eventually(check: Callable[[], Any], within: float = 10.0,
                     what: str = "the condition") -> Any:
    """Poll `check` (sync or async) until it returns something true; fail after `within` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.01)


async def job_statuses(node: NodeUnderTest) -> list[str]:
    rows = await node_of(node).journal.read_all("SELECT status FROM print_jobs ORDER BY rowid")
    return [row["status"] for row in rows]


async def events(node: NodeUnderTest, type_: str) -> list[dict]:
    journal = node_of(node).journal
    rows = await journal.read_all("SELECT body FROM events WHERE type = ? ORDER BY position",
                                  (type_,))
    return [orjson.loads(row["body"]) for row in rows]


def all_done(node: NodeUnderTest, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        statuses = await job_statuses(node)
        return len(statuses) >= count and all(s == "done" for s in statuses)

    return check


async def receipt_bytes(node: NodeUnderTest, sale_id: str, printer: PrinterConfig, *,
                        open_drawer: bool = False, copy: str = "original",
                        copy_number: int | None = None) -> bytes:
    """The bytes the node should send for a sale's receipt (the cut included)."""
    journal = node_of(node).journal
    sale = await find_sale(journal, sale_id)
    assert sale is not None
    cashier = await journal.read_one("SELECT name FROM cashiers WHERE id = ?", (sale["cashier"],))
    sale["cashier_name"] = cashier["name"]
    lines = layout(sale, node_of(node).print_queue.store, printer.width, copy,  # type: ignore[arg-type]
                   copy_number)
    return escpos.encode_receipt(lines, code_page=printer.code_page, open_drawer=open_drawer,
                                 drawer_pin=printer.drawer_pin,
                                 qr_module=6 if printer.width > 32 else 5)


def interrupted_mark_bytes(printer: PrinterConfig) -> bytes:
    return escpos.encode_receipt(interrupted_mark(printer.width), code_page=printer.code_page)
