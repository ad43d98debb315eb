"""The till's refund commands: find a receipt, refund it (or products without one), record a
refund made offline, and the manager's list of receipts refunded beyond what they sold.

docs/protocol.md documents each one; the rules are edge/selling/refunds.py's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.api.approvals import Approval, approved_by
from edge.api.commands import client_id, seller_of, taken_over
from edge.api.sale_commands import TillTotals
from edge.api.websocket_api import Connection, NoArgs, command
from edge.fiscal.shifts import sale_marks
from edge.messages import INVALID_FIELD, MANAGER_REQUIRED, EdgeError
from edge.schema import limits
from edge.selling import refund_conflicts, refunds

MAX_QUANTITY = 9_999_999  # grams, for a weighed line


@dataclass(frozen=True)
class FindArgs:
    receipt_number: str | None = field(default=None, metadata=limits(min=1, max_length=80))
    qr: str | None = field(default=None, metadata=limits(min=1, max_length=128))


@command("sale/find_for_refund", FindArgs)
async def sale_find_for_refund(conn: Connection, args: FindArgs) -> dict[str, Any]:
    if (args.receipt_number is None) == (args.qr is None):
        raise EdgeError(INVALID_FIELD, "give exactly one of 'receipt_number' or 'qr'")
    return await refunds.find_for_refund(conn.node.journal, args.receipt_number, args.qr)


@dataclass(frozen=True)
class RefundLine:
    quantity: int = field(metadata=limits(min=1, max=MAX_QUANTITY))
    line_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    product_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@dataclass(frozen=True)
class RefundTender:
    """What goes back to the customer: a negative amount."""

    method: Literal["cash", "card", "meal_voucher", "cheque", "gift_voucher"]
    amount: int = field(metadata=limits(min=-100_000_000, max=-1))
    reference: str | None = field(default=None, metadata=limits(max_length=64))
    kind: Literal["paper", "card"] | None = None
    # Given back through the terminal: its refund payment (payment/card with refund_id).
    payment_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@dataclass(frozen=True)
class RefundArgs:
    refund_id: str = client_id()
    reason: str = field(metadata=limits(min=1, max_length=200))
    lines: list[RefundLine] = field(metadata=limits(min=1, max_length=500))
    sale_id: str | None = field(default=None, metadata=limits(min=1, max_length=128))
    tenders: list[RefundTender] | None = field(default=None, metadata=limits(max_length=20))
    approval: Approval | None = None
    receipt_no: int | None = field(default=None, metadata=limits(min=1, max=999_999_999))


@command("sale/refund", RefundArgs)
async def sale_refund(conn: Connection, args: RefundArgs) -> dict[str, Any]:
    """Refund lines of a sale (`sale_id`), or products without a receipt; a manager approves
    the latter, and money given back otherwise than the sale was paid."""
    if not args.reason.strip():
        raise EdgeError(INVALID_FIELD, "'reason' must say why the customer is refunded")
    seller = seller_of(conn)
    journal = conn.node.journal
    recorded = await refunds.find_refund(journal, seller.till, args.refund_id)
    if recorded is not None:  # a resend: already approved, already given back
        return recorded
    # A PIN typed is checked here (counters, locks); whether a manager is needed at all
    # (no receipt, tenders other than the sale's) is the refund's rule, in its write.
    manager = None if args.approval is None else await approved_by(
        conn, args.approval, "this refund")
    assert conn.cashier is not None
    here = conn.cashier["id"] if conn.cashier["role"] == "manager" else None
    ask = refunds.RefundAsk(
        refund_id=args.refund_id, reason=args.reason.strip(), sale_id=args.sale_id,
        lines=[dataclasses.asdict(line) for line in args.lines],
        tenders=None if args.tenders is None else [dataclasses.asdict(t) for t in args.tenders],
        receipt_no=args.receipt_no)
    return await refunds.refund(journal, seller, ask, approved_by=manager, manager_here=here,
                                marks=sale_marks(conn.node.config.fiscal_shifts))


@dataclass(frozen=True)
class OfflineRefundLine:
    product_id: str = field(metadata=limits(min=1, max_length=64))
    name: str = field(metadata=limits(min=1, max_length=200))
    vat_rate: int = field(metadata=limits(min=0, max=10_000))
    quantity: int = field(metadata=limits(min=1, max=MAX_QUANTITY))
    amount: int = field(metadata=limits(min=0, max=100_000_000))
    unit_price: int = field(default=0, metadata=limits(min=0, max=100_000_000))
    line_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    unit: Literal["piece", "g"] | None = None


@dataclass(frozen=True)
class OfflineRefund:
    id: str = client_id()
    receipt_no: int = field(metadata=limits(min=1, max=999_999_999))
    cashier: str = client_id()
    time: str = field(metadata=limits(min=1, max_length=40))
    reason: str = field(metadata=limits(min=1, max_length=200))
    lines: list[OfflineRefundLine] = field(metadata=limits(min=1, max_length=500))
    tenders: list[RefundTender] = field(metadata=limits(max_length=20))
    totals: TillTotals
    sale_id: str | None = field(default=None, metadata=limits(min=1, max_length=128))
    approved_by: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@dataclass(frozen=True)
class RecordRefundArgs:
    refund: OfflineRefund
    offline: bool = True
    # The code of the till that made it, when that is an earlier code of this till (paired
    # again: `auth`'s `till.takes_over`); a refund's id does not name its till as a sale's does.
    till: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@command("sale/record_refund", RecordRefundArgs)
async def sale_record_refund(conn: Connection, args: RecordRefundArgs) -> dict[str, Any]:
    """A refund the till made with no node answering (or another node acknowledged): the
    money went out, so it is recorded whatever this node finds, and flagged."""
    seller = seller_of(conn)
    made_by = seller.till if args.till is None else args.till
    if made_by != seller.till and made_by not in taken_over(conn):
        raise EdgeError(INVALID_FIELD, f"this till is not till {made_by!r}: it sends the "
                        "refunds of its own code and of those it took over when paired again",
                        {"field": "till"})
    given = dataclasses.asdict(args.refund)
    return await refunds.record_refund(conn.node.journal, made_by, given,
                                       offline=args.offline, logged_in=seller.cashier,
                                       sent_by=seller.till)


@command("refunds/conflicts", NoArgs)
async def refunds_conflicts(conn: Connection, args: NoArgs) -> dict[str, Any]:
    """Receipts refunded beyond what they sold (refunds accepted by nodes cut apart)."""
    assert conn.cashier is not None
    if conn.cashier["role"] != "manager":
        raise EdgeError(MANAGER_REQUIRED, "only a manager may see the refunds to settle")
    return {"conflicts": await refund_conflicts.conflicts(conn.node.journal)}
