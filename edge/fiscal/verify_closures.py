"""An archive's closures checked against its events (`edge verify ARCHIVE`, step 5).

The closures are events of events.jsonl (hashed, chained and signed like any
other, checked before this); closures.json is their readable index
(archive_closures.py). For each closure of the period, from the events
alone and by the very rule the node closed with (closure_counting.py):
- closures.json says what events.jsonl holds (same body, same hash), lists
  every closure of the period, and marks the right winner (the winners'
  chain: closures.py `winning_hashes`);
- its `covers` anchors: every event it names is in the archive with that
  hash (a deleted tail, an old backup restored, shows here), and they never
  go back from its previous closure's;
- its previous closure is in the archive, closes the period just before, and
  is the winner there when that period is archived too; its number follows;
- a day: its totals, late sales and sales digest recomputed from the events
  it covers; a month (a year): the sum of its days' (months') closures;
- the perpetual grand totals: the previous closure's plus this one's.
"""

from __future__ import annotations

import sqlite3
import zipfile
from typing import Any

import orjson

from edge.fiscal import archive_files as files
from edge.fiscal.closing import parts_body
from edge.fiscal.closure_counting import INDEXES, Basis, day_figures
from edge.fiscal.closures import CLOSURE_MADE, Closure, winning_hashes
from edge.fiscal.totals import differences


def _closure_events(db: sqlite3.Connection) -> dict[str, Closure]:
    """Every closure of events.jsonl, by hash."""
    return {row[0]: Closure(row[0], row[1], row[2], row[3], orjson.loads(row[4]))
            for row in db.execute("SELECT hash, origin, seq, time, body FROM events "
                                  "WHERE type = ?", (CLOSURE_MADE,))}


def closure_problems(entries: Any, db: sqlite3.Connection, period: Any) -> list[str]:
    """What is wrong with closures.json's `entries` against the events in `db`."""
    if not isinstance(entries, list):
        return [f"{files.CLOSURES}: not a JSON list"]
    for index in INDEXES:
        db.execute(index)
    events = _closure_events(db)
    problems: list[str] = []
    listed: dict[str, dict[str, Any]] = {}
    for number, item in enumerate(entries, 1):
        where = f"{files.CLOSURES} entry {number}"
        if not isinstance(item, dict) or not isinstance(item.get("closure"), dict):
            problems.append(f"{where}: not a closure entry")
            continue
        event = events.get(str(item.get("hash")))
        if event is None or (event.origin, event.seq) != (item.get("origin"), item.get("seq")):
            problems.append(f"{where}: names {item.get('origin')}#{item.get('seq')}, which "
                            f"{files.EVENTS} does not hold as a closure with that hash")
            continue
        if event.body != item["closure"]:
            problems.append(f"{where} ({event.body['kind']} {event.body['period']}): not "
                            f"what {event.origin}#{event.seq} says (changed): "
                            + "; ".join(differences(event.body, item["closure"])[:3]))
        listed[event.hash] = item
    inside = {digest: closure for digest, closure in events.items()
              if period.start <= closure.body["bounds"]["start"]
              and closure.body["bounds"]["end"] <= period.end}
    for digest in sorted(set(inside) - set(listed)):
        closure = inside[digest]
        problems.append(f"{closure.origin}#{closure.seq}: the {closure.kind} closure of "
                        f"{closure.period} is not listed in {files.CLOSURES}")
    winners = {(kind, period): digest for kind in ("day", "month", "year")
               for period, digest in winning_hashes(
                   (c.hash, c.period, c.body["previous"]) for c in events.values()
                   if c.kind == kind).items()}
    for digest, item in sorted(listed.items(), key=lambda kv: (kv[1]["kind"], kv[1]["period"])):
        closure = events[digest]
        name = f"{closure.origin}#{closure.seq} ({closure.kind} closure of {closure.period})"
        if item.get("winner") is not (winners[(closure.kind, closure.period)] == digest):
            problems.append(f"{name}: closures.json marks it "
                            f"{'the winner' if item.get('winner') else 'superseded'}, the "
                            "hashes say otherwise")
        if not item.get("context"):
            problems += [f"{name}: {problem}"
                         for problem in _one(db, closure, events, winners)]
    return problems


def _one(db: sqlite3.Connection, closure: Closure, events: dict[str, Closure],
         winners: dict[tuple[str, str], str]) -> list[str]:
    body = closure.body
    problems = _anchors(db, body["covers"])
    previous = events.get(body["previous"]) if body["previous"] else None
    if body["previous"] and previous is None:
        return [*problems, f"its previous closure {body['previous'][:16]}… is not in the "
                           "archive"]
    if previous is not None:
        problems += _follows(closure, previous, winners,
                             winners.get((closure.kind, closure.period)) == closure.hash)
    elif body["number"] != 1:
        problems.append(f"it is Z n°{body['number']} but names no previous closure")
    if body["kind"] == "day":
        figures = day_figures(db, body["covers"], body["bounds"]["start"],
                              body["bounds"]["end"],
                              Basis.of(previous.body) if previous is not None else None)
        expected: dict[str, Any] = {"totals": figures.totals, "late": figures.late,
                                    "sales_digest": figures.sales_digest}
        base = previous.body if previous is not None else {"grand_total": 0,
                                                          "grand_total_abs": 0}
        expected["grand_total"] = base["grand_total"] + figures.totals["grand_total"]
        expected["grand_total_abs"] = base["grand_total_abs"] + \
            figures.totals["grand_total_abs"]
    else:
        parts = [events.get(digest) for digest in body.get("parts", [])]
        if not parts or None in parts:
            return [*problems, "the closures it sums are not all in the archive"]
        expected = parts_body([part for part in parts if part is not None])
        if previous is not None and expected["grand_total"] != \
                previous.body["grand_total"] + expected["totals"]["grand_total"]:
            problems.append("its grand total does not carry on from its previous closure's")
    found = {key: body.get(key) for key in expected}
    problems += [f"{difference}" for difference in differences(expected, found)]
    return problems


def _anchors(db: sqlite3.Connection, covers: dict[str, Any]) -> list[str]:
    problems = []
    for origin, anchor in sorted(covers.items()):
        row = db.execute("SELECT hash FROM events WHERE origin = ? AND seq = ?",
                         (origin, anchor.get("seq"))).fetchone()
        if row is None or row[0] != anchor.get("hash"):
            problems.append(f"covers {origin}#{anchor.get('seq')}, which {files.EVENTS} does "
                            "not hold with that hash (events deleted or changed)")
    return problems


def _follows(closure: Closure, previous: Closure, winners: dict[tuple[str, str], str],
             won: bool) -> list[str]:
    """What is wrong with how `closure` follows `previous`; a winner builds on a winner
    (a superseded one may build on a superseded one: nodes cut apart closing alone)."""
    body, before = closure.body, previous.body
    problems = []
    if before["kind"] != body["kind"] or before["bounds"]["end"] != body["bounds"]["start"]:
        problems.append(f"its previous closure ({before['kind']} {before['period']}) is not "
                        "the one of the period just before")
    elif won and winners.get((previous.kind, previous.period)) != previous.hash:
        problems.append(f"it builds on a superseded closure of {previous.period}")
    if body["number"] != before["number"] + 1:
        problems.append(f"it is Z n°{body['number']} after n°{before['number']}")
    for origin, anchor in sorted(before["covers"].items()):
        if body["covers"].get(origin, {}).get("seq", 0) < anchor["seq"]:
            problems.append(f"its covers of {origin} go back from its previous closure's "
                            f"(#{anchor['seq']})")
    return problems


def check(zf: zipfile.ZipFile, db: sqlite3.Connection, period: Any) -> list[str]:
    """closures.json of `zf` against the events loaded in `db`."""
    try:
        entries = orjson.loads(zf.read(files.CLOSURES))
    except KeyError:
        return [f"{files.CLOSURES}: missing from the archive"]
    except orjson.JSONDecodeError:
        return [f"{files.CLOSURES}: not JSON"]
    return closure_problems(entries, db, period)
