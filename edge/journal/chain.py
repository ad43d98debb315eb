"""Journal events and their hash chains: pure, no I/O.

Each origin (a node, head office) writes a gapless sequence; every event's
hash covers its content and the previous hash, so any change, removal or
reordering of an origin's events shows when the chain is checked.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    origin: str
    seq: int
    id: str
    time: str
    type: str
    body: dict[str, Any]
    prev_hash: str
    hash: str
    # Hex Ed25519 signature of the hash by the origin's key (edge/journal/signing.py);
    # not covered by the hash. Empty: written before events were signed.
    sig: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "seq": self.seq,
            "id": self.id,
            "time": self.time,
            "type": self.type,
            "body": self.body,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "sig": self.sig,
        }


# A body's `secret` (an object: a cashier's PIN hash) is covered by its
# event's hash through its digest only, and head office is sent that digest in
# its place (`withheld`): what it never needs it never holds, and every chain
# still checks there. Events without one hash as they always did.
SECRET_FIELD = "secret"


def withheld(body: Any) -> Any:
    """`body` as its hash covers it and as head office receives it: a secret by its digest."""
    secret = body.get(SECRET_FIELD) if isinstance(body, dict) else None
    if not isinstance(secret, dict):
        return body
    digest = hashlib.sha256(b"edge secret:" + canonical_json(secret)).hexdigest()
    return {**body, SECRET_FIELD: digest}


def event_hash(
    origin: str, seq: int, event_id: str, time: str, type_: str, body: Any, prev_hash: str
) -> str:
    payload = canonical_json([origin, seq, event_id, time, type_, withheld(body), prev_hash])
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where an origin's chain stands: its last seq and hash."""

    seq: int = 0
    hash: str = GENESIS_HASH

    def next(self, origin: str, type_: str, body: dict[str, Any]) -> Event:
        """The next event of `origin`, not yet signed (`signing.sign` does that)."""
        seq = self.seq + 1
        event_id = str(uuid.uuid4())
        time = utc_now()
        digest = event_hash(origin, seq, event_id, time, type_, body, self.hash)
        return Event(origin, seq, event_id, time, type_, body, self.hash, digest)


class ChainError(Exception):
    """An event that does not follow its origin's chain: refused, nothing applied."""


class ChainGap(ChainError):
    """Events of that origin are missing before this one: ask for them, nothing is wrong."""


def content_matches_hash(event: Event) -> bool:
    expected = event_hash(
        event.origin, event.seq, event.id, event.time, event.type, event.body, event.prev_hash
    )
    return event.hash == expected


def link_problems(head: ChainHead, event: Event) -> list[str]:
    """Why `event` cannot come right after `head` in its origin's chain (empty: it can)."""
    where = f"{event.origin}#{event.seq}"
    problems = []
    if event.seq != head.seq + 1:
        problems.append(f"{where}: expected seq {head.seq + 1}")
    if event.prev_hash != head.hash:
        problems.append(f"{where}: prev_hash does not match the previous event")
    if not content_matches_hash(event):
        problems.append(f"{where}: hash does not match its content")
    return problems


HASH_MISMATCH = "hash does not match its content"


class Verdict(Enum):
    HELD = "held"  # already here, the same event: nothing to do
    NEXT = "next"  # extends the chain: apply it
    GAP = "gap"  # events before it are missing: ask for them
    CONFLICT = "conflict"  # contradicts what is here (a fork, a forgery): refuse it


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str = ""


def judge(head: ChainHead, held_hash: str | None, event: Event) -> Judgement:
    """Where an event stands against its origin's chain as held here.

    The one chain rule every intake follows (peers, the head-office pull, head
    office itself); an event that extends the chain must then be signed by its
    origin's key (`signing.check_signed`). `head` is the origin's last event
    held here; `held_hash` the hash held at `event.seq`, when that is at or
    below the head.
    """
    if not content_matches_hash(event):
        return Judgement(Verdict.CONFLICT, HASH_MISMATCH)
    if event.seq <= head.seq:
        if held_hash == event.hash:
            return Judgement(Verdict.HELD)
        return Judgement(Verdict.CONFLICT, "differs from the event held here")
    if event.seq > head.seq + 1:
        return Judgement(Verdict.GAP, f"events after #{head.seq} are missing")
    where = f"{event.origin}#{event.seq}: "
    problems = [problem.removeprefix(where) for problem in link_problems(head, event)]
    if problems:
        return Judgement(Verdict.CONFLICT, "; ".join(problems))
    return Judgement(Verdict.NEXT)


def chain_problems(events: Iterable[Event]) -> list[str]:
    """Every break in the chains of `events` (any origins, each in seq order)."""
    heads: dict[str, ChainHead] = {}
    problems = []
    for event in events:
        problems += link_problems(heads.get(event.origin, ChainHead()), event)
        heads[event.origin] = ChainHead(event.seq, event.hash)
    return problems


def event_from_dict(data: dict[str, Any]) -> Event:
    """An event as peers and head office send it (shape of `Event.as_dict`)."""
    return Event(
        origin=str(data["origin"]),
        seq=int(data["seq"]),
        id=str(data["id"]),
        time=str(data["time"]),
        type=str(data["type"]),
        body=dict(data["body"]),
        prev_hash=str(data["prev_hash"]),
        hash=str(data["hash"]),
        sig=str(data.get("sig") or ""),
    )
