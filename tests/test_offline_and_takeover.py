"""What a till needs to fail over and to sell offline, on one node."""

from __future__ import annotations

import uuid

import pytest
from conftest import NodeUnderTest, node_of

from edge.selling import baskets
from edge.selling.catalogue import DEMO_CATALOGUE
from edge.selling.money import Line, basket_totals

BAGUETTE = {"product_id": "p0001", "barcode": "2000001000014", "name": "Baguette tradition",
            "unit_price": 120, "vat_rate": 550}
ESPRESSO = {"product_id": "p0004", "barcode": "2000004000011", "name": "Café expresso",
            "unit_price": 150, "vat_rate": 1000}


def offline_sale(receipt_no: int, lines: list[tuple[dict, int]], cash: int) -> dict:
    sold = [{**product, "id": str(uuid.uuid4()), "quantity": quantity}
            for product, quantity in lines]
    totals = basket_totals(Line(s["unit_price"], s["quantity"], s["vat_rate"]) for s in sold)
    return {"id": str(uuid.uuid4()), "receipt_no": receipt_no, "cashier": "alice",
            "time": "2026-11-25T10:42:07.123Z", "lines": sold,
            "tenders": [{"method": "cash", "amount": cash}], "totals": totals,
            "change": cash - totals["total"]}


async def test_an_offline_sale_is_recorded_once_with_the_tills_number(node: NodeUnderTest) -> None:
    sale = offline_sale(7, [(BAGUETTE, 2), (ESPRESSO, 1)], 500)
    async with node.till() as till:
        recorded = await till.call("sale/record", sale=sale)
        again = await till.call("sale/record", sale=sale)
        auth = await till.call("auth", token=await node.pair("other"))
    assert recorded == again
    assert recorded["receipt_number"] == f"T01-{node_of(node).node_id}-000007"
    assert recorded["offline"] is True and recorded["flags"] == []
    assert recorded["totals"]["total"] == 390 and recorded["change"] == 110
    rows = await node_of(node).journal.read_all("SELECT id FROM sales")
    assert [row["id"] for row in rows] == [sale["id"]]
    assert auth["last_receipt_no"] == 0  # another till's numbering is its own


async def test_an_offline_sale_that_disagrees_is_recorded_and_flagged(node: NodeUnderTest) -> None:
    cheap = {**BAGUETTE, "unit_price": 100}  # an old price the till had
    sale = offline_sale(1, [(cheap, 1)], 100)
    sale["totals"] = {**sale["totals"], "total": 90}  # and a till that added wrong
    async with node.till() as till:
        await till.call("sale/record", sale=offline_sale(1, [(BAGUETTE, 1)], 120))
        recorded = await till.call("sale/record", sale=sale)
        auth = await till.call("auth", token=till.token)
    assert set(recorded["flags"]) == {"totals_differ", "price_differs", "receipt_number_reused"}
    assert recorded["totals"]["total"] == 100  # what the lines really add up to
    assert recorded["till_totals"]["total"] == 90
    assert auth["last_receipt_no"] == 1


async def test_auth_lists_the_store_nodes_and_the_tills_last_number(node: NodeUnderTest) -> None:
    token = await node.pair()
    async with node.till(token) as till:
        basket = str(uuid.uuid4())
        await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                        barcode=BAGUETTE["barcode"])
        sale = await till.call("sale/complete", basket_id=basket, receipt_no=41,
                               tenders=[{"method": "cash", "amount": 120}])
        auth = await till.call("auth", token=token)
    assert sale["receipt_number"] == f"T01-{node_of(node).node_id}-000041"
    assert auth["last_receipt_no"] == 41
    assert auth["nodes"][0]["id"] == node_of(node).node_id


async def test_a_basket_left_on_a_dead_till_is_resumed_on_another(
    node: NodeUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dead till's last change counts as old at once (tests/test_basket_holding.py
    # covers a till still using its basket).
    monkeypatch.setattr(baskets, "HOLD_SECONDS", 0)
    basket = str(uuid.uuid4())
    async with node.till(await node.pair("dies")) as dying:
        await dying.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                         barcode=BAGUETTE["barcode"], quantity=3)
    async with node.till(await node.pair("next")) as other:
        parked = await other.call("basket/list_open")
        taken = await other.call("basket/take_over", basket_id=basket)
        again = await other.call("basket/take_over", basket_id=basket)
        sale = await other.call("sale/complete", basket_id=basket,
                                tenders=[{"method": "cash", "amount": 500}])
        left = await other.call("basket/list_open")
    assert [(b["id"], b["till"], b["items"], b["total"]) for b in parked] == [
        (basket, f"T01-{node_of(node).node_id}", 3, 360)]
    assert taken["till"] == f"T02-{node_of(node).node_id}" and taken == again
    assert sale["till"] == f"T02-{node_of(node).node_id}" and sale["change"] == 140
    assert left == []


async def test_the_catalogue_exports_in_pages(node: NodeUnderTest) -> None:
    async with node.till(cashier=None) as till:
        seen, after = [], None
        while True:
            page = await till.call("catalogue/export", after=after, limit=150)
            seen += page["products"]
            if page["next"] is None:
                break
            after = page["next"]
    demo = DEMO_CATALOGUE.read_text(encoding="utf-8").strip().count("\n")  # less the header
    assert len(seen) == demo and len({p["id"] for p in seen}) == demo
    assert seen[0]["id"] == "p0001" and seen[0]["price"] == 120
