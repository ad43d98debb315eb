"""Any till, any node: a browser till whose node dies carries on with another.

Three nodes of one store replicate to each other (peers listed in their
config, store key shared), each on its own address of a test-made namespace,
as three machines on a shop's LAN; chromium runs there too, on a page served
by the first node (not a secure context, as in a shop). The till learns the
other nodes from `auth` and moves by itself; nothing tells it where to go.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import free_port, store_node_config
from netns import lone_host
from playwright.async_api import Browser, Page, async_playwright, expect
from test_till_offline import (
    BAGUETTE,
    ESPRESSO,
    ShopNode,
    launch_browser_in,
    log_in,
    open_paired_till,
    pay_cash,
    scan,
)

from edge.tills import create_pairing_code

ADDRESSES = ("10.231.9.2", "10.231.9.3", "10.231.9.4")
CROISSANT = "2000002000013"
# Detection takes about 2 s for a frozen node, less for a dead one; the rest is margin
# for a loaded test machine (the target, 3 s, is measured in bench/, not asserted here).
FAILOVER_MS = 15_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[list[ShopNode], Browser]]:
    with lone_host(*ADDRESSES) as ns:
        ports = [free_port() for _ in ADDRESSES]
        urls = [f"http://{address}:{port}" for address, port in zip(ADDRESSES, ports, strict=True)]
        nodes = []
        try:
            for number, (address, port, url) in enumerate(zip(ADDRESSES, ports, urls, strict=True)):
                folder = tmp_path / f"node{number}"
                config = store_node_config(folder, [other for other in urls if other != url])
                node = ShopNode(ns, folder, ["--config", str(config)], address=address, port=port)
                node.start()
                nodes.append(node)
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright, ADDRESSES)
                yield nodes, browser
                await browser.close()
        finally:
            for node in nodes:
                if node.proc and node.proc.poll() is None:
                    node.proc.send_signal(signal.SIGCONT)  # a node a test froze
                node.stop()


def node_id(node: ShopNode) -> str:
    return (node.data / "node-id").read_text().strip()


def knows_till(node: ShopNode, till: str) -> bool:
    try:
        with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
            return db.execute("SELECT 1 FROM tills WHERE code = ?", (till,)).fetchone() is not None
    except sqlite3.OperationalError:
        return False  # not created yet


async def until_every_node_knows_till(nodes: list[ShopNode], till: str = "T01") -> None:
    """Pairing happened on one node; the others learn the till by replication."""
    for _ in range(300):
        if all(knows_till(node, till) for node in nodes):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the pairing of {till} did not reach every node")


async def until_sales_replicated(nodes: list[ShopNode], count: int) -> list[list[dict]]:
    for _ in range(300):
        held = [node.sales() for node in nodes]
        if all(len(sales) >= count for sales in held):
            return held
        await asyncio.sleep(0.05)
    raise AssertionError(f"sales did not replicate: {[len(s) for s in held]}")


async def serving_node(page: Page, nodes: list[ShopNode]) -> ShopNode:
    node = await page.locator("#status").get_attribute("data-node")
    return next(each for each in nodes if node_id(each) == node)


async def test_a_till_mid_basket_whose_node_is_killed_finishes_the_sale_on_another(
    store: tuple[list[ShopNode], Browser],
) -> None:
    nodes, browser = store
    first = nodes[0]
    page = await open_paired_till(first, browser)
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-node", node_id(first))
    await until_every_node_knows_till(nodes)

    await scan(page, BAGUETTE)
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(2)
    await expect(status).to_have_attribute("data-state", "online")

    first.kill()
    killed_at = time.monotonic()
    # The cashier does not wait: the next scan lands at once, wherever the till is.
    await scan(page, CROISSANT)
    await expect(page.locator(".basket-line")).to_have_count(3)
    others = "|".join(node_id(node) for node in nodes[1:])
    await expect(status).to_have_attribute("data-node", re.compile(f"^({others})$"),
                                           timeout=FAILOVER_MS)
    await expect(status).to_have_attribute("data-state", "online")
    print(f"selling on another node {time.monotonic() - killed_at:.2f} s after kill -9")
    survivor = await serving_node(page, nodes)

    await expect(page.locator("#total")).to_have_text(re.compile(r"3,85\s€"))
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text("T01-000001")
    await expect(page.locator("#change-due")).to_have_text(re.compile(r"1,15\s€"))
    await expect(page.locator("#done-offline")).to_be_hidden()  # a node took it, and printed it

    # The survivor holds the whole basket as the till had it; the other one gets it too.
    [sold] = survivor.sales()
    assert [line["name"] for line in sold["lines"]] == [
        "Baguette tradition", "Café expresso", "Croissant pur beurre"]
    assert sold["totals"]["total"] == 385 and not sold.get("offline")
    held = await until_sales_replicated(nodes[1:], 1)
    assert [[sale["id"] for sale in sales] for sales in held] == [[sold["id"]]] * 2

    # The dead node comes back and catches up; the sale stays one sale.
    first.start()
    [again] = (await until_sales_replicated([first], 1))[0]
    assert again["id"] == sold["id"]


async def test_a_frozen_node_is_noticed_and_left_for_another(
    store: tuple[list[ShopNode], Browser],
) -> None:
    nodes, browser = store
    first = nodes[0]
    page = await open_paired_till(first, browser, locale="en-GB")
    status = page.locator("#status")
    await until_every_node_knows_till(nodes)
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(1)

    # A frozen node (think power cut on the far side of a switch) closes nothing:
    # only the till's pings tell.
    assert first.proc is not None
    first.proc.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    await expect(status).not_to_have_attribute("data-node", node_id(first), timeout=FAILOVER_MS)
    await expect(status).to_have_attribute("data-state", "online", timeout=FAILOVER_MS)
    print(f"selling on another node {time.monotonic() - frozen_at:.2f} s after SIGSTOP")
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(2)
    await pay_cash(page, "2,70")
    await expect(page.locator("#receipt-number")).to_have_text("T01-000001")
    survivor = await serving_node(page, nodes)
    assert survivor is not first
    [sold] = survivor.sales()
    assert [line["name"] for line in sold["lines"]] == ["Baguette tradition", "Café expresso"]
    first.proc.send_signal(signal.SIGCONT)


async def test_a_basket_left_on_a_dead_till_is_resumed_on_another_till(
    store: tuple[list[ShopNode], Browser],
) -> None:
    nodes, browser = store
    first = nodes[0]
    # Till 1 starts a basket, then dies (its browser is gone).
    dead_till = await browser.new_context(locale="fr-FR")
    page = await dead_till.new_page()
    await page.goto(await first.pairing_link())
    await log_in(page)
    await scan(page, BAGUETTE)
    await scan(page, f"2*{CROISSANT}")
    await expect(page.locator(".basket-line")).to_have_count(2)
    await dead_till.close()

    # Till 2, paired on its own, resumes it: the cashier sees the parked basket.
    code = create_pairing_code(first.data / "edge.sqlite3")
    other_till = await browser.new_context(locale="fr-FR")
    page = await other_till.new_page()
    await page.goto(f"{first.url}/#pair={code}")
    await log_in(page, "bruno", "5678")
    await page.click("#parked-open")
    parked = page.locator(".parked-basket")
    await expect(parked).to_have_count(1)
    await expect(parked).to_contain_text("Caisse T01 — Alice")
    await expect(parked).to_contain_text("3 articles")
    await parked.click()
    await expect(page.locator(".basket-line")).to_have_count(2)
    await expect(page.locator("#total")).to_have_text(re.compile(r"3,50\s€"))
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text("T02-000001")

    [sold] = first.sales("T02")
    assert sold["cashier"] == "bruno"
    assert [(line["name"], line["quantity"]) for line in sold["lines"]] == [
        ("Baguette tradition", 1), ("Croissant pur beurre", 2)]
    assert first.sales("T01") == []
    await other_till.close()
