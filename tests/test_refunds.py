"""Refunds on one node: against a receipt (found by number or QR code), without one (a
manager approves), made offline; never beyond what was sold; never recorded twice."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import CommandFailed, NodeUnderTest, Till
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from signing_support import identity
from test_pricing_property import BASKETS, METHODS, generated
from test_pricing_vectors import served_web_page
from test_selling import BAGUETTE, CROISSANT, ESPRESSO, wait_for_receipt

from edge.config import Config
from edge.devices.receipt import Store, as_text, layout
from edge.journal.store import Journal
from edge.messages import EdgeError
from edge.selling import refund_rules, refunds
from edge.selling.baskets import Seller
from edge.selling.money import price_basket
from edge.status import collect_status, format_status

PAIN_AU_CHOCOLAT = "2000003000012"  # 1.25 EUR, no promotion


def new_id() -> str:
    return str(uuid.uuid4())


def events_in(node: NodeUnderTest) -> int:
    """The node's events but its printer's (a receipt printing goes on by itself)."""
    db = sqlite3.connect(node.data_dir / "edge.sqlite3")
    try:
        return db.execute("SELECT COUNT(*) FROM events WHERE type NOT LIKE 'print%' "
                          "AND type NOT LIKE 'drawer%'").fetchone()[0]
    finally:
        db.close()


async def sell(till: Till, items: list[tuple[str, int]],
               tenders: list[dict[str, Any]]) -> dict[str, Any]:
    basket = new_id()
    for barcode, quantity in items:
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=barcode,
                        quantity=quantity)
    return await till.call("sale/complete", basket_id=basket, tenders=tenders)


async def refused(till: Till, node: NodeUnderTest, type_: str, **args: Any) -> str:
    """The code `type_` is refused with; nothing of it is written."""
    before = events_in(node)
    with pytest.raises(CommandFailed) as refusal:
        await till.call(type_, **args)
    assert events_in(node) == before
    return refusal.value.code


async def test_a_receipt_is_refunded_in_steps_never_beyond_what_it_sold(
    node: NodeUnderTest,
) -> None:
    async with node.till() as till:
        sale = await sell(till, [(BAGUETTE, 3), (ESPRESSO, 1)],
                          [{"method": "cash", "amount": 1000}])
        found = await till.call("sale/find_for_refund", receipt_number=sale["receipt_number"])
        assert found["sale"]["id"] == sale["id"] and found["refunds"] == []
        baguette, espresso = found["sale"]["lines"]
        assert (baguette["refundable"], baguette["refundable_amount"]) == (3, 360)
        by_qr = await till.call("sale/find_for_refund", qr=sale["hash"])
        assert by_qr["sale"]["id"] == sale["id"]

        first_id = new_id()
        first = await till.call("sale/refund", refund_id=first_id, sale_id=sale["id"],
                                lines=[{"line_id": baguette["id"], "quantity": 1}],
                                reason="pain rassis")
        till_code = sale["till"]
        assert first["id"] == f"{first_id}@{till_code}#refund"  # never a sale's id
        assert first["refund_of"] == sale["id"]
        assert first["refund_of_receipt"] == sale["receipt_number"]
        assert first["receipt_no"] == sale["receipt_no"] + 1  # the till's one series
        assert first["totals"] == {"total": -120, "items": 1, "vat": [
            {"rate": 550, "base": -114, "vat": -6, "total": -120}]}
        assert first["tenders"] == [{"method": "cash", "amount": -120}]
        assert first["lines"] == [{
            "line_id": baguette["id"], "product_id": "p0001", "name": "Baguette tradition",
            "vat_rate": 550, "unit_price": 120, "quantity": 1, "amount": 120, "total": -120}]
        receipt = await wait_for_receipt(node.data_dir, first["receipt_number"])
        assert "REMBOURSEMENT" in receipt and f"Ticket d'origine {sale['receipt_number']}" \
            in receipt

        # Sent again (the till never heard back): the same refund, nothing written.
        before = events_in(node)
        again = await till.call("sale/refund", refund_id=first_id, sale_id=sale["id"],
                                lines=[{"line_id": baguette["id"], "quantity": 1}],
                                reason="pain rassis")
        assert again == first and events_in(node) == before

        left = (await till.call("sale/find_for_refund", qr=sale["hash"]))["sale"]["lines"]
        assert [(ln["refunded"], ln["refundable"]) for ln in left] == [(1, 2), (0, 1)]
        assert await refused(till, node, "sale/refund", refund_id=new_id(), sale_id=sale["id"],
                             lines=[{"line_id": baguette["id"], "quantity": 3}],
                             reason="x") == "refund_exceeds_sale"
        rest = await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"], lines=[
            {"line_id": baguette["id"], "quantity": 2}, {"line_id": espresso["id"], "quantity": 1}],
            reason="erreur de caisse")
        assert rest["totals"]["total"] == -390 and rest["receipt_no"] == sale["receipt_no"] + 2
        assert await refused(till, node, "sale/refund", refund_id=new_id(), sale_id=sale["id"],
                             lines=[{"line_id": espresso["id"], "quantity": 1}],
                             reason="x") == "refund_exceeds_sale"
        assert await refused(till, node, "sale/refund", refund_id=new_id(), sale_id=sale["id"],
                             lines=[{"line_id": "no-such-line", "quantity": 1}],
                             reason="x") == "unknown_line"
        # A refund is no sale to refund.
        assert await refused(till, node, "sale/find_for_refund",
                             receipt_number=rest["receipt_number"]) == "refund_of_refund"
        assert await refused(till, node, "sale/refund", refund_id=new_id(), sale_id=rest["id"],
                             lines=[{"line_id": baguette["id"], "quantity": 1}],
                             reason="x") == "refund_of_refund"
        done = await till.call("sale/find_for_refund", receipt_number=sale["receipt_number"])
        assert [ln["refundable"] for ln in done["sale"]["lines"]] == [0, 0]
        assert [r["total"] for r in done["refunds"]] == [-120, -390]
        # The next sale follows the refunds in the till's series.
        after = await sell(till, [(CROISSANT, 1)], [{"method": "cash", "amount": 115}])
        assert after["receipt_no"] == sale["receipt_no"] + 3


async def test_money_goes_back_the_way_it_came_unless_the_till_says(node: NodeUnderTest) -> None:
    async with node.till() as till:
        # Pains au chocolat: no promotion on them (the demo's croissants are 3 for 2).
        sale = await sell(till, [(PAIN_AU_CHOCOLAT, 4)], [
            {"method": "card", "amount": 300, "reference": "TPE-1"},
            {"method": "cash", "amount": 200}])
        line = sale["lines"][0]["id"]
        two = await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                              lines=[{"line_id": line, "quantity": 2}], reason="trop")
        assert two["tenders"] == [{"method": "card", "amount": -250}]
        more = await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                               lines=[{"line_id": line, "quantity": 1}], reason="trop")
        assert more["tenders"] == [{"method": "card", "amount": -50},
                                   {"method": "cash", "amount": -75}]
        assert await refused(till, node, "sale/refund", refund_id=new_id(), sale_id=sale["id"],
                             lines=[{"line_id": line, "quantity": 1}], reason="trop",
                             tenders=[{"method": "cash", "amount": -100}]) \
            == "refund_tenders_mismatch"
        chosen = await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                                 lines=[{"line_id": line, "quantity": 1}], reason="trop",
                                 tenders=[{"method": "cash", "amount": -125}])
        assert chosen["tenders"] == [{"method": "cash", "amount": -125}]


async def test_a_refund_without_receipt_needs_a_managers_pin(node: NodeUnderTest) -> None:
    async with node.till() as till:
        ask = {"refund_id": new_id(), "lines": [{"product_id": "p0002", "quantity": 2}],
               "reason": "ticket perdu"}
        refusal = await refused(till, node, "sale/refund", **ask)
        assert refusal == "manager_required"
        with pytest.raises(CommandFailed) as wrong:
            await till.call("sale/refund", **ask, approval={"manager": "bruno", "pin": "000000"})
        assert wrong.value.code == "invalid_pin"
        with pytest.raises(CommandFailed) as not_a_manager:
            await till.call("sale/refund", **ask, approval={"manager": "alice", "pin": "1234"})
        assert not_a_manager.value.code == "manager_required"
        assert await refused(till, node, "sale/refund", **{**ask, "lines": [
            {"line_id": "x", "quantity": 1}]}, approval={"manager": "bruno", "pin": "567890"}) \
            == "invalid_field"
        done = await till.call("sale/refund", **ask,
                               approval={"manager": "bruno", "pin": "567890"})
        assert done["approved_by"] == "bruno" and done["refund_of"] is None
        assert done["cashier"] == "alice"
        assert done["totals"]["total"] == -230  # today's catalogue price
        assert done["tenders"] == [{"method": "cash", "amount": -230}]
    async with node.till(cashier="bruno", pin="567890") as manager:  # approves by being there
        own = await manager.call("sale/refund", refund_id=new_id(), reason="sans ticket",
                                 lines=[{"product_id": "p0001", "quantity": 1}])
        assert own["approved_by"] == "bruno"


async def test_a_refund_made_offline_is_recorded_and_its_excess_shown(
    node: NodeUnderTest,
) -> None:
    async with node.till() as till:
        sale = await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        line = sale["lines"][0]
        await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                        lines=[{"line_id": line["id"], "quantity": 1}], reason="rassis")
        offline_id = new_id()
        made = {"id": offline_id, "sale_id": sale["id"], "receipt_no": sale["receipt_no"] + 2,
                "cashier": "alice", "time": "2026-11-25T10:42:07.123Z", "reason": "rassis",
                "lines": [{"line_id": line["id"], "product_id": "p0001", "name": line["name"],
                           "vat_rate": 550, "unit_price": 120, "quantity": 1, "amount": 120}],
                "tenders": [{"method": "cash", "amount": -120}],
                "totals": {"total": -120, "items": 1, "vat": [
                    {"rate": 550, "base": -114, "vat": -6, "total": -120}]}}
        recorded = await till.call("sale/record_refund", refund=made)
        assert recorded["flags"] == ["over_refunded"] and recorded["offline"] is True
        assert await till.call("sale/record_refund", refund=made) == recorded
        assert await refused(till, node, "refunds/conflicts") == "manager_required"
    async with node.till(cashier="bruno", pin="567890") as manager:
        (conflict,) = (await manager.call("refunds/conflicts"))["conflicts"]
    assert (conflict["receipt_number"], conflict["sold"], conflict["refunded"]) == (
        sale["receipt_number"], 1, 2)
    assert conflict["excess"] == 1 and len(conflict["refunds"]) == 2
    said = format_status(collect_status(Config(data_dir=node.data_dir)))
    assert f"receipt {sale['receipt_number']}  refunded beyond what it sold: Baguette " \
        "tradition sold 1, refunded 2" in said


def test_a_refund_receipt_says_what_it_refunds() -> None:
    refund = {"refund_of": "b@T01", "refund_of_receipt": "T01-000012", "till": "T01",
              "receipt_number": "T01-000013", "cashier": "alice", "change": 0,
              "time": "2026-11-25T10:42:07.123Z", "hash": "ab" * 32,
              "lines": [refund_rules.refund_line({"id": "l1", "product_id": "p1",
                                                  "name": "Croissant", "vat_rate": 550,
                                                  "unit_price": 115}, 2, 230)],
              "totals": refund_rules.refund_totals([{"vat_rate": 550, "quantity": 2,
                                                     "amount": 230}]),
              "tenders": [{"method": "cash", "amount": -230}]}
    text = as_text(layout(refund, Store("Boulangerie")), 48)
    assert "REMBOURSEMENT" in text and "Ticket d'origine T01-000012" in text
    assert "-2,30 EUR" in text


@given(total=st.integers(0, 100_000), quantity=st.integers(1, 50),
       steps=st.lists(st.integers(1, 50), max_size=8))
def test_a_line_refunded_in_any_steps_gives_back_its_total_at_most(
    total: int, quantity: int, steps: list[int],
) -> None:
    done, back = 0, 0
    for step in steps:
        step = min(step, quantity - done)
        back += refund_rules.line_refund_amount(total, quantity, done, step)
        done += step
        assert back == total * done // quantity  # the cumulative floor, whatever the steps
    assert back <= total
    if done == quantity:
        assert back == total


SOLD = [{"id": f"l{n}", "product_id": f"p{n}", "name": f"P{n}", "unit_price": price,
         "vat_rate": 550, "quantity": quantity, "total": total}
        for n, (price, quantity, total) in enumerate([(120, 3, 333), (115, 1, 100),
                                                      (2000, 450, 900)])]
SOLD[2]["unit"] = "g"  # a weighed line: refunded whole


# Each example opens a journal: few of them, no shrinking (the failure shows the asks).
@settings(max_examples=10, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(asks=st.lists(st.lists(st.tuples(st.sampled_from(["l0", "l1", "l2", "l9"]),
                                        st.integers(1, 4) | st.just(450)),
                              min_size=1, max_size=3), min_size=1, max_size=8))
def test_no_sequence_of_refunds_takes_more_than_a_sale_sold_on_one_node(
    asks: list[list[tuple[str, int]]],
) -> None:
    async def run(folder: Path) -> None:
        journal = Journal(folder / "edge.sqlite3", origin="n1", trust=identity("n1"))
        await journal.open()
        try:
            sale = {"id": "b@T01", "basket_id": "b", "till": "T01", "receipt_no": 1,
                    "receipt_number": "T01-000001", "cashier": "alice", "lines": SOLD,
                    "totals": {"total": 1333, "items": 5, "vat": []},
                    "tenders": [{"method": "cash", "amount": 1333}], "change": 0}
            await journal.write(lambda tx: tx.append("sale_completed", sale))
            given_back = 0
            for ask in asks:
                try:
                    done = await refunds.refund(journal, Seller("T01", "alice"), refunds.RefundAsk(
                        refund_id=str(uuid.uuid4()), reason="r", sale_id="b@T01",
                        lines=[{"line_id": line, "quantity": q} for line, q in ask]))
                except EdgeError:
                    continue
                given_back -= done["totals"]["total"]
                assert sum(t["amount"] for t in done["tenders"]) == done["totals"]["total"]
            rows = await journal.read_all(
                "SELECT line_id, SUM(quantity) AS q, SUM(amount) AS a FROM refund_lines "
                "GROUP BY line_id")
            sold = {line["id"]: line for line in SOLD}
            for row in rows:
                assert row["q"] <= sold[row["line_id"]]["quantity"]
                assert row["a"] <= sold[row["line_id"]]["total"]
            assert given_back == sum(row["a"] for row in rows) <= 1333
        finally:
            await journal.close()

    with tempfile.TemporaryDirectory(prefix="refunds-") as folder:
        asyncio.run(run(Path(folder)))


# --- Sales that took promotions: what the customer keeps is priced, never more than paid ---

def sold_sale(lines: list[dict[str, Any]], offers: list[dict[str, Any]],
              discount: dict[str, Any] | None) -> dict[str, Any]:
    """A sale as the node keeps it: priced lines, the promotions they took, the discount."""
    priced = price_basket(lines, offers, discount)
    sold = [{**line, "gross": row["gross"], "promotion": row["promotion"],
             "promotion_ids": row["promotion_ids"], "discount_amount": row["discount"],
             "basket_share": row["basket_share"], "total": row["total"]}
            for line, row in zip(lines, priced["lines"], strict=True)]
    used = {offer for row in priced["lines"] for offer in row["promotion_ids"]}
    sale: dict[str, Any] = {"id": "s@T01", "lines": sold, "tenders": [],
                            "totals": {"total": priced["total"],
                                       "discounts": priced["discounts"]}}
    if taken := [offer for offer in offers if offer["id"] in used]:
        sale["promotions"] = taken
    if discount is not None:
        sale["discount"] = discount
    return sale


@st.composite
def refund_runs(draw: st.DrawFn) -> tuple[dict[str, Any], list[list[tuple[str, int]]]]:
    """A sale, and refunds of parts of it in turn (each within what is left)."""
    lines, offers, discount = draw(BASKETS)
    sale = sold_sale(lines, offers, discount)
    left = {line["id"]: line["quantity"] for line in sale["lines"]}
    steps = []
    for _ in range(draw(st.integers(0, 4))):
        step = []
        for line in sale["lines"]:
            if left[line["id"]] and draw(st.booleans()):
                weighed = line.get("unit") == "g"
                quantity = left[line["id"]] if weighed else draw(
                    st.integers(1, left[line["id"]]))
                left[line["id"]] -= quantity
                step.append((line["id"], quantity))
        if step:
            steps.append(step)
    # Then everything left, at once.
    if rest := [(line_id, quantity) for line_id, quantity in left.items() if quantity]:
        steps.append(rest)
    return sale, steps


def run_refunds(sale: dict[str, Any], steps: list[list[tuple[str, int]]]) -> list[list[int]]:
    """Each step's amounts, by the node's rules, each refund seeing the ones before it."""
    by_id = {line["id"]: line for line in sale["lines"]}
    refunded: dict[str, int] = {}
    given_back, amounts = 0, []
    for step in steps:
        got = refund_rules.refund_amounts(
            sale, [(by_id[line_id], quantity) for line_id, quantity in step], refunded,
            given_back)
        amounts.append(got)
        given_back += sum(got)
        for line_id, quantity in step:
            refunded[line_id] = refunded.get(line_id, 0) + quantity
    return amounts


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(refund_runs())
def test_partial_refunds_of_a_sale_never_give_back_more_than_it_cost(run: tuple) -> None:
    sale, steps = run
    by_id = {line["id"]: line for line in sale["lines"]}
    given_back, per_line = 0, dict.fromkeys(by_id, 0)
    for step, amounts in zip(steps, run_refunds(sale, steps), strict=True):
        assert all(amount >= 0 for amount in amounts)
        given_back += sum(amounts)
        assert given_back <= sale["totals"]["total"]
        for (line_id, _), amount in zip(step, amounts, strict=True):
            per_line[line_id] += amount
            # Never more than a line's price before promotions (its total if it took none).
            line = by_id[line_id]
            assert per_line[line_id] <= (line["gross"] if "promotions" in sale
                                         else line["total"])
    # Everything came back (the last step): exactly what the sale cost.
    assert given_back == sale["totals"]["total"]


CROISSANT_3_FOR_2 = {"id": "promo-croissants", "name": "3 pour 2", "kind": "n_for_m",
                     "products": ["p0002"], "n": 3, "m": 2}


def croissants(*quantities: int) -> list[dict[str, Any]]:
    return [{"id": f"l{n}", "product_id": "p0002", "name": "Croissant", "unit_price": 115,
             "vat_rate": 550, "quantity": quantity} for n, quantity in enumerate(quantities)]


def test_the_customer_keeping_a_free_croissant_pays_for_it() -> None:
    # Three lines, the third free: the two paid ones back, the one kept costs 1.15.
    sale = sold_sale(croissants(1, 1, 1), [CROISSANT_3_FOR_2], None)
    assert [line["total"] for line in sale["lines"]] == [115, 115, 0]
    assert run_refunds(sale, [[("l0", 1), ("l1", 1)], [("l2", 1)]]) == [[57, 58], [115]]
    # One line of three, two back: the same.
    sale = sold_sale(croissants(3), [CROISSANT_3_FOR_2], None)
    assert run_refunds(sale, [[("l0", 2)], [("l0", 1)]]) == [[115], [115]]
    # The free one back alone: the two kept now cost 2.30, nothing goes back.
    sale = sold_sale(croissants(1, 1, 1), [CROISSANT_3_FOR_2], None)
    assert run_refunds(sale, [[("l2", 1)], [("l0", 1), ("l1", 1)]]) == [[0], [115, 115]]
    # A basket discount of a fixed amount is prorated to what is kept (2.00 off 6.90:
    # the kept three keep 1.00 of it), rounded against the refund.
    sale = sold_sale(croissants(6), [CROISSANT_3_FOR_2],
                     {"kind": "amount", "value": 200, "reason": "geste"})
    assert sale["totals"]["total"] == 260
    assert run_refunds(sale, [[("l0", 3)], [("l0", 3)]]) == [[130], [130]]
    # An older sale (no promotions kept) still prorates its lines.
    older = {**sold_sale(croissants(3), [CROISSANT_3_FOR_2], None)}
    del older["promotions"]
    assert run_refunds(older, [[("l0", 2)]]) == [[153]]


def tender_cases() -> st.SearchStrategy[tuple]:
    tender = st.builds(lambda method, amount: {"method": method[0], "amount": amount,
                                               **({"kind": method[1]} if method[1] else {})},
                       METHODS, st.integers(1, 3000))
    return st.tuples(st.integers(-6000, -1), st.lists(tender, max_size=3),
                     st.lists(tender.map(lambda t: {**t, "amount": -t["amount"]}), max_size=2),
                     st.lists(tender.map(lambda t: {**t, "amount": -t["amount"]}), max_size=3))


def test_money_goes_back_by_the_original_methods_unless_a_manager_says() -> None:
    card_sale = [{"method": "card", "amount": 3000}]
    default = refund_rules.default_tenders(-3000, card_sale, [])
    assert default == [{"method": "card", "amount": -3000}]
    assert refund_rules.tenders_are_default([{"method": "card", "amount": -3000,
                                              "reference": "TPE"}], default)
    assert not refund_rules.tenders_are_default([{"method": "cash", "amount": -3000}], default)
    vouchers = [{"method": "meal_voucher", "kind": "paper", "amount": 2000}]
    default = refund_rules.default_tenders(-1750, vouchers, [])
    assert default == [{"method": "meal_voucher", "kind": "paper", "amount": -1750}]
    with pytest.raises(EdgeError) as refused_cash:
        refund_rules.refuse_meal_vouchers_otherwise([{"method": "cash", "amount": -1750}],
                                                    default)
    assert refused_cash.value.code == "refund_meal_voucher"


# The till's copy of the rules (web/refunds.js), on the same generated sales and tenders.
RUN_REFUNDS = """async ({ runs, tenders }) => {
  const refunds = await import('/refunds.js');
  return {
    runs: runs.map(([sale, steps]) => {
      const byId = Object.fromEntries(sale.lines.map((line) => [line.id, line]));
      const refunded = {};
      let givenBack = 0;
      const amounts = [];
      const left = refunds.leftToRefund(sale, {}, 0);
      for (const step of steps) {
        const asked = step.map(([id, q]) => [byId[id], q]);
        const got = refunds.refundAmounts(sale, asked, refunded, givenBack);
        amounts.push(got);
        for (const amount of got) givenBack += amount;
        for (const [id, q] of step) refunded[id] = (refunded[id] ?? 0) + q;
      }
      return { amounts, left };
    }),
    tenders: tenders.map(([total, original, earlier, given]) => {
      const defaults = refunds.defaultTenders(total, original, earlier);
      return { defaults, same: refunds.tendersAreDefault(given, defaults),
               vouchers: refunds.mealVouchersKeptAsVouchers(given, defaults) };
    }),
  };
}"""


async def test_the_till_refunds_generated_sales_as_the_node_does() -> None:
    runs = generated(refund_runs(), 150)
    tenders = generated(tender_cases(), 100)
    async with served_web_page() as page:
        answers = await page.evaluate(RUN_REFUNDS, {"runs": runs, "tenders": tenders})
    assert sum("promotions" in sale for sale, _ in runs) >= 20
    wrong = [(run, got) for run, got in zip(runs, answers["runs"], strict=True)
             if got != {"amounts": run_refunds(*run),
                        "left": refund_rules.left_to_refund(run[0], {}, 0)}]
    assert wrong == []
    for (total, original, earlier, given_tenders), got in zip(tenders, answers["tenders"],
                                                             strict=True):
        default = refund_rules.default_tenders(total, original, earlier)
        assert got == {"defaults": default,
                       "same": refund_rules.tenders_are_default(given_tenders, default),
                       "vouchers": refund_rules.meal_vouchers_kept_as_vouchers(
                           given_tenders, default)}


async def test_a_kept_promotion_is_paid_for_and_money_goes_back_the_way_it_came(
    node: NodeUnderTest,
) -> None:
    async with node.till() as till:
        # "3 for 2" on croissants (the demo's), rung as three lines: the third is free.
        sale = await sell(till, [(CROISSANT, 1)] * 3, [{"method": "cash", "amount": 230}])
        assert [line["total"] for line in sale["lines"]] == [115, 115, 0]
        paid = [{"line_id": line["id"], "quantity": 1} for line in sale["lines"][:2]]
        back = await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                               lines=paid, reason="pas frais")
        assert back["totals"]["total"] == -115  # the croissant kept costs 1.15
        found = await till.call("sale/find_for_refund", receipt_number=sale["receipt_number"])
        assert found["sale"]["refunded_amount"] == 115
        assert [line["refundable_amount"] for line in found["sale"]["lines"]] == [0, 0, 115]
        last = await till.call("sale/refund", refund_id=new_id(), sale_id=sale["id"],
                               lines=[{"line_id": sale["lines"][2]["id"], "quantity": 1}],
                               reason="pas frais")
        assert back["totals"]["total"] + last["totals"]["total"] == -230  # all of it, no more
        one_line = await sell(till, [(CROISSANT, 3)], [{"method": "cash", "amount": 230}])
        two = await till.call("sale/refund", refund_id=new_id(), sale_id=one_line["id"],
                              lines=[{"line_id": one_line["lines"][0]["id"], "quantity": 2}],
                              reason="pas frais")
        assert two["totals"]["total"] == -115

        # A card sale given back in cash: the cashier's choice, a manager's approval.
        card = await sell(till, [(PAIN_AU_CHOCOLAT, 2)], [{"method": "card", "amount": 250}])
        in_cash = {"refund_id": new_id(), "sale_id": card["id"], "reason": "retour",
                   "lines": [{"line_id": card["lines"][0]["id"], "quantity": 1}],
                   "tenders": [{"method": "cash", "amount": -125}]}
        before = events_in(node)
        asked = (await till.reply("sale/refund", **in_cash))["error"]
        assert (asked["code"], asked["data"]) == ("manager_required", {"approval": "required"})
        assert events_in(node) == before
        approved = await till.call("sale/refund", **in_cash,
                                   approval={"manager": "bruno", "pin": "567890"})
        assert approved["approved_by"] == "bruno" and approved["tenders"] == in_cash["tenders"]
        by_card = await till.call("sale/refund", refund_id=new_id(), sale_id=card["id"],
                                  reason="retour", lines=in_cash["lines"])
        assert by_card["tenders"] == [{"method": "card", "amount": -125}]
        assert "approved_by" not in by_card

        # Meal vouchers go back as meal vouchers, never in cash, whoever approves.
        vouchers = await sell(till, [(PAIN_AU_CHOCOLAT, 2)], [
            {"method": "meal_voucher", "kind": "paper", "amount": 250}])
        line = [{"line_id": vouchers["lines"][0]["id"], "quantity": 1}]
        assert await refused(till, node, "sale/refund", refund_id=new_id(),
                             sale_id=vouchers["id"], reason="retour", lines=line,
                             tenders=[{"method": "cash", "amount": -125}],
                             approval={"manager": "bruno", "pin": "567890"}) \
            == "refund_meal_voucher"
        as_voucher = await till.call("sale/refund", refund_id=new_id(), sale_id=vouchers["id"],
                                     reason="retour", lines=line)
        assert as_voucher["tenders"] == [{"method": "meal_voucher", "kind": "paper",
                                          "amount": -125}]


def made_elsewhere(**fields: Any) -> dict[str, Any]:
    """A refund as a till sends it with sale/record_refund, totals from its lines."""
    lines = fields["lines"]
    return {"id": new_id(), "cashier": "alice", "time": "2026-11-25T10:42:07.123Z",
            "reason": "retour", "totals": refund_rules.refund_totals(lines), **fields}


async def test_a_recorded_refund_is_checked_against_the_sale_and_the_catalogue(
    node: NodeUnderTest,
) -> None:
    async with node.till() as till:
        sale = await sell(till, [(BAGUETTE, 3)], [{"method": "card", "amount": 360}])
        line = sale["lines"][0]
        baguette = {"line_id": line["id"], "product_id": "p0001", "name": line["name"],
                    "vat_rate": 550, "unit_price": 120, "quantity": 1}
        # The rules' amount, but in cash: the cashier's choice, no manager checked it.
        in_cash = await till.call("sale/record_refund", refund=made_elsewhere(
            sale_id=sale["id"], receipt_no=sale["receipt_no"] + 1,
            lines=[{**baguette, "amount": 120}], tenders=[{"method": "cash", "amount": -120}]))
        assert in_cash["flags"] == ["tenders_not_original", "approval_unverified"]

        # 900 EUR claimed back for one 1.20 baguette, to the card (that paid 3.60 of it).
        greedy = await till.call("sale/record_refund", refund=made_elsewhere(
            sale_id=sale["id"], receipt_no=sale["receipt_no"] + 2,
            lines=[{**baguette, "amount": 90000}],
            tenders=[{"method": "card", "amount": -90000}]))
        assert greedy["flags"] == ["amount_differs", "tenders_not_original",
                                   "approval_unverified"]
        # Without a receipt, "acknowledged by another node": no PIN was checked here.
        product = {"product_id": "p0001", "name": "Baguette tradition", "vat_rate": 550,
                   "unit_price": 120, "quantity": 2}
        fair = await till.call("sale/record_refund", offline=False, refund=made_elsewhere(
            receipt_no=sale["receipt_no"] + 3, approved_by="bruno",
            lines=[{**product, "amount": 240}], tenders=[{"method": "cash", "amount": -240}]))
        assert fair["flags"] == ["approval_unverified"] and fair["approved_by"] == "bruno"
        forged = await till.call("sale/record_refund", offline=False, refund=made_elsewhere(
            receipt_no=sale["receipt_no"] + 4, approved_by="bruno",
            lines=[{**product, "amount": 50000}], tenders=[{"method": "cash", "amount": -50000}]))
        assert forged["flags"] == ["price_differs", "approval_unverified"]
    async with node.till(cashier="bruno", pin="567890") as manager:
        (conflict,) = (await manager.call("refunds/conflicts"))["conflicts"]
    assert (conflict["receipt_number"], conflict["sold"], conflict["refunded"]) == (
        sale["receipt_number"], 3, 2)
    assert (conflict["excess"], conflict["amount_refunded"], conflict["excess_amount"]) == (
        0, 90120, 90120 - 360)
    said = format_status(collect_status(Config(data_dir=node.data_dir)))
    assert f"receipt {sale['receipt_number']}  refunded beyond what it sold: Baguette " \
        "tradition sold 3, refunded 2 (901,20 EUR of 3,60)" in said


async def test_a_refund_never_takes_the_id_of_a_sale(node: NodeUnderTest) -> None:
    """h41: a refund made under the id of the next basket hid that basket's sale (one row
    per id in `sales`), and an offline sale of it was answered with the refund."""
    async with node.till() as till:
        sale = await sell(till, [(BAGUETTE, 1)], [{"method": "cash", "amount": 120}])
        basket = new_id()
        refund = await till.call("sale/refund", refund_id=basket, sale_id=sale["id"], lines=[
            {"line_id": sale["lines"][0]["id"], "quantity": 1}], reason="rassis")
        await till.call("basket/add", basket_id=basket, line_id=new_id(), barcode=ESPRESSO)
        sold = await till.call("sale/complete", basket_id=basket,
                               tenders=[{"method": "cash", "amount": 150}])
        assert sold["id"] != refund["id"] and sold["totals"]["total"] == 150
        listed = (await till.call("sales/today", limit=10))["sales"]
        assert {row["id"]: row["total"] for row in listed} == {
            sale["id"]: 120, refund["id"]: -120, sold["id"]: 150}
        again = await till.call("sale/complete", basket_id=basket,
                                tenders=[{"method": "cash", "amount": 150}])
        assert again["id"] == sold["id"]
