"""The till's printer commands: status, live status, today's sales and reprint, the drawer.

The drawer opens with no sale ("no sale", for a manager) or, once, for a
cash sale whose pulse the journal says is in doubt (`drawer_unknown`).

docs/protocol.md documents each one; routing a till to its printer, on
whichever node, is edge/devices/store_printers.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.api.commands import sale_id_arg, seller_of
from edge.api.websocket_api import Connection, NoArgs, command
from edge.devices import in_doubt, print_jobs, store_printers
from edge.journal.chain import Event
from edge.messages import (
    INVALID_FIELD,
    MANAGER_REQUIRED,
    NO_PRINTER,
    UNKNOWN_PRINTER,
    EdgeError,
    event_message,
)
from edge.schema import limits
from edge.selling import sales_list

# Pushed to `printer/subscribe`: the till asks `printer/status` again for its drawers (and,
# once a node is found retired, receipts) in doubt.
DRAWER_EVENTS = frozenset({"drawer_unknown", "drawer_opened", "origin_started"})


async def _printers(conn: Connection) -> dict[str, Any]:
    assert conn.till is not None
    node = conn.node
    mine = await store_printers.route_for(node.journal, conn.till["code"])
    everywhere = await store_printers.store_printers(node.journal)
    return {"printer": mine.name if mine else None,
            "printer_node": mine.node if mine else None,
            "printers": node.print_queue.statuses(),
            "store_printers": [{**p, "reachable": node.reaches(p["node"])} for p in everywhere],
            "drawers_in_doubt": await in_doubt.drawers_in_doubt(node.journal,
                                                                  conn.till["code"]),
            "receipts_in_doubt": await in_doubt.receipts_in_doubt(node.journal,
                                                                    conn.till["code"])}


async def _till_printer(conn: Connection) -> store_printers.PrinterRef:
    assert conn.till is not None
    printer = await store_printers.route_for(conn.node.journal, conn.till["code"])
    if printer is None:
        raise EdgeError(NO_PRINTER, f"no printer is set up for till {conn.till['code']}")
    return printer


@command("printer/status", NoArgs, access="till")
async def printer_status(conn: Connection, args: NoArgs) -> dict[str, Any]:
    return await _printers(conn)


@command("printer/subscribe", NoArgs, access="till")
async def printer_subscribe(conn: Connection, args: NoArgs) -> dict[str, Any]:
    """The statuses now, then a push each time a printer's status changes."""
    subscription = conn.current_id

    def push(status: dict[str, Any]) -> None:
        conn.send(event_message(subscription, {"type": "printer_status", "printer": status}))

    def push_drawers(events: list[Event]) -> None:
        if any(event.type in DRAWER_EVENTS for event in events):
            conn.send(event_message(subscription, {"type": "drawers_changed"}))

    stop_status = conn.node.print_queue.add_status_listener(push)
    stop_drawers = conn.node.journal.add_listener(push_drawers)

    def unsubscribe() -> None:
        stop_status()
        stop_drawers()

    conn.subscribe(unsubscribe)
    return await _printers(conn)


@dataclass(frozen=True)
class ReprintArgs:
    sale_id: str = sale_id_arg()
    printer: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    node: str | None = field(default=None, metadata=limits(min=1, max_length=64))


@command("printer/reprint", ReprintArgs)
async def printer_reprint(conn: Connection, args: ReprintArgs) -> dict[str, Any]:
    journal = conn.node.journal
    if (args.printer is None) != (args.node is None):
        raise EdgeError(INVALID_FIELD, "give both 'printer' and 'node', or neither")
    if args.printer is None:
        printer = await _till_printer(conn)
    else:
        printer = store_printers.PrinterRef(str(args.node), args.printer)
        known = await store_printers.store_printers(journal)
        if not any((p["node"], p["name"]) == (printer.node, printer.name) for p in known):
            raise EdgeError(UNKNOWN_PRINTER, f"no printer {printer.name} on node {printer.node}")
    job = await print_jobs.request_reprint(
        journal, printer, args.sale_id, seller_of(conn).cashier, instead=args.printer is not None
    )
    return {**job, "reachable": conn.node.reaches(printer.node)}


@dataclass(frozen=True)
class SalesTodayArgs:
    till: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    limit: int = field(default=20, metadata=limits(min=1, max=100))
    before: str | None = field(default=None, metadata=limits(min=1, max_length=200))


@command("sales/today", SalesTodayArgs)
async def sales_today(conn: Connection, args: SalesTodayArgs) -> dict[str, Any]:
    """Today's sales, newest first, a page at a time: the list a cashier reprints from."""
    return await sales_list.sales_today(conn.node.journal, args.limit, args.till, args.before)


@dataclass(frozen=True)
class SaleArgs:
    sale_id: str = sale_id_arg()


@command("drawer/open_for_sale", SaleArgs)
async def drawer_open_for_sale(conn: Connection, args: SaleArgs) -> dict[str, Any]:
    """Open the drawer for a cash sale whose pulse is in doubt: once, by a cashier of the
    till that made the sale, or a manager."""
    assert conn.cashier is not None
    seller = seller_of(conn)
    job = await in_doubt.request_drawer_for_sale(
        conn.node.journal, args.sale_id, seller.cashier,
        till=None if conn.cashier["role"] == "manager" else seller.till,
    )
    return {**job, "reachable": conn.node.reaches(job["node"])}


@dataclass(frozen=True)
class DrawerArgs:
    reason: str = field(metadata=limits(min=1, max_length=200))


@command("drawer/open", DrawerArgs)
async def drawer_open(conn: Connection, args: DrawerArgs) -> dict[str, Any]:
    """"No sale": open the drawer without a sale, for a manager, with a reason."""
    assert conn.cashier is not None
    if conn.cashier["role"] != "manager":
        raise EdgeError(MANAGER_REQUIRED, "only a manager may open the drawer without a sale")
    if not args.reason.strip():
        raise EdgeError(INVALID_FIELD, "'reason' must say why the drawer is opened")
    return await print_jobs.request_drawer(
        conn.node.journal, await _till_printer(conn), args.reason.strip(), seller_of(conn).cashier
    )
