"""One sale, one valid ticket, at most one drawer pulse: store-wide, whatever happens.

Real `edge serve` processes, killed with SIGKILL where the story needs it;
printers are file printers (their receipts.txt and escpos.bin are the paper)
or tests/fake_network_printer.py on 127.0.0.1. Also: a reprint that reaches
the printer's node before its sale waits for it; a reprint "instead" of an
original that never printed is the original; and the print_jobs projection is
the same whatever the order in which a job's events arrive.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import (
    CommandFailed,
    EdgeProcess,
    NodeUnderTest,
    Till,
    free_port,
    node_of,
    store_node_config,
)
from fake_network_printer import FakeNetworkPrinter
from fake_usb import FakePrinter, FakeUsbBackend
from printing import (
    BARCODES,
    events,
    eventually,
    job_statuses,
    printing_node,
    receipt_bytes,
    sell,
)

from edge.config import Config, PrinterConfig
from edge.devices import escpos, print_jobs  # noqa: F401  (print_jobs registers its projections)
from edge.devices.receipt import layout, receipt_store
from edge.journal.chain import Event
from edge.journal.event_types import project
from edge.journal.migrations import migrate
from edge.journal.store import connect

# --- helpers ------------------------------------------------------------------------


def rows(node: EdgeProcess, sql: str, params: tuple = ()) -> list[tuple]:
    try:
        conn = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True,
                               timeout=5)
    except sqlite3.OperationalError:
        return []
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []  # not made yet
    finally:
        conn.close()


def jobs_of(node: EdgeProcess, sale_id: str) -> list[tuple]:
    """Every column of the sale's print jobs but the local row order, sorted."""
    return sorted(rows(node, """SELECT id, printer, node, body, created_at, sale_id, status,
        attempts, partial, cut_sent, drawer_opened, drawer_unknown, cancel_requested,
        original_started FROM print_jobs WHERE sale_id = ?""", (sale_id,)))


def count_events(node: EdgeProcess, type_: str, sale_id: str) -> int:
    return len(rows(node, """SELECT 1 FROM events WHERE type = ?
        AND (json_extract(body, '$.sale_id') = ? OR json_extract(body, '$.id') = ?)""",
                    (type_, sale_id, sale_id)))


async def pair(node: EdgeProcess, session: aiohttp.ClientSession) -> str:
    return await NodeUnderTest(node.url, node.data_dir, session).pair()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def till_on(node: EdgeProcess, session: aiohttp.ClientSession, token: str) -> Any:
    return NodeUnderTest(node.url, node.data_dir, session).till(token)


async def add_lines(till: Till, basket_id: str) -> None:
    for barcode in BARCODES[:2]:
        await till.call("basket/add", basket_id=basket_id, line_id=str(uuid.uuid4()),
                        barcode=barcode)


def cash(till_total: int) -> list[dict[str, Any]]:
    return [{"method": "cash", "amount": till_total + 500}]


async def until(check: Callable[[], Any], what: str, within: float = 30) -> None:
    await eventually(lambda: asyncio.to_thread(check), within=within, what=what)


def two_nodes(tmp_path: Path, more_a: str = "", more_b: str = "") -> list[EdgeProcess]:
    ports = [free_port(), free_port()]
    nodes = []
    for number, (name, more) in enumerate((("a", more_a), ("b", more_b))):
        other = ports[1 - number]
        config = store_node_config(tmp_path / name, [f"http://127.0.0.1:{other}"], more=more)
        nodes.append(EdgeProcess(tmp_path / name / "data", ports[number],
                                 ["--config", str(config)]))
    return nodes


async def start(*nodes: EdgeProcess) -> None:
    # In a thread: a fake printer on this loop must keep answering meanwhile.
    for node in nodes:
        await asyncio.to_thread(node.start)


def stop_all(nodes: list[EdgeProcess]) -> None:
    for node in nodes:
        node.stop()


def knows(node: EdgeProcess, sql: str, params: tuple = ()) -> bool:
    return bool(rows(node, sql, params))


# --- point 4: a sale resent through another node after a failover -------------------


async def test_a_sale_resent_through_another_node_prints_one_original_and_one_pulse(
    tmp_path: Path, session: aiohttp.ClientSession,
) -> None:
    """Node A records the sale and dies before passing it on (or answering); the till
    sends `sale/complete` again to B, which records it too. Both ask the till's
    printer (on B) for the receipt: one job, one original, one drawer pulse, even
    once A is back with its own request; both nodes end with the same jobs."""
    counter = tmp_path / "b" / "comptoir"
    # A's printer serves another till only: the till's receipts go to B's, from either node.
    a, b = nodes = two_nodes(
        tmp_path,
        more_a=f'[[printers]]\nname = "receipt"\npath = "{tmp_path / "a" / "other"}"\n'
               'tills = ["T99"]\n',
        more_b=f'[[printers]]\nname = "comptoir"\npath = "{counter}"\n')
    await start(a, b)
    try:
        token = await pair(a, session)
        await until(lambda: knows(b, "SELECT 1 FROM tills") and knows(
            a, "SELECT 1 FROM store_printers WHERE name = 'comptoir'"),
            "the till and the printer to replicate")
        basket_id = str(uuid.uuid4())
        async with till_on(a, session, token) as till:
            await add_lines(till, basket_id)
            total = (await till.call("basket/get"))["totals"]["total"]
        await until(lambda: len(rows(
            b, "SELECT 1 FROM events WHERE type = 'basket_line_added'")) == 2,
            "the basket to replicate")
        await asyncio.to_thread(b.stop)  # A cannot pass the sale on
        complete = {"basket_id": basket_id, "receipt_no": 1, "tenders": cash(total)}
        async with till_on(a, session, token) as till:
            first = await till.call("sale/complete", **complete)
        await asyncio.to_thread(a.kill)  # ...and dies: the till never heard (it resends)

        await start(b)
        async with till_on(b, session, token) as till:
            again = await till.call("sale/complete", **complete)
        assert again["id"] == first["id"] and again["hash"] != first["hash"]
        receipts = counter / "receipts.txt"
        number = first["receipt_number"]
        await until(lambda: receipts.exists() and number in receipts.read_text(),
                    "the receipt on B")

        await start(a)  # with its own request for the same receipt
        await until(lambda: count_events(b, "print_requested", first["id"]) == 2
                    and count_events(a, "print_requested", first["id"]) == 2,
                    "both requests on both nodes")
        await until(lambda: all(status in ("done", "superseded", "cancelled") for *_, status,
                                _, _, _, _, _, _, _ in jobs_of(b, first["id"])),
                    "every job of the sale to finish")
        await until(lambda: jobs_of(a, first["id"]) == jobs_of(b, first["id"]),
                    "both nodes to agree on the sale's jobs")
        text = receipts.read_text()
        assert text.count(f"Ticket {number}") == 1 and "DUPLICATA" not in text
        assert (counter / "escpos.bin").read_bytes().count(escpos.drawer_pulse(2)) == 1
        assert count_events(b, "drawer_opened", first["id"]) == 1
        assert len(jobs_of(b, first["id"])) == 1
    finally:
        stop_all(nodes)


async def test_a_receipt_superseded_elsewhere_never_prints_when_its_node_comes_back(
    tmp_path: Path, session: aiohttp.ClientSession,
) -> None:
    """Each node prints on its own printer here. A's receipt for the sale never
    started (its printer was off) when A died; B printed the sale's original. When
    A and its printer are back, A knows B's receipt holds the original: its own job
    is recorded `superseded` and prints nothing, pulses nothing."""
    fake = FakeNetworkPrinter()
    fake.port = free_port()  # nothing listens there yet: A's printer is off
    a, b = nodes = two_nodes(tmp_path, more_a=(
        f'[[printers]]\nname = "comptoir"\nkind = "network"\nhost = "127.0.0.1"\n'
        f"port = {fake.port}\n"))
    await start(a, b)
    try:
        token = await pair(a, session)
        await until(lambda: knows(b, "SELECT 1 FROM tills"), "the till to replicate")
        basket_id = str(uuid.uuid4())
        async with till_on(a, session, token) as till:
            await add_lines(till, basket_id)
            total = (await till.call("basket/get"))["totals"]["total"]
        await until(lambda: len(rows(
            b, "SELECT 1 FROM events WHERE type = 'basket_line_added'")) == 2,
            "the basket to replicate")
        await asyncio.to_thread(b.stop)
        complete = {"basket_id": basket_id, "receipt_no": 1, "tenders": cash(total)}
        async with till_on(a, session, token) as till:
            sale = await till.call("sale/complete", **complete)
        assert sale["print"]["node"] == a.node_id
        await asyncio.to_thread(a.kill)

        await start(b)
        async with till_on(b, session, token) as till:
            await till.call("sale/complete", **complete)
        receipts = b.data_dir / "printer" / "receipts.txt"
        number = sale["receipt_number"]
        await until(lambda: receipts.exists() and number in receipts.read_text(),
                    "the receipt on B")

        await start(a)  # its printer still off: it hears of B's receipt first
        await until(lambda: knows(a, """SELECT 1 FROM print_jobs WHERE sale_id = ?
            AND node = ? AND status = 'done'""", (sale["id"], b.node_id)),
            "B's receipt to reach A")
        await fake.start()
        try:
            await until(lambda: knows(a, """SELECT 1 FROM print_jobs WHERE sale_id = ?
                AND node = ? AND status = 'superseded'""", (sale["id"], a.node_id)),
                "A's own receipt to be superseded")
            assert fake.printed() == b""
        finally:
            await fake.stop()
        assert count_events(a, "drawer_opened", sale["id"]) == 1  # B's
        assert receipts.read_text().count(f"Ticket {number}") == 1
    finally:
        stop_all(nodes)


async def test_a_node_back_with_its_printer_on_waits_to_hear_its_peers_before_printing(
    tmp_path: Path, session: aiohttp.ClientSession,
) -> None:
    """As above, but A's printer is on when A comes back, and B is not there yet: A
    holds the receipt it had from before, prints what its till asks now, and once B
    is back and tells it B printed the sale, A's own receipt is superseded."""
    fake = FakeNetworkPrinter()
    fake.port = free_port()
    a, b = nodes = two_nodes(tmp_path, more_a=(
        f'[[printers]]\nname = "comptoir"\nkind = "network"\nhost = "127.0.0.1"\n'
        f"port = {fake.port}\n"))
    await start(a, b)
    try:
        token = await pair(a, session)
        await until(lambda: knows(b, "SELECT 1 FROM tills"), "the till to replicate")
        basket_id = str(uuid.uuid4())
        async with till_on(a, session, token) as till:
            await add_lines(till, basket_id)
            total = (await till.call("basket/get"))["totals"]["total"]
        await until(lambda: len(rows(
            b, "SELECT 1 FROM events WHERE type = 'basket_line_added'")) == 2,
            "the basket to replicate")
        await asyncio.to_thread(b.stop)
        complete = {"basket_id": basket_id, "receipt_no": 1, "tenders": cash(total)}
        async with till_on(a, session, token) as till:
            sale = await till.call("sale/complete", **complete)
        await asyncio.to_thread(a.kill)  # its printer was off: nothing printed

        await start(b)
        async with till_on(b, session, token) as till:
            await till.call("sale/complete", **complete)
        receipts = b.data_dir / "printer" / "receipts.txt"
        await until(lambda: receipts.exists() and sale["receipt_number"] in receipts.read_text(),
                    "the receipt on B")
        await asyncio.to_thread(b.stop)

        await fake.start()
        try:
            await start(a)  # its printer on, its peer away
            async with till_on(a, session, token) as till:
                await add_lines(till, basket_id := str(uuid.uuid4()))
                total = (await till.call("basket/get"))["totals"]["total"]
                now = await till.call("sale/complete", basket_id=basket_id, receipt_no=2,
                                      tenders=cash(total))
            await until(lambda: knows(a, "SELECT 1 FROM print_jobs WHERE sale_id = ? "
                                         "AND status = 'done'", (now["id"],)),
                        "the sale made now to print at once")
            assert sale["receipt_number"].encode() not in fake.printed()
            await start(b)
            await until(lambda: knows(a, """SELECT 1 FROM print_jobs WHERE sale_id = ?
                AND node = ? AND status = 'superseded'""", (sale["id"], a.node_id)),
                "A's earlier receipt to be superseded")
            assert sale["receipt_number"].encode() not in fake.printed()
            assert fake.printed().count(escpos.drawer_pulse(2)) == 1  # the sale made now
        finally:
            await fake.stop()
        assert count_events(a, "drawer_opened", sale["id"]) == 1  # B's
    finally:
        stop_all(nodes)


# --- point 9: killed before the pulse was confirmed -----------------------------------


def one_node_with(tmp_path: Path, fake: FakeNetworkPrinter) -> EdgeProcess:
    config = tmp_path / "edge.toml"
    config.write_text(
        '[store]\nid = "demo-boulangerie"\ndemo = true\n[server]\nadvertise = false\n'
        f'[[printers]]\nname = "comptoir"\nkind = "network"\nhost = "127.0.0.1"\n'
        f"port = {fake.port}\n"
    )
    return EdgeProcess(tmp_path / "data", free_port(), ["--config", str(config)])


def receipt_of(node: EdgeProcess, sale_id: str, copy: str) -> bytes:
    [(body, time, hash_)] = rows(node, "SELECT body, time, hash FROM sales WHERE id = ?",
                                 (sale_id,))
    sale = {**orjson.loads(body), "time": time, "hash": hash_, "cashier_name": "Alice"}
    store = receipt_store(Config())  # the demo store's sign, address and legal identity
    return escpos.encode_receipt(layout(sale, store, 48, copy))  # type: ignore[arg-type]


async def test_killed_before_the_pulse_is_confirmed_the_journal_says_unknown_and_the_cashier_opens(
    tmp_path: Path, session: aiohttp.ClientSession,
) -> None:
    """The printer freezes as the cash receipt begins (the drawer pulse never reaches
    it) and the node is killed: after the restart the journal says the pulse is
    unknown, never that the drawer opened; the receipt, of which nothing printed,
    is the original; the till is offered to open the drawer for that sale, once."""
    fake = FakeNetworkPrinter()
    await fake.start()
    node = one_node_with(tmp_path, fake)
    await start(node)
    try:
        token = await pair(node, session)
        fake.freeze_at_next_job = True
        async with till_on(node, session, token) as till:
            sale = await sell(till, "cash")
        await until(lambda: knows(node, "SELECT 1 FROM print_jobs WHERE status != 'pending'"),
                    "the receipt to start")
        await asyncio.to_thread(node.kill)
        assert fake.printed() == b""  # not a byte of it reached the printer
        await fake.come_back()
        await start(node)
        await until(lambda: knows(node, "SELECT 1 FROM print_jobs WHERE status = 'done'"),
                    "the receipt after the restart")

        assert count_events(node, "drawer_opened", sale["id"]) == 0
        assert count_events(node, "drawer_unknown", sale["id"]) == 1
        original = receipt_of(node, sale["id"], "original")
        assert fake.printed() == original  # no pulse, no mark, no DUPLICATA

        async with till_on(node, session, await pair(node, session)) as other_till:
            with pytest.raises(CommandFailed) as not_hers:  # another till's drawer: a manager's
                await other_till.call("drawer/open_for_sale", sale_id=sale["id"])
            assert not_hers.value.code == "manager_required"
        async with till_on(node, session, token) as till:
            status = await till.call("printer/status")
            [doubt] = status["drawers_in_doubt"]
            assert (doubt["sale_id"], doubt["receipt_number"]) == (sale["id"],
                                                                   sale["receipt_number"])
            job = await till.call("drawer/open_for_sale", sale_id=sale["id"])
            assert job["printer"] == "comptoir"
            with pytest.raises(CommandFailed) as twice:
                await till.call("drawer/open_for_sale", sale_id=sale["id"])
            assert twice.value.code == "drawer_already_requested"
            card = await sell(till, "card")
            with pytest.raises(CommandFailed) as no_doubt:
                await till.call("drawer/open_for_sale", sale_id=card["id"])
            assert no_doubt.value.code == "drawer_not_in_doubt"
            await until(lambda: count_events(node, "drawer_opened", sale["id"]) == 1,
                        "the drawer to open")
            assert (await till.call("printer/status"))["drawers_in_doubt"] == []
        assert fake.printed().count(escpos.drawer_pulse(2)) == 1
    finally:
        await asyncio.to_thread(node.stop)
        await fake.stop()


# --- point 11: a reprint before its sale; a reprint instead of an unprinted original --


async def test_a_reprint_that_arrives_before_its_sale_waits_for_it(tmp_path: Path) -> None:
    """A reprint asked for through another node can reach the printer's node before
    the sale does: the job waits (`print_job_waiting`, visible) and prints when the
    sale arrives; one whose sale never comes is given up after `sale_wait`."""
    printer = FakePrinter()
    async with printing_node(tmp_path, [USB], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        journal = node_of(node).journal
        basket_id = str(uuid.uuid4())
        till_code = (await till.call("sale/held"))["till"]
        sale_id = f"{basket_id}@{till_code}"  # the sale the till is about to make
        def request(tx: Any, sale: str) -> None:
            tx.append("print_requested", {
                "job_id": str(uuid.uuid4()), "printer": "caisse", "node": journal.origin,
                "kind": "receipt", "sale_id": sale, "open_drawer": False,
                "copy": "duplicate", "requested_by": "alice"})

        await journal.write(lambda tx: request(tx, sale_id))
        await eventually(lambda: job_statuses(node), what="the job")
        await eventually(lambda: _has(events(node, "print_job_waiting")), what="the wait")
        assert await job_statuses(node) == ["waiting"]

        for barcode in BARCODES[:2]:
            await till.call("basket/add", basket_id=basket_id, line_id=str(uuid.uuid4()),
                            barcode=barcode)
        basket = await till.call("basket/get")
        await till.call("sale/complete", basket_id=basket_id, tenders=[
            {"method": "card", "amount": basket["totals"]["total"], "reference": "TPE-1"}])
        await eventually(lambda: _all(job_statuses(node), "done", 2), what="both receipts")
        duplicate = await receipt_bytes(node, sale_id, USB, copy="duplicate")
        original = await receipt_bytes(node, sale_id, USB)
        assert sorted([printer.printed().count(duplicate), printer.printed().count(original)]) \
            == [1, 1]

        node_of(node).print_queue.sale_wait = timedelta(0)
        await journal.write(lambda tx: request(tx, "a-sale-that-never-comes"))
        await eventually(lambda: _outcomes(node, "no_such_sale"), what="the give-up")
        waits = await events(node, "print_job_waiting")
        assert [w["sale_id"] for w in waits] == [sale_id, "a-sale-that-never-comes"]


async def _has(pending: Any) -> bool:
    return bool(await pending)


async def _all(pending: Any, status: str, count: int) -> bool:
    statuses = await pending
    return len(statuses) == count and all(s == status for s in statuses)


async def _outcomes(node: NodeUnderTest, outcome: str) -> bool:
    return any(d["outcome"] == outcome for d in await events(node, "print_job_done"))


USB = PrinterConfig("caisse", kind="usb")  # the first printer: the till's
SPARE = PrinterConfig("secours")  # a file printer


async def test_a_reprint_instead_of_an_original_that_never_printed_is_the_original(
    tmp_path: Path,
) -> None:
    """The till's printer cannot print (its node may be down): the cashier sends the
    receipt to another printer. Called off, the first never prints, so the customer's
    only ticket is the one printed instead: the original. Once an original may have
    printed, a copy sent elsewhere is a DUPLICATA."""
    printer = FakePrinter(paper_out=True)
    async with printing_node(tmp_path, [USB, SPARE], FakeUsbBackend(printer)) as node, \
            node.till() as till:
        here = node_of(node).node_id
        stranded = await sell(till, "cash")
        job = await till.call("printer/reprint", sale_id=stranded["id"], printer="secours",
                              node=here)
        assert job["copy"] == "original"
        spare = node_of(node).print_queue.workers["secours"].text_path
        await eventually(lambda: spare.exists() and stranded["receipt_number"]
                         in spare.read_text(), what="the receipt on the spare printer")
        assert "DUPLICATA" not in spare.read_text()

        printer.paper_out = False
        await eventually(lambda: _outcomes(node, "cancelled"), what="the first one called off")
        assert printer.printed() == b""  # never printed, and no pulse: the job was called off

        printed = await sell(till, "card")
        await eventually(lambda: printer.printed().count(b"Merci") == 1, what="its receipt")
        await eventually(lambda: _all_finished(node), what="its receipt to be recorded")
        copy = await till.call("printer/reprint", sale_id=printed["id"], printer="secours",
                               node=here)
        assert copy["copy"] == "duplicate"
        await eventually(lambda: spare.read_text().count("DUPLICATA") == 2, what="the copy")


async def _all_finished(node: NodeUnderTest) -> bool:
    return all(s in ("done", "cancelled") for s in await job_statuses(node))


# --- the print_jobs projection: the same whatever the order of arrival --------------


def _event(origin: str, seq: int, type_: str, body: dict[str, Any], time: str) -> Event:
    return Event(origin, seq, f"{origin}-{seq}", time, type_, body, "", f"{origin}{seq:04d}")


def _interleavings(chains: list[list[Event]]) -> list[list[Event]]:
    """Every order of the events that keeps each origin's own order."""
    if not any(chains):
        return [[]]
    out = []
    for index, chain in enumerate(chains):
        if chain:
            rest = [*chains[:index], chain[1:], *chains[index + 1:]]
            out += [[chain[0], *tail] for tail in _interleavings(rest)]
    return out


def test_print_jobs_are_the_same_on_every_node_whatever_the_order_of_arrival(
    tmp_path: Path,
) -> None:
    """Two nodes ask the printer's node P for the same receipt (one job id), at other
    times; P prints it; B calls another job off, which P records. Every interleaving
    that keeps each origin's order (the journal drops repeats) gives the same table."""
    job = str(uuid.uuid4())
    other = str(uuid.uuid4())
    request = {"job_id": job, "printer": "comptoir", "node": "p", "kind": "receipt",
               "sale_id": "s1", "open_drawer": True}
    chains = [
        [_event("a", 1, "print_requested", request, "2026-01-01T10:00:00.000Z")],
        [_event("b", 1, "print_requested", request, "2026-01-01T10:00:05.000Z"),
         _event("b", 2, "print_job_cancelled", {"job_id": other, "printer": "comptoir",
                                                "node": "p", "by": "alice"},
                "2026-01-01T10:00:06.000Z")],
        [_event("p", 1, "print_job_started", {"job_id": job, "printer": "comptoir",
                                              "copy": "original"}, "2026-01-01T10:00:06.000Z"),
         _event("p", 2, "drawer_opened", {"job_id": job, "printer": "comptoir",
                                          "reason": "cash sale", "sale_id": "s1"},
                "2026-01-01T10:00:06.100Z"),
         _event("p", 3, "print_job_cutting", {"job_id": job, "printer": "comptoir",
                                              "copy": "original"}, "2026-01-01T10:00:06.200Z"),
         _event("p", 4, "print_job_done", {"job_id": job, "printer": "comptoir",
                                           "outcome": "done", "copy": "original"},
                "2026-01-01T10:00:06.300Z"),
         _event("p", 5, "print_job_done", {"job_id": other, "printer": "comptoir",
                                           "outcome": "cancelled"}, "2026-01-01T10:00:07.000Z")],
    ]
    db = connect(tmp_path / "projection.sqlite3")
    migrate(db)
    tables = set()
    orders = _interleavings(chains)
    assert len(orders) == 168
    for order in orders:
        db.execute("DELETE FROM print_jobs")
        for event in order:
            project(db, event)
        tables.add(tuple(sorted(tuple(row) for row in db.execute(
            """SELECT id, printer, node, body, created_at, sale_id, status, cut_sent,
            drawer_opened, drawer_unknown, cancel_requested, original_started
            FROM print_jobs"""))))
    db.close()
    assert len(tables) == 1
    [table] = tables
    assert [(row[0], row[6]) for row in table] == sorted([(job, "done"), (other, "cancelled")])
