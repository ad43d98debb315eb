"""The technical event journal (JET): what the journal did not record of its own.

French rules want a cash system's technical events kept with its sales. Most
already are events (docs/fiscal.md maps each item to its events); this module
adds the rest, each a record in the node's signed chain, nothing projected:
- `node_started {version, config_digest}` and `node_stopped {version, why}`:
  a node's runs, with the SHA-256 of its configuration (secrets left out);
- `cashier_logged_out {till, cashier}`;
- `till_offline {till, first, last, sales}`: a till sold offline, learned when
  those sales arrive (the till's own times of the first and last);
- `clock_jumped {from, to, seconds}`: the node's wall clock seen stepping back,
  or leaping ahead, by more than `CLOCK_JUMP` against its steady clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from edge import __version__
from edge.fiscal.periods import event_time
from edge.journal.chain import Event
from edge.journal.event_types import record_type
from edge.journal.store import Journal

__all__ = ["ClockWatch", "OfflinePeriods", "config_digest", "event_time"]

log = logging.getLogger(__name__)

CLOCK_JUMP = 120.0  # seconds: a time server's corrections are far smaller
CLOCK_EVERY = 5.0  # seconds between two looks at the clocks
OFFLINE_QUIET = 2.0  # seconds without another offline sale of a till: its period is over
# Settings whose value is a secret: the digest says only whether each is set.
SECRET_SETTINGS = frozenset({"headoffice_token"})


def config_digest(config: Any) -> str:
    """SHA-256 of the node's configuration (a dataclass), secrets by presence only: the
    same configuration always gives the same digest, any change another."""
    values: dict[str, Any] = {}
    for key, value in sorted(vars(config).items()):
        if key in SECRET_SETTINGS:
            value = value is not None
        values[key] = _plain(value)
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {key: _plain(item) for key, item in sorted(vars(value).items())}
    return value


async def node_started(journal: Journal, config: Any) -> Event:
    body = {"version": __version__, "config_digest": config_digest(config)}
    return await journal.write(lambda tx: tx.append("node_started", body))


async def node_stopped(journal: Journal, why: str = "stopped") -> Event:
    body = {"version": __version__, "why": why}
    return await journal.write(lambda tx: tx.append("node_stopped", body))


async def cashier_logged_out(journal: Journal, till: str, cashier: str) -> Event:
    body = {"till": till, "cashier": cashier}
    return await journal.write(lambda tx: tx.append("cashier_logged_out", body))


async def clock_jumped(journal: Journal, jumped: dict[str, Any]) -> Event:
    return await journal.write(lambda tx: tx.append("clock_jumped", jumped))


async def clock_behind_accepted(journal: Journal, last: str, now: datetime) -> Event:
    """Started on a clock behind the node's last event (`--accept-clock`): a jump back."""
    seconds = (now - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
    return await clock_jumped(journal, {"from": last, "to": event_time(now), "at_start": True,
                                        "seconds": round(seconds)})


def _as_time(seconds: float) -> str:
    return event_time(datetime.fromtimestamp(seconds, UTC))


class ClockWatch:
    """Notices the wall clock moving otherwise than the steady one, and records it."""

    def __init__(self, journal: Journal, wall: Callable[[], float] = time.time,
                 steady: Callable[[], float] = time.monotonic,
                 every: float = CLOCK_EVERY) -> None:
        self.journal = journal
        self.wall, self.steady, self.every = wall, steady, every
        self.offset = wall() - steady()  # wall time at steady zero, as last seen

    def jump(self) -> dict[str, Any] | None:
        """The jump since the last look, if the clock jumped (and remember where it is)."""
        wall, steady = self.wall(), self.steady()
        offset = wall - steady
        moved = offset - self.offset
        self.offset = offset
        if abs(moved) <= CLOCK_JUMP:
            return None
        return {"from": _as_time(wall - moved), "to": _as_time(wall), "seconds": round(moved)}

    async def look(self) -> None:
        jumped = self.jump()
        if jumped is not None:
            log.warning("the clock jumped by %s s (%s -> %s)", jumped["seconds"],
                        jumped["from"], jumped["to"])
            await clock_jumped(self.journal, jumped)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.look()


@dataclass
class _Period:
    first: str
    last: str
    sales: int
    seen: float


class OfflinePeriods:
    """Each till's offline selling, learned from its offline sales as this node records
    them: once a till's offline sales stop arriving (`OFFLINE_QUIET`), one `till_offline`."""

    def __init__(self, journal: Journal, quiet: float = OFFLINE_QUIET) -> None:
        self.journal = journal
        self.quiet = quiet
        self.periods: dict[str, _Period] = {}

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            body = event.body
            if event.origin != self.journal.origin or event.type not in (
                    "sale_completed", "sale_refunded") or body.get("offline") is not True:
                continue
            moment = str(body.get("till_time") or event.time)
            period = self.periods.get(body["till"])
            if period is None:
                self.periods[body["till"]] = _Period(moment, moment, 1, time.monotonic())
            else:
                period.first, period.last = min(period.first, moment), max(period.last, moment)
                period.sales += 1
                period.seen = time.monotonic()

    async def flush(self, everything: bool = False) -> None:
        now = time.monotonic()
        for till, period in list(self.periods.items()):
            if everything or now - period.seen >= self.quiet:
                del self.periods[till]
                body = {"till": till, "first": period.first, "last": period.last,
                        "sales": period.sales}
                await self.journal.write(lambda tx, body=body: tx.append("till_offline", body))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.quiet / 2)
            await self.flush()


# --- event types: records, nothing projected --------------------------------------------

@dataclass(slots=True)
class NodeStarted:
    version: str
    config_digest: str


record_type("node_started", schema=NodeStarted)


@dataclass(slots=True)
class NodeStopped:
    version: str
    why: str = ""


record_type("node_stopped", schema=NodeStopped)


@dataclass(slots=True)
class CashierLoggedOut:
    till: str
    cashier: str


record_type("cashier_logged_out", schema=CashierLoggedOut)


@dataclass(slots=True)
class TillOffline:
    till: str
    first: str
    last: str
    sales: int


record_type("till_offline", schema=TillOffline)


@dataclass(slots=True)
class ClockJumped:
    seconds: int  # and `from`, `to`: event times (a Python keyword cannot be a field)


record_type("clock_jumped", schema=ClockJumped)
