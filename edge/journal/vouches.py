"""Events written before signing, vouched for by the nodes that held them when they upgraded.

An event written by an edge from before signing carries no signature and its
origin's first event certifies no key: nothing in it says who wrote it. What
does is a node that held it when it was upgraded: its journal continues under
a new, signed origin, and among its first events is `unsigned_heads_vouched`,
body `{"heads": [{"origin", "seq", "hash"}, ...]}`: the last event it held of
every origin written before signing (its own predecessor included), signed by
its certified key. A hash chain ends there, so the vouch covers each of those
origins up to that seq, exactly.

The one rule every intake follows (a node's journal, head office, `edge
verify`, `edge restore`): an unsigned event of an origin no key certified is
taken only when a vouch held here covers its origin at that seq or beyond,
with the usual chain check; at a vouched seq its hash must be the vouched
one, and two vouches naming different hashes at one seq are a fork: refused.
An event no vouch covers (yet) is not refused: a vouch may come later (the
node that holds it may be off), so it is a gap, asked for again
(`NotVouched`). Nothing read from the journal's own tables decides it (a file
can be changed): only signed vouches.

Known limit: between two vouched seqs the chain is checked link by link, so
the events below a vouched seq are proven only once the chain reaches it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge.journal.chain import ChainError, ChainGap, Event
from edge.journal.event_types import event_type
from edge.journal.signing import ORIGIN_CERTIFIED

UNSIGNED_HEADS_VOUCHED = "unsigned_heads_vouched"

# A vouch names every origin its node held from before signing: a store has few.
MAX_VOUCHED_HEADS = 10_000


class NotVouched(ChainGap):
    """An unsigned event no vouch held here covers: held back and asked for again, not refused.

    A node that held it when it was upgraded vouches for it; that vouch may
    simply not be here yet (its node is off, or its events come later).
    """


class VouchConflict(ChainError):
    """An unsigned event whose hash is not the one vouched at its seq, or vouches that
    disagree: a fork of history from before signing, refused."""


@dataclass(frozen=True, slots=True)
class Vouch:
    seq: int
    hash: str
    voucher: str  # the origin whose signed event vouched


@dataclass(slots=True)
class VouchedHead:
    origin: str = field(metadata={"max_length": 200, "min": 1})
    seq: int = field(metadata={"min": 1})
    hash: str = field(metadata={"max_length": 64, "min": 64})


@dataclass(slots=True)
class UnsignedHeadsVouched:
    heads: list[VouchedHead] = field(metadata={"max_length": MAX_VOUCHED_HEADS, "min": 1})


def is_unsigned_candidate(event: Event) -> bool:
    """Could this event be one written before signing? (unsigned, not a certificate)"""
    return not event.sig and event.type != ORIGIN_CERTIFIED


def vouched_heads(event: Event) -> list[tuple[str, int, str]]:
    """(origin, seq, hash) of each head a vouch event names."""
    return [(str(head["origin"]), int(head["seq"]), str(head["hash"]))
            for head in event.body.get("heads", [])]


def vouch_problem(event: Event, vouches: Iterable[Vouch]) -> ChainError | None:
    """Why the unsigned `event` may not be taken with these vouches of its origin (None: it may).

    NotVouched (a gap) if none covers its seq; VouchConflict (refused) if one
    at its seq names another hash, or two at its seq disagree.
    """
    where = f"{event.origin}#{event.seq}"
    vouches = list(vouches)
    at_seq = {vouch.hash: vouch.voucher for vouch in vouches if vouch.seq == event.seq}
    if len(at_seq) > 1:
        named = ", ".join(f"{voucher} vouched {digest[:12]}…" for digest, voucher in at_seq.items())
        return VouchConflict(f"{where}: written before signing, and vouched for with different "
                             f"hashes at this seq ({named}): history from before signing forked")
    if at_seq and event.hash not in at_seq:
        voucher = next(iter(at_seq.values()))
        return VouchConflict(f"{where}: written before signing, but not the event {voucher} "
                             f"vouched for at this seq (hash {next(iter(at_seq))[:12]}…): a fork "
                             "or a forgery")
    if not any(vouch.seq >= event.seq for vouch in vouches):
        reach = max((vouch.seq for vouch in vouches), default=0)
        beyond = f" (vouched up to #{reach} only)" if reach else ""
        return NotVouched(f"{where}: written before signing and not vouched for by any upgraded "
                          f"node{beyond}: held back, asked for again later (the node that "
                          "vouches for it may be off)")
    return None


# The journal's side: the projection and the questions it asks.

@event_type(UNSIGNED_HEADS_VOUCHED, schema=UnsignedHeadsVouched,
            merge="a set of (origin, seq, hash, node that vouched): any certified node's vouch "
                  "covers an origin written before signing up to its seq")
def _unsigned_heads_vouched(db: sqlite3.Connection, event: Event) -> None:
    db.executemany("INSERT OR IGNORE INTO unsigned_vouches (origin, seq, hash, voucher) "
                   "VALUES (?, ?, ?, ?)",
                   [(origin, seq, digest, event.origin)
                    for origin, seq, digest in vouched_heads(event)])


def held_vouches(db: sqlite3.Connection, origin: str) -> list[Vouch]:
    return [Vouch(seq, digest, voucher) for seq, digest, voucher in db.execute(
        "SELECT seq, hash, voucher FROM unsigned_vouches WHERE origin = ?", (origin,))]


def check_vouched(db: sqlite3.Connection, event: Event) -> None:
    """NotVouched or VouchConflict unless a vouch held in `db` covers the unsigned `event`."""
    problem = vouch_problem(event, held_vouches(db, event.origin))
    if problem is not None:
        raise problem


def unvouched_heads(db: sqlite3.Connection) -> dict[str, Any] | None:
    """The body of the vouch this journal owes, or None if it owes none.

    Every origin held here whose first event certifies no key was written
    before signing; this node vouches for the last event it holds of each,
    unless a vouch held here already covers that far (a node upgraded before
    vouches existed vouches at its next start; one that vouched never again).
    """
    heads = []
    for origin, last_seq in db.execute(
            "SELECT origins.origin, origins.last_seq FROM origins "
            "LEFT JOIN origin_keys ON origin_keys.origin = origins.origin "
            "WHERE origin_keys.origin IS NULL ORDER BY origins.origin").fetchall():
        first = db.execute("SELECT type FROM events WHERE origin = ? AND seq = 1",
                           (origin,)).fetchone()
        if first is None or first[0] == ORIGIN_CERTIFIED:
            continue  # a gap at its start (not held from the beginning), or certified
        covered = db.execute("SELECT 1 FROM unsigned_vouches WHERE origin = ? AND seq >= ? "
                             "LIMIT 1", (origin, last_seq)).fetchone()
        if covered:
            continue
        row = db.execute("SELECT hash FROM events WHERE origin = ? AND seq = ?",
                         (origin, last_seq)).fetchone()
        if row is not None:
            heads.append({"origin": origin, "seq": last_seq, "hash": row[0]})
    return {"heads": heads} if heads else None
