"""The database schema, one migration per step, applied in order at open.

`PRAGMA user_version` records how many have run. Never edit a released step:
add a new one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: journal, projections the tills read, local-only secrets.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE events (
        position INTEGER PRIMARY KEY,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL UNIQUE,
        time TEXT NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        UNIQUE (origin, seq)
    );

    CREATE TABLE products (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        barcode TEXT UNIQUE,
        name TEXT NOT NULL,
        price INTEGER NOT NULL,
        vat_rate INTEGER NOT NULL,
        category TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE VIRTUAL TABLE products_fts USING fts5 (
        name, category, content='products', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 2', prefix='1 2 3'
    );
    CREATE TRIGGER products_ai AFTER INSERT ON products BEGIN
        INSERT INTO products_fts (rowid, name, category)
        VALUES (new.rowid, new.name, new.category);
    END;
    CREATE TRIGGER products_ad AFTER DELETE ON products BEGIN
        INSERT INTO products_fts (products_fts, rowid, name, category)
        VALUES ('delete', old.rowid, old.name, old.category);
    END;
    CREATE TRIGGER products_au AFTER UPDATE ON products BEGIN
        INSERT INTO products_fts (products_fts, rowid, name, category)
        VALUES ('delete', old.rowid, old.name, old.category);
        INSERT INTO products_fts (rowid, name, category)
        VALUES (new.rowid, new.name, new.category);
    END;

    CREATE TABLE cashiers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        pin_salt TEXT NOT NULL,
        pin_hash TEXT NOT NULL
    );

    CREATE TABLE tills (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        paired_at TEXT NOT NULL
    );

    CREATE TABLE baskets (
        id TEXT PRIMARY KEY,
        till TEXT NOT NULL,
        cashier TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'sold', 'voided'))
    );
    CREATE UNIQUE INDEX one_open_basket_per_till ON baskets (till) WHERE status = 'open';

    CREATE TABLE basket_lines (
        basket_id TEXT NOT NULL REFERENCES baskets (id),
        line_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        product_id TEXT NOT NULL,
        barcode TEXT,
        name TEXT NOT NULL,
        unit_price INTEGER NOT NULL,
        vat_rate INTEGER NOT NULL,
        quantity INTEGER NOT NULL,
        PRIMARY KEY (basket_id, line_id)
    );

    CREATE TABLE sales (
        id TEXT PRIMARY KEY,
        till TEXT NOT NULL,
        receipt_no INTEGER NOT NULL,
        cashier TEXT NOT NULL,
        time TEXT NOT NULL,
        total INTEGER NOT NULL,
        body TEXT NOT NULL,
        hash TEXT NOT NULL,
        UNIQUE (till, receipt_no)
    );

    CREATE TABLE print_jobs (
        id TEXT PRIMARY KEY,
        printer TEXT NOT NULL,
        node TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        created_at TEXT NOT NULL
    );

    -- Local to this node, never journaled: secrets and one-time codes.
    CREATE TABLE pairing_codes (
        code_sha256 TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    """,
    # 2: several nodes. Events from peers arrive in any order across origins,
    # so a till may briefly have two open baskets, and two sales of a till may
    # carry one receipt number (a till that lost its counter): both are
    # recorded and flagged, never dropped.
    """
    DROP INDEX one_open_basket_per_till;
    CREATE INDEX baskets_by_till ON baskets (till, status);
    CREATE TABLE sales_v2 (
        id TEXT PRIMARY KEY,
        till TEXT NOT NULL,
        receipt_no INTEGER NOT NULL,
        cashier TEXT NOT NULL,
        time TEXT NOT NULL,
        total INTEGER NOT NULL,
        body TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO sales_v2 SELECT id, till, receipt_no, cashier, time, total, body, hash FROM sales;
    DROP TABLE sales;
    ALTER TABLE sales_v2 RENAME TO sales;
    CREATE INDEX sales_by_receipt ON sales (till, receipt_no);
    """,
    # 3: head-office sync (edge/sync.py). Local to this node, never journaled:
    # how far head office acknowledged this node's events (a local
    # events.position), and what the last attempts said, for `edge status`.
    """
    CREATE TABLE headoffice_sync (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        acknowledged_position INTEGER NOT NULL DEFAULT 0,
        headoffice_origin TEXT,
        last_attempt TEXT,
        last_success TEXT,
        last_error TEXT,
        last_error_at TEXT
    );
    INSERT INTO headoffice_sync (id) VALUES (1);
    """,
    # 4: the durable print queue (edge/print_jobs.py): how far a job's last
    # attempt got, whether the drawer was opened for it, and a queue index.
    """
    ALTER TABLE print_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE print_jobs ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE print_jobs ADD COLUMN cut_sent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE print_jobs ADD COLUMN drawer_opened INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX print_jobs_waiting ON print_jobs (node, printer, status);
    """,
    # 5: every printer of the store, on every node (edge/print_jobs.py), so a
    # till's receipt goes to its printer whichever node the till is on.
    """
    CREATE TABLE store_printers (
        node TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        tills TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (node, name)
    );
    """,
    # 6: a sale's print jobs by sale id, without parsing every job's JSON.
    """
    ALTER TABLE print_jobs ADD COLUMN sale_id TEXT;
    UPDATE print_jobs SET sale_id = json_extract(body, '$.sale_id');
    CREATE INDEX print_jobs_by_sale ON print_jobs (sale_id);
    """,
    # 7: each origin's last seq, kept by a trigger in the event's own
    # transaction: peers ask for this version vector every few seconds, and
    # a GROUP BY over a year of events would read them all each time.
    """
    CREATE TABLE origins (origin TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    INSERT INTO origins SELECT origin, MAX(seq) FROM events GROUP BY origin;
    CREATE TRIGGER events_origin_head AFTER INSERT ON events BEGIN
        INSERT INTO origins (origin, last_seq) VALUES (new.origin, new.seq)
        ON CONFLICT (origin) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq);
    END;
    """,
    # 8: two nodes pairing a till at the same moment both call it T01; the
    # event with the smaller hash keeps the code (edge/tills.py), so both
    # tills stay known everywhere.
    """
    ALTER TABLE tills ADD COLUMN event_hash TEXT NOT NULL DEFAULT '';
    ALTER TABLE tills ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    """,
    # 9 (journal fencing, edge/lineage.py): every origin that continues
    # another one (a restored or copied data folder), where that chain was cut.
    """
    CREATE TABLE origin_lineage (
        origin TEXT PRIMARY KEY,
        predecessor TEXT NOT NULL,
        reason TEXT NOT NULL,
        cut_seq INTEGER NOT NULL,
        cut_hash TEXT NOT NULL,
        retires_predecessor INTEGER NOT NULL,
        time TEXT NOT NULL
    );
    """,
    # 10 (basket holding, edge/baskets.py): the takeover that made a basket
    # its till's, compared by (generation, event hash) so every node settles
    # on the same holder, and when the basket last changed (its till is
    # taken to be using it if that is recent).
    """
    ALTER TABLE baskets ADD COLUMN holder_generation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE baskets ADD COLUMN holder_event TEXT NOT NULL DEFAULT '';
    ALTER TABLE baskets ADD COLUMN active_at TEXT NOT NULL DEFAULT '';
    UPDATE baskets SET active_at = opened_at;
    """,
    # 11 (till codes, edge/tills.py): every till settled again from its
    # `till_paired` event. Migration 8 left `event_hash = ''` on the tills it
    # found, and '' won every tie, so nodes disagreed on which till kept a
    # code; before it, the second of two tills given one code was dropped.
    # The rule is the one edge/tills.py keeps for such old plain codes (the
    # smallest hash keeps `T01`, the others become `T01-<their node>`), so a
    # node that already applied it changes nothing and every node agrees.
    """
    CREATE TEMP TABLE settled_tills AS
    WITH paired AS (
        SELECT json_extract(body, '$.code') AS given, json_extract(body, '$.name') AS name,
               json_extract(body, '$.token_sha256') AS token_sha256, time, hash, origin,
               ROW_NUMBER() OVER (
                   PARTITION BY json_extract(body, '$.token_sha256') ORDER BY hash
               ) AS copy
        FROM events WHERE type = 'till_paired'
    ), ranked AS (
        SELECT *, given GLOB 'T[0-9][0-9]*' AND substr(given, 2) NOT GLOB '*[^0-9]*' AS plain,
               ROW_NUMBER() OVER (PARTITION BY given ORDER BY hash) AS place
        FROM paired WHERE copy = 1
    )
    SELECT CASE WHEN plain AND place > 1 THEN given || '-' || origin ELSE given END AS code,
           name, token_sha256, time AS paired_at, hash AS event_hash, origin
    FROM ranked;
    DELETE FROM tills WHERE token_sha256 IN (SELECT token_sha256 FROM settled_tills);
    INSERT INTO tills (code, name, token_sha256, paired_at, event_hash, origin)
    SELECT code, name, token_sha256, paired_at, event_hash, origin FROM settled_tills;
    DROP TABLE settled_tills;
    """,
    # 12 (exactly-once receipts, honest drawers, edge/print_jobs.py): a job
    # called off by another node (the printer's node decides), a pulse the
    # node cannot know went out, an attempt that began printing the original.
    """
    ALTER TABLE print_jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE print_jobs ADD COLUMN drawer_unknown INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE print_jobs ADD COLUMN original_started INTEGER NOT NULL DEFAULT 0;
    UPDATE print_jobs SET original_started = 1
        WHERE status IN ('started', 'interrupted', 'done')
        AND json_extract(body, '$.copy') IS NOT 'duplicate';
    CREATE INDEX print_jobs_drawer_unknown ON print_jobs (sale_id) WHERE drawer_unknown = 1;
    """,
    # 13 (one registry of event types, edge/event_types.py): the events that
    # decided a product (its latest listing and latest delisting) or a
    # cashier (latest time, then hash, wins on every node whatever the order
    # of arrival), and the barcode each product's listing names: the barcode
    # itself goes to one of the products naming it. Rows from before keep
    # their state until their next event. A basket line's place is its rank
    # by the event that added it, not by its arrival; its quantity is the
    # latest event's that gave one (`changed`).
    """
    ALTER TABLE basket_lines ADD COLUMN added TEXT NOT NULL DEFAULT '';
    ALTER TABLE basket_lines ADD COLUMN changed TEXT NOT NULL DEFAULT '';
    UPDATE basket_lines SET added = printf('%09d', position);
    ALTER TABLE products ADD COLUMN declared_barcode TEXT;
    ALTER TABLE products ADD COLUMN listed_time TEXT NOT NULL DEFAULT '';
    ALTER TABLE products ADD COLUMN listed_hash TEXT NOT NULL DEFAULT '';
    ALTER TABLE products ADD COLUMN delisted_time TEXT NOT NULL DEFAULT '';
    ALTER TABLE products ADD COLUMN delisted_hash TEXT NOT NULL DEFAULT '';
    UPDATE products SET declared_barcode = barcode;
    CREATE INDEX products_by_declared_barcode ON products (declared_barcode);
    ALTER TABLE cashiers ADD COLUMN event_time TEXT NOT NULL DEFAULT '';
    ALTER TABLE cashiers ADD COLUMN event_hash TEXT NOT NULL DEFAULT '';
    """,
    # 14 (sale ids, edge/selling/sales.py): a sale's id is its basket's
    # qualified by its till, so two tills selling one basket make two sales;
    # the basket each sale sold, to find them. Sales of before were their
    # basket.
    """
    ALTER TABLE sales ADD COLUMN basket_id TEXT;
    UPDATE sales SET basket_id = COALESCE(json_extract(body, '$.basket_id'), id);
    CREATE INDEX sales_by_basket ON sales (basket_id);
    """,
    # 15 (edge/journal/lineage.py): every origin a successor retired: its
    # predecessor and, for a backup restored twice, the origin in between.
    """
    CREATE TABLE retired_origins (
        origin TEXT NOT NULL,
        successor TEXT NOT NULL,
        time TEXT NOT NULL,
        PRIMARY KEY (origin, successor)
    );
    INSERT INTO retired_origins (origin, successor, time)
        SELECT predecessor, origin, time FROM origin_lineage WHERE retires_predecessor = 1;
    """,
    # 16 (issue 9 point 3, PINs and lockout, edge/selling/staff.py): which
    # key made a cashier's PIN hash ('' = PBKDF2 alone, from before keyed
    # PINs), disabled cashiers, and login locks journaled by any node.
    """
    ALTER TABLE cashiers ADD COLUMN pin_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE cashiers ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE login_locks (
        scope TEXT NOT NULL,
        subject TEXT NOT NULL,
        until TEXT NOT NULL,
        PRIMARY KEY (scope, subject)
    );
    """,
    # 17 (issue 9 point 6, `edge tills`, edge/selling/tills.py): revoked tills
    # (a projection of `till_revoked`), and when this node last saw each till
    # (local to the node, never journaled: it would flood the journal).
    """
    CREATE TABLE till_revocations (
        token_sha256 TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        revoked_at TEXT NOT NULL,
        origin TEXT NOT NULL,
        event_hash TEXT NOT NULL
    );
    CREATE TABLE till_last_seen (
        token_sha256 TEXT PRIMARY KEY,
        seen_at TEXT NOT NULL
    );
    """,
    # 18 (issue 9 point 3, edge/selling/logins.py): every wrong PIN for a
    # cashier and every login, from every node, so one node counts the
    # others' wrong guesses too (the lockout is the store's, not a node's).
    """
    CREATE TABLE login_failures (
        event_hash TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        cashier TEXT NOT NULL,
        till TEXT NOT NULL,
        time TEXT NOT NULL
    );
    CREATE INDEX login_failures_by_cashier ON login_failures (cashier, time);
    CREATE TABLE last_logins (
        cashier TEXT PRIMARY KEY,
        time TEXT NOT NULL
    );
    """,
    # 19 (issue 9 point 2, signed events, edge/journal/signing.py): each event's
    # signature; each origin's certified key and role (a projection of its
    # `origin_certified`); the keys nodes recorded as head office's; and the
    # origins held when this step ran, written before events were signed
    # (`edge verify` tells them from an unsigned origin slipped in later).
    """
    ALTER TABLE events ADD COLUMN sig TEXT NOT NULL DEFAULT '';
    CREATE TABLE origin_keys (
        origin TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL
    );
    CREATE TABLE headoffice_keys (
        public_key TEXT NOT NULL,
        origin TEXT NOT NULL,
        time TEXT NOT NULL,
        PRIMARY KEY (public_key, origin)
    );
    CREATE TABLE unsigned_origins (origin TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    INSERT INTO unsigned_origins SELECT origin, last_seq FROM origins;
    """,
    # 20 (edge/journal/vouches.py): what upgraded nodes vouched for, signed, of
    # the origins written before signing (a projection of
    # `unsigned_heads_vouched`). `unsigned_origins` (19) stays, but decides
    # nothing: a table in the file is no proof, a signed vouch is. A journal
    # that holds events when it reaches this step owes its vouch once: the
    # journal writes it when it next claims its origin, in that transaction.
    """
    CREATE TABLE unsigned_vouches (
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        voucher TEXT NOT NULL,
        PRIMARY KEY (origin, seq, voucher)
    );
    INSERT INTO meta (key, value) SELECT 'unsigned_vouch_owed', '1'
        WHERE EXISTS (SELECT 1 FROM events);
    """,
    # 21 (issue 10, refunds, edge/selling/refunds.py): each refunded line, of
    # the winning event of each refund (a projection of `sale_refunded`; the
    # refund itself is a row of `sales`, a negative sale). What is left to
    # refund of a sold line, and what was refunded beyond it, are read from it.
    """
    CREATE TABLE refund_lines (
        refund_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        sale_id TEXT,
        line_id TEXT,
        product_id TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        event_hash TEXT NOT NULL,
        PRIMARY KEY (refund_id, position)
    );
    CREATE INDEX refund_lines_by_sale ON refund_lines (sale_id, line_id);
    """,
    # 22 (issue 10, the catalogue's tiles, units and promotions, edge/selling/catalogue.py
    # and edge/selling/promotions.py): how a till shows and sells each product (unit,
    # tile colour and image, favourite rank, open price), which origin listed it last
    # (a store's import leaves head office's products alone), indexes for the till's
    # product grid, and the promotions (a projection of `promotion_upserted` and
    # `promotion_ended`).
    """
    ALTER TABLE products ADD COLUMN unit TEXT NOT NULL DEFAULT 'piece';
    ALTER TABLE products ADD COLUMN colour TEXT NOT NULL DEFAULT '';
    ALTER TABLE products ADD COLUMN image TEXT NOT NULL DEFAULT '';
    ALTER TABLE products ADD COLUMN favourite INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE products ADD COLUMN open_price INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE products ADD COLUMN listed_origin TEXT NOT NULL DEFAULT '';
    CREATE INDEX listings_by_hash ON events (hash) WHERE type = 'product_upserted';
    UPDATE products SET listed_origin = COALESCE((SELECT origin FROM events
        WHERE type = 'product_upserted' AND hash = products.listed_hash), '')
        WHERE listed_hash != '';
    DROP INDEX listings_by_hash;
    CREATE INDEX products_by_category ON products (category, name) WHERE active;
    CREATE INDEX products_by_favourite ON products (favourite, name)
        WHERE active AND favourite > 0;
    CREATE TABLE promotions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT '',
        products TEXT NOT NULL DEFAULT '[]',
        n INTEGER NOT NULL DEFAULT 0,
        m INTEGER,
        percent INTEGER,
        price INTEGER,
        starts TEXT,
        ends TEXT,
        listed_origin TEXT NOT NULL DEFAULT '',
        listed_time TEXT NOT NULL DEFAULT '',
        listed_hash TEXT NOT NULL DEFAULT '',
        ended_time TEXT NOT NULL DEFAULT '',
        ended_hash TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 23 (issue 10, parked baskets, edge/selling/parking.py): the latest park of a
    # basket, ranked (generation, event hash). A basket is parked while that park is
    # of its current holder's generation: a resume is a takeover, one generation up.
    # And today's sales, newest first (the till's sales list, edge/selling/sales_list.py).
    """
    ALTER TABLE baskets ADD COLUMN parked_generation INTEGER;
    ALTER TABLE baskets ADD COLUMN parked_event TEXT NOT NULL DEFAULT '';
    ALTER TABLE baskets ADD COLUMN parked_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE baskets ADD COLUMN parked_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE baskets ADD COLUMN parked_at TEXT NOT NULL DEFAULT '';
    ALTER TABLE baskets ADD COLUMN parked INTEGER GENERATED ALWAYS AS (
        COALESCE(parked_generation >= holder_generation, 0)) VIRTUAL;
    CREATE INDEX baskets_parked ON baskets (parked_at)
        WHERE status = 'open' AND parked_generation IS NOT NULL;
    CREATE INDEX sales_by_time ON sales (time);
    """,
    # 24 (issue 10, edge/selling/discounts.py and the weighed line): a cashier's
    # discounts, apart from the lines (a discount may arrive before its line);
    # a line's unit (pieces, or grams of a product sold by the kilo) and
    # whether its price came from its barcode.
    """
    CREATE TABLE basket_line_discounts (
        basket_id TEXT NOT NULL,
        line_id TEXT NOT NULL,
        discount TEXT,
        changed TEXT NOT NULL,
        PRIMARY KEY (basket_id, line_id)
    );
    CREATE TABLE basket_discounts (
        basket_id TEXT PRIMARY KEY,
        discount TEXT,
        changed TEXT NOT NULL
    );
    ALTER TABLE basket_lines ADD COLUMN unit TEXT NOT NULL DEFAULT 'piece';
    ALTER TABLE basket_lines ADD COLUMN price_embedded INTEGER NOT NULL DEFAULT 0;
    """,
    # 25 (issue 13, card payments through the terminal, edge/devices/card_payment_events.py):
    # each payment asked of a terminal, as its events tell it (a row made by whichever
    # comes first; `request` '{}' until its request arrives); the terminals each node
    # announces (routed like printers, edge/devices/till_routing.py).
    """
    CREATE TABLE card_payments (
        payment_id TEXT PRIMARY KEY,
        till TEXT NOT NULL DEFAULT '',
        cashier TEXT NOT NULL DEFAULT '',
        basket_id TEXT NOT NULL DEFAULT '',
        terminal TEXT NOT NULL DEFAULT '',
        node TEXT NOT NULL DEFAULT '',
        amount INTEGER NOT NULL DEFAULT 0,
        refund INTEGER NOT NULL DEFAULT 0,
        requested_at TEXT NOT NULL DEFAULT '',
        request TEXT NOT NULL DEFAULT '{}',
        request_event TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'requested',
        code TEXT,
        reason TEXT,
        authorised INTEGER,
        authorisation TEXT,
        last4 TEXT,
        card TEXT,
        application TEXT,
        read_mode TEXT,
        transaction_id TEXT,
        result_event TEXT NOT NULL DEFAULT '',
        settled TEXT,
        settled_reference TEXT,
        settled_amount INTEGER,
        settled_by TEXT,
        settled_event TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX card_payments_unfinished ON card_payments (node, terminal)
        WHERE status IN ('requested', 'started');
    CREATE INDEX card_payments_basket ON card_payments (basket_id);
    CREATE TABLE store_terminals (
        node TEXT NOT NULL,
        name TEXT NOT NULL,
        tills TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (node, name)
    );
    """,
    # 26 (issue 11, closures, edge/fiscal/closures.py): every closure event any node
    # made, superseded ones included (shown as such); a (kind, period)'s winner is its
    # smallest hash, whatever the order the events arrived in. A closure reads a sale's
    # every copy by its id, and the sales recorded since a time
    # (edge/fiscal/closure_counting.py), without reading a year of events.
    """
    CREATE TABLE closures (
        hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        period TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX closures_by_period ON closures (kind, period, hash);
    CREATE INDEX sale_events_by_id ON events (json_extract(body, '$.id'))
        WHERE type IN ('sale_completed', 'sale_refunded');
    CREATE INDEX sale_events_by_time ON events (time)
        WHERE type IN ('sale_completed', 'sale_refunded');
    """,
    # 27 (issue 11, shifts and training, edge/fiscal/shifts.py and training.py): each
    # shift (a row made by whichever of its events comes first), its cash moves, and
    # each till's mode (training or not). Training sales sit in `sales` with their
    # number below zero (edge/selling/sales.py): the real series never sees them.
    """
    CREATE TABLE shifts (
        shift_id TEXT PRIMARY KEY,
        till TEXT NOT NULL DEFAULT '',
        cashier TEXT NOT NULL DEFAULT '',
        float INTEGER NOT NULL DEFAULT 0,
        business_day TEXT NOT NULL DEFAULT '',
        ends_at TEXT NOT NULL DEFAULT '',
        opened_at TEXT NOT NULL DEFAULT '',
        open_event TEXT NOT NULL DEFAULT '',
        closed_at TEXT,
        close_body TEXT,
        close_event TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX shifts_by_till ON shifts (till, opened_at);
    CREATE TABLE cash_moves (
        move_id TEXT PRIMARY KEY,
        shift_id TEXT NOT NULL,
        till TEXT NOT NULL,
        cashier TEXT NOT NULL,
        amount INTEGER NOT NULL,
        reason TEXT NOT NULL,
        time TEXT NOT NULL,
        event_hash TEXT NOT NULL
    );
    CREATE INDEX cash_moves_by_shift ON cash_moves (shift_id);
    CREATE TABLE till_modes (
        till TEXT PRIMARY KEY,
        training INTEGER NOT NULL,
        changed TEXT NOT NULL,
        by TEXT NOT NULL,
        event_hash TEXT NOT NULL
    );
    """,
    # 28: a till asks for the catalogue changes since its version (a version vector):
    # the product events of each origin after a seq, found without reading the journal.
    """
    CREATE INDEX events_catalogue ON events (origin, seq)
        WHERE type IN ('product_upserted', 'product_delisted');
    """,
    # 29 (issue 12, a million products, edge/selling/catalogue.py): a product's search
    # entry is rewritten only when its name or category changes; before, any update of
    # it (its price, whether it is on sale, its barcode) deleted and re-added the entry.
    """
    DROP TRIGGER products_au;
    CREATE TRIGGER products_au AFTER UPDATE OF name, category ON products
    WHEN old.name IS NOT new.name OR old.category IS NOT new.category BEGIN
        INSERT INTO products_fts (products_fts, rowid, name, category)
        VALUES ('delete', old.rowid, old.name, old.category);
        INSERT INTO products_fts (rowid, name, category)
        VALUES (new.rowid, new.name, new.category);
    END;
    """,
    # 30 (issue 12, catalogue versions, edge/selling/catalogue.py): the barcodes each
    # product's listings named besides its latest one, so that a till's changes include
    # the product that gets a barcode back when another moves away from it. Filled from
    # the product events held (through the index of migration 28): reads each product
    # event's body once and one product by id, a few seconds for a million; it writes
    # only the products that ever changed barcode (few).
    """
    CREATE TABLE former_barcodes (
        product_id TEXT NOT NULL,
        barcode TEXT NOT NULL,
        PRIMARY KEY (product_id, barcode)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO former_barcodes (product_id, barcode)
    SELECT listing.product_id, listing.barcode FROM (
        SELECT json_extract(body, '$.id') AS product_id,
               json_extract(body, '$.barcode') AS barcode
        FROM events INDEXED BY events_catalogue
        WHERE type IN ('product_upserted', 'product_delisted') AND type = 'product_upserted'
    ) AS listing JOIN products ON products.id = listing.product_id
    WHERE listing.barcode IS NOT NULL AND listing.barcode IS NOT products.declared_barcode;
    """,
    # 31 (a till paired again, edge/selling/tills.py): the codes of earlier tills whose
    # unsent offline sales a till sends (JSON list; NULL: none), from its `till_paired`.
    """
    ALTER TABLE tills ADD COLUMN takes_over TEXT;
    """,
    # 32 (issue 12, head office's catalogue in batches, edge/selling/catalogue_batches.py):
    # the product events' index takes the batches too (catalogue_versions.PRODUCT_EVENTS,
    # word for word). One pass over the events, as migration 28.
    """
    DROP INDEX events_catalogue;
    CREATE INDEX events_catalogue ON events (origin, seq)
        WHERE type IN ('product_upserted', 'product_delisted', 'products_listed',
                       'products_delisted');
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version reached."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the database is schema version {version}, newer than this edge "
            f"({len(MIGRATIONS)}): upgrade edge before opening it"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
