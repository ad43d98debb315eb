"""What head office keeps: stores and their tokens, every event of every store, the catalogue.

Events are keyed by (store, origin, seq). A store's push is taken in one
transaction by edge/headoffice/intake.py: each origin's chain checked against
what is stored, duplicates skipped, conflicts parked, a gap stopping the batch,
every event's signature checked against the store's pinned CA.

Head office is an origin too: its catalogue and prices are a chain of
`product_upserted` / `product_delisted` events that nodes pull and apply.
It never writes a seq a store may already hold for its origin: when a store
holds more of it than head office does, or another event at a seq head
office holds (the database was restored from a backup), head office cuts that
chain and continues under a new origin, on which it publishes the whole
catalogue as it stands (`_fence`). The old chain stays, verifiable, in
`former_catalogue_events`; `headoffice_origins` says where and why it was cut.

Head office has one Ed25519 key, made once and kept with its data (meta
`signing_key`): each of its origins starts with `origin_certified` (role
headoffice, that key) and every catalogue event is signed with it; a database
from before signing continues under a new origin at its first start. Each
store's CA certificate is pinned at the store's first push that carries it
(`pin_store_ca`; another one later is refused). Head office never holds a
store's secrets (`chain.withheld`): it checks signatures over hashes, which
need none.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from edge.headoffice.database import Database, Transaction, open_database
from edge.headoffice.intake import EVENT_COLUMNS, Intake, Receipt
from edge.headoffice.protocol import HEADOFFICE_ORIGIN_PREFIX
from edge.journal.chain import (
    GENESIS_HASH,
    ChainHead,
    Event,
    canonical_json,
    utc_now,
)
from edge.journal.signing import (
    ORIGIN_CERTIFIED,
    headoffice_certified_body,
    public_hex,
    sign,
)
from edge.journal.vouches import (
    StagedUnsigned,
)
from edge.selling.catalogue_batches import batched, one_by_one
from edge.trust.certificates import load_cert, stores_named

log = logging.getLogger(__name__)

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
-- Head office's origins, one row each: the current one is meta's 'origin'. A
-- successor names its predecessor and where that chain was cut (head office's
-- last event of it), and why: what a store was found to hold.
CREATE TABLE IF NOT EXISTS headoffice_origins (
    origin TEXT PRIMARY KEY,
    predecessor TEXT NOT NULL,
    cut_seq BIGINT NOT NULL,
    cut_hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_at TEXT NOT NULL
);
-- The catalogue events of former origins, as they were when cut.
CREATE TABLE IF NOT EXISTS former_catalogue_events (
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (origin, seq)
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

# Steps after SCHEMA, each run once, in order (meta 'schema_version' counts them).
UPGRADES: list[tuple[str, ...]] = [
    # 1: signed events: each event's signature, each store's CA (pinned at its
    # first push that carries one) and each store origin's certified key.
    (
        "ALTER TABLE events ADD COLUMN sig TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE catalogue_events ADD COLUMN sig TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE former_catalogue_events ADD COLUMN sig TEXT NOT NULL DEFAULT ''",
        "CREATE TABLE store_cas (store TEXT PRIMARY KEY, ca_pem TEXT NOT NULL, "
        "key_sha256 TEXT NOT NULL, pinned_at TEXT NOT NULL)",
        "CREATE TABLE origin_keys (store TEXT NOT NULL, origin TEXT NOT NULL, "
        "role TEXT NOT NULL, public_key TEXT NOT NULL, PRIMARY KEY (store, origin))",
    ),
    # 2: what a store's upgraded nodes vouched for, signed, of its origins from
    # before signing (edge/journal/vouches.py): what takes their events.
    (
        "CREATE TABLE unsigned_vouches (store TEXT NOT NULL, origin TEXT NOT NULL, "
        "seq BIGINT NOT NULL, hash TEXT NOT NULL, voucher TEXT NOT NULL, "
        "PRIMARY KEY (store, origin, seq, voucher))",
    ),
    # 3: whether each node's edge reads catalogue events of many products, as it said at
    # its pulls (edge/selling/catalogue_batches.py); node '' is an edge that did not say.
    (
        "CREATE TABLE store_editions (store TEXT NOT NULL, node TEXT NOT NULL, "
        "reads_batches INTEGER NOT NULL, seen_at TEXT NOT NULL, PRIMARY KEY (store, node))",
    ),
]

# A node that said it does not read catalogue batches holds them back this long after
# its last pull; what it said is written again at most this often (seconds).
EDITIONS_KEPT = timedelta(days=7)
EDITION_REFRESH = 3600.0
MOST_NODES_NOTED = 64  # per store, heard from in EDITIONS_KEPT: a store has a few nodes
# A pull's answer: about this many bytes of event bodies at most (a catalogue batch is
# about 30 KB), read from the database this many rows at a time.
MAX_PULL_BYTES = 4 * 1024 * 1024
ROWS_AT_ONCE = 256
CATALOGUE_COLUMNS = "seq, id, time, type, body, prev_hash, hash, sig"
PRODUCT_FIELDS = ("id", "barcode", "name", "price", "vat_rate", "category")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _event(row: Any) -> Event:
    return Event(row["origin"], row["seq"], row["id"], row["time"], row["type"],
                 orjson.loads(row["body"]), row["prev_hash"], row["hash"], row["sig"])


class StoreCaRefused(Exception):
    """A store CA certificate head office does not take: `code` says why, nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def ca_key_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the CA's public key: what is pinned. Not of the certificate itself: demo
    nodes of one store each make a certificate for the one CA key their store key gives."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def check_store_ca(store: str, pem: str) -> x509.Certificate:
    """The store's CA certificate from `pem`; StoreCaRefused if it is not one for `store`."""
    try:
        cert = load_cert(pem)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, x509.ExtensionNotFound):
        raise StoreCaRefused("store_ca_invalid", "'store_ca' is not a CA certificate "
                                                 "(PEM)") from None
    if not constraints.ca or store not in stores_named(cert):
        raise StoreCaRefused("store_ca_invalid", f"'store_ca' is not a CA of store {store!r}")
    return cert


class HeadOfficeStorage:
    def __init__(self, url: str) -> None:
        self.db: Database = open_database(url)
        self.origin = ""
        self.signing_key: ed25519.Ed25519PrivateKey | None = None
        # Each store's events from before signing below a vouched head, until their
        # run reaches it (h30: edge/journal/vouches.py); the node resends what is lost.
        self.staged: dict[str, StagedUnsigned] = {}
        # What each node said it reads at its last pull, and when that was written here.
        self.editions: dict[tuple[str, str], tuple[bool, float]] = {}

    @property
    def key(self) -> ed25519.Ed25519PrivateKey:
        assert self.signing_key is not None, "storage not open"
        return self.signing_key

    async def open(self) -> None:
        await self.db.open()
        try:
            await self.db.run_script(SCHEMA)
            await self._upgrade()
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('origin', $1) ON CONFLICT DO NOTHING",
                    # One origin per head-office database: a new database starts a new
                    # chain that nodes accept, never a rival of the old one's.
                    f"{HEADOFFICE_ORIGIN_PREFIX}{secrets.token_hex(3)}",
                )
                self.origin = await _current_origin(tx)
                await tx.execute(
                    "INSERT INTO headoffice_origins (origin, predecessor, cut_seq, cut_hash, "
                    "reason, started_at) VALUES ($1, '', 0, $2, 'new database', $3) "
                    "ON CONFLICT DO NOTHING", self.origin, GENESIS_HASH, utc_now(),
                )
                self.signing_key = await _signing_key(tx)
            await self._sign_from_now_on()
        except BaseException:
            await self.db.close()
            raise

    async def _upgrade(self) -> None:
        async with self.db.transaction() as tx:
            await tx.lock("schema")  # two head-office processes starting at once
            row = await tx.fetchrow("SELECT value FROM meta WHERE key = 'schema_version'")
            version = int(row["value"]) if row else 0
            for statements in UPGRADES[version:]:
                for statement in statements:
                    await tx.execute(statement)
            if version < len(UPGRADES):
                await tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', $1) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", str(len(UPGRADES)))

    async def _sign_from_now_on(self) -> None:
        """A catalogue of before signing continues under a new, certified origin."""
        async with self.db.transaction() as tx:
            await tx.lock("catalogue")
            first = await tx.fetchrow("SELECT type FROM catalogue_events WHERE seq = 1")
            if first is not None and first["type"] != ORIGIN_CERTIFIED:
                self.origin = await _fence(tx, await _current_origin(tx),
                                           "its events were not signed (head office's "
                                           "catalogue is signed from now on)", self.key)

    @property
    def public_key(self) -> str:
        """Head office's key (hex), as its origins certify it."""
        return public_hex(self.key)

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

    async def note_edition(self, store: str, node: str, reads_batches: bool) -> None:
        """Whether a node's edge reads catalogue batches, as its pull says: head office
        writes them only while no node heard from lately said otherwise. Written when it
        changes, and its time at most hourly (not at every pull)."""
        known = self.editions.get((store, node))
        if known is not None and known[0] is reads_batches \
                and time.monotonic() - known[1] < EDITION_REFRESH:
            return
        async with self.db.transaction() as tx:
            if known is None and await _nodes_noted(tx, store) >= MOST_NODES_NOTED:
                return  # a store's token naming node after node: kept bounded
            await tx.execute(
                "INSERT INTO store_editions (store, node, reads_batches, seen_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (store, node) DO UPDATE SET "
                "reads_batches = excluded.reads_batches, seen_at = excluded.seen_at",
                store, node, int(reads_batches), utc_now())
        self.editions[(store, node)] = (reads_batches, time.monotonic())

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
            staged = self.staged.setdefault(store, StagedUnsigned())
            return await Intake(tx, store, node, staged).take(batch)

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

    async def pin_store_ca(self, store: str, pem: str) -> bool:
        """Keep `pem` as the store's CA at its first push; True if it was pinned now.

        StoreCaRefused if it is not a CA of that store, or another CA than the
        one pinned (`store_ca_changed`: a store keeps its CA; a person must look
        before another one is taken, by deleting the store's row in `store_cas`).
        """
        cert = check_store_ca(store, pem)
        async with self.db.transaction() as tx:
            await tx.lock(f"store:{store}")
            row = await tx.fetchrow("SELECT key_sha256 FROM store_cas WHERE store = $1", store)
            if row is not None:
                if row["key_sha256"] != ca_key_fingerprint(cert):
                    raise StoreCaRefused(
                        "store_ca_changed", f"store {store!r} pushed with another CA than the "
                        f"one head office pinned (key {row['key_sha256'][:20]}…): nothing stored")
                return False
            await tx.execute("INSERT INTO store_cas (store, ca_pem, key_sha256, pinned_at) "
                             "VALUES ($1, $2, $3, $4)", store, pem, ca_key_fingerprint(cert),
                             utc_now())
        log.info("store %s: its CA (key %s…) is pinned", store, ca_key_fingerprint(cert)[:20])
        return True

    async def store_ca(self, store: str) -> str | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT ca_pem FROM store_cas WHERE store = $1", store)
        return row["ca_pem"] if row else None

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
            # Read inside the lock: another head-office process may have moved it on.
            self.origin = await _current_origin(tx)
            events = await _append_catalogue(tx, self.origin, changes_for(await _products(tx)),
                                             self.key)
            events = [event for event in events if event.type != ORIGIN_CERTIFIED]
            await _apply_to_products(tx, events)
        return events

    async def catalogue_after(self, seq: int, limit: int) -> list[Event]:
        """The current origin's catalogue events after `seq`."""
        async with self.db.transaction() as tx:
            origin = await _current_origin(tx)
            return (await _catalogue_rows(tx, origin, seq, limit))[0]

    async def catalogue_for(
        self, vector: dict[str, int], heads: dict[str, str], limit: int,
        max_bytes: int = MAX_PULL_BYTES,
    ) -> tuple[str, list[Event], bool]:
        """(current origin, its events a store with `vector` lacks: at most `limit` and
        about `max_bytes` of bodies, at least one; whether more follow), fencing first if
        need be.

        A store that holds more of head office's current origin than head office
        does, or another event at a seq head office holds, shows that head office
        was restored from a backup: writing on would reuse seqs that store holds
        (it would skip the new events or find its chain broken). Head office then
        continues under a new origin (`_fence`) before answering.
        """
        async with self.db.transaction() as tx:
            origin = await _current_origin(tx)
            if await _restore_evidence(tx, origin, vector, heads):
                await tx.lock("catalogue")
                origin = await _current_origin(tx)  # another pull may have fenced meanwhile
                evidence = await _restore_evidence(tx, origin, vector, heads)
                if evidence and await _started_lately(tx, origin):
                    # A store's word is all the evidence there is until events are
                    # signed: never let one store make head office republish its
                    # catalogue again and again.
                    log.warning("a store claims head office lost catalogue events (%s), but "
                                "%s began less than %d s ago: not cut again", evidence, origin,
                                FENCE_AT_MOST_EVERY)
                elif evidence:
                    origin = await _fence(tx, origin, evidence, self.key)
            self.origin = origin
            events, more = await _catalogue_rows(tx, origin, vector.get(origin, 0), limit,
                                                 max_bytes)
            return origin, events, more

    async def catalogue_history(self) -> dict[str, list[Event]]:
        """Every catalogue chain head office has written, former and current, by origin."""
        async with self.db.transaction() as tx:
            origin = await _current_origin(tx)
            rows = await tx.fetch(f"SELECT {EVENT_COLUMNS} FROM former_catalogue_events "
                                  "ORDER BY origin, seq")
            current, _ = await _catalogue_rows(tx, origin, 0, None)
        history: dict[str, list[Event]] = {}
        for row in rows:
            history.setdefault(row["origin"], []).append(_event(row))
        history[origin] = current
        return history

    async def origins(self) -> list[dict[str, Any]]:
        """Head office's origins, oldest first: where each predecessor was cut, and why."""
        async with self.db.transaction() as tx:
            rows = await tx.fetch("SELECT origin, predecessor, cut_seq, cut_hash, reason, "
                                  "started_at FROM headoffice_origins ORDER BY started_at")
        return [dict(row) for row in rows]

    async def held(self, store: str, origins: list[str]) -> dict[str, int]:
        """How far head office settled each of a store's `origins`: stored or parked.

        A node compares it with what it had marked acknowledged: less here means
        head office lost events (its database restored from a backup), and the
        node sends them again, even those of a node that no longer sends anything.
        """
        held: dict[str, int] = {}
        async with self.db.transaction() as tx:
            for origin in origins:
                seqs = [await tx.fetchrow(
                    f"SELECT seq FROM {table} WHERE store = $1 AND origin = $2 "
                    "ORDER BY seq DESC LIMIT 1", store, origin) for table in ("events",
                                                                             "conflicts")]
                held[origin] = max((row["seq"] for row in seqs if row), default=0)
        return held

    async def products(self) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT id, barcode, name, price, vat_rate, category, active FROM products "
                "ORDER BY id"
            )
        return [dict(row) for row in rows]


# The catalogue chain, inside a transaction

Changes = list[tuple[str, dict[str, Any]]]


async def _current_origin(tx: Transaction) -> str:
    row = await tx.fetchrow("SELECT value FROM meta WHERE key = 'origin'")
    return row["value"] if row else ""


async def _catalogue_head(tx: Transaction) -> ChainHead:
    row = await tx.fetchrow("SELECT seq, hash FROM catalogue_events ORDER BY seq DESC LIMIT 1")
    return ChainHead(row["seq"], row["hash"]) if row else ChainHead()


async def _products(tx: Transaction) -> dict[str, dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT id, barcode, name, price, vat_rate, category, active FROM products ORDER BY id"
    )
    return {row["id"]: dict(row) for row in rows}


async def _apply_to_products(tx: Transaction, events: list[Event]) -> None:
    """The products table after head office's catalogue `events`."""
    changes = [change for event in events for change in one_by_one(event.type, event.body)]
    listed = [body for type_, body in changes if type_ == "product_upserted"]
    delisted = [body["id"] for type_, body in changes if type_ == "product_delisted"]
    await tx.executemany(
        """INSERT INTO products (id, barcode, name, price, vat_rate, category, active)
        VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (id) DO UPDATE SET
            barcode = excluded.barcode, name = excluded.name, price = excluded.price,
            vat_rate = excluded.vat_rate, category = excluded.category, active = 1""",
        [tuple(product[key] for key in PRODUCT_FIELDS) for product in listed],
    )
    await tx.executemany("UPDATE products SET active = 0 WHERE id = $1",
                         [(product_id,) for product_id in delisted])


async def _signing_key(tx: Transaction) -> ed25519.Ed25519PrivateKey:
    """Head office's key: made once, with its database, and kept there."""
    await tx.execute("INSERT INTO meta (key, value) VALUES ('signing_key', $1) "
                     "ON CONFLICT DO NOTHING",
                     ed25519.Ed25519PrivateKey.generate().private_bytes_raw().hex())
    row = await tx.fetchrow("SELECT value FROM meta WHERE key = 'signing_key'")
    assert row is not None
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(row["value"]))


async def _catalogue_rows(tx: Transaction, origin: str, after: int, limit: int | None,
                          max_bytes: int | None = None) -> tuple[list[Event], bool]:
    """The current origin's events after `after`, at most `limit` and, with `max_bytes`,
    those whose bodies fit in it (at least one); and whether more follow."""
    # catalogue_events holds the current origin's chain only (former ones are moved out).
    events: list[Event] = []
    size = 0
    while True:
        want = ROWS_AT_ONCE if limit is None else min(ROWS_AT_ONCE, limit + 1 - len(events))
        rows = await tx.fetch(f"SELECT {CATALOGUE_COLUMNS} FROM catalogue_events "
                              "WHERE seq > $1 ORDER BY seq LIMIT $2", after, want)
        for row in rows:
            size += len(row["body"])
            if len(events) == limit or (max_bytes is not None and size > max_bytes and events):
                return events, True
            events.append(Event(origin, row["seq"], row["id"], row["time"], row["type"],
                                orjson.loads(row["body"]), row["prev_hash"], row["hash"],
                                row["sig"]))
        if len(rows) < want:
            return events, False
        after = rows[-1]["seq"]


async def _append_catalogue(tx: Transaction, origin: str, changes: Changes,
                            key: ed25519.Ed25519PrivateKey) -> list[Event]:
    """The catalogue events for `changes`, signed; an origin's first certifies the key."""
    head = await _catalogue_head(tx)
    if await _every_store_reads_batches(tx):
        changes = batched(changes)
    if head.seq == 0 and changes:
        changes = [(ORIGIN_CERTIFIED, headoffice_certified_body(key)), *changes]
    events = []
    for type_, body in changes:
        event = sign(head.next(origin, type_, body), key)
        head = ChainHead(event.seq, event.hash)
        events.append(event)
    await tx.executemany(
        f"INSERT INTO catalogue_events ({CATALOGUE_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [(e.seq, e.id, e.time, e.type, canonical_json(e.body).decode(), e.prev_hash, e.hash,
          e.sig) for e in events],
    )
    return events


def _editions_since() -> str:
    """What a node said at a pull older than this no longer counts (EDITIONS_KEPT)."""
    since = datetime.now(UTC) - EDITIONS_KEPT
    return since.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _nodes_noted(tx: Transaction, store: str) -> int:
    row = await tx.fetchrow("SELECT COUNT(*) AS nodes FROM store_editions WHERE store = $1 "
                            "AND seen_at > $2", store, _editions_since())
    return row["nodes"] if row else 0


async def _every_store_reads_batches(tx: Transaction) -> bool:
    """No node heard from in EDITIONS_KEPT said at its last pull that it does not read
    catalogue batches (a store that never pulled is installed with an edge that does; a
    node silent that long was upgraded, replaced or retired)."""
    row = await tx.fetchrow("SELECT COUNT(*) AS old FROM store_editions "
                            "WHERE reads_batches = 0 AND seen_at > $1", _editions_since())
    return row is not None and row["old"] == 0


async def _restore_evidence(
    tx: Transaction, origin: str, vector: dict[str, int], heads: dict[str, str]
) -> str | None:
    """Why a store's vector shows head office lost events of its `origin` (None: it does not)."""
    claimed = vector.get(origin, 0)
    if claimed <= 0:
        return None
    row = await tx.fetchrow("SELECT hash FROM catalogue_events WHERE seq = $1", claimed)
    if row is None:
        head = await _catalogue_head(tx)
        return f"a store holds {origin}#{claimed}, head office only up to #{head.seq}"
    if origin in heads and heads[origin] != row["hash"]:
        return f"a store holds another {origin}#{claimed} than head office does"
    return None


# Seconds: an origin that a cut began is never cut again sooner on a store's claim.
FENCE_AT_MOST_EVERY = 3600


async def _started_lately(tx: Transaction, origin: str) -> bool:
    # Only an origin that a cut made: the first one of a new database may be cut at once.
    row = await tx.fetchrow("SELECT started_at FROM headoffice_origins WHERE origin = $1 "
                            "AND predecessor != ''", origin)
    if row is None or not row["started_at"]:
        return False
    started = datetime.fromisoformat(str(row["started_at"]))
    return (datetime.now(UTC) - started).total_seconds() < FENCE_AT_MOST_EVERY


async def _fence(tx: Transaction, origin: str, evidence: str,
                 key: ed25519.Ed25519PrivateKey) -> str:
    """Cut `origin` where head office stands; continue under a new origin; return it.

    The new origin's name is random, not numbered: a database restored twice
    from one backup cannot know which successors its lost copy had made. Its
    chain starts with the whole catalogue as it stands here (every product,
    upserted or delisted), so a store that applies it holds every price head
    office has, whatever it held of the old chain.
    """
    head = await _catalogue_head(tx)
    base = "-".join(origin.split("-")[:2])  # headoffice-<6 hex>: the database's lineage
    successor = f"{base}-{secrets.token_hex(4)}"
    await tx.execute(
        f"INSERT INTO former_catalogue_events (origin, {CATALOGUE_COLUMNS}) "
        # WHERE true: SQLite needs it to read ON CONFLICT after a SELECT.
        f"SELECT $1, {CATALOGUE_COLUMNS} FROM catalogue_events WHERE true ON CONFLICT DO NOTHING",
        origin,
    )
    await tx.execute("DELETE FROM catalogue_events")
    await tx.execute("UPDATE meta SET value = $1 WHERE key = 'origin'", successor)
    await tx.execute(
        "INSERT INTO headoffice_origins (origin, predecessor, cut_seq, cut_hash, reason, "
        "started_at) VALUES ($1, $2, $3, $4, $5, $6)",
        successor, origin, head.seq, head.hash, evidence, utc_now(),
    )
    products = await _products(tx)
    await _append_catalogue(tx, successor, [
        ("product_upserted", {field: product[field] for field in PRODUCT_FIELDS})
        if product["active"] else ("product_delisted", {"id": product_id})
        for product_id, product in products.items()
    ], key)
    log.warning("head office was restored from a backup (%s): %s cut at #%d, the catalogue "
                "continues as %s (%d product(s) published again)", evidence, origin, head.seq,
                successor, len(products))
    return successor
