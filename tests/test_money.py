"""Money: totals, VAT and change always agree to the cent."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.messages import EdgeError
from edge.selling.money import Line, basket_totals, change_due, vat_of_gross

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
