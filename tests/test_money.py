"""Money: totals, VAT, tenders and change always agree to the cent."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.messages import EdgeError
from edge.selling.money import (
    Line,
    basket_totals,
    change_due,
    cumulative_floor_shares,
    round_half_up,
    settle,
    vat_of_gross,
)

RATES = st.sampled_from([210, 550, 1000, 2000])
LINES = st.lists(
    st.builds(Line, unit_price=st.integers(1, 500_000), quantity=st.integers(1, 9999),
              vat_rate=RATES),
    max_size=60,
)


@given(LINES)
def test_the_vat_breakdown_adds_up_to_the_total(lines: list[Line]) -> None:
    totals = basket_totals(lines)
    assert totals["total"] == sum(line.unit_price * line.quantity for line in lines)
    assert totals["total"] == sum(row["total"] for row in totals["vat"])
    assert totals["items"] == sum(line.quantity for line in lines)
    for row in totals["vat"]:
        assert row["base"] + row["vat"] == row["total"]
        assert all(isinstance(row[key], int) for key in ("base", "vat", "total"))
    assert [row["rate"] for row in totals["vat"]] == sorted({line.vat_rate for line in lines})


@given(st.integers(-10**9, 10**9), RATES)
def test_vat_is_the_exact_share_rounded_to_the_nearest_cent(gross: int, rate: int) -> None:
    exact = Fraction(gross * rate, 10_000 + rate)
    assert abs(vat_of_gross(gross, rate) - exact) <= Fraction(1, 2)


@given(LINES)
def test_totals_do_not_depend_on_line_order(lines: list[Line]) -> None:
    assert basket_totals(lines) == basket_totals(list(reversed(lines)))


@given(total=st.integers(1, 10**7), extra=st.integers(0, 10**5))
def test_change_is_what_cash_exceeds_the_total(total: int, extra: int) -> None:
    assert change_due(total, [{"method": "cash", "amount": total + extra}]) == extra


@given(total=st.integers(2, 10**7), data=st.data())
def test_card_then_cash_settles_with_change_from_cash_only(total: int, data) -> None:
    card = data.draw(st.integers(1, total - 1))
    cash = data.draw(st.integers(total - card, total - card + 10_000))
    tenders = [{"method": "card", "amount": card, "reference": "R"},
               {"method": "cash", "amount": cash}]
    change = change_due(total, tenders)
    assert change == card + cash - total
    assert 0 <= change <= cash


def test_known_french_vat_figures() -> None:
    # A baguette at 1,20 € TTC and 5.5 %: 0,06 € of VAT (1,20 / 1,055 = 1,137...).
    assert vat_of_gross(120, 550) == 6
    # 10,00 € at 20 %: 1,67 € VAT (10 / 1,2 = 8,333...).
    assert vat_of_gross(1000, 2000) == 167
    # Half a cent rounds away from zero: 21 cents at 10 % has 1.909... cents of VAT.
    assert vat_of_gross(21, 1000) == 2


@pytest.mark.parametrize(
    ("tenders", "code"),
    [
        ([{"method": "cash", "amount": 99}], "payment_short"),
        ([{"method": "card", "amount": 101, "reference": "R"}], "card_overpay"),
        ([{"method": "card", "amount": 100, "reference": ""}], "missing_reference"),
    ],
)
def test_tenders_that_cannot_settle_are_refused(tenders: list[dict], code: str) -> None:
    with pytest.raises(EdgeError) as refused:
        change_due(100, tenders)
    assert refused.value.code == code


def test_round_half_up_rounds_halves_away_from_zero() -> None:
    assert round_half_up(105 * 5000, 10_000) == 53  # half of 1,05 € is 0,525 €: 0,53 €
    assert round_half_up(104 * 5000, 10_000) == 52
    assert round_half_up(-105 * 5000, 10_000) == -53
    assert round_half_up(1999 * 250, 1000) == 500  # 250 g at 19,99 €/kg: 4,9975 €


def test_a_bundle_discount_is_split_by_cumulative_floor() -> None:
    assert cumulative_floor_shares(100, [1, 1, 1]) == [33, 33, 34]
    assert cumulative_floor_shares(10, [3, 0, 7]) == [3, 0, 7]
    assert cumulative_floor_shares(0, [0, 0]) == [0, 0]
    with pytest.raises(ValueError):
        cumulative_floor_shares(1, [0, 0])


def tender(method: str, amount: int, kind: str | None = None) -> dict:
    return {"method": method, "amount": amount, **({"kind": kind} if kind else {})}


@pytest.mark.parametrize(
    ("total", "tenders", "settled"),
    [
        # A card needs no slip reference any more: the terminal already took the amount.
        (1000, [tender("card", 1000)], {"change": 0, "voucher_excess": 0}),
        (3000, [tender("card", 1000), tender("card", 1500), tender("cash", 1000)],
         {"change": 500, "voucher_excess": 0}),
        # Paper meal vouchers give no change: the excess is kept (and recorded).
        (1000, [tender("meal_voucher", 1200, "paper")], {"change": 0, "voucher_excess": 200}),
        (1000, [tender("meal_voucher", 800, "paper"), tender("cash", 500)],
         {"change": 300, "voucher_excess": 0}),
        (1000, [tender("meal_voucher", 400, "card"), tender("cheque", 300),
                tender("gift_voucher", 300)], {"change": 0, "voucher_excess": 0}),
        (0, [], {"change": 0, "voucher_excess": 0}),
        (-500, [tender("card", -300), tender("cash", -200)], {"change": 0, "voucher_excess": 0}),
    ],
)
def test_tenders_settle_a_sale(total: int, tenders: list[dict], settled: dict) -> None:
    assert settle(total, tenders) == settled


@pytest.mark.parametrize(
    ("total", "tenders", "code"),
    [
        (5000, [tender("meal_voucher", 2000, "paper"), tender("meal_voucher", 501, "card")],
         "meal_voucher_cap"),
        (1000, [tender("card", 1001)], "card_overpay"),
        (1000, [tender("card", 600), tender("cheque", 401)], "tender_overpay"),
        (1000, [tender("meal_voucher", 1001, "card")], "tender_overpay"),
        (1000, [tender("meal_voucher", 900, "paper"), tender("cash", 99)], "payment_short"),
        (1000, [tender("cash", 0)], "invalid_field"),
        (1000, [tender("meal_voucher", 1000)], "invalid_field"),
        (1000, [tender("cash", 50)] * 21, "invalid_field"),
        (-500, [tender("cash", -400)], "refund_tenders_mismatch"),
        (-500, [tender("cash", 500)], "invalid_field"),
    ],
)
def test_tenders_that_cannot_settle_a_sale_are_refused(total: int, tenders: list[dict],
                                                       code: str) -> None:
    with pytest.raises(EdgeError) as refused:
        settle(total, tenders)
    assert refused.value.code == code


def test_the_meal_voucher_cap_is_the_stores() -> None:
    vouchers = [tender("meal_voucher", 1900, "paper")]
    assert settle(1900, vouchers, meal_voucher_cap=1900)["change"] == 0
    with pytest.raises(EdgeError) as refused:
        settle(1900, vouchers, meal_voucher_cap=1899)
    assert refused.value.code == "meal_voucher_cap"


@given(total=st.integers(0, 10**6), card=st.integers(0, 10**6), cash=st.integers(0, 10**6))
def test_change_due_is_settle_for_a_cash_and_card_sale(total: int, card: int, cash: int) -> None:
    tenders = [{"method": "card", "amount": card, "reference": "R"},
               {"method": "cash", "amount": cash}]
    try:
        expected = settle(total, [t for t in tenders if t["amount"]])["change"]
    except EdgeError as error:
        with pytest.raises(EdgeError) as refused:
            change_due(total, tenders)
        assert refused.value.code == error.code
    else:
        assert change_due(total, tenders) == expected
