"""USB receipt printers, driven through pyusb's real code path on a fake USB bus.

No printer class is mocked: the node finds, claims and writes to the fake
printer through pyusb exactly as it would through libusb (tests/fake_usb.py).
"""

from __future__ import annotations

from pathlib import Path

from conftest import node_of
from fake_usb import FakePrinter, FakeUsbBackend
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
from edge.devices.escpos import FEED_AND_CUT, drawer_pulse
from edge.devices.usb_printers import find_usb_printers
from edge.journal.store import Tx
from edge.node import Node
from edge.trust.folder import TrustFolder

USB = PrinterConfig("caisse", kind="usb")  # no id: the first receipt printer found


def test_printers_are_found_by_usb_class_and_by_vendor() -> None:
    epson = FakePrinter()
    clone = FakePrinter(vendor=0x0416, product=0x5011, interface_class=0xFF,
                        manufacturer="", product_name="POS58 Printer", serial="")
    keyboard = FakePrinter(vendor=0x046D, product=0xC31C, interface_class=3,
                           manufacturer="Logitech", product_name="Keyboard")
    found = find_usb_printers(FakeUsbBackend(epson, keyboard, clone))
    assert [info.usb_id for info in found] == ["04b8:0e28", "0416:5011"]
    assert found[0].describe() == "04b8:0e28 EPSON TM-T20III (bus 1 device 2, serial X5YF012345)"
    assert found[1].product_name == "POS58 Printer"


def test_a_printer_we_may_not_open_is_explained() -> None:
    found = find_usb_printers(FakeUsbBackend(FakePrinter(permission_denied=True)))
    assert found[0].problem == "permission denied: install systemd/99-edge-escpos.rules"


async def test_a_cash_sale_prints_and_opens_the_drawer_through_pyusb(tmp_path: Path) -> None:
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        sale = await sell(till)
        await eventually(all_done(node, 1), what="the receipt")
        expected = await receipt_bytes(node, sale["id"], USB, open_drawer=True)
        assert printer.printed() == expected
        assert printer.detached == 1  # usblp let go of it
        opened = await events(node, "drawer_opened")
        assert opened == [{"printer": "caisse", "job_id": opened[0]["job_id"],
                           "reason": "cash sale", "sale_id": sale["id"]}]
        health = await (await node.session.get(f"{node.url}/healthz")).json()
        assert health["printers"][0]["state"] == "ready"
        assert health["printers"][0]["device"].startswith("USB 04b8:0e28 EPSON TM-T20III")


async def test_paper_out_mid_receipt_resumes_where_it_stopped(tmp_path: Path) -> None:
    """The printer keeps what it received: sending goes on from the next chunk, nothing twice."""
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        printer.after(300, lambda: setattr(printer, "paper_out", True))
        long_sale = await sell(till, "card", barcodes=BARCODES * 10)
        short_sale = await sell(till, "card")
        worker = node_of(node).print_queue.workers["caisse"]
        await eventually(lambda: worker.status.state == "paper_out", what="paper out")
        assert await job_statuses(node) == ["started", "pending"]
        received = len(printer.printed())
        await eventually(lambda: worker.status.state == "paper_out")  # still waiting
        assert len(printer.printed()) == received  # nothing more sent while out of paper
        printer.paper_out = False
        await eventually(all_done(node, 2), what="the queue to drain")
        assert printer.printed() == (await receipt_bytes(node, long_sale["id"], USB)
                                     + await receipt_bytes(node, short_sale["id"], USB))


async def test_paper_out_mid_queue_waits_tells_the_tills_and_resumes_after_a_restart(
    tmp_path: Path,
) -> None:
    """No job printed twice, none lost: paper runs out inside a job, the node restarts."""
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    sales = []
    async with printing_node(tmp_path, [USB], backend) as node, node.till() as till:
        status = await till.call("printer/subscribe")
        assert status["printer"] == "caisse" and status["printers"][0]["state"] == "ready"
        sales.append(await sell(till))
        await eventually(all_done(node, 1), what="the first receipt")
        # The roll ends 200 bytes into the next receipt: the printer keeps what it got.
        printer.after(len(printer.printed()) + 200, lambda: setattr(printer, "paper_out", True))
        for _ in range(3):
            sales.append(await sell(till, "card"))

        def told_paper_out() -> bool:
            return any(e["event"].get("printer", {}).get("state") == "paper_out"
                       for e in till.events)

        await eventually(told_paper_out, what="tills told of the paper")
        pushed = next(e for e in till.events if e["event"].get("printer"))
        assert pushed["event"]["printer"]["detail"] == "paper out: put in a new roll"
        assert await job_statuses(node) == ["done", "started", "pending", "pending"]
    # The node stops while it waits; the job in progress says how far it got.
    async with printing_node(tmp_path, [USB], backend) as node:
        assert await job_statuses(node) == ["done", "interrupted", "pending", "pending"]
        printer.paper_out = False
        await eventually(all_done(node, 4), what="the queue to drain")
        store_printer = USB
        fragment_end = printer.printed().index(interrupted_mark_bytes(store_printer))
        paper = printer.printed()[fragment_end:]
        mark = interrupted_mark_bytes(store_printer)
        expected = mark + b"".join([
            await receipt_bytes(node, sale["id"], USB) for sale in sales[1:]
        ])
        assert paper == expected  # in order, each once, the cut-short one after its mark
        done = await events(node, "print_job_done")
        assert [d["copy"] for d in done] == ["original"] * 4
        assert len(await events(node, "drawer_opened")) == 1


async def test_unplug_and_replug_are_seen_within_two_seconds_and_printing_resumes(
    tmp_path: Path,
) -> None:
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    # The production poll interval: what store IT gets.
    async with printing_node(tmp_path, [USB], backend, poll=0.5) as node, node.till() as till:
        await till.call("printer/subscribe")
        worker = node_of(node).print_queue.workers["caisse"]
        backend.unplug(printer)
        await eventually(lambda: worker.status.state == "unplugged", within=2.0,
                         what="the unplug to be seen")
        assert worker.status.detail.startswith("unplugged: check the USB cable")
        sale = await sell(till)
        assert await job_statuses(node) == ["pending"]
        backend.plug(printer)
        await eventually(lambda: worker.status.state == "ready", within=2.0,
                         what="the replug to be seen")
        await eventually(all_done(node, 1), what="the receipt")
        assert printer.printed() == await receipt_bytes(node, sale["id"], USB, open_drawer=True)
        await till.call("ping")  # replies come after the pushes queued before them
        states = [e["event"]["printer"]["state"] for e in till.events
                  if e["event"].get("type") == "printer_status"]
        assert states[:2] == ["unplugged", "ready"]


async def test_unplugged_mid_receipt_it_prints_again_whole_after_a_mark(tmp_path: Path) -> None:
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    async with printing_node(tmp_path, [USB], backend) as node, node.till() as till:
        printer.after(300, lambda: backend.unplug(printer))
        sale = await sell(till, barcodes=BARCODES * 10)  # long enough for several chunks
        worker = node_of(node).print_queue.workers["caisse"]
        await eventually(lambda: worker.status.state == "unplugged", what="the unplug")

        async def interrupted() -> bool:
            return await job_statuses(node) == ["interrupted"]

        await eventually(interrupted, what="the job to be marked interrupted")
        backend.plug(printer)
        await eventually(all_done(node, 1), what="the receipt")
        original = await receipt_bytes(node, sale["id"], USB, open_drawer=True)
        again = await receipt_bytes(node, sale["id"], USB)  # the drawer already opened
        paper = printer.printed()
        fragment = paper[: paper.index(interrupted_mark_bytes(USB))]
        assert original.startswith(fragment) and FEED_AND_CUT not in fragment
        assert paper == fragment + interrupted_mark_bytes(USB) + again
        assert paper.count(drawer_pulse(2)) == 1
        assert [d["copy"] for d in await events(node, "print_job_done")] == ["original"]


async def test_a_200_line_receipt_prints_complete_and_in_order(tmp_path: Path) -> None:
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        sale = await sell(till, barcodes=[BARCODES[n % 4] for n in range(200)])
        assert len(sale["lines"]) == 200
        await eventually(all_done(node, 1), what="the long receipt")
        expected = await receipt_bytes(node, sale["id"], USB, open_drawer=True)
        assert printer.printed() == expected
        assert len(expected) > 10 * 1024  # more than ten USB chunks
        # Between chunks the node asked the printer how it was doing.
        assert printer.received.count(b"\x10\x04\x01") > 10
        names = [line["name"].encode("cp858") for line in sale["lines"]]
        position = 0
        for name in names:
            position = printer.printed().index(name, position) + len(name)


async def test_a_stalled_write_is_retried_without_losing_the_receipt(tmp_path: Path) -> None:
    printer = FakePrinter(stalled_writes=1)
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        sale = await sell(till, "card")
        await eventually(all_done(node, 1), what="the receipt")
        receipt = await receipt_bytes(node, sale["id"], USB)
        assert printer.printed().endswith(receipt)
        assert printer.printed().count(FEED_AND_CUT) == 2  # the short mark, then the receipt


async def test_a_printer_without_a_status_channel_still_prints(tmp_path: Path) -> None:
    clone = FakePrinter(vendor=0x0416, product=0x5011, interface_class=0xFF,
                        has_status_channel=False, kernel_driver_active=False)
    printer = PrinterConfig("caisse", kind="usb", usb="0416:5011", width=32, paper="58mm")
    backend = FakeUsbBackend(clone)
    async with printing_node(tmp_path, [printer], backend) as node, \
            node.till() as till:
        sale = await sell(till)
        await eventually(all_done(node, 1), what="the receipt")
        assert clone.printed() == await receipt_bytes(node, sale["id"], printer,
                                                      open_drawer=True)
        status = node_of(node).print_queue.statuses()[0]
        assert status["detail"] == "ready (this printer does not report its status)"
        backend.unplug(clone)  # still noticed, though it never answers DLE EOT
        worker = node_of(node).print_queue.workers["caisse"]
        await eventually(lambda: worker.status.state == "unplugged", what="the unplug")


async def test_permission_denied_says_what_to_install(tmp_path: Path) -> None:
    printer = FakePrinter(permission_denied=True)
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node:
        health = await (await node.session.get(f"{node.url}/healthz")).json()
        assert health["printers"][0]["state"] == "permission_denied"
        assert health["printers"][0]["detail"] == (
            "permission denied: install systemd/99-edge-escpos.rules")


async def _crash_after(tmp_path: Path, printer: FakePrinter, backend: FakeUsbBackend,
                       steps: list[str]) -> dict:
    """A cash sale, then what a node finds after kill -9 mid-job: these steps and nothing after.

    The queue records each step before the bytes it announces go out:
    `print_job_started`, the pulse, `drawer_opened`, the text,
    `print_job_cutting`, the cut, `print_job_done`.
    """
    printer.paper_out = True  # the receipt waits: the "crash" writes its steps
    async with printing_node(tmp_path, [USB], backend) as node, node.till() as till:
        sale = await sell(till)  # cash: the drawer should open
        [job] = await events(node, "print_requested")
    crashed = Node(Config(data_dir=tmp_path, advertise=False, printers=(USB,)), backend)
    # The journal alone (the queue must not run), signing as the node does.
    crashed.journal.trust = TrustFolder(tmp_path).load(crashed.config.store_id)
    await crashed.journal.open()
    bodies = {
        "print_job_started": {"copy": "original"},
        "drawer_opened": {"reason": "cash sale", "sale_id": sale["id"]},
        "print_job_cutting": {"copy": "original"},
    }

    def write(tx: Tx) -> None:
        for step in steps:
            tx.append(step, {"job_id": job["job_id"], "printer": "caisse", **bodies[step]})

    await crashed.journal.write(write)
    await crashed.journal.close()
    printer.paper_out = False
    return sale


async def test_a_crash_before_the_pulse_was_confirmed_says_unknown_and_prints_the_original(
    tmp_path: Path,
) -> None:
    """Started, nothing after: no text went out (the pulse goes alone, first, and is
    journaled before any text), so the receipt is the original, with no mark; whether
    the drawer opened cannot be known: `drawer_unknown`, never `drawer_opened`, no pulse."""
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    sale = await _crash_after(tmp_path, printer, backend, ["print_job_started"])
    async with printing_node(tmp_path, [USB], backend) as node:
        await eventually(all_done(node, 1), what="the receipt after the crash")
        assert printer.printed() == await receipt_bytes(node, sale["id"], USB)
        assert await events(node, "drawer_opened") == []
        [unknown] = await events(node, "drawer_unknown")
        assert unknown["sale_id"] == sale["id"] and unknown["reason"] == "cash sale"
        done = await events(node, "print_job_done")
        assert [d["copy"] for d in done] == ["original"]


async def test_a_crash_after_the_pulse_and_before_the_cut_prints_the_original_after_a_mark(
    tmp_path: Path,
) -> None:
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    sale = await _crash_after(tmp_path, printer, backend, ["print_job_started", "drawer_opened"])
    async with printing_node(tmp_path, [USB], backend) as node:
        await eventually(all_done(node, 1), what="the receipt after the crash")
        original = await receipt_bytes(node, sale["id"], USB)
        assert printer.printed() == interrupted_mark_bytes(USB) + original
        assert drawer_pulse(2) not in printer.printed()  # it opened before the crash
        assert len(await events(node, "drawer_opened")) == 1
        assert await events(node, "drawer_unknown") == []


async def test_a_crash_once_the_cut_may_have_gone_prints_a_marked_duplicate(
    tmp_path: Path,
) -> None:
    printer = FakePrinter()
    backend = FakeUsbBackend(printer)
    sale = await _crash_after(tmp_path, printer, backend,
                              ["print_job_started", "drawer_opened", "print_job_cutting"])
    async with printing_node(tmp_path, [USB], backend) as node:
        await eventually(all_done(node, 1), what="the copy after the crash")
        duplicate = await receipt_bytes(node, sale["id"], USB, copy="duplicate")
        assert printer.printed() == interrupted_mark_bytes(USB) + duplicate
        done = await events(node, "print_job_done")
        assert [d["copy"] for d in done] == ["duplicate"]
