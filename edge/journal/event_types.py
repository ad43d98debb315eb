"""Every journal event type in one registry: its body schema, its projection, its merge rule.

A module that owns a table the tills read declares, next to the projection
that feeds it, each event type it projects:

    @event_type("sale_completed", schema=SaleCompleted,
                merge="one sale per id: the smaller event hash wins")
    def _sale_completed(db, event): ...

- The **schema** is a dataclass checked by `edge.schema.parse` (the till
  command checker): the fields the projection reads, with their types. A
  body that fits never breaks its projection; extra fields pass (what a
  projection does not read is not its business), and nothing of a body is
  changed by the check.
- The **projection** updates tables in the event's own transaction.
- **written_by**: the roles whose origins may write it (`node`, `headoffice`);
  a node's journal, head office and `edge verify` refuse an event of a type
  its origin's certified role may not write (edge/journal/signing.py). Every
  type is the nodes' alone unless its declaration says otherwise.
- **authorize** (optional): what an origin may say about *other* origins,
  which no signature can tell (`origin_started` retires only the node's own
  past; `printers_announced` speaks only for its own node). Called with the
  event and `certified(origin)` (the body of that origin's `origin_certified`
  held here, None if none is) by every intake of signed events from elsewhere:
  a node's journal, head office and `edge verify`; `Unauthorized` refuses it.
- The **merge rule** says, in words, how the projection gives the same
  tables on every node whatever the order in which events of several
  origins arrive, and however often (tests/test_projections_property.py
  holds every type to it; docs/architecture.md lists them).

The journal refuses an event of a type it does not know, or whose body
does not fit (`UnfitEvent`), whether a peer or head office sent it or this
node is writing it: nothing of it is applied.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.journal.chain import ChainError, Event
from edge.messages import EdgeError
from edge.schema import parse

Projection = Callable[[sqlite3.Connection, Event], None]
# The body of an origin's `origin_certified` as held here (checked when it came
# in), None when none is held (an origin from before signing, or not here yet).
CertifiedBody = Callable[[str], Mapping[str, Any] | None]
Authorize = Callable[[Event, CertifiedBody], None]

# Every module that declares event types: imported when the registry is
# first read, so a journal knows every type whatever its caller imported
# (tests/test_event_registry.py keeps this list complete).
DECLARING_MODULES = (
    "edge.journal.lineage",
    "edge.journal.signing",
    "edge.journal.vouches",
    "edge.selling.catalogue",
    "edge.selling.catalogue_batches",
    "edge.selling.promotions",
    "edge.selling.staff",
    "edge.selling.logins",
    "edge.selling.tills",
    "edge.selling.basket_events",
    "edge.selling.discounts",
    "edge.selling.parking",
    "edge.selling.sales",
    "edge.selling.refund_events",
    "edge.devices.print_jobs",
    "edge.devices.store_printers",
    "edge.devices.store_terminals",
    "edge.devices.card_payment_events",
    "edge.fiscal.exports",
    "edge.fiscal.closures",
    "edge.fiscal.shifts",
    "edge.fiscal.training",
    "edge.fiscal.jet",
)

# The longest string a body field takes unless its schema says otherwise: an
# event written elsewhere is history, so only what no projection should
# store is refused.
MAX_TEXT = 10_000


class UnfitEvent(ChainError):
    """An event of a type this node does not know, or whose body does not fit its schema."""


class Unauthorized(ChainError):
    """A signed event its origin may not write as it stands (what it says of another
    origin, mostly): refused at every intake, nothing of it applied."""


NODE_ONLY = ("node",)


@dataclass(frozen=True)
class EventType:
    name: str
    schema: type
    merge: str
    project: Projection
    written_by: tuple[str, ...] = NODE_ONLY
    authorize: Authorize | None = None

    def check(self, event: Event) -> None:
        """UnfitEvent unless `event`'s body fits this type's schema."""
        try:
            parse(self.schema, event.body, max_text=MAX_TEXT)
        except EdgeError as error:
            raise UnfitEvent(f"{event.origin}#{event.seq}: a {self.name} body that does not "
                             f"fit its schema: {error.message}") from None


_REGISTRY: dict[str, EventType] = {}
_complete = False


def event_type(name: str, *, schema: type, merge: str,
               written_by: tuple[str, ...] = NODE_ONLY,
               authorize: Authorize | None = None) -> Callable[[Projection], Projection]:
    """Declare an event type with its body schema and merge rule; the function is its projection."""

    def register(project: Projection) -> Projection:
        known = _REGISTRY.get(name)
        if known is not None and known.project.__qualname__ != project.__qualname__:
            raise RuntimeError(f"event type {name} is declared twice")
        _REGISTRY[name] = EventType(name, schema, merge, project, written_by, authorize)
        return project

    return register


RECORD_ONLY = "nothing projected: a record in its origin's chain, read from the journal"


def _nothing_to_project(db: sqlite3.Connection, event: Event) -> None:
    return None


def record_type(name: str, *, schema: type) -> None:
    """Declare an event type no table projects: a record the journal keeps (the fiscal log,
    exports), read from the events themselves."""
    event_type(name, schema=schema, merge=RECORD_ONLY)(_nothing_to_project)


def registry() -> Mapping[str, EventType]:
    """Every event type, by name."""
    global _complete
    if not _complete:
        for module in DECLARING_MODULES:
            importlib.import_module(module)
        _complete = True
    return _REGISTRY


def checked(event: Event) -> EventType:
    """The type of `event`, once its body is found to fit; else UnfitEvent."""
    kind = registry().get(event.type)
    if kind is None:
        raise UnfitEvent(f"{event.origin}#{event.seq}: unknown event type {event.type!r} "
                         "(written by a newer edge? upgrade this node)")
    kind.check(event)
    return kind


def authorize(event: Event, certified: CertifiedBody) -> None:
    """Unauthorized unless `event`'s origin may say what it says of other origins.

    For a signed event from elsewhere, once its signature is checked (its
    origin's own `origin_certified` is then held).
    """
    kind = registry().get(event.type)
    if kind is not None and kind.authorize is not None:
        kind.check(event)  # a body that does not fit is refused as such first
        kind.authorize(event, certified)


def project(db: sqlite3.Connection, event: Event) -> None:
    """Apply `event`'s projection (tests replaying events without a journal)."""
    registry()[event.type].project(db, event)

