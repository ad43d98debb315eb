"""Origins that continue another: a data folder restored from a backup, or copied.

The journal starts the new origin with `origin_started`, right after the
`origin_certified` every origin begins with (edge/journal/store.py decides
when); every node records it here, so store IT can read in plain words what
happened, and the node knows its own past when it checks its clock.
A predecessor retired this way prints nothing more: its unfinished print jobs
are in doubt from then on (`stranded` in edge/devices/print_jobs.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from edge.journal.chain import Event
from edge.journal.datafolder import REASONS
from edge.journal.event_types import event_type
from edge.journal.store import Journal


@dataclass(slots=True)
class ChainCut:
    seq: int
    hash: str


@dataclass(slots=True)
class OriginStarted:
    predecessor: str
    reason: str
    cut: ChainCut
    retires_predecessor: bool = False
    backup: dict[str, Any] | None = None
    # Origins the folder ran after the predecessor, before this start (a
    # backup restored over a folder that had already continued it).
    also_retires: list[str] = field(default_factory=list)


@event_type("origin_started", schema=OriginStarted,
            merge="one per origin (its first event); the origins it retires (its "
                  "predecessor, and any the folder ran since) are listed, and their printers "
                  "go and stay gone whenever their announcements arrive")
def _origin_started(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT OR IGNORE INTO origin_lineage
        (origin, predecessor, reason, cut_seq, cut_hash, retires_predecessor, time)
        VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (event.origin, body["predecessor"], body["reason"], body["cut"]["seq"],
         body["cut"]["hash"], int(bool(body.get("retires_predecessor"))), event.time),
    )
    retired = ([body["predecessor"]] if body.get("retires_predecessor") else []) \
        + list(body.get("also_retires", []))
    for node in retired:
        # That node is this one's past: its printers are this node's now (announced anew).
        db.execute("INSERT OR IGNORE INTO retired_origins (origin, successor, time) "
                   "VALUES (?, ?, ?)", (node, event.origin, event.time))
        db.execute("DELETE FROM store_printers WHERE node = ?", (node,))


def explain(row: sqlite3.Row | dict[str, Any], also_retired: list[str] = ()) -> str:
    """One origin's start, in words for store IT."""
    why = REASONS.get(row["reason"], row["reason"])
    also = (f"; it also replaces node {', '.join(also_retired)}, which ran this folder "
            "before the backup was put back" if also_retired else "")
    return (f"node {row['origin']} continues node {row['predecessor']} since {row['time']}: "
            f"{why}; that node's journal was taken up to #{row['cut_seq']}, and whatever it "
            f"wrote after that is kept as its peers hold it{also}")


async def last_own_time(journal: Journal) -> str | None:
    """When this node (or the node it continues) last wrote an event, by its own clock."""
    rows = await journal.read_all(
        """WITH RECURSIVE line(origin) AS (
               SELECT ? UNION SELECT predecessor FROM origin_lineage JOIN line USING (origin))
           SELECT MAX(time) AS last FROM events WHERE origin IN (SELECT origin FROM line)
             AND type NOT IN ('origin_started', 'origin_certified')""",
        (journal.origin,),
    )
    return rows[0]["last"] if rows else None
