"""Origins that continue another: a data folder restored from a backup, or copied.

The journal starts the new origin with `origin_started`, right after the
`origin_certified` every origin begins with (edge/journal/store.py decides
when); every node records it here, so store IT can read in plain words what
happened, and the node knows its own past when it checks its clock.
A predecessor retired this way prints nothing more: its unfinished print jobs
are in doubt from then on (`stranded` in edge/devices/print_jobs.py).

Only a node's own past can be retired so, and only as its origin begins:
every intake refuses (`_may_retire`) an `origin_started` that is not its
origin's second event, or that retires an origin certified under another node
name than its own (a restored or copied folder keeps its `tls/`, so its
successor bears the same name). An origin with no certificate here (from
before signing, or not here yet) may be retired: as far as anyone can tell it
is the node's own past.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from edge.journal.chain import Event
from edge.journal.datafolder import REASONS
from edge.journal.event_types import CertifiedBody, Unauthorized, event_type
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


def certificate_name(certified: Any) -> str | None:
    """The node name in an `origin_certified` body's certificate (checked at intake).

    The certificate's, never the body's `name` (which no one checks). None
    for an origin certified as no node (head office) or with no readable one.
    """
    if not isinstance(certified, Mapping) or certified.get("role") != "node":
        return None
    try:
        cert = x509.load_pem_x509_certificate(str(certified.get("cert", "")).encode())
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def retired_by(body: Mapping[str, Any]) -> list[str]:
    """The origins an `origin_started` body retires."""
    also = body.get("also_retires")
    return ([body.get("predecessor")] if body.get("retires_predecessor") else []) \
        + (list(also) if isinstance(also, list) else [])


def _may_retire(event: Event, certified: CertifiedBody) -> None:
    """Unauthorized unless `event` starts its origin and retires only that node's past."""
    where = f"{event.origin}#{event.seq}"
    if event.seq != 2:
        raise Unauthorized(f"{where}: origin_started comes only right after its origin's "
                           "origin_certified (#2): an origin never takes up another's past "
                           "mid-chain")
    own = certificate_name(certified(event.origin))
    for origin in retired_by(event.body):
        theirs = certified(str(origin))
        if theirs is None:
            continue  # from before signing, or not here yet: the node's own past, for all we know
        name = certificate_name(theirs)
        if own is None or name != own:
            raise Unauthorized(f"{where}: node {own!r} may not retire {origin}, certified as "
                               f"{name!r}: a node retires only its own past (the origins "
                               "certified with its name)")


@event_type("origin_started", schema=OriginStarted, authorize=_may_retire,
            merge="one per origin (its second event, after origin_certified); the origins "
                  "it retires (its predecessor, and any the folder ran since) are listed, "
                  "and their printers go and stay gone whenever their announcements arrive")
def _origin_started(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT OR IGNORE INTO origin_lineage
        (origin, predecessor, reason, cut_seq, cut_hash, retires_predecessor, time)
        VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (event.origin, body["predecessor"], body["reason"], body["cut"]["seq"],
         body["cut"]["hash"], int(bool(body.get("retires_predecessor"))), event.time),
    )
    for node in retired_by(body):
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
