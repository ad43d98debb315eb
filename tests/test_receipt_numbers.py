"""A receipt number is a fiscal number: the node never records two online sales under one.

Two tabs of one till, or a till whose counter went stale, may ask for a number
already used: `sale/complete` is refused with `receipt_number_used` and the
next free number, and the till retries the same basket with it. A sale made
offline is never refused (the money was taken): it is recorded and flagged.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from conftest import NodeUnderTest, Till, node_of
from netns import lone_host
from playwright.async_api import async_playwright, expect
from test_offline_and_takeover import BAGUETTE, offline_sale
from test_till_offline import ADDRESS, ShopNode, launch_browser_in, log_in, pay_cash, scan

CASH = [{"method": "cash", "amount": 500}]


async def open_basket(till: Till) -> str:
    basket = str(uuid.uuid4())
    await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                    barcode=BAGUETTE["barcode"])
    return basket


async def receipt_numbers(node: NodeUnderTest) -> list[tuple[str, int]]:
    rows = await node_of(node).journal.read_all(
        "SELECT till, receipt_no FROM sales ORDER BY till, receipt_no")
    return [(row["till"], row["receipt_no"]) for row in rows]


async def test_two_tabs_of_one_till_never_share_a_receipt_number(node: NodeUnderTest) -> None:
    token = await node.pair()
    async with node.till(token) as first_tab, node.till(token) as second_tab:
        first = await open_basket(first_tab)
        sold = await first_tab.call("sale/complete", basket_id=first, receipt_no=1,
                                    tenders=CASH)
        # The other tab's counter did not see sale 1.
        second = await open_basket(second_tab)
        refused = await second_tab.reply("sale/complete", basket_id=second, receipt_no=1,
                                         tenders=CASH)
        still_open = await second_tab.call("basket/get")
        retried = await second_tab.call("sale/complete", basket_id=second,
                                        receipt_no=refused["error"]["data"]["next_receipt_no"],
                                        tenders=CASH)
        # A resend of a sale already made keeps its number: idempotent, not refused.
        resent = await first_tab.call("sale/complete", basket_id=first, receipt_no=1,
                                      tenders=CASH)
    code = sold["till"]
    assert sold["receipt_number"] == f"{code}-000001"
    error = refused["error"]
    assert error["code"] == "receipt_number_used"
    assert f"{code}-000001" in error["message"] and "2" in error["message"]
    assert error["data"] == {"till": code, "receipt_no": 1, "next_receipt_no": 2}
    assert still_open["id"] == second  # refused: nothing changed
    assert retried["receipt_number"] == f"{code}-000002" and retried["basket_id"] == second
    assert resent == sold
    assert await receipt_numbers(node) == [(code, 1), (code, 2)]


async def test_a_stale_counter_is_told_the_next_free_number(node: NodeUnderTest) -> None:
    async with node.till() as till:
        for number in (1, 2, 5):
            await till.call("sale/complete", basket_id=await open_basket(till),
                            receipt_no=number, tenders=CASH)
        basket = await open_basket(till)
        refused = await till.reply("sale/complete", basket_id=basket, receipt_no=2,
                                   tenders=CASH)
        # A gap is not a duplicate: a number no sale has is taken as asked.
        gap = await till.call("sale/complete", basket_id=basket, receipt_no=3, tenders=CASH)
    code = gap["till"]
    assert refused["error"]["code"] == "receipt_number_used"
    assert refused["error"]["data"]["next_receipt_no"] == 6
    assert gap["receipt_number"] == f"{code}-000003"
    assert await receipt_numbers(node) == [(code, n) for n in (1, 2, 3, 5)]


async def test_an_offline_sale_with_a_used_number_is_kept_and_flagged(
    node: NodeUnderTest,
) -> None:
    async with node.till() as till:
        await till.call("sale/complete", basket_id=await open_basket(till), receipt_no=1,
                        tenders=CASH)
        recorded = await till.call("sale/record", sale=offline_sale(1, [(BAGUETTE, 1)], 120))
    assert recorded["flags"] == ["receipt_number_reused"]
    assert await receipt_numbers(node) == [(recorded["till"], 1), (recorded["till"], 1)]


async def test_the_browser_tills_second_tab_takes_the_next_free_number(tmp_path: Path) -> None:
    """Two tabs of one till in one browser: the second's counter did not see the first's sale."""
    with lone_host(ADDRESS) as ns:
        node = ShopNode(ns, tmp_path / "node")
        node.start()
        try:
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright)
                context = await browser.new_context(locale="en-US")
                first = await context.new_page()
                await first.goto(await node.pairing_link())
                await log_in(first)
                second = await context.new_page()  # same till: same token, same storage
                await second.goto(f"http://{ADDRESS}:{node.port}/")
                await log_in(second)
                for tab in (first, second):
                    await expect(tab.locator("#status")).to_have_attribute(
                        "data-state", "online")

                await scan(first, BAGUETTE["barcode"])
                await expect(first.locator(".basket-line")).to_have_count(1)
                await pay_cash(first, "2")
                number = first.locator("#receipt-number")
                await expect(number).to_have_text(re.compile(r"-000001$"))
                code = (await number.text_content()).strip().removesuffix("-000001")

                await scan(second, BAGUETTE["barcode"])
                await expect(second.locator(".basket-line")).to_have_count(1)
                await pay_cash(second, "2")
                await expect(second.locator("#receipt-number")).to_have_text(f"{code}-000002")
                await browser.close()
        finally:
            node.stop()
    sales = node.sales(code)
    assert [sale["receipt_number"] for sale in sales] == [f"{code}-000001", f"{code}-000002"]
    assert len({sale["id"] for sale in sales}) == 2
