"""Promotions: catalogue events that the node's and the offline till's pricing apply.

A promotion (docs/protocol.md, "Promotions") is `{id, name, kind, products,
n, m?, percent?, price?, starts?, ends?}`: `n_for_m` (n for the price of
m), `nth_percent` (the n-th at `percent` basis points off), `bundle` (n of
its products for `price`). Head office or the store (`edge catalogue import
--promotions`) writes `promotion_upserted`; `promotion_ended {id}` ends one.
Dates are ISO days, inclusive, in the store's local time; the caller filters
by date (`active_promotions`), the pricing function applies what it is given.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal
from edge.schema import limits
from edge.selling.catalogue import CATALOGUE_WRITERS
from edge.selling.catalogue_import import MAX_PROMOTION_PRODUCTS, promotion_problem

# More would not fit a till's pricing in time; a store runs a handful.
MAX_ACTIVE_PROMOTIONS = 500
PROMOTION_FIELDS = ("id", "name", "kind", "products", "n", "m", "percent", "price", "starts",
                    "ends")


@dataclass(slots=True)
class PromotionUpserted:
    id: str = field(metadata=limits(min=1, max_length=64))
    name: str = field(metadata=limits(max_length=200))
    # Not a fixed list here: a kind a newer edge adds is kept, and left out by
    # `active_promotions` (promotion_problem) until this node knows it.
    kind: str = field(metadata=limits(max_length=32))
    products: list[str] = field(metadata=limits(min=1, max_length=MAX_PROMOTION_PRODUCTS))
    n: int
    m: int | None = None
    percent: int | None = None
    price: int | None = None
    starts: str | None = field(default=None, metadata=limits(max_length=10))
    ends: str | None = field(default=None, metadata=limits(max_length=10))


@dataclass(slots=True)
class PromotionEnded:
    id: str = field(metadata=limits(min=1, max_length=64))


PROMOTION_MERGE = ("one promotion per id: its latest promotion_upserted (time, then event "
                   "hash) gives its details, and it applies if that is later than its latest "
                   "promotion_ended")
ACTIVE = "(listed_time, listed_hash) > (ended_time, ended_hash)"


def _bare(db: sqlite3.Connection, promotion_id: str) -> None:
    db.execute("INSERT OR IGNORE INTO promotions (id) VALUES (?)", (promotion_id,))


@event_type("promotion_upserted", schema=PromotionUpserted, merge=PROMOTION_MERGE,
            written_by=CATALOGUE_WRITERS)
def _promotion_upserted(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    _bare(db, body["id"])
    db.execute(
        """UPDATE promotions SET name = ?, kind = ?, products = ?, n = ?, m = ?, percent = ?,
            price = ?, starts = ?, ends = ?, listed_origin = ?, listed_time = ?, listed_hash = ?
            WHERE id = ? AND (listed_time, listed_hash) < (?, ?)""",
        (body["name"], body["kind"], json.dumps(body["products"]), body["n"], body.get("m"),
         body.get("percent"), body.get("price"), body.get("starts"), body.get("ends"),
         event.origin, event.time, event.hash, body["id"], event.time, event.hash),
    )
    db.execute(f"UPDATE promotions SET active = {ACTIVE} WHERE id = ?", (body["id"],))


@event_type("promotion_ended", schema=PromotionEnded, merge=PROMOTION_MERGE,
            written_by=CATALOGUE_WRITERS)
def _promotion_ended(db: sqlite3.Connection, event: Event) -> None:
    promotion_id = event.body["id"]
    # Ended before its listing arrived: remembered, so the older listing stays ended.
    _bare(db, promotion_id)
    db.execute(
        """UPDATE promotions SET ended_time = ?, ended_hash = ? WHERE id = ?
            AND (ended_time, ended_hash) < (?, ?)""",
        (event.time, event.hash, promotion_id, event.time, event.hash),
    )
    db.execute(f"UPDATE promotions SET active = {ACTIVE} WHERE id = ?", (promotion_id,))


COLUMNS = ", ".join(PROMOTION_FIELDS)
# Running on `today` (inclusive dates; a promotion without dates always runs).
ACTIVE_ON = (f"SELECT {COLUMNS} FROM promotions WHERE active "
             "AND (starts IS NULL OR starts <= ?) AND (ends IS NULL OR ends >= ?) "
             f"ORDER BY id LIMIT {MAX_ACTIVE_PROMOTIONS}")
# Running at a moment now past (an offline sale's): listed by then, not yet ended
# then, its dates around that day. A promotion changed since then is left out (its
# listing time is later): the sale is then flagged, not priced by today's terms.
RUNNING_AT = (f"SELECT {COLUMNS} FROM promotions WHERE listed_time != '' AND listed_time <= ? "
              "AND (ended_time = '' OR ended_time > ? OR active) "
              "AND (starts IS NULL OR starts <= ?) AND (ends IS NULL OR ends >= ?) "
              f"ORDER BY id LIMIT {MAX_ACTIVE_PROMOTIONS}")
# Every one not ended, whatever its dates (a till's offline copy filters by its own day).
NOT_ENDED = (f"SELECT {COLUMNS} FROM promotions WHERE active "
             f"ORDER BY id LIMIT {MAX_ACTIVE_PROMOTIONS}")


def promotion_json(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    """The promotion as the pricing function takes it (the fields it lacks left out)."""
    values = dict(zip(PROMOTION_FIELDS, tuple(row), strict=True))
    values["products"] = json.loads(values["products"])
    return {key: value for key, value in values.items() if value is not None}


def _usable(rows: list[Any]) -> list[dict[str, Any]]:
    promotions = [promotion_json(row) for row in rows]
    return [promotion for promotion in promotions if promotion_problem(promotion) is None]


def active_promotions(db: sqlite3.Connection, today: str) -> list[dict[str, Any]]:
    """The promotions that apply on `today` (an ISO date), by id: what the pricing
    function is given. One the node cannot apply (a kind it does not know) is left out."""
    return _usable(db.execute(ACTIVE_ON, (today, today)).fetchall())


def promotions_running_at(db: sqlite3.Connection, moment: str) -> list[dict[str, Any]]:
    """The promotions that ran at `moment` (an event time, UTC), on the store's day of
    it: what an offline sale made then is priced with, whenever it reaches the node."""
    day = datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone().date()
    return _usable(db.execute(RUNNING_AT, (moment, moment, day.isoformat(),
                                           day.isoformat())).fetchall())


async def active_promotions_read(journal: Journal, today: str) -> list[dict[str, Any]]:
    """`active_promotions` off the journal's reader (for a till command)."""
    return _usable(await journal.read_all(ACTIVE_ON, (today, today)))


async def promotions_for_tills(journal: Journal) -> list[dict[str, Any]]:
    """Every promotion not ended, with its dates: a till's offline copy (catalogue/export)."""
    return _usable(await journal.read_all(NOT_ENDED))


def store_promotion_ids(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Promotions not ended, by id, with the origin that last listed each."""
    rows = db.execute(f"SELECT {COLUMNS}, listed_origin FROM promotions WHERE active")
    return {row[0]: {**promotion_json(tuple(row)[:-1]), "origin": row[-1]} for row in rows}
