"""Refunds: a negative sale in the till's chain and receipt series, never an edit of the sale.

A refund (`sale_refunded`) gives back lines of a sale found by its receipt
(up to what is left of each, by edge/selling/refund_rules.py), or products
at today's price without a receipt (a manager approves: edge/api/approvals.py).
It is projected into `sales` with a negative total, so receipt numbering,
`find_sale`, `sale/held` and reprints see it; and into `refund_lines`, from
which what is left of each sold line is read.

Its id is the till's, qualified by the till (`refund_id_for`): a till resending
a refund, through any node, records nothing twice. On one node a refund never
exceeds what was sold; nodes cut apart may each accept one of the same last
unit: both are kept (the money went out), and `over_refunds` shows the excess
on every node once they meet (edge/selling/refund_conflicts.py). The event
and its projection are edge/selling/refund_events.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from edge.devices import print_jobs, store_printers
from edge.journal.store import Journal, Tx
from edge.messages import (
    INVALID_FIELD,
    MANAGER_REQUIRED,
    REFUND_OF_REFUND,
    TRAINING_MISMATCH,
    UNKNOWN_PRODUCT,
    UNKNOWN_SALE,
    EdgeError,
)
from edge.selling import refund_rules as rules
from edge.selling.baskets import Seller
from edge.selling.money import line_gross, settle
from edge.selling.sales import (
    Marks,
    is_training_body,
    last_receipt_no_in,
    last_training_no_in,
    receipt_number,
    refuse_training_card_payment,
    refuse_used_number,
    sale_json,
)
from edge.selling.tenders import recorded_after_the_fact, with_payments

REFUND_ID_SUFFIX = "#refund"


def refund_id_for(till: str, refund_id: str) -> str:
    """The id of refund `refund_id` (made by the till) of `till`.

    Sales and refunds share the `sales` table, so their ids never meet: a
    sale's id ends with `@<till code>` (edge/selling/sales.py `sale_id_for`,
    enforced at every intake) and a till code never holds `#`, so no basket
    id a till picks makes a sale id that is a refund's (h41: a refund under
    the id of the next basket hid that basket's sale).
    """
    return f"{refund_id}@{till}{REFUND_ID_SUFFIX}"


def is_refund(body: Mapping[str, Any]) -> bool:
    """A row of `sales` that is a refund (every refund names what it refunds, or None)."""
    return "refund_of" in body


@dataclass(frozen=True)
class RefundAsk:
    """A refund as the till asks for it (`sale/refund`)."""

    refund_id: str
    reason: str
    lines: Sequence[Mapping[str, Any]]  # {line_id, quantity} of the sale, or {product_id, quantity}
    sale_id: str | None = None  # None: without a receipt
    tenders: Sequence[Mapping[str, Any]] | None = None  # None: the original's methods
    receipt_no: int | None = None


def _refund_of(tx: Tx, refund_id: str) -> dict[str, Any] | None:
    """The refund of that id if recorded here (a resend); a sale of that id is refused."""
    row = tx.fetchone("SELECT body, time, hash FROM sales WHERE id = ?", (refund_id,))
    if row is None:
        return None
    body = orjson.loads(row["body"])
    if not is_refund(body):
        raise EdgeError(INVALID_FIELD, f"{refund_id} is a sale's id: a refund takes an id "
                        "of its own", {"field": "refund_id"})
    return sale_json(body, row["time"], row["hash"])


async def find_refund(journal: Journal, till: str, refund_id: str) -> dict[str, Any] | None:
    """`till`'s refund of that id (made by the till), if this node holds it."""
    row = await journal.read_one("SELECT body, time, hash FROM sales WHERE id = ?",
                                 (refund_id_for(till, refund_id),))
    if row is None or not is_refund(body := orjson.loads(row["body"])):
        return None
    return sale_json(body, row["time"], row["hash"])


def _sale_to_refund(tx: Tx, sale_id: str) -> dict[str, Any]:
    row = tx.fetchone("SELECT body, time, hash FROM sales WHERE id = ?", (sale_id,))
    if row is None:
        raise EdgeError(UNKNOWN_SALE, f"no sale {sale_id} on this node")
    body = orjson.loads(row["body"])
    if is_refund(body):
        raise EdgeError(REFUND_OF_REFUND, f"{body['receipt_number']} is a refund: it cannot "
                        "be refunded")
    return sale_json(body, row["time"], row["hash"])


def _refunded_here(db: sqlite3.Connection, sale_id: str) -> dict[str, int]:
    """Line id -> quantity refunded of that sale, as this node knows."""
    rows = db.execute("SELECT line_id, SUM(quantity) FROM refund_lines WHERE sale_id = ? "
                      "GROUP BY line_id", (sale_id,)).fetchall()
    return {row[0]: row[1] for row in rows}


def _given_back_here(db: sqlite3.Connection, sale_id: str) -> int:
    """Cents refunded of that sale, as this node knows."""
    (amount,) = db.execute("SELECT COALESCE(SUM(amount), 0) FROM refund_lines "
                           "WHERE sale_id = ?", (sale_id,)).fetchone()
    return int(amount)


def _earlier_refunds(tx: Tx, sale_id: str) -> list[dict[str, Any]]:
    rows = tx.fetchall(
        "SELECT body FROM sales WHERE id IN (SELECT refund_id FROM refund_lines WHERE sale_id = ?)"
        " ORDER BY receipt_no, id", (sale_id,))
    return [orjson.loads(row["body"]) for row in rows]


def _earlier_tenders(tx: Tx, sale_id: str) -> list[dict[str, Any]]:
    return [tender for body in _earlier_refunds(tx, sale_id) for tender in body["tenders"]]


def _catalogue_lines(tx: Tx, asked: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lines of a refund without receipt: products at today's catalogue price."""
    lines = []
    for ask in asked:
        if ask.get("product_id") is None or ask.get("line_id") is not None:
            raise EdgeError(INVALID_FIELD, "each line of a refund without receipt names a "
                            "'product_id' (and no 'line_id')", {"field": "lines"})
        row = tx.fetchone("SELECT * FROM products WHERE id = ?", (ask["product_id"],))
        if row is None:
            raise EdgeError(UNKNOWN_PRODUCT, f"no product {ask['product_id']}")
        # A product sold by the kilo is refunded by the gram, priced as the till sells it.
        weighed = dict(row).get("unit") == "kg"  # the column comes with migration 22
        product = {"product_id": row["id"], "name": row["name"], "unit_price": row["price"],
                   "vat_rate": row["vat_rate"], "quantity": ask["quantity"],
                   "unit": "g" if weighed else "piece"}
        lines.append(rules.refund_line(product, ask["quantity"], line_gross(product)))
    return lines


def _not_the_catalogues(tx: Tx, line: Mapping[str, Any]) -> bool:
    """A line of a refund without receipt made elsewhere: not the product at today's
    catalogue price and rate, or not what that price gives for its quantity."""
    row = tx.fetchone("SELECT * FROM products WHERE id = ?", (line["product_id"],))
    if row is None or row["vat_rate"] != line["vat_rate"] or row["price"] != line["unit_price"]:
        return True
    unit = "g" if dict(row).get("unit") == "kg" else "piece"
    if (line.get("unit") or "piece") != unit:
        return True
    return line["amount"] != line_gross({"unit_price": row["price"], "quantity": line["quantity"],
                                         "unit": unit})


async def refund(journal: Journal, seller: Seller, ask: RefundAsk,
                 approved_by: str | None = None,
                 manager_here: str | None = None, marks: Marks | None = None) -> dict[str, Any]:
    """Record a refund the till asks for; refused as a whole (nothing written) if any of it
    cannot be. `approved_by`: the manager whose PIN approved it; `manager_here`: the
    cashier, when a manager, who approves by being there. A manager is needed without a
    receipt, and for tenders other than the original's (`rules.tenders_are_default`)."""

    def manager_for(why: str) -> str:
        approver = approved_by or manager_here
        if approver is None:
            raise EdgeError(MANAGER_REQUIRED, f"{why} needs a manager's approval",
                            {"approval": "required"})
        return approver

    def work(tx: Tx) -> dict[str, Any]:
        refund_id = refund_id_for(seller.till, ask.refund_id)
        done = _refund_of(tx, refund_id)
        if done is not None:
            return done
        original: dict[str, Any] | None = None
        approver = approved_by
        extra = marks(tx, seller.till) if marks is not None else {}
        training = is_training_body(extra)
        if ask.sale_id is not None:
            original = _sale_to_refund(tx, ask.sale_id)
            if is_training_body(original) != training:
                raise EdgeError(TRAINING_MISMATCH, (
                    "a training sale is refunded in training mode only" if not training
                    else "training mode refunds training sales only, never a real one"))
            lines = rules.refunded_lines(original, ask.lines, _refunded_here(tx.db, ask.sale_id),
                                         _given_back_here(tx.db, ask.sale_id))
        else:
            approver = manager_for("a refund without receipt")
            lines = _catalogue_lines(tx, ask.lines)
        totals = rules.refund_totals(lines)
        default = rules.default_tenders(  # all in cash without a receipt
            totals["total"], original["tenders"] if original else [],
            _earlier_tenders(tx, original["id"]) if original else [])
        tenders = default
        if ask.tenders is not None:
            tenders = [_tender(tender) for tender in ask.tenders]
            settle(totals["total"], tenders)  # negative, adding up to the total exactly
            rules.refuse_meal_vouchers_otherwise(tenders, default)
            if not rules.tenders_are_default(tenders, default):
                approver = manager_for("giving it back otherwise than the sale was paid")
        if training:
            refuse_training_card_payment(tenders)
        tenders = with_payments(tx, seller.till, ask.refund_id, tenders, refund=True,
                                refund_of=ask.sale_id)
        if training:
            number = last_training_no_in(tx, seller.till) + 1
        else:
            if ask.receipt_no is not None:
                refuse_used_number(tx, seller.till, ask.receipt_no)
            number = ask.receipt_no or last_receipt_no_in(tx, seller.till) + 1
        body = _body(refund_id, seller.till, number, seller.cashier, original, lines, totals,
                     tenders, ask.reason, approver) | extra
        if training:
            body["receipt_number"] = receipt_number(seller.till, number, training=True)
        event = tx.append("sale_refunded", body)
        _print(tx, seller.till, body)
        return sale_json(body, event.time, event.hash)

    return await journal.write(work)


def _body(refund_id: str, till: str, number: int, cashier: str,
          original: Mapping[str, Any] | None, lines: list[dict[str, Any]],
          totals: dict[str, Any], tenders: list[dict[str, Any]], reason: str,
          approved_by: str | None) -> dict[str, Any]:
    body = {"id": refund_id, "refund_of": original["id"] if original else None,
            "till": till, "receipt_no": number, "receipt_number": receipt_number(till, number),
            "cashier": cashier, "lines": lines, "totals": totals, "tenders": tenders,
            "change": 0, "reason": reason}
    if original is not None:
        body["refund_of_receipt"] = original["receipt_number"]
    if approved_by is not None:
        body["approved_by"] = approved_by
    return body


def _print(tx: Tx, till: str, body: Mapping[str, Any]) -> None:
    """The refund's receipt (the customer's proof), and the drawer when cash goes back."""
    printer = store_printers.route(tx, till)
    if printer is not None:
        cash = any(tender["method"] == "cash" for tender in body["tenders"]) \
        and not is_training_body(body)  # training money is pretend: the drawer stays shut
        print_jobs.request_receipt(tx, printer, body["id"], open_drawer=cash)


def _tender(tender: Mapping[str, Any]) -> dict[str, Any]:
    return {key: tender[key] for key in ("method", "amount", "reference", "kind", "payment_id")
            if tender.get(key) is not None}


async def record_refund(journal: Journal, till: str, given: Mapping[str, Any],
                        offline: bool = True, logged_in: str | None = None,
                        sent_by: str | None = None) -> dict[str, Any]:
    """Record a refund the till made while no node answered (or that another node
    acknowledged and this one lacks: `offline=False`). The money went out, so it is never
    refused: what this node finds wrong is flagged (docs/protocol.md lists the flags).
    `till` made it; `sent_by`, when another, is the till that sends it (paired again
    since), named in the refund as a taken-over sale names it."""

    def work(tx: Tx) -> dict[str, Any]:
        refund_id = refund_id_for(till, given["id"])
        done = _refund_of(tx, refund_id)
        if done is not None:
            return done
        flags, original = [], None
        lines = [rules.refund_line(line, line["quantity"], line["amount"])
                 | {"line_id": line.get("line_id")} for line in given["lines"]]
        sale_id = given.get("sale_id")
        totals = rules.refund_totals(lines)
        # The record path checks no PIN: a refund that needed a manager, or names one, is
        # flagged whatever `offline` says.
        needs_manager = sale_id is None
        if sale_id is not None:
            row = tx.fetchone("SELECT body FROM sales WHERE id = ?", (sale_id,))
            original = orjson.loads(row["body"]) if row else None
            if original is None:
                flags.append("unknown_sale")  # not here yet: the excess shows once it is
            elif is_refund(original):
                flags.append("refund_of_refund")
            else:
                flags += _against_the_sale(tx, original, lines, given["tenders"], totals)
                needs_manager = "tenders_not_original" in flags
                if is_training_body(original):  # no real money came in: none goes back
                    flags.append("training_sale")
        elif any(_not_the_catalogues(tx, line) for line in lines):
            flags.append("price_differs")
        if needs_manager or given.get("approved_by"):
            flags.append("approval_unverified")
        if totals != given["totals"]:
            flags.append("totals_differ")
        if sum(tender["amount"] for tender in given["tenders"]) != totals["total"]:
            flags.append("tenders_differ")
        if tx.fetchone("SELECT 1 FROM sales WHERE till = ? AND receipt_no = ?",
                       (till, given["receipt_no"])):
            flags.append("receipt_number_reused")
        if logged_in is not None and given["cashier"] != logged_in:
            flags.append("cashier_differs")
        if tx.fetchone("SELECT 1 FROM cashiers WHERE id = ?", (given["cashier"],)) is None:
            flags.append("unknown_cashier")
        tenders, unverified = recorded_after_the_fact(
            tx, till, given["id"], [_tender(tender) for tender in given["tenders"]], refund=True,
            refund_of=sale_id)
        if unverified:
            flags.append("card_payment_unverified")
        body = _body(refund_id, till, given["receipt_no"], given["cashier"], None, lines,
                     totals, tenders, given["reason"], given.get("approved_by"))
        body["refund_of"] = sale_id
        if original is not None and not is_refund(original):
            body["refund_of_receipt"] = original["receipt_number"]
        body |= {"offline": offline, "till_time": given["time"], "flags": flags}
        if "training_sale" in flags:  # counted nowhere: the drawer's shortfall shows it
            body["training"] = True
        if "totals_differ" in flags:
            body["till_totals"] = given["totals"]
        if not offline:
            body["resent"] = True
        if sent_by is not None and sent_by != till:
            body["sent_by"] = sent_by
        event = tx.append("sale_refunded", body)
        return sale_json(body, event.time, event.hash)

    return await journal.write(work)


def _against_the_sale(tx: Tx, original: Mapping[str, Any], lines: Sequence[Mapping[str, Any]],
                      tenders: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]) -> list[str]:
    """What is wrong with a refund made elsewhere of a sale this node holds: lines it has
    not, more than is left, amounts not the rules' (`rules.expected_amounts`), money given
    back otherwise than the sale was paid."""
    flags = []
    sale_id = original["id"]
    sold = {line["id"] for line in original["lines"]}
    if any(line["line_id"] not in sold for line in lines):
        flags.append("unknown_line")
    already = _refunded_here(tx.db, sale_id)
    if rules.over_refunded(original["lines"], lines, already):
        flags.append("over_refunded")
    try:
        expected = rules.expected_amounts(original, lines, already,
                                          _given_back_here(tx.db, sale_id))
    except (EdgeError, ValueError):  # never refused: the money went out
        expected = [-1] * len(lines)
    if any(amount is not None and amount != line["amount"]
           for amount, line in zip(expected, lines, strict=True)):
        flags.append("amount_differs")
    default = rules.default_tenders(totals["total"], original["tenders"],
                                    _earlier_tenders(tx, sale_id))
    if not rules.tenders_are_default(tenders, default):
        flags.append("tenders_not_original")
    return flags


async def find_for_refund(journal: Journal, receipt: str | None = None,
                          qr: str | None = None) -> dict[str, Any]:
    """A sale found by its receipt number or its receipt's QR code (its journal hash), with
    what is left to refund of each line, as this node knows. Read in the writer: it sees
    what the refund that follows will."""

    def read(tx: Tx) -> dict[str, Any]:
        sale_id = _sale_id_by_receipt(tx, receipt) if receipt else _sale_id_by_hash(tx, qr or "")
        sale = _sale_to_refund(tx, sale_id)
        refunded = _refunded_here(tx.db, sale_id)
        given_back = _given_back_here(tx.db, sale_id)
        lines = [{**line, **left} for line, left in zip(
            sale["lines"], rules.left_to_refund(sale, refunded, given_back), strict=True)]
        refunds = [{"id": body["id"], "receipt_number": body["receipt_number"],
                    "total": body["totals"]["total"]} for body in _earlier_refunds(tx, sale_id)]
        return {"sale": {**sale, "lines": lines, "refunded_amount": given_back},
                "refunds": refunds}

    return await journal.write(read)


def _sale_id_by_receipt(tx: Tx, receipt: str) -> str:
    till, _, number = receipt.strip().rpartition("-")
    training = number[:1].upper() == "E"  # a training receipt: its number is kept below zero
    number = number[1:] if training else number
    if not till or not number.isdigit():
        raise EdgeError(INVALID_FIELD, f"{receipt!r} is not a receipt number (e.g. "
                        "T01-8dfc74-000042)", {"field": "receipt_number"})
    row = tx.fetchone("SELECT id FROM sales WHERE till = ? AND receipt_no = ? "
                      "ORDER BY json_type(body, '$.refund_of') IS NOT NULL, hash LIMIT 1",
                      (till, -int(number) if training else int(number)))
    if row is None:
        raise EdgeError(UNKNOWN_SALE, f"no receipt {receipt} on this node")
    return str(row["id"])


def _sale_id_by_hash(tx: Tx, qr: str) -> str:
    """The QR code is the hash of the sale's event: the one `sales` holds or, for a sale
    recorded through two nodes, the other."""
    row = tx.fetchone("SELECT id FROM sales WHERE hash = ?", (qr,)) or tx.fetchone(
        "SELECT json_extract(body, '$.id') AS id FROM events WHERE hash = ? "
        "AND type IN ('sale_completed', 'sale_refunded')", (qr,))
    if row is None:
        raise EdgeError(UNKNOWN_SALE, "no sale of this store has that receipt code")
    return str(row["id"])
