"""What tills do with printers: their status, reprints, and opening the drawer with no sale."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CommandFailed, NodeUnderTest, node_of
from fake_usb import FakePrinter, FakeUsbBackend
from printing import all_done, events, eventually, printing_node, receipt_bytes, sell
from signing_support import identity

from edge.config import ConfigError, PrinterConfig, parse_config
from edge.devices.escpos import drawer_pulse
from edge.devices.store_printers import announce_printers, route_for
from edge.journal.store import Journal

USB = PrinterConfig("caisse", kind="usb", drawer_pin=5)


async def test_a_till_sees_its_printer_and_every_printer_status(node: NodeUnderTest) -> None:
    async with node.till() as till:
        status = await till.call("printer/status")
    assert status["printer"] == "receipt"
    [printer] = status["printers"]
    assert (printer["name"], printer["kind"], printer["state"]) == ("receipt", "file", "ready")
    assert printer["detail"].startswith("ready: receipts in ")


async def test_a_reprint_is_a_marked_duplicate_that_never_opens_the_drawer(
    tmp_path: Path,
) -> None:
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        sale = await sell(till)
        await eventually(all_done(node, 1), what="the receipt")
        job = await till.call("printer/reprint", sale_id=sale["id"])
        assert job["printer"] == "caisse"
        await eventually(all_done(node, 2), what="the duplicate")
        original = await receipt_bytes(node, sale["id"], USB, open_drawer=True)
        duplicate = await receipt_bytes(node, sale["id"], USB, copy="duplicate", copy_number=1)
        assert printer.printed() == original + duplicate
        assert printer.printed().count(drawer_pulse(5)) == 1
        requested = (await events(node, "print_requested"))[-1]
        assert requested["copy"] == "duplicate" and requested["requested_by"] == "alice"
        assert requested["copy_number"] == job["copy_number"] == 1
        with pytest.raises(CommandFailed) as failure:
            await till.call("printer/reprint", sale_id="no-such-sale")
        assert failure.value.code == "unknown_sale"


async def test_no_sale_opens_the_drawer_for_a_manager_with_a_reason(tmp_path: Path) -> None:
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node:
        async with node.till() as till:  # Alice is a cashier
            with pytest.raises(CommandFailed) as failure:
                await till.call("drawer/open", reason="change for the bakery")
            assert failure.value.code == "manager_required"
        async with node.till(cashier="bruno", pin="567890") as till:
            with pytest.raises(CommandFailed) as failure:
                await till.call("drawer/open", reason="   ")
            assert failure.value.code == "invalid_field"
            await till.call("drawer/open", reason="change for the bakery")
            await eventually(all_done(node, 1), what="the drawer")
        assert printer.printed() == b"\x1b@\x1bt\x13" + drawer_pulse(5)
        [opened] = await events(node, "drawer_opened")
        assert opened["reason"] == "no sale" and opened["note"] == "change for the bakery"
        assert opened["cashier"] == "bruno" and opened["printer"] == "caisse"


async def test_printer_status_changes_are_pushed_until_unsubscribed(tmp_path: Path) -> None:
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        await till.call("printer/subscribe")
        subscription = till.next_id
        printer.cover_open = True
        await eventually(lambda: node_of(node).print_queue.workers["caisse"].status.state
                         == "cover_open", what="the cover")
        await till.call("ping")
        [pushed] = [e for e in till.events if e["id"] == subscription]
        assert pushed["event"]["type"] == "printer_status"
        assert pushed["event"]["printer"]["detail"] == "cover open: close the printer's cover"
        await till.call("unsubscribe_events", subscription=subscription)
        printer.cover_open = False
        await eventually(lambda: node_of(node).print_queue.workers["caisse"].status.printable)
        await till.call("ping")
        assert len([e for e in till.events if e["id"] == subscription]) == 1


async def test_a_till_with_no_printer_is_told(tmp_path: Path) -> None:
    bar = PrinterConfig("bar", tills=("T09",))
    async with printing_node(tmp_path, [bar]) as node, node.till() as till:
        assert (await till.call("printer/status"))["printer"] is None
        with pytest.raises(CommandFailed) as failure:
            await till.call("printer/reprint", sale_id="x")
        assert failure.value.code == "no_printer"


async def test_which_till_prints_where_across_the_store(tmp_path: Path) -> None:
    here, there = (Journal(tmp_path / f"{name}.sqlite3", origin=name, trust=identity(name))
                   for name in ("here", "there"))
    await here.open()
    await there.open()
    try:
        await announce_printers(here, [{"name": "bar", "kind": "file", "tills": ["T03"]},
                                       {"name": "caisse", "kind": "file", "tills": []}])
        await announce_printers(there, [{"name": "terrasse", "kind": "usb",
                                         "tills": ["T04", "T05"]},
                                        {"name": "office", "kind": "file", "tills": []}])
        theirs = [event async for event in there.events()]
        await here.write(lambda tx: [tx.apply(event) for event in theirs])

        async def route(journal: Journal, till: str) -> tuple[str, str] | None:
            printer = await route_for(journal, till)
            return (printer.node, printer.name) if printer else None

        assert await route(here, "T03") == ("here", "bar")
        assert await route(here, "T05") == ("there", "terrasse")  # on another node
        assert await route(here, "T01") == ("here", "caisse")  # this node's default
        await here.write(lambda tx: tx.append("printers_announced", {
            "node": "here", "printers": [{"name": "bar", "kind": "file", "tills": ["T03"]}]}))
        assert await route(here, "T01") == ("there", "office")  # another node's default
        # A node that has not heard of the printer listing T03 uses its default.
        assert await route(there, "T03") == ("there", "office")
    finally:
        await here.close()
        await there.close()


def test_printer_settings_are_checked_in_plain_words() -> None:
    raw = {"store": {"id": "s"}, "printers": [
        {"name": "a", "kind": "usb", "usb": "4b8:202", "code_page": "utf8", "drawer_pin": 3},
        {"name": "b", "kind": "network", "paper": "57mm", "tills": ["T01"]},
        {"name": "b", "kind": "file", "tills": ["T01"]},
        {"name": "c", "kind": "network", "host": "10.0.0.9", "port": 70000},
        {"name": "d", "width": "wide"},
    ]}
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "edge.toml")
    assert error.value.problems == [
        "edge.toml: printer 'a': usb must be vendor:product in hex, like \"04b8:0202\" "
        "(`edge devices` lists them)",
        "edge.toml: printer 'a': code_page must be one of pc858, wpc1252, iso8859-15, pc850, "
        "pc437, pc852",
        "edge.toml: printer 'a': drawer_pin must be 2 or 5",
        "edge.toml: printer 'b': paper must be 80mm or 58mm",
        "edge.toml: printer 'b': a network printer needs host (its address)",
        "edge.toml: printer 'c': port must be between 1 and 65535",
        "edge.toml: printer 'd': width must be a whole number",
        "edge.toml: two printers are named 'b'",
        "edge.toml: till T01 is listed by two printers",
    ]


def test_58mm_paper_means_32_characters_by_default() -> None:
    config = parse_config({"store": {"id": "s"}, "printers": [
        {"name": "p", "kind": "usb", "usb": "0416:5011", "paper": "58mm", "tills": ["T01"]},
    ]}, "edge.toml")
    [printer] = config.printers
    assert (printer.width, printer.usb_vendor, printer.usb_product, printer.tills) == (
        32, 0x0416, 0x5011, ("T01",))
