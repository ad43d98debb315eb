"""A restarted node holds its earlier print jobs until every peer it knows has told it
what the store did.

One peer that is itself behind (it was down too, or cut from the node that
printed the sale meanwhile) says nothing about that: releasing on its word
printed a second original and pulsed the drawer a second time, although the
node that printed was back seconds later, well within PEERS_HEARD_WITHIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import aiohttp
from conftest import EdgeProcess, free_port, store_node_config
from fake_network_printer import FakeNetworkPrinter
from test_peers import Partition
from test_print_exactly_once import (
    add_lines,
    cash,
    knows,
    pair,
    rows,
    session,  # noqa: F401  (fixture)
    start,
    stop_all,
    till_on,
    until,
)

from edge.devices import escpos


async def test_a_peer_that_is_behind_does_not_release_the_print_hold(
    tmp_path: Path, session: aiohttp.ClientSession,  # noqa: F811
) -> None:
    fake = FakeNetworkPrinter()
    fake.port = free_port()
    port_a, port_b, port_c = free_port(), free_port(), free_port()
    async with contextlib.AsyncExitStack() as stack:
        # B is reached (and reaches the others) only through proxies the test cuts.
        a_to_b, b_to_a, b_to_c, c_to_b = [
            await stack.enter_async_context(Partition(port))
            for port in (port_b, port_a, port_c, port_b)]
        printer = (f'[[printers]]\nname = "comptoir"\nkind = "network"\nhost = "127.0.0.1"\n'
                   f"port = {fake.port}\n")
        peers = {"a": [a_to_b.url, f"http://127.0.0.1:{port_c}"],
                 "b": [b_to_a.url, b_to_c.url],
                 "c": [f"http://127.0.0.1:{port_a}", c_to_b.url]}
        a, b, c = nodes = [
            EdgeProcess(tmp_path / name / "data", port, ["--config", str(store_node_config(
                tmp_path / name, peers[name], more=printer if name == "a" else ""))])
            for name, port in (("a", port_a), ("b", port_b), ("c", port_c))]
        await start(a, b, c)
        try:
            token = await pair(a, session)
            basket_id = str(uuid.uuid4())
            async with till_on(a, session, token) as till:
                await add_lines(till, basket_id)
                total = (await till.call("basket/get"))["totals"]["total"]
            await until(lambda: len(rows(b, "SELECT 1 FROM events WHERE type = "
                                            "'basket_line_added'")) == 2
                        and knows(b, "SELECT 1 FROM tills"), "the basket to reach B")
            await asyncio.to_thread(c.stop)  # C will be behind
            for proxy in (a_to_b, b_to_a, b_to_c, c_to_b):
                proxy.cut()  # B cut from everyone
            complete = {"basket_id": basket_id, "receipt_no": 1, "tenders": cash(total)}
            async with till_on(a, session, token) as till:
                sale = await till.call("sale/complete", **complete)  # A's printer is off
            await asyncio.to_thread(a.kill)  # dies before passing it on
            async with till_on(b, session, token) as till:
                await till.call("sale/complete", **complete)  # the till resends through B
            receipts = b.data_dir / "printer" / "receipts.txt"
            await until(lambda: receipts.exists() and sale["receipt_number"]
                        in receipts.read_text(), "B to print the original")

            await start(c)  # C is back, still cut from B: it knows nothing of B's print
            await fake.start()
            try:
                await start(a)  # A's printer is on; A links with C at once, with B soon
                await until(lambda: knows(c, "SELECT 1 FROM sales WHERE id = ?", (sale["id"],)),
                            "A and C to link")
                await asyncio.sleep(2)  # B is back within seconds, far inside 60 s
                for proxy in (a_to_b, b_to_a, b_to_c, c_to_b):
                    proxy.heal()
                await until(lambda: knows(a, """SELECT 1 FROM print_jobs WHERE sale_id = ?
                    AND node = ? AND status IN ('done', 'superseded')""",
                                          (sale["id"], a.node_id)), "A's job to finish")
                second_original = sale["receipt_number"].encode() in fake.printed()
                pulses = fake.printed().count(escpos.drawer_pulse(2))
            finally:
                await fake.stop()
            assert not second_original and pulses == 0, (
                f"A printed a second original of {sale['receipt_number']} with {pulses} "
                "drawer pulse(s): its print hold was released by C, which was behind")
        finally:
            stop_all(nodes)
