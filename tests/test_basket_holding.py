"""A basket is held by one till at a time, and a sale is only told to the till that made it.

Taking over a basket held by a live till is refused with the holder's code;
two tills racing to take over a basket left on a dead till end with one
holder; the loser can neither add to it nor complete it, and is never
answered with the winner's sale. Across two nodes cut apart, both may accept
a takeover: once they meet, every node settles on the same holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    EdgeProcess,
    NodeUnderTest,
    Till,
    free_port,
    node_of,
    start_all,
    store_node_config,
)
from netns import lone_host
from playwright.async_api import async_playwright, expect
from test_peers import Partition, converged, pair, wait_for_till
from test_till_offline import ADDRESS, ShopNode, launch_browser_in, log_in, pay_cash, scan

from edge.selling import baskets
from edge.selling.sales import baskets_sold_twice
from edge.selling.tills import create_pairing_code
from edge.till_client import CommandFailed, TillClient

BAGUETTE = "2000001000014"
CROISSANT = "2000002000013"
CASH = [{"method": "cash", "amount": 1000}]


def new_id() -> str:
    return str(uuid.uuid4())


async def park_basket(node: NodeUnderTest, token: str) -> str:
    """A basket with one line, left open on a till that then goes away."""
    basket = new_id()
    async with node.till(token) as leaving:
        await leaving.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
    return basket


async def code_of(till: Till | TillClient) -> str:
    """The till's code, as the node calls it."""
    return (await till.call("sale/held"))["till"]


def refusal(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["success"] is False, reply
    return reply["error"]


async def test_a_basket_held_by_a_live_till_is_not_taken_over(node: NodeUnderTest) -> None:
    basket = new_id()
    async with node.till(await node.pair("holder")) as holder, \
            node.till(await node.pair("other")) as other, \
            node.till(await node.pair("office"), cashier="bruno", pin="567890") as manager:
        holder_code, manager_code = await code_of(holder), await code_of(manager)
        await holder.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
        held = refusal(await other.reply("basket/take_over", basket_id=basket))
        forced_by_cashier = refusal(
            await other.reply("basket/take_over", basket_id=basket, force=True))
        # Nothing changed: the holder carries on.
        kept = await holder.call("basket/add", basket_id=basket, line_id=new_id(),
                                 barcode=CROISSANT)
        # A manager may force it (a till that looks alive but is not).
        taken = await manager.call("basket/take_over", basket_id=basket, force=True)
        lost_add = refusal(await holder.reply("basket/add", basket_id=basket,
                                              line_id=new_id(), barcode=BAGUETTE))
        lost_sale = refusal(await holder.reply("sale/complete", basket_id=basket,
                                               tenders=CASH))
        sold = await manager.call("sale/complete", basket_id=basket, tenders=CASH)
        after_sale = refusal(await holder.reply("sale/complete", basket_id=basket,
                                                tenders=CASH))
        resent = await manager.call("sale/complete", basket_id=basket, tenders=CASH)
    assert held["code"] == "basket_held"
    assert holder_code in held["message"] and held["data"]["till"] == holder_code
    assert forced_by_cashier["code"] == "manager_required"
    assert len(kept["lines"]) == 2 and kept["till"] == holder_code
    assert taken["till"] == manager_code and len(taken["lines"]) == 2
    for refused in (lost_add, lost_sale, after_sale):
        assert refused["code"] == "basket_held"
        assert manager_code in refused["message"] and refused["data"]["till"] == manager_code
    assert sold["till"] == manager_code and resent == sold


async def test_two_tills_racing_for_a_parked_basket_one_holds_it(
    node: NodeUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parked basket's till is gone, and its last change counts as old at once.
    monkeypatch.setattr(baskets, "HOLD_SECONDS", 0, raising=False)
    opener = await node.pair("parks")
    async with node.till(await node.pair("left")) as left, \
            node.till(await node.pair("right")) as right:
        tills = {await code_of(left): left, await code_of(right): right}
        for _ in range(30):
            basket = await park_basket(node, opener)
            replies = await asyncio.gather(
                left.reply("basket/take_over", basket_id=basket),
                right.reply("basket/take_over", basket_id=basket),
            )
            won = [reply["result"] for reply in replies if reply["success"]]
            lost = [reply["error"] for reply in replies if not reply["success"]]
            assert len(won) == 1 and len(lost) == 1, replies
            winner = won[0]["till"]
            (loser_till,) = (till for code, till in tills.items() if code != winner)
            assert lost[0]["code"] == "basket_held"
            assert lost[0]["data"]["till"] == winner and winner in lost[0]["message"]

            add = refusal(await loser_till.reply("basket/add", basket_id=basket,
                                                 line_id=new_id(), barcode=CROISSANT))
            assert add["code"] == "basket_held" and add["data"]["till"] == winner
            early = refusal(await loser_till.reply("sale/complete", basket_id=basket,
                                                   tenders=CASH))
            assert early["code"] == "basket_held"
            sold = await tills[winner].call("sale/complete", basket_id=basket, tenders=CASH)
            late = refusal(await loser_till.reply("sale/complete", basket_id=basket,
                                                  tenders=CASH))
            assert late["code"] == "basket_held" and late["data"]["till"] == winner
            assert sold["till"] == winner
            assert await tills[winner].call("sale/complete", basket_id=basket,
                                            tenders=CASH) == sold


def sold_offline(basket: str, till: str | None, totals: dict[str, Any]) -> dict[str, Any]:
    """A sale of `basket` made offline by `till` (None: a till of before sale ids)."""
    lines = [{"id": new_id(), "product_id": "p0001", "barcode": BAGUETTE,
              "name": "Baguette tradition", "unit_price": 120, "vat_rate": 550, "quantity": 1}]
    ids = {"id": basket} if till is None else {"id": f"{basket}@{till}", "basket_id": basket}
    return {**ids, "receipt_no": 1, "cashier": "alice", "time": "2026-11-25T10:42:07.123Z",
            "lines": lines, "tenders": CASH,
            "totals": {key: totals[key] for key in ("total", "items", "vat")}, "change": 880}


def sold_twice(data_dir: Path) -> dict[str, str]:
    """What `edge status` shows of baskets that more than one sale sold."""
    conn = sqlite3.connect(f"file:{data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return baskets_sold_twice(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("with_sale_ids", [True, False], ids=["till", "older-till"])
async def test_a_till_that_sold_offline_a_basket_another_till_sold_keeps_its_own_sale(
    node: NodeUnderTest, with_sale_ids: bool,
) -> None:
    """Both took the money: both sales are kept and shown, neither hides the other."""
    basket = new_id()
    async with node.till(await node.pair("seller")) as seller, \
            node.till(await node.pair("offline")) as offline:
        await seller.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
        sold = await seller.call("sale/complete", basket_id=basket, tenders=CASH)
        offline_code = await code_of(offline)
        mine = await offline.call("sale/record", sale=sold_offline(
            basket, offline_code if with_sale_ids else None, sold["totals"]))
        assert mine["till"] == offline_code and mine["id"] != sold["id"]
        again = await offline.call("sale/record", sale=sold_offline(
            basket, offline_code if with_sale_ids else None, sold["totals"]))
        assert again["hash"] == mine["hash"]  # a resend records nothing
        assert await seller.call("sale/complete", basket_id=basket, tenders=CASH) == sold
    shown = sold_twice(node.data_dir)
    assert list(shown) == [f"basket {basket}"]
    assert sold["receipt_number"] in shown[f"basket {basket}"]
    assert mine["receipt_number"] in shown[f"basket {basket}"]


@pytest.mark.parametrize("with_sale_ids", [True, False], ids=["till", "older-till"])
async def test_sale_record_never_closes_a_basket_another_till_holds(
    node: NodeUnderTest, with_sale_ids: bool,
) -> None:
    """A cashier cannot close another till's open basket by recording a sale of its id."""
    basket = new_id()
    async with node.till(await node.pair("holder")) as holder, \
            node.till(await node.pair("other")) as other:
        opened = await holder.call("basket/add", basket_id=basket, line_id=new_id(),
                                   barcode=BAGUETTE)
        other_code = await code_of(other)
        recorded = await other.call("sale/record", sale=sold_offline(
            basket, other_code if with_sale_ids else None, opened["totals"]))
        assert "basket_held_elsewhere" in recorded["flags"]
        assert await holder.call("basket/get") == opened
        sold = await holder.call("sale/complete", basket_id=basket, tenders=CASH)
        assert sold["till"] != other_code and sold["id"] != recorded["id"]
    assert list(sold_twice(node.data_dir)) == [f"basket {basket}"]


async def test_a_sale_id_must_be_its_basket_at_its_till(node: NodeUnderTest) -> None:
    """A till cannot record a sale under another till's sale id (it would hide that sale)."""
    basket = new_id()
    async with node.till(await node.pair("seller")) as seller, \
            node.till(await node.pair("forger")) as forger:
        await seller.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
        sold = await seller.call("sale/complete", basket_id=basket, tenders=CASH)
        forger_code = await code_of(forger)
        forged = sold_offline(basket, forger_code, sold["totals"])
        refused = refusal(await forger.reply("sale/record", sale={**forged, "id": sold["id"]}))
        assert refused["code"] == "invalid_field"
        assert f"{basket}@{forger_code}" in refused["message"]
        older = refusal(await forger.reply("sale/record", sale={
            **sold_offline(basket, None, sold["totals"]), "id": sold["id"]}))
        assert older["code"] == "invalid_field"  # no basket_id: still `<basket>@<its till>`
    assert sold_twice(node.data_dir) == {}


async def test_a_python_till_whose_basket_was_taken_starts_afresh(node: NodeUnderTest) -> None:
    """As the browser till does: told `basket_held`, it drops the basket and sells on."""
    token = await node.pair("python")
    async with TillClient([node.url], token, "alice", "1234") as python_till:
        await python_till.add(BAGUETTE)
        (parked,) = await baskets.list_open(node_of(node).journal)
        async with node.till(await node.pair("manager"), cashier="bruno", pin="567890") as other:
            await other.call("basket/take_over", basket_id=parked["id"], force=True)
        with pytest.raises(CommandFailed) as taken:
            await python_till.add(CROISSANT)
        assert taken.value.code == "basket_held"
        sold = await python_till.sell([CROISSANT], 500)
    assert [line["barcode"] for line in sold["lines"]] == [CROISSANT]
    assert sold["basket_id"] != parked["id"]


def holder_on(node: EdgeProcess, basket: str) -> tuple[str, str]:
    conn = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT till, status FROM baskets WHERE id = ?", (basket,)).fetchone()
    finally:
        conn.close()


async def call_refused(client: TillClient, type_: str, **args: Any) -> CommandFailed:
    with pytest.raises(CommandFailed) as refused:
        await client.call(type_, **args)
    return refused.value


@contextlib.asynccontextmanager
async def one_basket_taken_over_on_both_sides(
    tmp_path: Path,
) -> AsyncIterator[tuple[list[EdgeProcess], list[Partition], dict[str, TillClient], str]]:
    """Two nodes cut apart; on each, a manager forces the same parked basket onto a till.

    Yields the nodes, the links to cut or heal, the two tills by code
    (left on node a, right on node b) and the basket.
    """
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
            opener, on_a, on_b = [await pair(a, name) for name in ("parks", "left", "right")]
            for token in (opener, on_b):
                await wait_for_till(b, token)
            basket = new_id()
            async with TillClient([a.url], opener, "alice", "1234") as parking:
                await parking.call("basket/add", basket_id=basket, line_id=new_id(),
                                   barcode=BAGUETTE)
            await converged(nodes)
            async with TillClient([a.url], on_a, "bruno", "567890") as left, \
                    TillClient([b.url], on_b, "bruno", "567890") as right:
                to_a.cut()
                to_b.cut()
                # Each side sees the parked till dead-looking; a manager forces it on both.
                codes = {await code_of(left): left, await code_of(right): right}
                took_left = await left.call("basket/take_over", basket_id=basket, force=True)
                took_right = await right.call("basket/take_over", basket_id=basket, force=True)
                assert [took_left["till"], took_right["till"]] == list(codes)
                yield nodes, [to_a, to_b], codes, basket
        finally:
            for process in nodes:
                process.stop()


async def test_two_nodes_cut_apart_settle_on_one_holder(tmp_path) -> None:
    async with one_basket_taken_over_on_both_sides(tmp_path) as (nodes, links, codes, basket):
        for link in links:
            link.heal()
        await converged(nodes)
        holders = {holder_on(node, basket) for node in nodes}
        assert len(holders) == 1, holders
        ((winner, status),) = holders
        assert status == "open" and winner in codes
        winning = codes[winner]
        (losing,) = (till for code, till in codes.items() if code != winner)
        refused = await call_refused(losing, "sale/complete", basket_id=basket, tenders=CASH)
        assert refused.code == "basket_held" and winner in str(refused)
        sold = await winning.call("sale/complete", basket_id=basket, tenders=CASH)
        assert sold["till"] == winner
        await converged(nodes)
        late = await call_refused(losing, "sale/complete", basket_id=basket, tenders=CASH)
        assert late.code == "basket_held"
    assert {holder_on(node, basket) for node in nodes} == {(winner, "sold")}


async def test_two_tills_that_sold_one_basket_while_cut_apart_both_keep_their_sale(
    tmp_path: Path,
) -> None:
    """Each took the money: once the nodes meet, every node has both sales, shown as such."""
    async with one_basket_taken_over_on_both_sides(tmp_path) as (nodes, links, codes, basket):
        sold = {code: await till.call("sale/complete", basket_id=basket, tenders=CASH)
                for code, till in codes.items()}
        for link in links:
            link.heal()
        await converged(nodes)
        for code, till in codes.items():  # each till is told its own sale again, only
            assert await till.call("sale/complete", basket_id=basket, tenders=CASH) == sold[code]
    assert len({sale["id"] for sale in sold.values()}) == 2
    for node in nodes:
        shown = sold_twice(node.data_dir)
        assert list(shown) == [f"basket {basket}"]
        assert all(sale["receipt_number"] in shown[f"basket {basket}"] for sale in sold.values())
        assert holder_on(node, basket)[1] == "sold"


async def test_a_till_without_a_connection_is_still_live_while_it_works_the_basket(
    node: NodeUnderTest,
) -> None:
    """A till selling through another node is invisible here: its recent changes count."""
    opener = await node.pair("elsewhere")
    basket = await park_basket(node, opener)
    async with node.till(await node.pair("here")) as here:
        refused = refusal(await here.reply("basket/take_over", basket_id=basket))
    parked = await node_of(node).journal.read_one("SELECT till FROM baskets WHERE id = ?",
                                                  (basket,))
    assert refused["code"] == "basket_held" and refused["data"]["till"] == parked["till"]



async def test_a_browser_till_whose_basket_a_manager_took_is_told_and_starts_afresh(
    tmp_path: Path,
) -> None:
    with lone_host(ADDRESS) as ns:
        node = ShopNode(ns, tmp_path / "node")
        node.start()
        try:
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright)
                first = await (await browser.new_context(locale="fr-FR")).new_page()
                await first.goto(await node.pairing_link())
                await log_in(first)
                await scan(first, BAGUETTE)
                await expect(first.locator(".basket-line")).to_have_count(1)

                # A manager on another till takes the basket its till is still using.
                code = create_pairing_code(node.data_dir / "edge.sqlite3")
                second = await (await browser.new_context(locale="fr-FR")).new_page()
                await second.goto(f"{node.url}/#pair={code}")
                await log_in(second, "bruno", "567890")
                await second.click("#parked-open")
                await second.locator(".parked-basket").click()
                await expect(second.locator(".basket-line")).to_have_count(1)

                # The first till's next scan: it is told, and the item opens a basket of its own.
                await scan(first, CROISSANT)
                await expect(first.locator("#error")).to_have_text(
                    re.compile(r"^Ce ticket est tenu par la caisse T02"))
                await expect(first.locator(".basket-line")).to_have_count(1)
                await expect(first.locator(".basket-line")).to_contain_text("Croissant")
                await pay_cash(second, "2")
                taker = (await second.locator("#receipt-number").text_content()).strip()
                await browser.close()
        finally:
            node.stop()
    [sold] = node.sales(taker.removesuffix("-000001"))
    assert [line["name"] for line in sold["lines"]] == ["Baguette tradition"]
