"""The till's printer in a real browser: its state, a reprint, another printer, no sale.

As in tests/test_till_offline.py, nodes and chromium run in a test-made
network namespace and the page is served from a non-loopback address (not a
secure context, as in a shop). A file printer writes the receipts a node
prints to `<data>/printer/receipts.txt`; a network printer is played by
tests/fake_network_printer.py, run inside the namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, free_port, store_node_config
from netns import in_namespace, lone_host
from playwright.async_api import Browser, Page, async_playwright, expect
from test_till_offline import (
    BACK_ONLINE_MS,
    BAGUETTE,
    ShopNode,
    launch_browser_in,
    log_in,
    open_paired_till,
    pay_cash,
    scan,
)

# Two "machines" of the shop; one node is enough but for the last test.
NODE_A, NODE_B = "10.231.9.2", "10.231.9.3"
# The node asks its printer's status every 0.5 s; the rest is margin for a loaded machine.
PRINTER_CHANGE_MS = 15_000


def demo_config(folder: Path, printers: str) -> Path:
    """A one-node demo store with the given [[printers]] tables."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "edge.toml"
    config.write_text('[store]\nid = "demo-boulangerie"\ndemo = true\n'
                      f"[server]\nadvertise = false\n{printers}")
    return config


def events(node: ShopNode, event_type: str) -> list[dict[str, Any]]:
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        rows = db.execute("SELECT body FROM events WHERE type = ? ORDER BY position",
                          (event_type,)).fetchall()
    return [json.loads(body) for (body,) in rows]


def fr(text: str) -> str:
    """French as the till writes it: its apostrophes are typographic (U+2019)."""
    return text.replace("'", "\u2019")


def read_or_empty(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def printed(receipts: Path, pattern: str, count: int = 1) -> str:
    """The receipts file once `pattern` appears `count` times in it."""
    for _ in range(300):
        if len(re.findall(pattern, text := read_or_empty(receipts))) >= count:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pattern!r} was not printed {count} time(s) in {receipts}")


async def until(condition: Any, what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@dataclass
class Shop:
    """The shop's namespace, chromium in it, and the nodes the test started there."""

    ns: str
    browser: Browser
    nodes: list[ShopNode] = field(default_factory=list)

    def start(self, node: ShopNode) -> ShopNode:
        node.start()
        self.nodes.append(node)
        return node


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    with lone_host(NODE_A, NODE_B) as ns:
        nodes: list[ShopNode] = []
        try:
            async with async_playwright() as playwright:
                browser = await launch_browser_in(ns, tmp_path, playwright, (NODE_A, NODE_B))
                yield Shop(ns, browser, nodes)
                # First: a node with a till still connected takes long to stop.
                await browser.close()
        finally:
            for node in nodes:
                node.stop()


# --- one node, its file printer: state, reprint, no sale ---------------------------


async def test_the_till_shows_its_ready_printer_reprints_a_sale_and_a_manager_opens_the_drawer(
    tmp_path: Path, shop: Shop,
) -> None:
    # The demo store: one file printer, "receipt".
    node = shop.start(ShopNode(shop.ns, tmp_path / "node", address=NODE_A))
    page = await open_paired_till(node, shop.browser)
    printer = page.locator("#printer-status")

    # Ready: said quietly, nothing in the way.
    await expect(printer).to_have_attribute("data-state", "ready")
    await expect(printer).to_have_text("Imprimante prête")
    await expect(page.locator("#printer-help")).to_be_hidden()
    await expect(page.locator("#no-sale")).to_be_hidden()  # Alice is a cashier

    await scan(page, BAGUETTE)
    await pay_cash(page, "2", print_receipt=True)
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    note = page.locator("#print-note")
    await expect(note).to_have_text(fr("Ticket envoyé à l'imprimante receipt"))
    receipts = node.data / "printer" / "receipts.txt"
    await printed(receipts, rf"{node.first_till}-000001")
    assert "DUPLICATA" not in receipts.read_text()

    # The customer wants another copy: a DUPLICATA, recorded as asked by Alice.
    await page.click("#reprint")
    await expect(note).to_have_text(fr("Duplicata envoyé à l'imprimante receipt"))
    text = await printed(receipts, rf"{node.first_till}-000001", count=2)
    assert text.count("DUPLICATA") >= 1
    [sale] = node.sales()
    copies = [e for e in events(node, "print_requested") if e.get("copy") == "duplicate"]
    assert [(c["sale_id"], c["requested_by"]) for c in copies] == [(sale["id"], "alice")]
    await page.click("#new-sale")

    # "No sale" is for managers: Bruno sees it, gives a reason, the drawer opens.
    await page.click("#logout")
    await log_in(page, "bruno", "567890")
    await page.click("#no-sale")
    dialog = page.locator("#no-sale-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#no-sale-reason")).to_be_focused()
    await page.click("#no-sale-confirm")  # no reason: not sent
    await expect(page.locator("#no-sale-error")).to_have_text("Indiquez le motif")
    await page.keyboard.type("monnaie pour le marché")
    await page.keyboard.press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#notice")).to_have_text(
        fr("Ouverture du tiroir envoyée à l'imprimante receipt"))
    await expect(page.locator("#scan")).to_be_focused()  # back to selling

    def no_sale_openings() -> list[dict[str, Any]]:
        return [e for e in events(node, "drawer_opened") if e["reason"] == "no sale"]

    await until(no_sale_openings, "the drawer opening")  # (the cash sale opened it too)
    [opened] = no_sale_openings()
    assert (opened["note"], opened["cashier"], opened["printer"]) == (
        "monnaie pour le marché", "bruno", "receipt")

    # Back to a cashier: the button goes.
    await page.click("#logout")
    await log_in(page)
    await expect(page.locator("#no-sale")).to_be_hidden()


# --- a network printer: a state that stops receipts, and the way back ---------------

FAKE_PRINTER = """
import asyncio, sys
sys.path.insert(0, "tests")
from fake_network_printer import FakeNetworkPrinter

async def main():
    printer = FakeNetworkPrinter()
    printer.port = int(sys.argv[1])
    printer.paper_out = sys.argv[2] == "paper out"
    await printer.start()
    print("listening", flush=True)
    loop = asyncio.get_running_loop()
    while (line := await loop.run_in_executor(None, sys.stdin.readline)):
        if line.strip() == "freeze":  # at the next job's first bytes
            printer.freeze_at_next_job = True
        elif line.strip() == "back":
            await printer.come_back()
        else:
            printer.paper_out = line.strip() == "paper out"
        print("done", flush=True)
    await printer.stop()

asyncio.run(main())
"""


class PrinterInShop:
    """tests/fake_network_printer.py on 127.0.0.1 of the shop namespace, paper out at first."""

    def __init__(self, ns: str, port: int, state: str = "paper out") -> None:
        self.proc = subprocess.Popen(
            in_namespace(ns, [sys.executable, "-c", FAKE_PRINTER, str(port), state]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "listening"

    def tell(self, what: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # end of input: the printer stops
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


async def test_the_till_says_loudly_when_its_printer_cannot_print_and_quietly_when_it_can(
    tmp_path: Path, shop: Shop,
) -> None:
    port = free_port()  # the namespace's, free there too: a namespace starts with no sockets
    config = demo_config(tmp_path / "node", '[[printers]]\nname = "comptoir"\nkind = "network"\n'
                                            f'host = "127.0.0.1"\nport = {port}\n')
    node = shop.start(ShopNode(shop.ns, tmp_path / "node", ["--config", str(config)],
                               address=NODE_A))
    page = await open_paired_till(node, shop.browser, locale="en-GB")
    printer = page.locator("#printer-status")
    help_line = page.locator("#printer-help")

    # Nothing listens at the printer's address: the node cannot reach it.
    await expect(printer).to_have_attribute("data-state", "unreachable")
    await expect(printer).to_have_text("Printer: unreachable")
    await expect(printer).to_have_attribute("data-level", "alert")
    await expect(help_line).to_be_visible()
    await expect(help_line).to_contain_text("switched on and on the network")
    await expect(help_line).to_contain_text("Receipts wait and print in order")

    # Switched on, but out of paper: pushed to the till as it happens.
    fake = PrinterInShop(shop.ns, port)
    try:
        await expect(printer).to_have_attribute("data-state", "paper_out",
                                                timeout=PRINTER_CHANGE_MS)
        await expect(printer).to_have_text("Printer: paper out")
        await expect(help_line).to_contain_text("Put in a new roll.")
        # In French too.
        await page.click("#lang")
        await expect(printer).to_have_text("Imprimante : plus de papier")
        await expect(help_line).to_contain_text("Mettez un rouleau neuf.")

        # A new roll: back to a quiet line, and the help goes.
        fake.tell("paper in")
        await expect(printer).to_have_attribute("data-state", "ready", timeout=PRINTER_CHANGE_MS)
        await expect(printer).to_have_text("Imprimante prête")
        await expect(printer).to_have_attribute("data-level", "ok")
        await expect(help_line).to_be_hidden()
    finally:
        fake.stop()


# --- two nodes: the till's printer is on the one that is down ------------------------

def node_id(node: ShopNode) -> str:
    return (node.data / "node-id").read_text().strip()


def store_printers(node: ShopNode) -> set[tuple[str, str]]:
    """(node, printer) of every printer of the store this node has heard of."""
    try:
        with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
            return set(db.execute("SELECT node, name FROM store_printers").fetchall())
    except sqlite3.OperationalError:
        return set()  # not created yet


def knows_till(node: ShopNode, till: str) -> bool:
    try:
        with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
            return db.execute("SELECT 1 FROM tills WHERE code = ?", (till,)).fetchone() is not None
    except sqlite3.OperationalError:
        return False


async def until_a_node_has_lost(page: Page, peer: str) -> None:
    """The page's node (asked through the browser, in the namespace) has seen `peer` go."""
    for _ in range(300):
        health = await page.evaluate("fetch('/healthz').then((response) => response.json())")
        if not any(p["node_id"] == peer and p["connected"] for p in health["peers"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the node still counts {peer} as connected")


async def test_when_the_tills_printer_is_on_a_node_that_is_down_the_cashier_prints_elsewhere(
    tmp_path: Path, shop: Shop,
) -> None:
    port_a, port_b = free_port(), free_port()
    url_a, url_b = f"http://{NODE_A}:{port_a}", f"http://{NODE_B}:{port_b}"
    # Node A: the demo's file printer, "receipt", for any till no printer lists.
    config_a = store_node_config(tmp_path / "a", [url_b])
    node_a = shop.start(ShopNode(shop.ns, tmp_path / "a", ["--config", str(config_a)],
                                 address=NODE_A, port=port_a))
    # Node B: the printer on the till's counter, listing A's first till.
    config_b = store_node_config(tmp_path / "b", [url_a])
    with config_b.open("a") as config:
        config.write(f'[[printers]]\nname = "comptoir"\nkind = "file"\n'
                     f'path = "{tmp_path / "b" / "comptoir"}"\ntills = ["{node_a.first_till}"]\n')
    node_b = shop.start(ShopNode(shop.ns, tmp_path / "b", ["--config", str(config_b)],
                                 address=NODE_B, port=port_b))
    page = await open_paired_till(node_a, shop.browser)
    a, b = node_id(node_a), node_id(node_b)
    everywhere = {(a, "receipt"), (b, "comptoir")}
    await until(lambda: knows_till(node_b, node_a.first_till)
                and store_printers(node_a) == everywhere,
                "the pairing and the printers to replicate")

    # The till's printer is B's: the till says where it is (a fresh connection asks again).
    await page.reload()
    await log_in(page)
    printer = page.locator("#printer-status")
    await expect(printer).to_have_attribute("data-state", "remote")
    await expect(printer).to_have_text(f"Imprimante comptoir (nœud {b})")

    node_b.stop()
    await until_a_node_has_lost(page, b)
    await scan(page, BAGUETTE)
    await pay_cash(page, "2", print_receipt=True)
    await expect(page.locator("#receipt-number")).to_have_text(f"{node_a.first_till}-000001")
    note = page.locator("#print-note")
    await expect(note).to_contain_text(f"Imprimante comptoir injoignable (nœud {b})")
    await expect(note).to_contain_text(fr("Le ticket s'imprimera à son retour."))
    await expect(note).to_have_attribute("data-kind", "alert")
    await expect(printer).to_have_attribute("data-state", "unreachable")
    await expect(printer).to_have_text(f"Imprimante : injoignable (nœud {b})")

    # The reachable printers of the store are offered: here, A's.
    choices = page.locator(".printer-choice")
    await expect(choices).to_have_count(1)
    await expect(choices).to_have_attribute("data-printer", "receipt")
    await expect(choices).to_have_attribute("data-node", a)
    await choices.click()
    # B's receipt never printed: the customer has no ticket yet, so this one is the original.
    await expect(note).to_have_text(fr("Ticket envoyé à l'imprimante receipt"))
    await expect(choices).to_have_count(0)

    text = await printed(node_a.data / "printer" / "receipts.txt", rf"{node_a.first_till}-000001")
    assert "DUPLICATA" not in text
    [sale] = node_a.sales()
    [instead] = [e for e in events(node_a, "print_requested") if "replaces" in e]
    assert (instead["sale_id"], instead["printer"], instead["node"], instead["copy"]) == (
        sale["id"], "receipt", a, "original")
    # The receipt waiting for B is called off, so B does not print it too when it is back.
    [cancelled] = events(node_a, "print_job_cancelled")
    [original] = [e for e in events(node_a, "print_requested") if "replaces" not in e]
    assert cancelled["job_id"] == original["job_id"] and original["node"] == b
    assert instead["replaces"] == [original["job_id"]]


# --- a cash sale whose drawer pulse is in doubt --------------------------------------

def job_started(node: ShopNode) -> bool:
    with sqlite3.connect(node.data / "edge.sqlite3", timeout=5) as db:
        return db.execute("SELECT 1 FROM print_jobs WHERE status != 'pending'").fetchone() \
            is not None


async def test_the_till_asks_whether_the_drawer_opened_when_the_node_cannot_know(
    tmp_path: Path, shop: Shop,
) -> None:
    """The printer freezes as a cash receipt begins and the node is killed: it cannot
    know whether the drawer pulse went out. Back up, the till asks the cashier and
    opens the drawer for that sale on request, once."""
    port = free_port()
    config = demo_config(tmp_path / "node", '[[printers]]\nname = "comptoir"\nkind = "network"\n'
                                            f'host = "127.0.0.1"\nport = {port}\n')
    fake = PrinterInShop(shop.ns, port, state="ready")
    try:
        node = shop.start(ShopNode(shop.ns, tmp_path / "node", ["--config", str(config)],
                                   address=NODE_A))
        page = await open_paired_till(node, shop.browser)
        await expect(page.locator("#printer-status")).to_have_attribute(
            "data-state", "ready", timeout=PRINTER_CHANGE_MS)
        fake.tell("freeze")
        await scan(page, BAGUETTE)
        await pay_cash(page, "2", print_receipt=True)
        await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
        await until(lambda: job_started(node), "the receipt to start")
        node.kill()
        fake.tell("back")
        node.start()

        banner = page.locator("#drawer-doubt")
        await expect(banner).to_contain_text(fr("le tiroir s'est-il ouvert ?"),
                                             timeout=BACK_ONLINE_MS)
        await expect(banner).to_contain_text(f"{node.first_till}-000001")
        [sale] = node.sales()
        assert events(node, "drawer_opened") == []
        [unknown] = events(node, "drawer_unknown")
        assert unknown["sale_id"] == sale["id"]

        await page.click("#drawer-doubt .drawer-open")
        await expect(page.locator("#notice")).to_have_text(
            fr("Ouverture du tiroir envoyée à l'imprimante comptoir"))
        await expect(banner).to_be_hidden()
        await until(lambda: events(node, "drawer_opened"), "the drawer to open")
        [opened] = events(node, "drawer_opened")
        assert (opened["sale_id"], opened["asked_by"]) == (sale["id"], "alice")
    finally:
        fake.stop()
