"""A card paid on the payment terminal from the browser till (issue 13, acceptance 4).

The node and chromium run in a test-made network namespace, as in
tests/test_till_offline.py; the terminal is tests/fake_terminal.py run as a
process in that namespace, which the node dials (Caisse-AP over IP). The
first payment is held on the terminal (the till shows "Paiement en cours sur
le terminal…" and cannot cancel it), then approved: the sale is recorded with
the payment, and the receipt the demo's file printer writes shows the
authorisation number and the masked card. The second sale's card is declined
(the reason in plain words), and the customer pays cash. Last, the espresso of
the first sale is refunded: back to the card, through the terminal (CD 1).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from fake_terminal import AUTHORISATION, CARD
from netns import in_namespace, lone_host
from playwright.async_api import Browser, Page, async_playwright, expect
from test_till_offline import (
    ADDRESS,
    BAGUETTE,
    ShopNode,
    launch_browser_in,
    open_paired_till,
    scan,
)
from test_till_printing import demo_config, printed
from test_till_refunds import find_receipt, refund, refund_line, refunds

ESPRESSO = "2000004000011"
LAST4 = CARD[-4:]


class TerminalInShop:
    """tests/fake_terminal.py on 127.0.0.1 of the shop namespace: `script` per connection."""

    def __init__(self, ns: str, script: str) -> None:
        self.proc = subprocess.Popen(
            in_namespace(ns, [sys.executable, "-m", "tests.fake_terminal", "--script", script]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def release(self) -> None:
        """The customer typed the PIN: a held payment is approved."""
        self.tell("release")

    def use(self, script: str) -> None:
        """The script of the next payments."""
        self.tell(f"script {script}")

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


async def test_a_card_approved_on_the_terminal_prints_its_authorisation_then_a_decline_then_cash(
    tmp_path: Path,
) -> None:
    with lone_host(ADDRESS) as ns:
        # The first payment waits on the terminal until released, the next one is refused (AF 04).
        terminal = TerminalInShop(ns, "hold,declined-04")
        config = demo_config(tmp_path / "node", '[[terminals]]\nname = "tpe-1"\n'
                                                f'host = "127.0.0.1"\nport = {terminal.port}\n')
        node = ShopNode(ns, tmp_path / "node", ["--config", str(config)])
        try:
            node.start()
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright)
                try:
                    await sell_by_card_then_decline_then_cash(node, terminal, browser)
                finally:
                    await browser.close()
        finally:
            node.stop()
            terminal.stop()


async def sell_by_card_then_decline_then_cash(node: ShopNode, terminal: TerminalInShop,
                                              browser: Browser) -> None:
    page = await open_paired_till(node, browser)
    dialog = page.locator("#card-dialog")
    title, text = page.locator("#card-dialog-title"), page.locator("#card-dialog-text")

    # A baguette and an espresso, 2,70 €; the customer wants a receipt.
    await scan(page, BAGUETTE)
    await scan(page, ESPRESSO)
    await expect(page.locator("#total")).to_have_text(re.compile(r"2,70\s€"))
    await page.click("#pay-card")
    await page.click("#print-receipt")
    await page.focus("#card-amount")
    await page.keyboard.press("Enter")

    # On the terminal: the amount, no way to cancel from the till (Esc does nothing).
    await expect(dialog).to_be_visible()
    await expect(title).to_have_text("Paiement en cours sur le terminal…")
    await expect(page.locator("#card-dialog-amount")).to_have_text(re.compile(r"2,70\s€"))
    await expect(text).to_have_text(
        "Pour annuler : touche rouge du terminal.")
    await expect(page.locator("#card-dialog-buttons")).to_be_hidden()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_visible()

    # Approved: the sale completes (paid in full); the done screen shows the card, as the receipt.
    terminal.release()
    await expect(page.locator("#screen-done")).to_be_visible()
    await expect(dialog).to_be_hidden()
    receipt_no = f"{node.first_till}-000001"
    await expect(page.locator("#receipt-number")).to_have_text(receipt_no)
    await expect(page.locator("#done-tenders .done-tender")).to_contain_text(
        f"**** {LAST4} · Auto {AUTHORISATION}")
    receipts = await printed(node.data / "printer" / "receipts.txt", re.escape(receipt_no))
    assert re.search(r"Carte bancaire\s+2,70", receipts)
    assert f"  Carte ****{LAST4}  Auto {AUTHORISATION}" in receipts
    assert "  CB  Lecture C" in receipts
    [sale] = node.sales()
    [tender] = sale["tenders"]
    assert tender["method"] == "card" and tender["amount"] == 270 and tender["payment_id"]
    assert (tender["authorisation"], tender["last4"], tender.get("entry")) == (
        AUTHORISATION, LAST4, "terminal")

    # Store IT sees the terminal and how its last payment ended.
    status = await browser.new_page(locale="fr-FR")
    await status.goto(f"{node.url}/status.html")
    terminals = status.locator("section").filter(has_text="Terminaux de paiement")
    await expect(terminals).to_contain_text("tpe-1libre · dernier paiement : accepté")
    await expect(terminals).not_to_contain_text("127.0.0.1")  # /healthz answers anyone
    await status.close()

    # The next customer: the terminal refuses the card; the reason, then cash.
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await scan(page, BAGUETTE)
    await expect(page.locator("#total")).to_have_text(re.compile(r"1,20\s€"))
    await page.keyboard.press("F9")
    await expect(page.locator("#screen-pay")).to_be_visible()
    # The till knows its terminal now: no slip to type, the amount goes to the terminal.
    await expect(page.locator("#card-reference")).to_be_hidden()
    await expect(page.locator("#card-terminal-note")).to_contain_text("part au terminal")
    await page.keyboard.press("Enter")
    await expect(title).to_have_text("Paiement refusé")
    await expect(text).to_have_text("Paiement refusé (carte ou banque).")
    await page.click('#card-dialog-buttons [data-card-action="other"]')
    await expect(dialog).to_be_hidden()
    await expect(page.locator(".pay-tender")).to_have_count(0)
    await page.keyboard.press("F8")
    await page.fill("#cash-given", "5")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-done")).to_be_visible()
    await expect(page.locator("#change-due")).to_have_text(re.compile(r"3,80\s€"))
    second = node.sales()[1]
    assert second["tenders"] == [{"method": "cash", "amount": 500}]

    # The answer is lost (garbage on the line): nobody knows, so the slip tells; never a retry.
    terminal.use("garbage")
    await new_sale_paid_by_card(page)
    await expect(title).to_have_text("Résultat inconnu")
    # Reloaded (F5) before anyone read the slip: the till still holds the payment, asks its
    # state again once the cashier's PIN is in, and asks the same question.
    await page.reload()
    await expect(page.locator("#screen-login")).to_be_visible()
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await expect(title).to_have_text("Résultat inconnu")
    await expect(text).to_contain_text("Lisez le ticket du terminal")
    await page.click('#card-dialog-buttons [data-card-action="ask-yes"]')
    await page.fill("#card-dialog-reference", "SLIP42")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-done")).to_be_visible()
    [tender] = node.sales()[2]["tenders"]
    assert (tender["amount"], tender["reference"], tender.get("entry")) == (120, "SLIP42", "slip")
    assert tender["payment_id"]

    # The terminal cannot be reached: nothing was sent; the slip typed by hand, as before terminals.
    terminal.use("refuse")
    await new_sale_paid_by_card(page)
    await expect(title).to_have_text("Terminal injoignable")
    await page.click('#card-dialog-buttons [data-card-action="slip"]')
    await expect(page.locator("#card-reference")).to_be_focused()
    await page.keyboard.type("TPE77")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-done")).to_be_visible()
    assert node.sales()[3]["tenders"] == [{"method": "card", "amount": 120, "reference": "TPE77"}]

    # The espresso of the first sale back to the card it was paid with: through the terminal.
    terminal.use("approved")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await find_receipt(page, receipt_no)
    await refund_line(page, "Café expresso").locator('[data-step="1"]').click()
    await refund(page, "Produit défectueux")
    await expect(page.locator("#refund-done")).to_be_visible()
    [back] = refunds(node)
    [tender] = back["tenders"]
    assert (tender["method"], tender["amount"], tender["last4"], tender.get("entry")) == (
        "card", -150, LAST4, "terminal")


async def new_sale_paid_by_card(page: Page) -> None:
    """The next customer's baguette, sent to the terminal."""
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await scan(page, BAGUETTE)
    await expect(page.locator("#total")).to_have_text(re.compile(r"1,20\s€"))
    await page.keyboard.press("F9")
    await expect(page.locator("#screen-pay")).to_be_visible()
    await page.keyboard.press("Enter")
    await expect(page.locator("#card-dialog")).to_be_visible()
