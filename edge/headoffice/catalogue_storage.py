"""A staged catalogue CSV becomes head office's catalogue events, a page at a time.

One transaction under the catalogue lock, on SQLite or PostgreSQL alike:
the checked rows (edge/headoffice/catalogue_staging.py) are copied into a
temporary table beside `products` (COPY on PostgreSQL), and the database
finds the differences by id, a page at a time. Each page of differences
becomes signed events on head office's chain and changes the products
table, before the next page is read: memory holds a page, never the
catalogue. Nothing is visible before the commit; an error rolls all of it
back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from edge.headoffice.catalogue_staging import STAGED_COLUMNS, StagedCatalogue
from edge.headoffice.storage import (
    PRODUCT_FIELDS,
    HeadOfficeStorage,
    _append_catalogue,
    _apply_to_products,
    _current_origin,
)
from edge.journal.signing import ORIGIN_CERTIFIED

PAGE = 5_000

# A CSV row that is not head office's product as it stands: new, delisted, or changed.
_DIFFERENT = " OR ".join(f"p.{field} != s.{field}" for field in PRODUCT_FIELDS[1:])
UPSERTS = f"""SELECT {', '.join(f's.{column}' for column in STAGED_COLUMNS)},
    p.id IS NULL AS new
    FROM import_rows AS s LEFT JOIN products AS p ON p.id = s.id
    WHERE s.line > $1 AND (p.id IS NULL OR p.active = 0 OR {_DIFFERENT})
    ORDER BY s.line LIMIT $2"""
DELISTS = """SELECT p.id FROM products AS p WHERE p.id > $1 AND p.active = 1
    AND NOT EXISTS (SELECT 1 FROM import_rows AS s WHERE s.id = p.id)
    ORDER BY p.id LIMIT $2"""


async def apply_staged(storage: HeadOfficeStorage, staged: StagedCatalogue,
                       keep_missing: bool) -> tuple[int, int, int]:
    """Publish what the staged CSV changes; (added, changed, delisted)."""
    added = changed = delisted = 0
    async with storage.db.transaction() as tx:
        await tx.lock("catalogue")
        # Read inside the lock: another head-office process may have moved it on.
        origin = storage.origin = await _current_origin(tx)
        await tx.execute(
            "CREATE TEMP TABLE import_rows (line BIGINT PRIMARY KEY, id TEXT NOT NULL, "
            "barcode TEXT NOT NULL, name TEXT NOT NULL, price BIGINT NOT NULL, "
            "vat_rate BIGINT NOT NULL, category TEXT NOT NULL)")
        pages = staged.pages(PAGE)
        while page := await asyncio.to_thread(next, pages, None):
            await tx.copy_rows("import_rows", STAGED_COLUMNS, page)
        await tx.execute("CREATE UNIQUE INDEX import_rows_id ON import_rows (id)")

        async def publish(changes: list[tuple[str, dict[str, Any]]]) -> None:
            events = await _append_catalogue(tx, origin, changes, storage.key)
            await _apply_to_products(
                tx, [event for event in events if event.type != ORIGIN_CERTIFIED])

        last_line = 0
        while rows := await tx.fetch(UPSERTS, last_line, PAGE):
            last_line = rows[-1]["line"]
            new = sum(1 for row in rows if row["new"])
            added, changed = added + new, changed + len(rows) - new
            await publish([("product_upserted", {field: row[field] for field in PRODUCT_FIELDS})
                           for row in rows])
        last_id = ""
        while not keep_missing and (rows := await tx.fetch(DELISTS, last_id, PAGE)):
            last_id = rows[-1]["id"]
            delisted += len(rows)
            await publish([("product_delisted", {"id": row["id"]}) for row in rows])
        await tx.execute("DROP TABLE import_rows")
    return added, changed, delisted
