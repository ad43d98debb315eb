"""The manager's closures at the till: close a day (month, year) and list them.

docs/protocol.md documents both; what may be closed, and what a closure
holds, is edge/fiscal/closing.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edge.api.websocket_api import Connection, command
from edge.devices import print_jobs, store_printers
from edge.fiscal import closures
from edge.fiscal.closing import Request, caught_up_missing, close_period
from edge.fiscal.periods import calendar_of
from edge.messages import MANAGER_REQUIRED, EdgeError
from edge.schema import limits

Kind = Literal["day", "month", "year"]


@dataclass(frozen=True)
class CloseArgs:
    kind: Kind
    period: str | None = field(default=None, metadata=limits(min=4, max_length=10))
    alone: bool = False  # close although some nodes are not heard: they are named


@command("closure/close", CloseArgs)
async def closure_close(conn: Connection, args: CloseArgs) -> dict[str, Any]:
    """Close a period for the whole store; the closure made (its Z prints)."""
    assert conn.cashier is not None
    if conn.cashier["role"] != "manager":
        raise EdgeError(MANAGER_REQUIRED, "only a manager may close a day, a month or a year")
    node = conn.node
    request = Request(args.kind, args.period, made_by=conn.cashier["id"], alone=args.alone,
                      missing=await caught_up_missing(node))
    closure = await close_period(node.journal, calendar_of(node.config), request)
    shown = closure.as_json()
    # The Z prints on this till's printer, after the closure is recorded (a printer
    # down never holds a closure back; `printer/status` shows the job).
    assert conn.till is not None
    printer = await store_printers.route_for(node.journal, conn.till["code"])
    if printer is not None:
        shown["print"] = await node.journal.write(lambda tx: print_jobs.request_z_report(
            tx, printer, closure.as_json(), conn.cashier["id"] if conn.cashier else ""))
    return shown


@dataclass(frozen=True)
class ListArgs:
    kind: Kind = "day"
    limit: int = field(default=10, metadata=limits(min=1, max=366))


@command("closure/list", ListArgs)
async def closure_list(conn: Connection, args: ListArgs) -> dict[str, Any]:
    """The latest closures of a kind, newest first, superseded ones after their winner."""
    journal = conn.node.journal
    rows = await journal.read_all(closures.LISTING_SQL, (args.kind, args.kind, args.limit))
    winners = closures.winning_hashes(
        tuple(row) for row in await journal.read_all(closures.CHAIN_SQL, (args.kind,)))
    return {"closures": [closure.as_json()
                         for closure in closures.from_listing(rows, winners)]}
