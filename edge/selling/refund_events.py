"""A refund's event, `sale_refunded`, and its projection into `sales` and `refund_lines`.

The rules that write it are edge/selling/refunds.py's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.selling.sales import SaleTotals, keep_sale_row


@dataclass(slots=True)
class RefundedLine:
    product_id: str
    name: str
    vat_rate: int
    quantity: int
    amount: int
    line_id: str | None = None  # None: a refund without receipt
    unit_price: int = 0
    total: int = 0  # -amount: summed like a sale's lines


@dataclass(slots=True)
class RefundTender:
    method: str
    amount: int
    reference: str | None = None
    kind: str | None = None


@dataclass(slots=True)
class SaleRefunded:
    id: str
    till: str
    receipt_no: int
    receipt_number: str
    cashier: str
    lines: list[RefundedLine]
    totals: SaleTotals
    tenders: list[RefundTender]
    reason: str
    refund_of: str | None = None  # the refunded sale's id; None: without a receipt
    refund_of_receipt: str | None = None
    approved_by: str | None = None
    change: int = 0
    offline: bool = False
    resent: bool = False
    flags: list[str] = field(default_factory=list)


@event_type("sale_refunded", schema=SaleRefunded,
            merge="one refund per id: the smaller event hash wins, in `sales` (a negative "
                  "sale in its till's receipt series) and in `refund_lines` alike; what is "
                  "refunded beyond a sale is read from those, never stored")
def _sale_refunded(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    # A basket of its own: never taken for a basket sold twice.
    keep_sale_row(db, event, basket_id=body["id"])
    # The lines of the refund's winning event, whichever came first.
    (held,) = db.execute("SELECT MIN(event_hash) FROM refund_lines WHERE refund_id = ?",
                         (body["id"],)).fetchone()
    if held is not None and held <= event.hash:
        return
    db.execute("DELETE FROM refund_lines WHERE refund_id = ?", (body["id"],))
    db.executemany(
        """INSERT INTO refund_lines (refund_id, position, sale_id, line_id, product_id,
            quantity, amount, event_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [(body["id"], position, body.get("refund_of"), line.get("line_id"),
          line["product_id"], line["quantity"], line["amount"], event.hash)
         for position, line in enumerate(body["lines"])])
