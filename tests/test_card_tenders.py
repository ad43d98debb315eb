"""A sale or a refund paid through the terminal: the sale takes a card payment only as the
terminal made it (this till's, this basket's, approved, for what it took) and records its
authorisation and masked card; the rest of a partial authorisation is paid otherwise."""

from __future__ import annotations

import uuid
from pathlib import Path

from conftest import Till
from fake_terminal import AUTHORISATION, FakeTerminal
from test_card_payments import basket, fails, terminal_node, until_pushed


async def pay(till: Till, basket_id: str, amount: int, status: str,
              refund: bool = False, **sale: str) -> dict:  # type: ignore[type-arg]
    payment_id = str(uuid.uuid4())
    where = {"refund_id": basket_id} if refund else {"basket_id": basket_id}
    await till.call("payment/card", payment_id=payment_id, amount=amount, **where, **sale)
    return await until_pushed(till, payment_id, status)


async def test_a_sale_takes_its_card_payment_once_as_the_terminal_made_it(tmp_path: Path) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        paid = await pay(till, basket_id, total, "approved")
        card = {"method": "card", "amount": total, "payment_id": paid["payment_id"]}

        # Another amount, or a payment nobody made: refused, nothing sold.
        await fails("card_payment_mismatch", till, "sale/complete", basket_id=basket_id,
                    tenders=[{**card, "amount": total - 1}, {"method": "cash", "amount": 1}])
        await fails("unknown_payment", till, "sale/complete", basket_id=basket_id,
                    tenders=[{**card, "payment_id": str(uuid.uuid4())}])

        sale = await till.call("sale/complete", basket_id=basket_id, tenders=[card])
        assert sale["tenders"] == [{"method": "card", "amount": total,
                                    "payment_id": paid["payment_id"], "entry": "terminal",
                                    "authorisation": AUTHORISATION, "last4": "1234",
                                    "application": "CB", "read_mode": "C"}]
        again = await till.call("sale/complete", basket_id=basket_id, tenders=[card])
        assert again["id"] == sale["id"] and again["hash"] == sale["hash"]
        # Spent: another basket cannot use it.
        second, total = await basket(till)
        await fails("card_payment_mismatch", till, "sale/complete", basket_id=second,
                    tenders=[card])

        # Declined: not a tender. Partial: what the terminal took, the rest in cash.
        terminal.script = "declined-05"
        declined = await pay(till, second, total, "declined")
        await fails("card_payment_not_approved", till, "sale/complete", basket_id=second,
                    tenders=[{"method": "card", "amount": total,
                              "payment_id": declined["payment_id"]}])
        terminal.script = "partial"
        partial = await pay(till, second, total, "approved")
        taken = partial["authorised"]
        assert 0 < taken < total
        sold = await till.call("sale/complete", basket_id=second, tenders=[
            {"method": "card", "amount": taken, "payment_id": partial["payment_id"]},
            {"method": "cash", "amount": total - taken}])
        assert [t["method"] for t in sold["tenders"]] == ["card", "cash"]

        # The terminal unreachable: the standalone way, keyed from the slip as before.
        third, total = await basket(till)
        by_hand = await till.call("sale/complete", basket_id=third, tenders=[
            {"method": "card", "amount": total, "reference": "slip 0042"}])
        assert by_hand["tenders"] == [{"method": "card", "amount": total,
                                       "reference": "slip 0042"}]


async def test_a_refund_goes_back_through_the_terminal_and_an_offline_one_is_flagged(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        paid = await pay(till, basket_id, total, "approved")
        sale = await till.call("sale/complete", basket_id=basket_id, tenders=[
            {"method": "card", "amount": total, "payment_id": paid["payment_id"]}])
        line = sale["lines"][0]

        refund_id = str(uuid.uuid4())
        back = await pay(till, refund_id, line["total"], "approved", refund=True,
                         sale_id=sale["id"])
        assert dict(terminal.requests[-1])["CD"] == "1"
        # A sale's payment is no refund's, and a refund's is no sale's.
        await fails("card_payment_mismatch", till, "sale/refund", refund_id=refund_id,
                    reason="cassé", sale_id=sale["id"],
                    lines=[{"line_id": line["id"], "quantity": line["quantity"]}],
                    tenders=[{"method": "card", "amount": -line["total"],
                              "payment_id": paid["payment_id"]}])
        # Given back for this sale: it refunds no other one.
        cash_basket, cash_total = await basket(till)
        other = await till.call("sale/complete", basket_id=cash_basket,
                                tenders=[{"method": "cash", "amount": cash_total}])
        same = next(ln for ln in other["lines"] if ln["product_id"] == line["product_id"])
        await fails("card_payment_mismatch", till, "sale/refund", refund_id=refund_id,
                    reason="cassé", sale_id=other["id"],
                    lines=[{"line_id": same["id"], "quantity": same["quantity"]}],
                    tenders=[{"method": "card", "amount": -same["total"],
                              "payment_id": back["payment_id"]}],
                    approval={"manager": "bruno", "pin": "567890"})
        refunded = await till.call(
            "sale/refund", refund_id=refund_id, reason="cassé", sale_id=sale["id"],
            lines=[{"line_id": line["id"], "quantity": line["quantity"]}],
            tenders=[{"method": "card", "amount": -line["total"],
                      "payment_id": back["payment_id"]}])
        [tender] = refunded["tenders"]
        assert tender["entry"] == "terminal" and tender["authorisation"] == AUTHORISATION

        # Recorded afterwards with a payment this node does not hold: kept, and flagged.
        offline = {"id": f"{uuid.uuid4()}@{sale['till']}", "receipt_no": 900,
                   "cashier": "alice", "time": sale["time"], "lines": [
                       {k: line[k] for k in ("id", "product_id", "name", "unit_price",
                                             "vat_rate", "quantity", "barcode")}],
                   "tenders": [{"method": "card", "amount": line["total"],
                                "payment_id": str(uuid.uuid4())}],
                   "totals": {"total": line["total"], "items": line["quantity"],
                              "vat": sale["totals"]["vat"][:1]}}
        recorded = await till.call("sale/record", sale=offline)
        assert "card_payment_unverified" in recorded["flags"]
        assert recorded["tenders"][0]["payment_id"] == offline["tenders"][0]["payment_id"]


async def test_a_basket_the_card_paid_for_cannot_be_voided_or_cut_below_it(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        paid = await pay(till, basket_id, total, "approved")
        lines = (await till.call("basket/get"))["lines"]
        # The customer paid for it: voided or cut, the money would belong to no sale.
        await fails("card_payment_taken", till, "basket/clear", basket_id=basket_id)
        await fails("card_payment_taken", till, "basket/remove_line", basket_id=basket_id,
                    line_id=lines[0]["id"])
        await fails("card_payment_taken", till, "basket/discount", basket_id=basket_id,
                    discount={"kind": "percent", "value": 500, "reason": "abîmé"})
        # More may be added; the rest is paid otherwise.
        added = await till.call("basket/add", basket_id=basket_id, line_id=str(uuid.uuid4()),
                                barcode=lines[0]["barcode"])
        more = added["totals"]["total"] - total
        sale = await till.call("sale/complete", basket_id=basket_id, tenders=[
            {"method": "card", "amount": total, "payment_id": paid["payment_id"]},
            {"method": "cash", "amount": more}])
        assert sale["totals"]["total"] == total + more


async def test_a_basket_taken_over_after_its_card_was_charged_is_sold_with_that_payment(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as first:
        basket_id, total = await basket(first)
        paid = await pay(first, basket_id, total, "approved")
        # The first till dies before selling it; a manager takes the basket over elsewhere.
        async with node.till(cashier="bruno", pin="567890") as second:
            await second.call("basket/take_over", basket_id=basket_id, force=True)
            await fails("card_payment_taken", second, "sale/complete", basket_id=basket_id,
                        tenders=[{"method": "cash", "amount": total}])
            sale = await second.call("sale/complete", basket_id=basket_id, tenders=[
                {"method": "card", "amount": total, "payment_id": paid["payment_id"]}])
            assert sale["tenders"][0]["payment_id"] == paid["payment_id"]
            assert sale["tenders"][0]["entry"] == "terminal"
