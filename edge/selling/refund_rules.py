"""What a refund gives back, and how much of a sale is left to refund. Pure: no I/O.

Integer cents throughout (docs: the bakery design's money rules, and
docs/protocol.md `sale/refund`):
- a sale that took catalogue promotions (its `promotions`) gives back what
  was paid, less what earlier refunds gave back, less what the customer keeps
  would cost, priced by the one pricing function (`price_basket`) with the
  promotions the sale kept and its basket discount (a fixed amount prorated
  to what is kept); never below 0, never above the refunded units' price
  before any promotion. Three croissants "3 for 2" with two brought back:
  the one kept costs its price, so 1.15 of the 2.30 paid goes back. So a
  sale refunded in any steps gives back exactly its total, never a cent more;
- any other sale (older ones too) prorates each line: refunding q of a line
  of quantity Q and total T, r already refunded, gives back
  floor(T*(r+q)/Q) - floor(T*r/Q), so a line refunded in any steps gives
  back exactly its total, whatever discounts made T;
- a weighed line (unit "g") is refunded whole, and counts as one item;
- the totals are negative, VAT per rate as a sale's (`vat_rows`); the tenders,
  negative too, add up to the total exactly (`settle` checks them); the
  original's methods by default (`default_tenders`), others with a manager's
  approval, and what meal vouchers paid always back as meal vouchers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edge.messages import (
    INVALID_FIELD,
    REFUND_EXCEEDS_SALE,
    REFUND_MEAL_VOUCHER,
    REFUND_WHOLE_LINE,
    UNKNOWN_LINE,
    EdgeError,
)
from edge.selling.money import cumulative_floor_shares, line_gross, price_basket, vat_rows


def line_refund_amount(total: int, quantity: int, already: int, refunding: int) -> int:
    """Cents given back for `refunding` more of a line (`total` for `quantity`), `already`
    refunded: the cumulative floor, so the steps add up to the line's total exactly."""
    return total * (already + refunding) // quantity - total * already // quantity


def is_weighed(line: Mapping[str, Any]) -> bool:
    return line.get("unit") == "g"


def refund_line(sold: Mapping[str, Any], quantity: int, amount: int) -> dict[str, Any]:
    """One line of a refund: what it refunds of a line of a sale (or of a product)."""
    line = {"line_id": sold.get("id"), "product_id": sold["product_id"], "name": sold["name"],
            "vat_rate": sold["vat_rate"], "unit_price": sold["unit_price"],
            "quantity": quantity, "amount": amount, "total": -amount}
    if is_weighed(sold):
        line["unit"] = "g"
    return line


def keeps_promotions(sale: Mapping[str, Any]) -> bool:
    """A sale whose refunds price what the customer keeps (it took promotions); any other
    prorates each line."""
    return bool(sale.get("promotions"))


def _kept_line(line: Mapping[str, Any], kept: int) -> dict[str, Any]:
    """`kept` of a sold line, as the pricing function takes it: a fixed-amount discount of
    the line prorated to what is kept (rounded down: the refund never gives back more)."""
    out = {key: line.get(key) for key in ("id", "product_id", "unit_price", "vat_rate")}
    out |= {"quantity": kept, "unit": line.get("unit") or "piece",
            "price_embedded": bool(line.get("price_embedded"))}
    spec = line.get("discount")
    if spec:
        if spec.get("kind") == "amount":
            taken = line.get("discount_amount")
            if taken is None:  # a line priced before the priced fields were kept
                taken = min(spec["value"], line_gross(line))
            spec = {**spec, "value": taken * kept // line["quantity"]}
        out["discount"] = spec
    return out


def kept_cost(sale: Mapping[str, Any], kept: Mapping[str, int]) -> int:
    """What the customer keeps (line id -> quantity) costs, priced as the sale was: its
    promotions, its lines' discounts, its basket discount (a fixed amount prorated to the
    share of the basket kept, rounded down)."""
    lines = [_kept_line(line, kept[line["id"]]) for line in sale["lines"]
             if kept.get(line["id"], 0) > 0]
    promotions = sale.get("promotions") or []
    discount = sale.get("discount")
    if discount and discount.get("kind") == "amount":
        before = price_basket(lines, promotions)["total"]
        sold = sum(line["total"] + (line.get("basket_share") or 0) for line in sale["lines"])
        taken = (sale["totals"].get("discounts") or {}).get("basket")
        if taken is None:
            taken = min(discount["value"], sold)
        discount = {**discount, "value": taken * before // sold if sold else 0}
    return int(price_basket(lines, promotions, discount)["total"])


def refund_amounts(
    sale: Mapping[str, Any], asked: Sequence[tuple[Mapping[str, Any], int]],
    refunded: Mapping[str, int], given_back: int,
) -> list[int]:
    """Cents given back for each (sold line, quantity) of `asked`, `refunded` (line id ->
    quantity) and `given_back` (cents) of the sale already refunded (the module's rules)."""
    if not keeps_promotions(sale):
        return [line_refund_amount(line["total"], line["quantity"],
                                   refunded.get(line["id"], 0), quantity)
                for line, quantity in asked]
    taking = {line["id"]: quantity for line, quantity in asked}
    kept = {line["id"]: max(line["quantity"] - refunded.get(line["id"], 0)
                            - taking.get(line["id"], 0), 0) for line in sale["lines"]}
    # The refunded units' price before promotions and discounts: the most each gives back.
    grosses = [line_gross({**line, "quantity": quantity}) for line, quantity in asked]
    left = sale["totals"]["total"] - given_back
    back = max(0, min(left - kept_cost(sale, kept), sum(grosses)))
    return cumulative_floor_shares(back, grosses)


# Each line's refundable amount in a sale with promotions prices the whole sale once: past
# this many lines, it is left out (None) rather than taking the writer seconds.
MAX_PRICED_LINES = 50


def left_to_refund(sale: Mapping[str, Any], refunded: Mapping[str, int],
                   given_back: int) -> list[dict[str, int | None]]:
    """What is still refundable of each line of `sale` (quantity, and cents if the rest of
    that line alone came back), `refunded` and `given_back` of it already refunded."""
    priced = not keeps_promotions(sale) or len(sale["lines"]) <= MAX_PRICED_LINES
    out = []
    for line in sale["lines"]:
        done = min(refunded.get(line["id"], 0), line["quantity"])
        left = line["quantity"] - done
        amount: int | None = None
        if priced:
            amount = refund_amounts(sale, [(line, left)], refunded, given_back)[0] if left else 0
        out.append({"refunded": refunded.get(line["id"], 0), "refundable": left,
                    "refundable_amount": amount})
    return out


def refunded_lines(
    sale: Mapping[str, Any], asked: Iterable[Mapping[str, Any]],
    already: Mapping[str, int], given_back: int = 0,
) -> list[dict[str, Any]]:
    """The refund's lines for `asked` ({line_id, quantity}), `already` (line id -> quantity)
    and `given_back` (cents) refunded of the sale; refused as a whole if any one line
    cannot be."""
    by_id = {line["id"]: line for line in sale["lines"]}
    chosen: list[tuple[Mapping[str, Any], int]] = []
    seen = set()
    for ask in asked:
        line_id, quantity = ask.get("line_id"), ask["quantity"]
        if line_id is None:
            raise EdgeError(INVALID_FIELD, "each line of a refund with a receipt names its "
                            "'line_id' (the sold line)", {"field": "lines"})
        sold = by_id.get(line_id)
        if sold is None:
            raise EdgeError(UNKNOWN_LINE, f"the sale has no line {line_id}",
                            {"line_id": line_id})
        if line_id in seen:
            raise EdgeError(INVALID_FIELD, f"line {line_id} is asked twice",
                            {"field": "lines", "line_id": line_id})
        seen.add(line_id)
        before = already.get(line_id, 0)
        left = max(sold["quantity"] - before, 0)
        if quantity > left:
            raise EdgeError(REFUND_EXCEEDS_SALE,
                            f"{sold['name']}: {left} left to refund of {sold['quantity']} sold",
                            {"line_id": line_id, "sold": sold["quantity"], "left": left})
        if is_weighed(sold) and quantity != sold["quantity"]:
            raise EdgeError(REFUND_WHOLE_LINE, f"{sold['name']} was weighed: it is refunded "
                            "whole or not at all", {"line_id": line_id,
                                                    "quantity": sold["quantity"]})
        chosen.append((sold, quantity))
    amounts = refund_amounts(sale, chosen, already, given_back)
    return [refund_line(sold, quantity, amount)
            for (sold, quantity), amount in zip(chosen, amounts, strict=True)]


def expected_amounts(sale: Mapping[str, Any], lines: Sequence[Mapping[str, Any]],
                     already: Mapping[str, int], given_back: int) -> list[int | None]:
    """What the rules give back for each line of a refund made elsewhere (None for a line
    the sale does not have): from what this node knows was refunded before it, or, when
    it refunds beyond what is left, as if it were the first (the excess is flagged and
    listed on its own)."""
    by_id = {line["id"]: line for line in sale["lines"]}
    # More than was ever sold of a line is priced as all of it (and flagged over_refunded).
    known = [(by_id[line["line_id"]], min(line["quantity"], by_id[line["line_id"]]["quantity"]))
             for line in lines if line.get("line_id") in by_id]
    if over_refunded(sale["lines"], lines, already):
        already, given_back = {}, 0
    amounts = iter(refund_amounts(sale, known, already, given_back))
    return [next(amounts) if line.get("line_id") in by_id else None for line in lines]


def over_refunded(sold_lines: Sequence[Mapping[str, Any]], lines: Iterable[Mapping[str, Any]],
                  already: Mapping[str, int]) -> list[str]:
    """The line ids `lines` would refund beyond what was sold (for a refund that the money
    already went out for: recorded all the same, flagged)."""
    sold = {line["id"]: line["quantity"] for line in sold_lines}
    return [line["line_id"] for line in lines if line.get("line_id") in sold
            and already.get(line["line_id"], 0) + line["quantity"] > sold[line["line_id"]]]


def refund_totals(lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A refund's totals: negative amounts, VAT per rate (as a sale's, with the sign)."""
    gross_by_rate: dict[int, int] = {}
    items = 0
    for line in lines:
        gross_by_rate[line["vat_rate"]] = gross_by_rate.get(line["vat_rate"], 0) - line["amount"]
        items += 1 if is_weighed(line) else line["quantity"]
    return {"total": sum(gross_by_rate.values()), "items": items, "vat": vat_rows(gross_by_rate)}


def default_tenders(total: int, original: Sequence[Mapping[str, Any]],
                    earlier: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """How `-total` goes back when the till does not say: first to the original's other
    tenders than cash, in their order, each up to what it paid less what earlier refunds
    of the sale gave back by its method; the rest in cash (all of it without a receipt)."""
    returned: dict[str, int] = {}
    for tender in earlier:
        returned[tender["method"]] = returned.get(tender["method"], 0) - tender["amount"]
    left, tenders = -total, []
    for tender in original:
        method = tender["method"]
        if method == "cash" or left <= 0:
            continue
        taken = min(tender["amount"], returned.get(method, 0))
        returned[method] = returned.get(method, 0) - taken
        share = min(tender["amount"] - taken, left)
        if share > 0:
            back = {"method": method, "amount": -share}
            if tender.get("kind"):
                back["kind"] = tender["kind"]
            tenders.append(back)
            left -= share
    if left > 0:
        tenders.append({"method": "cash", "amount": -left})
    return tenders



def _by_method(tenders: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str | None], int]:
    """What tenders give back by method (and meal voucher kind): references do not count."""
    given: dict[tuple[str, str | None], int] = {}
    for tender in tenders:
        key = (tender["method"], tender.get("kind") if tender["method"] == "meal_voucher"
               else None)
        given[key] = given.get(key, 0) + tender["amount"]
    return {key: amount for key, amount in given.items() if amount}


def tenders_are_default(tenders: Iterable[Mapping[str, Any]],
                        default: Iterable[Mapping[str, Any]]) -> bool:
    """Whether `tenders` give back by each method what `default_tenders` would: anything
    else (a card sale refunded in cash) is the cashier's choice, for a manager to approve."""
    return _by_method(tenders) == _by_method(default)


def meal_vouchers_kept_as_vouchers(tenders: Iterable[Mapping[str, Any]],
                                   default: Iterable[Mapping[str, Any]]) -> bool:
    """Whether `tenders` give back as meal vouchers at least what meal vouchers paid of it
    (`default`): titres-restaurant are never turned into cash or anything else."""
    def vouchers(given: Iterable[Mapping[str, Any]]) -> int:
        return -sum(t["amount"] for t in given if t["method"] == "meal_voucher")
    return vouchers(tenders) >= vouchers(default)


def refuse_meal_vouchers_otherwise(tenders: Iterable[Mapping[str, Any]],
                                   default: Sequence[Mapping[str, Any]]) -> None:
    """REFUND_MEAL_VOUCHER unless the meal-voucher part goes back as meal vouchers (even a
    manager cannot approve it: vouchers paid for food are not the customer's cash)."""
    tenders = list(tenders)
    if not meal_vouchers_kept_as_vouchers(tenders, default):
        due = -sum(t["amount"] for t in default if t["method"] == "meal_voucher")
        raise EdgeError(REFUND_MEAL_VOUCHER, f"meal vouchers paid {due} of this refund: that "
                        "part goes back as a meal voucher, never in cash",
                        {"meal_voucher": due})
