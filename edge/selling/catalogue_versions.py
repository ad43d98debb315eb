"""Catalogue versions for tills: the changes since the version a till holds.

A till keeps an offline copy of the catalogue and the version it reflects,
a version vector `{origin: seq}`. Origins and seqs are store-wide (every node
holds the same events under the same (origin, seq)), so a version got from
one node means the same on another: failover never re-downloads.

The version counts catalogue events only: for each origin, the seq of its
last product event held here (`product_upserted` / `product_delisted`, or
head office's batches of them, `products_listed` / `products_delisted`). A node that lacks a
few of a dead peer's sales is therefore not "behind" a till's version; it is
behind only when it lacks an event at or below a seq the version names (then
it may lack a product event the till's copy reflects, and says `behind`).

"Changes since V" are the products named by the product events in (V, W]
(W: this node's version, read in the same snapshot as the rows sent), sent
as their current state here (on sale → their row; not on sale → delisted):
W >= V, so this node's rows hold everything the till had; with them, the
products whose barcode changed hands with no event naming them
(`sharing_a_barcode`). Those events are found through the partial index
`events_catalogue` (migrations 28 and 32): the cost is the changes', never the
journal's nor the catalogue's. Past FULL_COPY_* (the events counted through
the index alone first) the answer is a full copy instead (`full`),
paged by id on the products table. docs/protocol.md, "Catalogue versions",
is the contract.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from edge.messages import INVALID_FIELD, EdgeError

Version = dict[str, int]

# Word for word the WHERE of the partial index events_catalogue, so SQLite uses it.
PRODUCT_EVENTS = ("type IN ('product_upserted', 'product_delisted', 'products_listed', "
                  "'products_delisted')")
# The product ids each event of PRODUCT_EVENTS names, one or a batch's
# (edge/selling/catalogue_batches.py): `SELECT {NAMED_IDS} FROM (events) AS events {NAMED}`.
NAMED_IDS = """CASE events.type WHEN 'products_listed' THEN json_extract(named.value, '$.id')
    WHEN 'products_delisted' THEN named.value ELSE json_extract(events.body, '$.id') END"""
NAMED = """LEFT JOIN json_each(events.body, CASE events.type WHEN 'products_listed'
    THEN '$.products' WHEN 'products_delisted' THEN '$.ids' ELSE '$.none' END) AS named"""
# The rows' columns, in the order each row lists them (the contract's order).
COLUMNS = ("id", "barcode", "name", "price", "vat_rate", "category", "unit", "colour",
           "image", "favourite", "open_price")
# Each row as SQLite writes it in JSON (`open_price` a JSON boolean): the node
# serves a page about as fast as SQLite reads it, no Python object per field.
_ROW_JSON = "json_array({})".format(", ".join(
    "json(iif(open_price, 'true', 'false'))" if column == "open_price" else column
    for column in COLUMNS))

# "Too old", the answer is a full copy: more products changed since the version
# than a quarter of the products this node holds (listed or delisted; at least
# FULL_COPY_MIN), or more product events happened since it than that (at least
# FULL_COPY_EVENTS_MIN; or more product changes, a batch's products each): then
# reading the changes would cost more than a copy.
# The events are counted through the index alone before any is read, so a
# version far back (a stale till, or a hostile one) costs a bounded count.
FULL_COPY_MIN = 1000
FULL_COPY_EVENTS_MIN = 4 * FULL_COPY_MIN
FULL_COPY_SHARE = 4  # a quarter

MAX_ORIGINS = 1000
MAX_ORIGIN_LENGTH = 128
MAX_SEQ = 2**62  # past any journal; and SQLite's integers stop at 2**63


def checked_version(value: Any, name: str) -> Version | None:
    """A version a till sent ({origin: seq >= 0}, at most MAX_ORIGINS), or invalid_field."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EdgeError(INVALID_FIELD, f"'{name}' must be an object {{origin: seq}} or null")
    if len(value) > MAX_ORIGINS:
        raise EdgeError(INVALID_FIELD, f"'{name}' names more than {MAX_ORIGINS} origins")
    for origin, seq in value.items():
        if not isinstance(origin, str) or not 0 < len(origin) <= MAX_ORIGIN_LENGTH:
            raise EdgeError(INVALID_FIELD, f"'{name}' has an origin that is not a name of 1 to "
                                           f"{MAX_ORIGIN_LENGTH} characters")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
            raise EdgeError(INVALID_FIELD, f"'{name}': the seq of an origin must be a whole "
                                           f"number from 0 to {MAX_SEQ}, got {seq!r:.40}")
    return {origin: seq for origin, seq in value.items() if seq > 0}


@dataclass(frozen=True)
class Request:
    since: Version | None  # None: a new till, a full copy
    upto: Version | None  # None: the first page (the version is read with it)
    after: str | None
    limit: int


@dataclass(frozen=True)
class Touched:
    """The products named by the product events in (since, upto]: sorted ids, or too many."""

    full: bool
    ids: tuple[str, ...] = ()


def held_seqs(db: sqlite3.Connection) -> Version:
    """{origin: last seq held here}, every event type."""
    return {origin: seq for origin, seq in db.execute("SELECT origin, last_seq FROM origins")}


def catalogue_version(db: sqlite3.Connection, held: Version) -> Version:
    """{origin: seq of its last product event held here}: one index probe per origin."""
    version: Version = {}
    for origin in held:
        (seq,) = db.execute(f"SELECT MAX(seq) FROM events WHERE origin = ? AND {PRODUCT_EVENTS}",
                            (origin,)).fetchone()
        if seq:
            version[origin] = seq
    return version


def is_behind(held: Version, version: Version) -> bool:
    """This node lacks events at or below `version` (catching up after a restore or failover)."""
    return any(seq > held.get(origin, 0) for origin, seq in version.items())


def ahead_only_on_retired(db: sqlite3.Connection, held: Version, version: Version) -> bool:
    """`version` is ahead of this node only on origins its lineage retired: a data folder
    restored from a backup, whose old origin's events after the backup may be gone for
    good (a one-node store: no peer holds them). Waiting for them could last for ever."""
    return all(db.execute("SELECT 1 FROM retired_origins WHERE origin = ?", (origin,))
               .fetchone() is not None
               for origin, seq in version.items() if seq > held.get(origin, 0))


def products_held(db: sqlite3.Connection) -> int:
    """The products this node holds, listed or delisted: their rows are never deleted, so
    the largest rowid counts them (one index read, where COUNT(*) reads them all)."""
    (held,) = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM products").fetchone()
    return int(held)


def touched(db: sqlite3.Connection, since: Version, upto: Version) -> Touched:
    """The products the product events in (since, upto] name, unless too many for a delta.

    The events are counted first through the index alone (no event read), never
    further than the threshold: whatever versions a till sends, a range too long
    costs that count. Only a range under it has its events read, for their ids.
    """
    ranges = [(origin, since.get(origin, 0), last) for origin, last in sorted(upto.items())
              if last > since.get(origin, 0)]
    share = products_held(db) // FULL_COPY_SHARE
    allowed_events = max(FULL_COPY_EVENTS_MIN, share)
    allowed_products = max(FULL_COPY_MIN, share)
    events = 0
    for origin, first, last in ranges:
        # Past the allowance? One probe that skips as many index entries, no row read.
        if db.execute(f"SELECT 1 FROM events WHERE origin = ? AND seq > ? AND seq <= ? AND "
                      f"{PRODUCT_EVENTS} ORDER BY seq LIMIT 1 OFFSET ?",
                      (origin, first, last, allowed_events - events)).fetchone():
            return Touched(full=True)
        (count,) = db.execute(f"SELECT COUNT(*) FROM events WHERE origin = ? AND seq > ? "
                              f"AND seq <= ? AND {PRODUCT_EVENTS}", (origin, first, last)
                              ).fetchone()
        events += count
    ids: set[str] = set()
    # A batch of head office's names up to a thousand products: the changes read are
    # bounded as the events counted are (h68), however they were packed.
    named = 0
    for origin, first, last in ranges:
        for (product_id,) in db.execute(
                f"SELECT {NAMED_IDS} FROM (SELECT type, body FROM events WHERE origin = ? "
                f"AND seq > ? AND seq <= ? AND {PRODUCT_EVENTS}) AS events {NAMED}",
                (origin, first, last)):
            ids.add(product_id)
            named += 1
            if len(ids) > allowed_products or named > allowed_events:
                return Touched(full=True)
    return Touched(full=False, ids=tuple(sorted(ids | sharing_a_barcode(db, ids))))


def sharing_a_barcode(db: sqlite3.Connection, ids: set[str]) -> set[str]:
    """The products declaring a barcode one of `ids` declares or declared before: a
    barcode goes to one of them (catalogue.py's rule), so one taking it, giving it back
    (delisted) or moving away from it changes the others' rows with no event naming
    them. `former_barcodes` keeps the barcodes a product named before its latest
    listing: the one it held at the till's version is among them."""
    if not ids:
        return set()
    return {product_id for (product_id,) in db.execute(
        """WITH changed (id) AS (SELECT value FROM json_each(?))
           SELECT id FROM products WHERE declared_barcode IN (
               SELECT declared_barcode FROM products
               WHERE id IN changed AND declared_barcode IS NOT NULL
               UNION SELECT barcode FROM former_barcodes WHERE product_id IN changed)""",
        (orjson.dumps(sorted(ids)).decode(),))}


def _key(version: Version) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(version.items()))


class TouchedCache:
    """The last few (since, upto) worked out: a till's next pages, and the other tills
    asking since the same version (they follow the same node), read none of it again.

    Exact for good: the events in (since, upto] are the same on every node, for ever.
    Bounded in entries and in ids held.
    """

    def __init__(self, max_entries: int = 16, max_ids: int = 500_000) -> None:
        self.max_entries = max_entries
        self.max_ids = max_ids
        self._entries: OrderedDict[Any, Touched] = OrderedDict()
        self._ids = 0
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, db: sqlite3.Connection, since: Version, upto: Version) -> Touched:
        key = (_key(since), _key(upto))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
            self.misses += 1
        found = touched(db, since, upto)
        with self._lock:
            if key not in self._entries and len(found.ids) <= self.max_ids:
                self._entries[key] = found
                self._ids += len(found.ids)
                while len(self._entries) > self.max_entries or self._ids > self.max_ids:
                    _, dropped = self._entries.popitem(last=False)
                    self._ids -= len(dropped.ids)
        return found


def _json_list(rows: list[str]) -> orjson.Fragment:
    """Rows already in JSON, sent as they are in the answer."""
    return orjson.Fragment("[" + ",".join(rows) + "]")


def full_page(db: sqlite3.Connection, after: str | None,
              limit: int) -> tuple[orjson.Fragment, str | None]:
    """Products on sale by id after `after`, and the `next` to ask for (None: the last page)."""
    rows = db.execute(f"SELECT id, {_ROW_JSON} FROM products WHERE active AND id > ? "
                      "ORDER BY id LIMIT ?", (after or "", limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return _json_list([row[1] for row in rows]), rows[-1][0] if more else None


def delta_page(db: sqlite3.Connection, ids: tuple[str, ...], after: str | None,
               limit: int) -> tuple[orjson.Fragment, list[str], str | None]:
    """The touched products after `after`: (on sale, delisted, next), by id together."""
    start = bisect.bisect_right(ids, after) if after is not None else 0
    page = ids[start:start + limit]
    on_sale = {row[0]: row[1] for row in db.execute(
        f"SELECT id, {_ROW_JSON} FROM products WHERE active AND id IN "
        "(SELECT value FROM json_each(?))", (orjson.dumps(page).decode(),))}
    products = [on_sale[product_id] for product_id in page if product_id in on_sale]
    delisted = [product_id for product_id in page if product_id not in on_sale]
    more = start + limit < len(ids)
    return _json_list(products), delisted, page[-1] if more and page else None


def changes(db: sqlite3.Connection, request: Request, cache: TouchedCache) -> dict[str, Any]:
    """One page of `catalogue/changes`, in one read snapshot (the caller's)."""
    held = held_seqs(db)
    since = request.since
    if since is not None and is_behind(held, since) and ahead_only_on_retired(db, held, since):
        # A restored node: `behind` might never end, the till's copy frozen. A full copy
        # (on every page of the run: the same `since` gives the same answer).
        since = None
    version = request.upto if request.upto is not None else catalogue_version(db, held)
    if is_behind(held, since or {}) or is_behind(held, version):
        return answer(since or {}, full=False, behind=True)
    if since is None:
        full = True
    else:
        found = cache.get(db, since, version)
        full = found.full
    if full:
        products, next_id = full_page(db, request.after, request.limit)
        return answer(version, full=True, products=products, next_id=next_id)
    products, delisted, next_id = delta_page(db, found.ids, request.after, request.limit)
    return answer(version, full=False, products=products, delisted=delisted, next_id=next_id)


def answer(version: Version, *, full: bool, behind: bool = False,
           products: orjson.Fragment | None = None, delisted: list[str] | None = None,
           next_id: str | None = None) -> dict[str, Any]:
    """A page; `products` is JSON already (orjson sends it as it is)."""
    return {"version": version, "full": full, "behind": behind, "columns": list(COLUMNS),
            "products": products or _json_list([]), "delisted": delisted or [],
            "next": next_id}
