"""Head office down while a store sells 10,000 sales; it comes back; everything arrives once.

Two nodes, five tills. Most sales are written straight through the journal
(10,000 websocket round trips would take minutes); some go through the real
till websocket. Node A also holds node B's events (as peer replication
leaves them) and forwards them: head office keeps one copy of each.
Run against SQLite and PostgreSQL head-office storage: the full 10,000 once (SQLite),
and 2,000 against PostgreSQL, which still gives several upload batches from each node
(500 events at most each), B's events sent by both nodes, and the outage with its
retries and backlog: everything the test asserts of the storage, in a fifth of the time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from conftest import NodeUnderTest, node_of
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for

from edge.headoffice.server import COUNTERS
from edge.journal.chain import Event, chain_problems
from edge.journal.store import Journal, Tx
from edge.selling.money import Line, basket_totals

STORE = "demo-boulangerie"
SALES = {"sqlite": 10_000, "postgresql": 2_000}
WEBSOCKET_SALES_PER_NODE = 3
BAGUETTE = "2000001000014"


def sale_body(till: str, receipt_no: int) -> dict[str, Any]:
    lines = [{"id": str(uuid.uuid4()), "product_id": "p0001", "barcode": BAGUETTE,
              "name": "Baguette tradition", "unit_price": 120, "vat_rate": 550,
              "quantity": 1 + receipt_no % 3, "total": 120 * (1 + receipt_no % 3)}]
    totals = basket_totals(Line(ln["unit_price"], ln["quantity"], ln["vat_rate"]) for ln in lines)
    return {"id": str(uuid.uuid4()), "till": till, "receipt_no": receipt_no,
            "receipt_number": f"{till}-{receipt_no:06d}", "cashier": "alice", "lines": lines,
            "totals": totals, "tenders": [{"method": "card", "amount": totals["total"],
                                           "reference": f"A{receipt_no}"}], "change": 0}


async def sell_in_bulk(journal: Journal, tills: list[str], count: int) -> None:
    """`count` sales spread over `tills`, 500 to a transaction."""
    numbers = dict.fromkeys(tills, 1000)  # far from the websocket tills' numbers
    bodies = []
    for index in range(count):
        till = tills[index % len(tills)]
        numbers[till] += 1
        bodies.append(sale_body(till, numbers[till]))
    for start in range(0, count, 500):
        chunk = bodies[start:start + 500]

        def work(tx: Tx, chunk: list[dict[str, Any]] = chunk) -> None:
            for body in chunk:
                tx.append("sale_completed", body)

        await journal.write(work)


async def sell_through_websocket(node: NodeUnderTest, count: int) -> None:
    async with node.till() as till:
        for _ in range(count):
            basket = str(uuid.uuid4())
            await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                            barcode=BAGUETTE)
            await till.call("sale/complete", basket_id=basket,
                            tenders=[{"method": "cash", "amount": 500}])


async def own_events(journal: Journal) -> list[Event]:
    return [event async for event in journal.events(journal.origin)]


async def forward(source: Journal, target: Journal) -> int:
    """Give `target` what `source` wrote, as peer replication would."""
    events = await own_events(source)
    for start in range(0, len(events), 500):
        chunk = events[start:start + 500]
        await target.write(lambda tx, chunk=chunk: [tx.apply(event) for event in chunk])
    return len(events)


async def health(node: NodeUnderTest) -> dict[str, Any]:
    async with node.session.get(f"{node.url}/healthz") as response:
        return (await response.json())["headoffice"]


async def settled(node: NodeUnderTest) -> bool:
    """Every receipt printed (no more events coming) and head office has everything."""
    journal = node_of(node).journal
    pending = await journal.read_one("SELECT COUNT(*) AS n FROM print_jobs WHERE status = "
                                     "'pending' AND node = ?", (journal.origin,))
    state = await health(node)
    return pending["n"] == 0 and state["state"] == "ok" and state["backlog_events"] == 0


async def test_ten_thousand_sales_through_an_outage_arrive_exactly_once(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    sales = SALES[headoffice_db.split(":", 1)[0]]
    headoffice = HeadOffice(headoffice_db, ca)
    storage = await headoffice.open_storage()
    token = await storage.add_store(STORE, "Boulangerie du Marché")
    await storage.close()  # head office is down from here on

    async with store_node(tmp_path / "a", headoffice.url, token, ca) as a, \
            store_node(tmp_path / "b", headoffice.url, token, ca) as b:
        node_a, node_b = node_of(a), node_of(b)
        await sell_through_websocket(a, WEBSOCKET_SALES_PER_NODE)
        await sell_through_websocket(b, WEBSOCKET_SALES_PER_NODE)
        bulk = sales - 2 * WEBSOCKET_SALES_PER_NODE
        await sell_in_bulk(node_a.journal, ["T11", "T12", "T13"], bulk * 6 // 10)
        await sell_in_bulk(node_b.journal, ["T21", "T22"], bulk - bulk * 6 // 10)
        forwarded = await forward(node_b.journal, node_a.journal)

        # Down: the store sells on, and says plainly why nothing leaves.
        await wait_for(lambda: node_a.sync.counters.errors >= 3, what="retries")
        state = await health(a)
        assert state["state"] == "failing"
        assert "cannot reach head office" in state["last_error"]
        assert state["backlog_events"] > bulk * 6 // 10 + forwarded
        assert state["oldest_unsent"] is not None
        async with a.session.get(f"{a.url}/metrics") as response:
            metrics = await response.text()
        assert "edge_headoffice_up 0\n" in metrics
        assert f"edge_headoffice_backlog_events {state['backlog_events']}" in metrics

        # Back: everything goes, and the nodes go quiet.
        server = await headoffice.start()
        try:
            await wait_for(lambda: settled(a), 90, "node A to settle")
            await wait_for(lambda: settled(b), 90, "node B to settle")
            received = {origin: await server.storage.events(STORE, origin)
                        for origin in (node_a.node_id, node_b.node_id)}
            assert await server.storage.conflicts(STORE) == []
            duplicates = server.app[COUNTERS].duplicates
        finally:
            await headoffice.stop()

        held = {node.node_id: await own_events(node.journal) for node in (node_a, node_b)}
        for origin, events in received.items():
            # Exactly once, in order, each chain intact as head office holds it.
            assert [(e.seq, e.hash) for e in events] == [(e.seq, e.hash) for e in held[origin]]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert chain_problems(events) == []
        received_sales = [e for events in received.values() for e in events
                          if e.type == "sale_completed"]
        assert len(received_sales) == sales
        assert len({e.body["id"] for e in received_sales}) == sales
        # Node A sent B's events too; head office kept one copy of each.
        assert node_a.sync.counters.pushed >= len(held[node_a.node_id]) + forwarded
        assert duplicates >= forwarded


async def test_healthz_says_sync_is_off_without_a_head_office(node: NodeUnderTest) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/healthz") as r:
        assert (await r.json())["headoffice"] == {"state": "disabled"}


async def test_without_continuous_sync_the_nightly_window_is_when_it_runs(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        night, noon = datetime(2026, 11, 25, 2, 30), datetime(2026, 11, 25, 12, 0)
        settings = {"continuous": False, "nightly_window": "02:00-03:00"}
        async with store_node(tmp_path / "day", headoffice.url, token, ca,
                              clock=lambda: noon, **settings) as day, \
                store_node(tmp_path / "night", headoffice.url, token, ca,
                           clock=lambda: night, **settings) as at_night:
            await wait_for(lambda: settled(at_night), 30, "the night sync")
            assert node_of(day).sync.counters.rounds == 0
            assert (await health(day))["backlog_events"] > 300
    finally:
        await headoffice.stop()
