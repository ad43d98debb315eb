"""The pricing function keeps its promises for any basket, and the till's copy agrees.

Hypothesis makes baskets of pieces, weighed items and price-embedded labels,
with line discounts, stacked catalogue promotions on shared products and a
basket discount. Whatever it makes: the total is the sum of the line totals
and of the VAT rows, base + VAT = total on every row, no line goes below 0,
no discount takes more than what it applies to, and the promotions give what
a plain unit-by-unit reading of the rules gives (the pricing function counts
alike groups rather than walking every unit). Then a few hundred generated
baskets and tenders go through web/pricing.js in one chromium page: the
till's answers must be the node's, to the cent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_pricing_vectors import served_web_page

from edge.messages import EdgeError
from edge.selling.money import (
    cumulative_floor_shares,
    price_basket,
    round_half_up,
    settle,
)
from edge.selling.promotion_rules import promotion_discounts, promotion_problem, takes_promotions

PRODUCTS = ("pain", "croissant", "eclair", "comte")
RATES = (0, 210, 550, 1000, 2000)
PRICES = st.one_of(st.sampled_from([0, 1, 95, 105, 110, 120, 1290]), st.integers(0, 100_000))


def discounts(max_amount: int = 5000) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda v: {"kind": "amount", "value": v, "reason": "geste"},
                  st.integers(0, max_amount)),
        st.builds(lambda v: {"kind": "percent", "value": v, "reason": "fidelite",
                             "approved_by": "bob"}, st.integers(0, 10_000)),
    )


@st.composite
def basket_lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    lines = []
    for index in range(draw(st.integers(0, 8))):
        line: dict[str, Any] = {
            "id": f"l{index}", "product_id": draw(st.sampled_from(PRODUCTS)),
            "unit_price": draw(PRICES), "vat_rate": draw(st.sampled_from(RATES)),
        }
        shape = draw(st.sampled_from(["piece", "piece", "piece", "g", "embedded"]))
        if shape == "g":
            line.update(unit="g", quantity=draw(st.integers(1, 20_000)))
        elif shape == "embedded":
            line.update(price_embedded=True, quantity=1)
        else:
            line["quantity"] = draw(st.integers(1, 40))
        if draw(st.integers(0, 4)) == 0:
            line["discount"] = draw(discounts())
        lines.append(line)
    return lines


@st.composite
def promotions(draw: st.DrawFn) -> list[dict[str, Any]]:
    made = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["n_for_m", "nth_percent", "bundle"]))
        n = draw(st.integers(1, 7))
        promotion = {"id": draw(st.sampled_from(["a", "b", "c", "\U0001F950", "\uffff"])),
                     "name": "promo", "kind": kind, "n": n,
                     "products": draw(st.lists(st.sampled_from(PRODUCTS), min_size=1,
                                               max_size=3, unique=True))}
        if kind == "n_for_m":
            promotion["m"] = draw(st.integers(1, max(1, n - 1)))  # m = n = 1: ignored
        elif kind == "nth_percent":
            promotion["percent"] = draw(st.integers(1, 10_000))
        else:
            promotion["price"] = draw(st.integers(0, 3000))
        made.append(promotion)
    return made


BASKETS = st.tuples(basket_lines(), promotions(), st.one_of(st.none(), discounts(20_000)))


def by_the_units(lines: list[dict[str, Any]],
                 offers: list[dict[str, Any]]) -> list[tuple[int, list[str]]]:
    """The promotions read plainly: every unit listed, every group priced on its own."""
    off = [0] * len(lines)
    ids: list[list[str]] = [[] for _ in lines]
    taken = [0] * len(lines)
    for offer in sorted((o for o in offers if promotion_problem(o) is None),
                        key=lambda o: o["id"]):
        units = [(index, line["unit_price"]) for index, line in enumerate(lines)
                 if takes_promotions(line) and line["product_id"] in offer["products"]
                 for _ in range(line["quantity"] - taken[index])]
        units.sort(key=lambda unit: -unit[1])
        n = offer["n"]
        for start in range(0, len(units) - n + 1, n):
            group = units[start:start + n]
            prices = [price for _, price in group]
            if offer["kind"] == "n_for_m":
                cuts = [price if position >= offer["m"] else 0
                        for position, price in enumerate(prices)]
            elif offer["kind"] == "nth_percent":
                cuts = [0] * (n - 1) + [round_half_up(prices[-1] * offer["percent"], 10_000)]
            else:
                cuts = cumulative_floor_shares(max(0, sum(prices) - offer["price"]), prices)
            for (index, _), cut in zip(group, cuts, strict=True):
                off[index] += cut
                taken[index] += 1
                if offer["id"] not in ids[index]:
                    ids[index].append(offer["id"])
    return list(zip(off, ids, strict=True))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(BASKETS)
def test_every_amount_adds_up_and_nothing_goes_below_zero(basket: tuple) -> None:
    lines, offers, basket_discount = basket
    priced = price_basket(lines, offers, basket_discount)
    rows = priced["lines"]
    assert [row["id"] for row in rows] == [line["id"] for line in lines]
    assert priced["total"] == sum(row["total"] for row in rows)
    assert priced["total"] == sum(vat["total"] for vat in priced["vat"])
    assert [vat["rate"] for vat in priced["vat"]] == sorted({line["vat_rate"] for line in lines})
    for vat in priced["vat"]:
        assert vat["base"] + vat["vat"] == vat["total"]
        assert vat["total"] == sum(row["total"] for row, line in zip(rows, lines, strict=True)
                                   if line["vat_rate"] == vat["rate"])
    subtotal = 0
    for row, line in zip(rows, lines, strict=True):
        assert 0 <= row["promotion"] <= row["gross"]
        assert 0 <= row["discount"] <= row["gross"] - row["promotion"]
        after_line = row["gross"] - row["promotion"] - row["discount"]
        assert 0 <= row["basket_share"] <= after_line
        assert row["total"] == after_line - row["basket_share"] >= 0
        if not takes_promotions(line):
            assert (row["promotion"], row["promotion_ids"]) == (0, [])
        if line.get("unit") == "g":
            assert row["gross"] == round_half_up(line["unit_price"] * line["quantity"], 1000)
        subtotal += after_line
    totals = priced["discounts"]
    assert totals["promotions"] == sum(row["promotion"] for row in rows)
    assert totals["lines"] == sum(row["discount"] for row in rows)
    assert totals["basket"] == sum(row["basket_share"] for row in rows) <= subtotal
    assert priced["items"] == sum(1 if line.get("unit") == "g" else line["quantity"]
                                  for line in lines)


@given(BASKETS)
def test_promotions_give_what_the_rules_read_unit_by_unit_give(basket: tuple) -> None:
    lines, offers, _ = basket
    assert promotion_discounts(lines, offers) == by_the_units(lines, offers)


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=30))
def test_allocation_shares_add_up_exactly_and_stay_proportional(amount: int,
                                                                 weights: list[int]) -> None:
    if sum(weights) == 0:
        assert cumulative_floor_shares(0, weights) == [0] * len(weights)
        return
    shares = cumulative_floor_shares(amount, weights)
    assert sum(shares) == amount
    for share, weight in zip(shares, weights, strict=True):
        assert abs(share * sum(weights) - amount * weight) < sum(weights)  # within one cent
        if amount <= sum(weights):
            assert 0 <= share <= weight


METHODS = st.sampled_from([("cash", None), ("card", None), ("cheque", None),
                           ("gift_voucher", None), ("meal_voucher", "paper"),
                           ("meal_voucher", "card")])


@st.composite
def tenders(draw: st.DrawFn) -> list[dict[str, Any]]:
    made = []
    for _ in range(draw(st.integers(0, 5))):
        method, kind = draw(METHODS)
        tender: dict[str, Any] = {"method": method, "amount": draw(st.integers(1, 6000))}
        if kind:
            tender["kind"] = kind
        made.append(tender)
    return made


def paid_by(tenders: list[dict[str, Any]], method: str, kind: str | None = None) -> int:
    return sum(t["amount"] for t in tenders
               if t["method"] == method and kind in (None, t.get("kind")))


@given(st.integers(0, 15_000), tenders(), st.sampled_from([0, 1000, 2500]))
def test_a_settled_sale_gives_change_from_cash_only(total: int, given_tenders: list,
                                                     cap: int) -> None:
    try:
        settled = settle(total, given_tenders, cap)
    except EdgeError as error:
        assert error.code in ("payment_short", "card_overpay", "tender_overpay",
                              "meal_voucher_cap")
        return
    cash = paid_by(given_tenders, "cash")
    assert 0 <= settled["change"] <= cash
    assert 0 <= settled["voucher_excess"] <= paid_by(given_tenders, "meal_voucher", "paper")
    paid = sum(t["amount"] for t in given_tenders)
    assert paid == total + settled["change"] + settled["voucher_excess"]
    assert paid_by(given_tenders, "meal_voucher") <= cap
    if settled["voucher_excess"]:
        assert settled["change"] == cash  # vouchers paid it all: cash all goes back


def generated(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples as hypothesis makes them (its edge cases included), to send at once."""
    made: list[Any] = []

    @settings(max_examples=count, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        made.append(example)

    collect()
    return made


RUN_BATCH = """async ({ baskets, payments }) => {
  const pricing = await import('/pricing.js');
  const outcome = (compute) => {
    try {
      return { result: compute() };
    } catch (error) {
      return { error: error.code ?? `${error.name}: ${error.message}` };
    }
  };
  return {
    baskets: baskets.map(([lines, promotions, discount]) =>
      outcome(() => pricing.priceBasket(lines, promotions, discount))),
    payments: payments.map(([total, tenders, cap]) =>
      outcome(() => pricing.settle(total, tenders, cap))),
  };
}"""


def python_outcome(compute: Any, *args: Any) -> dict[str, Any]:
    try:
        return {"result": compute(*args)}
    except EdgeError as error:
        return {"error": error.code}


async def test_the_till_prices_generated_baskets_as_the_node_does() -> None:
    baskets = generated(BASKETS, 250)
    payments = generated(st.tuples(st.integers(0, 15_000), tenders(),
                                   st.sampled_from([0, 1000, 2500])), 150)
    async with served_web_page() as page:
        answers = await page.evaluate(RUN_BATCH, {"baskets": baskets, "payments": payments})
    assert len(baskets) >= 200 and len(payments) >= 100
    wrong = [(basket, got) for basket, got in zip(baskets, answers["baskets"], strict=True)
             if got != python_outcome(price_basket, *basket)]
    assert wrong == []
    wrong = [(payment, got) for payment, got in zip(payments, answers["payments"], strict=True)
             if got != python_outcome(settle, *payment)]
    assert wrong == []
