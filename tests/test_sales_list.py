"""Today's sales for the till's sales list: newest first, a page at a time, per till or the
whole store, each with its receipt number, total, tenders, cashier, receipt and copies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from conftest import NodeUnderTest, Till
from test_basket_holding import code_of, refusal

from edge.selling.sales_list import start_of_today

BAGUETTE, CROISSANT = "2000001000014", "2000002000013"


async def sell(till: Till, barcode: str, split: bool, **choice: bool) -> dict:
    """Paid in cash, or (`split`) 0,50 in cash and the rest by card."""
    basket = str(uuid.uuid4())
    total = (await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                             barcode=barcode))["totals"]["total"]
    tenders = ([{"method": "cash", "amount": 50},
                {"method": "card", "amount": total - 50, "reference": "TPE"}]
               if split else [{"method": "cash", "amount": 500}])
    return await till.call("sale/complete", basket_id=basket, tenders=tenders, **choice)


async def pages(client: Till, **args: object) -> list[list[dict]]:
    found, before = [], None
    while True:
        page = await client.call("sales/today", **args, **({"before": before} if before else {}))
        found.append(page["sales"])
        before = page["next"]
        if before is None:
            return found


async def test_todays_sales_newest_first_page_by_page(node: NodeUnderTest) -> None:
    async with node.till(await node.pair("one")) as one, \
            node.till(await node.pair("two"), cashier="chloe", pin="2468") as two:
        one_code, two_code = await code_of(one), await code_of(two)
        sold = []
        for number in range(5):
            till = one if number % 2 == 0 else two
            sold.append(await sell(till, BAGUETTE if number < 3 else CROISSANT, number == 4,
                                   print=number != 1))
        await one.call("printer/reprint", sale_id=sold[0]["id"])
        store = await pages(one, limit=2)
        of_till = await pages(one, till=two_code, limit=1)
        everything = (await one.call("sales/today", limit=100))["sales"]
        bad_cursor = refusal(await one.reply("sales/today", before="no-cursor"))
        too_many = refusal(await one.reply("sales/today", limit=101))
    assert [len(page) for page in store] == [2, 2, 1]
    listed = [row for page in store for row in page]
    assert listed == everything
    assert [row["id"] for row in listed] == [sale["id"] for sale in reversed(sold)]
    newest = listed[0]
    assert newest == {
        "id": sold[4]["id"], "receipt_number": sold[4]["receipt_number"], "till": one_code,
        "time": sold[4]["time"], "total": sold[4]["totals"]["total"], "kind": "sale",
        "methods": ["cash", "card"], "cashier": "alice", "receipt": "printed", "copies": 0}
    by_id = {row["id"]: row for row in listed}
    assert by_id[sold[1]["id"]]["receipt"] == "not_printed"
    assert by_id[sold[1]["id"]]["cashier"] == "chloe"
    assert by_id[sold[0]["id"]]["copies"] == 1
    assert [[row["id"] for row in page] for page in of_till] == [[sold[3]["id"]],
                                                                [sold[1]["id"]]]
    assert bad_cursor["code"] == too_many["code"] == "invalid_field"


def test_today_starts_at_the_stores_midnight() -> None:
    now = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    start = start_of_today(now)
    assert start.endswith("Z") and start <= "2026-11-25T15:30:00.000Z"
    local_midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(start.replace("Z", "+00:00")) == local_midnight
