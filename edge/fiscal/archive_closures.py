"""An archive's `closures.json`: the period's closures, and what they stand on.

It lists every `closure_made` whose bounds lie within the archived period
(the days', months' and year's, superseded ones included, each marked), and
the closure each of them names as `previous` when that one closed before the
period (`"context": true`: the base of the grand totals, checked where it is
itself archived). Each entry is the closure event's body with where it is in
events.jsonl (origin, seq, hash): the events are the proof, this file is
their readable index.

The archive's events reach every closure listed and every event its
`covers` name (`needed_heads`), so the verifier checks each closure from the
events alone.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from edge.fiscal.closures import COLUMNS, Closure
from edge.fiscal.periods import Period


def _rows(db: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[Closure]:
    rows = db.execute(
        f"SELECT {COLUMNS}, hash = (SELECT MIN(hash) FROM closures WHERE kind = c.kind AND "
        f"period = c.period) FROM closures c WHERE {where} ORDER BY kind, period, hash", params)
    return [Closure(r[0], r[1], r[2], r[3], orjson.loads(r[4]), bool(r[5])) for r in rows]


def closures_in(db: sqlite3.Connection, period: Period) -> list[dict[str, Any]]:
    """closures.json's entries for `period`, from the journal's `closures`."""
    inside = [closure for closure in _rows(db, "1", ())
              if period.start <= closure.body["bounds"]["start"]
              and closure.body["bounds"]["end"] <= period.end]
    held = {closure.hash for closure in inside}
    wanted = sorted({closure.body["previous"] for closure in inside} - held - {None})
    context = _rows(db, f"hash IN ({', '.join('?' * len(wanted))})", tuple(wanted)) \
        if wanted else []
    return [*(entry(closure, True) for closure in context),
            *(entry(closure, False) for closure in inside)]


def entry(closure: Closure, context: bool) -> dict[str, Any]:
    return {"kind": closure.kind, "period": closure.period, "origin": closure.origin,
            "seq": closure.seq, "hash": closure.hash, "time": closure.time,
            "winner": closure.winner, "context": context, "closure": closure.body}


def needed_heads(entries: list[dict[str, Any]]) -> dict[str, int]:
    """{origin: the last seq} the archive must reach for every closure listed."""
    heads: dict[str, int] = {}
    for item in entries:
        for origin, seq in [(item["origin"], item["seq"]), *(
                (origin, anchor["seq"]) for origin, anchor in item["closure"]["covers"].items())]:
            heads[origin] = max(heads.get(origin, 0), seq)
    return heads
