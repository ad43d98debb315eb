"""The catch-up bench's sender: a node folder holding millions of generated journal events.

One real sale is made through a till first; its events (two basket lines and
the sale) are the templates of every generated sale, with new ids and
receipt numbers, hash-chained and signed exactly as `edge/journal/store.py`
writes them (only the sender's own read tables are not filled for them:
nothing in the bench reads those). The folder is cached under
`.bench-cache/`, so a rerun starts at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.nodes import BARCODES, ROOT, BenchNode, free_port
from edge.journal.chain import Event, content_matches_hash
from edge.journal.signing import SIGNED_PREFIX
from edge.till_client import TillClient

CACHE = ROOT / ".bench-cache"
FLUSH_EVERY = 200_000  # events per generating transaction


def new_id() -> str:
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}"


def sale_templates(db: sqlite3.Connection, origin: str) -> tuple[list[tuple[str, str]], str, int]:
    """The newest sale of `origin` and its basket lines, ids made placeholders.

    Returns the templates (type, body text), the till's code, its last receipt number.
    """
    sale_row = db.execute(
        "SELECT body FROM events WHERE origin = ? AND type = 'sale_completed' "
        "ORDER BY seq DESC LIMIT 1", (origin,),
    ).fetchone()
    if sale_row is None:
        raise RuntimeError("no sale to copy: make one through a till first")
    sale = orjson.loads(sale_row[0])
    basket = sale.get("basket_id", sale["id"])
    lines = db.execute(
        "SELECT body FROM events WHERE origin = ? AND type = 'basket_line_added' "
        "AND json_extract(body, '$.basket_id') = ? ORDER BY seq", (origin, basket),
    ).fetchall()
    texts = [("basket_line_added", row[0]) for row in lines] + [("sale_completed", sale_row[0])]
    swaps = {basket: "@SALE@"}  # the sale's id is its basket's @ its till
    swaps.update({line["id"]: f"@LINE{n}@" for n, line in enumerate(sale["lines"])})
    templates = []
    for type_, text in texts:
        for value, placeholder in swaps.items():
            text = text.replace(value, placeholder)
        text = text.replace(f'"receipt_no":{sale["receipt_no"]},', '"receipt_no":@NO@,')
        if "receipt_number" in sale:
            text = text.replace(orjson.dumps(sale["receipt_number"]).decode(), '"@NUMBER@"')
        templates.append((type_, text))
    return templates, sale["till"], int(sale["receipt_no"])


def append_sales(path: Path, origin: str, count: int) -> int:
    """Append at least `count` events of `origin` (whole sales) to a stopped node's journal.

    Valid and chained: each hash covers the canonical JSON of the event and
    the previous hash, as `edge.journal.chain.event_hash` computes it (checked on the
    first sale). Returns the number of events written.
    """
    # Signed with the node's key, as the node signs (edge/journal/signing.py).
    key = serialization.load_pem_private_key((path.parent / "tls" / "signing.key").read_bytes(),
                                             None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -500000")
        seq, prev, last_time = db.execute(
            "SELECT seq, hash, time FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1",
            (origin,),
        ).fetchone()
        templates, till, receipt_no = sale_templates(db, origin)
        # Times run from the last event to a second ago: in order, never in the future.
        start = datetime.fromisoformat(last_time.replace("Z", "+00:00"))
        span = max(datetime.now(UTC) - start - timedelta(seconds=1), timedelta(0))
        quoted_origin = orjson.dumps(origin)
        types = {type_: orjson.dumps(type_) for type_, _ in templates}
        lines = len(templates) - 1  # one basket line event per line of the sale
        rows: list[tuple[str, int, str, str, str, str, str, str, str]] = []
        written = 0
        checked = False
        while written < count:
            receipt_no += 1
            swaps = [("@SALE@", new_id())] + [(f"@LINE{n}@", new_id()) for n in range(lines)]
            swaps += [("@NO@", str(receipt_no)), ("@NUMBER@", f"{till}-{receipt_no:06d}")]
            moment = start + span * (written / count)
            when = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for type_, template in templates:
                body = template
                for placeholder, value in swaps:
                    body = body.replace(placeholder, value)
                seq += 1
                event_id = new_id()
                payload = b"".join((
                    b"[", quoted_origin, b",", str(seq).encode(), b',"', event_id.encode(),
                    b'","', when.encode(), b'",', types[type_], b",", body.encode(), b',"',
                    prev.encode(), b'"]',
                ))
                digest = hashlib.sha256(payload).hexdigest()
                signature = key.sign(SIGNED_PREFIX + digest.encode()).hex()
                rows.append((origin, seq, event_id, when, type_, body, prev, digest, signature))
                prev = digest
            written += len(templates)
            if not checked:
                for row in rows:
                    event = Event(*row[:5], orjson.loads(row[5]), *row[6:])  # type: ignore[call-arg]
                    assert content_matches_hash(event), "generated hash differs from edge's"
                checked = True
            if len(rows) >= FLUSH_EVERY or written >= count:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, sig) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows,
                )
                db.execute("COMMIT")
                rows.clear()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return written
    finally:
        db.close()


def node_id(node: BenchNode) -> str:
    return (node.data / "node-id").read_text().strip()


async def one_sale(node: BenchNode) -> str:
    token = await node.pair()
    async with TillClient([node.url], token, "alice", "1234", timeout=30) as till:
        await till.sell(BARCODES[:2], 1000)
    return token


async def cached_sender(events: int) -> tuple[Path, dict[str, float]]:
    """A node folder holding `events` generated events, made once and kept in CACHE."""
    # "signed": events carry signatures since issue 9; a cache from before holds
    # unsigned ones, which a peer refuses.
    folder = CACHE / f"catchup-signed-{events}"
    done = folder / "generated.json"
    if done.exists():
        return folder, json.loads(done.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    node = BenchNode(folder, free_port(), [])
    await node.start()
    try:
        await one_sale(node)
    finally:
        node.stop()
    started = time.perf_counter()
    written = append_sales(node.data / "edge.sqlite3", node_id(node), events)
    seconds = time.perf_counter() - started
    facts = {"events": written, "seconds": round(seconds, 1),
             "bytes": (node.data / "edge.sqlite3").stat().st_size}
    done.write_text(json.dumps(facts))
    return folder, facts
