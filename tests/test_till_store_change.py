"""A browser till moved to another store sells from that store's catalogue, never the old one's.

One chromium page (Debian's) and two demo nodes of two stores, one after the
other on the same address (the till's origin, so its IndexedDB, stays): the
till makes its full offline copy of store A's catalogue, then store A's node
goes and store B's takes its place, and the till is paired there. Before,
the till kept A's copy and A's catalogue version: B answered `behind` for
ever (none of A's origins are B's) and the till sold A's products offline.
Now pairing forgets the copy, and so does meeting a node of another store
than the copy's (auth's `store.id`, kept with the copy): checked on the
page's own catalogue modules, with a node answering for a third store.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from conftest import NodeUnderTest, free_port
from playwright.async_api import async_playwright, expect
from test_pricing_vectors import CHROMIUM_ARGS
from test_till_catalogue_copy import Link, change_on_node, on_sale
from test_till_offline import log_in, scan

from edge.api.server import make_app
from edge.config import Config
from edge.selling.tills import create_pairing_code

STORE_B = "autre-boulangerie"
ESPRESSO_ID = "p0004"
ONLY_IN_A = {"id": "A-0001", "barcode": "3700000000013", "name": "Fougasse du magasin A",
             "price": 390, "vat_rate": 550, "category": "Boulangerie"}
ONLY_IN_B = {"id": "B-0001", "barcode": "3700000000020", "name": "Pain de seigle du magasin B",
             "price": 310, "vat_rate": 550, "category": "Boulangerie"}

# The page's own catalogue modules and a copy worker of their own (the same IndexedDB): the
# copy's store, then a node of a third store answering `auth` (a node whose data another
# store's replaced): the copy forgotten before the node is asked anything.
MEET_A_THIRD_STORE = """async (barcode) => {
  const { LocalCatalogue, WorkerCopy } = await import('/catalogue.js');
  const catalogue = new LocalCatalogue(new WorkerCopy());
  await catalogue.loaded;
  const before = { store: catalogue.store, size: catalogue.size };
  const asked = [];
  const call = async (type, args) => {
    asked.push({ type, since: args.since ?? null });
    return type === 'catalogue/changes' ? { behind: true } : null;
  };
  await catalogue.sync(call, 'un-troisieme-magasin');
  const after = { store: catalogue.store, size: catalogue.size, version: catalogue.version,
                  found: await catalogue.lookup(barcode) };
  catalogue.copy.worker.terminate();
  return { before, after, asked };
}"""


@asynccontextmanager
async def store_node(folder: Path, port: int, store_id: str) -> AsyncIterator[NodeUnderTest]:
    config = Config(data_dir=folder, store_id=store_id, advertise=False, host="127.0.0.1",
                    port=port)
    server = TestServer(make_app(config), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield NodeUnderTest(f"http://127.0.0.1:{port}", config.data_dir, session, server.app)
    finally:
        await server.close()


def pairing_code(node: NodeUnderTest) -> str:
    return create_pairing_code(node.data_dir / "edge.sqlite3")


def on_sale_in(node: NodeUnderTest) -> str:
    """How many products the node sells, as the till's status shows its copy's size."""
    return str(len(on_sale(node)))


async def test_a_till_paired_in_another_store_forgets_the_old_stores_catalogue(
        tmp_path: Path) -> None:
    port = free_port()
    link = Link()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        page = await browser.new_page(locale="fr-FR")
        await page.route_web_socket(re.compile(r".*/api/ws$"), link.route)
        status = page.locator("#status")
        # Store A: the till's full offline copy, with a product only A sells.
        async with store_node(tmp_path / "a", port, "demo-boulangerie") as node_a:
            await change_on_node(node_a, [("product_upserted", ONLY_IN_A)])
            await page.goto(f"{node_a.url}/#pair={pairing_code(node_a)}")
            await log_in(page)
            await expect(status).to_have_attribute("data-catalogue", on_sale_in(node_a))

        # Store B's node in its place: a product A lacks, and one A sells delisted (B's
        # catalogue is one product shorter than the copy of A's).
        async with store_node(tmp_path / "b", port, STORE_B) as node_b:
            await change_on_node(node_b, [("product_upserted", ONLY_IN_B),
                                          ("product_delisted", {"id": ESPRESSO_ID})])
            await page.goto(f"{node_b.url}/?again#pair={pairing_code(node_b)}")
            await log_in(page)
            await expect(status).to_have_attribute("data-catalogue", on_sale_in(node_b))
            assert link.changes[-1]["full"] is True

            # No node: B's product sells, A's is unknown.
            await link.cut()
            await expect(status).to_have_attribute("data-state", "offline")
            await scan(page, ONLY_IN_A["barcode"])
            await expect(page.locator("#error")).to_contain_text(ONLY_IN_A["barcode"])
            await scan(page, ONLY_IN_B["barcode"])
            await expect(page.locator(".basket-line")).to_have_count(1)
            await expect(page.locator(".basket-line")).to_contain_text(ONLY_IN_B["name"])

            # The copy knows its store; a node of another store empties it, and is asked for
            # a full copy (since nothing), not for the changes since B's version.
            met = await page.evaluate(MEET_A_THIRD_STORE, ONLY_IN_B["barcode"])
            assert met["before"] == {"store": STORE_B, "size": len(on_sale(node_b))}
            assert met["after"] == {"store": None, "size": 0, "version": None, "found": None}
            assert {"type": "catalogue/changes", "since": None} in met["asked"]
        await browser.close()
