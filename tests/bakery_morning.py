"""A bakery's morning on the browser till, as a list of steps (tests/test_bakery_morning.py).

Each step is a function of the `Morning` (the till's page, the node, whether a
node answers); a sale's step rings it up, checks the till's total and pays.
What each sale must come to is written here by plain arithmetic from the demo
store's prices (edge/data/demo_catalogue.csv), cross-checked with
edge/selling/money.py's price_basket: never read from the till.

The same steps run online and with every node down. What cannot be done
offline by design is said in the step, and the offline-possible equivalent
done instead:
- parking needs a node (the basket is kept there, for any till): offline, the
  customer's basket is sold on the spot, same lines, same tenders;
- no node, no other till to serve it on: that step sells nothing offline;
- today's sales list (and so a reprint) is read from the node: offline the
  till says it cannot, and prints nothing;
- a receipt's QR code holds the sale's journal hash, which only a node gives
  (an offline sale has none yet, and has no printed receipt): offline the
  return is made against this till's first sale by its typed receipt number.
The manager's PIN cannot be checked offline either: the till records the
manager named (the node flags the sale `approval_unverified`), same totals.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect
from test_till_discounts import approve
from test_till_grid import line, tile, type_on_keypad
from test_till_offline import ShopNode, pay_cash, scan
from test_till_pay import SPLIT_TENDERS, open_till, pay_split, printed
from test_till_refunds import find_receipt, refund, refund_line

from edge.selling.money import price_basket, settle
from edge.selling.refund_rules import line_refund_amount
from edge.selling.tills import create_pairing_code

TOUCH = {"width": 1024, "height": 768}
BAGUETTE, CROISSANT, PAIN_AU_CHOCOLAT, ESPRESSO = (
    "2000001000014", "2000002000013", "2000003000012", "2000004000011")
OLIVES_1234_G = "2100003012340"  # prefix 21: a weight label, 1,234 kg of olives
CAKE_AT_8_75 = "2200001008755"  # prefix 22: a price label, 8,75 € for the cake
CROISSANTS_3_FOR_2 = {"id": "croissants-3-pour-2", "kind": "n_for_m", "products": ["p0002"],
                      "n": 3, "m": 2}
MEAL_VOUCHER_CAP = 2500  # the demo store's (the legal daily cap)
DISCOUNT_REASON = "Produit abîmé"
BASKET_DISCOUNT = {"kind": "percent", "value": 2000, "reason": "fidélité"}


def demo_line(line_id: str, product_id: str, unit_price: int, vat_rate: int, quantity: int,
              **more: Any) -> dict[str, Any]:
    return {"id": line_id, "product_id": product_id, "unit_price": unit_price,
            "vat_rate": vat_rate, "quantity": quantity, **more}


@dataclass(frozen=True)
class Expected:
    """A sale of the morning: its total by hand, its basket for price_basket, how it is paid."""

    total: int
    lines: list[dict[str, Any]]
    tenders: list[dict[str, Any]]
    promotions: list[dict[str, Any]] = field(default_factory=list)
    discount: dict[str, Any] | None = None

    @property
    def priced(self) -> dict[str, Any]:
        return price_basket(self.lines, self.promotions, self.discount)

    @property
    def settled(self) -> dict[str, int]:
        return settle(self.total, self.tenders, MEAL_VOUCHER_CAP)


BAGUETTES_3 = demo_line("b", "p0001", 120, 550, 3)
CROISSANTS_3 = demo_line("c", "p0002", 115, 550, 3)
ESPRESSO_1 = demo_line("e", "p0004", 150, 1000, 1)

SALES: dict[str, Expected] = {
    # 3 baguettes at 1,20; 3 croissants at 1,15, three for the price of two; an espresso.
    "first_customer": Expected(
        3 * 120 + 2 * 115 + 150, [BAGUETTES_3, CROISSANTS_3, ESPRESSO_1],
        [{"method": "cash", "amount": 1000}], [CROISSANTS_3_FOR_2]),
    # 450 g of bread at 6,80 €/kg (3,06), a 1,234 kg olives label at 18,90 €/kg
    # (23,3226 -> 23,32), a cake label at 8,75; 25 € of paper meal vouchers (the cap), cash.
    "weighed_and_labels": Expected(
        306 + 2332 + 875,
        [demo_line("w", "p0341", 680, 550, 450, unit="g"),
         demo_line("o", "p0343", 1890, 550, 1234, unit="g"),
         demo_line("k", "p0344", 875, 550, 1, price_embedded=True)],
        [{"method": "meal_voucher", "kind": "paper", "amount": 2500},
         {"method": "cash", "amount": 2000}]),
    # The first customer's basket, 5 % off the baguettes (3,60 -> 3,42), then 20 % off the
    # basket (7,22 -> 1,44 off) approved by the manager; paid by card.
    "discounts": Expected(
        (342 + 230 + 150) - 144,
        [dict(BAGUETTES_3, discount={"kind": "percent", "value": 500, "reason": DISCOUNT_REASON}),
         CROISSANTS_3, ESPRESSO_1],
        [{"method": "card", "amount": 578, "reference": "TPE-7"}], [CROISSANTS_3_FOR_2],
        BASKET_DISCOUNT),
    # 2 pains au chocolat at 1,25 and "Divers" at a typed 3,50; the exact amount in cash.
    "open_price": Expected(
        2 * 125 + 350,
        [demo_line("p", "p0003", 125, 550, 2), demo_line("d", "p0346", 350, 550, 1)],
        [{"method": "cash", "amount": 600}]),
    # Mme Dupont's: 2 espressos and a croissant, parked, paid later with a 5 € note.
    "parked": Expected(
        2 * 150 + 115,
        [demo_line("e", "p0004", 150, 1000, 2), demo_line("c", "p0002", 115, 550, 1)],
        [{"method": "cash", "amount": 500}], [CROISSANTS_3_FOR_2]),
    # 4 baguettes and 2 espressos: card 3,00 (slip TPE-1), card 2,00, cash 5,00.
    "split_tender": Expected(
        4 * 120 + 2 * 150,
        [demo_line("b", "p0001", 120, 550, 4), demo_line("e", "p0004", 150, 1000, 2)],
        SPLIT_TENDERS),
}
# One baguette of the first customer's three back (their line came to 3,60).
RETURN_AMOUNT = 120
RETURN_TENDERS = [{"method": "cash", "amount": -RETURN_AMOUNT}]


def euros(cents: int) -> re.Pattern[str]:
    """The till's French money text for `cents`, in a sentence."""
    sign = "-" if cents < 0 else ""
    return re.compile(rf"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}\s€")


def amount(cents: int) -> re.Pattern[str]:
    """The same, alone: 7,40 € is not 17,40 €."""
    return re.compile(rf"^{euros(cents).pattern}$")


def check_the_arithmetic() -> None:
    """Each sale's hand-written total is price_basket's, its VAT rows add up, its tenders settle."""
    for name, sale in SALES.items():
        priced = sale.priced
        assert priced["total"] == sale.total, (name, priced["total"], sale.total)
        assert sum(row["total"] for row in priced["vat"]) == sale.total, name
        assert sum(line["total"] for line in priced["lines"]) == sale.total, name
        assert sale.settled["change"] >= 0, name  # settle raises if the tenders fall short
    assert line_refund_amount(SALES["first_customer"].priced["lines"][0]["total"], 3, 0, 1) \
        == RETURN_AMOUNT


@dataclass
class Morning:
    """One run of the morning: till A's page, and what it sold (step -> receipt number)."""

    node: ShopNode
    browser: Browser
    page: Page
    online: bool
    sold: dict[str, str] = field(default_factory=dict)
    other_till: BrowserContext | None = None

    async def check_total(self, name: str, page: Page | None = None) -> None:
        await expect((page or self.page).locator("#total")).to_have_text(
            amount(SALES[name].total))

    async def done(self, name: str, page: Page | None = None) -> None:
        """The sale is recorded: its number kept, the change checked; the next customer."""
        page = page or self.page
        await expect(page.locator("#screen-done")).to_be_visible()
        await expect(page.locator("#done-offline")).to_be_visible(visible=not self.online)
        if any(tender["method"] == "cash" for tender in SALES[name].tenders):
            await expect(page.locator("#change-due")).to_have_text(
                amount(SALES[name].settled["change"]))
        self.sold[name] = await page.locator("#receipt-number").inner_text()
        await page.click("#new-sale")
        await expect(page.locator("#screen-sell")).to_be_visible()
        await expect(page.locator(".basket-line")).to_have_count(0)


Step = Callable[[Morning], Awaitable[None]]


async def first_customer(m: Morning) -> None:
    """Grid taps and scans: a tap or a scan of a product already there raises its line."""
    page = m.page
    await tile(page, "p0001").click()
    await tile(page, "p0001").click()
    await scan(page, BAGUETTE)
    await expect(line(page, "Baguette tradition").locator(".qty-value")).to_have_text("3")
    for _ in range(3):
        await tile(page, "p0002").click()
    await expect(line(page, "Croissant pur beurre")).to_contain_text(euros(230))  # 3 for 2
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(3)
    await m.check_total("first_customer")
    await pay_cash(page, "10", print_receipt=True)  # this customer wants the receipt
    await m.done("first_customer")


async def weighed_and_labels(m: Morning) -> None:
    """A weighed tile, a weight label and a price label; meal vouchers up to their cap."""
    page = m.page
    await tile(page, "p0341").click()
    await type_on_keypad(page, "450")
    await expect(line(page, "Pain de campagne au poids")).to_contain_text(euros(306))
    await scan(page, OLIVES_1234_G)
    await expect(line(page, "Olives de Nyons")).to_contain_text(euros(2332))
    await scan(page, CAKE_AT_8_75)
    await expect(page.locator(".basket-line")).to_have_count(3)
    await m.check_total("weighed_and_labels")
    await page.click("#pay-cash")
    await page.keyboard.press("F10")  # paper meal vouchers
    await page.fill("#card-amount", "30")
    await page.press("#card-amount", "Enter")  # over the 25 € cap: refused, nothing taken
    await expect(page.locator("#error")).to_contain_text("Titres-restaurant limités à 25,00")
    await expect(page.locator(".pay-tender")).to_have_count(0)
    await page.fill("#card-amount", "25")
    await page.press("#card-amount", "Enter")  # taken; the rest in cash
    await expect(page.locator(".pay-tender")).to_have_count(1)
    await expect(page.locator("#pay-left")).to_have_text(
        amount(SALES["weighed_and_labels"].total - 2500))
    await expect(page.locator("#cash-given")).to_be_focused()
    await page.keyboard.type("20")
    await page.keyboard.press("Enter")
    await m.done("weighed_and_labels")


async def discounts(m: Morning) -> None:
    """A promotion, a line discount under the limit, a basket discount a manager approves."""
    page = m.page
    lines = page.locator(".basket-line")
    await scan(page, f"3*{BAGUETTE}")
    await scan(page, f"3*{CROISSANT}")
    await scan(page, ESPRESSO)
    await expect(lines).to_have_count(3)
    await expect(page.locator("#total")).to_have_text(amount(360 + 230 + 150))
    dialog = page.locator("#discount-dialog")
    await line(page, "Baguette tradition").locator('[data-action="discount"]').click()
    await expect(dialog).to_be_visible()
    await dialog.locator('[data-kind="percent"]').click()
    await page.keyboard.type("5")
    await dialog.locator(f'[data-reason="{DISCOUNT_REASON}"]').click()
    await dialog.locator("#discount-apply").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#total")).to_have_text(amount(342 + 230 + 150))
    # 20 % is past the store's 10 %: the manager types their PIN on this till (offline
    # no node can check it: the till records who was named, the node flags it).
    await page.click("#discount-basket")
    await expect(dialog).to_be_visible()
    await page.keyboard.type("20")
    await dialog.locator("#discount-reason").fill(BASKET_DISCOUNT["reason"])
    await dialog.locator("#discount-apply").click()
    await expect(page.locator("#approval-dialog")).to_be_visible()
    await approve(page, "bruno", "567890")
    await expect(page.locator("#approval-dialog")).to_be_hidden()
    await m.check_total("discounts")
    await page.click("#pay-card")
    await page.fill("#card-reference", "TPE-7")
    await page.press("#card-reference", "Enter")  # the card pays what is due
    await m.done("discounts")


async def open_price(m: Morning) -> None:
    """An open-price "Divers" at a typed amount, beside scanned pastries."""
    page = m.page
    await scan(page, f"2*{PAIN_AU_CHOCOLAT}")
    await tile(page, "p0346").click()
    await type_on_keypad(page, "3,50")
    await expect(line(page, "Divers")).to_contain_text(euros(350))
    await m.check_total("open_price")
    await page.click("#pay-cash")
    await page.keyboard.press("Enter")  # the exact amount
    await m.done("open_price")


async def ring_up_mme_dupont(page: Page) -> None:
    await scan(page, f"2*{ESPRESSO}")
    await tile(page, "p0002").click()
    await expect(page.locator(".basket-line")).to_have_count(2)


async def park(m: Morning) -> None:
    """Mme Dupont looks for her purse: her basket is parked, the next customer served.

    Offline there is no node to keep it: the till will not park (the button is off),
    so she pays on the spot, same basket, same tenders."""
    page = m.page
    await ring_up_mme_dupont(page)
    await m.check_total("parked")
    if not m.online:
        await expect(page.locator("#park-basket")).to_be_disabled()
        await pay_cash(page, "5")
        await m.done("parked")
        return
    await page.click("#park-basket")
    await page.keyboard.type("Mme Dupont")
    await page.keyboard.press("Enter")
    await expect(page.locator("#notice")).to_have_text("Panier mis en attente : Mme Dupont")
    await expect(page.locator(".basket-line")).to_have_count(0)


async def split_tender(m: Morning) -> None:
    """Two cards and cash; no receipt asked for (the default): none printed."""
    page = m.page
    await scan(page, f"4*{BAGUETTE}")
    await scan(page, f"2*{ESPRESSO}")
    await m.check_total("split_tender")
    await pay_split(page)
    await expect(page.locator("#done-tenders .done-tender")).to_have_count(3)
    if m.online:
        await expect(page.locator("#print-note")).to_contain_text("Pas de ticket imprimé")
    await m.done("split_tender")


async def parked_served_elsewhere(m: Morning) -> None:
    """Mme Dupont found her purse at the other till: it resumes her basket and sells it.

    Offline: no node, no parked basket; she was served at once (see `park`)."""
    if not m.online:
        return
    m.other_till = await m.browser.new_context(locale="fr-FR", viewport=TOUCH)
    link = f"{m.node.url}/#pair={create_pairing_code(m.node.data / 'edge.sqlite3')}"
    other = await open_till(m.other_till, link, "bruno", "567890")
    await other.click("#parked-open")
    dupont = other.locator(".parked-basket.named").filter(has_text="Mme Dupont")
    await expect(dupont).to_contain_text(euros(SALES["parked"].total))
    await dupont.click()
    await expect(other.locator(".basket-line")).to_have_count(2)
    await m.check_total("parked", other)
    await pay_cash(other, "5")
    await m.done("parked", other)


async def reprint(m: Morning) -> None:
    """The first customer comes back for another copy: DUPLICATA n° 1, from today's sales.

    Offline the list is the node's: the till says it cannot."""
    page = m.page
    await page.click("#sales-open")
    if not m.online:
        await expect(page.locator("#error")).to_contain_text("Hors ligne")
        await expect(page.locator("#screen-sell")).to_be_visible()
        return
    row = page.locator(".sales-row").filter(has_text=m.sold["first_customer"])
    await expect(row).to_contain_text(euros(SALES["first_customer"].total))
    await expect(row.locator(".sales-print")).to_have_text("Duplicata")
    await row.locator(".sales-print").click()
    await expect(page.locator("#notice")).to_contain_text("Duplicata n° 1")
    await expect(row).to_contain_text("Imprimé + 1 duplicata")
    await page.keyboard.press("Escape")
    await expect(page.locator("#screen-sell")).to_be_visible()


async def return_a_baguette(m: Morning) -> None:
    """One of the first customer's baguettes back, the receipt's QR code scanned.

    The QR (the sale's journal hash) is read off the printed receipt. Offline the sale
    has no hash and no receipt: its number is typed instead."""
    page = m.page
    number = m.sold["first_customer"]
    if m.online:
        await find_receipt(page, qr_of(await printed(m.node, rf"Ticket {number}"), number))
    else:
        await find_receipt(page, number)
    await expect(page.locator("#refund-sale-info")).to_contain_text(number)
    await refund_line(page, "Baguette tradition").locator('[data-step="1"]').click()
    await expect(page.locator("#refund-total")).to_have_text(amount(-RETURN_AMOUNT))
    await refund(page, "Produit défectueux")
    await expect(page.locator("#refund-done")).to_be_visible()
    await expect(page.locator("#refund-done-offline")).to_be_visible(visible=not m.online)
    await expect(page.locator("#refund-done-total")).to_have_text(amount(-RETURN_AMOUNT))
    m.sold["return"] = await page.locator("#refund-number").inner_text()
    await page.click("#refund-finish")
    await expect(page.locator("#screen-sell")).to_be_visible()


MORNING: list[Step] = [first_customer, weighed_and_labels, discounts, open_price, park,
                       split_tender, parked_served_elsewhere, reprint, return_a_baguette]


# --- what the node's file printer printed -------------------------------------------

def printed_receipts(text: str, number: str) -> list[str]:
    """The receipts (each ends with its thanks) whose own number is `number`."""
    blocks = text.split("Merci de votre visite !")
    return [block for block in blocks if re.search(rf"^Ticket {re.escape(number)}\b", block,
                                                   re.MULTILINE)]


def qr_of(text: str, number: str) -> str:
    """What a scanner reads off the QR code of receipt `number`'s original."""
    [original] = [block for block in printed_receipts(text, number) if "DUPLICATA" not in block]
    match = re.search(r"\[QR ([0-9a-f]{64})\]", original)
    assert match, original
    return match.group(1)
