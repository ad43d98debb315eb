"""Every node down: the browser till keeps selling, and its sales arrive once.

As in tests/test_till_browser.py, the node and chromium run in a test-made
network namespace and the page comes from 10.231.9.2, which, like a shop's
http://192.168.x.x, is not a secure context: no service worker, no
crypto.subtle. The till sells offline with IndexedDB and its own copy of the
catalogue and pricing; the node is killed (kill -9) and started again on the
same data folder and port.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EdgeProcess, free_port
from netns import lone_host
from playwright.async_api import Browser, Page, async_playwright, expect
from test_pricing_vectors import served_web_page

ADDRESS = "10.231.9.2"
BAGUETTE, ESPRESSO = "2000001000014", "2000004000011"
# The till's own reconnection backs off to 5 s at most; the rest is margin.
BACK_ONLINE_MS = 20_000


class ShopNode(EdgeProcess):
    """`edge serve` in the shop namespace, that the test can kill and start again."""

    def __init__(self, ns: str, folder: Path, extra: list[str] | None = None,
                 address: str = ADDRESS, port: int | None = None) -> None:
        # Plain HTTP (a demo store may): these tests are about an insecure page.
        super().__init__(folder / "data", port or free_port(),
                         ["--no-advertise", "--tls", "off", *(extra or [])],
                         host=address, namespace=ns, log=folder / "edge.log")
        self.ns = ns

    @property
    def data(self) -> Path:
        return self.data_dir

    async def pairing_link(self) -> str:
        for _ in range(400):
            if self.log.exists():
                match = re.search(r"^Pair a till.*?: (\S+)$", self.log.read_text(), re.MULTILINE)
                if match:
                    return match.group(1)
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            await asyncio.sleep(0.05)
        raise AssertionError(f"edge serve printed no pairing link: {self.log.read_text()}")

    @property
    def first_till(self) -> str:
        """The code of the first till paired here: till codes carry their pairing node."""
        return f"T01-{self.node_id}"

    def sales(self, till: str | None = None) -> list[dict[str, Any]]:
        """The sales of a till (the store's first paired by default) as this node holds them."""
        with sqlite3.connect(self.data / "edge.sqlite3", timeout=5) as db:
            rows = db.execute(
                "SELECT body FROM sales WHERE till = coalesce(?, (SELECT code FROM tills "
                "ORDER BY paired_at, code LIMIT 1)) ORDER BY receipt_no", (till,),
            ).fetchall()
        return [json.loads(body) for (body,) in rows]

    def sale_events(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.data / "edge.sqlite3", timeout=5) as db:
            rows = db.execute(
                "SELECT body FROM events WHERE type = 'sale_completed' ORDER BY position"
            ).fetchall()
        return [json.loads(body) for (body,) in rows]


async def launch_browser_in(ns: str, folder: Path, playwright: Any,
                            addresses: tuple[str, ...] = (ADDRESS,)) -> Browser:
    # Playwright drives chromium over a pipe, so the browser can live in the namespace.
    chromium = folder / "chromium-in-shop"
    chromium.write_text(f'#!/bin/sh\nexec ip netns exec {ns} /usr/bin/chromium "$@"\n')
    chromium.chmod(0o755)
    # Without the resolver rules chromium sends DNS queries off the machine.
    resolver = ", ".join(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1",
                          *(f"EXCLUDE {address}" for address in addresses)])
    args = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--host-resolver-rules={resolver}",
    ]
    return await playwright.chromium.launch(executable_path=str(chromium), args=args)


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[ShopNode, Browser]]:
    with lone_host(ADDRESS) as ns:
        node = ShopNode(ns, tmp_path / "node")
        node.start()
        try:
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


async def log_in(page: Page, cashier: str = "alice", pin: str = "1234") -> None:
    await page.click(f'[data-cashier-id="{cashier}"]')
    await page.keyboard.type(pin)
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()


async def pay_cash(page: Page, amount: str, print_receipt: bool = False) -> None:
    await page.click("#pay-cash")
    await page.fill("#cash-given", amount)
    if print_receipt:  # no receipt unless the customer asks (France, since 2023)
        await page.click("#print-receipt")
    await page.click("#confirm-payment")
    await expect(page.locator("#screen-done")).to_be_visible()


async def open_paired_till(node: ShopNode, browser: Browser, locale: str = "fr-FR") -> Page:
    page = await browser.new_page(locale=locale)
    await page.goto(await node.pairing_link())
    assert await page.evaluate("window.isSecureContext") is False
    await log_in(page)
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "online")
    # The till's copy of the catalogue is in (the demo store has a few hundred products).
    await expect(status).to_have_attribute("data-catalogue", re.compile(r"^[1-9]\d\d+$"))
    return page


async def test_sales_made_with_every_node_down_arrive_once_with_the_tills_numbers(
    shop: tuple[ShopNode, Browser],
) -> None:
    node, browser = shop
    page = await open_paired_till(node, browser)
    status = page.locator("#status")

    # One sale while the node answers: the till numbers it, the node prints it.
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await pay_cash(page, "2")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#done-offline")).to_be_hidden()
    await page.click("#new-sale")

    node.kill()
    await expect(status).to_have_attribute("data-state", "offline")

    # Offline sale 1: scanned items priced by the till itself (5.5 % and 10 %), cash.
    await scan(page, BAGUETTE)
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(2)
    await expect(page.locator("#total")).to_have_text(re.compile(r"2,70\s€"))
    await expect(page.locator("#vat-rows tr")).to_have_count(2)
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000002")
    await expect(page.locator("#change-due")).to_have_text(re.compile(r"2,30\s€"))
    await expect(page.locator("#done-offline")).to_be_visible()
    await expect(page.locator("#done-offline")).to_contain_text("Aucun ticket imprimé")
    await expect(status).to_have_text("Hors ligne — 1 vente en attente")
    await page.click("#new-sale")

    # Offline sale 2: a product found by name in the till's catalogue, three baguettes
    # at once, a quantity changed, paid by card.
    await page.click("#search")
    await page.keyboard.type("crois beur")
    await page.locator(".search-result").first.click()
    await expect(page.locator(".basket-line")).to_contain_text("Croissant pur beurre")
    await scan(page, f"3*{BAGUETTE}")
    await expect(page.locator(".basket-line")).to_have_count(2)
    await page.locator(".basket-line").first.locator('[data-action="increase"]').click()
    await expect(page.locator("#total")).to_have_text(re.compile(r"5,90\s€"))
    await page.click("#pay-card")
    await page.fill("#card-reference", "TPE-4711")
    await page.click("#confirm-payment")
    await expect(page.locator("#screen-done")).to_be_visible()
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000003")
    await expect(status).to_have_text("Hors ligne — 2 ventes en attente")
    await expect(status).to_have_attribute("data-waiting-sales", "2")
    await page.click("#new-sale")

    # A node comes back (same data, same address): the till finds it, sends both sales.
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    await expect(status).to_have_text("Connecté")

    sales = node.sales()
    assert [sale["receipt_number"] for sale in sales] == [
        f"{node.first_till}-00000{number}" for number in (1, 2, 3)]
    assert len({sale["id"] for sale in sales}) == 3
    assert len(node.sale_events()) == 3  # recorded once each, not once per attempt
    first_offline, second_offline = sales[1], sales[2]
    assert first_offline["offline"] is True and first_offline["flags"] == []
    assert first_offline["totals"]["total"] == 270 and first_offline["change"] == 230
    assert [(line["name"], line["quantity"]) for line in first_offline["lines"]] == [
        ("Baguette tradition", 1), ("Café expresso", 1)]
    assert [(line["name"], line["quantity"]) for line in second_offline["lines"]] == [
        ("Croissant pur beurre", 2), ("Baguette tradition", 3)]
    assert second_offline["totals"]["total"] == 590
    assert second_offline["tenders"] == [
        {"method": "card", "amount": 590, "reference": "TPE-4711"}]
    assert second_offline["flags"] == []

    # And the till sells online again, numbering on.
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await pay_cash(page, "1,50")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000004")
    await expect(page.locator("#done-offline")).to_be_hidden()
    assert [sale["receipt_no"] for sale in node.sales()] == [1, 2, 3, 4]


async def test_offline_a_logged_in_cashier_sells_but_nobody_new_can_log_in(
    shop: tuple[ShopNode, Browser],
) -> None:
    node, browser = shop
    page = await open_paired_till(node, browser, locale="en-GB")
    status = page.locator("#status")
    node.kill()
    await expect(status).to_have_attribute("data-state", "offline")
    await expect(status).to_have_text("Offline — reconnecting…")

    # An unknown barcode is refused offline too, and changes nothing.
    await scan(page, "3000000000000")
    await expect(page.locator("#error")).to_contain_text("3000000000000")
    await expect(page.locator(".basket-line")).to_have_count(0)
    await scan(page, BAGUETTE)
    await pay_cash(page, "1,20")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#done-offline")).to_contain_text("No receipt printed")
    await expect(status).to_have_text("Offline — 1 sale waiting")
    await page.click("#new-sale")

    # Logging out offline works; logging in needs a node to check the PIN: say so.
    await page.click("#logout")
    await expect(page.locator("#screen-login")).to_be_visible()
    await page.click('[data-cashier-id="bruno"]')
    await page.keyboard.type("567890")
    await page.keyboard.press("Enter")
    await expect(page.locator("#error")).to_contain_text("nobody can sign in right now")
    await expect(page.locator("#screen-login")).to_be_visible()

    # The node is back: the next cashier logs in, and the waiting sale goes with that session.
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_text("Connected · 1 sale to send")
    await log_in(page, "bruno", "567890")
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    sales = node.sales()
    assert [(sale["receipt_no"], sale["cashier"], sale["offline"]) for sale in sales] == [
        (1, "alice", True)]


async def test_a_basket_changed_offline_is_what_the_node_sells_once_it_is_back(
    shop: tuple[ShopNode, Browser],
) -> None:
    node, browser = shop
    page = await open_paired_till(node, browser)
    status = page.locator("#status")
    lines = page.locator(".basket-line")
    await scan(page, BAGUETTE)
    await scan(page, ESPRESSO)
    await expect(lines).to_have_count(2)

    node.kill()
    await expect(status).to_have_attribute("data-state", "offline")
    # Offline: one more line, the baguette goes to 3, the espresso leaves.
    await scan(page, "2000002000013")
    await expect(lines).to_have_count(3)
    baguette = lines.filter(has_text="Baguette tradition")
    await baguette.locator('[data-action="increase"]').click()
    await baguette.locator('[data-action="increase"]').click()
    await lines.filter(has_text="Café expresso").locator('[data-action="remove"]').click()
    await expect(lines).to_have_count(2)
    await expect(page.locator("#total")).to_have_text(re.compile(r"4,75\s€"))

    # Back online: the node's basket is brought in line with the till's, then sold there.
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#done-offline")).to_be_hidden()
    [sold] = node.sales()
    assert not sold.get("offline")
    assert [(line["name"], line["quantity"]) for line in sold["lines"]] == [
        ("Baguette tradition", 3), ("Croissant pur beurre", 1)]
    assert sold["totals"]["total"] == 475


async def test_a_basket_begun_online_and_paid_offline_is_sold_once_and_closed(
    shop: tuple[ShopNode, Browser],
) -> None:
    node, browser = shop
    page = await open_paired_till(node, browser)
    status = page.locator("#status")
    await scan(page, BAGUETTE)
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(2)  # on the node

    node.kill()
    await expect(status).to_have_attribute("data-state", "offline")
    await pay_cash(page, "10")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#change-due")).to_have_text(re.compile(r"7,30\s€"))
    await page.click("#new-sale")

    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    # The node's copy of the basket is closed by the sale: it does not come back to the till
    # (the parked-baskets button shows once the till is in step with the node, basket empty).
    await expect(page.locator("#parked-open")).to_be_visible()
    await expect(page.locator(".basket-line")).to_have_count(0)
    [sold] = node.sales()
    assert sold["offline"] is True and sold["flags"] == [] and sold["totals"]["total"] == 270
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        assert db.execute("SELECT status FROM baskets").fetchall() == [("sold",)]


# The till's offline pieces on their own, in chromium (web/ served from disk, no node).


@pytest.fixture
async def modules_page() -> AsyncIterator[Page]:
    async with served_web_page() as page:
        yield page


CATALOGUE_FOLLOWS_CHANGES = """async () => {
  const { LocalCatalogue, WorkerCopy, COLUMNS } = await import('/catalogue.js');
  const row = (id, barcode, name, price, vat_rate, category) => COLUMNS.map((column) => ({
    id, barcode, name, price, vat_rate, category, unit: 'piece', colour: '', image: '',
    favourite: 0, open_price: false })[column]);
  const rows = [
    row('p1', '111', 'Café expresso', 150, 1000, 'Boissons'),
    row('p2', '222', 'Croissant pur beurre', 115, 550, 'Viennoiserie'),
    row('p3', '333', 'Crème brûlée', 300, 550, 'Pâtisserie'),
  ];
  const grid = { categories: [], favourites: [], tiles: 48 };
  const extras = { grid, promotions: [], embedded_barcodes: [] };
  const page = (version, full, products, next, delisted = []) =>
    ({ version, full, behind: false, columns: COLUMNS, products, delisted, next, ...extras });
  // A full copy in two pages, then changes: p1 dearer, p3 takes p1's barcode, p2 delisted.
  const answers = {
    full: page({ n: 5 }, true, rows.slice(0, 2), 'p2'),
    'full p2': page({ n: 5 }, true, rows.slice(2), null),
    changes: page({ n: 9 }, false, [
      row('p1', '111', 'Café expresso', 160, 1000, 'Boissons'),
      row('p3', '111', 'Crème brûlée', 300, 550, 'Pâtisserie'),
    ], null, ['p2']),
  };
  const catalogue = new LocalCatalogue(new WorkerCopy()); // IndexedDB, in the worker
  const calls = [];
  const call = async (type, args) => {
    const json = JSON.stringify;
    calls.push(type === 'catalogue/changes'
      ? `changes since ${json(args.since)} upto ${json(args.upto)} after ${args.after}` : type);
    if (type !== 'catalogue/changes') return null;
    if (args.since === null) return answers[args.after ? `full ${args.after}` : 'full'];
    return answers.changes;
  };
  await catalogue.sync(call);
  const found = async (query) => (await catalogue.search(query, 20)).map((p) => p.id);
  const result = {
    size: catalogue.size, version: catalogue.version, price: (await catalogue.lookup('111')).price,
    cafe: await found('cafe'), cr: await found('CR'), creme: await found('crème brul'),
    viennoiserie: await found('vienn crois'), none: await found('pain'),
  };
  catalogue.onEvent({ type: 'catalogue_changed' }); // catalogue/follow's push
  await catalogue.running;
  Object.assign(result, {
    moved: (await catalogue.lookup('111')).id, oldHolder: (await catalogue.find('p1')).barcode,
    dearer: (await catalogue.find('p1')).price, delisted: await catalogue.lookup('222'),
    after: catalogue.size, changed: catalogue.version, calls,
  });
  return result;
}"""


async def test_the_tills_catalogue_copy_follows_the_nodes_changes(modules_page: Page) -> None:
    result = await modules_page.evaluate(CATALOGUE_FOLLOWS_CHANGES)
    assert result == {
        "size": 3, "version": {"n": 5}, "price": 150,
        "cafe": ["p1"], "cr": ["p3", "p2"], "creme": ["p3"], "viennoiserie": ["p2"], "none": [],
        "moved": "p3", "oldHolder": None, "dearer": 160, "delisted": None, "after": 2,
        "changed": {"n": 9},
        "calls": ["catalogue/follow", "changes since null upto null after null",
                  "changes since null upto {\"n\":5} after p2",
                  "changes since {\"n\":5} upto null after null"],
    }


RECONCILE_CASES = """async () => {
  const { reconcileBasket, emptyBasket, addLine } = await import('/basket.js');
  const product = (id) => ({ id, barcode: `b${id}`, name: `N${id}`, price: 100, vat_rate: 550 });
  const line = (b, lineId, productId, quantity) =>
    addLine(b, { lineId, product: product(productId), quantity });
  const basket = (id, lines) => lines.reduce((b, args) => line(b, ...args), emptyBasket(id));
  const refused = (code) => Object.assign(new Error(code), { code });
  // A node with one basket at most, answering as docs/protocol.md says.
  function node(open, { closed = [], delisted = [] } = {}) {
    const sent = [];
    const call = async (type, args) => {
      sent.push(type === 'basket/get' ? type : `${type} ${args.line_id ?? args.basket_id}`);
      if (type === 'basket/get') return open;
      if (type === 'basket/clear') {
        if (open?.id === args.basket_id) open = null;
        return null;
      }
      if (open && open.id !== args.basket_id) throw refused('basket_mismatch');
      if (!open && closed.includes(args.basket_id)) throw refused('basket_mismatch');
      if (type === 'basket/add') {
        if (delisted.includes(args.product_id)) throw refused('unknown_product');
        open ??= emptyBasket(args.basket_id);
        if (!open.lines.some((l) => l.id === args.line_id)) {
          open = line(open, args.line_id, args.product_id, args.quantity);
        }
      } else if (type === 'basket/set_quantity') {
        const set = (l) => (l.id === args.line_id ? { ...l, quantity: args.quantity } : l);
        open = { ...open, lines: open.lines.map(set) };
      } else if (type === 'basket/remove_line') {
        open = { ...open, lines: open.lines.filter((l) => l.id !== args.line_id) };
      }
      return open;
    };
    return { call, sent };
  }
  const run = async (n, options) => {
    const { basket: b, outcome, dropped } = await reconcileBasket(n.call, options);
    return { outcome, lines: b?.lines.map((l) => `${l.id}x${l.quantity}`) ?? null,
             dropped: dropped.map((l) => l.id), sent: n.sent };
  };
  const till = basket('B', [['L1', 'p1', 1], ['L2', 'p2', 2]]);
  return {
    behind: await run(node(basket('B', [['L1', 'p1', 3], ['L9', 'p9', 1]])), { local: till }),
    unknown: await run(node(null), { local: till }),
    stale: await run(node(basket('OLD', [['X', 'p1', 1]])), { local: till }),
    empty: await run(node(basket('B', [['L1', 'p1', 3]])), { local: null }),
    voided: await run(node(basket('V', [['L1', 'p1', 3]])), { local: null, voided: ['V'] }),
    sold: await run(node(null, { closed: ['B'] }), { local: till, saleInFlight: 'B' }),
    elsewhere: await run(node(null, { closed: ['B'] }), { local: till }),
    delisted: await run(node(null, { delisted: ['p2'] }), { local: till }),
  };
}"""


async def test_the_node_is_brought_in_line_with_the_tills_basket(modules_page: Page) -> None:
    cases = await modules_page.evaluate(RECONCILE_CASES)
    # The node lags behind the till: quantities set again, the missing line added (same
    # ids), the line the till removed removed.
    assert cases["behind"] == {
        "outcome": "pushed", "lines": ["L1x1", "L2x2"], "dropped": [],
        "sent": ["basket/get", "basket/set_quantity L1", "basket/add L2", "basket/remove_line L9"]}
    assert cases["unknown"]["lines"] == ["L1x1", "L2x2"]
    assert cases["unknown"]["sent"] == ["basket/get", "basket/add L1", "basket/add L2"]
    # An older basket of this till left open there is voided; the till's goes in.
    assert cases["stale"]["sent"][:2] == ["basket/get", "basket/clear OLD"]
    assert cases["stale"]["lines"] == ["L1x1", "L2x2"]
    # A till with nothing takes up what the node has, unless it voided it offline.
    assert cases["empty"]["outcome"] == "adopted" and cases["empty"]["lines"] == ["L1x3"]
    assert cases["voided"]["sent"][0] == "basket/clear V" and cases["voided"]["lines"] is None
    # The node has closed the basket: sold (the sale in flight will say so) or elsewhere.
    assert cases["sold"]["outcome"] == "sold"
    assert cases["elsewhere"] == {"outcome": "closed_elsewhere", "lines": None, "dropped": [],
                                  "sent": ["basket/get", "basket/add L1"]}
    # A product delisted meanwhile cannot go in: reported, the rest goes in.
    assert cases["delisted"]["dropped"] == ["L2"] and cases["delisted"]["lines"] == ["L1x1"]
