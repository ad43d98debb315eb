"""The one pricing function: totals, VAT, discounts and tenders in integer cents.

Prices are VAT-inclusive (French retail). VAT is worked out per rate on the
sum of that rate's lines, so the breakdown always adds up to the total to the
cent. Rates and percents are basis points (550 = 5.5 %). The browser till
carries a line-by-line copy of these rules for offline selling
(web/pricing.js); tests/vectors keep both identical. The rules in words:
docs/architecture.md, "Money".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from edge.messages import (
    CARD_OVERPAY,
    INVALID_FIELD,
    MEAL_VOUCHER_CAP,
    MISSING_REFERENCE,
    PAYMENT_SHORT,
    REFUND_TENDERS_MISMATCH,
    TENDER_OVERPAY,
    EdgeError,
)
from edge.selling.promotion_rules import promotion_discounts
from edge.selling.rounding import cumulative_floor_shares, round_half_up

__all__ = [
    "Line", "basket_totals", "change_due", "cumulative_floor_shares", "line_gross",
    "price_basket", "round_half_up", "settle", "vat_of_gross", "vat_rows",
]

BASIS_POINTS = 10_000
GRAMS_PER_KILO = 1000
DISCOUNT_KINDS = ("amount", "percent")
TENDER_METHODS = ("cash", "card", "meal_voucher", "cheque", "gift_voucher")
MEAL_VOUCHER_KINDS = ("paper", "card")
MAX_TENDERS = 20
DEFAULT_MEAL_VOUCHER_CAP = 2500  # the legal daily cap of titres-restaurant, per sale here


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
    return round_half_up(gross * rate, BASIS_POINTS + rate)


def vat_rows(gross_by_rate: dict[int, int]) -> list[dict[str, int]]:
    """The VAT breakdown, one row per rate (sorted): base + vat = total on every row."""
    rows = []
    for rate in sorted(gross_by_rate):
        gross = gross_by_rate[rate]
        tax = vat_of_gross(gross, rate)
        rows.append({"rate": rate, "base": gross - tax, "vat": tax, "total": gross})
    return rows


def basket_totals(lines: Iterable[Line]) -> dict[str, Any]:
    """The old shape (pieces at their unit price, no discount), for callers not yet moved."""
    gross_by_rate: dict[int, int] = {}
    items = 0
    for line in lines:
        gross_by_rate[line.vat_rate] = gross_by_rate.get(line.vat_rate, 0) + line.total
        items += line.quantity
    return {"total": sum(gross_by_rate.values()), "items": items, "vat": vat_rows(gross_by_rate)}


def _unit(line: dict[str, Any]) -> str:
    unit = line.get("unit") or "piece"
    if unit not in ("piece", "g"):
        raise EdgeError(INVALID_FIELD, f"'unit' must be 'piece' or 'g', got {unit!r}")
    return unit


def line_gross(line: dict[str, Any]) -> int:
    """Before any discount: pieces at their unit price; grams at the price per kilogram."""
    if _unit(line) == "g":
        return round_half_up(line["unit_price"] * line["quantity"], GRAMS_PER_KILO)
    return line["unit_price"] * line["quantity"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def discount_off(discount: Any, amount: int) -> int:
    """What a cashier's discount `{kind, value, reason, approved_by?}` takes off `amount` (>= 0)."""
    if not isinstance(discount, dict) or discount.get("kind") not in DISCOUNT_KINDS:
        raise EdgeError(INVALID_FIELD, "a discount's 'kind' must be 'amount' or 'percent'")
    value = discount.get("value")
    if discount["kind"] == "amount":
        if not _is_int(value) or value < 0:
            raise EdgeError(INVALID_FIELD, "an amount discount's 'value' is cents, 0 or more")
        return min(value, amount)
    if not _is_int(value) or not 0 <= value <= BASIS_POINTS:
        raise EdgeError(INVALID_FIELD, "a percent discount's 'value' is basis points, 0 to 10000")
    return round_half_up(amount * value, BASIS_POINTS)


def price_basket(
    lines: Sequence[dict[str, Any]],
    promotions: Iterable[dict[str, Any]] = (),
    basket_discount: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A basket's every amount: per line, per VAT rate, and its discounts.

    Lines are basket lines `{id, product_id, unit_price, vat_rate, quantity,
    unit?, discount?, price_embedded?}`. In order: gross per line, catalogue
    promotions (promotion_rules), each line's manual discount on what is left,
    the basket discount split over the lines by cumulative floor, then VAT per
    rate on the sum of its lines' totals.
    """
    lines = list(lines)
    grosses = [line_gross(line) for line in lines]
    promoted = promotion_discounts(lines, promotions)
    manual = [
        0 if line.get("discount") is None else discount_off(line["discount"], gross - off)
        for line, gross, (off, _) in zip(lines, grosses, promoted, strict=True)
    ]
    after_lines = [gross - off - cut
                   for gross, (off, _), cut in zip(grosses, promoted, manual, strict=True)]
    subtotal = sum(after_lines)
    basket_off = 0 if basket_discount is None else discount_off(basket_discount, subtotal)
    shares = cumulative_floor_shares(basket_off, after_lines)
    priced = []
    gross_by_rate: dict[int, int] = {}
    items = 0
    for line, gross, (off, ids), cut, share, left in zip(
        lines, grosses, promoted, manual, shares, after_lines, strict=True
    ):
        total = left - share
        priced.append({"id": line.get("id"), "gross": gross, "promotion": off,
                       "promotion_ids": ids, "discount": cut, "basket_share": share,
                       "total": total})
        gross_by_rate[line["vat_rate"]] = gross_by_rate.get(line["vat_rate"], 0) + total
        items += 1 if _unit(line) == "g" else line["quantity"]
    return {
        "lines": priced,
        "total": sum(gross_by_rate.values()),
        "items": items,
        "vat": vat_rows(gross_by_rate),
        "discounts": {"promotions": sum(off for off, _ in promoted), "lines": sum(manual),
                      "basket": basket_off},
    }


def _check_tender(tender: Any, refund: bool) -> None:
    if not isinstance(tender, dict) or tender.get("method") not in TENDER_METHODS:
        raise EdgeError(INVALID_FIELD, f"a tender's 'method' must be one of "
                                       f"{', '.join(TENDER_METHODS)}")
    amount = tender.get("amount")
    if not _is_int(amount) or (amount >= 0 if refund else amount <= 0):
        sign = "negative" if refund else "positive"
        raise EdgeError(INVALID_FIELD, f"a tender's 'amount' must be {sign} whole cents")
    if tender["method"] == "meal_voucher" and tender.get("kind") not in MEAL_VOUCHER_KINDS:
        raise EdgeError(INVALID_FIELD, "a meal voucher's 'kind' must be 'paper' or 'card'")


def _paid(tenders: Sequence[dict[str, Any]], method: str, kind: str | None = None) -> int:
    """The sum of the tenders of `method` (and of `kind`, when given)."""
    return sum(t["amount"] for t in tenders
               if t["method"] == method and (kind is None or t.get("kind") == kind))


def settle(
    total: int, tenders: Iterable[dict[str, Any]],
    meal_voucher_cap: int = DEFAULT_MEAL_VOUCHER_CAP,
) -> dict[str, int]:
    """How tenders `{method, amount, reference?, kind?}` pay `total`: `{change, voucher_excess}`.

    A sale: meal vouchers within their cap; exact tenders (card, card meal
    voucher, cheque, gift voucher) within the total; paper meal vouchers pay
    what is left and their excess is kept, not given back; cash pays the rest
    and only cash gives change. A refund (total < 0): negative tenders adding
    up to it exactly. Raises an EdgeError (nothing to record) otherwise.
    """
    tenders = list(tenders)
    if len(tenders) > MAX_TENDERS:
        raise EdgeError(INVALID_FIELD, f"at most {MAX_TENDERS} tenders on one sale")
    for tender in tenders:
        _check_tender(tender, refund=total < 0)
    if total < 0:
        paid = sum(t["amount"] for t in tenders)
        if paid != total:
            raise EdgeError(REFUND_TENDERS_MISMATCH,
                            f"the refund's tenders ({paid}) must add up to its total ({total})")
        return {"change": 0, "voucher_excess": 0}
    vouchers = _paid(tenders, "meal_voucher")
    if vouchers > meal_voucher_cap:
        raise EdgeError(MEAL_VOUCHER_CAP,
                        f"meal vouchers ({vouchers}) exceed the cap of {meal_voucher_cap}")
    card = _paid(tenders, "card")
    if card > total:
        raise EdgeError(CARD_OVERPAY, f"card payments ({card}) exceed the amount due ({total})")
    exact = (card + _paid(tenders, "meal_voucher", "card") + _paid(tenders, "cheque")
             + _paid(tenders, "gift_voucher"))
    if exact > total:
        raise EdgeError(TENDER_OVERPAY,
                        f"card, cheque and voucher payments ({exact}) exceed the amount due "
                        f"({total})")
    due = total - exact
    paper = _paid(tenders, "meal_voucher", "paper")
    voucher_excess = max(0, paper - due)
    due -= paper - voucher_excess
    cash = _paid(tenders, "cash")
    if cash < due:
        paid = sum(t["amount"] for t in tenders)
        raise EdgeError(PAYMENT_SHORT, f"payment of {paid} is short of the total {total}")
    return {"change": cash - due, "voucher_excess": voucher_excess}


def change_due(total: int, tenders: Iterable[dict[str, Any]]) -> int:
    """The change of a cash and card sale, the old way: a card still needs its slip reference.

    For the callers not yet moved to `settle` (sale/complete, sale/record and
    the till, which ask for the reference). A tender of 0, which the till
    sends for a free basket, counts for nothing.
    """
    tenders = list(tenders)
    for tender in tenders:
        if tender["method"] == "card" and not (tender.get("reference") or "").strip():
            raise EdgeError(MISSING_REFERENCE, "a card payment needs the terminal slip reference")
    return settle(total, [t for t in tenders if t["amount"] != 0])["change"]
