"""A bakery's morning on the browser till, online and then with every node down (issue 10).

Debian's chromium at touch size (1024x768) in a test-made namespace, the page
from a shop-like address (not a secure context), one demo node with its file
printer. The morning (tests/bakery_morning.py, step by step): grid taps and
scans, a weighed tile, a weight label and a price label, a promotion, a line
discount and a basket discount a manager approves, an open-price "Divers", a
basket parked and served on another till, two cards and cash, meal vouchers
with their cap, a reprint (DUPLICATA n° 1), a return against the receipt's
QR code, and receipts not printed unless asked. Every sale's totals are
checked against the morning's own arithmetic, to the cent; the printer's
receipts are read back.

Then the node goes down, the till still loaded and logged in, and the same
morning is sold again (what needs a node by design is done the offline way,
as bakery_morning.py says). The node comes back: every offline sale and the
refund are recorded exactly once, with the online run's totals, sale by sale.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from bakery_morning import (
    MORNING,
    RETURN_AMOUNT,
    RETURN_TENDERS,
    SALES,
    TOUCH,
    Morning,
    check_the_arithmetic,
    printed_receipts,
)
from playwright.async_api import Browser, expect
from test_till_browser import shop  # noqa: F401  (the fixture)
from test_till_offline import BACK_ONLINE_MS, ShopNode
from test_till_pay import open_till, printed


def recorded(node: ShopNode, number: str) -> list[dict[str, Any]]:
    """Every row of the node's sales table with this receipt number (one, if all is well)."""
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        rows = db.execute("SELECT body FROM sales WHERE json_extract(body, '$.receipt_number')"
                          " = ?", (number,)).fetchall()
    return [json.loads(body) for (body,) in rows]


def event_count(node: ShopNode, event_type: str, sale_id: str) -> int:
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        (count,) = db.execute("SELECT count(*) FROM events WHERE type = ? AND "
                              "json_extract(body, '$.id') = ?", (event_type, sale_id)).fetchone()
    return int(count)


def sold_as_expected(node: ShopNode, morning: Morning) -> dict[str, dict[str, Any]]:
    """Each sale of `morning` as the node recorded it, checked against the arithmetic."""
    sales = {}
    for name, expected in SALES.items():
        [sale] = recorded(node, morning.sold[name])  # once
        priced = expected.priced
        assert (sale["totals"]["total"], sale["totals"]["items"], sale["totals"]["vat"]) == (
            expected.total, priced["items"], priced["vat"]), name
        assert [line["total"] for line in sale["lines"]] == [
            line["total"] for line in priced["lines"]], name
        assert sale["tenders"] == expected.tenders, name
        settled = expected.settled
        assert (sale["change"], sale.get("voucher_excess", 0)) == (
            settled["change"], settled["voucher_excess"]), name
        assert bool(sale.get("offline")) is not morning.online, name
        # Offline no node could check the manager's PIN: said, not refused.
        unverified = not morning.online and name == "discounts"
        assert sale.get("flags", []) == (["approval_unverified"] if unverified else []), name
        assert event_count(node, "sale_completed", sale["id"]) == 1, name
        sales[name] = sale
    assert as_given(sales["discounts"]["discount"]) == {**SALES["discounts"].discount,
                                                        "approved_by": "bruno"}
    [returned] = recorded(node, morning.sold["return"])
    assert returned["refund_of"] == sales["first_customer"]["id"]
    assert (returned["totals"]["total"], returned["tenders"]) == (-RETURN_AMOUNT, RETURN_TENDERS)
    assert returned.get("flags", []) == []
    assert event_count(node, "sale_refunded", returned["id"]) == 1
    sales["return"] = returned
    return sales


async def receipts_as_printed(node: ShopNode, morning: Morning) -> None:
    """Only the receipt asked for printed, then its DUPLICATA n° 1, then the refund's."""
    first, returned = morning.sold["first_customer"], morning.sold["return"]
    text = await printed(node, rf"Ticket {re.escape(returned)}\b")
    original, duplicate = printed_receipts(text, first)
    assert "DUPLICATA" not in original
    assert re.search(r"TOTAL TTC\s+7,40 EUR", original)
    assert re.search(r"Espèces\s+10,00", original) and re.search(r"Rendu\s+2,60", original)
    assert "DUPLICATA n° 1" in duplicate and re.search(r"TOTAL TTC\s+7,40 EUR", duplicate)
    [refund] = printed_receipts(text, returned)
    assert "REMBOURSEMENT" in refund and f"Ticket d'origine {first}" in refund
    assert re.search(r"TOTAL TTC\s+-1,20 EUR", refund)
    for name in SALES.keys() - {"first_customer"}:  # no receipt asked for: none printed
        assert printed_receipts(text, morning.sold[name]) == [], name


def as_given(discount: dict | None) -> dict | None:
    """A discount as the cashier gave it (the node adds what an approval was given on)."""
    if discount is None:
        return None
    return {key: value for key, value in discount.items()
            if key != "approved_on" and value is not None}


async def test_a_bakery_morning_online_then_the_same_with_every_node_down(
    shop: tuple[ShopNode, Browser],  # noqa: F811
) -> None:
    node, browser = shop
    check_the_arithmetic()
    context = await browser.new_context(locale="fr-FR", viewport=TOUCH)
    page = await open_till(context, await node.pairing_link())
    status = page.locator("#status")
    # The till's own copy of the catalogue is in: what it sells from with every node down.
    await expect(status).to_have_attribute("data-catalogue", re.compile(r"^[1-9]\d\d+$"))

    online = Morning(node, browser, page, online=True)
    for step in MORNING:
        await step(online)
    online_sales = sold_as_expected(node, online)
    await receipts_as_printed(node, online)
    assert online.other_till is not None
    await online.other_till.close()

    # Every node down before the morning starts; the till stays loaded and logged in.
    node.kill()
    await expect(status).to_have_attribute("data-state", "offline")
    offline = Morning(node, browser, page, online=False)
    for step in MORNING:
        await step(offline)
    await expect(status).to_have_attribute("data-waiting-sales", str(len(offline.sold)))

    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    offline_sales = sold_as_expected(node, offline)
    # The same totals as online, sale by sale, to the cent.
    for name, sale in online_sales.items():
        again = offline_sales[name]
        assert again["id"] != sale["id"]
        assert again["totals"] == sale["totals"], name
        assert [(line["name"], line["quantity"], line["total"]) for line in again["lines"]] == [
            (line["name"], line["quantity"], line["total"]) for line in sale["lines"]], name
        assert (again["tenders"], again["change"], as_given(again.get("discount"))) == (
            sale["tenders"], sale["change"], as_given(sale.get("discount"))), name
    # Exactly once: nothing but the two mornings' sales and refunds in the node's table.
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        (count,) = db.execute("SELECT count(*) FROM sales").fetchone()
    assert count == len(online_sales) + len(offline_sales)
    await context.close()
