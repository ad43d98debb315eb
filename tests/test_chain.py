"""The journal's hash chains show any change, removal or reordering."""

from __future__ import annotations

import dataclasses

from edge.journal.chain import GENESIS_HASH, ChainHead, Event, chain_problems


def chain(count: int, origin: str = "n1") -> list[Event]:
    head, events = ChainHead(), []
    for number in range(count):
        event = head.next(origin, "sale_completed", {"total": 100 + number})
        events.append(event)
        head = ChainHead(event.seq, event.hash)
    return events


def test_an_untouched_chain_is_intact() -> None:
    events = chain(5) + chain(3, origin="n2")
    assert events[0].prev_hash == GENESIS_HASH
    assert chain_problems(events) == []


def test_a_changed_amount_is_detected() -> None:
    events = chain(5)
    events[2] = dataclasses.replace(events[2], body={"total": 1})
    assert chain_problems(events) == ["n1#3: hash does not match its content"]


def test_a_removed_event_is_detected() -> None:
    events = chain(5)
    del events[2]
    problems = chain_problems(events)
    assert "n1#4: expected seq 3" in problems
    assert "n1#4: prev_hash does not match the previous event" in problems


def test_a_rehashed_forgery_still_breaks_the_next_link() -> None:
    events = chain(4)
    forged = dataclasses.replace(events[1], body={"total": 1})
    head = ChainHead(events[0].seq, events[0].hash)
    rehashed = Event(forged.origin, forged.seq, forged.id, forged.time, forged.type,
                     forged.body, head.hash, "")
    from edge.journal.chain import event_hash

    rehashed = dataclasses.replace(rehashed, hash=event_hash(
        rehashed.origin, rehashed.seq, rehashed.id, rehashed.time, rehashed.type,
        rehashed.body, rehashed.prev_hash))
    events[1] = rehashed
    assert chain_problems(events) == ["n1#3: prev_hash does not match the previous event"]
