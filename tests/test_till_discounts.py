"""Discounts on the browser till, at touch size (1024x768), against a real demo node.

A line discount under the store's limit goes through; a basket discount past
it is refused until a manager types their PIN on the same till (a cashier's
PIN does not do), and the sale records who approved it. With every node down
the till applies them itself; the node that comes back gets them, but asks a
manager again for one past the limit (no node checked the PIN offline). Every total shown and
sold is checked against edge/selling/money.py's price_basket, worked out here
from the demo catalogue, not from the till's answers.
"""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect
from test_till_browser import shop  # noqa: F401  (the fixture)
from test_till_offline import BACK_ONLINE_MS, ShopNode, log_in, scan

from edge.selling.money import price_basket

BAGUETTE, CROISSANT, ESPRESSO = "2000001000014", "2000002000013", "2000004000011"
# The demo catalogue's prices and rates, and its "3 croissants for the price of 2".
LINES = [
    {"id": "baguettes", "product_id": "p0001", "unit_price": 120, "vat_rate": 550, "quantity": 3},
    {"id": "croissants", "product_id": "p0002", "unit_price": 115, "vat_rate": 550, "quantity": 3},
    {"id": "espresso", "product_id": "p0004", "unit_price": 150, "vat_rate": 1000, "quantity": 1},
]
PROMOTIONS = [{"id": "croissants-3-pour-2", "kind": "n_for_m", "products": ["p0002"], "n": 3,
               "m": 2}]
TOUCH = {"width": 1024, "height": 768}


def euros(cents: int) -> re.Pattern[str]:
    """The till's French money text for `cents`."""
    return re.compile(rf"^{cents // 100},{cents % 100:02d}\s€$")


async def open_till(node: ShopNode, browser: Browser) -> Page:
    page = await browser.new_page(locale="fr-FR", viewport=TOUCH)
    await page.goto(await node.pairing_link())
    await log_in(page)
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    return page


async def approve(page: Page, manager: str, pin: str) -> None:
    dialog = page.locator("#approval-dialog")
    await dialog.locator(f'[data-manager-id="{manager}"]').click()
    await page.keyboard.type(pin)
    await page.keyboard.press("Enter")


async def test_line_and_basket_discounts_online_and_offline(
    shop: tuple[ShopNode, Browser],  # noqa: F811
) -> None:
    node, browser = shop
    page = await open_till(node, browser)
    lines = page.locator(".basket-line")
    await scan(page, f"3*{BAGUETTE}")
    await scan(page, f"3*{CROISSANT}")
    await scan(page, ESPRESSO)
    await expect(lines).to_have_count(3)
    total = page.locator("#total")
    await expect(total).to_have_text(euros(price_basket(LINES, PROMOTIONS)["total"]))

    # A line discount under the limit (10 %): 5 % off the baguettes, a reason from the list.
    await lines.filter(has_text="Baguette tradition").locator('[data-action="discount"]').click()
    dialog = page.locator("#discount-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator('[data-kind="percent"]').click()
    await page.keyboard.type("5")
    await dialog.locator('[data-reason="Produit abîmé"]').click()
    await expect(dialog.locator("#discount-preview")).to_contain_text("0,18 €")
    await dialog.locator("#discount-apply").click()
    await expect(dialog).to_be_hidden()
    discounted = [dict(LINES[0], discount={"kind": "percent", "value": 500,
                                           "reason": "Produit abîmé"}), *LINES[1:]]
    expected = price_basket(discounted, PROMOTIONS)
    await expect(page.locator("#total")).to_have_text(euros(expected["total"]))
    await expect(lines.filter(has_text="Baguette tradition")).to_contain_text("Produit abîmé")

    # A basket discount past the limit: 20 % needs a manager.
    await page.click("#discount-basket")
    await expect(dialog).to_be_visible()
    await page.keyboard.type("20")
    await dialog.locator("#discount-reason").fill("fidélité")
    await dialog.locator("#discount-apply").click()
    approval = page.locator("#approval-dialog")
    await expect(approval).to_be_visible()
    await expect(approval).to_contain_text("10 %")
    await expect(page.locator("#error")).to_be_hidden()  # the prompt says it, not the banner
    # A cashier's own PIN does not approve.
    await approve(page, "alice", "1234")
    await expect(approval.locator("#approval-error")).to_contain_text("responsable")
    await expect(approval).to_be_visible()
    await expect(page.locator("#total")).to_have_text(euros(expected["total"]))
    # The manager's does, on this till, without logging anyone out.
    await approve(page, "bruno", "567890")
    await expect(approval).to_be_hidden()
    await expect(dialog).to_be_hidden()
    basket_discount = {"kind": "percent", "value": 2000, "reason": "fidélité"}
    expected = price_basket(discounted, PROMOTIONS, basket_discount)
    await expect(page.locator("#total")).to_have_text(euros(expected["total"]))
    summary = page.locator("#discount-summary")
    await expect(summary).to_contain_text("Remise ticket \u221220 % (fidélité)")  # a minus sign
    await expect(summary).to_contain_text(f"{expected['discounts']['basket'] // 100},"
                                          f"{expected['discounts']['basket'] % 100:02d}")
    await expect(page.locator("#cashier-name")).to_have_text("Alice")

    # The same 20 % for another reason: no line changes, and the summary says it all the same.
    await page.click("#discount-basket")
    await expect(dialog).to_be_visible()
    await dialog.locator("#discount-value").fill("20")
    await dialog.locator("#discount-reason").fill("geste commercial")
    await dialog.locator("#discount-apply").click()
    await approve(page, "bruno", "567890")
    await expect(dialog).to_be_hidden()
    await expect(summary).to_contain_text("Remise ticket \u221220 % (geste commercial)")
    basket_discount = dict(basket_discount, reason="geste commercial")

    # Sold: the sale keeps both discounts, the basket's with who approved it.
    await page.click("#pay-cash")
    await page.fill("#cash-given", "20")
    await page.click("#confirm-payment")
    await expect(page.locator("#screen-done")).to_be_visible()
    [sale] = node.sales()
    assert sale["totals"]["total"] == expected["total"]
    assert sale["totals"]["vat"] == expected["vat"]
    # The node also says what the approval was given on (`approved_on`, cents).
    assert {k: v for k, v in sale["discount"].items() if k != "approved_on"} \
        == dict(basket_discount, approved_by="bruno")
    baguettes = next(line for line in sale["lines"] if line["product_id"] == "p0001")
    assert baguettes["discount"] == {"kind": "percent", "value": 500, "reason": "Produit abîmé"}
    assert [line["total"] for line in sale["lines"]] == [
        line["total"] for line in expected["lines"]]
    await expect(page.locator("#change-due")).to_have_text(euros(2000 - expected["total"]))
    await page.click("#new-sale")

    # Every node down: the till applies discounts itself, with the node's rules.
    await scan(page, f"3*{BAGUETTE}")
    await expect(lines).to_have_count(1)
    node.kill()
    await expect(page.locator("#status")).to_have_attribute("data-state", "offline")
    await lines.first.locator('[data-action="discount"]').click()
    await page.keyboard.type("5")
    await dialog.locator('[data-reason="Produit abîmé"]').click()
    await dialog.locator("#discount-apply").click()
    offline = [discounted[0]]
    await expect(total).to_have_text(euros(price_basket(offline)["total"]))
    await page.click("#discount-basket")
    await page.keyboard.type("20")
    await dialog.locator("#discount-reason").fill("fidélité")
    await dialog.locator("#discount-apply").click()
    await approve(page, "bruno", "567890")  # no node can check it: recorded, not trusted
    await expect(approval).to_be_hidden()
    await expect(total).to_have_text(euros(price_basket(offline, [], basket_discount)["total"]))

    # A node is back: it gets the line discount; the one past the limit needs the manager
    # again (the till keeps no PIN), and the cashier is told.
    node.start()
    await expect(page.locator("#status")).to_have_attribute(
        "data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(page.locator("#error")).to_contain_text("accorder à nouveau")
    await expect(total).to_have_text(euros(price_basket(offline)["total"]))
    await expect(lines.first).to_contain_text("Produit abîmé")
