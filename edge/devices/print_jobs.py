"""Print jobs as events: asking for a print, and the tables that say how each job stands.

`print_requested` (a receipt with its sale, a reprint, a "no sale" drawer
opening, a test page) adds a row to `print_jobs`; the print queue's events,
all written by the printer's own node, move it on: `print_job_waiting` (a
receipt whose sale has not reached this node yet), `print_job_started` (bytes
are about to go out), `drawer_opened` (the printer took the pulse) or
`drawer_unknown` (the node cannot know whether it did), `print_job_cutting`
(the cut is about to go out: before it, no complete receipt can exist),
`print_job_interrupted` (the printer went away mid-job, or the node stopped:
`partial`, `cut_sent`), `print_job_done` (`outcome`). Another node may ask to
call a job off (`print_job_cancelled`): the printer's node decides, so every
change of a job's state comes from one origin, in order.

Exactly once, store-wide (docs/devices.md): a sale's receipt job id is
derived from the sale and the printer, so the same sale recorded through two
nodes asks one printer for one job; and before a job prints an original, its
node checks that no other receipt job of that sale claimed the original.

Projections, like every table the node reads, the same whatever the order in
which events arrive: a job's row is made by whichever of its events comes
first, and two requests for one job keep the same one everywhere.

A job whose node was retired before it finished (that node's data folder was
restored from a backup and continues under a new origin) is *stranded*:
nobody prints it, and it may or may not have printed after the backup. It is
never printed again; it holds its sale's original, and the tills list its
receipt and drawer as in doubt (`receipts_in_doubt`, `drawers_in_doubt`).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from edge.devices.receipt_copies import next_copy_number, original_asked
from edge.devices.store_printers import PrinterRef
from edge.journal.chain import Event, canonical_json
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import (
    UNKNOWN_SALE,
    EdgeError,
)

UNFINISHED = "('pending', 'waiting', 'started', 'interrupted')"
# Job ids derived from what the job is for: the same request made on two nodes is one job.
JOB_IDS = uuid.UUID("6b1d3c2e-5f0a-4e8b-9c7d-2a1b0c9d8e7f")
# A row made by a job's progress before its request arrived (another origin's
# events can come first): filled in by the request.
NO_BODY = "{}"


def derived_job_id(purpose: str, sale_id: str, printer: PrinterRef) -> str:
    return str(uuid.uuid5(JOB_IDS, f"{purpose}/{sale_id}/{printer.node}/{printer.name}"))


def _job_row(db: sqlite3.Connection, event: Event) -> str:
    """The job's row, made bare if this is the first we hear of it; its id."""
    body = event.body
    db.execute(
        "INSERT OR IGNORE INTO print_jobs (id, printer, node, body, created_at) "
        "VALUES (?, ?, ?, ?, '')",
        (body["job_id"], body.get("printer", ""), body.get("node", event.origin), NO_BODY),
    )
    return str(body["job_id"])


@dataclass(slots=True)
class PrintRequested:
    job_id: str
    printer: str
    node: str
    kind: str
    sale_id: str | None = None
    open_drawer: bool = False
    copy: str | None = None
    replaces: list[str] = field(default_factory=list)


@dataclass(slots=True)
class JobProgress:
    """What the printer's node records of a job as it goes (one origin, in order)."""

    job_id: str
    printer: str = ""
    node: str | None = None
    copy: str | None = None


@dataclass(slots=True)
class JobInterrupted:
    job_id: str
    partial: bool
    cut_sent: bool
    printer: str = ""
    reason: str = ""


@dataclass(slots=True)
class JobDone:
    job_id: str
    outcome: str
    printer: str = ""


@dataclass(slots=True)
class DrawerOpened:
    printer: str = ""
    job_id: str | None = None  # none: `edge devices test`, outside any job
    reason: str = ""


@dataclass(slots=True)
class JobCancelled:
    job_id: str
    printer: str
    node: str
    by: str = ""


JOB_PROGRESS = ("the job's row as its printer's node records it, in order; the row is made "
                "by whichever of the job's events arrives first")


@event_type("print_requested", schema=PrintRequested,
            merge="one job per id: the earliest request (time, then body) is kept, whichever "
                  "arrives first; a row made by the job's progress is filled in")
def _print_requested(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    # Two requests for one job (a sale recorded through two nodes): every node
    # keeps the earlier one (then the smaller body), whichever it heard first.
    db.execute(
        """INSERT INTO print_jobs (id, printer, node, body, created_at, sale_id)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET printer = excluded.printer, node = excluded.node,
            body = excluded.body, created_at = excluded.created_at, sale_id = excluded.sale_id
        WHERE print_jobs.body = '{}'
           OR (excluded.created_at, excluded.body) < (print_jobs.created_at, print_jobs.body)""",
        (body["job_id"], body["printer"], body["node"], canonical_json(body).decode(),
         event.time, body.get("sale_id")),
    )


@event_type("print_job_waiting", schema=JobProgress, merge=JOB_PROGRESS)
def _print_job_waiting(db: sqlite3.Connection, event: Event) -> None:
    db.execute("UPDATE print_jobs SET status = 'waiting' WHERE id = ?", (_job_row(db, event),))


@event_type("print_job_started", schema=JobProgress,
            merge=JOB_PROGRESS + "; attempts count, an original once begun stays begun")
def _print_job_started(db: sqlite3.Connection, event: Event) -> None:
    original = int(event.body.get("copy") == "original")
    db.execute(
        """UPDATE print_jobs SET status = 'started', attempts = attempts + 1, partial = 0,
        original_started = MAX(original_started, ?) WHERE id = ?""",
        (original, _job_row(db, event)),
    )


@event_type("print_job_cutting", schema=JobProgress,
            merge=JOB_PROGRESS + "; `cut_sent` once set stays set")
def _print_job_cutting(db: sqlite3.Connection, event: Event) -> None:
    db.execute("UPDATE print_jobs SET cut_sent = 1 WHERE id = ?", (_job_row(db, event),))


@event_type("print_job_interrupted", schema=JobInterrupted,
            merge=JOB_PROGRESS + "; `cut_sent` once set stays set")
def _print_job_interrupted(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    # `partial`: this attempt may have left an uncut fragment; `cut_sent`
    # stays set once any attempt may have completed the receipt.
    db.execute(
        """UPDATE print_jobs SET status = 'interrupted', partial = ?,
        cut_sent = MAX(cut_sent, ?) WHERE id = ?""",
        (int(body["partial"] and not body["cut_sent"]), int(body["cut_sent"]),
         _job_row(db, event)),
    )


@event_type("print_job_done", schema=JobDone, merge=JOB_PROGRESS)
def _print_job_done(db: sqlite3.Connection, event: Event) -> None:
    db.execute("UPDATE print_jobs SET status = ? WHERE id = ?",
               (event.body["outcome"], _job_row(db, event)))


@event_type("drawer_opened", schema=DrawerOpened,
            merge="the job's drawer is opened, for good (an audit record without a job)")
def _drawer_opened(db: sqlite3.Connection, event: Event) -> None:
    if event.body.get("job_id"):
        db.execute("UPDATE print_jobs SET drawer_opened = 1 WHERE id = ?",
                   (_job_row(db, event),))


@event_type("drawer_unknown", schema=JobProgress,
            merge="the job's pulse is in doubt, for good")
def _drawer_unknown(db: sqlite3.Connection, event: Event) -> None:
    db.execute("UPDATE print_jobs SET drawer_unknown = 1 WHERE id = ?", (_job_row(db, event),))


@event_type("print_job_cancelled", schema=JobCancelled,
            merge="asks the job's node to call it off, for good; that node decides")
def _print_job_cancelled(db: sqlite3.Connection, event: Event) -> None:
    # A request: the printer's node records the outcome when it takes the job
    # up (`print_job_done`, outcome `cancelled`), or prints it if it had begun.
    db.execute("UPDATE print_jobs SET cancel_requested = 1 WHERE id = ?",
               (_job_row(db, event),))


async def receipt_printer(journal: Journal, sale_id: str) -> PrinterRef | None:
    """Where a sale's receipt was sent."""
    row = await journal.read_one(
        """SELECT node, printer FROM print_jobs WHERE sale_id = ?
        AND json_extract(body, '$.kind') = 'receipt' ORDER BY rowid LIMIT 1""",
        (sale_id,),
    )
    return PrinterRef(row["node"], row["printer"]) if row else None


def request_receipt(tx: Tx, printer: PrinterRef, sale_id: str, open_drawer: bool) -> None:
    """Inside the sale's own write: print its receipt (and open the drawer).

    The job id comes from the sale and the printer: a till resending the sale
    through another node (after a failover) asks that printer for the same job.
    """
    _request(tx, printer, "receipt", job_id=derived_job_id("receipt", sale_id, printer),
             sale_id=sale_id, open_drawer=open_drawer)


def request_sale_drawer(tx: Tx, printer: PrinterRef, sale_id: str) -> None:
    """Inside the sale's own write: open the drawer of a cash sale whose receipt was declined.

    A drawer job of the sale (`reason: cash sale`); its id comes from the sale
    and the printer, so the sale resent through another node opens it once.
    """
    _request(tx, printer, "drawer", job_id=derived_job_id("sale_drawer", sale_id, printer),
             sale_id=sale_id, open_drawer=True, reason="cash sale")


def request_z_report(tx: Tx, printer: PrinterRef, closure: dict[str, Any],
                     requested_by: str) -> dict[str, Any]:
    """Print a closure (the Z): the job carries it whole (edge/fiscal/z_report.py lays it out)."""
    return _request(tx, printer, "z_report", closure=closure, requested_by=requested_by)


def _request(tx: Tx, printer: PrinterRef, kind: str, job_id: str | None = None,
             **details: Any) -> dict[str, Any]:
    body = {"job_id": job_id or str(uuid.uuid4()), "printer": printer.name,
            "node": printer.node, "kind": kind, **details}
    tx.append("print_requested", body)
    return {"job_id": body["job_id"], "printer": printer.name, "node": printer.node}


# The nodes this journal knows were retired: a successor continues them (a
# data folder restored from a backup, edge/journal/lineage.py), so they print nothing more.
RETIRED_NODES = "SELECT origin FROM retired_origins"


def stranded(job: str) -> str:
    """SQL: the job (table alias `job`) is stranded: its node was retired before it finished.

    Nobody prints it any more, and nobody can know whether its node printed
    it (or pulsed the drawer) after the backup was taken: it is in doubt.
    Whatever that node wrote after the backup reaches us from the peers that
    hold it, and a job they saw finish is stranded no more. Read from the
    projections, never journaled, so the same on every node in any order.
    """
    return (f"({job}.node IN ({RETIRED_NODES}) AND {job}.status IN {UNFINISHED} "
            f"AND {job}.body != '{NO_BODY}')")


# A receipt job that printed, or may have printed, the sale's original: it
# started as the original and was not called off before completing it; or it
# was to print the original on a node since retired (it may have, after the backup).
ORIGINAL_CLAIM = f"""json_extract(body, '$.kind') = 'receipt' AND (
    (original_started = 1
     AND (status IN ('started', 'done')
          OR (status = 'interrupted' AND (cut_sent = 1 OR cancel_requested = 0))))
    OR (COALESCE(json_extract(body, '$.copy'), 'original') = 'original'
        AND {stranded("print_jobs")}))"""


def original_claimant(tx: Tx, sale_id: str, but: str = "") -> str | None:
    """The receipt job of `sale_id` (other than `but`) that holds its original, as known here."""
    row = tx.fetchone(
        f"SELECT id FROM print_jobs WHERE sale_id = ? AND id != ? AND {ORIGINAL_CLAIM} "
        "ORDER BY rowid LIMIT 1", (sale_id, but),
    )
    return row["id"] if row else None


async def request_reprint(
    journal: Journal, printer: PrinterRef, sale_id: str, cashier: str, *, instead: bool = False
) -> dict[str, Any]:
    """Queue a copy of a sale's receipt (never opens the drawer): a DUPLICATA, but see below.

    A sale whose receipt the customer declined has no original yet: the first
    receipt asked for is its original (once: its job id comes from the sale
    and the printer, so asked through two nodes it is one job), every later
    one a DUPLICATA numbered 1, 2... store-wide (`next_copy_number`).

    `instead`: the till chose this printer because the usual one is out of
    reach; the sale's unprinted jobs are called off so that one's node does
    not print them when it comes back. If, as far as this node knows, no
    original can have printed, the customer has no ticket yet: the copy is
    the original (its printer's node checks again before printing it).
    """

    def work(tx: Tx) -> dict[str, Any]:
        if tx.fetchone("SELECT 1 FROM sales WHERE id = ?", (sale_id,)) is None:
            raise EdgeError(UNKNOWN_SALE, f"no sale {sale_id} in this store")
        if not instead and not original_asked(tx, sale_id):
            # `replaces`: should another node have printed the original meanwhile,
            # this one prints as a DUPLICATA rather than nothing (the cashier asked).
            job = _request(tx, printer, "receipt",
                           job_id=derived_job_id("receipt", sale_id, printer), sale_id=sale_id,
                           open_drawer=False, copy="original", requested_by=cashier,
                           replaces=[])
            return {**job, "copy": "original"}
        copy, replaces = "duplicate", []
        if instead:
            if original_claimant(tx, sale_id) is None:
                copy = "original"
            for row in tx.fetchall(
                f"""SELECT id, printer, node FROM print_jobs WHERE sale_id = ?
                AND json_extract(body, '$.kind') = 'receipt'
                AND status IN {UNFINISHED} AND cancel_requested = 0""", (sale_id,),
            ):
                tx.append("print_job_cancelled", {"job_id": row["id"], "printer": row["printer"],
                                                  "node": row["node"], "by": cashier})
                replaces.append(row["id"])
        more: dict[str, Any] = {"replaces": replaces} if instead else {}
        if copy == "duplicate":
            more["copy_number"] = next_copy_number(tx, sale_id)
        job = _request(tx, printer, "receipt", sale_id=sale_id, open_drawer=False, copy=copy,
                       requested_by=cashier, **more)
        return {**job, "copy": copy, **({"copy_number": more["copy_number"]}
                                        if copy == "duplicate" else {})}

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


JOB_COLUMNS = ("id, body, status, partial, cut_sent, drawer_opened, drawer_unknown, "
               "cancel_requested, original_started")


@dataclass(frozen=True)
class Job:
    """A job's row, and what its history means for the next attempt (docs/devices.md)."""

    id: str
    body: dict[str, Any]
    status: str
    partial: bool
    cut_sent: bool
    drawer_opened: bool
    drawer_unknown: bool = False
    cancel_requested: bool = False
    original_started: bool = False

    @classmethod
    def of(cls, row: sqlite3.Row) -> Job:
        return cls(row["id"], orjson.loads(row["body"]), row["status"], bool(row["partial"]),
                   bool(row["cut_sent"]), bool(row["drawer_opened"]),
                   bool(row["drawer_unknown"]), bool(row["cancel_requested"]),
                   bool(row["original_started"]))

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def crashed(self) -> bool:
        """The node died mid-attempt: the journal says it started, and nothing after."""
        return self.status == "started"

    @property
    def pulse_pending(self) -> bool:
        """The next attempt would pulse the drawer: asked for, and neither sent nor in doubt."""
        return (bool(self.body.get("open_drawer")) and not self.drawer_opened
                and not self.drawer_unknown)

    @property
    def duplicate(self) -> bool:
        """Print as DUPLICATA: asked for, or an earlier attempt may have completed the original."""
        return self.body.get("copy") == "duplicate" or self.cut_sent

    @property
    def left_fragment(self) -> bool:
        """An earlier attempt may have left part of a receipt on the paper, uncut.

        After a crash, only if that attempt may have sent text: an attempt
        that had a pulse to send sends it alone first and journals it, so if
        the pulse is still pending the crash came before any text.
        """
        if self.crashed:
            return not self.pulse_pending
        return self.status == "interrupted" and self.partial
