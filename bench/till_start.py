"""A browser till's start: first price, full offline copy, scans meanwhile, a reload (issue 12).

Run: ./dev bench till_start   (options --sizes, --scans)

Debian's chromium through Playwright at touch size, headless, against a real
`edge serve` on loopback holding the demo store's products plus generated
ones (bench/cashier_pages.py: imported once, cached in .bench-cache/). For
each size, a new till (a fresh browser context: no saved copy) is paired
and Alice logs in; then, timed in the page from its navigation start:

- first price: the first scan answered (its total shown), the node answering;
- full copy: the till's offline copy whole and saved (web/catalogue-worker.js
  writes it to IndexedDB; `#status[data-catalogue]` is its saved size);
- scans while the copy loads: a barcode scanned again and again (from the
  Enter key to the total shown) until the copy is whole: the longest, and the
  main thread's longest task meanwhile (PerformanceObserver 'longtask');
- a reload (F5) once the copy is whole: the sell screen shown, the saved copy
  read (its size back), and the first price after the PIN;
- the copy alone: lookups and name searches answered by the saved copy
  (what the till does offline), p50 and the slowest.

Every figure is also given as a ratio to the baseline measured in the same
run: the same page's first price with the demo store's catalogue (a few
hundred products). No assertion: the figures are what is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

from bench.cashier import BROWSER_ARGS, CHROMIUM
from bench.cashier_pages import (
    SEARCHES,
    TOUCH,
    Store,
    cached_store,
    products_on_sale,
    served_till,
)
from bench.nodes import ROOT, BenchNode, free_port, percentile
from edge.selling.tills import create_pairing_code

COPY_TIMEOUT_S = 900
DEMO_BARCODES = ["2000001000014", "2000002000013", "2000004000011"]  # baguette, croissant, espresso

# In the till's page before its own scripts: the main thread's long tasks, the
# times `data-catalogue` changed, and a scan timed from its Enter to the total shown.
PROBE_JS = """
window.__longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      window.__longTasks.push([entry.startTime, entry.duration]);
    }
  }).observe({ type: 'longtask', buffered: true });
} catch (error) { /* no long task timing */ }
window.__catalogueAt = [];
document.addEventListener('DOMContentLoaded', () => {
  const status = document.querySelector('#status');
  new MutationObserver(() => {
    const value = status.dataset.catalogue;
    const last = window.__catalogueAt.at(-1);
    if (!last || last[1] !== value) window.__catalogueAt.push([performance.now(), value]);
  }).observe(status, { attributes: true, attributeFilter: ['data-catalogue'] });
});
window.__scan = (barcode) => new Promise((resolve) => {
  const total = document.querySelector('#total');
  const before = total.textContent;
  const field = document.querySelector('#scan');
  field.value = barcode;
  const started = performance.now();
  const observer = new MutationObserver(() => {
    if (total.textContent === before) return;
    observer.disconnect();
    resolve([started, performance.now() - started]);
  });
  observer.observe(total, { childList: true, characterData: true, subtree: true });
  field.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
});
"""

# The saved copy alone, through a reader of its own (the till's module, its own worker).
COPY_ALONE_JS = """async ({ barcodes, queries }) => {
  const { LocalCatalogue, WorkerCopy } = await import('/catalogue.js');
  const copy = new LocalCatalogue(new WorkerCopy());
  await copy.loaded;
  const timed = async (ask) => {
    const t = performance.now();
    await ask();
    return performance.now() - t;
  };
  const lookups = [];
  for (const barcode of barcodes) lookups.push(await timed(() => copy.lookup(barcode)));
  const searches = [];
  for (const query of queries) searches.push(await timed(() => copy.search(query, 20)));
  copy.copy.worker.terminate();
  return { lookups, searches };
}"""


@dataclass
class Start:
    size: int
    first_price_ms: float = 0.0
    sell_shown_ms: float = 0.0  # the PIN typed at once: the sell screen, before any scan
    full_copy_ms: float | None = None
    scans: list[float] = field(default_factory=list)  # ms, while the copy loads
    longest_task_ms: float = 0.0
    reload_sell_ms: float = 0.0
    reload_copy_ms: float | None = None
    reload_first_price_ms: float = 0.0
    lookups: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)


async def log_in(page: Page) -> None:
    await page.click('[data-cashier-id="alice"]')
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await page.locator("#screen-sell").wait_for(state="visible")


async def copy_whole_at(page: Page, size: int, since: float = 0.0) -> float | None:
    """When (page ms) `data-catalogue` first said the whole copy, after `since`; None yet."""
    for at, value in await page.evaluate("window.__catalogueAt"):
        if at >= since and value == str(size):
            return float(at)
    return None


async def measure_start(browser: Browser, node: BenchNode, store: Store, scans: int) -> Start:
    size = len(store.products)
    barcodes = store.barcodes(5) or DEMO_BARCODES
    figures = Start(size)
    context = await browser.new_context(viewport=TOUCH, locale="fr-FR")  # nothing saved
    page = await context.new_page()
    await page.add_init_script(PROBE_JS)
    await page.goto(f"{node.url}/#pair={create_pairing_code(node.data / 'edge.sqlite3')}")
    await log_in(page)
    figures.sell_shown_ms = await page.evaluate("performance.now()")
    # Scans from the first moment the sell screen shows, until the copy is whole.
    started = time.perf_counter()
    n = 0
    while True:
        at, took = await page.evaluate("(code) => window.__scan(code)", barcodes[n % len(barcodes)])
        if n == 0:
            figures.first_price_ms = at + took
        figures.scans.append(took)
        n += 1
        whole = await copy_whole_at(page, size)
        if whole is not None and n >= scans:
            figures.full_copy_ms = whole
            break
        if time.perf_counter() - started > COPY_TIMEOUT_S:
            break
    tasks = await page.evaluate("window.__longTasks")
    until = figures.full_copy_ms or float("inf")
    figures.longest_task_ms = max((duration for at, duration in tasks if at <= until), default=0.0)

    # A reload (F5): the sell screen at once, the saved copy read again, the PIN, a price.
    await page.reload()
    await page.locator("#screen-sell, #screen-login").first.wait_for(state="visible")
    figures.reload_sell_ms = await page.evaluate("performance.now()")
    await page.locator("#screen-login").wait_for(state="visible")  # the node asks the PIN
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await page.locator("#screen-sell").wait_for(state="visible")
    at, took = await page.evaluate("(code) => window.__scan(code)", barcodes[0])
    figures.reload_first_price_ms = at + took
    for _ in range(200):
        figures.reload_copy_ms = await copy_whole_at(page, size)
        if figures.reload_copy_ms is not None:
            break
        await asyncio.sleep(0.05)

    rng = random.Random(size)
    asked = rng.sample([p["barcode"] for p in store.products if p["barcode"]], 50)
    queries = [*SEARCHES, "c", "b"]  # and one letter: the most matches
    alone = await page.evaluate(COPY_ALONE_JS, {"barcodes": asked, "queries": queries})
    figures.lookups, figures.searches = alone["lookups"], alone["searches"]
    await context.close()
    return figures


def report(figures: Start, baseline: float) -> None:
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f} ms ({value / baseline:.1f}x)"

    print(f"\n{figures.size:,} products")
    print(f"  sell screen (PIN typed at once) {ms(figures.sell_shown_ms)}")
    print(f"  first price (node)              {ms(figures.first_price_ms)}")
    print(f"  full offline copy saved         {ms(figures.full_copy_ms)}")
    print(f"  scans while it loads            {len(figures.scans)}, p50 "
          f"{percentile(figures.scans, 0.5):.1f} ms, longest {max(figures.scans):.1f} ms")
    print(f"  main thread's longest task      {figures.longest_task_ms:.0f} ms")
    print(f"  reload: sell screen shown       {ms(figures.reload_sell_ms)}")
    print(f"  reload: saved copy read         {ms(figures.reload_copy_ms)}")
    print(f"  reload: first price (PIN typed) {ms(figures.reload_first_price_ms)}")
    print(f"  copy alone: lookup p50 / max    {percentile(figures.lookups, 0.5):.2f} / "
          f"{max(figures.lookups):.2f} ms; search p50 / max "
          f"{percentile(figures.searches, 0.5):.2f} / {max(figures.searches):.2f} ms")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                       args=BROWSER_ARGS)
            print(f"machine: {os.cpu_count()} cores; chromium {browser.version} headless")
            try:
                node = BenchNode(Path(tmp) / "baseline", free_port())  # the demo store alone
                await node.start()
                try:
                    demo = products_on_sale(node.data / "edge.sqlite3")
                    demo_store = Store(len(demo), node.data, demo, len(demo), 0.0)
                    baseline = await measure_start(browser, node, demo_store, args.scans)
                finally:
                    node.stop()
                print(f"baseline: the demo store's {baseline.size} products, first price "
                      f"{baseline.first_price_ms:.0f} ms from the page's load")
                report(baseline, baseline.first_price_ms)
                for size in (int(n) for n in args.sizes.split(",")):
                    store = await cached_store(size)
                    async with served_till(store, Path(tmp)) as node:
                        figures = await measure_start(browser, node, store, args.scans)
                    report(figures, baseline.first_price_ms)
            finally:
                await browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="catalogue sizes, products")
    parser.add_argument("--scans", type=int, default=20,
                        help="scans at least (more while the copy loads)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: `./dev test` installs it (apt-get install chromium)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
