"""The till's sale commands: sell the open basket, record a sale made offline (or
acknowledged by a node that died), and which of its receipt numbers a node holds.

docs/protocol.md documents each one; the rules are edge/selling/sales.py's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.api.commands import client_id, sale_id_arg, seller_of, taken_over
from edge.api.websocket_api import Connection, command
from edge.devices import print_jobs, store_printers
from edge.fiscal.shifts import sale_marks
from edge.schema import limits
from edge.selling import offline_sales, sales
from edge.selling.discounts import Discount
from edge.selling.line_items import MAX_GRAMS
from edge.selling.money import MAX_TENDERS


@dataclass(frozen=True)
class Tender:
    method: Literal["cash", "card", "meal_voucher", "cheque", "gift_voucher"]
    amount: int = field(metadata=limits(min=1, max=100_000_000))
    # The card terminal's slip, a cheque's or a gift voucher's number: optional.
    reference: str | None = field(default=None, metadata=limits(max_length=64))
    kind: Literal["paper", "card"] | None = None  # a meal voucher's
    # A card paid through the terminal: its payment (payment/card); none: keyed by hand.
    payment_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@dataclass(frozen=True)
class CompleteArgs:
    basket_id: str = client_id()
    # None at all only for a basket that costs nothing (given away, 100 % off).
    tenders: list[Tender] = field(metadata=limits(min=0, max_length=MAX_TENDERS))
    receipt_no: int | None = field(default=None, metadata=limits(min=1, max=999_999_999))
    print: bool = True  # False: the customer wants no receipt (a cash sale still opens the drawer)


@command("sale/complete", CompleteArgs)
async def sale_complete(conn: Connection, args: CompleteArgs) -> dict[str, Any]:
    sale = await sales.complete_sale(
        conn.node.journal,
        seller_of(conn),
        args.basket_id,
        [tender.__dict__ for tender in args.tenders],
        receipt_no=args.receipt_no,
        print_receipt=args.print,
        meal_voucher_cap=conn.node.config.meal_voucher_cap,
        discount_limit=conn.node.config.discount_limit,
        marks=sale_marks(conn.node.config.fiscal_shifts),
    )
    conn.node.metrics.sales += 1
    printer = await print_jobs.receipt_printer(conn.node.journal, sale["id"])
    return {**sale, "print": printer_place(conn, printer) if printer else None}


def printer_place(conn: Connection, printer: store_printers.PrinterRef) -> dict[str, Any]:
    """A printer as the till sees it: may it print there now?"""
    return {"printer": printer.name, "node": printer.node,
            "reachable": conn.node.reaches(printer.node)}


@dataclass(frozen=True)
class SoldLine:
    id: str = client_id()
    product_id: str = field(metadata=limits(min=1, max_length=64))
    name: str = field(metadata=limits(min=1, max_length=200))
    unit_price: int = field(metadata=limits(min=0, max=100_000_000))
    vat_rate: int = field(metadata=limits(min=0, max=10_000))
    quantity: int = field(metadata=limits(min=1, max=MAX_GRAMS))
    barcode: str | None = field(default=None, metadata=limits(max_length=32))
    unit: Literal["piece", "g"] = "piece"
    price_embedded: bool = False
    discount: Discount | None = None
    approved_by: str | None = field(default=None, metadata=limits(max_length=64))  # open price


@dataclass(frozen=True)
class VatRow:
    rate: int
    base: int
    vat: int
    total: int


@dataclass(frozen=True)
class TillTotals:
    total: int
    items: int
    vat: list[VatRow] = field(metadata=limits(max_length=20))


@dataclass(frozen=True)
class OfflineSale:
    id: str = sale_id_arg()
    receipt_no: int = field(metadata=limits(min=1, max=999_999_999))
    cashier: str = client_id()
    time: str = field(metadata=limits(min=1, max_length=40))
    lines: list[SoldLine] = field(metadata=limits(min=1, max_length=500))
    tenders: list[Tender] = field(metadata=limits(min=0, max_length=MAX_TENDERS))
    totals: TillTotals
    discount: Discount | None = None  # the basket's
    change: int = field(default=0, metadata=limits(min=0))
    # Absent from tills of before sale ids, whose sale id was the basket id.
    basket_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@dataclass(frozen=True)
class RecordArgs:
    sale: OfflineSale
    offline: bool = True
    print: bool = True  # the customer's choice; the node prints nothing for it either way


@command("sale/record", RecordArgs)
async def sale_record(conn: Connection, args: RecordArgs) -> dict[str, Any]:
    sale = dataclasses.asdict(args.sale)
    seller = seller_of(conn)
    # Recorded whatever cashier it names (the money was taken), flagged if not this one.
    recorded = await offline_sales.record_offline_sale(
        conn.node.journal, seller.till, sale, offline=args.offline, logged_in=seller.cashier,
        print_receipt=args.print, rules=offline_sales.StoreRules.of(conn.node.config),
        takes_over=taken_over(conn),
    )
    conn.node.metrics.sales += 1
    return recorded


@dataclass(frozen=True)
class HeldArgs:
    since: int = field(default=1, metadata=limits(min=1, max=999_999_999))


@command("sale/held", HeldArgs, access="till")
async def sale_held(conn: Connection, args: HeldArgs) -> dict[str, Any]:
    assert conn.till is not None
    till = conn.till["code"]
    held = await sales.held_receipt_numbers(conn.node.journal, till, args.since)
    return {"till": till, "receipt_nos": held}
