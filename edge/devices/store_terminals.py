"""The store's card terminals: which node dials which (announced, replicated), and a till's.

Each node announces its terminals (`terminals_announced`) when they change,
as printers are announced (edge/devices/store_printers.py); every node holds
every announcement, so routing a till to its terminal gives the same answer
wherever the till is, by the printers' rule (edge/devices/till_routing.py).
A node announces its own terminals only: any other announcement is refused
at every intake. A node retired by its successor (edge/journal/lineage.py)
dials nothing: its announcements are passed over where they are read.
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


@dataclass(slots=True)
class AnnouncedTerminal:
    name: str
    tills: list[str]


@dataclass(slots=True)
class TerminalsAnnounced:
    node: str
    terminals: list[AnnouncedTerminal]


@dataclass(frozen=True)
class TerminalRef:
    """A terminal of the store: its name on the node that dials it."""

    node: str
    name: str


def _own_terminals_only(event: Event, certified: CertifiedBody) -> None:
    """Unauthorized unless `event` announces its own origin's terminals, each name once."""
    if event.body.get("node") != event.origin:
        raise Unauthorized(f"{event.origin}#{event.seq}: announces the terminals of node "
                           f"{event.body.get('node')!r}: a node announces only its own")
    names = [terminal["name"] for terminal in event.body["terminals"]]
    if len(set(names)) != len(names):
        raise Unauthorized(f"{event.origin}#{event.seq}: announces two terminals of one name")


@event_type("terminals_announced", schema=TerminalsAnnounced, authorize=_own_terminals_only,
            merge="a node's terminals are its latest announcement (one origin, in order); "
                  "a retired node's are passed over where they are read")
def _terminals_announced(db: sqlite3.Connection, event: Event) -> None:
    node = event.body["node"]
    db.execute("DELETE FROM store_terminals WHERE node = ?", (node,))
    db.executemany(
        "INSERT INTO store_terminals (node, name, tills, position) VALUES (?, ?, ?, ?)",
        [(node, t["name"], orjson.dumps(t["tills"]).decode(), position)
         for position, t in enumerate(event.body["terminals"])],
    )


async def announce_terminals(journal: Journal, terminals: list[dict[str, Any]]) -> bool:
    """Tell the store which terminals this node dials (only when that changed)."""
    node = journal.origin

    def work(tx: Tx) -> bool:
        rows = tx.fetchall("SELECT name, tills FROM store_terminals WHERE node = ? "
                           "ORDER BY position", (node,))
        if [{"name": r["name"], "tills": orjson.loads(r["tills"])} for r in rows] == terminals:
            return False
        tx.append("terminals_announced", {"node": node, "terminals": terminals})
        return True

    return await journal.write(work)


# A node retired by its successor (a restored backup, edge/journal/lineage.py) dials
# nothing: its successor announces the terminals anew.
ROUTING_TERMINALS_SQL = """SELECT node, name, tills FROM store_terminals
    WHERE node NOT IN (SELECT origin FROM retired_origins) ORDER BY node, position"""
TILL_CODES_SQL = "SELECT code FROM tills ORDER BY paired_at, event_hash"  # as routing reads


def terminal_for(tx: Tx, till: str) -> TerminalRef | None:
    """The terminal `till` pays on: the printers' rule (edge/devices/till_routing.py)."""
    announced = [AnnouncedTills(row["node"], row["name"], tuple(orjson.loads(row["tills"])))
                 for row in tx.fetchall(ROUTING_TERMINALS_SQL)]
    codes = [row["code"] for row in tx.fetchall(TILL_CODES_SQL)]
    terminal = printer_for(till, announced, codes, tx.origin)
    return TerminalRef(terminal.node, terminal.name) if terminal else None
