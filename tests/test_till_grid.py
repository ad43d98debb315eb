"""Selling from the product grid, by weight and at a typed price, on the browser till.

A real demo node and Debian's chromium at touch size (1024x768), the page from
a shop-like address (not a secure context). Tile taps add lines with the
node's prices (a product tapped or scanned again raises its line, the store's
`scan_merges_lines`), a weighed tile asks its weight on a keypad, weight and
price labels are read off the barcode, an unknown barcode offers an open price
beside the basket, the till locks after the store's idle time with the basket
kept, and the same taps and scans with every node down give the same totals
(the till reads the labels and applies the promotions itself). Totals are
worked out here with edge/selling/money.py, not read from the till.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, Page, expect
from test_till_browser import shop  # noqa: F401  (the fixture)
from test_till_offline import BACK_ONLINE_MS, ShopNode, log_in, pay_cash, scan

from edge.selling.money import price_basket

TOUCH = {"width": 1024, "height": 768}
BAGUETTE = "2000001000014"
OLIVES_1234_G = "2100003012340"  # prefix 21: a weight label, 1,234 kg of p0343 (18,90 €/kg)
CAKE_AT_8_75 = "2200001008755"  # prefix 22: a price label, 8,75 € for p0344
UNKNOWN = "3000000000000"
CROISSANTS_3_FOR_2 = {"id": "croissants-3-pour-2", "kind": "n_for_m", "products": ["p0002"],
                      "n": 3, "m": 2}
# The morning's basket as the node prices it: the demo catalogue's prices.
MORNING = [
    {"id": "b", "product_id": "p0001", "unit_price": 120, "vat_rate": 550, "quantity": 3},
    {"id": "c", "product_id": "p0002", "unit_price": 115, "vat_rate": 550, "quantity": 3},
    {"id": "w", "product_id": "p0341", "unit_price": 680, "vat_rate": 550, "quantity": 450,
     "unit": "g"},
    {"id": "o", "product_id": "p0343", "unit_price": 1890, "vat_rate": 550, "quantity": 1234,
     "unit": "g"},
    {"id": "k", "product_id": "p0344", "unit_price": 875, "vat_rate": 550, "quantity": 1,
     "price_embedded": True},
    {"id": "d", "product_id": "p0346", "unit_price": 350, "vat_rate": 550, "quantity": 1},
]


# In the till's page: the node's catalogue/grid, and the grid the till builds from the
# export (grid-layout.js), over a connection of its own with the till's token.
GRIDS_SIDE_BY_SIDE = """async () => {
  const { buildGrid } = await import('/grid-layout.js');
  const socket = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/api/ws`);
  await new Promise((opened, failed) => { socket.onopen = opened; socket.onerror = failed; });
  const waiting = new Map();
  socket.onmessage = (message) => {
    const answer = JSON.parse(message.data);
    if (answer.type === 'result') waiting.get(answer.id)?.(answer.result);
  };
  let last = 0;
  const call = (type, args = {}) => new Promise((answered) => {
    const id = ++last;
    waiting.set(id, answered);
    socket.send(JSON.stringify({ id, type, ...args }));
  });
  await call('auth', { token: localStorage.getItem('edge.till_token') });
  const products = [];
  let after = null;
  let first = null;
  do {
    const page = await call('catalogue/export', after ? { after, limit: 2000 } : { limit: 2000 });
    first ??= page;
    products.push(...page.products);
    after = page.next;
  } while (after);
  const node = await call('catalogue/grid');
  socket.close();
  return { node, till: buildGrid(products, first.grid) };
}"""


def euros(cents: int) -> re.Pattern[str]:
    return re.compile(rf"{cents // 100},{cents % 100:02d}\s€")


def tile(page: Page, product_id: str) -> Any:
    return page.locator(f'#grid .grid-tile[data-product-id="{product_id}"]')


def line(page: Page, name: str) -> Any:
    return page.locator(".basket-line", has=page.locator(".line-name strong", has_text=name))


async def type_on_keypad(page: Page, text: str) -> None:
    keypad = page.locator("#keypad-dialog")
    await expect(keypad).to_be_visible()
    await expect(page.locator("#keypad-value")).to_be_focused()
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")
    await expect(keypad).to_be_hidden()


async def ring_up_the_morning(page: Page) -> None:
    """Taps, a typed weight, two labels, an unknown barcode rung up as "Divers": MORNING."""
    lines = page.locator(".basket-line")
    # Favourites come first: a tap adds one at the catalogue's price; again, the same line.
    await expect(page.locator(".grid-tab").first).to_have_attribute("aria-selected", "true")
    await tile(page, "p0001").click()
    await expect(line(page, "Baguette tradition")).to_contain_text(euros(120))
    await tile(page, "p0001").click()
    await scan(page, BAGUETTE)  # scanned, it raises the same line too
    await expect(line(page, "Baguette tradition").locator(".qty-value")).to_have_text("3")
    for _ in range(3):
        await tile(page, "p0002").click()
    await expect(line(page, "Croissant pur beurre").locator(".qty-value")).to_have_text("3")
    await expect(line(page, "Croissant pur beurre")).to_contain_text(euros(230))  # 3 for 2
    await expect(lines).to_have_count(2)

    # Sold by the kilo: the tile asks the weight, typed in grams on the keypad.
    await tile(page, "p0341").click()
    await type_on_keypad(page, "450")
    weighed = line(page, "Pain de campagne au poids")
    await expect(weighed.locator(".qty-value")).to_have_text("450 g")
    await expect(weighed).to_contain_text(euros(306))

    # A weight label and a price label, scanned: read off the barcode.
    await scan(page, OLIVES_1234_G)
    await expect(line(page, "Olives de Nyons")).to_contain_text("1,234 kg")
    await expect(line(page, "Olives de Nyons")).to_contain_text(euros(2332))
    await scan(page, CAKE_AT_8_75)
    await expect(line(page, "Gâteau sur commande")).to_contain_text(euros(875))
    await expect(lines).to_have_count(5)

    # An unknown barcode: said above the basket, which stays in view; rung up at a typed price.
    await scan(page, UNKNOWN)
    offer = page.locator("#unknown-offer")
    await expect(offer).to_be_visible()
    await expect(offer).to_contain_text(UNKNOWN)
    await expect(page.locator("#error")).to_contain_text(UNKNOWN)
    await expect(lines.first).to_be_in_viewport()
    await offer.locator('[data-product-id="p0346"]').click()
    await type_on_keypad(page, "3,50")
    await expect(line(page, "Divers")).to_contain_text(euros(350))
    # The next thing that works clears the banner and the offer.
    await expect(offer).to_be_hidden()
    await expect(page.locator("#error")).to_be_hidden()
    await expect(lines).to_have_count(6)


async def test_a_bakery_morning_from_the_grid_online_and_with_every_node_down(
    shop: tuple[ShopNode, Browser],  # noqa: F811
) -> None:
    node, browser = shop
    expected = price_basket(MORNING, [CROISSANTS_3_FOR_2])["total"]
    assert expected == 360 + 230 + 306 + 2332 + 875 + 350
    context = await browser.new_context(locale="fr-FR", viewport=TOUCH)
    page = await context.new_page()
    # The page's timers, under the test's hand for the idle lock; time flows as usual until then.
    await page.clock.install()
    await page.goto(await node.pairing_link())
    await log_in(page)
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "online")
    await expect(status).to_have_attribute("data-catalogue", re.compile(r"^[1-9]\d\d+$"))
    box = await page.locator("#lang").bounding_box()
    assert box is not None and box["width"] >= 48 and box["height"] >= 48
    tile_box = await tile(page, "p0001").bounding_box()
    assert tile_box is not None and tile_box["width"] >= 48 and tile_box["height"] >= 48
    # The till's own grid (what it shows with every node down) is the node's.
    grids = await page.evaluate(GRIDS_SIDE_BY_SIDE)
    assert grids["till"] == grids["node"]
    assert grids["node"]["categories"][0]["favourites"] is True
    assert len(grids["node"]["categories"]) > 5

    await ring_up_the_morning(page)
    await expect(page.locator("#total")).to_have_text(euros(expected))

    # Left alone past the store's idle time (5 min): back to the PIN, the basket kept.
    # pause_at takes seconds (Python), not the page's milliseconds: a second from now.
    await page.clock.pause_at((await page.evaluate("Date.now()") + 1000) / 1000)
    await page.wait_for_timeout(300)  # answers under way arrive (no timer runs while paused)
    await page.clock.fast_forward("05:01")
    await page.clock.resume()
    await expect(page.locator("#screen-login")).to_be_visible()
    await expect(page.locator("#login-who")).to_contain_text("Alice")
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(page.locator(".basket-line")).to_have_count(6)
    await expect(page.locator("#total")).to_have_text(euros(expected))

    await pay_cash(page, "50")
    [online] = node.sales()
    assert online["totals"]["total"] == expected
    await page.click("#new-sale")

    # Every node down: the same morning, from the till's copy of the catalogue.
    node.kill()
    await expect(status).to_have_attribute("data-state", "offline")
    await ring_up_the_morning(page)
    await expect(page.locator("#total")).to_have_text(euros(expected))
    await pay_cash(page, "50")
    await expect(page.locator("#done-offline")).to_be_visible()
    await page.click("#new-sale")

    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    first, offline = node.sales()
    assert offline["offline"] is True and offline["flags"] == []
    assert offline["totals"] == first["totals"]
    assert [(sold["name"], sold["quantity"]) for sold in offline["lines"]] == [
        (sold["name"], sold["quantity"]) for sold in first["lines"]]
    await context.close()
