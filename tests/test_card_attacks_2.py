"""Card payments attacked again (h49): a busy till, two tabs, a late answer, a failover.

The node must never sell a basket without a card payment that took money for it:
a second tab of the till, or a till that gave up on the payment's dialog, paying cash
while the terminal charges the card would charge the customer twice (HIGH). The
browser till's payment logic (web/card-terminal.js) must follow a payment whose
outcome it only guessed (its own 30 s give-up, a node's "not taken") until the node
says how it ended, never leave the cashier stuck on a slip nobody can record, and
take back a payment the node names when it refuses a sale without it.

One in-process node and its fake terminal for the node's rules; one chromium page,
web/ served from disk, for card-terminal.js driven by a fake node and clock.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from conftest import Till
from fake_terminal import FakeTerminal
from test_card_payments import BARCODES, basket, fails, terminal_node, until_pushed
from test_pricing_vectors import served_web_page


async def test_a_basket_is_never_sold_without_the_card_payment_that_took_money_for_it(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("hold") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        payment_id = str(uuid.uuid4())
        await till.call("payment/card", payment_id=payment_id, amount=total,
                        basket_id=basket_id)
        await until_pushed(till, payment_id, "started")
        cash = [{"method": "cash", "amount": total}]
        # The customer is typing the PIN; a second tab of this till (or a till whose
        # dialog was lost) pays the basket in cash: the card would be charged for nothing.
        await fails("card_payment_pending", till, "sale/complete", basket_id=basket_id,
                    tenders=cash)
        terminal.release()
        paid = await until_pushed(till, payment_id, "approved")
        refused = await till.reply("sale/complete", basket_id=basket_id, tenders=cash)
        assert refused["error"]["code"] == "card_payment_taken", refused
        assert refused["error"]["data"]["payment_id"] == payment_id  # the till takes it back
        card = {"method": "card", "amount": paid["authorised"], "payment_id": payment_id}
        sold = await till.call("sale/complete", basket_id=basket_id, tenders=[card])
        assert [t["payment_id"] for t in sold["tenders"]] == [payment_id]

        # Offline, the money changed hands: a sale recorded without the card payment its
        # basket took is kept, and flagged; one that names it is not.
        await offline_sales_flag_only_a_missing_card(till, terminal)


async def offline_sales_flag_only_a_missing_card(till: Till, terminal: FakeTerminal) -> None:
    terminal.script = "approved"
    flags = {}
    for receipt_no, named in ((801, False), (802, True)):
        basket_id = str(uuid.uuid4())
        for barcode in BARCODES[:2]:
            basket_now = await till.call("basket/add", basket_id=basket_id,
                                         line_id=str(uuid.uuid4()), barcode=barcode)
        total = basket_now["totals"]["total"]
        payment_id = str(uuid.uuid4())
        await till.call("payment/card", payment_id=payment_id, amount=total,
                        basket_id=basket_id)
        await until_pushed(till, payment_id, "approved")
        tender = {"method": "card", "amount": total, "payment_id": payment_id} if named \
            else {"method": "cash", "amount": total}
        sale = {"id": f"{basket_id}@{basket_now['till']}", "basket_id": basket_id,
                "receipt_no": receipt_no, "cashier": "alice", "time": "2026-11-25T10:42:07.123Z",
                "lines": [{k: line[k] for k in LINE_FIELDS} for line in basket_now["lines"]],
                "tenders": [tender],
                "totals": {k: basket_now["totals"][k] for k in ("total", "items", "vat")}}
        recorded = await till.call("sale/record", sale=sale)
        flags[named] = "card_payment_unverified" in recorded["flags"]
        if named:
            assert recorded["tenders"][0]["entry"] == "terminal"
    assert flags == {False: True, True: False}


LINE_FIELDS = ("id", "product_id", "name", "unit_price", "vat_rate", "quantity", "barcode")


# The till's payment logic against a fake node and clock: what it made of each scenario.
SCENARIOS = (Path(__file__).resolve().parent / "card_attacks_2_scenarios.js").read_text()


async def test_the_till_follows_a_guessed_card_outcome_until_the_node_says_how_it_ended() -> None:
    async with served_web_page() as page:
        out = await page.evaluate(SCENARIOS)
    assert out["late"] == {"gaveUp": "unknown", "polled": "approved", "tender": {
        "method": "card", "amount": 500, "payment_id": "p1", "authorisation": "A1",
        "last4": "1234"}}, out
    assert out["settledLate"] == "approved", out
    assert out["neverKnownNo"] == {"asked": "unknown", "phase": "declined", "tender": None}, out
    assert out["neverKnownYes"] == {"asked": "unknown", "phase": "approved", "tender": {
        "method": "card", "amount": 500, "reference": "SLIP42"}}, out
    assert out["notTaken"] == ["unreachable", "waiting", "approved"], out
    assert out["adopt"] == [["approved", {"method": "card", "amount": 300, "payment_id": "p1",
                                          "authorisation": "A1", "last4": "1234"}]], out
