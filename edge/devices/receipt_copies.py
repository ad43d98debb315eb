"""A sale's receipts as asked for: its original (once), then DUPLICATA numbered 1, 2...

Read from `print_jobs` (edge/devices/print_jobs.py) inside the writer's
transaction that asks for the next one, so one node never gives a number twice.
"""

from __future__ import annotations

from edge.journal.store import Tx

# A receipt job of the sale asked for as its original (none: the receipt was declined).
_ORIGINAL_ASKED = """SELECT 1 FROM print_jobs WHERE sale_id = ?
    AND json_extract(body, '$.kind') = 'receipt'
    AND COALESCE(json_extract(body, '$.copy'), 'original') = 'original'"""
# The sale's duplicates asked for so far: the highest copy number, and how many carry none
# (asked for before copy numbers).
_DUPLICATES_ASKED = """SELECT COALESCE(MAX(json_extract(body, '$.copy_number')), 0) AS highest,
    SUM(json_extract(body, '$.copy_number') IS NULL) AS unnumbered
    FROM print_jobs WHERE sale_id = ? AND json_extract(body, '$.kind') = 'receipt'
    AND json_extract(body, '$.copy') = 'duplicate'"""


def next_copy_number(tx: Tx, sale_id: str) -> int:
    """The number of the sale's next DUPLICATA: one above every one asked for, as known here.

    Counted in the writer's transaction, so one node never gives a number twice;
    two nodes cut apart may each give the same one (each prints it), and once
    they meet the next is above both.
    """
    row = tx.fetchone(_DUPLICATES_ASKED, (sale_id,))
    assert row is not None  # an aggregate: always one row
    return max(row["highest"] or 0, row["unnumbered"] or 0) + 1


def original_asked(tx: Tx, sale_id: str) -> bool:
    """Was a receipt of the sale asked for as its original (at the sale, or later)?"""
    return tx.fetchone(_ORIGINAL_ASKED, (sale_id,)) is not None
