"""A browser till's start: first price, full offline copy, scans meanwhile, a reload (issue 12).

Run: ./dev bench till_start   (options --sizes, --scans, --changed, --pace, --together,
--hands)

A till is a machine of its own: by default the browser (with this process,
the cashier's hands) runs on one core and writes its profile to a RAM disk,
and the node alone on the other core and the real disk, so that neither's disk
flushes nor CPU stand in for the other's; chromium is started through
`taskset`, so none of its processes leaves that core. `--hands node` moves this
process to the node's core.
`--together` shares both cores and the disk (a till in a browser on
the node's own box). `--together --pace 0` is close to the runs before
2026-12-01's, which believed chromium pinned to its core with its profile on
a RAM disk: neither held (docs/benchmarks.md).

Debian's chromium at touch size, headless, driven over its DevTools pipe with
no Network domain (bench/devtools.py: Playwright's copies every websocket frame
to its driver, a load no till has), against a real
`edge serve` on loopback holding the demo store's products plus generated
ones (bench/cashier_pages.py: imported once, cached in .bench-cache/). For
each size, a new till (a fresh browser context: no saved copy) is paired
and Alice logs in; then, timed in the page from its navigation start:

- first price: the first scan answered (its total shown), the node answering;
- full copy: the till's offline copy whole and saved (web/catalogue-worker.js
  writes it to IndexedDB; `#status[data-catalogue]` is its saved size);
- scans while the copy loads: a barcode scanned again and again at a fast
  cashier's pace (`--pace`, one every 250 ms; from the Enter key to the total
  shown) until the copy is whole: the longest, and the
  main thread's longest task meanwhile (PerformanceObserver 'longtask');
- a price change once the copy is whole: 20,000 products (`--changed`) a cent
  dearer, imported into the running node (`edge catalogue import`, as a
  store or head office would send them); scans meanwhile, until the till's
  copy holds the change (its version past the import's last event): the
  longest, the main thread's longest task, and the time from the import's
  end to the change saved in the copy;
- the same scans once the copy is whole and nothing changes: what the copy and
  the change add to a scan;
- a reload (F5) once the copy is whole: the sell screen shown, the saved copy
  read (its size back), and the first price after the PIN;
- the copy alone: lookups and name searches answered by the saved copy
  (what the till does offline), the first lookup apart, p50 and the slowest.

For the longest scan of each phase the report says where its time went: how
long the Enter waited for the page's main thread, when its command went to the
node and when the answer's message reached the page (a node answers in a few
ms; on a till of one core the rest is the till's own CPU).

Every figure is also given as a ratio to the baseline measured in the same
run: the same page's first price with the demo store's catalogue (a few
hundred products). No assertion: the figures are what is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shlex
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.cashier import BROWSER_ARGS, CHROMIUM
from bench.cashier_pages import (
    SEARCHES,
    TOUCH,
    Store,
    cached_store,
    catalogue_csv,
    generated_products,
    products_on_sale,
    served_till,
)
from bench.devtools import Chromium, DevToolsError, Tab
from bench.nodes import ROOT, BenchNode, free_port, percentile, verdict
from edge.admin import TOKEN_FILE
from edge.selling.catalogue_admin import PART_CHARACTERS
from edge.selling.catalogue_versions import catalogue_version, held_seqs
from edge.selling.tills import create_pairing_code

COPY_TIMEOUT_S = 900
# Issue 12's goals at 1M products: a full offline copy within 20 s, no scan slower
# than 100 ms while it loads or while a 20,000-price change arrives, a reload usable in 2 s.
COPY_GOAL_MS = 20_000
SCAN_GOAL_MS = 100
RELOAD_GOAL_MS = 2_000
# A scan every 250 ms at most: four a second, faster than any cashier keeps up
# (back to back, the bench scanned ten a second into one basket of hundreds of lines).
SCAN_PACE_MS = 250
POLL_S = 0.02
DEMO_BARCODES = ["2000001000014", "2000002000013", "2000004000011"]  # baguette, croissant, espresso

# In the till's page before its own scripts: the main thread's long tasks, the
# times `data-catalogue` changed, the page's commands and answers, and a scan timed
# from its Enter to the total shown.
PROBE_JS = r"""
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
// Where a scan's time went: each command the page sent (client.js writes its id and type
// last) and when its answer's message event ran (the answer's text starts with its id).
window.__sent = [];
window.__answered = new Map();
const PageSocket = window.WebSocket;
window.WebSocket = class extends PageSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', ({ data }) => {
      const id = typeof data === 'string' && /^\{"id":(\d+),/.exec(data);
      if (id) window.__answered.set(Number(id[1]), performance.now());
    });
  }

  send(data) {
    const sent = typeof data === 'string' && /"id":(\d+),"type":"([^"]+)"\}$/.exec(data);
    if (sent) window.__sent.push([performance.now(), Number(sent[1]), sent[2]]);
    return super.send(data);
  }
};
// A scan as a scanner sends it: the code in the field, then a real Enter through the
// browser's input. Timed from the Enter's timeStamp (when the browser took the key, not
// when a busy main thread got round to it) to the total shown.
window.__armScan = (barcode) => {
  const total = document.querySelector('#total');
  const field = document.querySelector('#scan');
  const before = total.textContent;
  field.value = barcode;
  field.focus();
  window.__scanned = new Promise((resolve) => {
    let pressed = null;
    let handled = null;
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') [pressed, handled] = [event.timeStamp, performance.now()];
    }, { capture: true, once: true });
    const observer = new MutationObserver(() => {
      if (pressed === null || total.textContent === before) return;
      observer.disconnect();
      const shown = performance.now();
      // The cashier's commands between the key and the total (not the copy's pages).
      const trips = window.__sent
        .filter(([at, , type]) => at >= handled && at <= shown && !type.startsWith('catalogue/'))
        .map(([at, id, type]) => [
          type, at - pressed, (window.__answered.get(id) ?? shown) - pressed]);
      resolve([pressed, shown - pressed, handled - pressed, trips]);
    });
    observer.observe(total, { childList: true, characterData: true, subtree: true });
  });
};
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
    scans: list[Scan] = field(default_factory=list)  # while the copy loads
    longest_task_ms: float = 0.0
    long_tasks: list[tuple[float, float]] = field(default_factory=list)  # (at, ms) over 50 ms
    reload_sell_ms: float = 0.0
    reload_copy_ms: float | None = None
    reload_first_price_ms: float = 0.0
    lookups: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)
    changed: int = 0  # products repriced on the node once the copy is whole
    change_scans: list[Scan] = field(default_factory=list)  # while the node imports it
    change_after_scans: list[Scan] = field(default_factory=list)  # the import done, till not
    change_longest_task_ms: float = 0.0
    quiet_scans: list[Scan] = field(default_factory=list)  # the copy whole, nothing changing
    change_import_s: float = 0.0  # the node importing it
    change_saved_s: float | None = None  # from the import's end to the change saved in the copy


async def log_in(page: Tab) -> None:
    """Alice taps her tile (again if the list was drawn anew under her finger, as when
    the connecting notice goes), types her PIN and Enter."""
    alice = '[data-cashier-id="alice"]'
    for _ in range(50):
        with contextlib.suppress(DevToolsError):  # the tile drawn anew between two steps
            await page.click(alice)
        if await page.attribute(alice, "aria-pressed") == "true":
            break
        await asyncio.sleep(0.1)
    else:
        raise DevToolsError("Alice's tile never took her tap")
    await page.type("1234")
    await page.press("Enter")
    await page.wait_visible("#screen-sell")


async def copy_whole_at(page: Tab, size: int, since: float = 0.0) -> float | None:
    """When (page ms) `data-catalogue` first said the whole copy, after `since`; None yet."""
    for at, value in await page.evaluate("window.__catalogueAt"):
        if at >= since and value == str(size):
            return float(at)
    return None


def catalogue_version_seqs(database: Path) -> dict[str, int]:
    """The node's catalogue version (each origin's last product event, batches too, as
    `catalogue/changes` says it): a till's copy whose version reaches it holds every
    change made so far. (Until 2026-12-01 this read single product events only, so a
    change imported in batches read as held at once: "saved in the copy in 0.1 s".)"""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return catalogue_version(db, held_seqs(db))
    finally:
        db.close()


async def till_holds(page: Tab, wanted: dict[str, int]) -> bool:
    saved = await page.attribute("#status", "data-catalogue-version")
    version = json.loads(saved) if saved else {}
    return all(version.get(origin, 0) >= seq for origin, seq in wanted.items())


async def import_on_node(node: BenchNode, text: str) -> None:
    """`edge catalogue import` through the running node (its admin API, parts as the CLI
    sends them)."""
    token = (node.data / TOKEN_FILE).read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    upload = str(uuid.uuid4())
    url = f"{node.url}/api/admin/catalogue"
    async with aiohttp.ClientSession(headers=headers) as session:
        for start in range(0, len(text), PART_CHARACTERS):
            part = {"action": "upload", "upload": upload, "file": "products",
                    "text": text[start:start + PART_CHARACTERS]}
            async with session.post(url, json=part) as answer:
                answer.raise_for_status()
        async with session.post(url, json={"action": "import", "upload": upload},
                                timeout=aiohttp.ClientTimeout(total=COPY_TIMEOUT_S)) as answer:
            answer.raise_for_status()


@dataclass(frozen=True)
class Scan:
    """One scan, in the page's clock (ms): its Enter `at`, how long until the total showed,
    how long the key waited for the page's main thread, and each command it sent to the
    node as (type, sent, answered), both from the Enter."""
    at: float
    took: float
    key_wait: float
    trips: tuple[tuple[str, float, float], ...]

    def where(self) -> str:
        """Where its time went, in words."""
        parts = [f"the key waited {self.key_wait:.0f} ms for the page"]
        for kind, sent, answered in self.trips:
            parts.append(f"{kind} sent at {sent:.0f}, answered at {answered:.0f}")
        return "; ".join(parts) + f"; total shown at {self.took:.0f} ms"


async def scan(page: Tab, barcode: str, pace: float) -> Scan:
    """A scan (PROBE_JS: from its Enter to the total shown, in the page's clock), then a
    wait that keeps a cashier's pace: a scan every `pace` seconds at most (0: back to
    back)."""
    began = time.perf_counter()
    await page.evaluate("(code) => window.__armScan(code)", barcode)
    await page.press("Enter")
    at, took, key_wait, trips = await page.evaluate("window.__scanned")
    await asyncio.sleep(max(0.0, pace - (time.perf_counter() - began)))
    return Scan(at, took, key_wait, tuple(tuple(trip) for trip in trips))


async def measure_change(page: Tab, node: BenchNode, store: Store, changed: int,
                         barcodes: list[str], pace: float, figures: Start) -> None:
    """`changed` generated products a cent dearer, imported into the running node while
    the till scans, until the till's copy holds the change."""
    generated = generated_products(max(0, store.size - store.demo))
    picked = random.Random(changed).sample(generated, min(changed, len(generated)))
    csv_file = node.folder / "repriced.csv"
    csv_file.write_text(catalogue_csv([{**p, "price": int(p["price"]) + 1} for p in picked]))
    figures.changed = len(picked)
    del generated, picked
    quiet_heap()
    since = await page.evaluate("performance.now()")
    started = time.perf_counter()
    importing = asyncio.ensure_future(import_on_node(node, csv_file.read_text()))
    wanted: dict[str, int] | None = None
    imported_at = 0.0
    n = 0
    while time.perf_counter() - started < COPY_TIMEOUT_S:
        began = time.perf_counter()
        scanned = await scan(page, barcodes[n % len(barcodes)], 0.0)
        (figures.change_scans if wanted is None else figures.change_after_scans).append(scanned)
        n += 1
        # Between scans (the pace), the import and the copy are looked at every 20 ms:
        # their times are not rounded up to a scan's.
        while True:
            if wanted is None and importing.done():
                importing.result()
                imported_at = time.perf_counter()
                figures.change_import_s = imported_at - started
                wanted = catalogue_version_seqs(node.data / "edge.sqlite3")
            if wanted is not None and await till_holds(page, wanted):
                figures.change_saved_s = time.perf_counter() - imported_at
                break
            if time.perf_counter() - began >= pace:
                break
            await asyncio.sleep(POLL_S)
        if figures.change_saved_s is not None:
            break
    until = await page.evaluate("performance.now()")
    tasks = await page.evaluate("window.__longTasks")
    figures.change_longest_task_ms = max(
        (duration for at, duration in tasks if since <= at <= until), default=0.0)


async def measure_start(browser: Chromium, node: BenchNode, store: Store, scans: int,
                        pace: float, changed: int = 0) -> Start:
    size = len(store.products)
    barcodes = store.barcodes(5) or DEMO_BARCODES
    figures = Start(size)
    page = await browser.new_tab(TOUCH["width"], TOUCH["height"], "fr-FR")  # nothing saved
    await page.add_init_script(PROBE_JS)
    await page.goto(f"{node.url}/#pair={create_pairing_code(node.data / 'edge.sqlite3')}")
    await log_in(page)
    figures.sell_shown_ms = await page.evaluate("performance.now()")
    # Scans from the first moment the sell screen shows, until the copy is whole.
    started = time.perf_counter()
    n = 0
    while True:
        scanned = await scan(page, barcodes[n % len(barcodes)], pace)
        if n == 0:
            figures.first_price_ms = scanned.at + scanned.took
        figures.scans.append(scanned)
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
    figures.long_tasks = [(at, duration) for at, duration in tasks if at <= until and duration > 50]
    if changed and figures.full_copy_ms is not None:
        await measure_change(page, node, store, changed, barcodes, pace, figures)
    # The same scans with nothing going on: what the copy and the change add to them.
    for n in range(scans):
        figures.quiet_scans.append(await scan(page, barcodes[n % len(barcodes)], pace))

    # A reload (F5): the sell screen at once, the saved copy read again, the PIN, a price.
    await page.reload()
    await page.wait_visible("#screen-sell, #screen-login")
    figures.reload_sell_ms = await page.evaluate("performance.now()")
    await page.wait_visible("#screen-login")  # the node asks the PIN
    await page.type("1234")
    await page.press("Enter")
    await page.wait_visible("#screen-sell")
    scanned = await scan(page, barcodes[0], 0.0)
    figures.reload_first_price_ms = scanned.at + scanned.took
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
    await page.close()
    return figures


def scans_line(scans: list[Scan]) -> str:
    """Their count, p50 and longest against the goal, and where the longest's time went."""
    if not scans:
        return "0"
    times = [each.took for each in scans]
    slowest = max(scans, key=lambda each: each.took)
    answered = [each.trips[-1][2] for each in scans if each.trips]  # none: sold offline
    return (f"{len(scans)}, p50 {percentile(times, 0.5):.1f} ms, longest {slowest.took:.1f} ms "
            f"(goal <= {SCAN_GOAL_MS} ms: {verdict(slowest.took / SCAN_GOAL_MS)})\n"
            f"    the longest: {slowest.where()}\n"
            f"    all scans, p50: the key waited {percentile([e.key_wait for e in scans], 0.5):.0f}"
            f" ms; answered at "
            + (f"{percentile(answered, 0.5):.0f} ms" if answered else "— (no command sent)"))


def report(figures: Start, baseline: float) -> None:
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f} ms ({value / baseline:.1f}x)"

    print(f"\n{figures.size:,} products")
    print(f"  sell screen (PIN typed at once) {ms(figures.sell_shown_ms)}")
    print(f"  first price (node)              {ms(figures.first_price_ms)}")
    print(f"  full offline copy saved         {ms(figures.full_copy_ms)}"
          + ("" if figures.full_copy_ms is None or figures.full_copy_ms < figures.sell_shown_ms else
             f", {figures.full_copy_ms - figures.sell_shown_ms:,.0f} ms after the sell screen "
             f"(goal <= {COPY_GOAL_MS / 1000:.0f} s: "
             f"{verdict((figures.full_copy_ms - figures.sell_shown_ms) / COPY_GOAL_MS)})"))
    print(f"  scans while it loads            {scans_line(figures.scans)}")
    if figures.full_copy_ms:  # when the slowest came: the copy's last page indexes it all
        slowest = max(figures.scans, key=lambda each: each.took).at
        gap = (figures.full_copy_ms - slowest) / 1000
        print(f"  the longest came at             {slowest:,.0f} ms, {abs(gap):.1f} s "
              f"{'before' if gap >= 0 else 'after'} the copy was whole")
    print(f"  main thread's longest task      {figures.longest_task_ms:.0f} ms; over 50 ms: "
          + (", ".join(f"{duration:.0f} ms at {(at - figures.sell_shown_ms) / 1000:+.1f} s"
                       for at, duration in figures.long_tasks[:12]) or "none")
          + " (from the sell screen)")
    if figures.changed:
        saved = "—" if figures.change_saved_s is None else f"{figures.change_saved_s:.1f} s"
        print(f"  {figures.changed:,} prices changed: node import {figures.change_import_s:.1f} s, "
              f"then saved in the copy in {saved}")
        for label, scans in (("while the node imports it", figures.change_scans),
                             ("then until the copy has it", figures.change_after_scans)):
            print(f"  scans {label:26} {scans_line(scans)}")
        print(f"  main thread's longest task meanwhile {figures.change_longest_task_ms:.0f} ms")
    print(f"  scans then, nothing going on    {scans_line(figures.quiet_scans)}")
    reload_ratio = figures.reload_sell_ms / RELOAD_GOAL_MS
    print(f"  reload: sell screen shown       {ms(figures.reload_sell_ms)} "
          f"(goal <= {RELOAD_GOAL_MS / 1000:.0f} s: {verdict(reload_ratio)})")
    print(f"  reload: saved copy read         {ms(figures.reload_copy_ms)}")
    print(f"  reload: first price (PIN typed) {ms(figures.reload_first_price_ms)}")
    print(f"  copy alone: first lookup {figures.lookups[0]:.2f} ms, then p50 / max "
          f"{percentile(figures.lookups[1:], 0.5):.2f} / "
          f"{max(figures.lookups[1:]):.2f} ms; search p50 / max "
          f"{percentile(figures.searches, 0.5):.2f} / {max(figures.searches):.2f} ms")


RAM_DISK_THERE = Path("/dev/shm").is_dir()


@dataclass(frozen=True)
class Machines:
    """Which cores the till (chromium) and the node run on, the chromium to start (pinned
    to the till's core), and where chromium's profiles go; None: as the OS likes."""
    node_cores: frozenset[int] | None
    browser: Path
    profiles: str | None
    setting: str


HANDS = {
    "till": "on the till's core, with chromium",
    "node": "on the node's core",
}


@contextlib.contextmanager
def machines(together: bool, hands: str, work: Path) -> Iterator[Machines]:
    """The till apart from the node (see above), unless `together`: chromium on the last
    core (started through `taskset`, so every process it makes stays there), nodes on the
    others. The bench's hands (this process, which sends each key and reads each figure)
    cost CPU no real till spends, at the very moment of each scan: by default on the
    till's core (under 1% of it during a 1M copy), `node` puts them on the node's core,
    where they slow the node's answers instead (docs/benchmarks.md). This
    process's products are frozen out of its garbage collector (quiet_heap): its
    collections over a million products once stalled the core it ran on for 150-440 ms."""
    cores = sorted(os.sched_getaffinity(0))
    if together or len(cores) < 2 or not RAM_DISK_THERE:
        yield Machines(None, CHROMIUM, None, "till and node sharing the cores and the disk")
        return
    till, node = cores[-1:], cores[:-1]
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="edge-bench-till-") as profiles:
        # Beside the bench's files, not on the RAM disk: /dev/shm may be mounted noexec.
        browser = work / "chromium-on-the-till-core"
        pinned = f"taskset --cpu-list {till[0]} {shlex.quote(str(CHROMIUM))}"
        browser.write_text(f'#!/bin/sh\nexec {pinned} "$@"\n')
        browser.chmod(0o755)
        os.sched_setaffinity(0, node if hands == "node" else till)
        try:
            yield Machines(frozenset(node), browser, profiles,
                           f"till apart: chromium on core {till[0]}, its profile on a RAM "
                           f"disk; the node on core(s) {node} and the disk; the bench's "
                           f"hands {HANDS[hands]}")
        finally:
            os.sched_setaffinity(0, cores)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp, \
            machines(args.together, args.hands, Path(tmp)) as setting:
        async with Chromium.launched(setting.browser, BROWSER_ARGS, setting.profiles) as browser:
            print(f"machine: {os.cpu_count()} cores; chromium {browser.version} headless; "
                  f"{setting.setting}; a scan every {args.pace} ms at most")
            node = BenchNode(Path(tmp) / "baseline", free_port(),  # the demo store alone
                             cores=setting.node_cores)
            await node.start()
            await asyncio.to_thread(os.sync)  # its first writes on disk, as served_till's
            try:
                demo = products_on_sale(node.data / "edge.sqlite3")
                demo_store = Store(len(demo), node.data, demo, len(demo), 0.0)
                baseline = await measure_start(browser, node, demo_store, args.scans,
                                               args.pace / 1000)
            finally:
                node.stop()
            print(f"baseline: the demo store's {baseline.size} products, first price "
                  f"{baseline.first_price_ms:.0f} ms from the page's load")
            report(baseline, baseline.first_price_ms)
            for size in (int(n) for n in args.sizes.split(",")):
                store = await cached_store(size)
                quiet_heap()
                async with served_till(store, Path(tmp), setting.node_cores) as node:
                    figures = await measure_start(browser, node, store, args.scans,
                                                  args.pace / 1000, args.changed)
                report(figures, baseline.first_price_ms)


def quiet_heap() -> None:
    """This process holds a million products: out of the garbage collector's sight, or
    each of its full collections walks them all, taking the core it shares with chromium
    for the length of it (a stall no real till has: its cashier is not a Python heap)."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="catalogue sizes, products")
    parser.add_argument("--changed", type=int, default=20_000,
                        help="prices changed on the node once the copy is whole (0: none)")
    parser.add_argument("--scans", type=int, default=20,
                        help="scans at least (more while the copy loads)")
    parser.add_argument("--pace", type=int, default=SCAN_PACE_MS,
                        help="ms from one scan's start to the next's at least (0: back to back)")
    parser.add_argument("--together", action="store_true",
                        help="the browser and the node share the cores and the disk")
    parser.add_argument("--hands", choices=sorted(HANDS), default="till",
                        help="where this bench runs: "
                             + "; ".join(f"{name}: {what}" for name, what in HANDS.items()))
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: `./dev test` installs it (apt-get install chromium)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
