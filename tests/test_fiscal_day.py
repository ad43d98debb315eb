"""Issue 11, acceptance 1: a store's day on two tills and two nodes, then its Z.

Two nodes of one store (shifts required) as two `edge serve` processes on
loopback, chromium on each till's page (a Python till speaks to them too).
The nodes' clock is the machine's, so the days are made with their time zone
(`TZ`; event times stay UTC, only where business days fall moves): local
time starts before the day's cut-off. Day D-1: a Python till sells in a
shift; the nodes restart in a zone where the cut-off is due seconds later,
rather than the test waiting minutes for it (the start-up and sales need a
margin on a loaded machine), and it passes while they run; a manager closes
D-2 (the store's first, empty) and D-1. Day D, in the browser: both tills open their shift with a
counted float and sell (receipts printed); a refund, a reprint twice
(DUPLICATA n° 1, then n° 2), cash taken out, both shifts closed with their
counts (one short). Then the nodes restart in a zone where D ended a moment
ago, and a manager presses "Clôturer la journée": the Z of D shows, prints,
and its totals equal a plain sum of the day's sales per VAT rate and per
tender, to the cent; GT(D) = GT(D-1) + D, GT(D-1) = GT(D-2) + D-1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import CommandFailed, EdgeProcess, Till, free_port, start_all, store_node_config
from playwright.async_api import Browser, Page, async_playwright, expect
from test_till_offline import BAGUETTE, ESPRESSO, pay_cash

from edge.devices.receipt import euros, rate_label
from edge.selling.tills import create_pairing_code

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
PAIN_AU_CHOCOLAT = "2000003000012"  # 1,25 €, in no promotion
# The nodes start, and the Python till sells, before the cut-off. Not waited out: the nodes
# are then restarted in a zone where the cut-off is CROSSED_RUNNING away (`restart_at`).
AHEAD = timedelta(seconds=60)
CROSSED_RUNNING = timedelta(seconds=3)  # the nodes restart within it, as a rule


def new_id() -> str:
    return str(uuid.uuid4())


def posix_tz(offset: timedelta) -> str:
    """A TZ value for local = UTC + offset (POSIX writes the sign the other way)."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds >= 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"EDG{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def utc_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)


def first_zone(now: datetime) -> tuple[int, timedelta, datetime]:
    """A cut-off hour and a zone (about 12 h behind UTC) where local time is `AHEAD`
    before the cut-off, and that cut-off instant (naive UTC)."""
    best = None
    for hour in range(13):
        offset = (timedelta(hours=hour) - AHEAD - timedelta(
            hours=now.hour, minutes=now.minute, seconds=now.second)) % timedelta(days=1)
        offset -= timedelta(days=1)  # between -24 h and 0
        if best is None or abs(offset + timedelta(hours=12)) < abs(best[1] + timedelta(hours=12)):
            best = (hour, offset)
    assert best is not None
    return best[0], best[1], now + AHEAD


@contextlib.asynccontextmanager
async def python_till(session: aiohttp.ClientSession, node: EdgeProcess, cashier: str, pin: str,
                      token: str | None = None) -> AsyncIterator[Till]:
    """A till speaking the protocol from Python: paired here unless `token` is given."""
    if token is None:
        code = create_pairing_code(node.data_dir / "edge.sqlite3")
        async with session.post(f"{node.url}/api/pair",
                                json={"code": code, "name": "Caisse Python"}) as response:
            token = (await response.json())["token"]
    async with session.ws_connect(f"{node.url}/api/ws") as ws:
        till = Till(ws, token)
        await till.call("auth", token=token)
        await till.call("login", cashier_id=cashier, pin=pin)
        yield till


async def retried(till: Till, type_: str, **args: Any) -> Any:
    """A closure waits for the node to hear every peer again after a restart."""
    for _ in range(200):
        try:
            return await till.call(type_, **args)
        except CommandFailed as refusal:
            if refusal.code != "not_caught_up":
                raise
        await asyncio.sleep(0.1)
    raise AssertionError("the node never caught up with its peer")


def rows(node: EdgeProcess, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(node.data_dir / "edge.sqlite3", timeout=5) as db:
        return db.execute(sql, params).fetchall()


async def heard_everything(session: aiohttp.ClientSession, node: EdgeProcess,
                           peer: EdgeProcess) -> None:
    """Return once `node` is linked to its peer again and holds every event the peer has
    written: a closure waits for that (`not_caught_up`), and just after a restart the
    nodes have not dialled each other yet."""
    for _ in range(300):
        async with session.get(f"{peer.url}/healthz") as response:
            theirs = (await response.json())["journal"]
        async with session.get(f"{node.url}/healthz") as response:
            links = [link["connected"] for link in (await response.json())["peers"]]
        [(held,)] = rows(node, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE origin = ?",
                         (theirs["origin"],))
        if links and all(links) and held >= theirs["seq"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node.url} never heard everything from {peer.url}")


def plain_sums(bodies: list[dict[str, Any]]) -> tuple[int, dict[str, int], dict[str, int]]:
    """The net total, VAT per rate and money per tender of sales and refunds, summed by
    hand from their bodies (cash net of the change)."""
    total, vat, tenders = 0, {}, {}
    for body in bodies:
        total += sum(line["total"] if "refund_of" not in body else -line["amount"]
                     for line in body["lines"])
        for row in body["totals"]["vat"]:
            vat[str(row["rate"])] = vat.get(str(row["rate"]), 0) + row["vat"]
        for tender in body["tenders"]:
            tenders[tender["method"]] = tenders.get(tender["method"], 0) + tender["amount"]
        tenders["cash"] = tenders.get("cash", 0) - body.get("change", 0)
    return total, vat, {key: cents for key, cents in tenders.items() if cents}


async def till_page(browser: Browser, node: EdgeProcess, cashier: str, pin: str) -> Page:
    """A new till paired on `node` (a browser context of its own), a cashier logged in."""
    page = await browser.new_page(locale="fr-FR")
    await page.goto(f"{node.url}/#pair={create_pairing_code(node.data_dir / 'edge.sqlite3')}")
    await page.click(f'[data-cashier-id="{cashier}"]')
    await page.keyboard.type(pin)
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    return page


async def open_shift_on(page: Page, float_euros: str) -> None:
    """A store requiring shifts shows the shift screen at login: count the float in."""
    await expect(page.locator("#screen-shift")).to_be_visible()
    await page.fill("#shift-float", float_euros)
    await page.click("#shift-open-submit")
    await expect(page.locator("#shift-expected")).to_be_visible()
    await page.click("#shift-back")
    await expect(page.locator("#screen-sell")).to_be_visible()


async def sell_and_print(page: Page, barcodes: list[str], cash: str) -> str:
    for barcode in barcodes:
        await page.keyboard.type(barcode)
        await page.keyboard.press("Enter")
        await expect(page.locator(".basket-line").first).to_be_visible()
    await pay_cash(page, cash, print_receipt=True)
    number = await page.locator("#receipt-number").text_content()
    await page.click("#new-sale")
    return str(number)


async def printed(node: EdgeProcess, pattern: str) -> str:
    path = node.data_dir / "printer" / "receipts.txt"
    for _ in range(200):
        if path.exists() and re.search(pattern, text := path.read_text()):
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pattern!r} never printed")


async def close_shift(page: Page, cash: str) -> str:
    await page.click("#shift-open")
    await expect(page.locator("#screen-shift")).to_be_visible()
    await page.click("#shift-close")
    await page.fill('[data-count="cash"]', cash)
    await page.click("#shift-close-submit")
    await expect(page.locator("#shift-difference")).to_be_visible()
    return str(await page.locator("#shift-difference").text_content())


async def test_a_day_on_two_tills_two_nodes_closed_with_its_z(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cutoff, zone, cut_at = first_zone(utc_naive())
    local = cut_at + zone  # the cut-off, in the nodes' local time: day D starts
    day = local.date()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    nodes = []
    for number, port in enumerate(ports):
        folder = tmp_path / f"node{number}"
        config = store_node_config(folder, [url for url in urls if url != urls[number]],
                                   more=f"[fiscal]\nshifts = true\nday_cutoff = {cutoff}\n")
        nodes.append(EdgeProcess(folder / "data", port, ["--config", str(config)]))
    first, second = nodes

    def start_in(zone: timedelta) -> None:
        for node in nodes:
            node.stop()
        monkeypatch.setenv("TZ", posix_tz(zone))  # the nodes' local time; UTC stays
        start_all(*nodes)

    async def restart_at(ends: datetime, ahead: timedelta = timedelta(0)) -> datetime:
        """Restart the nodes in a zone where local time `ends` (a cut-off) is `ahead` from
        now; return once it has passed. Every event made before lies before it: the nodes
        are stopped when the zone is chosen. Returns that cut-off instant (naive UTC)."""
        for node in nodes:
            node.stop()
        # Whole seconds (a TZ offset is), rounded down: `ends` is `ahead` or just beyond.
        zone = timedelta(seconds=math.floor((ends - ahead - datetime.now(UTC).replace(
            tzinfo=None)).total_seconds()))
        start_in(zone)
        cut = ends - zone
        await asyncio.sleep(max(0.0, (cut - datetime.now(UTC).replace(tzinfo=None))
                                .total_seconds()) + 0.05)
        return cut

    try:
        async with aiohttp.ClientSession() as session:
            # Day D-1: two sales in a shift, through a till speaking Python.
            start_in(zone)
            async with python_till(session, first, "alice", "1234") as till:
                await till.call("shift/open", shift_id=new_id(), float=0)
                for barcode, tender in ((BAGUETTE, {"method": "cash", "amount": 120}),
                                        (ESPRESSO, {"method": "card", "amount": 150})):
                    basket = new_id()
                    await till.call("basket/add", basket_id=basket, line_id=new_id(),
                                    barcode=barcode)
                    await till.call("sale/complete", basket_id=basket, tenders=[tender])
                await till.call("shift/close", counted={"cash": 120, "card": 150})
            assert utc_naive() < cut_at, "the nodes took too long to start: D-1 is over"
            # D-1 ends: in the nodes' local time, the cut-off passes while they run.
            cut_at = await restart_at(local, CROSSED_RUNNING)
            async with python_till(session, first, "bruno", "567890") as till:
                for back in (2, 1):
                    await retried(till, "closure/close", kind="day",
                                  period=(day - timedelta(days=back)).isoformat())

            # Day D, in the browser.
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page_a = await till_page(browser, first, "alice", "1234")
                page_b = await till_page(browser, second, "chloe", "2468")
                pages = [page_a, page_b]
                await open_shift_on(page_a, "100")
                await open_shift_on(page_b, "50")
                number_a = await sell_and_print(page_a, [BAGUETTE, BAGUETTE], "5")
                number_b = await sell_and_print(page_b, [ESPRESSO, PAIN_AU_CHOCOLAT], "5")
                await printed(first, re.escape(number_a))
                await printed(second, re.escape(number_b))

                tokens = [await page.evaluate("localStorage.getItem('edge.till_token')")
                          for page in pages]
                # A refund of B's pain au chocolat, cash back; A's receipt printed again,
                # twice.
                async with python_till(session, second, "chloe", "2468", tokens[1]) as till:
                    sale = (await till.call("sale/find_for_refund",
                                            receipt_number=number_b))["sale"]
                    pastry = next(line for line in sale["lines"]
                                  if line["barcode"] == PAIN_AU_CHOCOLAT)
                    await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                                    reason="rassis", lines=[{"line_id": pastry["id"],
                                                             "quantity": 1}])
                async with python_till(session, first, "alice", "1234", tokens[0]) as till:
                    sale = (await till.call("sale/find_for_refund",
                                            receipt_number=number_a))["sale"]
                    copies = [(await till.call("printer/reprint", sale_id=sale["id"]))
                              ["copy_number"] for _ in range(2)]
                assert copies == [1, 2]
                await printed(first, "DUPLICATA n° 2")

                # Cash out on A, then both shifts closed: A counts 40 cents short.
                await page_a.click("#shift-open")
                await page_a.fill("#shift-move-amount", "20")
                await page_a.fill("#shift-move-reason", "dépôt banque")
                await page_a.click("#shift-cash-out")
                await expect(page_a.locator('#shift-expected [data-tender="cash"]')
                             ).to_contain_text("82,40")  # 100 + 2,40 - 20
                await page_a.click("#shift-back")
                assert "-0,40" in await close_shift(page_a, "82")
                assert "0,00" in await close_shift(page_b, "51,50")  # 50 + 2,75 - 1,25

                # A zone where D just ended (its sales all before).
                await restart_at(datetime.combine(day + timedelta(days=1), datetime.min.time())
                                 + timedelta(hours=cutoff))
                # The manager's till (shifts required: it opens on its shift screen).
                manager = await till_page(browser, first, "bruno", "567890")
                await expect(manager.locator("#screen-shift")).to_be_visible()
                await heard_everything(session, first, second)
                await manager.click("#shift-close-day")
                await expect(manager.locator("#shift-z")).to_contain_text(day.isoformat())
                await browser.close()
    finally:
        for node in nodes:
            node.stop()

    closures = {body["period"]: body for body in (json.loads(raw) for (raw,) in rows(
        first, "SELECT body FROM events WHERE type = 'closure_made'"))}
    days = [(day - timedelta(days=back)).isoformat() for back in (2, 1, 0)]
    assert sorted(closures) == days
    before, yesterday, today = (closures[label] for label in days)
    assert before["grand_total"] == 0 and yesterday["totals"]["net"]["total"] == 270
    assert yesterday["grand_total"] == before["grand_total"] + yesterday["totals"]["net"]["total"]
    assert today["grand_total"] == yesterday["grand_total"] + today["totals"]["net"]["total"]

    # The Z of D as printed, against the day's sales summed by hand.
    bodies = [json.loads(raw) for (raw,) in rows(
        # D's sales: after D-1's closure (D's bounds, in the zone it was closed in, reach
        # back over D-1: what a closure counts is what no earlier one did).
        first, "SELECT body FROM sales WHERE time >= ? AND time < ?",
        (cut_at.isoformat(timespec="milliseconds") + "Z", today["bounds"]["end"]))]
    assert len(bodies) == 3  # two sales and a refund
    net, vat, tenders = plain_sums(bodies)
    assert net == 240 + 275 - 125
    z = (await printed(first, "Z journalier")).split("Z journalier")[-1]
    assert re.search(rf"NET TTC +{euros(net)}\n", z)
    for rate, cents in vat.items():
        assert re.search(rf"dont TVA {re.escape(rate_label(int(rate)))} +{euros(cents)}\n", z)
    assert today["totals"]["net"]["by_tender"] == tenders
    assert re.search(rf"Grand total +{euros(today['grand_total'])}\n", z)
    assert re.search(rf"Période +{day.isoformat()}\n", z)

    closed = [json.loads(raw) for (raw,) in rows(
        first, "SELECT body FROM events WHERE type = 'shift_closed' ORDER BY position")]
    assert [body["difference"]["cash"] for body in closed][-2:] in ([-40, 0], [0, -40])

