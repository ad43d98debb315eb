"""What a refund gives back, and how much of a sale is left to refund. Pure: no I/O.

Integer cents throughout (docs: the bakery design's money rules):
- refunding q of a line of quantity Q and total T, r already refunded, gives
  back floor(T*(r+q)/Q) - floor(T*r/Q): a line refunded in any steps gives
  back exactly its total, never a cent more, whatever discounts made T;
- a weighed line (unit "g") is refunded whole, and counts as one item;
- the totals are negative, VAT per rate as a sale's (`vat_rows`); the tenders,
  negative too, add up to the total exactly (`settle` checks them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edge.messages import (
    INVALID_FIELD,
    REFUND_EXCEEDS_SALE,
    REFUND_WHOLE_LINE,
    UNKNOWN_LINE,
    EdgeError,
)
from edge.selling.money import vat_rows


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


def left_to_refund(line: Mapping[str, Any], refunded: int) -> dict[str, int]:
    """What is still refundable of a sold line, `refunded` of it already given back."""
    sold, total = line["quantity"], line["total"]
    done = min(refunded, sold)
    return {"refunded": refunded, "refundable": sold - done,
            "refundable_amount": total - total * done // sold}


def refunded_lines(
    sold_lines: Sequence[Mapping[str, Any]], asked: Iterable[Mapping[str, Any]],
    already: Mapping[str, int],
) -> list[dict[str, Any]]:
    """The refund's lines for `asked` ({line_id, quantity}), `already` (line id -> quantity)
    refunded of the sale; refused as a whole if any one line cannot be."""
    by_id = {line["id"]: line for line in sold_lines}
    lines, seen = [], set()
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
        amount = line_refund_amount(sold["total"], sold["quantity"], before, quantity)
        lines.append(refund_line(sold, quantity, amount))
    return lines


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

