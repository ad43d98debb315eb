"""A peer catching up a node with a long journal: streamed, each event once, links that hold.

The sender's journal is filled the way `bench/catchup.py` does it (one real
sale copied, hash-chained, straight into SQLite), so the catch-up is tens of
thousands of events of real shape.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
from conftest import ROOT, EdgeProcess, free_port, store_node_config
from signing_support import identity
from test_peers import BARCODES, converged, journal_of, pair

from edge.api import commands  # noqa: F401  (registers the projections)
from edge.journal.chain import Event
from edge.journal.store import Journal, Tx
from edge.replication.catchup import MAX_BYTES, Batch, JournalReader, Outflow
from edge.replication.pacing import TillActivity
from edge.till_client import TillClient

# Sixty batches: enough to show the outbox never grows with the backlog (bench/catchup.py
# measures ten million).
BACKLOG = 6_000
# At most one batch (100) and the live buffer (200) held for a peer
# (edge/replication/catchup.py).
OUTBOX_BOUND = 300


async def add_products(journal: Journal, first: int, count: int) -> None:
    def work(tx: Tx) -> None:
        for n in range(first, first + count):
            tx.append("product_upserted", {"id": f"p{n}", "barcode": None, "name": f"P {n}",
                                           "price": 100, "vat_rate": 550, "category": ""})

    await journal.write(work)


def seqs(batch: Batch | None) -> list[int]:
    assert batch is not None
    return [event["seq"] for event in orjson.loads(batch.payload)["events"]]


async def test_an_outflow_sends_each_event_once_in_order_whatever_happens_meanwhile(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "a.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    reader = JournalReader(journal.path)
    await reader.open()
    try:
        await add_products(journal, 0, 1200)
        heads = await journal.version_vector()
        known: dict[str, int] = {}
        outflow = Outflow(reader, heads, known)

        def committed(events: list[Event]) -> None:
            for event in events:
                heads[event.origin] = max(heads.get(event.origin, 0), event.seq)
            outflow.offer(events)

        journal.add_listener(committed)
        outflow.start({})
        sent: list[int] = []
        while (batch := await outflow.next_batch()) is not None:
            sent += seqs(batch)
            if len(sent) == 500:
                # Mid-stream: more sales, and a stale vector from the peer.
                await add_products(journal, 1200, 300)
                known["node-a"] = 200
        # Its certificate (#1), then 1500 products.
        assert sent == list(range(1, 1502)), "each event once, in order"
        assert outflow.high_water <= OUTBOX_BOUND

        await add_products(journal, 1500, 1)  # up to date: goes out from memory, once
        assert seqs(await outflow.next_batch()) == [1502]
        assert await outflow.next_batch() is None

        outflow.rewind({"node-a": 1000})  # it could not apply from #1001: resent, once
        again: list[int] = []
        while (batch := await outflow.next_batch()) is not None:
            again += seqs(batch)
        assert again == list(range(1001, 1503))
    finally:
        await reader.close()
        await journal.close()


async def test_live_events_go_out_in_batches_bounded_in_bytes(tmp_path: Path) -> None:
    # Head office's catalogue batches are tens of KB each: a hundred of them in one
    # message would pass the peer's 4 MiB limit, and the peer would hang up for ever.
    reader = JournalReader(tmp_path / "unused.sqlite3")
    big = {"products": [{"id": f"p{n}", "name": "x" * 400} for n in range(100)]}
    events = [Event("headoffice-1a2b3c", seq, f"e{seq}", "2026-12-01T10:00:00.000Z",
                    "products_listed", big, "", f"{seq:064x}", "") for seq in range(1, 101)]
    outflow = Outflow(reader, {"headoffice-1a2b3c": 100}, {})
    outflow.start({})
    outflow.offer(events)
    sent: list[int] = []
    while (batch := await outflow.next_batch()) is not None:
        assert len(batch.payload) < MAX_BYTES + 2 * len(orjson.dumps(big))
        sent += seqs(batch)
    assert sent == list(range(1, 101))


def node(tmp_path: Path, name: str, peer_urls: list[str], port: int | None = None) -> EdgeProcess:
    config = store_node_config(tmp_path / name, peer_urls)
    return EdgeProcess(tmp_path / name / "data", port or free_port(), ["--config", str(config)])


async def with_backlog(sender: EdgeProcess, events: int) -> int:
    """Give a stopped-then-restarted sender `events` more journal events; its total."""
    sender.start()
    token = await pair(sender)
    async with TillClient([sender.url], token, "alice", "1234") as till:
        await till.sell(BARCODES[:2], 1000)  # the sale every generated one copies
    sender.stop()
    generated = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bench.catchup", "--events", str(events),
                         "--append-to", str(sender.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    sender.start()
    return len(journal_of(sender))


async def peer_view(node: EdgeProcess, peer_id: str) -> dict:
    """What `node` shows of `peer_id` on /healthz (nothing yet: before their first link)."""
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/healthz") as reply:
        peers = (await reply.json())["peers"]
    return next((peer for peer in peers if peer["node_id"] == peer_id),
                {"events_received": 0, "last_error": None})


async def test_a_new_peer_catches_up_each_event_once_with_a_bounded_outbox(tmp_path: Path) -> None:
    a_port, b_port = free_port(), free_port()
    a = node(tmp_path, "a", [f"http://127.0.0.1:{b_port}"], a_port)
    b = node(tmp_path, "b", [f"http://127.0.0.1:{a_port}"], b_port)
    try:
        await with_backlog(a, BACKLOG)
        b.start()
        journal = await converged([a, b], within=120)
        a_id, b_id = a.node_id, b.node_id
        of_a = sum(1 for origin, _, _ in journal if origin == a_id)
        of_b = sum(1 for origin, _, _ in journal if origin == b_id)
        assert of_a > BACKLOG
        await asyncio.sleep(1.0)  # let the last vectors cross
        a_sees_b, b_sees_a = await peer_view(a, b_id), await peer_view(b, a_id)
    finally:
        b.stop()
        a.stop()
    # Each event crossed once, one way: none resent, none echoed back.
    assert a_sees_b["events_sent"] == of_a, a_sees_b
    assert b_sees_a["events_sent"] == of_b, b_sees_a
    assert b_sees_a["events_received"] == of_a
    assert b_sees_a["events_already_held"] == 0
    assert a_sees_b["events_already_held"] == 0
    # Streamed: never more than a batch and the live buffer held for the peer.
    assert 0 < a_sees_b["outbox_high_water"] <= OUTBOX_BOUND
    # The links held while B applied the whole backlog (each node dials the other once).
    assert a_sees_b["links_opened"] <= 2 and b_sees_a["links_opened"] <= 2, (a_sees_b, b_sees_a)


async def test_a_failed_commit_does_not_end_a_dialer(tmp_path: Path) -> None:
    a = node(tmp_path, "a", [])  # only B dials: if B's dialer dies, nothing heals
    a.start()
    b = node(tmp_path, "b", [a.url])
    try:
        b.start()
        await converged([a, b])
        db = sqlite3.connect(b.data_dir / "edge.sqlite3", isolation_level=None)
        db.execute("PRAGMA busy_timeout = 5000")
        # Every event of A now fails to commit on B, as a full disk would.
        db.execute(f"""CREATE TRIGGER refuse_a BEFORE INSERT ON events
                       WHEN new.origin = '{a.node_id}'
                       BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END""")
        await pair(a, "pendant la panne")
        for _ in range(200):
            seen = await peer_view(b, a.node_id)
            if "injected commit failure" in (seen["last_error"] or ""):
                break
            await asyncio.sleep(0.05)
        assert "injected commit failure" in (seen["last_error"] or ""), seen
        db.execute("DROP TRIGGER refuse_a")
        db.close()
        await converged([a, b], within=30)  # the dialer tried again, with backoff
        assert "could not apply" in b.log.read_text()
    finally:
        b.stop()
        a.stop()


def stop_timeout() -> float:
    unit = (ROOT / "systemd" / "edge.service").read_text()
    return float(re.search(r"^TimeoutStopSec=(\d+)", unit, re.MULTILINE).group(1))


async def test_sigterm_under_load_with_a_frozen_peer_ends_within_the_stop_timeout(
    tmp_path: Path,
) -> None:
    a_port, b_port = free_port(), free_port()
    a = node(tmp_path, "a", [f"http://127.0.0.1:{b_port}"], a_port)
    b = node(tmp_path, "b", [f"http://127.0.0.1:{a_port}"], b_port)
    selling: list[asyncio.Task[None]] = []
    try:
        await with_backlog(a, BACKLOG)
        tokens = [await pair(a, f"Caisse {n}") for n in range(3)]

        async def sell(token: str) -> None:
            async with TillClient([a.url], token, "alice", "1234", give_up_after=2) as till:
                while True:
                    await till.sell(BARCODES[:2], 1000)

        selling = [asyncio.create_task(sell(token)) for token in tokens]
        b.start()
        for _ in range(400):  # until B is mid catch-up
            if (await peer_view(b, a.node_id))["events_received"] > 0:
                break
            await asyncio.sleep(0.05)
        assert b.proc is not None and a.proc is not None
        b.proc.send_signal(signal.SIGSTOP)  # frozen mid-stream: A's writes to it stall
        await asyncio.sleep(0.5)
        a.proc.send_signal(signal.SIGTERM)
        limit = stop_timeout()
        for _ in range(int(limit / 0.1)):
            if a.proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert a.proc.poll() is not None, f"still running {limit:.0f} s after SIGTERM"
    finally:
        for task in selling:
            task.cancel()
        await asyncio.gather(*selling, return_exceptions=True)
        if b.proc is not None:
            b.proc.send_signal(signal.SIGCONT)
        b.stop()
        a.kill()


async def test_a_catch_up_batch_waits_while_a_till_command_is_in_flight(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "a.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    reader = JournalReader(journal.path)
    await reader.open()
    try:
        await add_products(journal, 0, 250)
        tills = TillActivity(max_wait=60)  # far longer than this test: only the till ends it
        outflow = Outflow(reader, await journal.version_vector(), {}, tills)
        outflow.start({})
        scan = tills.busy()
        scan.__enter__()  # a till's command arrives, not answered yet
        pending = asyncio.create_task(outflow.next_batch())
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not pending.done(), "no catch-up batch while a till waits for its answer"
        scan.__exit__(None, None, None)  # answered
        first = await pending
        assert seqs(first)[0] == 1
        assert outflow.yields >= 1
        sent = seqs(first)
        while (batch := await outflow.next_batch()) is not None:
            sent += seqs(batch)
        assert sent == list(range(1, 252)), "each event once, in order (the certificate first)"
    finally:
        await reader.close()
        await journal.close()


async def test_a_till_that_never_pauses_cannot_starve_a_catch_up(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "a.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    reader = JournalReader(journal.path)
    await reader.open()
    try:
        await add_products(journal, 0, 250)
        tills = TillActivity(max_wait=0.01)
        outflow = Outflow(reader, await journal.version_vector(), {}, tills)
        outflow.start({})
        with tills.busy():  # busy all along: each batch waits its turn, then goes
            sent: list[int] = []
            while (batch := await outflow.next_batch()) is not None:
                sent += seqs(batch)
        assert sent == list(range(1, 252))
        assert outflow.yields >= 3  # every batch waited (251 events: three batches)
    finally:
        await reader.close()
        await journal.close()


async def test_a_catch_up_yields_to_a_scanning_till_and_still_sends_each_event_once(
    tmp_path: Path,
) -> None:
    a_port, b_port = free_port(), free_port()
    a = node(tmp_path, "a", [f"http://127.0.0.1:{b_port}"], a_port)
    b = node(tmp_path, "b", [], b_port)  # only A dials: one link, A sends on it
    scanning: asyncio.Task[None] | None = None
    try:
        await with_backlog(a, 5_000)
        token = await pair(a, "Caisse qui scanne")

        async def scan() -> None:
            async with TillClient([a.url], token, "alice", "1234") as till:
                while True:
                    await till.call("catalogue/lookup", barcode=BARCODES[0])
                    await asyncio.sleep(0.01)

        scanning = asyncio.create_task(scan())
        b.start()
        journal = await converged([a, b], within=120)
        of_a = sum(1 for origin, _, _ in journal if origin == a.node_id)
        scanning.cancel()
        await asyncio.gather(scanning, return_exceptions=True)
        await asyncio.sleep(1.0)  # let the last counters settle
        a_sees_b = await peer_view(a, b.node_id)
    finally:
        if scanning is not None:
            scanning.cancel()
            await asyncio.gather(scanning, return_exceptions=True)
        b.stop()
        a.stop()
    assert a_sees_b["catchup_yields"] > 0, "the catch-up waited for the till's scans"
    assert a_sees_b["events_sent"] == of_a, a_sees_b  # and still sent each event once
    assert a_sees_b["links_opened"] == 1, a_sees_b
