"""Receipts refunded beyond what they sold, read from the refund projections.

Beyond in quantity (more units than a line sold) or in cents (more than a
line cost, or than the whole receipt's total). On one node a refund never
exceeds what was sold (edge/selling/refunds.py);
nodes cut apart may each accept one of the same last unit. Both refunds are
kept (the money went out); once their events meet, every node lists the same
excess here: `edge status` in words, the manager's `refunds/conflicts`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edge.devices.receipt import euros
from edge.journal.store import Journal

# A line's cap in cents: its total; for a sale that took promotions, its price before
# them (a refund there gives back what the customer keeps would not cost, which may lie on
# another line than the one that took the discount: edge/selling/refund_rules.py).
OVER_REFUNDED = """
    WITH refunded AS (
        SELECT sale_id, line_id, SUM(quantity) AS quantity, SUM(amount) AS amount
        FROM refund_lines WHERE sale_id IS NOT NULL GROUP BY sale_id, line_id),
    checked AS (
        SELECT refunded.sale_id, refunded.line_id, refunded.quantity AS refunded,
            refunded.amount, sales.till,
            json_extract(sales.body, '$.receipt_number') AS receipt,
            json_extract(line.value, '$.name') AS name,
            json_extract(line.value, '$.quantity') AS sold,
            json_extract(line.value, '$.total') AS sold_total,
            CASE WHEN json_type(sales.body, '$.promotions') IS NULL
                THEN json_extract(line.value, '$.total')
                ELSE COALESCE(json_extract(line.value, '$.gross'),
                              json_extract(line.value, '$.total')) END AS cap
        FROM refunded JOIN sales ON sales.id = refunded.sale_id
        JOIN json_each(sales.body, '$.lines') AS line
            ON json_extract(line.value, '$.id') = refunded.line_id)
    SELECT sale_id, line_id, refunded, amount, till, receipt, name, sold, sold_total, cap
    FROM checked WHERE refunded > sold OR amount > cap
    ORDER BY receipt, line_id LIMIT ?"""

# A whole receipt given back beyond its total, though no one line is past its cap.
OVER_PAID_BACK = """
    SELECT refund_lines.sale_id, SUM(refund_lines.amount) AS amount, sales.total, sales.till,
        json_extract(sales.body, '$.receipt_number') AS receipt
    FROM refund_lines JOIN sales ON sales.id = refund_lines.sale_id
    GROUP BY refund_lines.sale_id HAVING SUM(refund_lines.amount) > sales.total
    ORDER BY receipt LIMIT ?"""

REFUNDS_OF_LINE = """
    SELECT refund_lines.refund_id, refund_lines.quantity, refund_lines.amount, sales.till,
        sales.cashier, sales.time, json_extract(sales.body, '$.receipt_number') AS receipt
    FROM refund_lines LEFT JOIN sales ON sales.id = refund_lines.refund_id
    WHERE refund_lines.sale_id = ? AND refund_lines.line_id = ?
    ORDER BY receipt, refund_lines.refund_id"""

REFUNDS_OF_SALE = """
    SELECT refund_lines.refund_id, SUM(refund_lines.quantity), SUM(refund_lines.amount),
        sales.till, sales.cashier, sales.time,
        json_extract(sales.body, '$.receipt_number') AS receipt
    FROM refund_lines LEFT JOIN sales ON sales.id = refund_lines.refund_id
    WHERE refund_lines.sale_id = ? GROUP BY refund_lines.refund_id
    ORDER BY receipt, refund_lines.refund_id"""


def _refunds(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"id": r[0], "quantity": r[1], "amount": r[2], "till": r[3], "cashier": r[4],
             "time": r[5], "receipt_number": r[6]} for r in rows]


def over_refunds(db: sqlite3.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """Lines of sales refunded beyond what they sold, in quantity or in cents (refunds
    accepted by nodes cut apart, a till's offline refund), then receipts given back beyond
    their total: read from the projections, the same list on every node that holds the
    same events."""
    found = []
    for row in db.execute(OVER_REFUNDED, (limit,)).fetchall():
        sale_id, line_id, refunded, amount, till, receipt, name, sold, sold_total, cap = \
            tuple(row)
        refunds = _refunds(db.execute(REFUNDS_OF_LINE, (sale_id, line_id)).fetchall())
        found.append({"sale_id": sale_id, "receipt_number": receipt, "till": till,
                      "line_id": line_id, "name": name, "sold": sold, "refunded": refunded,
                      "excess": max(refunded - sold, 0), "sold_total": sold_total,
                      "amount_refunded": amount, "excess_amount": max(amount - cap, 0),
                      "refunds": refunds})
    listed = {over["sale_id"] for over in found}
    for sale_id, amount, total, till, receipt in db.execute(OVER_PAID_BACK, (limit,)):
        if sale_id in listed:
            continue
        refunds = _refunds(db.execute(REFUNDS_OF_SALE, (sale_id,)).fetchall())
        found.append({"sale_id": sale_id, "receipt_number": receipt, "till": till,
                      "line_id": None, "name": None, "sold": None, "refunded": None,
                      "excess": 0, "sold_total": total, "amount_refunded": amount,
                      "excess_amount": amount - total, "refunds": refunds})
    return found[:limit]


def over_refunds_in_words(db: sqlite3.Connection, limit: int = 20) -> dict[str, str]:
    """For `edge status`: each receipt refunded beyond what it sold, and by which refunds."""
    said: dict[str, list[str]] = {}
    for over in over_refunds(db, limit):
        by = ", ".join(f"{r['receipt_number']} ({r['quantity']})" for r in over["refunds"])
        paid = f"{euros(over['amount_refunded'])} EUR of {euros(over['sold_total'])}"
        said.setdefault(f"receipt {over['receipt_number']}", []).append(
            f"{over['name']} sold {over['sold']}, refunded {over['refunded']} ({paid}) by {by}"
            if over["line_id"] is not None else f"given back {paid} by {by}")
    return {receipt: "refunded beyond what it sold: " + "; ".join(lines)
            for receipt, lines in said.items()}


async def conflicts(journal: Journal, limit: int = 50) -> list[dict[str, Any]]:
    """`over_refunds`, for the manager's till."""
    return await journal.write(lambda tx: over_refunds(tx.db, limit))
