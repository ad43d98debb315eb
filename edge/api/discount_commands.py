"""The till's discount commands: a line's discount, the basket's, each with a reason.

Past the store's limit (`selling.discount_limit`, edge/selling/discounts.py
`past_limit`: each discount, and all a cashier gave together) a manager
approves on the spot (edge/api/approvals.py). The rules
are edge/selling/discounts.py's; docs/protocol.md documents each command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from edge.api.approvals import Approval, approved_by
from edge.api.commands import client_id, seller_of
from edge.api.websocket_api import Connection, command
from edge.journal.store import Tx
from edge.messages import MANAGER_REQUIRED, UNKNOWN_LINE, EdgeError
from edge.selling import baskets
from edge.selling.discounts import Discount, basket_size, past_limit
from edge.selling.tenders import refuse_below_card_taken


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


async def _as_recorded(conn: Connection, discount: Discount | None,
                       approval: Approval | None) -> Discount | None:
    """The discount with the manager who approved it, if one did (a PIN typed here, or a
    manager selling); never a name the till made up."""
    if discount is None:
        return None
    manager = None
    if approval is not None or conn.cashier["role"] == "manager":  # type: ignore[index]
        manager = await approved_by(conn, approval, "this discount")
    return replace(discount, approved_by=manager, approved_on=None)


def _within_limit(tx: Tx, conn: Connection) -> dict[str, Any]:
    """The basket with the new discount, unless a cashier alone may not give that much:
    then MANAGER_REQUIRED, and the till asks a manager's PIN on the spot; nor below what
    the card terminal took for it (CARD_PAYMENT_TAKEN)."""
    limit = conn.node.config.discount_limit
    basket = baskets.open_basket_in(tx, seller_of(conn).till)
    assert basket is not None
    if past_limit(basket, limit):
        raise EdgeError(MANAGER_REQUIRED, f"discounts past {limit / 100:g} % of the basket "
                        "or of a line need a manager's approval", {"approval": "required"})
    refuse_below_card_taken(tx, basket["id"], basket["totals"]["total"])
    return basket


def _body(discount: Discount | None, on: int) -> dict[str, Any] | None:
    """The event's discount; an approved one says what it was approved on (`on` cents)."""
    if discount is None:
        return None
    if discount.approved_by:
        discount = replace(discount, approved_on=on)
    return {key: value for key, value in asdict(discount).items() if value is not None}


@command("basket/discount_line", LineDiscountArgs)
async def basket_discount_line(conn: Connection, args: LineDiscountArgs) -> dict[str, Any]:
    seller = seller_of(conn)
    discount = await _as_recorded(conn, args.discount, args.approval)

    def work(tx: Tx) -> dict[str, Any]:
        current = baskets.require_open_basket(tx, seller.till, args.basket_id)
        gross = _line(current, args.line_id)["gross"]
        tx.append("basket_line_discounted", {
            "basket_id": args.basket_id, "line_id": args.line_id,
            "discount": _body(discount, gross)})
        return _within_limit(tx, conn)

    return await conn.node.journal.write(work)


@command("basket/discount", BasketDiscountArgs)
async def basket_discount(conn: Connection, args: BasketDiscountArgs) -> dict[str, Any]:
    seller = seller_of(conn)
    discount = await _as_recorded(conn, args.discount, args.approval)

    def work(tx: Tx) -> dict[str, Any]:
        current = baskets.require_open_basket(tx, seller.till, args.basket_id)
        tx.append("basket_discounted", {
            "basket_id": args.basket_id, "discount": _body(discount, basket_size(current))})
        return _within_limit(tx, conn)

    return await conn.node.journal.write(work)
