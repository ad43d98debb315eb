"""Baskets and sales: every change to a basket is an event, and so is a sale.

A till has at most one open basket. Its id, and each line's id, are made up
by the till, so a command resent after a reconnect finds its work already
done and changes nothing. A completed sale gets the till's next gapless
receipt number and asks the till's printer for a receipt (and the drawer, for
cash), in the same transaction.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from edge.catalogue import find_product
from edge.chain import Event
from edge.journal import Journal, Tx, projection
from edge.messages import (
    BASKET_MISMATCH,
    EMPTY_BASKET,
    NO_OPEN_BASKET,
    UNKNOWN_LINE,
    EdgeError,
)
from edge.money import Line, basket_totals, change_due

LINE_COLUMNS = "line_id, product_id, barcode, name, unit_price, vat_rate, quantity"


@dataclass(frozen=True)
class Seller:
    """Who is selling: the till and the cashier logged in on it."""

    till: str
    cashier: str


def receipt_number(till: str, receipt_no: int) -> str:
    return f"{till}-{receipt_no:06d}"


def _line_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["line_id"],
        "product_id": row["product_id"],
        "barcode": row["barcode"],
        "name": row["name"],
        "unit_price": row["unit_price"],
        "vat_rate": row["vat_rate"],
        "quantity": row["quantity"],
        "total": row["unit_price"] * row["quantity"],
    }


def _totals(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return basket_totals(Line(ln["unit_price"], ln["quantity"], ln["vat_rate"]) for ln in lines)


def _basket_json(basket: sqlite3.Row, line_rows: list[sqlite3.Row]) -> dict[str, Any]:
    lines = [_line_json(row) for row in line_rows]
    return {
        "id": basket["id"],
        "till": basket["till"],
        "cashier": basket["cashier"],
        "lines": lines,
        "totals": _totals(lines),
    }


OPEN_BASKET_SQL = "SELECT id, till, cashier FROM baskets WHERE till = ? AND status = 'open'"
LINES_SQL = f"SELECT {LINE_COLUMNS} FROM basket_lines WHERE basket_id = ? ORDER BY position"


async def open_basket(journal: Journal, till: str) -> dict[str, Any] | None:
    basket = await journal.read_one(OPEN_BASKET_SQL, (till,))
    if basket is None:
        return None
    return _basket_json(basket, await journal.read_all(LINES_SQL, (basket["id"],)))


def _open_basket_in(tx: Tx, till: str) -> dict[str, Any] | None:
    basket = tx.fetchone(OPEN_BASKET_SQL, (till,))
    if basket is None:
        return None
    return _basket_json(basket, tx.fetchall(LINES_SQL, (basket["id"],)))


def _require_basket(tx: Tx, till: str, basket_id: str) -> dict[str, Any]:
    basket = _open_basket_in(tx, till)
    if basket is None:
        raise EdgeError(NO_OPEN_BASKET, f"till {till} has no open basket")
    if basket["id"] != basket_id:
        raise EdgeError(
            BASKET_MISMATCH, f"till {till} has basket {basket['id']} open, not {basket_id}"
        )
    return basket


async def add_line(
    journal: Journal,
    seller: Seller,
    basket_id: str,
    line_id: str,
    quantity: int,
    barcode: str | None = None,
    product_id: str | None = None,
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        basket = _open_basket_in(tx, seller.till)
        if basket is not None and basket["id"] != basket_id:
            raise EdgeError(
                BASKET_MISMATCH,
                f"till {seller.till} has basket {basket['id']} open, not {basket_id}",
            )
        if basket is None:
            closed = tx.fetchone("SELECT status FROM baskets WHERE id = ?", (basket_id,))
            if closed is not None:
                raise EdgeError(
                    BASKET_MISMATCH, f"basket {basket_id} is already {closed['status']}"
                )
        elif any(line["id"] == line_id for line in basket["lines"]):
            return basket
        product = find_product(tx, barcode=barcode, product_id=product_id)
        tx.append(
            "basket_line_added",
            {
                "basket_id": basket_id,
                "till": seller.till,
                "cashier": seller.cashier,
                "line_id": line_id,
                "product_id": product["id"],
                "barcode": product["barcode"],
                "name": product["name"],
                "unit_price": product["price"],
                "vat_rate": product["vat_rate"],
                "quantity": quantity,
            },
        )
        return _open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def set_quantity(
    journal: Journal, seller: Seller, basket_id: str, line_id: str, quantity: int
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        basket = _require_basket(tx, seller.till, basket_id)
        line = next((ln for ln in basket["lines"] if ln["id"] == line_id), None)
        if line is None:
            raise EdgeError(UNKNOWN_LINE, f"basket {basket_id} has no line {line_id}")
        if line["quantity"] == quantity:
            return basket
        tx.append(
            "basket_quantity_set",
            {"basket_id": basket_id, "line_id": line_id, "quantity": quantity},
        )
        return _open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def remove_line(
    journal: Journal, seller: Seller, basket_id: str, line_id: str
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        basket = _require_basket(tx, seller.till, basket_id)
        if not any(line["id"] == line_id for line in basket["lines"]):
            return basket
        tx.append("basket_line_removed", {"basket_id": basket_id, "line_id": line_id})
        return _open_basket_in(tx, seller.till)  # type: ignore[return-value]

    return await journal.write(work)


async def void_basket(journal: Journal, seller: Seller, basket_id: str) -> None:
    def work(tx: Tx) -> None:
        basket = _open_basket_in(tx, seller.till)
        if basket is None or basket["id"] != basket_id:
            return  # already voided or sold: voiding again is a no-op
        tx.append(
            "basket_voided",
            {
                "basket_id": basket_id,
                "till": seller.till,
                "cashier": seller.cashier,
                "lines": basket["lines"],
                "total": basket["totals"]["total"],
            },
        )

    await journal.write(work)


def _sale_json(body: dict[str, Any], time: str, hash_: str) -> dict[str, Any]:
    return {**body, "time": time, "hash": hash_}


async def complete_sale(
    journal: Journal,
    seller: Seller,
    basket_id: str,
    tenders: list[dict[str, Any]],
    printer: str | None,
) -> dict[str, Any]:
    def work(tx: Tx) -> dict[str, Any]:
        done = tx.fetchone("SELECT body, time, hash FROM sales WHERE id = ?", (basket_id,))
        if done is not None:
            return _sale_json(orjson.loads(done["body"]), done["time"], done["hash"])
        basket = _require_basket(tx, seller.till, basket_id)
        if not basket["lines"]:
            raise EdgeError(EMPTY_BASKET, "the basket is empty")
        totals = basket["totals"]
        change = change_due(totals["total"], tenders)
        last = tx.fetchone(
            "SELECT COALESCE(MAX(receipt_no), 0) AS n FROM sales WHERE till = ?", (seller.till,)
        )
        receipt_no = (last["n"] if last else 0) + 1
        body = {
            "id": basket_id,
            "till": seller.till,
            "receipt_no": receipt_no,
            "receipt_number": receipt_number(seller.till, receipt_no),
            "cashier": seller.cashier,
            "lines": basket["lines"],
            "totals": totals,
            "tenders": [_tender(t) for t in tenders],
            "change": change,
        }
        event = tx.append("sale_completed", body)
        if printer is not None:
            tx.append(
                "print_requested",
                {
                    "job_id": str(uuid.uuid4()),
                    "printer": printer,
                    "node": journal.origin,
                    "kind": "receipt",
                    "sale_id": basket_id,
                    "open_drawer": any(t["method"] == "cash" for t in tenders),
                },
            )
        return _sale_json(body, event.time, event.hash)

    return await journal.write(work)


def _tender(tender: dict[str, Any]) -> dict[str, Any]:
    if tender["method"] == "card":
        return {"method": "card", "amount": tender["amount"], "reference": tender["reference"]}
    return {"method": tender["method"], "amount": tender["amount"]}


async def find_sale(journal: Journal, sale_id: str) -> dict[str, Any] | None:
    row = await journal.read_one("SELECT body, time, hash FROM sales WHERE id = ?", (sale_id,))
    return _sale_json(orjson.loads(row["body"]), row["time"], row["hash"]) if row else None


@projection("basket_line_added")
def _basket_line_added(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT OR IGNORE INTO baskets (id, till, cashier, opened_at, status)
        VALUES (?, ?, ?, ?, 'open')""",
        (body["basket_id"], body["till"], body["cashier"], event.time),
    )
    db.execute(
        f"""INSERT OR IGNORE INTO basket_lines (basket_id, position, {LINE_COLUMNS})
        VALUES (?, (SELECT COALESCE(MAX(position), 0) + 1 FROM basket_lines
                    WHERE basket_id = ?), ?, ?, ?, ?, ?, ?, ?)""",
        (
            body["basket_id"],
            body["basket_id"],
            body["line_id"],
            body["product_id"],
            body["barcode"],
            body["name"],
            body["unit_price"],
            body["vat_rate"],
            body["quantity"],
        ),
    )


@projection("basket_quantity_set")
def _basket_quantity_set(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        "UPDATE basket_lines SET quantity = ? WHERE basket_id = ? AND line_id = ?",
        (body["quantity"], body["basket_id"], body["line_id"]),
    )


@projection("basket_line_removed")
def _basket_line_removed(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        "DELETE FROM basket_lines WHERE basket_id = ? AND line_id = ?",
        (body["basket_id"], body["line_id"]),
    )


def _close_basket(db: sqlite3.Connection, basket_id: str, status: str) -> None:
    db.execute("UPDATE baskets SET status = ? WHERE id = ?", (status, basket_id))
    db.execute("DELETE FROM basket_lines WHERE basket_id = ?", (basket_id,))


@projection("basket_voided")
def _basket_voided(db: sqlite3.Connection, event: Event) -> None:
    _close_basket(db, event.body["basket_id"], "voided")


@projection("sale_completed")
def _sale_completed(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT OR IGNORE INTO sales (id, till, receipt_no, cashier, time, total, body, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            body["id"],
            body["till"],
            body["receipt_no"],
            body["cashier"],
            event.time,
            body["totals"]["total"],
            orjson.dumps(body).decode(),
            event.hash,
        ),
    )
    _close_basket(db, body["id"], "sold")
