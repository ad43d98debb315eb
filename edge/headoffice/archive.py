"""`edge headoffice archive`: a store's archive of a period, made by head office.

The same zip as a node's `edge archive` (one writer: edge/fiscal/archive.py
`write_from`), read from what head office holds: the store's events (every
origin's chain, as its nodes pushed them) and head office's own chains
(its catalogue, which the store's nodes pulled), as far as the store's
closures cover them (a node's archive holds what the node pulled; its
closures say how far). They are copied, a page at a time, into a scratch
SQLite database shaped as a journal (`events`, `closures` as a node projects
them, `meta`), from which the writer reads exactly as it reads a node's:
memory stays flat whatever the store's size, on SQLite or PostgreSQL.

What is copied is fixed first: each origin's last seq held at that moment;
chains only grow, so the copy is one consistent state of the store even while
its nodes push.

The manifest is signed by head office's own key, with the certificate the
store CA issued for that key (`headoffice_key_trusted`, which the node holding
the store CA writes at its first sync and pushes like any event): the
verifier checks it against the store CA in the archive, as it checks a
node's. Head office holds no such certificate until then, and says so.

The period's bounds are the store's: those of the store's closure of that
period when there is one (its calendar: business-day cut-off, fiscal year,
time zone), else cut by `calendar` (what the command was told).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from edge.fiscal.archive import ArchiveError, Written, write_from
from edge.fiscal.closures import CLOSURE_MADE
from edge.fiscal.periods import Calendar, Period, parse_period
from edge.headoffice.intake import EVENT_COLUMNS
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.chain import Event
from edge.journal.event_types import project
from edge.journal.signing import (
    HEADOFFICE_CERT_NAME,
    HEADOFFICE_KEY_TRUSTED,
    Identity,
    certified_headoffice_key,
    is_headoffice_origin,
)
from edge.trust.certificates import CertificateRefused, load_cert

PAGE = 2000  # events read from head office's database at a time

SCRATCH_SCHEMA = """
CREATE TABLE events (origin TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
    time TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL, sig TEXT NOT NULL, PRIMARY KEY (origin, seq));
CREATE TABLE closures (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, period TEXT NOT NULL,
    origin TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


async def headoffice_identity(storage: HeadOfficeStorage, store: str) -> Identity:
    """Head office's key, as the store's CA certified it; ArchiveError, in words, if not."""
    ca_pem = await storage.store_ca(store)
    if ca_pem is None:
        raise ArchiveError(f"head office holds no CA certificate of store {store!r}: its "
                           "nodes have not pushed any event yet (or it is no store of ours)")
    ca_cert = load_cert(ca_pem)
    async with storage.db.transaction() as tx:
        rows = await tx.fetch("SELECT body FROM events WHERE store = $1 AND type = $2 "
                              "ORDER BY origin, seq", store, HEADOFFICE_KEY_TRUSTED)
    for row in rows:
        body = orjson.loads(row["body"])
        try:
            if certified_headoffice_key(body, ca_cert, store) == storage.public_key:
                return Identity(store, HEADOFFICE_CERT_NAME, ca_cert, storage.key,
                                str(body["cert"]))
        except CertificateRefused:
            continue
    raise ArchiveError(f"store {store!r}'s CA has not certified head office's key (yet): the "
                       "store's node holding its CA does at its next sync with head office; "
                       "archive again once it has pushed")


async def store_period(storage: HeadOfficeStorage, store: str, text: str,
                       calendar: Calendar) -> Period:
    """The period `text` names, with the bounds of the store's closure of it if any."""
    period = parse_period(text, calendar=calendar)  # ValueError, in words
    async with storage.db.transaction() as tx:
        rows = await tx.fetch(
            "SELECT body FROM events WHERE store = $1 AND type = $2 ORDER BY hash",
            store, CLOSURE_MADE)
    for row in rows:  # a store closes a period once or twice: a few rows
        body = orjson.loads(row["body"])
        if body.get("kind") == period.kind and body.get("period") == period.label:
            bounds = body["bounds"]
            return Period(period.label, period.kind, bounds["start"], bounds["end"])
    return period


async def _pages(storage: HeadOfficeStorage, sql: str, args: tuple[Any, ...],
                 last: int) -> Any:
    """Rows of one origin after seq `args[-1]`, up to seq `last`, a page at a time."""
    after = args[-1]
    while after < last:
        async with storage.db.transaction() as tx:
            rows = await tx.fetch(sql, *args[:-1], after, last, PAGE)
        if not rows:
            return
        yield rows
        after = rows[-1]["seq"]


def _insert(db: sqlite3.Connection, rows: Iterable[Any], origin: str | None = None) -> None:
    events = [Event(origin or row["origin"], row["seq"], row["id"], row["time"], row["type"],
                    orjson.loads(row["body"]), row["prev_hash"], row["hash"], row["sig"])
              for row in rows]
    db.executemany("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, "
                   "sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(e.origin, e.seq, e.id, e.time, e.type, orjson.dumps(e.body).decode(),
                     e.prev_hash, e.hash, e.sig) for e in events])
    for event in events:
        if event.type == CLOSURE_MADE:
            project(db, event)  # the `closures` row, as a node's journal holds it


async def copy_store(storage: HeadOfficeStorage, store: str, db: sqlite3.Connection) -> None:
    """The store's events and head office's own, as far as the store's closures cover
    them, into `db` (SCRATCH_SCHEMA), a page at a time."""
    db.execute("INSERT INTO meta VALUES ('store_id', ?)", (store,))
    async with storage.db.transaction() as tx:
        heads = await tx.fetch("SELECT origin, MAX(seq) AS last FROM events WHERE store = $1 "
                               "GROUP BY origin ORDER BY origin", store)
        current = await tx.fetchrow("SELECT value FROM meta WHERE key = 'origin'")
    for head in heads:
        async for rows in _pages(storage, f"SELECT {EVENT_COLUMNS} FROM events WHERE store = "
                                 "$1 AND origin = $2 AND seq > $3 AND seq <= $4 ORDER BY seq "
                                 "LIMIT $5", (store, head["origin"], 0), head["last"]):
            await asyncio.to_thread(_insert, db, rows)
    held: dict[str, int] = {}  # head office's origins: how far the store's closures cover
    for (body,) in db.execute("SELECT body FROM closures"):
        for origin, anchor in orjson.loads(body)["covers"].items():
            if is_headoffice_origin(origin):
                held[origin] = max(held.get(origin, 0), int(anchor["seq"]))
    for origin, last in sorted(held.items()):
        if current is not None and origin == current["value"]:
            sql, args = ("SELECT seq, id, time, type, body, prev_hash, hash, sig FROM "
                         "catalogue_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                         (0,))
        else:
            sql, args = (f"SELECT {EVENT_COLUMNS} FROM former_catalogue_events WHERE origin "
                         "= $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4", (origin, 0))
        async for rows in _pages(storage, sql, args, last):
            await asyncio.to_thread(_insert, db, rows, origin)


async def write_headoffice_archive(storage: HeadOfficeStorage, store: str, period: Period,
                                   out: Path) -> Written:
    """`period`'s archive of `store`, as head office holds it, to `out` (new), signed with
    head office's key."""
    identity = await headoffice_identity(storage, store)
    if await asyncio.to_thread(out.exists):  # before copying the store for nothing
        raise ArchiveError(f"{out} already exists: give a new file name")
    with tempfile.TemporaryDirectory(prefix="edge-headoffice-archive-") as scratch:
        db = sqlite3.connect(Path(scratch) / "store.sqlite3", isolation_level=None,
                             check_same_thread=False)
        try:
            db.executescript(SCRATCH_SCHEMA)
            db.execute("BEGIN")
            await copy_store(storage, store, db)
            db.execute("COMMIT")
            return await asyncio.to_thread(write_from, db, period, out, identity,
                                           storage.origin)
        finally:
            db.close()
