"""Selling through the till protocol, as a till does it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import CommandFailed, NodeUnderTest, node_of

BAGUETTE = "2000001000014"  # 1,20 € at 5.5 %
CROISSANT = "2000002000013"  # 1,15 € at 5.5 %
ESPRESSO = "2000004000011"  # 1,50 € at 10 %


def new_id() -> str:
    return str(uuid.uuid4())


async def test_a_cashier_sells_two_products_for_cash(node: NodeUnderTest) -> None:
    async with node.till() as till:
        basket = new_id()
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE,
                        quantity=2)
        result = await till.call("basket/add", basket_id=basket, line_id=new_id(),
                                 barcode=ESPRESSO)
        assert result["totals"] == {
            "total": 390,
            "items": 3,
            "vat": [
                {"rate": 550, "base": 227, "vat": 13, "total": 240},
                {"rate": 1000, "base": 136, "vat": 14, "total": 150},
            ],
            "discounts": {"promotions": 0, "lines": 0, "basket": 0},
        }
        sale = await till.call("sale/complete", basket_id=basket,
                               tenders=[{"method": "cash", "amount": 500}])
    first_till = f"T01-{node_of(node).node_id}"  # till codes carry their pairing node
    assert sale["receipt_number"] == f"{first_till}-000001"
    assert sale["change"] == 110
    assert sale["totals"]["total"] == 390
    receipt = await wait_for_receipt(node.data_dir, f"{first_till}-000001")
    assert "TOTAL TTC" in receipt and "3,90 EUR" in receipt
    assert "Rendu" in receipt and "1,10" in receipt
    assert "5,5%" in receipt and "10%" in receipt


async def wait_for_receipt(data_dir: Path, number: str) -> str:
    import asyncio

    path = data_dir / "printer" / "receipts.txt"
    for _ in range(100):
        if path.exists() and number in path.read_text():
            return path.read_text()
        await asyncio.sleep(0.05)
    raise AssertionError(f"receipt {number} never printed")


async def test_the_same_sale_sent_twice_is_recorded_once(node: NodeUnderTest) -> None:
    async with node.till() as till:
        basket = new_id()
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=CROISSANT)
        tenders = [{"method": "card", "amount": 115, "reference": "TPE-0042"}]
        first = await till.call("sale/complete", basket_id=basket, tenders=tenders)
        again = await till.call("sale/complete", basket_id=basket, tenders=tenders)
    # And again from a fresh connection, as after a reconnect.
    async with node.till() as other:
        other_basket = new_id()
        await other.call("basket/add", basket_id=other_basket, line_id=new_id(),
                         barcode=CROISSANT)
    assert again == first
    journal = node_of(node).journal
    sales = await journal.read_all("SELECT id FROM sales")
    events = await journal.read_all("SELECT id FROM events WHERE type = 'sale_completed'")
    assert [row["id"] for row in sales] == [first["id"]] and first["basket_id"] == basket
    assert len(events) == 1


async def test_a_resent_line_is_added_once(node: NodeUnderTest) -> None:
    async with node.till() as till:
        basket, line = new_id(), new_id()
        await till.call("basket/add", basket_id=basket, line_id=line, barcode=BAGUETTE)
        result = await till.call("basket/add", basket_id=basket, line_id=line, barcode=BAGUETTE)
    assert len(result["lines"]) == 1
    assert result["totals"]["total"] == 120


async def test_quantity_remove_and_void_change_the_basket(node: NodeUnderTest) -> None:
    async with node.till() as till:
        basket, line, other = new_id(), new_id(), new_id()
        await till.call("basket/add", basket_id=basket, line_id=line, barcode=BAGUETTE)
        await till.call("basket/add", basket_id=basket, line_id=other, barcode=CROISSANT)
        result = await till.call("basket/set_quantity", basket_id=basket, line_id=line,
                                 quantity=3)
        assert result["totals"]["total"] == 3 * 120 + 115
        result = await till.call("basket/remove_line", basket_id=basket, line_id=other)
        assert [ln["id"] for ln in result["lines"]] == [line]
        assert (await till.call("basket/get"))["id"] == basket
        assert await till.call("basket/clear", basket_id=basket) is None
        assert await till.call("basket/get") is None
        with pytest.raises(CommandFailed) as closed:
            await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
        assert closed.value.code == "basket_mismatch"


async def test_the_open_basket_survives_a_reconnect(node: NodeUnderTest) -> None:
    token = await node.pair()
    basket = new_id()
    async with node.till(token) as till:
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
    async with node.till(token) as till:
        again = await till.call("basket/get")
    assert again["id"] == basket
    assert again["totals"]["total"] == 120


async def test_receipt_numbers_are_gapless_per_till(node: NodeUnderTest) -> None:
    numbers = {}
    for name in ("one", "two"):
        token = await node.pair(name)
        async with node.till(token) as till:
            for _ in range(3):
                basket = new_id()
                await till.call("basket/add", basket_id=basket, line_id=new_id(),
                                barcode=BAGUETTE)
                sale = await till.call("sale/complete", basket_id=basket,
                                       tenders=[{"method": "cash", "amount": 120}])
                numbers.setdefault(name, []).append(sale["receipt_number"])
    here = node_of(node).node_id  # till codes carry their pairing node
    assert numbers == {
        "one": [f"T01-{here}-000001", f"T01-{here}-000002", f"T01-{here}-000003"],
        "two": [f"T02-{here}-000001", f"T02-{here}-000002", f"T02-{here}-000003"],
    }


async def test_search_matches_word_prefixes_without_accents(node: NodeUnderTest) -> None:
    async with node.till(cashier=None) as till:
        found = await till.call("catalogue/search", query="eclair caf")
        product = await till.call("catalogue/lookup", barcode=BAGUETTE)
    assert any(p["name"] == "Éclair au café" for p in found)
    assert product["name"] == "Baguette tradition" and product["price"] == 120


async def test_subscribers_see_sales(node: NodeUnderTest) -> None:
    async with node.till() as watcher, node.till() as seller:
        await watcher.call("subscribe_events", event_types=["sale_completed"])
        basket = new_id()
        await seller.call("basket/add", basket_id=basket, line_id=new_id(), barcode=BAGUETTE)
        await seller.call("sale/complete", basket_id=basket,
                          tenders=[{"method": "cash", "amount": 200}])
        await watcher.call("catalogue/lookup", barcode=BAGUETTE)  # events arrive in order
    pushed = [e["event"] for e in watcher.events]
    assert [e["type"] for e in pushed] == ["sale_completed"]
    assert pushed[0]["body"]["basket_id"] == basket
