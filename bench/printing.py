"""Receipts per second through the durable print queue, against raw pyusb writes.

Run: ./dev bench printing   (`./dev bench` runs every benchmark)

Both go to the same fake USB printer (tests/fake_usb.py) through pyusb's real
code path, with the same receipt bytes in the same 1 KiB bulk transfers, in
the same run. Raw: the bulk writes alone, as fast as they go. Queue: sales
recorded while the printer is out of paper, then the paper comes back and
the clock runs until the last `print_job_done`; per receipt that is a status
check, `print_job_started` committed, for cash the drawer pulse alone and
`drawer_opened` committed, the text chunks with a status request after
each, `print_job_cutting` committed, the cut, and `print_job_done`
committed, each commit fsync'd (each step durable before the bytes it
announces: docs/devices.md). A real printer prints a receipt in 1 to 3 s;
what this measures is what the queue costs on top of the device.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import usb.core
import usb.util

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake printer lives with the tests

from fake_usb import FakePrinter, FakeUsbBackend  # noqa: E402

from bench.sales import raw_sqlite_commits_per_second  # noqa: E402
from edge.config import Config, PrinterConfig  # noqa: E402
from edge.devices import escpos  # noqa: E402
from edge.devices.receipt import Store, layout  # noqa: E402
from edge.node import Node  # noqa: E402
from edge.selling.baskets import Seller, add_line  # noqa: E402
from edge.selling.sales import complete_sale, find_sale  # noqa: E402

BARCODES = ["2000001000014", "2000002000013", "2000003000012", "2000004000011"]
PRINTER = PrinterConfig("bench", kind="usb")


def raw_receipts_per_second(receipt: bytes, seconds: float) -> float:
    printer = FakePrinter(kernel_driver_active=False)
    device = usb.core.find(backend=FakeUsbBackend(printer))
    usb.util.claim_interface(device, 0)
    chunks = escpos.chunks([receipt], 1024)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for chunk in chunks:
            device.write(0x01, chunk, 5000)
        count += 1
        if count % 1000 == 0:
            printer.received.clear()
    elapsed = time.perf_counter() - start
    usb.util.dispose_resources(device)
    return count / elapsed


async def queue_receipts_per_second(
    folder: Path, jobs: int, method: str
) -> tuple[float, float, bytes]:
    """Receipts a second through the queue, its commits a receipt, and one receipt's bytes."""
    printer = FakePrinter(paper_out=True)
    config = Config(data_dir=folder / f"queue-{method}", advertise=False, printers=(PRINTER,))
    node = Node(config, FakeUsbBackend(printer))
    await node.start()
    try:
        seller = Seller(till="T01", cashier="alice")
        for _ in range(jobs):
            basket = str(uuid.uuid4())
            for barcode in BARCODES[:2]:
                sale = await add_line(node.journal, seller, basket, str(uuid.uuid4()), 1,
                                      barcode=barcode)
            tender = {"method": method, "amount": sale["totals"]["total"], "reference": "B"}
            sale = await complete_sale(node.journal, seller, basket, [tender])
        done = asyncio.Event()
        finished = 0

        def count(events: list) -> None:
            nonlocal finished
            finished += sum(event.type == "print_job_done" for event in events)
            if finished >= jobs:
                done.set()

        node.journal.add_listener(count)
        commits_before = node.journal.commits
        start = time.perf_counter()
        printer.paper_out = False
        await done.wait()
        elapsed = time.perf_counter() - start
        commits = (node.journal.commits - commits_before) / jobs
        sale = await find_sale(node.journal, sale["id"])
        assert sale is not None
        sale["cashier_name"] = "Alice"
        receipt = escpos.encode_receipt(layout(sale, Store(config.store_name,
                                                           config.store_address)))
        return jobs / elapsed, commits, receipt
    finally:
        await node.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.ERROR)  # "paper out" is part of the setup, not news
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long raw writes run")
    parser.add_argument("--jobs", type=int, default=500, help="receipts through the queue")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        card, card_commits, receipt = asyncio.run(
            queue_receipts_per_second(Path(tmp), args.jobs, "card"))
        cash, cash_commits, _ = asyncio.run(
            queue_receipts_per_second(Path(tmp), args.jobs, "cash"))
        commits = raw_sqlite_commits_per_second(Path(tmp), args.seconds)
    raw = raw_receipts_per_second(receipt, args.seconds)
    print(f"machine: {os.cpu_count()} cores; disk of {ROOT}; receipt of {len(receipt)} bytes "
          f"({len(escpos.chunks([receipt], 1024))} bulk writes)")
    print(f"baseline  raw pyusb bulk writes to the fake printer: {raw:8.0f} receipts/s")
    # A durable queue commits at least twice a receipt (started, done): its floor.
    print(f"floor     two fsync'd SQLite commits a receipt:     {commits / 2:8.0f} receipts/s")
    for label, rate, per_receipt in (("card sale", card, card_commits),
                                     ("cash sale", cash, cash_commits)):
        print(f"queue     {label}s, {args.jobs} jobs: {rate:8.0f} receipts/s = "
              f"{rate / raw:.4f} x raw, {2 * rate / commits:.2f} x the floor "
              f"({1000 / rate:.2f} ms a receipt, {per_receipt:.2f} commits a receipt)")


if __name__ == "__main__":
    main()
