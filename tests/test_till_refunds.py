"""Refunds on the browser till, at touch size (1024x768), against a real demo node.

A receipt is found by scanning its QR code (the sale's hash, typed by the
scanner) or by typing its number; lines are refunded up to what is left of
them, never beyond (the till will not ask it); without a receipt a manager
approves on the spot, and for money given back otherwise than the sale was
paid (a card sale in cash). A sale that took a promotion gives back what the
customer keeps would not cost, online and offline alike. With the node down, a
refund goes to the till's outbox and is recorded once when the node is back,
flagged when another till had already refunded what it gives back.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect
from test_till_browser import shop  # noqa: F401  (the fixture)
from test_till_offline import BACK_ONLINE_MS, ShopNode, log_in, pay_cash, scan

from edge.selling.refund_rules import line_refund_amount
from edge.selling.tills import create_pairing_code

BAGUETTE, CROISSANT, ESPRESSO = "2000001000014", "2000002000013", "2000004000011"
TOUCH = {"width": 1024, "height": 768}


def euros(cents: int) -> re.Pattern[str]:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return re.compile(rf"^{sign}{cents // 100},{cents % 100:02d}\s€$")


def sale_hash(node: ShopNode, receipt_number: str) -> str:
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        (found,) = db.execute("SELECT hash FROM sales WHERE json_extract(body, "
                              "'$.receipt_number') = ?", (receipt_number,)).fetchone()
    return str(found)


def refunds(node: ShopNode) -> list[dict[str, Any]]:
    return [sale for sale in node.sales() if "refund_of" in sale]


def refund_events(node: ShopNode) -> list[str]:
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        rows = db.execute("SELECT json_extract(body, '$.id') FROM events "
                          "WHERE type = 'sale_refunded' ORDER BY position").fetchall()
    return [row[0] for row in rows]


async def paired_till(context: BrowserContext, link: str, cashier: str, pin: str) -> Page:
    page = await context.new_page()
    await page.goto(link)
    await log_in(page, cashier, pin)
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    return page


async def find_receipt(page: Page, text: str) -> None:
    """The refund screen, and the receipt as a scanner (or a hand) types it."""
    await page.click("#refund-open")
    await expect(page.locator("#screen-refund")).to_be_visible()
    await expect(page.locator("#refund-query")).to_be_focused()
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")
    # Shown: the lines of an earlier refund stay in the page, hidden, until this answer.
    await expect(page.locator("#refund-lines .refund-line").first).to_be_visible()


def refund_line(page: Page, name: str) -> Any:
    return page.locator("#refund-lines .refund-line").filter(has_text=name)


async def refund(page: Page, reason: str) -> None:
    await page.locator(f'#refund-reasons [data-reason="{reason}"]').click()
    await page.click("#refund-confirm")


async def test_refunds_by_qr_code_by_number_without_receipt_and_offline(
    shop: tuple[ShopNode, Browser],  # noqa: F811
) -> None:
    node, browser = shop
    till = await browser.new_context(locale="fr-FR", viewport=TOUCH)
    page = await paired_till(till, await node.pairing_link(), "alice", "1234")
    code = node.first_till

    # The sale: three baguettes and an espresso, 5,10 €.
    await scan(page, f"3*{BAGUETTE}")
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(2)
    await pay_cash(page, "10")
    sold = f"{code}-000001"
    await expect(page.locator("#receipt-number")).to_have_text(sold)
    await page.click("#new-sale")
    [sale] = node.sales()
    baguettes = next(line for line in sale["lines"] if line["product_id"] == "p0001")

    # One baguette back, the receipt's QR code scanned.
    await find_receipt(page, sale_hash(node, sold))
    await expect(page.locator("#refund-sale-info")).to_contain_text(sold)
    await refund_line(page, "Baguette tradition").locator('[data-step="1"]').click()
    first_amount = line_refund_amount(baguettes["total"], 3, 0, 1)
    await expect(page.locator("#refund-total")).to_have_text(euros(-first_amount))
    await expect(page.locator("#refund-tenders")).to_contain_text("Espèces 1,20 €")
    await refund(page, "Produit défectueux")
    await expect(page.locator("#refund-done")).to_be_visible()
    await expect(page.locator("#refund-number")).to_have_text(f"{code}-000002")
    await expect(page.locator("#refund-done-total")).to_have_text(euros(-first_amount))
    await page.click("#refund-finish")
    await expect(page.locator("#screen-sell")).to_be_visible()

    # The espresso, the receipt's number typed; the baguettes cannot go past what is left.
    await find_receipt(page, sold)
    baguette_row = refund_line(page, "Baguette tradition")
    await expect(baguette_row).to_contain_text("déjà remboursé 1")
    for _ in range(3):
        await baguette_row.locator('[data-step="1"]').click()
    await expect(baguette_row.locator(".refund-qty")).to_have_text("2")
    await expect(page.locator("#refund-message")).to_contain_text("2 au plus")
    for _ in range(2):
        await baguette_row.locator('[data-step="-1"]').click()
    await refund_line(page, "Café expresso").locator('[data-step="1"]').click()
    await expect(page.locator("#refund-total")).to_have_text(euros(-150))
    await refund(page, "Erreur de caisse")
    await expect(page.locator("#refund-number")).to_have_text(f"{code}-000003")
    await page.click("#refund-finish")
    by_qr, by_number = refunds(node)
    assert (by_qr["refund_of"], by_qr["totals"]["total"]) == (sale["id"], -first_amount)
    assert [(line["line_id"], line["quantity"]) for line in by_qr["lines"]] == [
        (baguettes["id"], 1)]
    assert by_qr["tenders"] == [{"method": "cash", "amount": -first_amount}]
    assert (by_number["refund_of"], by_number["totals"]["total"]) == (sale["id"], -150)
    assert by_number["reason"] == "Erreur de caisse"

    # Without a receipt: a product from the catalogue, and a manager's PIN on this till.
    await page.click("#refund-open")
    await page.click("#refund-no-receipt")
    await expect(page.locator("#refund-search")).to_be_focused()
    results = page.locator("#refund-search-results .search-result")
    await page.keyboard.type("crois")
    await expect(results).to_have_count(3)  # the croissants, "aux amandes" first
    # Typed on: what "crois" found is not what the field says any more; a tap right
    # away (before the next search answers) must not refund one of those.
    await page.keyboard.type(" beur")
    await results.first.click()
    await expect(refund_line(page, "Croissant pur beurre")).to_be_visible()
    await refund(page, "Client mécontent")
    approval = page.locator("#approval-dialog")
    await expect(approval).to_be_visible()
    await approval.locator('[data-manager-id="bruno"]').click()
    await page.keyboard.type("567890")
    await page.keyboard.press("Enter")
    await expect(approval).to_be_hidden()
    await expect(page.locator("#refund-number")).to_have_text(f"{code}-000004")
    await page.click("#refund-finish")
    without = refunds(node)[-1]
    assert (without["refund_of"], without["approved_by"]) == (None, "bruno")
    assert without["totals"]["total"] == -115 and without["cashier"] == "alice"

    # Three croissants "3 for 2" by card; two back, all in cash: the one kept costs
    # 1,15 €, and cash for a card sale takes a manager.
    await scan(page, f"3*{CROISSANT}")
    await expect(page.locator("#total")).to_have_text(euros(230))
    await page.click("#pay-card")
    await page.fill("#card-reference", "TPE-1")
    await page.click("#confirm-payment")
    await expect(page.locator("#receipt-number")).to_have_text(f"{code}-000005")
    await page.click("#new-sale")
    await find_receipt(page, f"{code}-000005")
    croissants = refund_line(page, "Croissant pur beurre")
    for _ in range(2):
        await croissants.locator('[data-step="1"]').click()
    await expect(page.locator("#refund-total")).to_have_text(euros(-115))
    await expect(page.locator("#refund-tenders")).to_contain_text("Carte 1,15 €")
    await page.check("#refund-all-cash")
    await refund(page, "Client mécontent")
    await expect(approval).to_be_visible()
    await approval.locator('[data-manager-id="bruno"]').click()
    await page.keyboard.type("567890")
    await page.keyboard.press("Enter")
    await expect(page.locator("#refund-number")).to_have_text(f"{code}-000006")
    await page.click("#refund-finish")
    in_cash = refunds(node)[-1]
    assert in_cash["tenders"] == [{"method": "cash", "amount": -115}]
    assert in_cash["approved_by"] == "bruno"

    # Another till refunds the two baguettes left; this till does not know it.
    other = await browser.new_context(locale="fr-FR", viewport=TOUCH)
    other_page = await paired_till(other, f"{node.url}/#pair="
                                   f"{create_pairing_code(node.data / 'edge.sqlite3')}",
                                   "bruno", "567890")
    await find_receipt(other_page, sold)
    for _ in range(2):
        await refund_line(other_page, "Baguette tradition").locator('[data-step="1"]').click()
    await refund(other_page, "Produit défectueux")
    await expect(other_page.locator("#refund-done")).to_be_visible()
    await other.close()

    # Every node down: this till finds the receipt among its own sales of the day,
    # refunds a baguette it thinks is left, and keeps the refund to send.
    node.kill()
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "offline")
    await find_receipt(page, sold)
    baguette_row = refund_line(page, "Baguette tradition")
    await expect(baguette_row).to_contain_text("déjà remboursé 1")
    await baguette_row.locator('[data-step="1"]').click()
    await refund(page, "Produit défectueux")
    await expect(page.locator("#refund-done-offline")).to_be_visible()
    await expect(page.locator("#refund-number")).to_have_text(f"{code}-000007")
    await expect(status).to_have_attribute("data-waiting-sales", "1")
    await page.click("#refund-finish")
    # The last croissant: the till prices it as the node does (all that is left: 1,15 €),
    # back to the card that paid.
    await find_receipt(page, f"{code}-000005")
    await expect(croissants).to_contain_text("déjà remboursé 2")
    await croissants.locator('[data-step="1"]').click()
    await expect(page.locator("#refund-total")).to_have_text(euros(-115))
    await refund(page, "Client mécontent")
    await expect(page.locator("#refund-number")).to_have_text(f"{code}-000008")
    await expect(status).to_have_attribute("data-waiting-sales", "2")
    await page.click("#refund-finish")

    # The node is back: the refund is recorded once, flagged: the receipt had none left.
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    by_number = {refund["receipt_number"]: refund for refund in refunds(node)}
    offline = by_number[f"{code}-000007"]
    assert offline["offline"] is True and "over_refunded" in offline["flags"]
    assert offline["lines"][0]["amount"] == line_refund_amount(baguettes["total"], 3, 1, 1)
    assert refund_events(node).count(offline["id"]) == 1
    last = by_number[f"{code}-000008"]
    assert (last["flags"], last["totals"]["total"]) == ([], -115)
    assert last["tenders"] == [{"method": "card", "amount": -115}]
    await till.close()
