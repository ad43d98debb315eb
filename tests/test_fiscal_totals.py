"""A period's totals (edge/fiscal/totals.py): each sale once, days add up to their month,
grand totals continue from day to day, training never counts.

Pure: events are made in memory (hashed, not signed: totals read bodies only).
The bodies are priced by the one pricing function (edge/selling/money.py), as
the node prices them; the expected figures are summed here independently, one
unique sale at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.fiscal.periods import parse_period
from edge.fiscal.totals import add, count_once, differences, empty, totals_of
from edge.journal.chain import Event, event_hash
from edge.selling.money import Line, basket_totals
from edge.selling.refund_rules import refund_totals

RATES = (550, 1000, 2000)
DAYS = [parse_period(f"2024-11-{day:02d}", UTC) for day in range(1, 6)]
_seq = itertools.count(1)


def event(type_: str, body: dict[str, Any], time: str, origin: str = "n1") -> Event:
    """An event as a node would record it (its hash over its content; no signature)."""
    seq = next(_seq)
    digest = event_hash(origin, seq, f"e{seq}", time, type_, body, "0" * 64)
    return Event(origin, seq, f"e{seq}", time, type_, body, "0" * 64, digest)


def sale_body(sale_id: str, lines: list[tuple[int, int, int]], tenders: str = "cash",
              number: int = 1, till: str = "T01") -> dict[str, Any]:
    """A sale of `lines` (unit price, quantity, VAT rate), paid by `tenders`: `cash`
    (a round note, change given back), `card`, or `split` (a paper meal voucher worth
    more than due, kept, and card)."""
    sold = [{"id": f"{sale_id}-l{k}", "product_id": f"p{k}", "barcode": None, "name": "Pain",
             "unit_price": price, "vat_rate": rate, "quantity": quantity,
             "total": price * quantity} for k, (price, quantity, rate) in enumerate(lines)]
    totals = basket_totals(Line(price, quantity, rate) for price, quantity, rate in lines)
    total = totals["total"]
    body: dict[str, Any] = {"id": sale_id, "till": till, "receipt_no": number,
                            "receipt_number": f"{till}-{number:06d}", "cashier": "c1",
                            "lines": sold, "totals": totals, "change": 0}
    if tenders == "cash":
        paid = -(-total // 1000) * 1000 or 1000
        body["tenders"] = [{"method": "cash", "amount": paid}]
        body["change"] = paid - total
    elif tenders == "card" or total < 200:
        body["tenders"] = [{"method": "card", "amount": total, "reference": "slip"}]
    else:
        voucher = total // 2 + 100  # more than what the card leaves: the excess is kept
        body["tenders"] = [{"method": "card", "amount": total - total // 2},
                           {"method": "meal_voucher", "kind": "paper", "amount": voucher}]
        body["voucher_excess"] = voucher - total // 2
    return body


def refund_body(refund_id: str, price: int, quantity: int, rate: int) -> dict[str, Any]:
    refunded = [{"line_id": "l1", "product_id": "p1", "name": "Pain", "vat_rate": rate,
                 "unit_price": price, "quantity": quantity, "amount": price * quantity,
                 "total": -price * quantity}]
    totals = refund_totals(refunded)
    return {"id": refund_id, "refund_of": None, "till": "T01", "receipt_no": 99,
            "receipt_number": "T01-000099", "cashier": "c1", "lines": refunded,
            "totals": totals, "tenders": [{"method": "cash", "amount": totals["total"]}],
            "change": 0, "reason": "rassis"}


def at(day: int, second: int) -> str:
    return f"2024-11-{day + 1:02d}T{10 + second // 3600:02d}:{second // 60 % 60:02d}:" \
           f"{second % 60:02d}.000Z"


LINES = st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 4), st.sampled_from(RATES)),
                 min_size=1, max_size=3)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], list[dict[str, Any]]]:
    """(every sale and refund event of five days, the bodies that count: one per id)."""
    events, unique = [], []
    for number in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["sale", "sale", "refund", "training"]))
        if kind == "refund":
            price, quantity, rate = draw(LINES)[0]
            body = refund_body(f"r{number}#refund", price, quantity, rate)
        else:
            body = sale_body(f"s{number}@T01", draw(LINES),
                             draw(st.sampled_from(["cash", "card", "split"])), number)
            if kind == "training":
                body["training"] = True
        day = draw(st.integers(0, 4))
        type_ = "sale_refunded" if kind == "refund" else "sale_completed"
        events.append(event(type_, body, at(day, draw(st.integers(0, 7200)))))
        for origin in draw(st.lists(st.sampled_from(["n2", "n3"]), max_size=2, unique=True)):
            # Resent through another node after a failover, maybe a day later.
            later = min(4, day + draw(st.integers(0, 1)))
            events.append(event(type_, {**body, "resent": True}, at(later, 7300), origin))
        if kind != "training":
            unique.append(body)
    return events, unique


def independent(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures summed here without edge/fiscal: count, total, VAT and tenders."""
    sums: dict[str, Any] = {"count": len(bodies), "total": 0, "vat": {}, "tenders": 0}
    for body in bodies:
        sums["total"] += body["totals"]["total"]
        for line in body["totals"]["vat"]:
            sums["vat"][str(line["rate"])] = sums["vat"].get(str(line["rate"]), 0) + line["vat"]
        sums["tenders"] += sum(t["amount"] for t in body["tenders"]) - body["change"] \
            - body.get("voucher_excess", 0)
    return sums


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False))
def test_days_add_up_to_their_month_and_grand_totals_continue(
        history: tuple[list[Event], list[dict[str, Any]]], shuffle: Any) -> None:
    events, unique = history
    shuffle.shuffle(events)  # the order of arrival changes nothing
    counted = count_once(events)
    whole = totals_of(sale.body for sale in counted)
    # Each sale once (however many nodes recorded it), training never.
    net = whole["net"]
    expected = independent(unique)
    assert (net["count"], net["total"]) == (expected["count"], expected["total"])
    assert {rate: figures["vat"] for rate, figures in net["by_rate"].items()} == expected["vat"]
    assert sum(net["by_tender"].values()) - net["voucher_excess"] == expected["tenders"]
    for section in ("sales", "refunds", "net"):
        part = whole[section]
        assert sum(part["by_tender"].values()) == part["total"] + part["voucher_excess"]
        assert sum(rate["total"] for rate in part["by_rate"].values()) == part["total"]
    assert whole["refunds"]["total"] <= 0 <= whole["sales"]["total"]
    # The month is the sum of its days; the grand totals carry on from day to day.
    grand = empty()
    for day in DAYS:
        day_totals = totals_of(sale.body for sale in counted if day.holds(sale.first_time))
        before = grand["grand_total"], grand["grand_total_abs"]
        grand = add(grand, day_totals)
        assert grand["grand_total"] == before[0] + day_totals["net"]["total"]
        assert grand["grand_total_abs"] == before[1] + day_totals["sales"]["total"] \
            - day_totals["refunds"]["total"]
    assert differences(whole, grand) == []
    assert grand == whole
    month = parse_period("2024-11", UTC)
    assert all(month.holds(sale.first_time) for sale in counted)


@settings(max_examples=30, deadline=None)
@given(st.lists(histories(), min_size=3, max_size=3))
def test_adding_totals_is_associative(parts: list[tuple[list[Event], Any]]) -> None:
    a, b, c = (totals_of(sale.body for sale in count_once(events)) for events, _ in parts)
    assert add(add(a, b), c) == add(a, add(b, c)) == add(c, add(b, a))


def test_a_sale_recorded_twice_counts_once_as_its_smaller_hash_in_its_first_period() -> None:
    body = sale_body("s1@T01", [(120, 2, 550)], "card")
    first = event("sale_completed", body, at(0, 10), "n1")
    again = event("sale_completed", {**body, "resent": True, "flags": ["x"]}, at(1, 10), "n2")
    [sale] = count_once([again, first])
    assert sale.event == min(first, again, key=lambda e: e.hash)
    assert sale.first_time == first.time  # the day it was first recorded
    assert totals_of([sale.body])["sales"]["count"] == 1


def test_a_training_sale_never_counts() -> None:
    sale = sale_body("s1@T01", [(120, 2, 550)])
    training = {**sale_body("s2@T01", [(999, 1, 2000)]), "training": True}
    counted = count_once([event("sale_completed", sale, at(0, 1)),
                          event("sale_completed", training, at(0, 2))])
    assert [c.body["id"] for c in counted] == ["s1@T01"]
    assert totals_of([sale, training]) == totals_of([sale])


def test_cash_counts_net_of_change_and_refunds_apart() -> None:
    sale = sale_body("s1@T01", [(1234, 1, 2000)], "cash")  # 20.00 given, 7.66 back
    refund = refund_body("r1#refund", 500, 1, 550)
    totals = totals_of([sale, refund])
    assert totals["sales"]["by_tender"] == {"cash": 1234}
    assert totals["refunds"]["by_tender"] == {"cash": -500}
    assert totals["net"]["by_tender"] == {"cash": 734}
    assert totals["sales"]["by_rate"]["2000"] == {"base": 1028, "vat": 206, "total": 1234}
    assert (totals["grand_total"], totals["grand_total_abs"]) == (734, 1734)


@pytest.mark.parametrize(("text", "kind", "start", "end"), [
    ("2024-11-30", "day", "2024-11-30T00:00:00.000Z", "2024-12-01T00:00:00.000Z"),
    ("2024-12", "month", "2024-12-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
    ("2024", "year", "2024-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
])
def test_a_period_is_bounded_by_event_times(text: str, kind: str, start: str, end: str) -> None:
    period = parse_period(text, UTC)
    assert (period.kind, period.start, period.end) == (kind, start, end)
    assert period.holds(start) and not period.holds(end)


@pytest.mark.parametrize("text", ["2024-13", "2024-02-30", "november", "24-11", ""])
def test_a_period_that_is_none_is_refused_in_words(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a period|is no date"):
        parse_period(text)


def test_a_period_follows_the_stores_time_zone() -> None:
    from zoneinfo import ZoneInfo

    paris = parse_period("2024-11-30", ZoneInfo("Europe/Paris"))
    assert (paris.start, paris.end) == ("2024-11-29T23:00:00.000Z", "2024-11-30T23:00:00.000Z")
    assert dataclasses.asdict(paris)["label"] == "2024-11-30"
