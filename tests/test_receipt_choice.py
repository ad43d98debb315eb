"""Receipt on request: a sale without a ticket still opens the drawer for cash; its first
print later is the original, once; every copy after is a DUPLICATA numbered 1, 2...

A real node with the file printer: what it printed is read back from its
`receipts.txt` (text) and `escpos.bin` (the bytes, drawer pulses included).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import NodeUnderTest, Till
from fake_usb import FakePrinter, FakeUsbBackend
from printing import BARCODES, all_done, events, eventually, printing_node

from edge.config import Config, PrinterConfig
from edge.devices.escpos import drawer_pulse
from edge.node import Node
from edge.trust.folder import TrustFolder

FILE_PRINTER = PrinterConfig("receipt", kind="file")


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[NodeUnderTest, Path]]:
    printer = PrinterConfig("receipt", kind="file", path=tmp_path / "printer")
    async with printing_node(tmp_path / "data", [printer]) as node:
        yield node, tmp_path / "printer"


async def sell(till: Till, method: str, **choice: bool) -> dict:
    basket_id = str(uuid.uuid4())
    basket = await till.call("basket/add", basket_id=basket_id, line_id=str(uuid.uuid4()),
                             barcode=BARCODES[0])
    total = basket["totals"]["total"]
    tender = ({"method": "cash", "amount": total + 80} if method == "cash"
              else {"method": "card", "amount": total, "reference": "TPE-1"})
    return await till.call("sale/complete", basket_id=basket_id, tenders=[tender], **choice)


def printed_text(folder: Path) -> str:
    path = folder / "receipts.txt"
    return path.read_text() if path.exists() else ""


def receipts_of(folder: Path, number: str) -> list[str]:
    """Each receipt printed for that receipt number (the text copy, one per print)."""
    return [part for part in printed_text(folder).split("Merci de votre visite !")
            if f"Ticket {number}" in part]


async def test_no_receipt_still_opens_the_drawer_for_cash_and_prints_nothing(shop) -> None:
    node, folder = shop
    async with node.till() as till:
        cash = await sell(till, "cash", print=False)
        card = await sell(till, "card", print=False)
        printed = await sell(till, "card")  # older tills: no `print`, a receipt
        await eventually(all_done(node, 2), what="the drawer and the receipt")
    assert (cash["receipt"], card["receipt"], printed["receipt"]) == (
        "not_printed", "not_printed", "printed")
    assert cash["print"] is None and card["print"] is None
    assert receipts_of(folder, cash["receipt_number"]) == []
    assert receipts_of(folder, card["receipt_number"]) == []
    assert len(receipts_of(folder, printed["receipt_number"])) == 1
    [opened] = await events(node, "drawer_opened")
    assert opened["sale_id"] == cash["id"] and opened["reason"] == "cash sale"
    raw = (folder / "escpos.bin").read_bytes()
    assert raw.count(drawer_pulse(FILE_PRINTER.drawer_pin)) == 1
    requested = await events(node, "print_requested")
    assert [(r["kind"], r["sale_id"]) for r in requested] == [
        ("drawer", cash["id"]), ("receipt", printed["id"])]


async def test_a_receipt_declined_prints_later_as_the_original_then_numbered_copies(
    shop,
) -> None:
    node, folder = shop
    async with node.till() as till:
        sale = await sell(till, "cash", print=False)
        first = await till.call("printer/reprint", sale_id=sale["id"])
        await eventually(lambda: receipts_of(folder, sale["receipt_number"]), what="original")
        copies = [await till.call("printer/reprint", sale_id=sale["id"]) for _ in range(2)]
        await eventually(lambda: len(receipts_of(folder, sale["receipt_number"])) == 3,
                         what="two copies")
        listed = (await till.call("sales/today"))["sales"][0]
    assert first["copy"] == "original" and "copy_number" not in first
    assert [(c["copy"], c["copy_number"]) for c in copies] == [("duplicate", 1),
                                                               ("duplicate", 2)]
    original, copy_1, copy_2 = receipts_of(folder, sale["receipt_number"])
    assert "DUPLICATA" not in original
    assert "DUPLICATA n° 1" in copy_1 and "DUPLICATA n° 2" in copy_2
    assert "ne vaut pas ticket de caisse" in copy_2
    # The drawer opened once, with the sale; never with a print.
    raw = (folder / "escpos.bin").read_bytes()
    assert raw.count(drawer_pulse(FILE_PRINTER.drawer_pin)) == 1
    assert listed["id"] == sale["id"]
    assert (listed["receipt"], listed["copies"]) == ("printed", 2)


async def test_a_printed_sales_copies_count_from_one(shop) -> None:
    node, folder = shop
    async with node.till() as till:
        sale = await sell(till, "card")
        copy = await till.call("printer/reprint", sale_id=sale["id"])
        await eventually(lambda: len(receipts_of(folder, sale["receipt_number"])) == 2,
                         what="the receipt and its copy")
    assert (copy["copy"], copy["copy_number"]) == ("duplicate", 1)
    original, duplicate = receipts_of(folder, sale["receipt_number"])
    assert "DUPLICATA" not in original and "DUPLICATA n° 1" in duplicate


async def test_an_offline_sale_records_the_choice(shop) -> None:
    node, _ = shop
    async with node.till() as till:
        code = (await till.call("sale/held"))["till"]
        basket = str(uuid.uuid4())
        line = {"id": str(uuid.uuid4()), "product_id": "p0001", "barcode": BARCODES[0],
                "name": "Baguette tradition", "unit_price": 120, "vat_rate": 550,
                "quantity": 1}
        totals = {"total": 120, "items": 1,
                  "vat": [{"rate": 550, "base": 114, "vat": 6, "total": 120}]}
        sale = {"id": f"{basket}@{code}", "basket_id": basket, "receipt_no": 1,
                "cashier": "alice", "time": "2026-11-25T10:42:07.123Z", "lines": [line],
                "tenders": [{"method": "cash", "amount": 200}], "totals": totals,
                "change": 80}
        recorded = await till.call("sale/record", sale=sale, print=False)
        listed = (await till.call("sales/today"))["sales"]
    assert recorded["receipt"] == "not_printed"
    assert [(row["id"], row["receipt"]) for row in listed] == [(sale["id"], "not_printed")]
    assert await events(node, "print_requested") == []


async def test_a_declined_receipts_drawer_in_doubt_is_offered_once(tmp_path: Path) -> None:
    """A node killed between sending a no-receipt cash sale's pulse and the printer's answer:
    `drawer_unknown`, and the till offers to open the drawer, once."""
    usb = PrinterConfig("caisse", kind="usb")
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    printer.paper_out = True  # the drawer job waits: the "crash" writes its first step
    async with printing_node(tmp_path, [usb], backend) as node:
        token = await node.pair()
        async with node.till(token) as till:
            sale = await sell(till, "cash", print=False)
        [job] = await events(node, "print_requested")
    crashed = Node(Config(data_dir=tmp_path, advertise=False, printers=(usb,)), backend)
    crashed.journal.trust = TrustFolder(tmp_path).load(crashed.config.store_id)
    await crashed.journal.open()
    await crashed.journal.write(lambda tx: tx.append("print_job_started", {
        "job_id": job["job_id"], "printer": "caisse", "copy": "original"}))
    await crashed.journal.close()
    printer.paper_out = False
    async with printing_node(tmp_path, [usb], backend) as node, node.till(token) as till:
        await eventually(all_done(node, 1), what="the job after the crash")
        [doubt] = (await till.call("printer/status"))["drawers_in_doubt"]
        opened = await till.call("drawer/open_for_sale", sale_id=sale["id"])
        await eventually(all_done(node, 2), what="the opening")
        again = await till.reply("drawer/open_for_sale", sale_id=sale["id"])
        after = (await till.call("printer/status"))["drawers_in_doubt"]
    assert (job["kind"], job["reason"]) == ("drawer", "cash sale")
    assert doubt["sale_id"] == sale["id"] and opened["printer"] == "caisse"
    assert again["error"]["code"] == "drawer_already_requested" and after == []
    assert printer.printed().count(drawer_pulse(usb.drawer_pin)) == 1  # the cashier's only
    assert b"Ticket" not in printer.printed()
