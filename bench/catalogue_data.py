"""The catalogue bench's generated products and its raw sqlite3 baselines.

Products are valid as a store or head office would load them: EAN-13
barcodes with their check digit, the VAT rates allowed, names of two to
four words drawn from a few hundred real ones (so a one-letter prefix
matches many products, as in a real hypermarket), thirty categories.
"""

from __future__ import annotations

import csv
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.selling.barcodes import gtin_check_digit

VOCABULARY = (
    "pain baguette brioche croissant chocolat cafe the lait beurre creme yaourt fromage "
    "comte emmental chevre camembert jambon poulet boeuf porc saucisse saumon thon sardine "
    "crevette moule riz pates farine sucre sel poivre huile olive vinaigre moutarde ketchup "
    "mayonnaise tomate carotte pomme poire banane orange citron fraise framboise abricot "
    "peche cerise raisin melon ananas mangue kiwi salade oignon ail courgette aubergine "
    "poivron haricot lentille pois mais champignon epinard chou brocoli navet radis "
    "celeri fenouil artichaut asperge avocat noix noisette amande cacahuete pistache miel "
    "confiture compote biscuit gateau tarte madeleine cookie gaufre crepe chips bonbon "
    "caramel vanille cannelle menthe eau soda jus limonade biere vin cidre champagne "
    "whisky vodka rhum sirop savon shampooing dentifrice brosse papier mouchoir lessive "
    "adoucissant eponge sac ampoule pile vis clou cheville perceuse marteau tournevis "
    "scie pince cle metre niveau colle peinture pinceau rouleau bache corde chaine "
    "cadenas serrure poignee charniere etagere planche tasseau plinthe parquet carrelage "
    "joint silicone mastic enduit platre ciment sable gravier tuyau raccord robinet "
    "mitigeur evier lavabo douche baignoire wc chasse ballon radiateur thermostat cable "
    "prise interrupteur gaine disjoncteur tableau lampe spot applique suspension "
    "ventilateur chauffage climatiseur aspirateur balai seau gant tablier torchon "
    "nappe serviette assiette verre tasse bol couvert couteau fourchette cuillere "
    "casserole poele faitout cocotte plat moule saladier passoire rape econome "
    "bio nature entier demi ecreme doux fort leger fume frais surgele sec grand petit "
    "blanc noir rouge vert jaune bleu rose gris classique tradition maison extra premium"
)
WORDS = VOCABULARY.split()
CATEGORIES = [f"Rayon {word.capitalize()}" for word in WORDS[::9][:30]]
VAT_RATES = (550, 550, 550, 2000, 2000, 1000, 210)
SIZES = ("", "", "250 g", "500 g", "1 kg", "1 L", "1,5 L", "x6", "x12", "75 cl", "2 m")


def barcode_of(number: int) -> str:
    body = f"3{number:011d}"  # 3xx: France, no in-store prefix (20-29) the node reads apart
    return body + str(gtin_check_digit(body))


def products(count: int, seed: int = 12) -> Iterator[dict[str, Any]]:
    """`count` valid products, the same for a given seed."""
    chooser = random.Random(seed)
    for number in range(1, count + 1):
        words = chooser.sample(WORDS, chooser.choice((2, 3, 3, 4)))
        size = chooser.choice(SIZES)
        name = " ".join(words).capitalize() + (f" {size}" if size else "")
        yield {"id": f"P{number:07d}", "barcode": barcode_of(number), "name": name,
               "price": chooser.randrange(50, 100_000), "vat_rate": chooser.choice(VAT_RATES),
               "category": chooser.choice(CATEGORIES)}


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["id", "barcode", "name", "price", "vat_rate",
                                                 "category"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(products(count))


RAW_TABLE = """CREATE TABLE products (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, barcode TEXT UNIQUE,
    name TEXT NOT NULL, price INTEGER NOT NULL, vat_rate INTEGER NOT NULL,
    category TEXT NOT NULL DEFAULT '')"""
RAW_FTS = ("CREATE VIRTUAL TABLE products_fts USING fts5 (name, content='products', "
           "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2', prefix='2 3')")
RAW_COLUMNS = ("id", "barcode", "name", "price", "vat_rate", "category")


def raw_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    return db


def raw_import(csv_path: Path, database: Path) -> dict[str, Any]:
    """The CSV into a plain table (its id and barcode indexes), one transaction."""
    began = time.perf_counter()
    db = raw_db(database)
    db.execute(RAW_TABLE)
    with csv_path.open(encoding="utf-8", newline="") as source:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO products (id, barcode, name, price, vat_rate, category) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((row["id"], row["barcode"], row["name"], int(row["price"]), int(row["vat_rate"]),
              row["category"]) for row in csv.DictReader(source)))
        db.execute("COMMIT")
    db.close()
    return {"seconds": time.perf_counter() - began}


def raw_apply(node_db: Path, database: Path, origin: str, page: int,
              verify: bool) -> dict[str, Any]:
    """Head office's events as the node holds them, inserted raw: each page of `page`
    events and its products in one transaction (the events table keeps its (origin,
    seq) and id keys). With `verify`, each signature is checked too (ed25519)."""
    import orjson

    from edge.journal.signing import SIGNED_PREFIX, load_public_hex
    from edge.selling.catalogue_batches import one_by_one

    source = sqlite3.connect(f"file:{node_db}?mode=ro", uri=True)
    rows = source.execute("SELECT seq, id, time, type, body, prev_hash, hash, sig FROM events "
                          "WHERE origin = ? ORDER BY seq", (origin,)).fetchall()
    source.close()
    key = load_public_hex(orjson.loads(rows[0][4])["public_key"])
    began = time.perf_counter()
    db = raw_db(database)
    db.execute(RAW_TABLE)
    db.execute("CREATE TABLE events (origin TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT "
               "NULL UNIQUE, time TEXT, type TEXT, body TEXT, prev_hash TEXT, hash TEXT, "
               "sig TEXT, UNIQUE (origin, seq))")
    for start in range(0, len(rows), page):
        chunk = rows[start:start + page]
        if verify:
            for row in chunk:
                key.verify(bytes.fromhex(row[7]), SIGNED_PREFIX + row[6].encode())
        bodies = [body for row in chunk
                  for type_, body in one_by_one(row[3], orjson.loads(row[4]))
                  if type_ == "product_upserted"]
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       ((origin, *row) for row in chunk))
        db.executemany("INSERT INTO products (id, barcode, name, price, vat_rate, category) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (tuple(body.get(column) for column in RAW_COLUMNS) for body in bodies))
        db.execute("COMMIT")
    db.close()
    return {"seconds": time.perf_counter() - began}


def checkpointed_size(database: Path) -> int:
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return database.stat().st_size


def raw_sizes(csv_path: Path, folder: Path) -> tuple[int, int, sqlite3.Connection]:
    """The raw table with its indexes (bytes), then with a plain FTS5 prefix index too;
    and a connection to the latter (the raw search and lookup baselines)."""
    database = folder / "raw-sized.sqlite3"
    raw_import(csv_path, database)
    plain = checkpointed_size(database)
    db = sqlite3.connect(database, isolation_level=None)
    db.execute(RAW_FTS)
    db.execute("INSERT INTO products_fts (rowid, name) SELECT rowid, name FROM products")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return plain, database.stat().st_size, db


def object_sizes(database: Path, top: int = 8) -> list[tuple[str, int]]:
    """The largest tables and indexes of a database (bytes), from dbstat."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name "
                          "ORDER BY 2 DESC LIMIT ?", (top,)).fetchall()
    finally:
        db.close()
    return [(name, size) for name, size in rows]


def serve_echo(port: int) -> None:
    """A websocket echo (aiohttp, the node's websocket settings): the baseline of a lookup's
    round trip."""
    from aiohttp import WSMsgType, web

    from edge.api.server import MAX_MESSAGE_BYTES

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=10.0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None)
