"""A cashier sells in a real browser (Debian's chromium), as in a shop.

The node and the browser run in a test-made network namespace and the page is
served from 10.231.9.2, not loopback: like a shop's http://192.168.x.x it is
not a secure context (no crypto.randomUUID, no service worker).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from netns import lone_host
from playwright.async_api import Browser, Page, async_playwright, expect
from test_till_offline import ADDRESS, ShopNode, launch_browser_in


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[ShopNode, Browser]]:
    """`edge serve` in the shop namespace, as README's demo command runs it, and chromium."""
    with lone_host(ADDRESS) as ns:
        node = ShopNode(ns, tmp_path)
        try:
            node.start()
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright)
                yield node, browser
                await browser.close()
        finally:
            node.stop()


async def scan(page: Page, barcode: str) -> None:
    # A USB scanner is a keyboard: digits, then Enter, into whatever has focus.
    await page.keyboard.type(barcode)
    await page.keyboard.press("Enter")


async def printed_receipt(data: Path, number: str) -> str:
    receipts = data / "printer" / "receipts.txt"
    for _ in range(100):
        if receipts.exists() and number in (text := receipts.read_text()):
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"receipt {number} was not printed")


async def test_a_cashier_sells_two_products_for_cash(shop: tuple[ShopNode, Browser]) -> None:
    node, browser = shop
    link = await node.pairing_link()
    assert link.startswith(f"http://{ADDRESS}:{node.port}/#pair=")
    page = await browser.new_page(locale="fr-FR")
    await page.goto(link)
    assert await page.evaluate("window.isSecureContext") is False

    # Log in: tap the cashier, type the PIN.
    await page.click('[data-cashier-id="alice"]')
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")

    # Scan a baguette (5.5 %) and an espresso (10 %): the scan field has focus.
    await expect(page.locator("#scan")).to_be_focused()
    await scan(page, "2000001000014")
    await expect(page.locator(".basket-line")).to_have_count(1)
    await scan(page, "2000004000011")
    await expect(page.locator(".basket-line")).to_have_count(2)
    await expect(page.locator("#total")).to_have_text(re.compile(r"2,70\s€"))

    # The baguette again, then its minus button: its line is set in place each time, never drawn
    # anew (on a till of one core, laying out the whole basket slowed every scan).
    baguette = page.locator(".basket-line", has_text="Baguette")
    await baguette.evaluate("(line) => { window.baguetteLine = line; }")
    await scan(page, "2000001000014")
    await expect(baguette.locator(".qty-value")).to_have_text("2")
    await expect(page.locator("#total")).to_have_text(re.compile(r"3,90\s€"))
    await baguette.locator('[data-action="decrease"]').click()
    await expect(baguette.locator(".qty-value")).to_have_text("1")
    await expect(page.locator("#total")).to_have_text(re.compile(r"2,70\s€"))
    assert await baguette.evaluate("(line) => line === window.baguetteLine")

    # Pay 5 € cash.
    await page.click("#pay-cash")
    await page.fill("#cash-given", "5")
    await page.click("#print-receipt")  # the customer wants a receipt
    await page.click("#confirm-payment")
    await expect(page.locator("#screen-done")).to_be_visible()
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#change-due")).to_have_text(re.compile(r"2,30\s€"))

    receipt = await printed_receipt(node.data, f"{node.first_till}-000001")
    assert "Baguette tradition" in receipt and "Café expresso" in receipt
    assert re.search(r"TOTAL TTC\s+2,70 EUR", receipt)
    assert re.search(r"5,5%\s+1,14\s+0,06\s+1,20", receipt)
    assert re.search(r"10%\s+1,36\s+0,14\s+1,50", receipt)
    assert re.search(r"Espèces\s+5,00", receipt)
    assert re.search(r"Rendu\s+2,30", receipt)

    # The next customer: a new, empty basket.
    await page.click("#new-sale")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(page.locator(".basket-line")).to_have_count(0)


async def test_an_unknown_barcode_is_shown_and_changes_nothing(
    shop: tuple[ShopNode, Browser],
) -> None:
    node, browser = shop
    page = await browser.new_page(locale="en-US")
    await page.goto(await node.pairing_link())
    await page.click('[data-cashier-id="bruno"]')
    await page.keyboard.type("567890")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await scan(page, "3000000000000")
    await expect(page.locator("#error")).to_be_visible()
    await expect(page.locator("#error")).to_contain_text("3000000000000")
    await expect(page.locator(".basket-line")).to_have_count(0)
    # And the till goes on: search by name, pick the product.
    await page.click("#search")
    await page.keyboard.type("crois beur")
    await page.locator(".search-result").first.click()
    await expect(page.locator(".basket-line")).to_have_count(1)
    await expect(page.locator(".basket-line")).to_contain_text("Croissant pur beurre")
