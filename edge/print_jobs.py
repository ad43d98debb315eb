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
        """INSERT OR IGNORE INTO print_jobs (id, printer, node, body, created_at, sale_id)
        VALUES (?, ?, ?, ?, ?, ?)""",
        (body["job_id"], body["printer"], body["node"], orjson.dumps(body).decode(), event.time,
         body.get("sale_id")),
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


@projection("print_job_cancelled")
def _print_job_cancelled(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        f"UPDATE print_jobs SET status = 'cancelled' WHERE id = ? AND status IN {UNFINISHED}",
        (event.body["job_id"],),
    )


@dataclass(frozen=True)
class PrinterRef:
    """A printer of the store: its name on the node it is plugged into."""

    node: str
    name: str


@projection("printers_announced")
def _printers_announced(db: sqlite3.Connection, event: Event) -> None:
    node = event.body["node"]
    db.execute("DELETE FROM store_printers WHERE node = ?", (node,))
    db.executemany(
        "INSERT INTO store_printers (node, name, kind, tills, position) VALUES (?, ?, ?, ?, ?)",
        [(node, p["name"], p["kind"], orjson.dumps(p["tills"]).decode(), position)
         for position, p in enumerate(event.body["printers"])],
    )


async def announce_printers(journal: Journal, printers: list[dict[str, Any]]) -> bool:
    """Tell the store which printers this node owns (only when that changed)."""
    node = journal.origin

    def work(tx: Tx) -> bool:
        rows = tx.fetchall(
            "SELECT name, kind, tills FROM store_printers WHERE node = ? ORDER BY position",
            (node,),
        )
        known = [{"name": r["name"], "kind": r["kind"], "tills": orjson.loads(r["tills"])}
                 for r in rows]
        if known == printers:
            return False
        tx.append("printers_announced", {"node": node, "printers": printers})
        return True

    return await journal.write(work)


# The printer that lists the till; else this node's first printer listing no
# tills; else any node's. Whichever node the till is on, the same answer
# (but for the default, which prefers the till's current node).
ROUTE_SQL = """
    SELECT node, name FROM store_printers
    WHERE EXISTS (SELECT 1 FROM json_each(store_printers.tills) WHERE value = :till)
       OR (tills = '[]' AND NOT EXISTS (
            SELECT 1 FROM store_printers AS listed, json_each(listed.tills) AS t
            WHERE t.value = :till))
    ORDER BY tills = '[]', node != :here, node, position LIMIT 1"""


def route(tx: Tx, till: str) -> PrinterRef | None:
    """Where `till`'s receipts print, inside a write."""
    row = tx.fetchone(ROUTE_SQL, {"till": till, "here": tx.origin})
    return PrinterRef(row["node"], row["name"]) if row else None


async def route_for(journal: Journal, till: str) -> PrinterRef | None:
    row = await journal.read_one(ROUTE_SQL, {"till": till, "here": journal.origin})
    return PrinterRef(row["node"], row["name"]) if row else None


async def store_printers(journal: Journal) -> list[dict[str, Any]]:
    rows = await journal.read_all(
        "SELECT node, name, kind, tills FROM store_printers ORDER BY node, position"
    )
    return [{"node": r["node"], "name": r["name"], "kind": r["kind"],
             "tills": orjson.loads(r["tills"])} for r in rows]


async def receipt_printer(journal: Journal, sale_id: str) -> PrinterRef | None:
    """Where a sale's receipt was sent."""
    row = await journal.read_one(
        """SELECT node, printer FROM print_jobs WHERE sale_id = ?
        AND json_extract(body, '$.kind') = 'receipt' ORDER BY rowid LIMIT 1""",
        (sale_id,),
    )
    return PrinterRef(row["node"], row["printer"]) if row else None


def request_receipt(tx: Tx, printer: PrinterRef, sale_id: str, open_drawer: bool) -> None:
    """Inside the sale's own write: print its receipt (and open the drawer)."""
    _request(tx, printer, "receipt", sale_id=sale_id, open_drawer=open_drawer)


def _request(tx: Tx, printer: PrinterRef, kind: str, **details: Any) -> dict[str, Any]:
    body = {"job_id": str(uuid.uuid4()), "printer": printer.name, "node": printer.node,
            "kind": kind, **details}
    tx.append("print_requested", body)
    return {"job_id": body["job_id"], "printer": printer.name, "node": printer.node}


async def request_reprint(
    journal: Journal, printer: PrinterRef, sale_id: str, cashier: str, *, instead: bool = False
) -> dict[str, Any]:
    """Queue a DUPLICATA of a sale's receipt (never opens the drawer).

    `instead`: the till chose this printer because the usual one is out of
    reach; the sale's unprinted jobs are cancelled so that one's node does not
    print them when it comes back.
    """

    def work(tx: Tx) -> dict[str, Any]:
        if tx.fetchone("SELECT 1 FROM sales WHERE id = ?", (sale_id,)) is None:
            raise EdgeError(UNKNOWN_SALE, f"no sale {sale_id} in this store")
        if instead:
            for row in tx.fetchall(
                f"""SELECT id FROM print_jobs WHERE sale_id = ?
                AND status IN {UNFINISHED}""", (sale_id,),
            ):
                tx.append("print_job_cancelled", {"job_id": row["id"], "by": cashier})
        return _request(tx, printer, "receipt", sale_id=sale_id, open_drawer=False,
                        copy="duplicate", requested_by=cashier)

    return await journal.write(work)


async def request_drawer(
    journal: Journal, printer: PrinterRef, reason: str, cashier: str
) -> dict[str, Any]:
    """Queue a "no sale" drawer opening (the caller checked the cashier is a manager)."""
    return await journal.write(lambda tx: _request(
        tx, printer, "drawer", open_drawer=True, reason=reason, requested_by=cashier
    ))


async def request_test(journal: Journal, printer: str) -> dict[str, Any]:
    """Queue `edge devices test`: the test page, and a drawer pulse."""
    return await journal.write(lambda tx: _request(
        tx, PrinterRef(journal.origin, printer), "test", open_drawer=True,
        requested_by="edge devices test",
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
