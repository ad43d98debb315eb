"""Bad input gets a specific error, changes nothing, and the connection keeps working."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aiohttp
import pytest
from conftest import NodeUnderTest, Till, node_of

BAGUETTE = "2000001000014"


async def journal_size(node: NodeUnderTest) -> int:
    row = await node_of(node).journal.read_one("SELECT COUNT(*) AS n FROM events")
    return row["n"]


async def open_basket(till: Till) -> str:
    basket = str(uuid.uuid4())
    await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()), barcode=BAGUETTE)
    return basket


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("this is not json", "invalid_json"),
        ("[1, 2, 3]", "invalid_message"),
        ('{"type": "basket/get"}', "invalid_message"),
        ('{"id": "7", "type": "basket/get"}', "invalid_message"),
        ('{"id": 7}', "invalid_message"),
        ('{"id": 7, "type": "sale/refund_everything"}', "unknown_command"),
        ('{"id": 7, "type": "basket/add", "line_id": "l1", "barcode": "1"}', "missing_field"),
        ('{"id": 7, "type": "basket/add", "basket_id": 5, "line_id": "l", "barcode": "1"}',
         "invalid_field"),
        ('{"id": 7, "type": "basket/add", "basket_id": "b", "line_id": "l"}', "invalid_field"),
        ('{"id": 7, "type": "basket/add", "basket_id": "b", "line_id": "l", '
         '"barcode": "0000000000000"}', "unknown_barcode"),
        ('{"id": 7, "type": "basket/add", "basket_id": "b", "line_id": "l", '
         f'"barcode": "{BAGUETTE}", "quantity": -2}}', "invalid_field"),
        ('{"id": 7, "type": "basket/add", "basket_id": "b", "line_id": "l", '
         f'"barcode": "{BAGUETTE}", "quantity": 1.5}}', "invalid_field"),
        ('{"id": 7, "type": "basket/add", "basket_id": "b", "line_id": "l", '
         f'"barcode": "{BAGUETTE}", "quantity": true}}', "invalid_field"),
        ('{"id": 7, "type": "sale/complete", "basket_id": "b", '
         '"tenders": [{"method": "cash", "amount": 0}]}', "invalid_field"),
        ('{"id": 7, "type": "sale/complete", "basket_id": "b", '
         '"tenders": [{"method": "bitcoin", "amount": 5}]}', "invalid_field"),
        ('{"id": 7, "type": "sale/complete", "basket_id": "nope", '
         '"tenders": [{"method": "cash", "amount": 5}]}', "no_open_basket"),
    ],
)
async def test_bad_messages_get_specific_errors(node: NodeUnderTest, raw: str, code: str) -> None:
    async with node.till() as till:
        before = await journal_size(node)
        reply = await till.send_raw(raw)
        assert reply["success"] is False
        assert reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        assert await journal_size(node) == before
        # The connection still works.
        assert (await till.call("catalogue/lookup", barcode=BAGUETTE))["price"] == 120


async def test_errors_name_the_field_at_fault(node: NodeUnderTest) -> None:
    async with node.till() as till:
        reply = await till.reply("basket/add", basket_id="b", line_id="l", barcode=BAGUETTE,
                                 quantity=-2)
    assert reply["error"] == {
        "code": "invalid_field", "message": "'quantity' must be at least 1, got -2"
    }


@pytest.mark.parametrize(
    ("tenders", "code"),
    [
        ([{"method": "cash", "amount": 100}], "payment_short"),
        ([{"method": "card", "amount": 100, "reference": "R1"},
          {"method": "cash", "amount": 10}], "payment_short"),
        ([{"method": "card", "amount": 500, "reference": "R1"}], "card_overpay"),
        ([{"method": "meal_voucher", "kind": "paper", "amount": 3000}], "meal_voucher_cap"),
        ([{"method": "cheque", "amount": 200}], "tender_overpay"),
        ([{"method": "meal_voucher", "amount": 120}], "invalid_field"),
        ([{"method": "cash", "amount": -120}], "invalid_field"),
    ],
)
async def test_a_payment_that_does_not_settle_changes_nothing(
    node: NodeUnderTest, tenders: list[dict], code: str
) -> None:
    async with node.till() as till:
        basket = await open_basket(till)
        before = await journal_size(node)
        reply = await till.reply("sale/complete", basket_id=basket, tenders=tenders)
        assert reply["error"]["code"] == code
        assert await journal_size(node) == before
        assert (await till.call("basket/get"))["id"] == basket
        sale = await till.call("sale/complete", basket_id=basket,
                               tenders=[{"method": "cash", "amount": 120}])
        assert sale["change"] == 0


async def test_an_empty_basket_cannot_be_sold(node: NodeUnderTest) -> None:
    async with node.till() as till:
        basket = await open_basket(till)
        line = (await till.call("basket/get"))["lines"][0]["id"]
        await till.call("basket/remove_line", basket_id=basket, line_id=line)
        reply = await till.reply("sale/complete", basket_id=basket,
                                 tenders=[{"method": "cash", "amount": 100}])
    assert reply["error"]["code"] == "empty_basket"


async def test_another_basket_id_is_refused_while_one_is_open(node: NodeUnderTest) -> None:
    async with node.till() as till:
        await open_basket(till)
        reply = await till.reply("basket/add", basket_id=str(uuid.uuid4()), line_id="x",
                                 barcode=BAGUETTE)
    assert reply["error"]["code"] == "basket_mismatch"


async def test_nothing_works_before_auth_and_login(node: NodeUnderTest) -> None:
    async with node.session.ws_connect(f"{node.url}/api/ws") as ws:
        till = Till(ws)
        assert (await till.reply("basket/get"))["error"]["code"] == "unauthorized"
        assert (await till.reply("auth", token="forged"))["error"]["code"] == "invalid_token"
        await till.call("auth", token=await node.pair())
        assert (await till.reply("basket/get"))["error"]["code"] == "not_logged_in"
        wrong = await till.reply("login", cashier_id="alice", pin="0000")
        assert wrong["error"]["code"] == "invalid_pin"
        await till.call("login", cashier_id="alice", pin="1234")
        assert await till.call("basket/get") is None


async def test_wrong_pins_lock_the_till_for_a_while(node: NodeUnderTest) -> None:
    async with node.till(cashier=None) as till:
        codes = [
            (await till.reply("login", cashier_id="alice", pin="9999"))["error"]["code"]
            for _ in range(6)
        ]
        locked = await till.reply("login", cashier_id="alice", pin="1234")
    assert codes == ["invalid_pin"] * 5 + ["too_many_attempts"]
    assert locked["error"]["code"] == "too_many_attempts"


async def test_a_10_mb_message_closes_the_connection_cleanly(node: NodeUnderTest) -> None:
    async with node.till() as till:
        before = await journal_size(node)
        huge = '{"id": 9, "type": "catalogue/search", "query": "' + "x" * 10_000_000 + '"}'
        # The node closes as soon as it reads the frame's length, so the rest
        # of our send may meet a closed socket: read its close frame meanwhile.
        closing = asyncio.create_task(till.ws.receive(timeout=10))
        with contextlib.suppress(ConnectionError):
            await till.ws.send_str(huge)
        message = await closing
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        assert till.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert await journal_size(node) == before
    async with node.till() as again:  # the node carries on
        assert (await again.call("catalogue/lookup", barcode=BAGUETTE))["price"] == 120


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"not json", 400, "invalid_request"),
        (b'{"code": "12", "name": "x"}', 400, "invalid_request"),
        (b'{"code": "123456", "name": "x"}', 403, "invalid_pairing_code"),
    ],
)
async def test_pairing_refuses_bad_codes(
    node: NodeUnderTest, payload: bytes, status: int, code: str
) -> None:
    async with node.session.post(f"{node.url}/api/pair", data=payload) as response:
        assert response.status == status
        assert (await response.json())["error"]["code"] == code
    assert await node_of(node).journal.read_all("SELECT * FROM tills") == []


async def test_a_pairing_code_works_once(node: NodeUnderTest) -> None:
    from edge.selling.tills import create_pairing_code

    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    results = []
    for _ in range(2):
        async with node.session.post(f"{node.url}/api/pair", json={"code": code}) as response:
            results.append(response.status)
    assert results == [200, 403]


async def test_guessing_pairing_codes_is_throttled(node: NodeUnderTest) -> None:
    statuses = []
    for guess in range(12):
        async with node.session.post(
            f"{node.url}/api/pair", json={"code": f"{guess:06d}"}
        ) as response:
            statuses.append(response.status)
    assert statuses[:10] == [403] * 10
    assert statuses[10:] == [429, 429]
