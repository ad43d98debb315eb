"""The store's printers: which node owns which (announced, replicated), and where a till prints.

Each node announces its printers (`printers_announced`) when they change;
every node holds every announcement, so routing a till's receipts gives the
same answer wherever the till is (edge/devices/till_routing.py holds the
rule). A node retired by its successor (edge/journal/lineage.py) owns no
printer any more. A node announces its own printers only: an announcement
for another node is refused at every intake (`_own_printers_only`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from edge.devices.till_routing import AnnouncedTills, printer_for
from edge.journal.chain import Event
from edge.journal.event_types import CertifiedBody, Unauthorized, event_type
from edge.journal.store import Journal, Tx


@dataclass(frozen=True)
class PrinterRef:
    """A printer of the store: its name on the node it is plugged into."""

    node: str
    name: str


@dataclass(slots=True)
class AnnouncedPrinter:
    name: str
    kind: str
    tills: list[str]


@dataclass(slots=True)
class PrintersAnnounced:
    node: str
    printers: list[AnnouncedPrinter]


def _own_printers_only(event: Event, certified: CertifiedBody) -> None:
    """Unauthorized unless `event` announces its own origin's printers."""
    if event.body.get("node") != event.origin:
        raise Unauthorized(f"{event.origin}#{event.seq}: announces the printers of node "
                           f"{event.body.get('node')!r}: a node announces only its own")
    names = [printer["name"] for printer in event.body["printers"]]  # its schema was checked
    if len(set(names)) != len(names):
        # One printer per (node, name) in store_printers: the projection could not apply it.
        raise Unauthorized(f"{event.origin}#{event.seq}: announces two printers of one name")


@event_type("printers_announced", schema=PrintersAnnounced, authorize=_own_printers_only,
            merge="a node's printers are its latest announcement (one origin, in order); "
                  "none for a node its successor retired")
def _printers_announced(db: sqlite3.Connection, event: Event) -> None:
    node = event.body["node"]
    if db.execute("SELECT 1 FROM retired_origins WHERE origin = ?", (node,)).fetchone():
        return  # that node's successor announces its printers (edge/lineage.py)
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


# Routing reads every printer of the store and every paired till (a few of
# each): the rule, and how `tills` entries name tills, are edge/till_routing.py's.
ROUTING_PRINTERS_SQL = "SELECT node, name, tills FROM store_printers ORDER BY node, position"
TILL_CODES_SQL = "SELECT code FROM tills ORDER BY paired_at, event_hash"  # as paired


def _route(printers: list[sqlite3.Row], codes: list[sqlite3.Row], till: str,
           here: str) -> PrinterRef | None:
    announced = [AnnouncedTills(row["node"], row["name"], tuple(orjson.loads(row["tills"])))
                 for row in printers]
    printer = printer_for(till, announced, [row["code"] for row in codes], here)
    return PrinterRef(printer.node, printer.name) if printer else None


def route(tx: Tx, till: str) -> PrinterRef | None:
    """Where `till`'s receipts print, inside a write."""
    return _route(tx.fetchall(ROUTING_PRINTERS_SQL), tx.fetchall(TILL_CODES_SQL), till, tx.origin)


async def route_for(journal: Journal, till: str) -> PrinterRef | None:
    return _route(await journal.read_all(ROUTING_PRINTERS_SQL),
                  await journal.read_all(TILL_CODES_SQL), till, journal.origin)


async def store_printers(journal: Journal) -> list[dict[str, Any]]:
    rows = await journal.read_all(
        "SELECT node, name, kind, tills FROM store_printers ORDER BY node, position"
    )
    return [{"node": r["node"], "name": r["name"], "kind": r["kind"],
             "tills": orjson.loads(r["tills"])} for r in rows]


def standing_printer(tx: Tx, printer: PrinterRef) -> PrinterRef | None:
    """The printer that stands for `printer` now: itself; or, when its node was
    retired, the printer of that name on the node continuing it (None if none)."""
    node, seen = printer.node, {printer.node}
    while (row := tx.fetchone(
            "SELECT successor FROM retired_origins WHERE origin = ? "
            "ORDER BY time DESC, successor LIMIT 1", (node,))) and row["successor"] not in seen:
        node = row["successor"]
        seen.add(node)
    if node == printer.node:
        return printer
    known = tx.fetchone("SELECT 1 FROM store_printers WHERE node = ? AND name = ?",
                        (node, printer.name))
    return PrinterRef(node, printer.name) if known else None
