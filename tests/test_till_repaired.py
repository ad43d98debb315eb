"""A till paired again sends the sales it made offline under the code it had before.

A browser till keeps the sales it completed with no node answering under the
till code it had (web/offline.js). Paired again (its token revoked while it
sold offline, or store IT pairing it anew), it gets a new code, and the node
refuses a sale whose id names another till's code: before, those sales were
never sent anywhere. Now the pairing request carries the till's earlier
tokens; each one this store gave, revoked or not, proves the till was that
one, and the new till may send that code's unsent sales, recorded as that
code's sales, once (docs/protocol.md, "Paired again"). A made-up or another
store's token proves nothing; a till never sends the sales of a code it did
not prove.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import CommandFailed, NodeUnderTest, Till, free_port, node_of
from headoffice_support import wait_for
from playwright.async_api import Page, Request, Route, async_playwright, expect
from test_offline_and_takeover import BAGUETTE, ESPRESSO, offline_sale
from test_pricing_vectors import CHROMIUM_ARGS
from test_refunds import made_elsewhere
from test_till_catalogue_copy import Link, on_sale
from test_till_offline import log_in, pay_cash, scan
from test_till_refunds import find_receipt, refund, refund_line
from test_till_store_change import STORE_B, pairing_code, store_node

from edge.selling import tills
from edge.selling.tills import create_pairing_code, digest


def sale_of(code: str, receipt_no: int) -> dict[str, Any]:
    """A sale the till made offline as till `code` (its id `<basket>@<code>`)."""
    sale = offline_sale(receipt_no, [(BAGUETTE, 1), (ESPRESSO, 1)], 300)
    basket = str(uuid.uuid4())
    return {**sale, "id": f"{basket}@{code}", "basket_id": basket}


async def pair(session: aiohttp.ClientSession, url: str, data_dir: Any,
               previous: list[str] | None = None) -> dict[str, Any]:
    """`POST /api/pair` with a fresh code (and the till's earlier tokens): the answer."""
    payload: dict[str, Any] = {"code": create_pairing_code(data_dir / "edge.sqlite3"),
                               "name": "Caisse 1"}
    if previous is not None:
        payload["previous"] = previous
    async with session.post(f"{url}/api/pair", json=payload) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def revoke(node: NodeUnderTest, code: str) -> None:
    """`edge tills revoke CODE`, as the running node does it."""
    await node_of(node).journal.write(lambda tx: tills.revoke(tx, code))


async def test_a_till_paired_again_sends_its_old_codes_sales_once(node: NodeUnderTest) -> None:
    first = await pair(node.session, node.url, node.data_dir)
    old = first["till"]["code"]
    # Sold offline as the old till; one of those sales reached the node before the till
    # was revoked, the other did not.
    sent, waiting = sale_of(old, 1), sale_of(old, 2)
    async with node.till(first["token"]) as till:
        already = await till.call("sale/record", sale=sent)
    await revoke(node, old)

    again = await pair(node.session, node.url, node.data_dir, previous=[first["token"]])
    new = again["till"]["code"]
    assert new != old and again["till"]["takes_over"] == [old]
    async with node.till(again["token"]) as till:
        auth = await till.call("auth", token=again["token"])
        assert auth["till"] == {"code": new, "name": "Caisse 1", "takes_over": [old]}
        await till.call("login", cashier_id="alice", pin="1234")
        recorded = await till.call("sale/record", sale=waiting)
        # A resend (the answer lost), and the sale the old till had already sent: the same.
        assert await till.call("sale/record", sale=waiting) == recorded
        assert await till.call("sale/record", sale=sent) == already
        # Its own sales carry its own code, as always.
        mine = await till.call("sale/record", sale=sale_of(new, 1))

    assert recorded["till"] == old and recorded["sent_by"] == new
    assert recorded["receipt_number"] == f"{old}-000002" and recorded["flags"] == []
    assert mine["till"] == new and "sent_by" not in mine
    rows = await node_of(node).journal.read_all(
        "SELECT id, till, receipt_no FROM sales ORDER BY till, receipt_no")
    assert [tuple(row) for row in rows] == [
        (sent["id"], old, 1), (waiting["id"], old, 2), (mine["id"], new, 1)]
    events = await node_of(node).journal.read_all(
        "SELECT COUNT(*) AS n FROM events WHERE type = 'sale_completed'")
    assert events[0]["n"] == 3


async def test_a_till_paired_again_sends_its_old_codes_refunds_once(
        node: NodeUnderTest) -> None:
    """A refund's id does not name its till: the till says which earlier code made it."""
    first = await pair(node.session, node.url, node.data_dir)
    other = await pair(node.session, node.url, node.data_dir)
    old, others = first["till"]["code"], other["till"]["code"]
    sale = sale_of(old, 1)
    async with node.till(first["token"]) as till:
        await till.call("sale/record", sale=sale)
    await revoke(node, old)
    again = await pair(node.session, node.url, node.data_dir, previous=[first["token"]])
    new = again["till"]["code"]
    baguette = {"line_id": sale["lines"][0]["id"], "product_id": BAGUETTE["product_id"],
                "name": BAGUETTE["name"], "vat_rate": 550, "unit_price": 120, "quantity": 1,
                "amount": 120}
    made = made_elsewhere(sale_id=sale["id"], receipt_no=2, lines=[baguette],
                          tenders=[{"method": "cash", "amount": -120}])
    async with node.till(again["token"]) as till:
        await till.call("login", cashier_id="alice", pin="1234")
        # A code it never proved (another till's, or made up): refused, nothing recorded.
        for code in (others, "T99"):
            with pytest.raises(CommandFailed) as refused:
                await till.call("sale/record_refund", refund=made, till=code)
            assert refused.value.code == "invalid_field"
            assert f"is not till {code!r}" in str(refused.value)
        recorded = await till.call("sale/record_refund", refund=made, till=old)
        # A resend (the answer lost): the same refund.
        assert await till.call("sale/record_refund", refund=made, till=old) == recorded
    assert recorded["till"] == old and recorded["sent_by"] == new
    assert recorded["receipt_number"] == f"{old}-000002" and recorded["refund_of"] == sale["id"]
    rows = await node_of(node).journal.read_all(
        "SELECT till, receipt_no FROM sales ORDER BY till, receipt_no")
    assert [tuple(row) for row in rows] == [(old, 1), (old, 2)]
    events = await node_of(node).journal.read_all(
        "SELECT COUNT(*) AS n FROM events WHERE type = 'sale_refunded'")
    assert events[0]["n"] == 1


async def test_a_till_sends_only_the_codes_it_proved(node: NodeUnderTest) -> None:
    first = await pair(node.session, node.url, node.data_dir)
    other = await pair(node.session, node.url, node.data_dir)
    old, others = first["till"]["code"], other["till"]["code"]
    # Tokens that prove nothing: the digest the journal holds (any peer or head office
    # reads it), a made-up one, another store's (unknown here).
    nothing = await pair(node.session, node.url, node.data_dir,
                         previous=[digest(first["token"]), "made-up", "x" * 256])
    assert "takes_over" not in nothing["till"]
    async with node.till(nothing["token"]) as till:
        assert "takes_over" not in (await till.call("auth", token=nothing["token"]))["till"]
        await till.call("login", cashier_id="alice", pin="1234")
        for code in (old, others):
            with pytest.raises(CommandFailed) as refused:
                await till.call("sale/record", sale=sale_of(code, 1))
            assert refused.value.code == "invalid_field"

    # Proving one till gives that till's code only, not the other's.
    again = await pair(node.session, node.url, node.data_dir, previous=[first["token"]])
    async with node.till(again["token"]) as till:
        with pytest.raises(CommandFailed) as refused:
            await till.call("sale/record", sale=sale_of(others, 1))
        assert refused.value.code == "invalid_field"

    # Malformed proofs are refused, and change nothing (the code stays usable).
    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    for previous in ("a token", [1], ["x" * 257], ["t"] * 9):
        async with node.session.post(f"{node.url}/api/pair", json={
                "code": code, "previous": previous}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_request"
    async with node.session.post(f"{node.url}/api/pair", json={"code": code}) as response:
        assert response.status == 200
    count = await node_of(node).journal.read_all("SELECT COUNT(*) AS n FROM sales")
    assert count[0]["n"] == 0


async def test_paired_again_twice_and_an_answer_lost(node: NodeUnderTest) -> None:
    """The pairing answer lost: the till pairs once more with the same proof. Paired again
    from the second till: it takes over both earlier codes. Each sale is recorded once."""
    first = await pair(node.session, node.url, node.data_dir)
    old = first["till"]["code"]
    lost = await pair(node.session, node.url, node.data_dir, previous=[first["token"]])
    again = await pair(node.session, node.url, node.data_dir, previous=[first["token"]])
    assert lost["till"]["takes_over"] == again["till"]["takes_over"] == [old]
    middle = again["till"]["code"]
    sale = sale_of(old, 1)
    async with node.till(again["token"]) as till:
        recorded = await till.call("sale/record", sale=sale)
    third = await pair(node.session, node.url, node.data_dir, previous=[again["token"]])
    assert third["till"]["takes_over"] == [middle, old]
    async with node.till(third["token"]) as till:
        assert await till.call("sale/record", sale=sale) == recorded
        later = await till.call("sale/record", sale=sale_of(middle, 1))
    assert later["till"] == middle and later["sent_by"] == third["till"]["code"]
    count = await node_of(node).journal.read_all("SELECT COUNT(*) AS n FROM sales")
    assert count[0]["n"] == 2


async def test_two_nodes_record_a_taken_over_sale_once(store_nodes: Any) -> None:
    """Paired again on node A, the till sends an old sale there, then (A's answer lost)
    through node B: one sale on both nodes."""
    a, b = store_nodes(2)
    async with aiohttp.ClientSession() as session:
        first = await pair(session, a.url, a.data_dir)
        old = first["till"]["code"]
        again = await pair(session, a.url, a.data_dir, previous=[first["token"]])
        sale = sale_of(old, 1)
        async with session.ws_connect(f"{a.url}/api/ws") as ws_a, \
                session.ws_connect(f"{b.url}/api/ws") as ws_b:
            on_a, on_b = Till(ws_a), Till(ws_b)
            await on_a.call("auth", token=again["token"])
            await on_a.call("login", cashier_id="alice", pin="1234")
            recorded = await on_a.call("sale/record", sale=sale)

            async def auth_b() -> bool:
                return (await on_b.reply("auth", token=again["token"]))["success"]

            await wait_for(auth_b, 20, "the till paired again known on b")
            await on_b.call("login", cashier_id="alice", pin="1234")
            resent = await on_b.call("sale/record", sale=sale)
            assert resent["till"] == old and resent["id"] == recorded["id"]

            def one_sale_everywhere() -> bool:
                counts = []
                for node in (a, b):
                    with sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro",
                                         uri=True) as db:
                        counts.append(db.execute(
                            "SELECT COUNT(*), MIN(till) FROM sales WHERE id = ?",
                            (sale["id"],)).fetchone())
                return counts == [(1, old), (1, old)]

            await wait_for(one_sale_everywhere, 20, "the sale on both nodes, once")


def node_sales(node: NodeUnderTest) -> list[dict[str, Any]]:
    with sqlite3.connect(node.data_dir / "edge.sqlite3") as db:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM sales")]


async def sell_offline(page: Page, link: Link) -> None:
    """No node answers: one baguette sold, kept in the till's outbox."""
    status = page.locator("#status")
    await link.cut()
    await expect(status).to_have_attribute("data-state", "offline")
    await scan(page, BAGUETTE["barcode"])
    await pay_cash(page, "2")
    await page.click("#new-sale")
    await expect(status).to_have_attribute("data-waiting-sales", "1")


async def test_a_browser_till_revoked_while_offline_sends_its_sale_once_paired_again(
        tmp_path: Path) -> None:
    """The till sells offline, store IT revokes it meanwhile, and pairs it again: the sale
    reaches the store under the old code. Then, paired in another store with a sale of
    the first waiting, it shows that sale plainly and shows that store no token."""
    port = free_port()
    link = Link()
    pairings: list[dict[str, Any]] = []

    async def spy_on_pairing(route: Route, request: Request) -> None:
        pairings.append(json.loads(request.post_data or "{}"))
        await route.continue_()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        page = await browser.new_page(locale="fr-FR")
        await page.route_web_socket(re.compile(r".*/api/ws$"), link.route)
        await page.route("**/api/pair", spy_on_pairing)
        status = page.locator("#status")
        async with store_node(tmp_path / "a", port, "demo-boulangerie") as node_a:
            await page.goto(f"{node_a.url}/#pair={pairing_code(node_a)}")
            await log_in(page)
            await expect(status).to_have_attribute("data-catalogue", str(len(on_sale(node_a))))
            old = (await node_of(node_a).journal.read_one("SELECT code FROM tills"))["code"]

            # No node answers: a sale made offline waits on the till, as till `old`, and
            # so does a refund of it (a refund's id does not name its till, as a sale's does).
            await sell_offline(page, link)
            await find_receipt(page, f"{old}-000001")
            await refund_line(page, "Baguette").locator('[data-step="1"]').click()
            await refund(page, "Produit défectueux")
            await expect(page.locator("#refund-done-offline")).to_be_visible()
            await page.click("#refund-finish")
            await expect(status).to_have_attribute("data-waiting-sales", "2")

            # Meanwhile store IT revokes the till: back online, the node refuses its token.
            await revoke(node_a, old)
            link.online = True
            await expect(page.locator("#screen-pair")).to_be_visible(timeout=20_000)
            await expect(status).to_have_attribute("data-waiting-sales", "2")

            # Paired again (its token gone from the page: the one kept with its sales is
            # the proof): the sale goes to the store, as the old till's, once. A node of
            # protocol 1 would read past a refund's `till` (as this till's): it waits.
            link.protocol = 1
            await page.goto(f"{node_a.url}/?again#pair={pairing_code(node_a)}")
            await log_in(page)
            await expect(status).to_have_attribute("data-waiting-sales", "1")
            assert len(pairings[-1]["previous"]) == 1
            assert [body["receipt_no"] for body in node_sales(node_a)] == [1]
            # A node of today's protocol: the refund goes too, as the old till's, once.
            link.protocol = None
            await link.cut()
            link.online = True
            await expect(status).to_have_attribute("data-waiting-sales", "0", timeout=20_000)
            sale, refunded = sorted(node_sales(node_a), key=lambda body: body["receipt_no"])
            assert sale["till"] == old and sale["sent_by"] != old
            assert sale["receipt_number"] == f"{old}-000001" and sale["offline"] is True
            assert refunded["till"] == old and refunded["sent_by"] == sale["sent_by"]
            assert refunded["receipt_number"] == f"{old}-000002"
            assert refunded["refund_of"] == sale["id"] and refunded["offline"] is True

            # Another sale offline, as the new till, then the till goes to another store.
            await sell_offline(page, link)
            link.online = True

        async with store_node(tmp_path / "b", port, STORE_B) as node_b:
            await page.goto(f"{node_b.url}/?b#pair={pairing_code(node_b)}")
            await log_in(page)
            await expect(status).to_have_attribute("data-state", "online")
            # Kept, counted and said, never sent to this store, nor its token shown here.
            await expect(status).to_have_attribute("data-waiting-elsewhere", "1")
            await expect(status).to_have_attribute("data-waiting-sales", "1")
            await expect(status).to_contain_text(
                "1 vente du magasin précédent (demo-boulangerie")
            assert "previous" not in pairings[-1]
            assert node_sales(node_b) == []
        await browser.close()
