"""Closing a period: when a node may, and the `closure_made` it writes.

- **Order**: days close one after the other (the store's first closure may
  be any day that is over, and counts all that came before it as late); a
  month closes once it is over and every day of it is closed (from the
  store's first closed day on), a year once every month is.
- **One per period**: a node closes only what no closure it knows of closed;
  two nodes closing at once both write, and the smaller hash wins
  (closures.py).
- **Caught up**: the caller says which nodes of the store it has not heard
  everything from (edge/api/closure_commands.py asks the peers); a closure
  is refused while there are any, unless a manager forces it (`alone`), and
  then it names them.
- **Covers never go back**: this node must hold every event the previous
  closure covered, with the same hash; if not (an older backup restored, a
  journal's end lost) it refuses, saying which events of which node it lacks.

What a day counts is closure_counting.py's rule; a month is the sum of its
days, a year of its months. The body is worked out on a read snapshot, off
the writer (a day of 20,000 sales does not hold up the tills' sales), then
written as one event in one transaction, after checking nothing changed
meanwhile: a crash leaves no closure or one, never half.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from edge import __version__
from edge.fiscal import closures
from edge.fiscal.closure_counting import Basis, day_figures, parts_digest
from edge.fiscal.closures import CLOSURE_VERSION, Closure
from edge.fiscal.periods import DAY, MONTH, YEAR, Calendar, Period, event_time
from edge.fiscal.totals import add, empty
from edge.journal.chain import Event
from edge.journal.store import Journal, Tx
from edge.messages import (
    CLOSURE_OUT_OF_ORDER,
    COVERS_BACKWARDS,
    INVALID_FIELD,
    NOT_CAUGHT_UP,
    NOTHING_TO_CLOSE,
    PERIOD_CLOSED,
    PERIOD_INCOMPLETE,
    PERIOD_NOT_OVER,
    EdgeError,
)
from edge.trust.certificates import fingerprint

PART_OF = {MONTH: DAY, YEAR: MONTH}
_LOCKS: weakref.WeakKeyDictionary[Journal, asyncio.Lock] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Request:
    kind: str  # day, month or year
    period: str | None = None  # None: the next one to close
    made_by: str = "cli"
    alone: bool = False  # a manager forces it while nodes are not heard
    missing: list[str] = field(default_factory=list)  # the nodes not heard everything from


def covers_of(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Every origin this node holds (head office's included): its last seq and hash."""
    return {origin: {"seq": seq, "hash": digest} for origin, seq, digest in db.execute(
        "SELECT o.origin, o.last_seq, e.hash FROM origins o JOIN events e "
        "ON e.origin = o.origin AND e.seq = o.last_seq ORDER BY o.origin")}


def lacking(db: sqlite3.Connection, previous: Closure) -> list[str]:
    """What this node lacks of what `previous` covered, in words (nothing: none)."""
    said = []
    held = covers_of(db)
    for origin, anchor in sorted(previous.body["covers"].items()):
        seq = anchor["seq"]
        have = held.get(origin, {}).get("seq", 0)
        if have < seq:
            said.append(f"this node lacks events {have + 1}-{seq} of node {origin} that the "
                        f"{previous.kind} closure of {previous.period} covered: it was restored "
                        "from an older backup or its journal lost its end; bring the other "
                        "nodes back online (they hold them), or restore the newest backup")
            continue
        row = db.execute("SELECT hash FROM events WHERE origin = ? AND seq = ?",
                         (origin, seq)).fetchone()
        if row is None or row[0] != anchor["hash"]:
            said.append(f"event {seq} of node {origin} here is not the one the {previous.kind} "
                        f"closure of {previous.period} covered (another hash): this journal "
                        "was changed, or restored from another store's; restore the newest "
                        "backup")
    return said


def _refuse(code: str, message: str, **data: Any) -> EdgeError:
    return EdgeError(code, message, data or None)


def _next_label(db: sqlite3.Connection, calendar: Calendar, kind: str, now: datetime) -> str:
    last = closures.last_winner(db, kind)
    if last is not None:
        return calendar.following(kind, last.period)
    if kind == DAY:  # the store's first: the last business day over
        return calendar.previous(DAY, calendar.business_day(now).isoformat())
    first_part = closures.first_period(db, PART_OF[kind])
    if first_part is None:
        raise _refuse(NOTHING_TO_CLOSE, f"no {PART_OF[kind]} is closed yet: a {kind} sums its "
                                        f"{PART_OF[kind]}s' closures")
    return calendar.label_of(kind, date.fromisoformat(first_part[:7] + "-01"
                                                      if kind == YEAR else first_part))


@dataclass(frozen=True)
class Plan:
    period: Period
    previous: Closure | None
    parts: list[Closure]


def plan(db: sqlite3.Connection, calendar: Calendar, request: Request, now: datetime) -> Plan:
    """The period to close and what it builds on; EdgeError (in words) if it may not be."""
    kind = request.kind
    explicit = request.period is not None
    label = request.period if explicit else _next_label(db, calendar, kind, now)
    try:
        period = calendar.period(kind, str(label))
    except ValueError as error:
        raise _refuse(INVALID_FIELD, str(error)) from None
    label = period.label
    done = closures.winner(db, kind, label)
    if done is not None:
        raise _refuse(PERIOD_CLOSED, f"the {kind} {label} is already closed (Z n°"
                                     f"{done.body['number']})", closure=done.hash)
    if event_time(now) < period.end:
        what = "nothing to close: " if not explicit else ""
        raise _refuse(PERIOD_NOT_OVER if explicit else NOTHING_TO_CLOSE,
                      f"{what}the {kind} {label} is not over until {period.end} (UTC)",
                      period=label)
    previous = closures.last_winner(db, kind)
    if previous is not None and previous.period > label:
        raise _refuse(CLOSURE_OUT_OF_ORDER, f"the {kind} {label} comes before the last one "
                                            f"closed ({previous.period}): it cannot be closed "
                                            "any more", last=previous.period)
    if previous is not None and calendar.following(kind, previous.period) != label:
        first = calendar.following(kind, previous.period)
        raise _refuse(CLOSURE_OUT_OF_ORDER, f"close the {kind} {first} first: {kind}s close "
                                            "one after the other", first=first)
    parts = _parts(db, calendar, kind, label)
    return Plan(period, previous, parts)


def _parts(db: sqlite3.Connection, calendar: Calendar, kind: str, label: str) -> list[Closure]:
    if kind == DAY:
        return []
    part_kind = PART_OF[kind]
    first = closures.first_period(db, part_kind)
    wanted = [part for part in calendar.parts(kind, label) if first and part >= first]
    if not wanted:
        raise _refuse(PERIOD_INCOMPLETE, f"no {part_kind} of the {kind} {label} is closed: a "
                                         f"{kind} sums its {part_kind}s' closures")
    found = closures.winners_between(db, part_kind, wanted[0], wanted[-1])
    open_parts = [part for part in wanted if part not in found]
    if open_parts:
        shown = ", ".join(open_parts[:5]) + (" …" if len(open_parts) > 5 else "")
        raise _refuse(PERIOD_INCOMPLETE, f"the {kind} {label} has {part_kind}s not closed yet "
                                         f"({shown}): close them first", open=open_parts)
    return [found[part] for part in wanted]


def closure_body(db: sqlite3.Connection, calendar: Calendar, request: Request,
                 now: datetime) -> dict[str, Any]:
    """The body of the closure `request` asks for, from what `db` holds (one snapshot)."""
    found = plan(db, calendar, request, now)
    if request.missing and not request.alone:
        raise _refuse(NOT_CAUGHT_UP, "this node has not heard everything from "
                                     f"{', '.join(request.missing)}: bring them online, or a "
                                     "manager closes alone (what they hold falls in the next "
                                     "closure)", missing=request.missing)
    previous, period = found.previous, found.period
    if previous is not None:
        problems = lacking(db, previous)
        if problems:
            raise _refuse(COVERS_BACKWARDS, "; ".join(problems), problems=problems)
    base = {"grand_total": 0, "grand_total_abs": 0} if previous is None else previous.body
    body: dict[str, Any] = {
        "kind": period.kind, "period": period.label,
        "bounds": {"start": period.start, "end": period.end},
        "number": 1 if previous is None else previous.body["number"] + 1,
        "previous": None if previous is None else previous.hash,
        "made_by": request.made_by, "version": CLOSURE_VERSION, "software": __version__,
    }
    if period.kind == DAY:
        covers = covers_of(db)
        figures = day_figures(db, covers, period.start, period.end,
                              None if previous is None else Basis.of(previous.body))
        body.update(covers=covers, totals=figures.totals, late=figures.late,
                    sales_digest=figures.sales_digest,
                    grand_total=base["grand_total"] + figures.totals["grand_total"],
                    grand_total_abs=base["grand_total_abs"] + figures.totals["grand_total_abs"])
    else:
        body.update(parts_body(found.parts))
    if request.alone and request.missing:
        body["alone"] = list(request.missing)
    return body


def parts_body(parts: list[Closure]) -> dict[str, Any]:
    """A month from its days' closures (a year from its months'): their sum, and the
    perpetual grand totals where the last one left them."""
    totals: dict[str, Any] = empty()
    late = {"count": 0, "total": 0}
    for part in parts:
        totals = add(totals, part.body["totals"])
        late = {key: late[key] + part.body["late"][key] for key in late}
    last = parts[-1].body
    return {"covers": last["covers"], "totals": totals, "late": late,
            "sales_digest": parts_digest([part.body["sales_digest"] for part in parts]),
            "parts": [part.hash for part in parts], "grand_total": last["grand_total"],
            "grand_total_abs": last["grand_total_abs"]}


def _read_body(path: Path, calendar: Calendar, request: Request,
               now: datetime) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")  # one snapshot: the covers and the sales they hold agree
        return closure_body(db, calendar, request, now)
    finally:
        db.close()


def _append(tx: Tx, body: dict[str, Any]) -> Event:
    """Write the closure, unless another closed the period (or its previous changed)
    while it was being worked out."""
    done = closures.winner(tx.db, body["kind"], body["period"])
    if done is not None:
        raise _refuse(PERIOD_CLOSED, f"the {body['kind']} {body['period']} was closed "
                                     "meanwhile (by another node?)", closure=done.hash)
    previous = closures.last_winner(tx.db, body["kind"])
    if (previous.hash if previous else None) != body["previous"]:
        raise _Changed
    return tx.append("closure_made", body)


class _Changed(Exception):
    """The previous closure changed while this one was worked out: work it out again."""


async def close_period(journal: Journal, calendar: Calendar, request: Request,
                       now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Closure:
    """Close a period (`request`); the closure written, or EdgeError saying why not."""
    if request.kind not in (DAY, MONTH, YEAR):
        raise _refuse(INVALID_FIELD, "kind is day, month or year")
    lock = _LOCKS.setdefault(journal, asyncio.Lock())
    async with lock:  # one closure at a time on this node
        for _ in range(3):
            body = await journal.with_own_connection(_read_body, journal.path, calendar,
                                                     request, now())
            # The store CA's fingerprint, printed on the Z: what an auditor compares an
            # archive's with (a forger's own CA checks just as well, but not this).
            body["store_ca"] = fingerprint(journal.identity.ca_cert)
            try:
                event = await journal.write(lambda tx, body=body: _append(tx, body))
            except _Changed:
                continue
            return Closure(event.hash, event.origin, event.seq, event.time, event.body)
    raise _refuse(PERIOD_CLOSED, "closures kept arriving from other nodes meanwhile: try again")


def unheard_nodes(node: Any) -> list[str]:
    """The nodes of the store this node has not heard everything from (names or URLs)."""
    peers = getattr(node, "peers", None)
    if peers is None or not peers.enabled:
        return []
    missing = list(peers.unreached())
    for state in peers.state.values():
        if not state.links or not state.their_vector:
            missing.append(state.name or state.node_id)
    return missing


async def caught_up_missing(node: Any) -> list[str]:
    """`unheard_nodes`, plus every peer whose events we do not all hold yet."""
    missing = unheard_nodes(node)
    peers = getattr(node, "peers", None)
    if peers is None or not peers.enabled:
        return missing
    ours = await node.journal.version_vector()
    for state in peers.state.values():
        behind = any(ours.get(origin, 0) < seq for origin, seq in state.their_vector.items())
        name = state.name or state.node_id
        if behind and name not in missing:
            missing.append(name)
    return missing


def describe(closure: Closure) -> str:
    """One line for store IT."""
    body = closure.body
    net = body["totals"]["net"]
    late = body["late"]
    return (f"{body['kind'].capitalize()} {body['period']} closed: Z n°{body['number']}, "
            f"{net['count']} sale(s) and refund(s), net {net['total']} cents"
            + (f" ({late['count']} late, {late['total']} cents)" if late["count"] else "")
            + f"; grand total {body['grand_total']}, absolute {body['grand_total_abs']}; "
            f"covers {len(body['covers'])} node(s); event {closure.origin}#{closure.seq} "
            f"{closure.hash[:16]}")


def status_in_words(db: sqlite3.Connection) -> dict[str, Any] | None:
    """`edge status`: the last closures, and whether this node lacks what the last day's
    covered (an older backup restored: the next closure would be refused)."""
    last = closures.last_winner(db, DAY)
    if last is None:
        return None
    said: dict[str, Any] = {"last day closed": f"{last.period} (Z n°{last.body['number']}, "
                                               f"grand total {last.body['grand_total']} cents)"}
    month = closures.last_winner(db, MONTH)
    if month is not None:
        said["last month closed"] = month.period
    problems = lacking(db, last)
    if problems:
        said["behind the last closure"] = "; ".join(problems)
    return said
