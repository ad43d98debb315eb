"""Training mode ("MODE ÉCOLE"): a till a manager switched to training sells pretend sales.

`till_training_set {till, on, by}` switches a till; every node projects the
till's mode into `till_modes`. A sale or refund of a till in training carries
`training: true` (decided in its own transaction: edge/fiscal/shifts.py
`sale_marks`), takes a number of the till's training series
(`T01-8dfc74-E000042`: edge/selling/sales.py), prints "MODE ÉCOLE", belongs to
no shift, and never counts: not in totals, closures, grand totals or archives'
sales (edge/fiscal/totals.py `is_training`), so the real series has no gap and
no figure moves. A training refund refunds only a training sale, and a real
refund never a training sale (edge/selling/refunds.py); one recorded afterwards
(`sale/record_refund`) of a training sale is itself training, flagged: the money
that left the drawer shows as a shortfall at the shift's close, never as a real
refund lowering the day's totals.

Only a basket rung in training is sold in training (edge/selling/sales.py `refuse_real_basket`): a
real basket the till had open when a manager switched it to training, or one
taken over (or resumed) from another till, stays a real sale, so a customer's
cash is never taken as a pretend sale (h55).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge.fiscal.totals import is_training
from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx

__all__ = ["in_training", "is_training", "set_training", "training_of"]


def in_training(db: sqlite3.Connection, till: str) -> bool:
    row = db.execute("SELECT training FROM till_modes WHERE till = ?", (till,)).fetchone()
    return bool(row and row[0])


async def training_of(journal: Journal, till: str) -> bool:
    row = await journal.read_one("SELECT training FROM till_modes WHERE till = ?", (till,))
    return bool(row and row["training"])


async def set_training(journal: Journal, till: str, on: bool, by: str) -> bool:
    """Switch `till` to training (or back); nothing written if it is so already."""

    def work(tx: Tx) -> bool:
        if in_training(tx.db, till) != on:
            tx.append("till_training_set", {"till": till, "on": on, "by": by})
        return on

    return await journal.write(work)


@dataclass(slots=True)
class TillTrainingSet:
    till: str
    on: bool
    by: str


@event_type("till_training_set", schema=TillTrainingSet,
            merge="per till, the latest switch by event time wins, ties by the greater hash")
def _till_training_set(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT INTO till_modes (till, training, changed, by, event_hash)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (till) DO UPDATE SET training = excluded.training,
            changed = excluded.changed, by = excluded.by, event_hash = excluded.event_hash
        WHERE (excluded.changed, excluded.event_hash) > (till_modes.changed,
                                                         till_modes.event_hash)""",
        (body["till"], int(body["on"]), event.time, body["by"], event.hash))
