"""The browser till's offline copy of the catalogue follows the node by versions (issue 12).

One demo node in this process and one chromium page (Debian's), the till's
websocket routed through Playwright (page.route_web_socket): the test reads
every `catalogue/changes` answer the till gets, and cuts the link to make
the till offline (no node answers) while the node itself, and the page's
service worker, stay up. Changes are made on the node's journal as head
office's or the store's import would write them. What is checked: a new till
gets a full copy; a change on the node reaches the till's copy (an offline
sale at the new price, a delisted product unknown offline); a till that
reconnects gets only the changes; the copy is complete after a reload with
no node; a version too old gets a full copy.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import NodeUnderTest, free_port, node_of
from headoffice_support import wait_for
from playwright.async_api import Page, WebSocketRoute, async_playwright, expect
from test_pricing_vectors import CHROMIUM_ARGS, served_web_page
from test_till_offline import log_in, pay_cash, scan

from edge.api.catalogue_commands import grid_settings
from edge.api.server import make_app
from edge.config import Config
from edge.selling.catalogue import product_json
from edge.selling.catalogue_grid import grid
from edge.selling.catalogue_versions import FULL_COPY_MIN
from edge.selling.tills import create_pairing_code

BAGUETTE_ID, BAGUETTE = "p0001", "2000001000014"
ESPRESSO_ID, ESPRESSO = "p0004", "2000004000011"
CROISSANT_ID = "p0002"
BACK_ONLINE_MS = 20_000  # the till backs off to 5 s between rounds of nodes


@dataclass
class Link:
    """The till's websocket to the node, through Playwright: cut at will, answers read."""

    online: bool = True
    # The till's pages made small (its 2,000 rows would be one page here): a run of several
    # pages, the later ones handed to the copy's worker as text, one asked while one is written.
    page_limit: int = 200
    protocol: int | None = None  # said in `auth`'s answer instead of the node's (an older node)
    sockets: list[WebSocketRoute] = field(default_factory=list)
    asked: dict[int, str] = field(default_factory=dict)  # command id -> type, this connection
    changes: list[dict[str, Any]] = field(default_factory=list)  # catalogue/changes answers
    binary_pages: int = 0  # those that came in a binary frame (asked so: all but a run's first)
    text_pages: bool = False  # pages said in text whatever was asked, as a node before binary

    async def route(self, page_side: WebSocketRoute) -> None:
        if not self.online:
            await page_side.close()
            return
        node_side = page_side.connect_to_server()
        self.sockets.append(page_side)

        def from_page(message: str | bytes) -> None:
            command = json.loads(message)
            self.asked[command.get("id")] = command.get("type")
            if command.get("type") == "catalogue/changes":
                message = json.dumps({**command, "limit": self.page_limit})
            node_side.send(message)

        def from_node(message: str | bytes) -> None:
            answer = json.loads(message)
            asked = self.asked.get(answer.get("id"))
            if answer.get("type") == "result" and asked == "catalogue/changes":
                if self.text_pages and isinstance(message, bytes):
                    message = message.decode()
                self.binary_pages += isinstance(message, bytes)
                result = answer["result"]
                self.changes.append({key: result[key] for key in ("full", "behind", "next")}
                                    | {"products": len(result["products"]),
                                       "delisted": len(result["delisted"])})
            if answer.get("type") == "result" and asked == "auth" and self.protocol is not None:
                message = json.dumps({**answer, "result": {**answer["result"],
                                                           "protocol": self.protocol}})
            page_side.send(message)

        page_side.on_message(from_page)
        node_side.on_message(from_node)

    async def cut(self) -> None:
        self.online = False
        for socket in self.sockets:
            await socket.close()
        self.sockets.clear()

    def products_sent(self, since: int) -> int:
        return sum(answer["products"] for answer in self.changes[since:])


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NodeUnderTest]:
    """conftest's demo node, told its port: the page it serves may open its websocket."""
    port = free_port()
    # The store's own favourites too: the offline grid reads them apart from the categories.
    config = Config(data_dir=tmp_path / "data", advertise=False, host="127.0.0.1", port=port,
                    grid_favourites=(CROISSANT_ID, BAGUETTE_ID))
    server = TestServer(make_app(config), host="127.0.0.1", port=port)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield NodeUnderTest(f"http://127.0.0.1:{port}", config.data_dir, session, server.app)
    await server.close()


def on_sale(node: NodeUnderTest) -> list[dict[str, Any]]:
    with sqlite3.connect(node.data_dir / "edge.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return [product_json(row) for row in db.execute("SELECT * FROM products WHERE active")]


async def change_on_node(node: NodeUnderTest, events: list[tuple[str, dict[str, Any]]]) -> None:
    def append(tx: Any) -> None:
        for event_type, body in events:
            tx.append(event_type, body)
    await node_of(node).journal.write(append)


def priced(node: NodeUnderTest, product_id: str, price: int) -> tuple[str, dict[str, Any]]:
    [product] = [p for p in on_sale(node) if p["id"] == product_id]
    return ("product_upserted", {**product, "price": price})


# A second reader of the till's saved copy (its own worker, the same IndexedDB): how many
# of `ids` it finds, the price of each barcode asked, and the grid it shows offline; and
# on demand, the ids each search query finds and the whole product of each id in `details`.
READ_SAVED_COPY = """async ({ ids, barcodes, queries, details }) => {
  const { LocalCatalogue, WorkerCopy } = await import('/catalogue.js');
  const saved = new LocalCatalogue(new WorkerCopy());
  await saved.loaded;
  const found = await Promise.all(ids.map((id) => saved.find(id)));
  const prices = {};
  for (const barcode of barcodes) prices[barcode] = (await saved.lookup(barcode))?.price ?? null;
  const searched = {};
  for (const query of queries) searched[query] = (await saved.search(query, 20)).map((p) => p.id);
  const products = {};
  for (const id of details) products[id] = await saved.find(id);
  saved.copy.worker.terminate();
  const found_ = found.filter(Boolean).length;
  const answer = { found: found_, size: saved.size, prices, grid: saved.grid() };
  return queries.length || details.length ? { ...answer, searched, products } : answer;
}"""


async def read_saved_copy(page: Page, ids: list[str], barcodes: list[str],
                          queries: tuple[str, ...] = (),
                          details: tuple[str, ...] = ()) -> dict[str, Any]:
    return await page.evaluate(READ_SAVED_COPY, {"ids": ids, "barcodes": barcodes,
                                                 "queries": list(queries),
                                                 "details": list(details)})


async def grid_saved_is(page: Page, expected: dict[str, Any]) -> bool:
    return (await read_saved_copy(page, [], []))["grid"] == expected


async def node_grid(node: NodeUnderTest) -> dict[str, Any]:
    """What `catalogue/grid` answers, the grid a till shows online."""
    running = node_of(node)
    return await grid(running.journal, grid_settings(running.config))


def euros(cents: int) -> re.Pattern[str]:
    return re.compile(rf"{cents // 100},{cents % 100:02d}\s€")


async def test_the_tills_copy_follows_the_node_by_versions(node: NodeUnderTest) -> None:
    link = Link()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        page = await browser.new_page(locale="fr-FR")
        await page.route_web_socket(re.compile(r".*/api/ws$"), link.route)
        status = page.locator("#status")
        code = create_pairing_code(node.data_dir / "edge.sqlite3")
        await page.goto(f"{node.url}/#pair={code}")
        await log_in(page)

        # A new till: a full copy, every product on sale.
        products = on_sale(node)
        await expect(status).to_have_attribute("data-catalogue", str(len(products)))
        assert link.changes and all(answer["full"] for answer in link.changes)
        assert link.products_sent(0) == len(products)
        # Its pages but the first came as bytes, for the copy's worker to decode.
        assert len(link.changes) > 1 and link.binary_pages == len(link.changes) - 1

        # On the node: the baguette dearer, the espresso delisted. The till is told, and asks
        # for the changes: those two only.
        version = await status.get_attribute("data-catalogue-version")
        before = len(link.changes)
        await change_on_node(node, [priced(node, BAGUETTE_ID, 135),
                                    ("product_delisted", {"id": ESPRESSO_ID})])
        await expect(status).not_to_have_attribute("data-catalogue-version", version or "")
        await expect(status).to_have_attribute("data-catalogue", str(len(products) - 1))
        assert link.changes[before:] == [
            {"full": False, "behind": False, "next": None, "products": 1, "delisted": 1}]

        # Offline: the espresso is unknown, the baguette sells at its new price.
        await link.cut()
        await expect(status).to_have_attribute("data-state", "offline")
        await scan(page, ESPRESSO)
        await expect(page.locator("#error")).to_contain_text(ESPRESSO)
        await scan(page, BAGUETTE)
        await expect(page.locator(".basket-line")).to_have_count(1)
        await expect(page.locator("#total")).to_have_text(euros(135))
        await pay_cash(page, "2")
        await page.click("#new-sale")

        # The croissant's price changes while the till is away: back, it gets that change only.
        await change_on_node(node, [priced(node, CROISSANT_ID, 125)])
        before = len(link.changes)
        link.online = True
        await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
        await wait_for(lambda: len(link.changes) > before, what="the changes since its version")
        assert link.changes[before:] == [
            {"full": False, "behind": False, "next": None, "products": 1, "delisted": 0}]
        await expect(status).to_have_attribute("data-waiting-sales", "0")

        # Reloaded with no node answering: the saved copy is whole, at the latest prices,
        # and the cashier still signed in sells from it at once.
        await link.cut()
        await page.reload()
        await expect(page.locator("#screen-sell")).to_be_visible()
        await expect(status).to_have_attribute("data-state", "offline")
        on_sale_now = on_sale(node)
        saved = await read_saved_copy(page, [p["id"] for p in on_sale_now],
                                      [BAGUETTE, ESPRESSO])
        assert saved.pop("grid") == await node_grid(node)
        assert saved == {"found": len(on_sale_now), "size": len(on_sale_now),
                         "prices": {BAGUETTE: 135, ESPRESSO: None}}
        await page.locator("#search").click()
        await page.keyboard.type("crois beur")
        await page.locator(".search-result").first.click()
        await expect(page.locator("#total")).to_have_text(euros(125))

        # Away through more changes than FULL_COPY_MIN: back, a full copy, not the changes.
        # Among them, ids the node orders by code point where IndexedDB's UTF-16 order
        # differs: fullwidth letters (U+FF21), then emoji (beyond U+FFFF) on the next page.
        wide = [f"\uff21{n:02d}" for n in range(40)] + [f"\U0001f600{n:02d}" for n in range(40)]
        link.page_limit = 80
        link.text_pages = True  # and from a node that answers pages in text only
        local = FULL_COPY_MIN + 100 + (-(len(on_sale_now) + FULL_COPY_MIN + 100 + 40) % 80)
        many = local + len(wide)
        await change_on_node(node, [("product_upserted", {
            "id": product_id, "barcode": None, "name": f"Produit local {n}", "price": 100 + n,
            "vat_rate": 550, "category": "Local"})
            for n, product_id in enumerate([f"L-{n:05d}" for n in range(local)] + wide)])
        before = len(link.changes)
        link.online = True
        await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
        await expect(status).to_have_attribute("data-catalogue", str(len(on_sale_now) + many))
        assert link.changes[before]["full"] is True
        assert link.products_sent(before) == len(on_sale_now) + many
        link.text_pages = False
        saved = await read_saved_copy(page, ["L-00000", ESPRESSO_ID, *wide], [BAGUETTE])
        # The grid from a bounded read of the copy (a category of 1,100: its first tiles).
        assert saved.pop("grid") == await node_grid(node)
        assert saved == {"found": 1 + len(wide), "size": len(on_sale_now) + many,
                         "prices": {BAGUETTE: 135}}

        # A change spread over the copy (it touches many of its chunks): prices all along
        # the catalogue, a product renamed, the baguette's barcode moved to a local product,
        # one delisted, and new products enough to cut the chunk they land in. The saved
        # copy then answers as the node does: by id, by barcode (the baguette has none now),
        # by a prefix of the new name (not of the old one), and finds every new product.
        spread = [f"L-{n:05d}" for n in range(0, local, 97)]
        link.page_limit = 50  # the change in several pages too
        before = len(link.changes)
        added = [{"id": f"M-{n:03d}", "barcode": f"30000000{n:05d}", "name": f"Galette {n}",
                  "price": 900 + n, "vat_rate": 550, "category": "Local"} for n in range(150)]
        # (and beside the emoji ids, enough new ones to cut their chunks)
        added = [{"id": f"\U0001f600{n:02d}{mark}", "barcode": None, "name": f"Sourire {n}",
                  "price": 900, "vat_rate": 550, "category": "Local"}
                 for n in range(40) for mark in "+-"] + added
        held = {p["id"]: p for p in on_sale(node)}
        await change_on_node(node, [
            *(("product_upserted", {**held[product_id], "price": 777})
              for product_id in [*spread, *wide[::3]]),
            ("product_upserted", {**held["L-00042"], "name": "Brioche tressée vanille"}),
            # the category's first by name renamed after the rest: its first tiles are read again
            ("product_upserted", {**held["L-00000"], "name": "Zébu local"}),
            ("product_upserted", {**held["L-00500"], "barcode": BAGUETTE}),
            ("product_delisted", {"id": "L-00999"}),
            *(("product_upserted", product) for product in added)])
        size = len(on_sale_now) + many - 1 + len(added)
        await expect(status).to_have_attribute("data-catalogue", str(size))
        assert len(link.changes[before:]) > 1 and not any(a["full"] for a in link.changes[before:])
        touched = [BAGUETTE_ID, "L-00042", "L-00500", "L-00999", *spread, *wide]
        saved = await read_saved_copy(page, [p["id"] for p in added],
                                      [BAGUETTE, added[-1]["barcode"]],
                                      queries=("brioch tres", "local 42", "galette 14"),
                                      details=touched)
        node_now = {p["id"]: p for p in on_sale(node)}
        assert saved["products"] == {product_id: node_now.get(product_id) for product_id in touched}
        assert saved["products"][BAGUETTE_ID]["barcode"] is None
        assert saved["prices"] == {BAGUETTE: node_now["L-00500"]["price"],
                                   added[-1]["barcode"]: added[-1]["price"]}
        assert (saved["found"], saved["size"]) == (len(added), size)
        assert saved["searched"]["galette 14"] == [f"M-{n:03d}" for n in (14, *range(140, 150))]
        assert saved["searched"]["brioch tres"] == ["L-00042"]
        assert "L-00042" not in saved["searched"]["local 42"]
        assert "L-00420" in saved["searched"]["local 42"]
        # (the category's first rows read again from the whole copy, in the background)
        expected = await node_grid(node)
        await wait_for(lambda: grid_saved_is(page, expected), what="the offline grid as the node's")
        await browser.close()


async def test_a_scan_sent_pauses_the_copy_at_once_until_its_answer_is_shown() -> None:
    """On a till of one core a scan's answer waits for the CPU behind the copy: the
    client says 'busy' the moment a cashier's command goes (not a catalogue page, not
    a ping), the copy's worker is told to pause then, and to go on a task after the
    answer; the next page is asked only once no command waits."""
    async with served_web_page() as page:
        seen = await page.evaluate("""async () => {
            const { TillClient } = await import('/client.js');
            const { LocalCatalogue } = await import('/catalogue.js');
            const told = [];
            const client = new TillClient('http://127.0.0.1:1');
            client.addEventListener('busy', ({ detail }) => told.push(`busy ${detail}`));
            Object.assign(client, { authed: true, socket: { send: () => {} } });
            const catalogue = new LocalCatalogue();
            catalogue.copy.pause = (busy) => told.push(`pause ${busy}`);
            catalogue.useClient(client);
            const answer = (id) => client.receive(
                `{"id":${id},"type":"result","success":true,"result":{}}`);

            client.callBytes('catalogue/changes', {});  // a page: not busy
            client.call('ping', {});  // nor a ping
            const scanned = client.call('basket/add', {});
            told.push(`after send: quiet ${!catalogue.busy()}`);
            let quiet = false;
            catalogue.quiet().then(() => { quiet = true; });
            answer(3);
            await scanned;
            told.push(`answered: quiet yet ${quiet}`);
            await new Promise((resolve) => setTimeout(resolve, 0));
            await null;
            told.push(`a task later: quiet ${quiet}`);
            return told;
        }""")
    assert seen == [
        "busy true", "pause true", "after send: quiet false",
        "busy false", "answered: quiet yet false",
        "pause false", "a task later: quiet true",
    ]


# The offline copy's worker alone, in a page: `copy(rows)` makes a complete copy of one
# page; `saved()` reads its meta row and each chunk's ids, as IndexedDB holds them.
COPY_HARNESS = """async () => {
  const { WorkerCopy, COLUMNS } = await import('/catalogue.js');
  const request = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const database = () => request(indexedDB.open('edge-till-catalogue'));
  let runs = 0;
  window.copyHarness = {
    row: (id) => [id, null, `Produit ${id}`, 100, 550, 'Cat', 'piece', '', '', 0, false],
    worker: () => new WorkerCopy(),
    async full(worker, pages, version) {
      const run = `full-${runs++}`;
      for (const [i, products] of pages.entries()) {
        await worker.request('page', {
          run, full: true, first: i === 0, last: i === pages.length - 1, columns: COLUMNS,
          products, delisted: [], version, pageExtras: null, store: null, tiles: 48 });
      }
    },
    async delta(worker, products, version) {
      await worker.request('page', {
        run: `delta-${runs++}`, full: false, first: true, last: true, columns: COLUMNS,
        products, delisted: [], version, pageExtras: null, store: null });
    },
    /** The names of a category's first rows, as kept for the grid. */
    async top(category) {
      const db = await database();
      const meta = await request(db.transaction('meta').objectStore('meta').get('copy'));
      const side = db.transaction(`side-${meta.slot}`).objectStore(`side-${meta.slot}`);
      const rows = await request(side.get(['top', category]));
      db.close();
      return (rows ?? []).map((row) => row[2]);
    },
    async saved() {
      const db = await database();
      const meta = await request(db.transaction('meta').objectStore('meta').get('copy'));
      const chunks = db.transaction(`chunks-${meta.slot}`).objectStore(`chunks-${meta.slot}`);
      const values = await request(chunks.getAll());
      db.close();
      return { meta, chunks: values.map((value) => JSON.parse(value).map((row) => row[0])) };
    },
    /** The copy as a version before chunk keys were kept in the node's order left it. */
    async asSavedBefore(chunks) {
      const db = await database();
      const meta = await request(db.transaction('meta').objectStore('meta').get('copy'));
      const transaction = db.transaction(['meta', `chunks-${meta.slot}`], 'readwrite');
      const { keys, ...older } = meta;
      transaction.objectStore('meta').put(older);
      const store = transaction.objectStore(`chunks-${meta.slot}`);
      store.clear();
      chunks.forEach((ids, i) => {  // the first chunk keyed '', as the full copy keys it
        store.put(JSON.stringify(ids.map(window.copyHarness.row)), i === 0 ? '' : ids[0]);
      });
      await new Promise((resolve) => { transaction.oncomplete = resolve; });
      db.close();
    },
  };
}"""


async def test_a_copy_saved_before_id_order_is_checked_once_and_a_page_out_of_order_refused(
) -> None:
    """The node orders ids by code point, IndexedDB by UTF-16 units. A copy an older
    version saved holding ids where the two differ (its rows in IndexedDB's order) loses
    its version once read, so that a full copy replaces it; any other copy is marked read
    and kept. A full copy's page that does not follow the one before it is refused: the
    copy held before stays whole."""
    wide = ["A", "A\uff21", "A\U0001f600"]  # the node's order: fullwidth A before the emoji
    async with served_web_page() as page:
        await page.evaluate(COPY_HARNESS)
        seen = await page.evaluate("""async (wide) => {
            const h = window.copyHarness;
            const upgraded = async (chunks) => {
              let worker = h.worker();
              await h.full(worker, [chunks.flat().map(h.row)], { s: 1 });
              worker.worker.terminate();
              await h.asSavedBefore(chunks);
              worker = h.worker();
              for (let tries = 0; tries < 200; tries++) {
                const { meta } = await h.saved();
                if (meta.keys || meta.version === null) break;
                await new Promise((resolve) => setTimeout(resolve, 25));
              }
              worker.worker.terminate();
              return (await h.saved()).meta;
            };
            const plain = await upgraded([['a1', 'a2'], ['b1']]);
            const mixed = await upgraded([['A', 'A\\u{1F600}', 'A\\uFF21']]);

            const worker = h.worker();
            await h.full(worker, [wide.map(h.row)], { s: 2 });
            const before = await h.saved();
            let refused = null;
            try {
              await h.full(worker, [['m1', 'm2'].map(h.row), ['c1'].map(h.row)], { s: 3 });
            } catch (error) {
              refused = String(error.message ?? error);
            }
            const found = await Promise.all(wide.map((id) => worker.request('find', { id })));
            return { plain, mixed, before, after: await h.saved(), refused,
                     found: found.map((product) => product?.id ?? null) };
        }""", wide)
    assert (seen["plain"]["keys"], seen["plain"]["version"]) == ("code-points", {"s": 1})
    assert "keys" not in seen["mixed"] and seen["mixed"]["version"] is None
    assert seen["before"]["chunks"] == [wide]
    assert seen["refused"] == "a page of the full copy does not follow the one before it"
    assert seen["after"] == seen["before"]
    assert seen["found"] == wide

    # A category's first rows by name are kept for the grid (65 for 48 tiles): the last
    # kept, repriced, stays; the first, renamed after all the others, leaves, and the next
    # one not kept comes in its place.
    ids = [f"n{n:02d}" for n in range(70)]  # named "Produit n00" and on, all in "Cat"
    async with served_web_page() as page:
        await page.evaluate(COPY_HARNESS)
        kept = await page.evaluate("""async (ids) => {
            const h = window.copyHarness;
            const worker = h.worker();
            await h.full(worker, [ids.map(h.row)], { s: 1 });
            const before = await h.top('Cat');
            const priced = h.row('n64');  // the last kept: still in place, nothing to read again
            priced[3] = 999;
            await h.delta(worker, [priced], { s: 2 });
            const repriced = await h.top('Cat');
            const renamed = h.row('n00');
            renamed[2] = 'Zébu';
            await h.delta(worker, [renamed], { s: 3 });
            const refilled = (top) => top.length === before.length && !top.includes('Zébu');
            for (let tries = 0; tries < 200 && !refilled(await h.top('Cat')); tries++) {
              await new Promise((resolve) => setTimeout(resolve, 25));
            }
            // A category kept whole (65): in one page a first row comes (the last kept leaves
            // the list), one kept moves to another category, and one comes after all.
            const whole = (id, category = 'Whole') => {
              const row = h.row(id);
              row[5] = category;
              return row;
            };
            await h.delta(worker, ids.slice(0, 65).map((id) => whole(`w${id}`)), { s: 4 });
            const page = [whole('w-first'), whole('wn05', 'Other'), whole('wzz')];
            await h.delta(worker, page, { s: 5 });
            const full = (top) => top.length === 65;
            for (let tries = 0; tries < 200 && !full(await h.top('Whole')); tries++) {
              await new Promise((resolve) => setTimeout(resolve, 25));
            }
            return { before, repriced, after: await h.top('Cat'), whole: await h.top('Whole') };
        }""", ids)
    names = [f"Produit {product_id}" for product_id in ids]
    assert {key: kept[key] for key in ("before", "repriced", "after")} == {
        "before": names[:65], "repriced": names[:65], "after": names[1:66]}
    assert kept["whole"] == ["Produit w-first",
                             *(f"Produit w{n}" for n in ids[:65] if n != "n05")]
