"""The till's catalogue commands for selling without a barcode: the product grid.

`catalogue/grid` gives the categories and their tiles (edge/selling/catalogue_grid.py);
`catalogue/export`'s first page also carries what a till needs to do the same
offline (`till_catalogue_settings`): the store's grid settings, the promotions
not ended, and the in-store barcode layouts. `catalogue/changes` gives a till
the changes since the catalogue version it holds (or a full copy), and
`catalogue/follow` tells it when to ask (edge/selling/catalogue_versions.py).
docs/protocol.md documents them.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any

from edge.api.websocket_api import AsBinary, Connection, NoArgs, command
from edge.config import Config
from edge.journal.chain import Event
from edge.journal.store import Journal
from edge.messages import event_message
from edge.schema import limits
from edge.selling.catalogue_batches import PRODUCT_EVENT_TYPES
from edge.selling.catalogue_grid import GridSettings, grid
from edge.selling.catalogue_versions import Request, TouchedCache, changes, checked_version
from edge.selling.promotions import promotions_for_tills

# Pushed to tills with the products (their offline copy keeps the promotions).
PROMOTION_EVENT_TYPES = frozenset({"promotion_upserted", "promotion_ended"})


def grid_settings(config: Config) -> GridSettings:
    return GridSettings(categories=config.grid_categories, favourites=config.grid_favourites,
                        tiles=config.grid_tiles)


@command("catalogue/grid", NoArgs, access="till")
async def catalogue_grid(conn: Connection, args: NoArgs) -> dict[str, Any]:
    return await grid(conn.node.journal, grid_settings(conn.node.config))


async def till_catalogue_settings(journal: Journal, config: Config) -> dict[str, Any]:
    """What `catalogue/export`'s first page adds to the products."""
    return {"grid": grid_settings(config).as_json(),
            "promotions": await promotions_for_tills(journal),
            "embedded_barcodes": [dict(layout) for layout in config.embedded_barcodes]}


# --- catalogue versions (edge/selling/catalogue_versions.py) ---------------------------

# A till following the catalogue is told at most this often (seconds) that it changed:
# one push for a 20,000-price change, not 20,000.
FOLLOW_EVERY = 0.5
FOLLOWED_EVENT_TYPES = PRODUCT_EVENT_TYPES | PROMOTION_EVENT_TYPES
# Per journal: the (since, upto) worked out last, shared by its tills.
_TOUCHED: weakref.WeakKeyDictionary[Journal, TouchedCache] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ChangesArgs:
    since: dict[str, int] | None = None  # checked by checked_version
    upto: dict[str, int] | None = None
    after: str | None = field(default=None, metadata=limits(max_length=64))
    limit: int = field(default=5000, metadata=limits(min=1, max=10_000))
    # The answer in a binary frame (UTF-8 JSON): the browser till passes it to its worker undecoded.
    binary: bool = False


@command("catalogue/changes", ChangesArgs, access="till", aside=True)
async def catalogue_changes(conn: Connection, args: ChangesArgs) -> dict[str, Any] | AsBinary:
    request = Request(since=checked_version(args.since, "since"),
                      upto=checked_version(args.upto, "upto"), after=args.after, limit=args.limit)
    journal = conn.node.journal
    cache = _TOUCHED.setdefault(journal, TouchedCache())
    page = await journal.read_in_snapshot(lambda db: changes(db, request, cache))
    if args.after is None and not page["behind"]:  # the first page: as catalogue/export's
        page |= await till_catalogue_settings(journal, conn.node.config)
    return AsBinary(page) if args.binary else page


class _Follower:
    """Tells one till, at most every FOLLOW_EVERY, that the catalogue changed."""

    def __init__(self, conn: Connection, subscription: int) -> None:
        self.conn = conn
        self.subscription = subscription
        self.pending: asyncio.TimerHandle | None = None
        self.stop_listening = conn.node.journal.add_listener(self.on_events)

    def on_events(self, events: list[Event]) -> None:
        if self.pending is None and any(event.type in FOLLOWED_EVENT_TYPES for event in events):
            self.pending = asyncio.get_running_loop().call_later(FOLLOW_EVERY, self.push)

    def push(self) -> None:
        self.pending = None
        self.conn.send(event_message(self.subscription, {"type": "catalogue_changed"}))

    def stop(self) -> None:
        self.stop_listening()
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None


@command("catalogue/follow", NoArgs, access="till")
async def catalogue_follow(conn: Connection, args: NoArgs) -> None:
    """Stopped by `unsubscribe_events` with this command's id, or when the till goes.

    One follower per connection: asked again, the new one replaces the one
    before (and whatever held this id), so a till repeating itself, or a
    hostile one, never leaves a listener behind nor piles them up.
    """
    for subscription, stop in list(conn.subscriptions.items()):
        if isinstance(getattr(stop, "__self__", None), _Follower):
            del conn.subscriptions[subscription]
            stop()
    conn.subscribe(_Follower(conn, conn.current_id).stop)
