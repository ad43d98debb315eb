"""What head office keeps: stores and their tokens, every event of every store, the catalogue.

Events are keyed by (store, origin, seq). Each origin's chain is checked on
arrival against what is stored: an event already held with the same hash is
a duplicate (skipped, still acknowledged); one that extends the chain is
stored; one that contradicts it (a different hash for a held seq, a broken
link, a forged hash) is a conflict, parked whole in `conflicts` for a person
to look at, never stored as the truth and never lost; one that skips ahead of
what is held is a gap, and the batch stops there so the node sends what is
missing first.

Head office is an origin too: its catalogue and prices are a chain of
`product_upserted` / `product_delisted` events that nodes pull and apply.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from edge.chain import ChainHead, Event, canonical_json, event_hash, link_problems, utc_now
from edge.headoffice.database import Database, Transaction, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stores (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    store TEXT NOT NULL REFERENCES stores (id),
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    node TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (store, origin, seq)
);
-- One row per sale, whatever number of events record it: a till that moved
-- to another node after its first node sold (and died before passing the
-- sale on) resends it, and both nodes' events reach head office.
CREATE TABLE IF NOT EXISTS sales (
    store TEXT NOT NULL,
    id TEXT NOT NULL,
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (store, id)
);
CREATE TABLE IF NOT EXISTS conflicts (
    store TEXT NOT NULL,
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    event TEXT NOT NULL,
    reason TEXT NOT NULL,
    node TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (store, origin, seq, hash)
);
CREATE TABLE IF NOT EXISTS catalogue_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    barcode TEXT NOT NULL,
    name TEXT NOT NULL,
    price BIGINT NOT NULL,
    vat_rate BIGINT NOT NULL,
    category TEXT NOT NULL,
    active INTEGER NOT NULL
);
"""

EVENT_COLUMNS = "origin, seq, id, time, type, body, prev_hash, hash"
PRODUCT_FIELDS = ("id", "barcode", "name", "price", "vat_rate", "category")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_fits(event: Event) -> bool:
    return event.hash == event_hash(event.origin, event.seq, event.id, event.time, event.type,
                                    event.body, event.prev_hash)


def _event(row: Any) -> Event:
    return Event(row["origin"], row["seq"], row["id"], row["time"], row["type"],
                 orjson.loads(row["body"]), row["prev_hash"], row["hash"])


@dataclass
class Receipt:
    """What head office tells a node about one pushed batch."""

    acknowledged: int  # every event up to this local position is durably settled here
    stored: int = 0
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)
    gap: dict[str, Any] | None = None  # {"origin", "expected_seq", "message"}


class HeadOfficeStorage:
    def __init__(self, url: str) -> None:
        self.db: Database = open_database(url)
        self.origin = ""

    async def open(self) -> None:
        await self.db.open()
        try:
            await self.db.run_script(SCHEMA)
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('origin', $1) ON CONFLICT DO NOTHING",
                    # One origin per head-office database: a new database starts a new
                    # chain that nodes accept, never a rival of the old one's.
                    f"headoffice-{secrets.token_hex(3)}",
                )
                row = await tx.fetchrow("SELECT value FROM meta WHERE key = 'origin'")
            self.origin = row["value"] if row else ""
        except BaseException:
            await self.db.close()
            raise

    async def close(self) -> None:
        await self.db.close()

    # Stores and tokens

    async def add_store(self, store_id: str, name: str = "") -> str:
        """Register a store, or give it a new token (the old one stops working)."""
        token = secrets.token_urlsafe(32)
        async with self.db.transaction() as tx:
            await tx.execute(
                """INSERT INTO stores (id, name, token_sha256, created_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (id) DO UPDATE SET token_sha256 = excluded.token_sha256,
                    name = CASE WHEN excluded.name = '' THEN stores.name ELSE excluded.name END""",
                store_id, name, token_digest(token), utc_now(),
            )
        return token

    async def store_for_token(self, token: str) -> str | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT id FROM stores WHERE token_sha256 = $1", token_digest(token)
            )
        return row["id"] if row else None

    async def stores(self) -> list[dict[str, Any]]:
        """Every store with what head office holds of it."""
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                """SELECT stores.id, stores.name, COUNT(events.seq) AS events,
                    MAX(events.received_at) AS last_received
                FROM stores LEFT JOIN events ON events.store = stores.id
                GROUP BY stores.id, stores.name ORDER BY stores.id"""
            )
            conflicts = await tx.fetch(
                "SELECT store, COUNT(*) AS n FROM conflicts GROUP BY store"
            )
        parked = {row["store"]: row["n"] for row in conflicts}
        return [{"id": row["id"], "name": row["name"], "events": row["events"],
                 "last_received": row["last_received"], "conflicts": parked.get(row["id"], 0)}
                for row in rows]

    # Events from stores

    async def receive(
        self, store: str, node: str, batch: list[tuple[int, Event]]
    ) -> Receipt:
        """Store a batch (in local position order) in one transaction; say how far it is settled."""
        async with self.db.transaction() as tx:
            await tx.lock(f"store:{store}")
            return await _Intake(tx, self.origin, store, node).take(batch)

    async def events(self, store: str, origin: str | None = None) -> list[Event]:
        """A store's events, each origin in seq order (for checks and exports)."""
        where, args = ("AND origin = $2", [origin]) if origin else ("", [])
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE store = $1 {where} "
                "ORDER BY origin, seq", store, *args,
            )
        return [_event(row) for row in rows]

    async def sale_ids(self, store: str) -> list[str]:
        """A store's sales, each once, however many events recorded it."""
        async with self.db.transaction() as tx:
            rows = await tx.fetch("SELECT id FROM sales WHERE store = $1 ORDER BY id", store)
        return [row["id"] for row in rows]

    async def conflicts(self, store: str) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT origin, seq, hash, reason, node FROM conflicts WHERE store = $1 "
                "ORDER BY origin, seq", store,
            )
        return [dict(row) for row in rows]

    # The catalogue: head office's own chain

    async def change_catalogue(
        self, changes_for: Callable[[dict[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]
    ) -> list[Event]:
        """Append the events `changes_for(current products)` asks for, all or nothing."""
        async with self.db.transaction() as tx:
            await tx.lock("catalogue")
            rows = await tx.fetch(
                "SELECT id, barcode, name, price, vat_rate, category, active FROM products"
            )
            current = {row["id"]: dict(row) for row in rows}
            head_row = await tx.fetchrow(
                "SELECT seq, hash FROM catalogue_events ORDER BY seq DESC LIMIT 1"
            )
            head = ChainHead(head_row["seq"], head_row["hash"]) if head_row else ChainHead()
            events = []
            for type_, body in changes_for(current):
                event = head.next(self.origin, type_, body)
                head = ChainHead(event.seq, event.hash)
                events.append(event)
            await tx.executemany(
                "INSERT INTO catalogue_events (seq, id, time, type, body, prev_hash, hash) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(e.seq, e.id, e.time, e.type, canonical_json(e.body).decode(), e.prev_hash,
                  e.hash) for e in events],
            )
            upserts = [e.body for e in events if e.type == "product_upserted"]
            await tx.executemany(
                """INSERT INTO products (id, barcode, name, price, vat_rate, category, active)
                VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (id) DO UPDATE SET
                    barcode = excluded.barcode, name = excluded.name, price = excluded.price,
                    vat_rate = excluded.vat_rate, category = excluded.category, active = 1""",
                [tuple(body[key] for key in PRODUCT_FIELDS) for body in upserts],
            )
            await tx.executemany(
                "UPDATE products SET active = 0 WHERE id = $1",
                [(e.body["id"],) for e in events if e.type == "product_delisted"],
            )
        return events

    async def catalogue_after(self, seq: int, limit: int) -> list[Event]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT seq, id, time, type, body, prev_hash, hash FROM catalogue_events "
                "WHERE seq > $1 ORDER BY seq LIMIT $2", seq, limit,
            )
        return [Event(self.origin, row["seq"], row["id"], row["time"], row["type"],
                      orjson.loads(row["body"]), row["prev_hash"], row["hash"]) for row in rows]

    async def products(self) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT id, barcode, name, price, vat_rate, category, active FROM products "
                "ORDER BY id"
            )
        return [dict(row) for row in rows]


class _Intake:
    """One batch being taken in, inside its transaction."""

    def __init__(self, tx: Transaction, own_origin: str, store: str, node: str) -> None:
        self.tx, self.own_origin, self.store, self.node = tx, own_origin, store, node
        self.heads: dict[str, ChainHead] = {}
        self.held: dict[tuple[str, int], str] = {}  # (origin, seq) -> hash, stored or in batch
        self.forked: set[str] = set()  # origins with a parked conflict
        self.now = utc_now()

    async def take(self, batch: list[tuple[int, Event]]) -> Receipt:
        receipt = Receipt(acknowledged=batch[0][0] - 1 if batch else 0)
        await self._load(batch)
        new_rows, parked, sales = [], [], []
        for position, event in batch:
            outcome = self._judge(event)
            if outcome == "gap":
                head = self.heads[event.origin]
                receipt.gap = {
                    "origin": event.origin, "expected_seq": head.seq + 1,
                    "message": f"{event.origin}#{event.seq}: head office holds up to "
                               f"#{head.seq}; send #{head.seq + 1} first",
                }
                break
            if outcome == "duplicate":
                receipt.duplicates += 1
            elif outcome == "new":
                new_rows.append(self._row(event))
                if event.type == "sale_completed":
                    sales.append((self.store, event.body["id"], event.origin, event.seq,
                                  event.time))
                self.heads[event.origin] = ChainHead(event.seq, event.hash)
                self.held[(event.origin, event.seq)] = event.hash
                receipt.stored += 1
            else:
                self.forked.add(event.origin)
                parked.append((self.store, event.origin, event.seq, event.hash,
                               orjson.dumps(event.as_dict()).decode(), outcome, self.node,
                               self.now))
                receipt.conflicts.append(f"{event.origin}#{event.seq}: {outcome}")
            receipt.acknowledged = position
        await self.tx.executemany(
            f"INSERT INTO events (store, {EVENT_COLUMNS}, node, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            new_rows,
        )
        await self.tx.executemany(
            "INSERT INTO sales (store, id, origin, seq, time) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING",
            sales,
        )
        await self.tx.executemany(
            "INSERT INTO conflicts (store, origin, seq, hash, event, reason, node, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            parked,
        )
        return receipt

    async def _load(self, batch: list[tuple[int, Event]]) -> None:
        """The chain head of each origin in the batch, and the hashes of the seqs it repeats."""
        seqs: dict[str, list[int]] = {}
        for _, event in batch:
            seqs.setdefault(event.origin, []).append(event.seq)
        for origin, numbers in seqs.items():
            head = await self.tx.fetchrow(
                "SELECT seq, hash FROM events WHERE store = $1 AND origin = $2 "
                "ORDER BY seq DESC LIMIT 1", self.store, origin,
            )
            self.heads[origin] = ChainHead(head["seq"], head["hash"]) if head else ChainHead()
            low = min(numbers)
            if low <= self.heads[origin].seq:
                rows = await self.tx.fetch(
                    "SELECT seq, hash FROM events WHERE store = $1 AND origin = $2 "
                    "AND seq >= $3 AND seq <= $4", self.store, origin, low, max(numbers),
                )
                self.held.update({(origin, row["seq"]): row["hash"] for row in rows})
            if await self.tx.fetchrow(
                "SELECT 1 FROM conflicts WHERE store = $1 AND origin = $2 LIMIT 1",
                self.store, origin,
            ):
                self.forked.add(origin)

    def _judge(self, event: Event) -> str:
        if event.origin == self.own_origin:
            return "duplicate"  # head office's own catalogue, coming back: it has it
        if not hash_fits(event):
            return "hash does not match its content"
        head = self.heads[event.origin]
        if event.seq <= head.seq:
            if self.held.get((event.origin, event.seq)) == event.hash:
                return "duplicate"
            return "differs from the event head office holds"
        if event.seq > head.seq + 1:
            # Once an origin has forked, what follows the fork is parked too, not
            # mistaken for a gap (which would have the node resend it forever).
            return "follows a conflicting event" if event.origin in self.forked else "gap"
        where = f"{event.origin}#{event.seq}: "
        problems = [problem.removeprefix(where) for problem in link_problems(head, event)]
        return "; ".join(problems) if problems else "new"

    def _row(self, event: Event) -> tuple[Any, ...]:
        return (self.store, event.origin, event.seq, event.id, event.time, event.type,
                canonical_json(event.body).decode(), event.prev_hash, event.hash, self.node,
                self.now)
