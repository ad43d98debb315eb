"""The one pricing function: totals, VAT and change in integer cents.

Prices are VAT-inclusive (French retail). VAT is worked out per rate on the
sum of that rate's lines, so the breakdown always adds up to the total to the
cent. Rates are basis points (550 = 5.5 %). The browser till carries a copy of
these rules for offline selling; tests/vectors keep both identical.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edge.messages import CARD_OVERPAY, MISSING_REFERENCE, PAYMENT_SHORT, EdgeError

BASIS_POINTS = 10_000


@dataclass(frozen=True)
class Line:
    unit_price: int
    quantity: int
    vat_rate: int

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


def vat_of_gross(gross: int, rate: int) -> int:
    """The VAT inside a VAT-inclusive amount, rounded half away from zero."""
    divisor = BASIS_POINTS + rate
    numerator = 2 * abs(gross) * rate + divisor
    vat = numerator // (2 * divisor)
    return vat if gross >= 0 else -vat


def basket_totals(lines: Iterable[Line]) -> dict[str, Any]:
    gross_by_rate: dict[int, int] = {}
    items = 0
    for line in lines:
        gross_by_rate[line.vat_rate] = gross_by_rate.get(line.vat_rate, 0) + line.total
        items += line.quantity
    vat = []
    for rate in sorted(gross_by_rate):
        gross = gross_by_rate[rate]
        tax = vat_of_gross(gross, rate)
        vat.append({"rate": rate, "base": gross - tax, "vat": tax, "total": gross})
    return {"total": sum(gross_by_rate.values()), "items": items, "vat": vat}


def change_due(total: int, tenders: Iterable[dict[str, Any]]) -> int:
    """What goes back to the customer; raises if the tenders can't settle `total`."""
    tenders = list(tenders)
    card = sum(t["amount"] for t in tenders if t["method"] == "card")
    paid = sum(t["amount"] for t in tenders)
    for tender in tenders:
        if tender["method"] == "card" and not (tender.get("reference") or "").strip():
            raise EdgeError(MISSING_REFERENCE, "a card payment needs the terminal slip reference")
    if card > total:
        raise EdgeError(
            CARD_OVERPAY, f"card payments ({card}) exceed the amount due ({total})"
        )
    if paid < total:
        raise EdgeError(PAYMENT_SHORT, f"payment of {paid} is short of the total {total}")
    return paid - total
