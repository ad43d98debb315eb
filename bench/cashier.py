"""Taps, scans and searches on the browser till, against a bare page doing the same DOM work.

Run: ./dev bench cashier   (options --sizes, --taps, --scans, --switches, --searches)

Debian's chromium through Playwright at touch size (1024x768), headless.
The till: a real `edge serve` on loopback holding a catalogue of each size
(the demo store's products plus generated ones, imported with `edge
catalogue import`, cached in .bench-cache/), paired and logged in as a
cashier, its copy of the catalogue loaded. The bare page: static files from
a plain `python -m http.server` on loopback, no edge code, the same
catalogue, the DOM work alone (bench/cashier_pages.py). Both are driven by
the same code with real input events (Playwright's mouse and keyboard), and
timed inside the page from the input event to what it shows, laid out.

- taps: a tile tapped, the next once its line shows (a basket of 10 lines
  from the tab shown, then voided); and bursts of 10 taps sent back to back,
  from the first tap to the 10th line;
- tab switches: a category tab tapped, until its tiles show;
- scans: a barcode typed as a scanner does (13 digits and Enter), until its
  line shows;
- search: a name prefix typed, from its last key until the results show.

Every figure is also given as till ÷ bare page, both measured in the same run.
Where the till's time goes: the probe also notes when its command left and
when the node's last answer came (input → sent → answered → shown), the
page's main-thread time per action comes from chromium's own counters
(script, style, layout, and every task, the driver's calls included, on
both pages alike), and a websocket client in Python times the same
`basket/add` on the same node with no browser (the node's own share).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import CDPSession, Page, async_playwright

from bench.cashier_pages import (
    SEARCHES,
    TOUCH,
    Store,
    cached_store,
    open_bare,
    open_till,
    served_bare_page,
    served_till,
)
from bench.nodes import ROOT, BenchNode, percentile
from edge.till_client import TillClient

CHROMIUM = Path("/usr/bin/chromium")
LINES_A_BASKET = 10
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Without it chromium sends DNS queries off the machine.
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
]


# The driver: the same for both pages

async def arm(page: Page, selector: str, least: int = 1, most: int = 10**9,
              fresh: bool = False, keys: int = 0) -> None:
    await page.evaluate("([s, l, m, f, k]) => window.cashierBench.arm(s, l, m, f, k)",
                        [selector, least, most, fresh, keys])


@dataclass
class Shown:
    """One input to what it showed, in ms, as the page timed it."""
    since_first: float  # from the first input event since arm
    latency: float  # from the last input event
    before_send: float | None = None  # the till: input to its command sent
    round_trip: float | None = None  # command sent to the node's last answer received
    after_answer: float | None = None  # that answer to what it shows, laid out


async def shown(page: Page) -> Shown:
    first, last, at, sent, received = await page.evaluate(
        "async () => { const b = window.cashierBench; const at = await Promise.race([b.shown, "
        "new Promise((_, fail) => setTimeout(() => fail(new Error('not shown in 30 s')), 30000))"
        "]); "
        "return [b.first, b.last, at, b.sent, b.receivedBefore]; }")
    first, last = (at if first is None else first), (at if last is None else last)
    if sent is None or received is None or received < sent:
        return Shown(at - first, at - last)
    return Shown(at - first, at - last, sent - last, received - sent, at - received)


async def visible(page: Page, selector: str, key: str) -> list[tuple[str, float, float]]:
    """(data-`key`, x, y) of each element of `selector` a tap at its centre reaches."""
    return [tuple(item) for item in await page.evaluate("""([selector, key]) => {
        const out = [];
        for (const element of document.querySelectorAll(selector)) {
          const box = element.getBoundingClientRect();
          const x = box.x + box.width / 2, y = box.y + box.height / 2;
          if (box.width && document.elementFromPoint(x, y)?.closest(selector) === element) {
            out.push([element.dataset[key], x, y]);
          }
        }
        return out;
    }""", [selector, key])]


async def empty_basket(page: Page) -> None:
    if await page.locator(".basket-line").count() == 0:
        return
    await arm(page, ".basket-line", 0, 0)
    await page.click("#clear-basket")
    with contextlib.suppress(Exception):  # the till asks to press twice, the bare page once
        await page.click("#clear-basket", timeout=1000)
    await shown(page)


async def category_tab(page: Page, number: int) -> tuple[float, float]:
    """The centre of the category tab `number` (modulo their count), scrolled into view as
    a cashier swipes the tabs. The favourites' key starts with a NUL (web/screen-grid.js)."""
    return tuple(await page.evaluate("""(number) => {
        const tabs = [...document.querySelectorAll('.grid-tab')]
          .filter((tab) => !tab.dataset.tab.startsWith('\\0'));
        const tab = tabs[number % tabs.length];
        tab.scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: 'instant' });
        const box = tab.getBoundingClientRect();
        return [box.x + box.width / 2, box.y + box.height / 2];
    }""", number))


# Chromium's own counters of its renderer's main thread (CDP Performance.getMetrics), seconds.
CPU_PARTS = {"ScriptDuration": "script", "RecalcStyleDuration": "style",
             "LayoutDuration": "layout", "TaskDuration": "busy"}


class CpuMeter:
    """The page's main-thread time spent on each kind of action, per action, in ms."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.spent: dict[str, dict[str, float]] = {}
        self.actions: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.cdp: CDPSession | None = None

    async def read(self) -> dict[str, float]:
        if self.cdp is None:
            self.cdp = await self.page.context.new_cdp_session(self.page)
            await self.cdp.send("Performance.enable")
        metrics = (await self.cdp.send("Performance.getMetrics"))["metrics"]
        return {m["name"]: m["value"] for m in metrics if m["name"] in CPU_PARTS}

    async def start(self) -> None:
        self.started = await self.read()

    async def stop(self, action: str, count: int) -> None:
        now = await self.read()
        spent = self.spent.setdefault(action, dict.fromkeys(CPU_PARTS, 0.0))
        for name in CPU_PARTS:
            spent[name] += (now[name] - self.started[name]) * 1000
        self.actions[action] = self.actions.get(action, 0) + count

    def per_action(self, action: str) -> dict[str, float]:
        return {name: ms / self.actions[action] for name, ms in self.spent[action].items()}


@dataclass
class Figures:
    cpu: CpuMeter  # the page's main-thread time on the actions below
    taps: list[Shown] = field(default_factory=list)  # tap to line, one at a time
    taps_seconds: float = 0.0  # wall time of those taps, input driving included
    bursts: list[float] = field(default_factory=list)  # taps/s of each burst
    switches: list[Shown] = field(default_factory=list)  # tab to tiles
    scans: list[Shown] = field(default_factory=list)  # Enter to line
    scans_seconds: float = 0.0  # wall time of the scans, typing included
    searches: list[Shown] = field(default_factory=list)  # last key to results


async def tap_tiles(page: Page, store: Store, taps: int, figures: Figures) -> None:
    tappable, cpu = store.tappable(), figures.cpu
    for round_number in range(-(-taps // LINES_A_BASKET)):
        await page.mouse.click(*await category_tab(page, round_number))
        await page.wait_for_timeout(50)
        tiles = [tile for tile in await visible(page, "#grid .grid-tile", "productId")
                 if tile[0] in tappable][:LINES_A_BASKET]
        # One at a time: each tap once the line of the one before shows.
        await empty_basket(page)
        await cpu.start()
        started = time.perf_counter()
        for count, (_, x, y) in enumerate(tiles, start=1):
            await arm(page, ".basket-line", count)
            await page.mouse.click(x, y)
            figures.taps.append(await shown(page))
        figures.taps_seconds += time.perf_counter() - started
        await cpu.stop("taps", len(tiles))
        # A burst: as fast as the input comes, the clock from the first tap to the last line.
        await empty_basket(page)
        await arm(page, ".basket-line", len(tiles))
        for _, x, y in tiles:
            await page.mouse.click(x, y)
        figures.bursts.append(len(tiles) / (await shown(page)).since_first * 1000)
    await empty_basket(page)


async def switch_tabs(page: Page, switches: int, figures: Figures) -> None:
    await page.mouse.click(*await category_tab(page, 0))
    for number in range(switches):
        # From each tab to the next: a tap never lands on the tab shown.
        x, y = await category_tab(page, number + 1)
        await arm(page, "#grid .grid-tile", fresh=True)
        await figures.cpu.start()
        await page.mouse.click(x, y)
        figures.switches.append(await shown(page))
        await figures.cpu.stop("switches", 1)


async def scan_barcodes(page: Page, barcodes: list[str], figures: Figures) -> None:
    for start in range(0, len(barcodes), LINES_A_BASKET):
        basket = barcodes[start:start + LINES_A_BASKET]
        await empty_basket(page)
        await page.focus("#scan")
        await figures.cpu.start()
        started = time.perf_counter()
        for count, barcode in enumerate(basket, start=1):
            await arm(page, ".basket-line", count)
            await page.keyboard.type(barcode)  # a scanner is a keyboard: digits, then Enter
            await page.keyboard.press("Enter")
            figures.scans.append(await shown(page))
        figures.scans_seconds += time.perf_counter() - started
        await figures.cpu.stop("scans", len(basket))
    await empty_basket(page)


async def search_names(page: Page, searches: int, figures: Figures) -> None:
    for number in range(searches):
        query = SEARCHES[number % len(SEARCHES)]
        await page.focus("#search")
        # Results count once the last key is in: earlier ones answer a shorter prefix.
        await arm(page, ".search-result", fresh=True, keys=len(query))
        await figures.cpu.start()
        await page.keyboard.type(query)
        figures.searches.append(await shown(page))
        await figures.cpu.stop("searches", 1)
        await arm(page, ".search-result", 0, 0)
        await page.keyboard.press("Escape")
        await shown(page)


async def measure(page: Page, store: Store, args: argparse.Namespace) -> Figures:
    figures = Figures(cpu=CpuMeter(page))
    await tap_tiles(page, store, args.taps, figures)
    await switch_tabs(page, args.switches, figures)
    await scan_barcodes(page, store.barcodes(args.scans), figures)
    await search_names(page, args.searches, figures)
    return figures


async def node_alone(node: BenchNode, product_ids: list[str]) -> list[float]:
    """ms of each `basket/add` a websocket client in Python gets answered, no browser: the
    node's own share of a tap (same node, same products, baskets of 10)."""
    times: list[float] = []
    async with TillClient([node.url], await node.pair(), "alice", "1234", timeout=30) as till:
        for number in range(0, len(product_ids), LINES_A_BASKET):
            basket = str(uuid.uuid4())
            for product_id in product_ids[number:number + LINES_A_BASKET]:
                started = time.perf_counter()
                await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                                product_id=product_id, quantity=1)
                times.append((time.perf_counter() - started) * 1000)
            await till.call("basket/clear", basket_id=basket)
    return times


# The report

def report(store: Store, bare: Figures, till: Figures, loaded: list[float],
           alone: list[float], load: tuple[float, float]) -> None:
    print(f"\n{store.size:,} products ({store.demo} of the demo, {store.size - store.demo:,} "
          f"generated; {store.categories} categories; import {store.import_seconds:.0f} s "
          f"when cached); the till's copy of the catalogue in memory {loaded[0]:.1f} s after "
          f"the PIN, saved for offline after {loaded[1]:.1f} s (measured after); load average "
          f"{load[0]:.1f} before, {load[1]:.1f} after")
    print(f"{'':34} {'bare page':>12} {'till':>12} {'till / bare':>12}")

    def row(label: str, bare_value: float, till_value: float, unit: str) -> None:
        ratio = till_value / bare_value if bare_value else float("inf")
        print(f"{label:34} {bare_value:9.1f} {unit:2} {till_value:9.1f} {unit:2} {ratio:11.2f}x")

    actions = (("tap → line", "taps"), ("tab → tiles", "switches"),
               ("scan (Enter) → line", "scans"), ("search (last key) → results", "searches"))
    for label, key in actions:
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            row(f"{label} {name}", percentile([s.latency for s in getattr(bare, key)], fraction),
                percentile([s.latency for s in getattr(till, key)], fraction), "ms")
    row("taps/s, one at a time", len(bare.taps) / bare.taps_seconds,
        len(till.taps) / till.taps_seconds, "/s")
    row("taps/s, bursts of 10 (p50)", percentile(bare.bursts, 0.5),
        percentile(till.bursts, 0.5), "/s")
    row("scans/s, one at a time", len(bare.scans) / bare.scans_seconds,
        len(till.scans) / till.scans_seconds, "/s")
    print("where the till's time goes, p50 (ms): input → command sent → node's answer → shown")
    for label, key in actions:
        timed = [s for s in getattr(till, key) if s.round_trip is not None]
        if timed:
            parts = [percentile([getattr(s, part) for s in timed], 0.5)
                     for part in ("before_send", "round_trip", "after_answer")]
            print(f"  {label:32} {parts[0]:7.1f} {parts[1]:7.1f} {parts[2]:7.1f}"
                  f"   ({len(timed)} of {len(getattr(till, key))} with a command)")
    print("the page's main thread a tap, tab, scan or search (ms), bare page / till:")
    for label, key in actions:
        spent = bare.cpu.per_action(key), till.cpu.per_action(key)
        print(f"  {label:32} " + "  ".join(
            f"{part} {spent[0][name]:.1f} / {spent[1][name]:.1f}"
            for name, part in CPU_PARTS.items()))
    print(f"the node alone: basket/add from a Python websocket client, p50 "
          f"{percentile(alone, 0.5):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                       args=BROWSER_ARGS)
            print(f"machine: {os.cpu_count()} cores; chromium {browser.version} headless, "
                  f"{TOUCH['width']}x{TOUCH['height']}")
            try:
                for size in (int(n) for n in args.sizes.split(",")):
                    store = await cached_store(size)
                    before = os.getloadavg()[0]
                    async with served_bare_page(store, Path(tmp)) as url:
                        bare_page = await open_bare(browser, url)
                        bare = await measure(bare_page, store, args)
                        await bare_page.close()
                    async with served_till(store, Path(tmp)) as node:
                        till_page, *loaded = await open_till(browser, node, size)
                        till = await measure(till_page, store, args)
                        await till_page.close()
                        tapped = sorted(store.tappable())
                        alone = await node_alone(node, random.Random(size).sample(
                            tapped, min(args.taps, len(tapped))))
                    report(store, bare, till, loaded, alone, (before, os.getloadavg()[0]))
            finally:
                await browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="catalogue sizes, products")
    parser.add_argument("--taps", type=int, default=100, help="taps one at a time (and as "
                        "many in bursts of 10)")
    parser.add_argument("--switches", type=int, default=60, help="category tabs tapped")
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--searches", type=int, default=30, help="name prefixes typed")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: `./dev test` installs it (apt-get install chromium)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
