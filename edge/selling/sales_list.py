"""Today's sales, newest first, a page at a time: the till's sales list (to reprint one).

Every row of the `sales` table of the store's day (refunds are rows of it
too, with a negative total), read from the projections alone, so every node
that holds the same events shows the same list: whether a receipt was asked
of a printer as the original, and how many copies (DUPLICATA) so far.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from edge.journal.store import Journal
from edge.messages import INVALID_FIELD, EdgeError

# The cursor separates a sale's time from its id (an event time never holds one).
CURSOR_SEPARATOR = "|"

_RECEIPT_JOBS = ("print_jobs.sale_id = sales.id "
                 "AND json_extract(print_jobs.body, '$.kind') = 'receipt'")
SALES_TODAY_SQL = f"""SELECT sales.id, sales.till, sales.receipt_no, sales.cashier, sales.time,
        sales.total, sales.body,
        EXISTS (SELECT 1 FROM print_jobs WHERE {_RECEIPT_JOBS}
                AND COALESCE(json_extract(print_jobs.body, '$.copy'), 'original') = 'original')
            AS printed,
        (SELECT COUNT(*) FROM print_jobs WHERE {_RECEIPT_JOBS}
                AND json_extract(print_jobs.body, '$.copy') = 'duplicate') AS copies
    FROM sales
    WHERE sales.time >= :start AND (:till IS NULL OR sales.till = :till)
        AND (:before_time IS NULL OR (sales.time, sales.id) < (:before_time, :before_id))
    ORDER BY sales.time DESC, sales.id DESC LIMIT :limit"""


def start_of_today(now: datetime | None = None) -> str:
    """The store's midnight (the node's local time), as event times are written (UTC)."""
    local = (now or datetime.now(UTC)).astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cursor(row: dict[str, Any]) -> str:
    return f"{row['time']}{CURSOR_SEPARATOR}{row['id']}"


def _parse_cursor(before: str) -> tuple[str, str]:
    time, separator, sale_id = before.partition(CURSOR_SEPARATOR)
    if not separator or not time or not sale_id:
        raise EdgeError(INVALID_FIELD, "'before' must be the 'next' of a previous page",
                        {"field": "before"})
    return time, sale_id


def _row_json(row: Any) -> dict[str, Any]:
    body = orjson.loads(row["body"])
    methods = list(dict.fromkeys(tender["method"] for tender in body.get("tenders", [])))
    return {
        "id": row["id"],
        "receipt_number": body.get("receipt_number", ""),
        "till": row["till"],
        "time": row["time"],
        "total": row["total"],
        "kind": "refund" if row["total"] < 0 else "sale",
        "methods": methods,
        "cashier": row["cashier"],
        "receipt": "printed" if row["printed"] else "not_printed",
        "copies": row["copies"],
    }


async def sales_today(journal: Journal, limit: int, till: str | None = None,
                      before: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A page of today's sales, newest first; `next` is the `before` of the following page
    (None on the last one)."""
    before_time, before_id = _parse_cursor(before) if before is not None else (None, None)
    rows = await journal.read_all(SALES_TODAY_SQL, {
        "start": start_of_today(now), "till": till, "before_time": before_time,
        "before_id": before_id, "limit": limit + 1})
    page = [_row_json(row) for row in rows[:limit]]
    more = len(rows) > limit
    return {"sales": page, "next": _cursor(page[-1]) if more else None}
