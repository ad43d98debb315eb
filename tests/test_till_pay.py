"""Paying on the browser till, at touch size (1024x768), against a real demo node.

Any number of tenders on one sale (two cards and cash, with change), meal
vouchers with the store's cap (paper vouchers give no change: their excess is
said and kept), no receipt unless the customer asks (then printed later as the
original, and a DUPLICATA numbered after that), a basket parked under a name
on one till and served on another, one parked by logging out, and the same
split tender with the node down: the same totals, recorded once. Totals are
worked out here with edge/selling/money.py, not read from the till; receipts
are read back from the demo's file printer.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect
from test_till_browser import shop  # noqa: F401  (the fixture)
from test_till_offline import BACK_ONLINE_MS, ShopNode, log_in, scan

from edge.selling.money import price_basket, settle
from edge.selling.tills import create_pairing_code

BAGUETTE, ESPRESSO = "2000001000014", "2000004000011"
TOUCH = {"width": 1024, "height": 768}
# Four baguettes (1,20 € at 5.5 %) and two espressos (1,50 € at 10 %).
SPLIT_BASKET = [
    {"id": "b", "product_id": "p0001", "unit_price": 120, "vat_rate": 550, "quantity": 4},
    {"id": "e", "product_id": "p0004", "unit_price": 150, "vat_rate": 1000, "quantity": 2},
]
SPLIT_TENDERS = [{"method": "card", "amount": 300, "reference": "TPE-1"},
                 {"method": "card", "amount": 200}, {"method": "cash", "amount": 500}]
VOUCHER_BASKET = [{"id": "b", "product_id": "p0001", "unit_price": 120, "vat_rate": 550,
                   "quantity": 8}]


def euros(cents: int) -> re.Pattern[str]:
    """The till's French money text for `cents`, alone or in a sentence."""
    return re.compile(rf"{cents // 100},{cents % 100:02d}\s€")


async def open_till(context: BrowserContext, link: str, cashier: str = "alice",
                    pin: str = "1234") -> Page:
    page = await context.new_page()
    await page.goto(link)
    await log_in(page, cashier, pin)
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    return page


def receipts(node: ShopNode) -> str:
    path: Path = node.data / "printer" / "receipts.txt"
    return path.read_text() if path.exists() else ""


async def printed(node: ShopNode, pattern: str, count: int = 1) -> str:
    """The receipts file once `pattern` is in it `count` times."""
    for _ in range(200):
        if len(re.findall(pattern, text := receipts(node))) >= count:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pattern!r} not printed {count} time(s):\n{receipts(node)}")


async def pay_split(page: Page) -> None:
    """Card 3,00 € (slip TPE-1), card 2,00 €, then 5,00 € cash: Enter adds each short tender."""
    await page.click("#pay-card")
    await expect(page.locator("#screen-pay")).to_be_visible()
    await page.fill("#card-amount", "3")
    await page.fill("#card-reference", "TPE-1")
    await page.press("#card-reference", "Enter")
    await expect(page.locator(".pay-tender")).to_have_count(1)
    await expect(page.locator("#pay-left")).to_have_text(euros(480))
    await page.keyboard.press("F9")  # a second card
    await page.fill("#card-amount", "2")
    await page.press("#card-amount", "Enter")
    await expect(page.locator(".pay-tender")).to_have_count(2)
    await expect(page.locator("#pay-left")).to_have_text(euros(280))
    # The rest in cash (the screen moved to it): 5 € handed over, 2,20 € back.
    await expect(page.locator("#cash-given")).to_be_focused()
    await page.keyboard.type("5")
    await expect(page.locator("#pay-change")).to_have_text(re.compile(r"Rendu : 2,20\s€"))
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-done")).to_be_visible()


async def test_split_tenders_meal_vouchers_receipt_on_request_parked_baskets_and_offline(
    shop: tuple[ShopNode, Browser],  # noqa: F811
) -> None:
    node, browser = shop
    first = await browser.new_context(locale="fr-FR", viewport=TOUCH)
    page = await open_till(first, await node.pairing_link())
    code = node.first_till
    split = price_basket(SPLIT_BASKET)
    assert split["total"] == 780
    split_change = settle(780, SPLIT_TENDERS)["change"]

    # Two cards and cash; no receipt asked for: none printed, the sale says so.
    await scan(page, f"4*{BAGUETTE}")
    await scan(page, f"2*{ESPRESSO}")
    await expect(page.locator("#total")).to_have_text(euros(split["total"]))
    await expect(page.locator("#print-receipt")).to_have_count(1)
    await pay_split(page)
    await expect(page.locator("#receipt-number")).to_have_text(f"{code}-000001")
    await expect(page.locator("#change-due")).to_have_text(euros(split_change))
    await expect(page.locator("#done-tenders .done-tender")).to_have_count(3)
    await expect(page.locator("#print-note")).to_contain_text("Pas de ticket imprimé")
    await expect(page.locator("#reprint")).to_have_text("Imprimer le ticket")
    [sold] = node.sales()
    assert sold["tenders"] == SPLIT_TENDERS
    assert (sold["totals"]["total"], sold["totals"]["vat"], sold["change"], sold["receipt"]) == (
        split["total"], split["vat"], split_change, "not_printed")
    assert f"{code}-000001" not in receipts(node)
    await page.keyboard.press("Enter")  # the next customer

    # Meal vouchers: paper over the store's cap (25 €) is refused, nothing taken;
    # a 10 € voucher for 9,60 €: no change, 0,40 € kept and said so.
    vouchers = price_basket(VOUCHER_BASKET)
    await scan(page, f"8*{BAGUETTE}")
    await expect(page.locator("#total")).to_have_text(euros(vouchers["total"]))
    await page.click("#pay-cash")
    await page.keyboard.press("F10")
    await expect(page.locator('[data-pay-mode="voucher_paper"]')).to_have_attribute(
        "aria-pressed", "true")
    await page.fill("#card-amount", "30")
    await expect(page.locator("#pay-change")).to_contain_text("Titres-restaurant limités à 25,00")
    await page.press("#card-amount", "Enter")
    await expect(page.locator("#error")).to_contain_text("Titres-restaurant limités à 25,00")
    await expect(page.locator(".pay-tender")).to_have_count(0)
    await expect(page.locator("#screen-pay")).to_be_visible()
    await page.fill("#card-amount", "10")
    excess = settle(vouchers["total"], [{"method": "meal_voucher", "kind": "paper",
                                         "amount": 1000}], 2500)
    assert excess == {"change": 0, "voucher_excess": 40}
    await expect(page.locator("#pay-change")).to_have_text(re.compile(r"0,40\s€ non rendu"))
    await page.press("#card-amount", "Enter")
    await expect(page.locator("#screen-done")).to_be_visible()
    await expect(page.locator(".done-change")).to_be_hidden()  # no "change due 0,00 €"
    await expect(page.locator("#done-voucher-excess")).to_have_text(
        re.compile(r"Titre-restaurant : 0,40\s€ non rendu"))
    voucher_sale = node.sales()[1]
    assert (voucher_sale["tenders"], voucher_sale["change"], voucher_sale["voucher_excess"]) == (
        [{"method": "meal_voucher", "kind": "paper", "amount": 1000}], 0, 40)
    await page.keyboard.press("Enter")

    # A scan on the pay screen is a scan: the item goes into the basket, not into the amount.
    await scan(page, BAGUETTE)
    await page.click("#pay-cash")
    await expect(page.locator("#cash-given")).to_be_focused()
    await scan(page, ESPRESSO)
    await expect(page.locator("#pay-due")).to_have_text(euros(270))
    await expect(page.locator("#cash-given")).to_have_value("")
    await page.keyboard.press("Escape")
    await expect(page.locator(".basket-line")).to_have_count(2)

    # Parked under a name on this till, with its two lines...
    await page.click("#park-basket")
    await page.keyboard.type("Mme Dupont")
    await page.keyboard.press("Enter")
    await expect(page.locator("#notice")).to_have_text("Panier mis en attente : Mme Dupont")
    await expect(page.locator(".basket-line")).to_have_count(0)
    # ... and one left open at logout, parked by the node under the cashier's name.
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await page.click("#logout")
    await expect(page.locator("#notice")).to_have_text(
        "Le panier ouvert a été mis en attente au nom de Alice")

    # Another till (its own browser context: its own token) resumes Mme Dupont's and sells it.
    second = await browser.new_context(locale="fr-FR", viewport=TOUCH)
    link = f"{node.url}/#pair={create_pairing_code(node.data / 'edge.sqlite3')}"
    other = await open_till(second, link, "bruno", "567890")
    await other.click("#parked-open")
    named = other.locator(".parked-basket.named")
    await expect(named).to_have_count(2)
    await expect(named.first).to_contain_text("Alice")  # the latest parked first
    dupont = named.filter(has_text="Mme Dupont")
    await expect(dupont).to_contain_text("2 articles")
    await expect(dupont).to_contain_text(euros(270))
    await dupont.click()
    await expect(other.locator(".basket-line")).to_have_count(2)
    await expect(other.locator("#total")).to_have_text(euros(270))
    await other.click("#pay-cash")
    await other.keyboard.press("Enter")  # the exact amount
    await expect(other.locator("#screen-done")).to_be_visible()
    await expect(other.locator(".done-change")).to_be_visible()
    other_code = re.findall(r"\((\S+)\)", await other.locator("#till-name").inner_text())[-1]
    [served] = node.sales(other_code)
    assert served["totals"]["total"] == 270 and served["cashier"] == "bruno"

    # Today's sales on the first till: the split sale was never printed. Printed now, it
    # is the original; asked again, "DUPLICATA n° 1".
    await log_in(page)
    await page.click("#sales-open")
    rows = page.locator(".sales-row")
    await expect(rows).to_have_count(2)  # this till's, newest first
    split_row = rows.filter(has_text=f"{code}-000001")
    await expect(split_row).to_contain_text("Carte + Espèces")
    await expect(split_row).to_contain_text("Non imprimé")
    await expect(split_row).to_contain_text(euros(780))
    await split_row.locator(".sales-print").click()
    await expect(split_row).to_contain_text("Imprimé")
    text = await printed(node, rf"{code}-000001")
    assert "DUPLICATA" not in text
    await expect(split_row.locator(".sales-print")).to_have_text("Duplicata")
    await split_row.locator(".sales-print").click()
    await expect(split_row).to_contain_text("Imprimé + 1 duplicata")
    await expect(page.locator("#notice")).to_contain_text("Duplicata n° 1")
    text = await printed(node, rf"{code}-000001", count=2)
    assert re.search(r"DUPLICATA n° ?1", text)
    await page.keyboard.press("Escape")
    await expect(page.locator("#screen-sell")).to_be_visible()

    # The node goes down: the same split tender, sold by the till itself, same totals.
    node.kill()
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "offline")
    await scan(page, f"4*{BAGUETTE}")
    await scan(page, f"2*{ESPRESSO}")
    await expect(page.locator("#total")).to_have_text(euros(split["total"]))
    await pay_split(page)
    await expect(page.locator("#done-offline")).to_be_visible()
    await expect(page.locator("#change-due")).to_have_text(euros(split_change))
    await page.keyboard.press("Enter")
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    offline = [sale for sale in node.sales() if sale.get("offline")]
    assert len(offline) == 1, offline
    [again] = offline
    assert again["flags"] == []
    assert again["receipt"] == "not_printed"  # the customer's choice, carried offline too
    assert again["tenders"] == SPLIT_TENDERS
    assert (again["totals"]["total"], again["totals"]["vat"], again["change"]) == (
        sold["totals"]["total"], sold["totals"]["vat"], sold["change"])
    await first.close()
    await second.close()
