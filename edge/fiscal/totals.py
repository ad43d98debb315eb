"""A period's totals from its sales and refunds, each sale counted once: pure.

What a closure (Z, month, year) holds and an archive's `totals.json` says, in
integer cents:
- `sales` and `refunds` apart, each `{count, total, by_rate, by_tender,
  voucher_excess}`: `total` includes VAT; `by_rate` is `{rate: {base, vat,
  total}}` (rates in basis points, as strings: JSON keys); `by_tender` is
  `{method or method/kind: amount}`, cash net of the change given back, so
  `sum(by_tender) == total + voucher_excess` (the excess of paper meal
  vouchers, which the shop keeps);
- `net`: sales plus refunds (refunds are negative);
- `grand_total` and `grand_total_abs`: what the period adds to the perpetual
  grand totals (net total; sales total plus the refunds' total without sign).

A month is the sum of its days and a year of its months: `add` sums totals
key by key, so any split of a set of sales into periods adds back up to its
totals (tests/test_fiscal_totals.py). A sale marked `training` never counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from edge.journal.chain import Event
from edge.selling.refunds import is_refund

SALE_TYPES = ("sale_completed", "sale_refunded")
Totals = dict[str, Any]


@dataclass(frozen=True)
class Counted:
    """A sale (or refund) as it counts: one per id, whatever the number of nodes that
    recorded it."""

    event: Event  # the copy that counts: the smaller event hash, as in `sales`
    first_time: str  # when the store first recorded it: the period it falls in

    @property
    def body(self) -> dict[str, Any]:
        return self.event.body


def is_training(body: Mapping[str, Any]) -> bool:
    """A sale made in training mode ("MODE ÉCOLE"): never counted."""
    return body.get("training") is True


def counted_in_id_order(events: Iterable[Event]) -> Iterator[Counted]:
    """One `Counted` per sale id of `events`, which come grouped by `body["id"]` (the
    journal and an archive read them ORDER BY id, hash: memory stays one sale's copies).

    The copy that counts is the one with the smaller event hash: the rule of the
    `sales` projection (edge/selling/sales.py `keep_sale_row`), so every node, a
    closure and an archive's verifier count the same body. The period is that of
    its first copy: a copy recorded later (a till resending after a failover)
    never moves a sale out of a period already closed.
    """
    for _, group in groupby(events, key=lambda event: event.body["id"]):
        copies = list(group)
        winner = min(copies, key=lambda event: event.hash)
        if not is_training(winner.body):
            yield Counted(winner, min(event.time for event in copies))


def count_once(events: Iterable[Event]) -> list[Counted]:
    """Each sale and refund of `events` once (in any order), in id order."""
    return list(counted_in_id_order(sorted(events, key=lambda event: (event.body["id"],
                                                                       event.hash))))


def _section() -> Totals:
    return {"count": 0, "total": 0, "by_rate": {}, "by_tender": {}, "voucher_excess": 0}


def empty() -> Totals:
    return {"sales": _section(), "refunds": _section(), "net": _section(),
            "grand_total": 0, "grand_total_abs": 0}


def tender_key(tender: Mapping[str, Any]) -> str:
    kind = tender.get("kind")
    return f"{tender['method']}/{kind}" if kind else str(tender["method"])


def tenders_of(body: Mapping[str, Any]) -> dict[str, int]:
    """What a sale's tenders brought in (a refund's gave back), cash net of the change."""
    amounts: dict[str, int] = {}
    for tender in body.get("tenders", ()):
        key = tender_key(tender)
        amounts[key] = amounts.get(key, 0) + tender["amount"]
    change = body.get("change") or 0
    if change:  # only cash gives change (edge/selling/money.py `settle`)
        amounts["cash"] = amounts.get("cash", 0) - change
    return amounts


def _add_body(section: Totals, body: Mapping[str, Any]) -> None:
    totals = body["totals"]
    section["count"] += 1
    section["total"] += totals["total"]
    for line in totals.get("vat", ()):
        rate = section["by_rate"].setdefault(str(line["rate"]), {"base": 0, "vat": 0, "total": 0})
        for key in ("base", "vat", "total"):
            rate[key] += line[key]
    by_tender = section["by_tender"]
    for key, amount in tenders_of(body).items():
        by_tender[key] = by_tender.get(key, 0) + amount
    section["voucher_excess"] += body.get("voucher_excess") or 0


def totals_of(bodies: Iterable[Mapping[str, Any]]) -> Totals:
    """The totals of sale and refund bodies, each already counted once (`count_once`);
    training sales are left out."""
    totals = empty()
    for body in bodies:
        if not is_training(body):
            _add_body(totals["refunds" if is_refund(body) else "sales"], body)
    return _finish(totals)


def _finish(totals: Totals) -> Totals:
    totals["net"] = add(totals["sales"], totals["refunds"])
    totals["grand_total"] = totals["net"]["total"]
    totals["grand_total_abs"] = totals["sales"]["total"] + abs(totals["refunds"]["total"])
    return totals


def add(a: Mapping[str, Any], b: Mapping[str, Any]) -> Totals:
    """`a` + `b`, key by key (a month from its days, a year from its months, a grand
    total from the one before and a day)."""
    summed: Totals = {}
    for key in {**a, **b}:
        left, right = a.get(key), b.get(key)
        if isinstance(left, Mapping) or isinstance(right, Mapping):
            summed[key] = add(left or {}, right or {})
        else:
            summed[key] = (left or 0) + (right or 0)
    return summed


def differences(expected: Mapping[str, Any], found: Mapping[str, Any],
                where: str = "") -> list[str]:
    """Each figure on which two totals differ, named by its path (`sales.by_rate.550.vat`)."""
    problems = []
    for key in sorted({*expected, *found}):
        path = f"{where}.{key}" if where else str(key)
        left, right = expected.get(key), found.get(key)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            problems += differences(left, right, path)
        elif left != right:
            problems.append(f"{path} is {right!r}, the events give {left!r}")
    return problems
