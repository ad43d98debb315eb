"""Parked baskets: set a customer aside under a name, serve the next, resume on any till.

On one node: parking frees the till, the basket is listed store-wide, any
till resumes it once, the others are told who holds it; logging out parks
the open basket under the cashier's name. Across two real nodes: a basket
parked on one is resumed on the other; two tills resuming it at once on
nodes cut apart end, once the nodes meet, with one holder on both, and the
other till is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from conftest import EdgeProcess, NodeUnderTest, Till, free_port, start_all, store_node_config
from test_basket_holding import code_of, refusal
from test_peers import Partition, converged, pair, wait_for_till

from edge.till_client import CommandFailed, TillClient

BAGUETTE, CROISSANT = "2000001000014", "2000002000013"
CASH = [{"method": "cash", "amount": 1000}]


def new_id() -> str:
    return str(uuid.uuid4())


async def fill(till: Till | TillClient, *barcodes: str) -> str:
    basket = new_id()
    for barcode in barcodes:
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=barcode)
    return basket


async def test_a_parked_basket_frees_the_till_and_any_till_resumes_it_once(
    node: NodeUnderTest,
) -> None:
    async with node.till(await node.pair("one")) as one, \
            node.till(await node.pair("two"), cashier="chloe", pin="2468") as two, \
            node.till(await node.pair("three")) as three:
        one_code, two_code = await code_of(one), await code_of(two)
        basket = await fill(one, BAGUETTE, BAGUETTE, CROISSANT)
        parked = await one.call("basket/park", basket_id=basket, name="  Mme   Dupont  ")
        again = await one.call("basket/park", basket_id=basket, name="other")  # a resend
        assert await one.call("basket/get") is None
        stale_add = refusal(await one.reply("basket/add", basket_id=basket, line_id=new_id(),
                                            barcode=BAGUETTE))
        next_customer = await fill(one, CROISSANT)
        listed = await three.call("basket/list_parked")
        assert all(b["id"] != basket for b in await three.call("basket/list_open"))
        # Another till resumes it; resuming again (a resend) returns it, the others are told.
        resumed = await two.call("basket/resume", basket_id=basket)
        resent = await two.call("basket/resume", basket_id=basket)
        taken = refusal(await three.reply("basket/resume", basket_id=basket))
        busy = refusal(await one.reply("basket/resume", basket_id=basket))
        added = await two.call("basket/add", basket_id=basket, line_id=new_id(),
                               barcode=CROISSANT)
        sold = await two.call("sale/complete", basket_id=basket, tenders=CASH)
        after_sale = refusal(await three.reply("basket/resume", basket_id=basket))
        assert await three.call("basket/list_parked") == []
        assert (await one.call("basket/get"))["id"] == next_customer
    assert parked == again
    assert {k: parked[k] for k in ("id", "name", "till", "cashier", "items", "total")} == {
        "id": basket, "name": "Mme Dupont", "till": one_code, "cashier": "alice",
        "items": 3, "total": resumed["totals"]["total"]}
    assert parked["parked_at"] >= parked["opened_at"]
    assert listed == [parked]
    assert stale_add["code"] == "basket_mismatch" and "parked" in stale_add["message"]
    assert resumed["id"] == basket and resumed["till"] == two_code
    assert [line["barcode"] for line in resumed["lines"]] == [BAGUETTE, BAGUETTE, CROISSANT]
    assert resent == resumed
    assert taken["code"] == "basket_held" and taken["data"]["till"] == two_code
    assert busy["code"] == "basket_held"
    assert len(added["lines"]) == 4 and sold["till"] == two_code
    assert after_sale["code"] == "no_open_basket"


async def test_parking_checks_its_basket_and_name(node: NodeUnderTest) -> None:
    async with node.till(await node.pair("one")) as one, \
            node.till(await node.pair("two")) as two:
        nothing = refusal(await one.reply("basket/park", basket_id=new_id()))
        basket = await fill(one, BAGUETTE)
        not_mine = refusal(await two.reply("basket/park", basket_id=basket))
        too_long = refusal(await one.reply("basket/park", basket_id=basket, name="x" * 101))
        blank = await one.call("basket/park", basket_id=basket, name="   ")
        long_name = await one.call("basket/park", basket_id=await fill(one, BAGUETTE),
                                   name="y" * 60)
        # The till's own basket must be empty to resume another.
        mine = await fill(two, CROISSANT)
        full = refusal(await two.reply("basket/resume", basket_id=basket))
        await two.call("basket/park", basket_id=mine)
        resumed = await two.call("basket/resume", basket_id=basket)
    assert nothing["code"] == "no_open_basket"
    assert not_mine["code"] == "basket_held"
    assert too_long["code"] == "invalid_field"
    assert blank["name"] == "Alice"  # the cashier's name
    assert long_name["name"] == "y" * 40
    assert full["code"] == "basket_mismatch" and full["data"]["basket_id"] == mine
    assert resumed["id"] == basket


async def test_logging_out_parks_the_open_basket_under_the_cashiers_name(
    node: NodeUnderTest,
) -> None:
    token = await node.pair("one")
    async with node.till(token) as till:
        auth = await till.call("auth", token=token)
        assert auth["settings"] == {"scan_merges_lines": True, "idle_lock_minutes": 5,
                                "meal_voucher_cap": 2500, "discount_limit": 1000,
                                "open_price_limit": 5000}
        await till.call("login", cashier_id="alice", pin="1234")
        basket = await fill(till, BAGUETTE)
        out = await till.call("logout")
        await till.call("login", cashier_id="chloe", pin="2468")
        handed = await till.call("basket/get")
        parked = await till.call("basket/list_parked")
        empty_out = await till.call("logout")  # nothing open: nothing parked
    assert out["parked"]["id"] == basket and out["parked"]["name"] == "Alice"
    assert handed is None
    assert [b["id"] for b in parked] == [basket]
    assert empty_out == {"parked": None}


def holder_on(node: EdgeProcess, basket: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT till, status, parked FROM baskets WHERE id = ?",
                            (basket,)).fetchone()
    finally:
        conn.close()


async def test_resumed_on_another_node_and_raced_for_across_nodes_cut_apart(
    tmp_path: Path,
) -> None:
    ports = [free_port(), free_port()]
    async with Partition(ports[1]) as to_b, Partition(ports[0]) as to_a:
        nodes = []
        for number, (port, proxy) in enumerate(zip(ports, (to_b, to_a), strict=True)):
            config = store_node_config(tmp_path / f"n{number}", [proxy.url])
            nodes.append(EdgeProcess(tmp_path / f"n{number}" / "data", port,
                                     ["--config", str(config)]))
        start_all(*nodes)
        try:
            a, b = nodes
            parker, on_a, on_b = [await pair(a, name) for name in ("parks", "left", "right")]
            await wait_for_till(b, on_b)
            async with TillClient([a.url], parker, "alice", "1234") as parking, \
                    TillClient([a.url], on_a, "alice", "1234") as left, \
                    TillClient([b.url], on_b, "chloe", "2468") as right:
                # Parked on node a, resumed by a till of node b.
                crossing = await fill(parking, BAGUETTE)
                await parking.call("basket/park", basket_id=crossing, name="Paul")
                await converged(nodes)
                assert [p["name"] for p in await right.call("basket/list_parked")] == ["Paul"]
                resumed = await right.call("basket/resume", basket_id=crossing)
                assert resumed["till"] == await code_of(right)
                sold = await right.call("sale/complete", basket_id=crossing, tenders=CASH)
                await converged(nodes)
                assert {holder_on(node, crossing)[1] for node in nodes} == {"sold"}

                # Two tills resume one basket at once while their nodes are cut apart.
                raced = await fill(parking, CROISSANT)
                await parking.call("basket/park", basket_id=raced)
                await converged(nodes)
                to_a.cut()
                to_b.cut()
                both = await asyncio.gather(left.call("basket/resume", basket_id=raced),
                                            right.call("basket/resume", basket_id=raced))
                codes = {await code_of(left): left, await code_of(right): right}
                assert [took["till"] for took in both] == list(codes)
                to_a.heal()
                to_b.heal()
                await converged(nodes)
                holders = {holder_on(node, raced) for node in nodes}
                assert len(holders) == 1, holders
                ((winner, status, still_parked),) = holders
                assert (status, still_parked) == ("open", 0) and winner in codes
                (loser,) = (till for code, till in codes.items() if code != winner)
                try:
                    await loser.call("basket/add", basket_id=raced, line_id=new_id(),
                                     barcode=BAGUETTE)
                    raise AssertionError("the loser added to a basket it lost")
                except CommandFailed as refused:
                    assert refused.code == "basket_held" and refused.data["till"] == winner
                assert await loser.call("basket/get") is None
                assert (await codes[winner].call("basket/get"))["id"] == raced
                for till in (left, right):
                    assert await till.call("basket/list_parked") == []
            assert sold["receipt_number"]
        finally:
            for process in nodes:
                process.stop()
