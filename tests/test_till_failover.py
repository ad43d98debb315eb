"""Any till, any node: a browser till whose node dies carries on with another.

Three nodes of one store replicate to each other (peers listed in their
config, store key shared), each on its own address of a test-made namespace,
as three machines on a shop's LAN; chromium runs there too, on a page served
by the first node (not a secure context, as in a shop). The till learns the
other nodes from `auth` and moves by itself; nothing tells it where to go.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import free_port, start_all, store_node_config
from netns import lone_host
from playwright.async_api import Browser, Page, async_playwright, expect
from test_pricing_vectors import served_web_page
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

from edge.selling.tills import create_pairing_code

ADDRESSES = ("10.231.9.2", "10.231.9.3", "10.231.9.4")
CROISSANT = "2000002000013"
# Detection takes about 2 s for a frozen node, less for a dead one; the rest is margin
# for a loaded test machine (the target, 3 s, is measured in bench/, not asserted here).
FAILOVER_MS = 15_000


@contextlib.asynccontextmanager
async def three_nodes(
    tmp_path: Path, peers_of: Callable[[list[str]], list[list[str]]]
) -> AsyncIterator[tuple[list[ShopNode], Browser]]:
    """Three nodes on three addresses of one namespace, `peers_of(urls)` saying who dials whom."""
    with lone_host(*ADDRESSES) as ns:
        ports = [free_port() for _ in ADDRESSES]
        urls = [f"http://{address}:{port}" for address, port in zip(ADDRESSES, ports, strict=True)]
        nodes = []
        try:
            for number, (address, port, peers) in enumerate(
                zip(ADDRESSES, ports, peers_of(urls), strict=True)
            ):
                folder = tmp_path / f"node{number}"
                config = store_node_config(folder, peers)
                nodes.append(ShopNode(ns, folder, ["--config", str(config)], address=address,
                                      port=port))
            start_all(*nodes)
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright, ADDRESSES)
                yield nodes, browser
                await browser.close()
        finally:
            for node in nodes:
                if node.proc and node.proc.poll() is None:
                    node.proc.send_signal(signal.SIGCONT)  # a node a test froze
                node.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[list[ShopNode], Browser]]:
    """Three nodes, each dialling the other two."""
    async with three_nodes(
        tmp_path, lambda urls: [[other for other in urls if other != url] for url in urls]
    ) as made:
        yield made


def node_id(node: ShopNode) -> str:
    return (node.data / "node-id").read_text().strip()


def knows_till(node: ShopNode, till: str) -> bool:
    try:
        with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
            return db.execute("SELECT 1 FROM tills WHERE code = ?", (till,)).fetchone() is not None
    except sqlite3.OperationalError:
        return False  # not created yet


async def until_every_node_knows_till(nodes: list[ShopNode], till: str | None = None) -> None:
    """Pairing happened on one node (the first's first till by default); the others learn it."""
    till = till or nodes[0].first_till
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
    await expect(page.locator("#receipt-number")).to_have_text(f"{first.first_till}-000001")
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
    await expect(page.locator("#receipt-number")).to_have_text(f"{first.first_till}-000001")
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
    await log_in(page, "bruno", "567890")
    await page.click("#parked-open")
    parked = page.locator(".parked-basket")
    await expect(parked).to_have_count(1)
    await expect(parked).to_contain_text(f"Caisse {first.first_till} — Alice")
    await expect(parked).to_contain_text("3 articles")
    await parked.click()
    await expect(page.locator(".basket-line")).to_have_count(2)
    await expect(page.locator("#total")).to_have_text(re.compile(r"3,50\s€"))
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text(f"T02-{first.node_id}-000001")

    [sold] = first.sales(f"T02-{first.node_id}")
    assert sold["cashier"] == "bruno"
    assert [(line["name"], line["quantity"]) for line in sold["lines"]] == [
        ("Baguette tradition", 1), ("Croissant pur beurre", 2)]
    assert first.sales() == []
    await other_till.close()


# --- a sale a node acknowledged and took down with it ---------------------------------


@pytest.fixture
async def store_with_a_loner(tmp_path: Path) -> AsyncIterator[tuple[list[ShopNode], Browser]]:
    """Three nodes; the first can be cut off from the others by restarting it (`isolate`).

    Only the first dials the others (the other two dial each other): while it
    lists them, the three replicate; once it lists nobody, nothing links it
    to them, though a till still reaches all three.
    """
    async with three_nodes(tmp_path, lambda urls: [urls[1:], [urls[2]], [urls[1]]]) as made:
        yield made


def isolate(node: ShopNode) -> None:
    """Restart the node listing no peers: nobody links it to the store any more."""
    node.kill()  # (a node with a till connected is slow to stop)
    store_node_config(node.data.parent, [])
    node.start()


def sale_events_of(node: ShopNode, sale_id: str) -> list[dict]:
    return [event for event in node.sale_events() if event["id"] == sale_id]


async def test_a_sale_acknowledged_by_a_node_that_died_before_passing_it_on_is_resent_by_the_till(
    store_with_a_loner: tuple[list[ShopNode], Browser],
) -> None:
    nodes, browser = store_with_a_loner
    loner, others = nodes[0], nodes[1:]
    page = await open_paired_till(loner, browser)
    status = page.locator("#status")
    await until_every_node_knows_till(nodes)

    # Sale 1 while the three replicate: every node has it, nothing to resend later.
    await scan(page, BAGUETTE)
    await pay_cash(page, "2")
    await expect(page.locator("#receipt-number")).to_have_text(f"{loner.first_till}-000001")
    await page.click("#new-sale")
    [[first_sale], _] = await until_sales_replicated(others, 1)

    # The first node is cut off; the till meanwhile sells through the others.
    isolate(loner)
    others_ids = "|".join(node_id(node) for node in others)
    await expect(status).to_have_attribute("data-node", re.compile(f"^({others_ids})$"),
                                           timeout=FAILOVER_MS)
    # The others freeze: the till goes to the lone node and sells there. It answers,
    # prints, and has no one to pass the sale on to.
    for node in others:
        assert node.proc is not None
        node.proc.send_signal(signal.SIGSTOP)
    await expect(status).to_have_attribute("data-node", node_id(loner), timeout=FAILOVER_MS)
    await expect(status).to_have_attribute("data-state", "online")
    await scan(page, ESPRESSO)
    await scan(page, CROISSANT)
    await expect(page.locator(".basket-line")).to_have_count(2)
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text(f"{loner.first_till}-000002")
    await expect(page.locator("#done-offline")).to_be_hidden()
    await expect(status).to_have_attribute("data-kept-sales", "2")  # on the till, on disk
    [_, acknowledged] = loner.sales()
    assert acknowledged["receipt_no"] == 2 and not acknowledged.get("resent")

    # The others wake up; the lone node dies with the only copy of sale 2.
    for node in others:
        assert node.proc is not None
        node.proc.send_signal(signal.SIGCONT)
    loner.kill()
    await expect(status).to_have_attribute("data-node", re.compile(f"^({others_ids})$"),
                                           timeout=FAILOVER_MS)

    # The till gave sale 2 to the node it moved to, which passed it on: every survivor
    # has it once, under the till's number, marked as resent; sale 1 was not resent.
    for held in await until_sales_replicated(others, 2):
        assert [sale["receipt_number"] for sale in held] == [
            f"{loner.first_till}-000001", f"{loner.first_till}-000002"]
        resent = held[1]
        assert resent["id"] == acknowledged["id"]
        assert resent["resent"] is True and resent["offline"] is False and resent["flags"] == []
        assert [line["name"] for line in resent["lines"]] == [
            "Café expresso", "Croissant pur beurre"]
        assert resent["totals"] == acknowledged["totals"] and resent["change"] == 235
        assert resent["tenders"] == [{"method": "cash", "amount": 500}]
        assert not held[0].get("resent") and held[0]["id"] == first_sale["id"]
    for node in others:
        assert len(sale_events_of(node, acknowledged["id"])) == 1
        assert len(sale_events_of(node, first_sale["id"])) == 1
    await expect(status).to_have_attribute("data-state", "online")


# The till's record of its day on its own, in chromium (web/ served from disk, no node).

DAY_OF_SALES = """async () => {
  const { TillStore } = await import('/offline.js');
  const { TillLedger, localDay } = await import('/ledger.js');
  const { recordedSale } = await import('/basket.js');
  const store = await TillStore.open();
  const ledger = new TillLedger();
  ledger.attach(store);
  await ledger.adopt({ store: { id: 'shop' }, till: { code: 'T01' }, last_receipt_no: 0 });
  const line = { id: 'L1', product_id: 'p1', barcode: '111', name: 'Baguette', unit_price: 120,
                 vat_rate: 550, quantity: 2 };
  const totals = { total: 240, items: 2, vat: [{ rate: 550, base: 227, vat: 13, total: 240 }] };
  const sale = (id, receiptNo) => ({ id, receipt_no: receiptNo, cashier: 'alice',
    time: '2026-11-25T10:42:07.123Z', lines: [line], tenders: [{ method: 'cash', amount: 500 }],
    totals, change: 260 });
  // As sale/complete answers: with what only a node adds.
  const answered = (id, receiptNo) => ({ ...sale(id, receiptNo), till: 'T01', hash: 'h',
    receipt_number: `T01-00000${receiptNo}`,
    print: { printer: 'receipt', node: 'n1', reachable: true },
    lines: [{ ...line, total: 240 }], tenders: [{ method: 'card', amount: 240, reference: 'R1' }],
    change: 0 });
  const yesterday = new Date();
  yesterday.setDate(yesterday.getDate() - 1);
  await store.keepSale('shop/T01', sale('old', 1), localDay(yesterday));
  await ledger.keepSale(recordedSale(answered('a', 2)));
  await ledger.keepOfflineSale(sale('b', 3));
  await ledger.keepSale(recordedSale(answered('c', 4)));
  await ledger.dropOlderDays();
  const kept = (await store.keptSales('shop/T01')).map((row) => [row.id, row.offline]);

  // A node that holds sale 2 only, and records what it is sent.
  const held = [2];
  const sent = [];
  const records = {};
  const call = async (type, args) => {
    if (type === 'sale/held') {
      sent.push(`held since ${args.since}`);
      return { till: 'T01', receipt_nos: held.filter((number) => number >= args.since) };
    }
    sent.push(`record ${args.sale.id} offline=${args.offline}`);
    records[args.sale.id] = args.sale;
    held.push(args.sale.receipt_no);
    return {};
  };
  await ledger.flush(call, (refused) => sent.push(`refused ${refused.id}`));
  const after = { waiting: ledger.waitingSales, keptCount: ledger.keptSales,
                  last: ledger.lastReceiptNo };

  // A node that holds nothing and refuses every sale: each is reported once, and kept.
  await ledger.keepOfflineSale(sale('d', 5));
  const refused = [];
  await ledger.flush(async (type) => {
    if (type === 'sale/held') return { till: 'T01', receipt_nos: [] };
    throw Object.assign(new Error('refused'), { code: 'invalid_field' });
  }, (sale) => refused.push(sale.id));
  return { kept, sent, resent: records.c, ...after, refused, stillWaiting: ledger.waitingSales };
}"""


async def test_the_till_keeps_its_days_sales_and_resends_those_a_node_lacks() -> None:
    async with served_web_page() as page:
        result = await page.evaluate(DAY_OF_SALES)
    # Yesterday's sale is gone; today's are kept, online and offline alike.
    assert result["kept"] == [["a", False], ["b", True], ["c", False]]
    # The outbox first, then what the node lacks from the lowest number kept: sale 4 only,
    # as a sale another node acknowledged; the offline one is not sent twice.
    assert result["sent"] == ["record b offline=true", "held since 2", "record c offline=false"]
    assert result["resent"] == {
        "id": "c", "receipt_no": 4, "cashier": "alice", "time": "2026-11-25T10:42:07.123Z",
        "lines": [{"id": "L1", "product_id": "p1", "barcode": "111", "name": "Baguette",
                   "unit_price": 120, "vat_rate": 550, "quantity": 2}],
        "tenders": [{"method": "card", "amount": 240, "reference": "R1"}],
        "totals": {"total": 240, "items": 2,
                   "vat": [{"rate": 550, "base": 227, "vat": 13, "total": 240}]},
        "change": 0,
    }
    assert (result["waiting"], result["keptCount"], result["last"]) == (0, 3, 4)
    # What a node refuses is said once and stays on the till (the outbox keeps the offline one).
    assert result["refused"] == ["d", "a", "b", "c"] and result["stillWaiting"] == 1

