"""A new peer catches up a node holding a year's journal: memory and the till's scans meanwhile.

The sender is a real `edge serve` whose data folder holds `--events` journal
events (10 million by default: a year of a busy store). They are generated
fast, straight into SQLite: one real sale is made through a till first, and
its events (two basket lines and the sale) are the templates of every
generated sale, with new ids and receipt numbers, hash-chained exactly as
`edge/journal.py` writes them (only the sender's own read tables are not
filled for them: nothing here reads those). The folder is cached under
`.bench-cache/`, so a rerun starts at once.

Then a new, empty node listing the sender as its peer starts and catches up.
Before it starts, and while it catches up, a till on the sender scans a
product (`catalogue/lookup`) every 20 ms; the bench prints the scan's p50 and
p99 as ratios to before, the peak resident memory (VmHWM in
/proc/<pid>/status) of both nodes, what the sender sent on that link and
the most events it held at once for it. The sender's peak RSS growth must
stay under 100 MB.

In a store the two nodes are two machines. Here they share the cores, so
by default the new peer runs on the last CPU and the sender and this bench
on the others (`--no-pin` to let them mix): what the scans then measure is
what the catch-up costs the sender, not the peer's work stealing its core.
On a machine shared with other work, though, the peer's busy core pushes
that work onto the sender's: so the bench ends with a control, the same
scans while a busy loop holds the peer's core and nothing catches up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.nodes import BARCODES, ROOT, BenchNode, free_port, percentile
from edge.journal.chain import Event, content_matches_hash
from edge.journal.signing import SIGNED_PREFIX
from edge.till_client import TillClient

CACHE = ROOT / ".bench-cache"
SCAN_EVERY = 0.02  # seconds between two scans of the measuring till
RSS_GROWTH_LIMIT_MB = 100
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


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def scan(url: str, token: str, until: asyncio.Event,
               scans: list[tuple[float, float]]) -> None:
    """Scan every SCAN_EVERY until told to stop; each scan as (when it started, its latency)."""
    async with TillClient([url], token, "alice", "1234", timeout=30) as till:
        while not until.is_set():
            started = time.perf_counter()
            barcode = BARCODES[len(scans) % len(BARCODES)]
            await till.call("catalogue/lookup", barcode=barcode)
            scans.append((started, time.perf_counter() - started))
            await asyncio.sleep(max(0.0, SCAN_EVERY - (time.perf_counter() - started)))


async def scans_for(url: str, token: str, seconds: float) -> list[float]:
    scans: list[tuple[float, float]] = []
    until = asyncio.Event()
    task = asyncio.create_task(scan(url, token, until, scans))
    await asyncio.sleep(seconds)
    until.set()
    await task
    return [latency for _, latency in scans]


def taken_by(db_path: Path, own_origin: str) -> int:
    """Events a node holds of other origins than its own: what replication brought it."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with contextlib.closing(db):
        row = db.execute("SELECT SUM(last_seq) FROM origins WHERE origin != ?",
                         (own_origin,)).fetchone()
        return row[0] or 0


def held_of(db_path: Path, origin: str) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with contextlib.closing(db), contextlib.suppress(sqlite3.OperationalError):
        row = db.execute("SELECT last_seq FROM origins WHERE origin = ?", (origin,)).fetchone()
        return row[0] if row else 0
    return 0


async def peer_view(sender: BenchNode, peer_id: str) -> dict | None:
    async with aiohttp.ClientSession() as session, session.get(
        f"{sender.url}/healthz"
    ) as response:
        for peer in (await response.json()).get("peers", []):
            if peer["node_id"] == peer_id:
                return peer
    return None


async def scans_with_core_busy(url: str, token: str, seconds: float,
                               cpu: int | None) -> list[float]:
    """Scans while a busy loop holds the new peer's core: the catch-up's setting, without it.

    On a machine shared with other work, a peer pinned to one core pushes that
    work onto the sender's core: the scans then slow down whatever the sender
    does. This control measures that part alone.
    """
    if cpu is None:
        return []
    burner = await asyncio.create_subprocess_exec(
        "taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass")
    try:
        return await scans_for(url, token, seconds)
    finally:
        burner.kill()
        await burner.wait()


def pin(node: BenchNode, cpus: set[int] | None) -> None:
    if cpus:
        node.args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *node.args]


async def catch_up(events: int, baseline_seconds: float, max_seconds: float,
                   pinned: bool) -> None:
    folder, facts = await cached_sender(events)
    print(f"sender journal: {facts['events']:,} generated events, "
          f"{facts['bytes'] / 1e9:.2f} GB, generated in {facts['seconds']:.0f} s "
          f"({facts['events'] / max(facts['seconds'], 0.001):,.0f} events/s)", flush=True)
    sender = BenchNode(folder, free_port(), [])
    cpus = sorted(os.sched_getaffinity(0))
    pinned = pinned and len(cpus) > 1
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        peer = BenchNode(Path(tmp) / "peer", free_port(), [sender.port])
        if pinned:
            pin(sender, set(cpus[:-1]))
            pin(peer, {cpus[-1]})
            os.sched_setaffinity(0, set(cpus[:-1]))
            print(f"pinned: new peer on CPU {cpus[-1]}, sender and bench on CPU "
                  f"{','.join(map(str, cpus[:-1]))}", flush=True)
        await sender.start()
        try:
            origin = node_id(sender)
            token = await sender.pair()
            target = held_of(sender.data / "edge.sqlite3", origin)
            before = await scans_for(sender.url, token, baseline_seconds)
            sender_before = memory_kb(sender.proc.pid)  # type: ignore[union-attr]
            print(f"before: {len(before)} scans, p50 {percentile(before, 0.5) * 1000:.2f} ms, "
                  f"p99 {percentile(before, 0.99) * 1000:.2f} ms; sender RSS "
                  f"{sender_before['VmRSS'] / 1024:.0f} MB (peak so far "
                  f"{sender_before['VmHWM'] / 1024:.0f} MB)", flush=True)

            during: list[float] = []
            until = asyncio.Event()
            started = time.perf_counter()
            await peer.start()
            scanning = asyncio.create_task(scan(sender.url, token, until, during))
            sender_rss_max = peer_hwm = 0
            held = 0
            next_report = started + 30
            while time.perf_counter() - started < max_seconds:
                await asyncio.sleep(1.0)
                # In a thread: opening the peer's database (up to ~9 ms on a busy
                # machine) must not hold up this loop's scans, the measuring tool.
                sender_now, peer_now, held = await asyncio.to_thread(
                    lambda: (memory_kb(sender.proc.pid),  # type: ignore[union-attr]
                             memory_kb(peer.proc.pid),  # type: ignore[union-attr]
                             held_of(peer.data / "edge.sqlite3", origin)))
                sender_rss_max = max(sender_rss_max, sender_now["VmRSS"])
                peer_hwm = peer_now["VmHWM"]
                if held >= target:
                    break
                if time.perf_counter() >= next_report:
                    next_report += 30
                    elapsed = time.perf_counter() - started
                    print(f"  {elapsed:.0f} s: {held:,} of {target:,} events "
                          f"({held / elapsed:,.0f}/s)", flush=True)
            elapsed = time.perf_counter() - started
            until.set()
            await scanning
            sender_after = memory_kb(sender.proc.pid)  # type: ignore[union-attr]
            await asyncio.sleep(1.0)  # the last batch's counters
            view = await peer_view(sender, node_id(peer)) or {}
            taken = taken_by(peer.data / "edge.sqlite3", node_id(peer))
            # The same again once it is over: the machine's own drift, to judge the ratios by.
            after = await scans_for(sender.url, token, baseline_seconds)
            control = await scans_with_core_busy(sender.url, token, baseline_seconds,
                                                 cpus[-1] if pinned else None)
        finally:
            peer.stop()
            sender.stop()

    done = "caught up" if held >= target else f"stopped after {max_seconds:.0f} s"
    print(f"catch-up: {held:,} of {target:,} events in {elapsed:.0f} s "
          f"({held / elapsed:,.0f} events/s), {done}")
    print(f"  sender sent {view.get('events_sent', 0):,} events on that link, the peer took "
          f"{taken:,} ({view.get('events_sent', 0) / max(taken, 1):.3f} x); held at most "
          f"{view.get('outbox_high_water')} at once; links opened "
          f"{view.get('links_opened')}; batches that waited for a till "
          f"{view.get('catchup_yields')}")
    b50, b99 = percentile(before, 0.5), percentile(before, 0.99)
    d50, d99 = percentile(during, 0.5), percentile(during, 0.99)
    a50, a99 = percentile(after, 0.5), percentile(after, 0.99)
    print(f"  till scan on the sender: p50 {d50 * 1000:.2f} ms = {d50 / b50:.2f} x before, "
          f"p99 {d99 * 1000:.2f} ms = {d99 / b99:.2f} x before ({len(during)} scans)")
    if control:
        c50, c99 = percentile(control, 0.5), percentile(control, 0.99)
        print(f"  control, {baseline_seconds:.0f} s with the peer's core kept busy and no "
              f"catch-up: p50 {c50 * 1000:.2f} ms, p99 {c99 * 1000:.2f} ms: during = "
              f"{d50 / c50:.2f} x (p50), {d99 / c99:.2f} x (p99) the control")
    print(f"  the same {baseline_seconds:.0f} s after the catch-up: p50 {a50 * 1000:.2f} ms, "
          f"p99 {a99 * 1000:.2f} ms: during = {d50 / a50:.2f} x (p50), {d99 / a99:.2f} x (p99) "
          "the quiet node after")
    growth_hwm = (sender_after["VmHWM"] - sender_before["VmHWM"]) / 1024
    growth_rss = (sender_rss_max - sender_before["VmRSS"]) / 1024
    growth = max(growth_hwm, growth_rss)
    print(f"  sender peak RSS {sender_after['VmHWM'] / 1024:.0f} MB "
          f"(= {sender_after['VmHWM'] / sender_before['VmHWM']:.2f} x before), growth "
          f"{growth:.0f} MB: {'OK' if growth <= RSS_GROWTH_LIMIT_MB else 'OVER'} "
          f"(limit {RSS_GROWTH_LIMIT_MB} MB)")
    print(f"  new peer peak RSS {peer_hwm / 1024:.0f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000,
                        help="journal events of the sender (generated once, then cached)")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="stop measuring after this long even if not caught up")
    parser.add_argument("--no-pin", action="store_true",
                        help="let both nodes share every CPU")
    parser.add_argument("--append-to", type=Path, metavar="DATA_FOLDER",
                        help="only append --events events to that stopped node's journal "
                             "(it must hold one sale; tests/test_catchup.py uses it)")
    args = parser.parse_args(argv)
    if args.append_to:
        origin = (args.append_to / "node-id").read_text().strip()
        print(append_sales(args.append_to / "edge.sqlite3", origin, args.events))
        return
    asyncio.run(catch_up(args.events, args.baseline_seconds, args.max_seconds,
                         not args.no_pin))


if __name__ == "__main__":
    main()
