"""What no node can know: receipts and drawer pulses in doubt, and the cashier's way out.

A crash between a drawer pulse and the printer's answer (`drawer_unknown`),
or a job left unfinished by a node since retired (`stranded`): the journal
says it does not know, the tills list the sales concerned, and a cashier
opens the drawer once (`request_drawer_for_sale`) or prints a DUPLICATA.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edge.devices.print_jobs import RETIRED_NODES, UNFINISHED, _request, derived_job_id, stranded
from edge.devices.store_printers import PrinterRef, route, standing_printer
from edge.journal.store import Journal, Tx
from edge.messages import (
    DRAWER_ALREADY_REQUESTED,
    DRAWER_NOT_IN_DOUBT,
    MANAGER_REQUIRED,
    NO_PRINTER,
    UNKNOWN_SALE,
    EdgeError,
)

# Receipt jobs whose drawer pulse is in doubt (`drawer_unknown`, or the job
# was stranded before the printer confirmed its pulse), no opening asked for
# since (but on a node since retired: that one is in doubt too).
_NO_OPENING_SINCE = f"""NOT EXISTS (SELECT 1 FROM print_jobs AS other
    WHERE other.sale_id = job.sale_id AND (other.drawer_opened = 1
        OR (json_extract(other.body, '$.kind') = 'drawer' AND other.id != job.id
            AND NOT {stranded("other")})))"""
# The job that pulses a cash sale's drawer: its receipt's, or (receipt declined) a drawer
# job of the sale (edge/devices/print_jobs.py, `request_sale_drawer`).
_SALE_PULSE = """(json_extract(job.body, '$.kind') = 'receipt'
    OR (json_extract(job.body, '$.kind') = 'drawer' AND job.sale_id IS NOT NULL
        AND json_extract(job.body, '$.reason') = 'cash sale'))"""
DRAWER_IN_DOUBT = f"""SELECT job.id, job.printer, job.node, job.sale_id FROM print_jobs AS job
    WHERE job.drawer_unknown = 1 AND {_SALE_PULSE}
    AND {_NO_OPENING_SINCE}
    UNION
    SELECT job.id, job.printer, job.node, job.sale_id FROM print_jobs AS job
    WHERE {stranded("job")} AND {_SALE_PULSE}
    AND json_extract(job.body, '$.open_drawer') AND job.drawer_opened = 0
    AND {_NO_OPENING_SINCE}"""


async def request_drawer_for_sale(
    journal: Journal, sale_id: str, cashier: str, till: str | None = None
) -> dict[str, Any]:
    """Open the drawer of a cash sale whose pulse is in doubt: once, on that receipt's printer.

    The node that printed the receipt could not know whether the printer took
    the pulse (it stopped in between): the journal says `drawer_unknown`, and
    the cashier, who can see the drawer, decides. The job id comes from the
    sale: asked through two nodes, it is still one opening. `till`: only a
    sale of that till (a cashier opens her own till's drawer; None: a manager).
    """

    def work(tx: Tx) -> dict[str, Any]:
        sale = tx.fetchone("SELECT till FROM sales WHERE id = ?", (sale_id,))
        if sale is None:
            raise EdgeError(UNKNOWN_SALE, f"no sale {sale_id} in this store")
        if till is not None and sale["till"] != till:
            raise EdgeError(MANAGER_REQUIRED, f"sale {sale_id} is till {sale['till']}'s: "
                            "only a manager opens another till's drawer")
        if tx.fetchone(f"""SELECT 1 FROM print_jobs AS job WHERE sale_id = ?
                       AND json_extract(body, '$.kind') = 'drawer' AND NOT {stranded("job")}
                       AND json_extract(body, '$.reason') IS NOT 'cash sale'""",
                       (sale_id,)):
            raise EdgeError(DRAWER_ALREADY_REQUESTED,
                            f"the drawer was already asked to open for sale {sale_id}")
        doubt = tx.fetchone(f"SELECT * FROM ({DRAWER_IN_DOUBT}) WHERE sale_id = ? LIMIT 1",
                            (sale_id,))
        if doubt is None:
            raise EdgeError(DRAWER_NOT_IN_DOUBT,
                            f"the drawer opening for sale {sale_id} is not in doubt")
        # Its printer; if that one's node was retired, the printer standing for
        # it, else the sale's till's printer now.
        printer = standing_printer(tx, PrinterRef(doubt["node"], doubt["printer"]))
        if printer is None:
            printer = route(tx, sale["till"])
        if printer is None:
            raise EdgeError(NO_PRINTER, f"no printer can open the drawer of sale {sale_id}")
        return _request(tx, printer, "drawer", job_id=derived_job_id("drawer", sale_id, printer),
                        open_drawer=True, sale_id=sale_id, reason="pulse in doubt",
                        requested_by=cashier)

    return await journal.write(work)


async def drawers_in_doubt(journal: Journal, till: str) -> list[dict[str, Any]]:
    """This till's sales whose drawer pulse is in doubt: the till offers to open the drawer."""
    rows = await journal.read_all(
        f"""SELECT doubt.sale_id, doubt.printer, doubt.node,
            json_extract(sales.body, '$.receipt_number') AS receipt_number
        FROM ({DRAWER_IN_DOUBT}) AS doubt JOIN sales ON sales.id = doubt.sale_id
        WHERE sales.till = ? GROUP BY doubt.sale_id ORDER BY sales.receipt_no DESC LIMIT 20""",
        (till,),
    )
    return [{"sale_id": r["sale_id"], "receipt_number": r["receipt_number"],
             "printer": r["printer"], "node": r["node"]} for r in rows]


# Sales whose receipt may never have reached the customer: a receipt job of
# theirs was stranded (its node retired before it finished), and no other
# receipt job of the sale printed since, or is still to print on a live node.
RECEIPT_IN_DOUBT = f"""SELECT job.id, job.printer, job.node, job.sale_id FROM print_jobs AS job
    WHERE {stranded("job")} AND json_extract(job.body, '$.kind') = 'receipt'
    AND NOT EXISTS (SELECT 1 FROM print_jobs AS other
        WHERE other.sale_id = job.sale_id AND other.id != job.id
        AND json_extract(other.body, '$.kind') = 'receipt'
        AND (other.status = 'done'
             OR (other.status IN {UNFINISHED} AND other.node NOT IN ({RETIRED_NODES}))))"""


async def receipts_in_doubt(journal: Journal, till: str) -> list[dict[str, Any]]:
    """This till's sales whose receipt may not have printed: the till offers a DUPLICATA.

    Never printed again by themselves: the node that was to print them may
    have done so after the backup it was restored from was taken. (CROSS
    JOIN: from the few stranded jobs, never from all of the till's sales.)
    """
    rows = await journal.read_all(
        f"""SELECT doubt.sale_id, doubt.printer, doubt.node,
            json_extract(sales.body, '$.receipt_number') AS receipt_number
        FROM ({RECEIPT_IN_DOUBT}) AS doubt CROSS JOIN sales ON sales.id = doubt.sale_id
        WHERE sales.till = ? GROUP BY doubt.sale_id ORDER BY sales.receipt_no DESC LIMIT 20""",
        (till,),
    )
    return [{"sale_id": r["sale_id"], "receipt_number": r["receipt_number"],
             "printer": r["printer"], "node": r["node"]} for r in rows]


def stranded_summary(db: sqlite3.Connection) -> dict[str, Any] | None:
    """`edge status`: print jobs left unfinished by retired nodes, and what waits on people."""
    jobs = db.execute(
        f"""SELECT job.node, COUNT(*) AS jobs FROM print_jobs AS job WHERE {stranded("job")}
        GROUP BY job.node ORDER BY job.node""").fetchall()
    if not jobs:
        return None
    (receipts,) = db.execute(
        f"SELECT COUNT(DISTINCT doubt.sale_id) FROM ({RECEIPT_IN_DOUBT}) AS doubt "
        "JOIN sales ON sales.id = doubt.sale_id").fetchone()
    (drawers,) = db.execute(
        f"SELECT COUNT(DISTINCT doubt.sale_id) FROM ({DRAWER_IN_DOUBT}) AS doubt "
        f"JOIN print_jobs AS job ON job.id = doubt.id WHERE {stranded('job')}").fetchone()
    nodes = ", ".join(f"{row['node']} ({row['jobs']})" for row in jobs)
    return {
        "jobs in doubt": f"{sum(row['jobs'] for row in jobs)} print job(s) were unfinished when "
                         f"their node was retired ({nodes}: it continues under a new id, "
                         "restored from a backup); that node may have printed them after the "
                         "backup was taken, so none is printed again by itself",
        "receipts in doubt": f"{receipts} sale(s) may have no receipt: their tills list them "
                             "and offer a copy marked DUPLICATA",
        "drawers in doubt": f"{drawers} cash sale(s) whose drawer may not have opened: their "
                            "tills ask the cashier and offer to open it",
    }
