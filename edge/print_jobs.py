"""Print jobs as events: asking for a print, and the tables that say how each job stands.

`print_requested` (a receipt with its sale, a reprint, a "no sale" drawer
opening, a test page) adds a row to `print_jobs`; the print queue's events
move it on: `print_job_started` (bytes are going out), `print_job_interrupted`
(the printer went away mid-job, or the node stopped: `partial`, `cut_sent`),
`drawer_opened`, `print_job_done` (`outcome`). Projections, like every table
the node reads; a job's row is all the queue needs to pick up after a restart.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from edge.chain import Event
from edge.journal import Journal, Tx, projection
from edge.messages import UNKNOWN_SALE, EdgeError

UNFINISHED = "('pending', 'started', 'interrupted')"


@projection("print_requested")
def _print_requested(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT OR IGNORE INTO print_jobs (id, printer, node, body, created_at)
        VALUES (?, ?, ?, ?, ?)""",
        (body["job_id"], body["printer"], body["node"], orjson.dumps(body).decode(), event.time),
    )


@projection("print_job_started")
def _print_job_started(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "UPDATE print_jobs SET status = 'started', attempts = attempts + 1 WHERE id = ?",
        (event.body["job_id"],),
    )


@projection("print_job_interrupted")
def _print_job_interrupted(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        "UPDATE print_jobs SET status = 'interrupted', partial = ?, cut_sent = ? WHERE id = ?",
        (int(body["partial"]), int(body["cut_sent"]), body["job_id"]),
    )


@projection("print_job_done")
def _print_job_done(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "UPDATE print_jobs SET status = ? WHERE id = ?",
        (event.body["outcome"], event.body["job_id"]),
    )


@projection("drawer_opened")
def _drawer_opened(db: sqlite3.Connection, event: Event) -> None:
    if event.body.get("job_id"):
        db.execute("UPDATE print_jobs SET drawer_opened = 1 WHERE id = ?",
                   (event.body["job_id"],))


def _request(tx: Tx, node: str, printer: str, kind: str, **details: Any) -> dict[str, Any]:
    body = {"job_id": str(uuid.uuid4()), "printer": printer, "node": node, "kind": kind,
            **details}
    tx.append("print_requested", body)
    return {"job_id": body["job_id"], "printer": printer}


async def request_reprint(
    journal: Journal, printer: str, sale_id: str, cashier: str
) -> dict[str, Any]:
    """Queue a DUPLICATA of a sale's receipt (never opens the drawer)."""

    def work(tx: Tx) -> dict[str, Any]:
        if tx.fetchone("SELECT 1 FROM sales WHERE id = ?", (sale_id,)) is None:
            raise EdgeError(UNKNOWN_SALE, f"no sale {sale_id} in this store")
        return _request(tx, journal.origin, printer, "receipt", sale_id=sale_id, open_drawer=False,
                        copy="duplicate", requested_by=cashier)

    return await journal.write(work)


async def request_drawer(
    journal: Journal, printer: str, reason: str, cashier: str
) -> dict[str, Any]:
    """Queue a "no sale" drawer opening (the caller checked the cashier is a manager)."""
    return await journal.write(lambda tx: _request(
        tx, journal.origin, printer, "drawer", open_drawer=True, reason=reason, requested_by=cashier
    ))


async def request_test(journal: Journal, printer: str) -> dict[str, Any]:
    """Queue `edge devices test`: the test page, and a drawer pulse."""
    return await journal.write(lambda tx: _request(
        tx, journal.origin, printer, "test", open_drawer=True, requested_by="edge devices test"
    ))


@dataclass(frozen=True)
class Job:
    """A job's row, and what its history means for the next attempt (docs/devices.md)."""

    id: str
    body: dict[str, Any]
    status: str
    partial: bool
    cut_sent: bool
    drawer_opened: bool

    @property
    def duplicate(self) -> bool:
        """Print as DUPLICATA: asked for, or an earlier attempt may have printed it whole."""
        return (self.body.get("copy") == "duplicate" or self.status == "started"
                or (self.status == "interrupted" and self.cut_sent))

    @property
    def left_fragment(self) -> bool:
        """An earlier attempt may have left part of a receipt on the paper, uncut."""
        return self.status == "started" or (self.status == "interrupted" and self.partial
                                             and not self.cut_sent)

    @property
    def pulses_drawer(self) -> bool:
        return bool(self.body.get("open_drawer")) and not self.drawer_opened and not self.crashed

    @property
    def crashed(self) -> bool:
        """The node died mid-job: its drawer pulse, the first bytes sent, went out then."""
        return self.status == "started"
