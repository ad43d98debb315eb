"""What bench/cashier.py drives: the store, the till and the bare page, with a probe in each.

The store: a node's data folder whose catalogue holds the demo store's
products plus generated ones up to the size wanted, imported with `edge
catalogue import` once and cached in .bench-cache/ (a run copies it). Each
generated product has a barcode (EAN-13, 376 + a serial, never an in-store
02/20-29 code), a name of three words, a price, a colour and one of the
categories a store of that size shows as tabs.

The till: `edge serve` on loopback with a copy of that folder, opened with
a pairing link, Alice logged in and the till's copy of the catalogue whole.

The bare page: no edge code, only the DOM work the till does for a cashier,
with the till's class names (so one driver and one probe serve both pages):
tabs and tiles of the same catalogue (48 a tab, as the till's default), a
line added per tap or scan (`.basket-line`, with the total updated), a list
of up to 20 search results for a name prefix (first by name), found in an
index of the words sorted once at load (a binary search: the cheapest way). It
keeps nothing, asks no server and prices nothing.

The probe: added to either page before its own scripts, it notes the time of
each input event as the page received it (`event.timeStamp`), of the first
websocket message the page sends after it and of the last one it receives
(the till's command and the node's answer), and resolves when a selector
matches enough elements, after forcing style and layout (what the cashier
sees is laid out; painting adds up to one frame on both pages).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from bench.nodes import ROOT, BenchNode, free_port
from edge.selling.tills import create_pairing_code

CACHE = ROOT / ".bench-cache"
TOUCH = {"width": 1024, "height": 768}

GENERATOR_VERSION = 1  # change it when the generated catalogue changes (the cache key)
TILES_A_TAB = 48  # the till's default (edge/selling/catalogue_grid.py GridSettings.tiles)
SEARCH_RESULTS = 20  # the till's (web/session.js SEARCH_LIMIT)
COLUMNS = ["id", "barcode", "name", "price", "vat_rate", "category", "unit", "colour", "image",
           "favourite", "open_price"]
CATEGORIES = ["Épicerie", "Pâtisserie", "Boissons fraîches", "Alcool", "Confiserie", "Snacking",
              "Crèmerie", "Hygiène", "Droguerie", "Fruits", "Presse", "Boissons chaudes",
              "Charcuterie", "Papeterie", "Surgelés", "Conserves", "Pâtes et riz", "Bébé",
              "Animaux", "Traiteur"]
NOUNS = ["Biscuits", "Chocolat", "Confiture", "Yaourt", "Jus", "Sirop", "Savon", "Lessive",
         "Café", "Thé", "Pâtes", "Riz", "Sauce", "Soupe", "Compote", "Gâteau", "Bonbons",
         "Fromage", "Jambon", "Terrine", "Moutarde", "Cornichons", "Madeleines", "Brioche"]
KINDS = ["nature", "au lait", "noir", "fraise", "abricot", "citron", "vanille", "bio", "allégé",
         "épicé", "à l'ancienne", "de campagne", "maison", "fin", "extra", "doux", "fort",
         "croquant", "fondant", "framboise", "noisette", "caramel", "coco", "miel"]
BRANDS = ["Belle Rive", "Coteaux", "Mont Doré", "Petit Moulin", "Les Halles", "Terroir",
          "Val d'Or", "Grand Pré", "Roc Blanc", "Trois Chênes"]
COLOURS = ["", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "grey"]
# Name prefixes a cashier types: few matches, many, a word inside the name, two words.
SEARCHES = ["madel", "choc", "fram", "conf abr", "roc bl"]


def ean13(first_twelve: str) -> str:
    total = sum(int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(first_twelve))
    return first_twelve + str((10 - total % 10) % 10)


def generated_products(count: int) -> list[dict[str, str | int]]:
    """`count` products, the same ones every run (seeded)."""
    rng = random.Random(count)
    return [{
        "id": f"L-{i:06d}", "barcode": ean13(f"376{i:09d}"),
        "name": f"{rng.choice(NOUNS)} {rng.choice(KINDS)} {rng.choice(BRANDS)} "
                f"{rng.randrange(50, 1000, 50)} g",
        "price": rng.randrange(50, 2000), "vat_rate": rng.choice([550, 2000]),
        "category": CATEGORIES[i % len(CATEGORIES)], "unit": "",
        "colour": COLOURS[i % len(COLOURS)], "image": "", "favourite": "", "open_price": "",
    } for i in range(count)]


def catalogue_csv(products: list[dict[str, str | int]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(products)
    return out.getvalue()


def write_bare_page(folder: Path, products: list[dict[str, str | int]]) -> None:
    """index.html, bare.js and products.json in `folder`, to serve as static files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(BARE_HTML)
    (folder / "bare.js").write_text(BARE_JS.replace("TILES_A_TAB", str(TILES_A_TAB))
                                    .replace("SEARCH_RESULTS", str(SEARCH_RESULTS)))
    rows = [[p["id"], p["barcode"] or "", p["name"], p["price"], p["category"] or ""]
            for p in products]
    (folder / "products.json").write_text(json.dumps(rows, ensure_ascii=False))


# The store: a node's data folder holding the catalogue, made once and cached

@dataclass
class Store:
    size: int
    data: Path  # the cached data folder: copied for each run, never served itself
    products: list[dict[str, Any]]  # on sale, as the till's copy holds them
    demo: int  # of which the demo seed's
    import_seconds: float

    @property
    def categories(self) -> int:
        return len({product["category"] for product in self.products})

    def tappable(self) -> set[str]:
        """Tiles a tap adds at once: neither weighed nor at a typed price (those ask first)."""
        return {p["id"] for p in self.products if p["unit"] != "kg" and not p["open_price"]}

    def barcodes(self, count: int) -> list[str]:
        """Barcodes of products sold by the piece, spread over the whole catalogue."""
        codes = sorted(p["barcode"] for p in self.products if p["barcode"]
                       and p["unit"] != "kg" and not p["open_price"]
                       and p["barcode"][:2] not in ("02", *(str(n) for n in range(20, 30))))
        return random.Random(self.size).sample(codes, min(count, len(codes)))


def products_on_sale(database: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(
            "SELECT id, barcode, name, price, category, unit, open_price "
            "FROM products WHERE active ORDER BY id")]
    finally:
        db.close()


async def cached_store(size: int) -> Store:
    """A data folder whose catalogue holds `size` products: the demo's and generated ones."""
    demo_csv = (ROOT / "edge" / "data" / "demo_catalogue.csv").read_bytes()
    key = hashlib.sha256(demo_csv + f"{GENERATOR_VERSION}/{size}".encode()).hexdigest()[:12]
    folder = CACHE / f"cashier-{size}-{key}"
    done = folder / "import-seconds"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        node = BenchNode(folder, free_port())
        await node.start()  # the demo seed
        node.stop()
        demo = len(products_on_sale(node.data / "edge.sqlite3"))
        csv_file = folder / "generated.csv"
        csv_file.write_text(catalogue_csv(generated_products(max(0, size - demo))))
        print(f"importing {size - demo:,} generated products (once, kept in {folder}) …",
              flush=True)
        started = time.perf_counter()
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "edge", "catalogue", "import", str(csv_file),
                             "--data", str(node.data)], cwd=ROOT, check=True,
            stdout=subprocess.DEVNULL)
        done.write_text(f"{time.perf_counter() - started:.1f}\n")
    products = products_on_sale(folder / "data" / "edge.sqlite3")
    demo = sum(not product["id"].startswith("L-") for product in products)
    return Store(size, folder / "data", products, demo, float(done.read_text()))


# The two pages

@contextlib.asynccontextmanager
async def served_till(store: Store, work: Path,
                      cores: frozenset[int] | None = None) -> AsyncIterator[BenchNode]:
    node = BenchNode(work / f"node-{store.size}", free_port(), cores=cores)
    shutil.copytree(store.data, node.data)
    # On disk before the node starts: else the kernel writes the copy back (560 MB at 1M)
    # while the node serves, and each of its commits' syncs waits behind it (a scan's
    # answer held 120-190 ms in 2026-12-01's eighth-session runs).
    await asyncio.to_thread(os.sync)
    await node.start()
    try:
        yield node
    finally:
        node.stop()


@contextlib.asynccontextmanager
async def served_bare_page(store: Store, work: Path) -> AsyncIterator[str]:
    folder = work / f"bare-{store.size}"
    write_bare_page(folder, store.products)
    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait for it)
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
         "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # until it listens
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


# How many products the till has saved for offline (web/catalogue-worker.js: its own
# IndexedDB, the size saved with the copy in use), so the saved copy whole or not at all.
SAVED_PRODUCTS = """() => new Promise((resolve) => {
  const opening = indexedDB.open('edge-till-catalogue');
  opening.onerror = () => resolve(0);
  opening.onsuccess = () => {
    const db = opening.result;
    if (!db.objectStoreNames.contains('meta')) { db.close(); resolve(0); return; }
    const copy = db.transaction('meta').objectStore('meta').get('copy');
    copy.onsuccess = () => { db.close(); resolve(copy.result?.size ?? 0); };
    copy.onerror = () => { db.close(); resolve(0); };
  };
})"""


async def open_till(browser: Browser, node: BenchNode,
                    size: int) -> tuple[Page, float, float]:
    """The till paired, Alice logged in, its copy of the catalogue whole and saved: the
    page, the seconds from the PIN to the copy in memory, and to the copy saved."""
    page = await browser.new_page(viewport=TOUCH, locale="fr-FR")
    await page.add_init_script(PROBE_JS)
    await page.goto(f"{node.url}/#pair={create_pairing_code(node.data / 'edge.sqlite3')}")
    await page.click('[data-cashier-id="alice"]')
    await page.keyboard.type("1234")
    started = time.perf_counter()
    await page.keyboard.press("Enter")
    await page.locator("#screen-sell").wait_for(state="visible")
    await page.locator(f'#status[data-catalogue="{size}"]').wait_for(state="attached",
                                                                     timeout=300_000)
    in_memory = time.perf_counter() - started
    # Measured once saved: until then the till's save (all products, one transaction)
    # shares the cores with everything else, as it does in the first seconds of a day.
    while await page.evaluate(SAVED_PRODUCTS) < size:
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"the till did not save its {size} products in 300 s")
        await asyncio.sleep(0.2)
    saved = time.perf_counter() - started
    await page.locator("#grid .grid-tile").first.wait_for(state="visible")
    return page, in_memory, saved


async def open_bare(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport=TOUCH, locale="fr-FR")
    await page.add_init_script(PROBE_JS)
    await page.goto(url)
    await page.locator('body[data-ready="true"]').wait_for(state="attached", timeout=120_000)
    return page


BARE_HTML = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>bare till</title>
<style>
  body { margin: 0; font: 16px system-ui, sans-serif; display: grid;
         grid-template-columns: 1fr 380px; height: 100vh; }
  main { display: flex; flex-direction: column; min-height: 0; }
  .entry-bar { display: flex; gap: 8px; padding: 8px; }
  input { font-size: 18px; padding: 10px; flex: 1; }
  #search-results { max-height: 300px; overflow: auto; }
  .search-result { display: flex; justify-content: space-between; width: 100%;
                   min-height: 48px; }
  #grid { display: flex; flex-direction: column; min-height: 0; flex: 1; }
  .grid-tabs { display: flex; flex-wrap: wrap; gap: 4px; padding: 4px 8px; }
  .grid-tab { min-height: 48px; padding: 0 12px; }
  .grid-tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr));
                gap: 6px; padding: 8px; overflow: auto; }
  .grid-tile { min-height: 72px; display: flex; flex-direction: column;
               justify-content: space-between; }
  aside { border-left: 1px solid #ccc; display: flex; flex-direction: column; min-height: 0; }
  #basket { flex: 1; overflow: auto; }
  .basket-line { display: grid; grid-template-columns: 1fr auto auto; gap: 8px;
                 padding: 6px 8px; border-bottom: 1px solid #eee; }
  .line-name small { display: block; }
  #total { font-size: 28px; padding: 8px; }
</style></head>
<body>
<main>
  <div class="entry-bar"><input id="scan" autocomplete="off"><input id="search"
    autocomplete="off"></div>
  <div id="search-results" hidden></div>
  <div id="grid"><div id="grid-tabs" class="grid-tabs"></div>
    <div id="grid-tiles" class="grid-tiles"></div></div>
</main>
<aside><div id="basket"></div><div id="total"></div>
  <button id="clear-basket" type="button">Annuler</button></aside>
<script type="module" src="/bare.js"></script>
</body></html>
"""

BARE_JS = r"""
const $ = (selector) => document.querySelector(selector);
const money = (cents) => `${(cents / 100).toFixed(2).replace('.', ',')} €`;
function el(tag, className, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.append(...children);
  return element;
}
const words = (text) => text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()
  .match(/[\p{L}\p{N}_]+/gu) ?? [];

const rows = await (await fetch('/products.json')).json();
const products = rows.map(([id, barcode, name, price, category]) =>
  ({ id, barcode, name, price, category }));
const byId = new Map(products.map((p) => [p.id, p]));
const byBarcode = new Map(products.filter((p) => p.barcode).map((p) => [p.barcode, p]));
const byName = [...products].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
byName.forEach((p, rank) => { p.rank = rank; p.words = words(`${p.name} ${p.category}`); });
const tabs = new Map();
for (const p of byName) {
  if (!tabs.has(p.category)) tabs.set(p.category, []);
  if (tabs.get(p.category).length < TILES_A_TAB) tabs.get(p.category).push(p);
}
const index = []; // [word, product], sorted by word: a prefix is a binary search away
for (const p of products) for (const w of p.words) index.push([w, p]);
index.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const lines = [];

function renderBasket() {
  $('#basket').replaceChildren(...lines.map((line) => el('div', 'basket-line',
    el('div', 'line-name', el('strong', '', line.name), el('small', '', money(line.price))),
    el('span', 'qty-value', String(line.quantity)),
    el('span', 'line-total', money(line.price * line.quantity)))));
  $('#total').textContent = money(lines.reduce((sum, l) => sum + l.price * l.quantity, 0));
}
function add(product) {
  const line = lines.find((l) => l.id === product.id);
  if (line) line.quantity += 1; else lines.push({ ...product, quantity: 1 });
  renderBasket();
}
function showTab(name) {
  $('#grid-tabs').replaceChildren(...[...tabs.keys()].map((tab) => {
    const button = el('button', 'grid-tab', tab || 'Autres');
    button.dataset.tab = tab;
    button.setAttribute('aria-selected', String(tab === name));
    return button;
  }));
  $('#grid-tiles').replaceChildren(...tabs.get(name).map((p) => {
    const tile = el('button', 'grid-tile', el('span', 'tile-name', p.name),
      el('span', 'tile-price', money(p.price)));
    tile.dataset.productId = p.id;
    return tile;
  }));
  $('#grid').dataset.tab = name;
}
function search(query) {
  const wanted = words(query);
  let low = 0;
  let high = index.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (index[mid][0] < wanted[0]) low = mid + 1; else high = mid;
  }
  const found = new Map();
  for (let i = low; i < index.length && index[i][0].startsWith(wanted[0]); i += 1) {
    const p = index[i][1];
    if (wanted.every((w) => p.words.some((o) => o.startsWith(w)))) found.set(p.id, p);
  }
  const shown = [...found.values()].sort((a, b) => a.rank - b.rank).slice(0, SEARCH_RESULTS);
  const list = $('#search-results');
  list.hidden = false;
  list.replaceChildren(...shown.map((p) => {
    const button = el('button', 'search-result', el('strong', '', p.name),
      el('span', '', money(p.price)));
    button.dataset.productId = p.id;
    return button;
  }));
}
function closeSearch() {
  $('#search').value = '';
  $('#search-results').hidden = true;
  $('#search-results').replaceChildren();
  $('#scan').focus();
}

$('#grid-tiles').addEventListener('click', (event) => {
  const tile = event.target.closest('.grid-tile');
  if (tile) add(byId.get(tile.dataset.productId));
  $('#scan').focus();
});
$('#grid-tabs').addEventListener('click', (event) => {
  const tab = event.target.closest('.grid-tab');
  if (tab) showTab(tab.dataset.tab);
  $('#scan').focus();
});
$('#scan').addEventListener('keydown', (event) => {
  if (event.key !== 'Enter') return;
  const product = byBarcode.get($('#scan').value.trim());
  $('#scan').value = '';
  if (product) add(product);
});
$('#search').addEventListener('input', () => {
  if ($('#search').value.trim()) search($('#search').value); else closeSearch();
});
$('#search').addEventListener('keydown', (event) => { if (event.key === 'Escape') closeSearch(); });
$('#clear-basket').addEventListener('click', () => { lines.length = 0; renderBasket(); });
showTab([...tabs.keys()][0]);
renderBasket();
$('#scan').focus();
document.body.dataset.ready = 'true';
"""

# Added to either page before its own scripts (page.add_init_script: no CSP applies).
PROBE_JS = """(() => {
  const bench = window.cashierBench = { first: null, last: null, shown: null, keys: 0,
                                        sent: null, received: null, receivedBefore: null };
  const note = (event) => {
    bench.first ??= event.timeStamp;
    bench.last = event.timeStamp;
  };
  window.addEventListener('click', note, true);
  window.addEventListener('keydown', note, true);
  window.addEventListener('keydown', () => { bench.keys += 1; }, true);
  // The till's websocket: when its first command left after the input, when its last
  // answer came before what it shows (the bare page has none).
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function sendNoted(data) {
    bench.sent ??= performance.now();
    return send.call(this, data);
  };
  window.WebSocket = class NotedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => { bench.received = event.timeStamp; });
    }
  };
  /**
   * Resolves with the time `selector` matches between `least` and `most`
   * elements, laid out; `fresh`: counting only elements made since; `keys`:
   * not before that many keys were pressed (what shows before the last key
   * answers an older query).
   */
  bench.arm = (selector, least, most, fresh, keys) => {
    Object.assign(bench, { first: null, last: null, keys: 0, sent: null, received: null,
                           receivedBefore: null });
    const stale = new Set(fresh ? document.querySelectorAll(selector) : []);
    bench.shown = new Promise((resolve) => {
      const check = () => {
        if (bench.keys < keys) return false;
        const found = [...document.querySelectorAll(selector)].filter((e) => !stale.has(e));
        if (found.length < least || found.length > most) return false;
        document.body.getBoundingClientRect(); // style and layout, as the cashier sees it
        bench.receivedBefore = bench.received;
        resolve(performance.now());
        return true;
      };
      if (check()) return;
      const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
      observer.observe(document.body, { childList: true, subtree: true, attributes: true,
                                        characterData: true });
    });
  };
})();"""
