"""The sales and refunds a period counts, read from a table of events.

The same reading for the journal (`edge archive`) and for an archive's events
loaded in a scratch database (`edge verify ARCHIVE`), so both count alike.
Memory stays flat whatever the period's size: SQLite sorts the events (on
disk if it must), one sale's copies are held at a time (totals.py
`counted_in_id_order`), and what the period counts waits in a temporary
table, in the order `sales.csv` lists it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import orjson

from edge.fiscal.periods import Period
from edge.fiscal.totals import SALE_TYPES, Counted, Totals, counted_in_id_order, totals_of
from edge.journal.store import EVENT_COLUMNS, row_event

COUNTED_TABLE = "temp.fiscal_counted"


def gather(db: sqlite3.Connection, period: Period, table: str = "events") -> None:
    """Put what `period` counts of the events in `table` in COUNTED_TABLE (the
    connection's own, made again)."""
    db.execute(f"DROP TABLE IF EXISTS {COUNTED_TABLE}")
    db.execute(f"CREATE TABLE {COUNTED_TABLE} (first_time TEXT, sale_id TEXT, {EVENT_COLUMNS})")
    # Every copy of a sale is read, wherever its time falls: the first decides its period.
    rows = db.execute(
        f"SELECT {EVENT_COLUMNS} FROM {table} WHERE type IN ({', '.join('?' * len(SALE_TYPES))}) "
        "ORDER BY json_extract(body, '$.id'), hash", SALE_TYPES)
    insert = (f"INSERT INTO {COUNTED_TABLE} VALUES ("
              f"{', '.join('?' * (2 + len(EVENT_COLUMNS.split(','))))})")
    for counted in counted_in_id_order(row_event(row) for row in rows):
        if period.holds(counted.first_time):
            event = counted.event
            db.execute(insert, (counted.first_time, event.body["id"], event.origin, event.seq,
                                event.id, event.time, event.type,
                                orjson.dumps(event.body).decode(), event.prev_hash, event.hash,
                                event.sig))


def counted(db: sqlite3.Connection) -> Iterator[Counted]:
    """What `gather` found, by time of first recording, then id."""
    for row in db.execute(f"SELECT first_time, {EVENT_COLUMNS} FROM {COUNTED_TABLE} "
                          "ORDER BY first_time, sale_id"):
        yield Counted(row_event(tuple(row)[1:]), row[0])


def period_totals(db: sqlite3.Connection) -> Totals:
    return totals_of(sale.body for sale in counted(db))
