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
        }


def event_hash(
    origin: str, seq: int, event_id: str, time: str, type_: str, body: Any, prev_hash: str
) -> str:
    payload = canonical_json([origin, seq, event_id, time, type_, body, prev_hash])
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where an origin's chain stands: its last seq and hash."""

    seq: int = 0
    hash: str = GENESIS_HASH

    def next(self, origin: str, type_: str, body: dict[str, Any]) -> Event:
        seq = self.seq + 1
        event_id = str(uuid.uuid4())
        time = utc_now()
        digest = event_hash(origin, seq, event_id, time, type_, body, self.hash)
        return Event(origin, seq, event_id, time, type_, body, self.hash, digest)


def chain_problems(events: Iterable[Event]) -> list[str]:
    """Every break in the chains of `events` (any origins, each in seq order)."""
    heads: dict[str, ChainHead] = {}
    problems = []
    for event in events:
        head = heads.get(event.origin, ChainHead())
        where = f"{event.origin}#{event.seq}"
        if event.seq != head.seq + 1:
            problems.append(f"{where}: expected seq {head.seq + 1}")
        if event.prev_hash != head.hash:
            problems.append(f"{where}: prev_hash does not match the previous event")
        expected = event_hash(
            event.origin, event.seq, event.id, event.time, event.type, event.body, event.prev_hash
        )
        if event.hash != expected:
            problems.append(f"{where}: hash does not match its content")
        heads[event.origin] = ChainHead(event.seq, event.hash)
    return problems
