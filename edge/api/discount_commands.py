"""The till's discount commands: a line's discount, the basket's, each with a reason.

Past the store's limit (`selling.discount_limit`, basis points of what is
discounted) a manager approves on the spot (edge/api/approvals.py). The rules
are edge/selling/discounts.py's; docs/protocol.md documents each command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from edge.api.approvals import Approval, approved_by
from edge.api.commands import client_id, seller_of
from edge.api.websocket_api import Connection, command
from edge.journal.store import Tx
from edge.messages import UNKNOWN_LINE, EdgeError
from edge.selling import baskets
from edge.selling.discounts import Discount, needs_approval


@dataclass(frozen=True)
class LineDiscountArgs:
    basket_id: str = client_id()
    line_id: str = client_id()
    discount: Discount | None = None  # none: remove the line's discount
    approval: Approval | None = None


@dataclass(frozen=True)
class BasketDiscountArgs:
    basket_id: str = client_id()
    discount: Discount | None = None  # none: remove the basket's discount
    approval: Approval | None = None


def _line(basket: dict[str, Any], line_id: str) -> dict[str, Any]:
    line = next((ln for ln in basket["lines"] if ln["id"] == line_id), None)
    if line is None:
        raise EdgeError(UNKNOWN_LINE, f"basket {basket['id']} has no line {line_id}")
    return line


async def _approved(conn: Connection, discount: Discount | None, discounted: int,
                    approval: Approval | None) -> Discount | None:
    """The discount as recorded: with the manager who approved it, when one had to."""
    if discount is None:
        return None
    limit = conn.node.config.discount_limit
    if approval is None and not needs_approval(discount, discounted, limit):
        return replace(discount, approved_by=None)
    manager = await approved_by(conn, approval, f"a discount past {limit / 100:g} %")
    return replace(discount, approved_by=manager)


def _body(discount: Discount | None) -> dict[str, Any] | None:
    if discount is None:
        return None
    return {key: value for key, value in asdict(discount).items() if value is not None}


@command("basket/discount_line", LineDiscountArgs)
async def basket_discount_line(conn: Connection, args: LineDiscountArgs) -> dict[str, Any]:
    seller = seller_of(conn)
    journal = conn.node.journal
    basket = await baskets.open_basket(journal, seller.till)
    # What the discount is taken off: the line's full price (a discounted line
    # takes no promotion).
    discounted = _line(basket, args.line_id)["gross"] if basket else 0
    discount = await _approved(conn, args.discount, discounted, args.approval)

    def work(tx: Tx) -> dict[str, Any]:
        current = baskets.require_open_basket(tx, seller.till, args.basket_id)
        _line(current, args.line_id)
        tx.append("basket_line_discounted", {
            "basket_id": args.basket_id, "line_id": args.line_id, "discount": _body(discount)})
        return baskets.open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


@command("basket/discount", BasketDiscountArgs)
async def basket_discount(conn: Connection, args: BasketDiscountArgs) -> dict[str, Any]:
    seller = seller_of(conn)
    journal = conn.node.journal
    basket = await baskets.open_basket(journal, seller.till)
    # What a basket discount is taken off: the lines after their own discounts.
    discounted = sum(line["total"] + line["basket_share"] for line in basket["lines"]) \
        if basket else 0
    discount = await _approved(conn, args.discount, discounted, args.approval)

    def work(tx: Tx) -> dict[str, Any]:
        baskets.require_open_basket(tx, seller.till, args.basket_id)
        tx.append("basket_discounted",
                  {"basket_id": args.basket_id, "discount": _body(discount)})
        return baskets.open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)
