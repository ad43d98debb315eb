"""A till asks for the catalogue changes since the version it holds (issue 12).

A new till gets a full copy and a version; a till that comes back with its
version gets only what changed (prices, new products, delistings), on any
node of the store; a version too old gets a full copy, a node behind the
till says so; `catalogue/follow` tells a till, once per burst, when to ask.
A price head office imports from its CSV reaches a following till, and a
browser till's offline copy (chromium, the copy saved in IndexedDB).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from conftest import NodeUnderTest, Till, free_port, node_of
from headoffice_support import (
    CertificateAuthority,
    HeadOffice,
    tuned_sync,
    wait_for,
    write_store_config,
)
from playwright.async_api import Page, async_playwright, expect
from test_pricing_vectors import CHROMIUM_ARGS
from test_till_catalogue_copy import read_saved_copy
from test_till_offline import log_in

from edge.api import catalogue_commands
from edge.api.server import make_app
from edge.config import load_config
from edge.headoffice.catalogue import import_catalogue_csv
from edge.journal.migrations import MIGRATIONS, migrate
from edge.journal.store import Journal
from edge.selling.barcodes import gtin_check_digit
from edge.selling.catalogue import import_products
from edge.selling.catalogue_versions import (
    COLUMNS,
    FULL_COPY_MIN,
    PRODUCT_EVENTS,
    catalogue_version,
    held_seqs,
)
from edge.selling.tills import create_pairing_code
from edge.sync.client import Timing

BAGUETTE_ID = "p0001"


def product(product_id: str, price: int = 100, name: str = "Article") -> dict[str, Any]:
    return {"id": product_id, "name": f"{name} {product_id}", "price": price, "vat_rate": 550,
            "category": "Divers"}


async def delist(journal: Journal, product_id: str) -> None:
    await journal.write(lambda tx: tx.append("product_delisted", {"id": product_id}))


class Copy:
    """What a till holds after pulling every page of one `catalogue/changes` run."""

    def __init__(self) -> None:
        self.version: dict[str, int] | None = None
        self.full = self.behind = False
        self.products: dict[str, dict[str, Any]] = {}
        self.delisted: set[str] = set()
        self.pages = 0
        self.first: dict[str, Any] = {}


async def pull(till: Till, since: dict[str, int] | None, limit: int = 5000,
               between_pages: Any = None) -> Copy:
    copy = Copy()
    page = await till.call("catalogue/changes", since=since, limit=limit)
    copy.first, copy.version = page, page["version"]
    while True:
        copy.pages += 1
        assert page["columns"] == list(COLUMNS)
        assert page["version"] == copy.version  # every page cut against one version
        copy.full, copy.behind = page["full"], page["behind"]
        copy.products |= {row[0]: dict(zip(COLUMNS, row, strict=True))
                          for row in page["products"]}
        copy.delisted |= set(page["delisted"])
        if page["next"] is None:
            return copy
        if between_pages is not None:
            await between_pages()
            between_pages = None
        page = await till.call("catalogue/changes", since=since, upto=copy.version,
                               after=page["next"], limit=limit)
        assert "grid" not in page  # the first page only


async def pushed(till: Till) -> list[dict[str, Any]]:
    await till.call("ping")  # collects what was pushed meanwhile
    return till.events


async def on_sale(journal: Journal) -> dict[str, int]:
    return {row["id"]: row["price"]
            for row in await journal.read_all("SELECT id, price FROM products WHERE active")}


async def test_a_till_gets_a_copy_once_then_only_the_changes(node: NodeUnderTest) -> None:
    journal = node_of(node).journal
    token = await node.pair()
    async with node.till(token, cashier=None) as till:  # before any login, as a till starts
        # A new till, paged 100 at a time; a price changed between two pages is
        # not lost: the next `since` brings it.
        async def reprice() -> None:
            await import_products(journal, [product(BAGUETTE_ID, price=135)])

        first = await pull(till, None, limit=100, between_pages=reprice)
    assert first.full and not first.behind and first.pages > 1
    assert set(first.first) >= {"grid", "promotions", "embedded_barcodes"}
    assert first.products[BAGUETTE_ID]["price"] != 135
    assert isinstance(first.products[BAGUETTE_ID]["open_price"], bool)
    catalogue = await on_sale(journal)
    assert {pid: row["price"] for pid, row in first.products.items()} == {
        **catalogue, BAGUETTE_ID: first.products[BAGUETTE_ID]["price"]}

    # Back with its version: a price, a new product and a delisting, nothing else.
    gone = sorted(catalogue)[-1]
    await import_products(journal, [product("zz-new", price=990)])
    await delist(journal, gone)
    async with node.till(token, cashier=None) as till:
        delta = await pull(till, first.version, limit=2)
        assert not delta.full and not delta.behind
        assert {pid: row["price"] for pid, row in delta.products.items()} == {
            BAGUETTE_ID: 135, "zz-new": 990}
        assert delta.delisted == {gone}
        assert set(delta.first) >= {"grid", "promotions", "embedded_barcodes"}

        # Nothing since: an empty answer, the same version.
        same = await pull(till, delta.version)
        assert (same.products, same.delisted, same.version) == ({}, set(), delta.version)

        # A node behind the till (restored, catching up): it says so, and nothing else.
        ahead = {**delta.version, journal.origin: journal.head.seq + 5}
        behind = await till.call("catalogue/changes", since=ahead)
        assert behind["behind"] and behind["products"] == behind["delisted"] == []
        assert "grid" not in behind

        # Too old: more products changed than a quarter of those on sale → a full copy.
        await import_products(journal, [product(f"bulk-{n:05d}") for n in
                                        range(FULL_COPY_MIN + 1)])
        old = await pull(till, delta.version)
        assert old.full and not old.delisted
        assert set(old.products) == set(await on_sale(journal))


async def test_a_page_asked_in_binary_is_the_same_json_in_a_binary_frame(
        node: NodeUnderTest) -> None:
    """The browser till asks its pages so (its worker decodes them, not the page)."""
    token = await node.pair()
    async with node.till(token, cashier=None) as till:
        as_text = await till.call("catalogue/changes", limit=50)
        await till.ws.send_json({"id": 90, "type": "catalogue/changes", "limit": 50,
                                 "binary": True})
        frame = await till.ws.receive(timeout=10)
        assert frame.type == aiohttp.WSMsgType.BINARY
        answer = orjson.loads(frame.data)
        assert (answer["id"], answer["success"]) == (90, True)
        assert answer["result"] == as_text and len(as_text["products"]) == 50
        # A refusal is said in text, as any other.
        refused = await till.reply("catalogue/changes", limit=0, binary=True)
        assert refused["success"] is False and refused["error"]["code"] == "invalid_field"


async def test_changes_are_found_through_the_catalogue_index(node: NodeUnderTest) -> None:
    journal = node_of(node).journal

    def plan(db: Any) -> list[str]:
        return [row[3] for row in db.execute(
            f"EXPLAIN QUERY PLAN SELECT json_extract(body, '$.id') FROM events WHERE origin = ? "
            f"AND seq > ? AND seq <= ? AND {PRODUCT_EVENTS}", ("o", 0, 9))] + [
            row[3] for row in db.execute(
                f"EXPLAIN QUERY PLAN SELECT MAX(seq) FROM events WHERE origin = ? "
                f"AND {PRODUCT_EVENTS}", ("o",))] + [
            row[3] for row in db.execute(  # counted first (`touched`): the index alone
                f"EXPLAIN QUERY PLAN SELECT 1 FROM events WHERE origin = ? AND seq > ? AND "
                f"seq <= ? AND {PRODUCT_EVENTS} ORDER BY seq LIMIT 1 OFFSET ?", ("o", 0, 9, 10))]

    assert all("USING INDEX events_catalogue" in step
               for step in await journal.read_in_snapshot(plan))


async def test_a_following_till_is_told_once_per_burst(node: NodeUnderTest) -> None:
    journal = node_of(node).journal
    async with node.till(cashier=None) as till:
        start = await pull(till, None)
        assert await till.call("catalogue/follow") is None
        follow = till.next_id
        # 2,000 price changes of 200 products, in 20 writes at once.
        some = sorted(start.products)[:200]
        await asyncio.gather(*(import_products(journal, [product(pid, price=1000 + n)
                                                         for pid in some[n % 2::2]])
                               for n in range(20)))
        await wait_for(lambda: pushed(till), 10, "catalogue_changed")
        await asyncio.sleep(0.6)  # past the next push, were there one
        await till.call("ping")
        assert till.events == [{"id": follow, "type": "event",
                                "event": {"type": "catalogue_changed"}}]
        changed = await pull(till, start.version)
        assert not changed.full and set(changed.products) == set(some)
        assert {row["price"] for row in changed.products.values()} == {1018, 1019}

        # After unsubscribing, nothing.
        await till.call("unsubscribe_events", subscription=follow)
        await import_products(journal, [product("after-unsubscribe")])
        await asyncio.sleep(0.6)
        await till.call("ping")
        assert len(till.events) == 1

    # A till that goes while following leaves nothing listening behind.
    listening = len(journal._listeners)
    async with node.till(cashier=None) as till:
        authenticated = len(journal._listeners)
        await till.call("catalogue/follow")
        assert len(journal._listeners) == authenticated + 1
        await import_products(journal, [product("while-leaving")])  # a push pending
    await wait_for(lambda: len(journal._listeners) == listening, 10, "the follower to stop")


async def test_bad_input_is_refused_and_changes_nothing(node: NodeUnderTest) -> None:
    journal = node_of(node).journal
    async with node.till(cashier=None) as till:
        good = await till.call("catalogue/changes", limit=1)
        bad: list[dict[str, Any]] = [
            {"since": {journal.origin: -1}}, {"since": {journal.origin: "3"}},
            {"since": {journal.origin: 1.5}}, {"since": {journal.origin: True}},
            {"since": [1, 2]}, {"since": {f"o{n}": 1 for n in range(1001)}},
            {"upto": {"": 1}}, {"upto": {journal.origin: 2**70}},
            {"limit": 0}, {"limit": 10_001}, {"after": "x" * 65}, {"after": 3},
        ]
        for args in bad:
            reply = await till.reply("catalogue/changes", **args)
            assert not reply["success"], args
            assert reply["error"]["code"] == "invalid_field", args
        assert await till.call("catalogue/changes", limit=1) == good
        reply = await till.reply("catalogue/follow", extra=1)
        assert reply["success"]  # NoArgs: extra fields are ignored, as everywhere


# --- two nodes and head office --------------------------------------------------------------

STORE = "demo-boulangerie"
HEADER = "id,barcode,name,price,vat_rate,category\n"


def gtin(number: int) -> str:
    body = f"210000{number:06d}"
    return body + str(gtin_check_digit(body))


def catalogue_csv(tarte_price: int) -> str:
    return HEADER + (f"ho-1,{gtin(1)},Tarte aux pommes,{tarte_price},550,Pâtisserie\n"
                     f"ho-2,{gtin(2)},Éclair au café,290,550,Pâtisserie\n")


@contextlib.asynccontextmanager
async def peered_nodes(tmp_path: Path, headoffice: HeadOffice, token: str,
                       ca: CertificateAuthority) -> AsyncIterator[list[NodeUnderTest]]:
    """Two nodes of one store, peers of each other, both syncing with head office."""
    ports = [free_port(), free_port()]
    timing = Timing(first_retry=0.02, max_retry=0.2, push_delay=0.01, pull_every=0.2,
                    timeout=10.0)
    servers: list[TestServer] = []
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        nodes = []
        for number, port in enumerate(ports):
            path = write_store_config(tmp_path / f"node{number}", headoffice.url, token, ca)
            others = ", ".join(f'"http://127.0.0.1:{other}"' for other in ports if other != port)
            # Its own port said: a browser till's page it serves may open its websocket.
            path.write_text(path.read_text().replace("[server]\n", f"[server]\nport = {port}\n")
                            + f"[peers]\nurls = [{others}]\n")
            config = load_config(path)
            with tuned_sync(timing):
                app = make_app(config)
                server = TestServer(app, host="127.0.0.1", port=port)
                await server.start_server()
            servers.append(server)
            stack.push_async_callback(server.close)
            nodes.append(NodeUnderTest(f"http://127.0.0.1:{port}", config.data_dir, session, app))
        yield nodes


async def test_a_head_office_price_reaches_a_following_till_and_a_version_holds_on_any_node(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(f"sqlite://{tmp_path / 'headoffice.sqlite3'}", ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        await import_catalogue_csv(server.storage, catalogue_csv(1850))
        async with (peered_nodes(tmp_path, headoffice, token, ca) as (a, b),
                    contextlib.AsyncExitStack() as stack):
            journal_a, journal_b = node_of(a).journal, node_of(b).journal
            # Both demo catalogues and head office's on both nodes.
            await wait_for(lambda: same_catalogue(journal_a, journal_b), 30,
                           "the nodes to hold the same catalogue")
            token_a = await a.pair()
            # And a browser till on a, with its offline copy (IndexedDB, in its worker).
            browser_till = await stack.enter_async_context(browser_page())
            await browser_till.goto(
                f"{a.url}/#pair={create_pairing_code(a.data_dir / 'edge.sqlite3')}")
            await log_in(browser_till)
            await expect(browser_till.locator("#status")).to_have_attribute(
                "data-catalogue", str(len(await on_sale(journal_a))))
            assert (await read_saved_copy(browser_till, [], [gtin(1)]))["prices"] == {
                gtin(1): 1850}
            async with a.till(token_a, cashier=None) as till:
                await till.call("catalogue/follow")
                copy = await pull(till, None)
                assert copy.products["ho-1"]["price"] == 1850
                till.events.clear()

                await import_catalogue_csv(server.storage, catalogue_csv(1990))
                await wait_for(lambda: pushed(till), 30,
                               "the till to be told of head office's change")
                assert till.events[0]["event"] == {"type": "catalogue_changed"}
                changed = await pull(till, copy.version)
                assert not changed.full and not changed.delisted
                assert {pid: row["price"] for pid, row in changed.products.items()} == {
                    "ho-1": 1990}
                # The browser till was told too: its saved copy sells the tarte at 19,90.
                await wait_for(lambda: saved_price_is(browser_till, gtin(1), 1990), 30,
                               "head office's price in the browser till's offline copy")

            # A change on a, replicated to b: b, given a's version, sends only that.
            await import_products(journal_a, [product("from-a", price=444)])
            await wait_for(lambda: _has(journal_b, "from-a"), 30, "a's product on b")
            async with b.till(token_a, cashier=None) as till_b:
                on_b = await pull(till_b, changed.version)
                assert not on_b.full and not on_b.behind
                assert {pid: row["price"] for pid, row in on_b.products.items()} == {
                    "from-a": 444}
                assert on_b.version[journal_a.origin] > changed.version.get(journal_a.origin, 0)
    finally:
        await headoffice.stop()


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        yield await browser.new_page(locale="fr-FR")
        await browser.close()


async def saved_price_is(page: Page, barcode: str, price: int) -> bool:
    return (await read_saved_copy(page, [], [barcode]))["prices"] == {barcode: price}


async def same_catalogue(a: Journal, b: Journal) -> bool:
    def version(db: Any) -> dict[str, int]:
        return catalogue_version(db, held_seqs(db))

    version_a = await a.read_in_snapshot(version)
    return len(version_a) == 3 and version_a == await b.read_in_snapshot(version)


async def _has(journal: Journal, product_id: str) -> bool:
    return await journal.read_one("SELECT 1 FROM products WHERE id = ? AND active",
                                  (product_id,)) is not None


async def test_a_barcode_given_back_by_a_delisting_reaches_the_till(node: NodeUnderTest) -> None:
    """Two products declare one barcode: the one listed later holds it; delisted, it goes
    back to the other, whose row changes with no event naming it."""
    journal = node_of(node).journal
    barcode = "200000950000" + str(gtin_check_digit("200000950000"))
    await import_products(journal, [{**product("old-holder"), "barcode": barcode}])
    await import_products(journal, [{**product("new-holder"), "barcode": barcode}])
    async with node.till(cashier=None) as till:
        start = await pull(till, None)
        assert start.products["new-holder"]["barcode"] == barcode
        assert start.products["old-holder"]["barcode"] is None
        await delist(journal, "new-holder")
        delta = await pull(till, start.version)
    assert delta.delisted == {"new-holder"}
    assert delta.products["old-holder"]["barcode"] == barcode


def test_the_barcodes_products_named_before_are_found_in_a_database_from_before() -> None:
    """Migration 30 fills `former_barcodes` from the product events held: a till whose
    version is older than the upgrade still gets a barcode given back by a move."""
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        upgrade = next(n for n, script in enumerate(MIGRATIONS) if "former_barcodes" in script)
        for number, script in enumerate(MIGRATIONS[:upgrade], start=1):
            db.executescript(f"BEGIN;{script};PRAGMA user_version = {number};COMMIT;")
        listings = [("mover", "3001"), ("stays", "3001"), ("mover", "3009"), ("stays", "3001"),
                    ("none", None)]
        for seq, (product_id, barcode) in enumerate(listings, start=1):
            db.execute("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
                       "VALUES ('ho', ?, ?, '', 'product_upserted', ?, '', '')",
                       (seq, f"e{seq}", orjson.dumps({"id": product_id, "barcode": barcode})))
        db.executemany("INSERT INTO products (id, declared_barcode, barcode, name, price, "
                       "vat_rate) VALUES (?, ?, ?, '', 0, 0)",
                       [("mover", "3009", "3009"), ("stays", "3001", "3001"),
                        ("none", None, None)])
        migrate(db)
        assert db.execute("SELECT * FROM former_barcodes").fetchall() == [("mover", "3001")]


async def test_a_scan_sent_after_a_catalogue_page_is_answered_first(
    node: NodeUnderTest, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A page of the catalogue is a long read at a million products; the scan the cashier
    # makes meanwhile, on the same socket, must not wait for it (it waited 150-440 ms).
    release = asyncio.Event()
    settings = catalogue_commands.till_catalogue_settings

    async def slow_page(journal: Journal, config: Any) -> dict[str, Any]:
        await release.wait()
        return await settings(journal, config)

    monkeypatch.setattr(catalogue_commands, "till_catalogue_settings", slow_page)
    async with node.till() as till:
        await till.ws.send_json({"id": 1000, "type": "catalogue/changes", "since": None})
        scan = await till.reply("basket/add", basket_id=str(uuid.uuid4()),
                                line_id=str(uuid.uuid4()), barcode="2000001000014")
        assert scan["success"], scan
        release.set()
        page = await till.receive_result()
        assert page["id"] == 1000 and page["success"] and page["result"]["full"]
