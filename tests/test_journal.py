"""The journal applies other origins' events only when their chain holds, and only once."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from signing_support import identity

from edge.api import commands  # noqa: F401  (registers projections through the modules)
from edge.journal.chain import ChainError, ChainGap, Event
from edge.journal.checkpoints import Checkpointer
from edge.journal.store import Journal, Tx, connect
from edge.selling.catalogue import parse_catalogue_csv
from edge.selling.tills import authenticate, create_pairing_code, pair

HEADER = "id,barcode,name,price,vat_rate,category\n"


@pytest.fixture
async def two_journals(tmp_path: Path) -> AsyncIterator[tuple[Journal, Journal]]:
    a = Journal(tmp_path / "a.sqlite3", origin="node-a", trust=identity("node-a"))
    b = Journal(tmp_path / "b.sqlite3", origin="node-b", trust=identity("node-b"))
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def write_products(journal: Journal, *rows: str) -> list[Event]:
    """The events written, its origin's certificate first when these are its first."""
    products = parse_catalogue_csv(HEADER + "".join(rows))

    def work(tx: Tx) -> list[Event]:
        [tx.append("product_upserted", product) for product in products]
        return tx.events

    return await journal.write(work)


async def apply(journal: Journal, events: list[Event]) -> list[bool]:
    return await journal.write(lambda tx: [tx.apply(event) for event in events])


async def products(journal: Journal) -> list[tuple]:
    rows = await journal.read_all("SELECT id, barcode, name, price FROM products ORDER BY id")
    return [tuple(row) for row in rows]


async def test_events_from_another_node_apply_once(two_journals) -> None:
    a, b = two_journals
    events = await write_products(a, "p1,2000001000014,Baguette,120,550,Pain\n",
                                  "p2,2000002000013,Croissant,115,550,Viennoiserie\n")
    assert await apply(b, events) == [True, True, True]
    assert await apply(b, events) == [False, False, False]
    assert await products(b) == await products(a)
    assert await b.version_vector() == {"node-a": 3}


async def test_a_tampered_event_is_refused_and_nothing_applies(two_journals) -> None:
    a, b = two_journals
    events = await write_products(a, "p1,2000001000014,Baguette,120,550,Pain\n")
    forged = dataclasses.replace(events[1], body={**events[1].body, "price": 1})
    with pytest.raises(ChainError, match="hash does not match its content"):
        await apply(b, [events[0], forged])
    assert await products(b) == []
    assert await b.version_vector() == {}


async def test_a_gap_is_refused(two_journals) -> None:
    a, b = two_journals
    events = await write_products(a, "p1,2000001000014,Baguette,120,550,Pain\n",
                                  "p2,2000002000013,Croissant,115,550,Viennoiserie\n")
    with pytest.raises(ChainGap, match="events after #0 are missing"):
        await apply(b, [events[2]])
    assert await products(b) == []


async def test_a_fork_of_a_known_event_is_refused(two_journals) -> None:
    a, b = two_journals
    events = await write_products(a, "p1,2000001000014,Baguette,120,550,Pain\n")
    await apply(b, events)
    other = Journal(a.path.with_name("fork.sqlite3"), origin="node-a", trust=identity("node-a"))
    await other.open()
    try:
        fork = await write_products(other, "p9,2000002000013,Croissant,115,550,Viennoiserie\n")
    finally:
        await other.close()
    with pytest.raises(ChainError, match="differs from the event held here"):
        await apply(b, fork)


async def test_a_failed_apply_leaves_the_rest_of_the_batch_alone(two_journals) -> None:
    a, b = two_journals
    events = await write_products(a, "p1,2000001000014,Baguette,120,550,Pain\n")
    forged = dataclasses.replace(events[0], hash="0" * 64)
    good, bad = b.write(lambda tx: [tx.apply(e) for e in events]), \
        b.write(lambda tx: tx.apply(forged))
    import asyncio

    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], ChainError) and results[1] == [True, True]
    assert len(await products(b)) == 1


async def test_two_nodes_pairing_a_till_at_once_keep_both(two_journals) -> None:
    a, b = two_journals
    tokens = []
    for journal in (a, b):  # each pairs its first till before hearing of the other
        tokens.append((await pair(journal, create_pairing_code(journal.path), "Caisse"))[0])
    from_a = [event async for event in a.events("node-a")]
    from_b = [event async for event in b.events("node-b")]
    await b.write(lambda tx: [tx.apply(event) for event in from_a])
    await a.write(lambda tx: [tx.apply(event) for event in from_b])
    codes = {}
    for journal in (a, b):
        codes[journal.origin] = [(await authenticate(journal, token))["code"] for token in tokens]
    assert codes["node-a"] == codes["node-b"]  # every node knows them the same way
    # Each code carries its pairing node, so they never clash and neither moves
    # (tests/test_till_codes.py has the rest: orders, repeats, upgrades, processes).
    assert codes["node-a"] == ["T01-node-a", "T01-node-b"]


async def test_no_commit_checkpoints_the_log_its_own_thread_does(journal: Journal) -> None:
    # A checkpoint inside a commit made the sale behind it wait up to half a second on a
    # million-product database (edge/journal/checkpoints.py).
    assert (await journal._in_writer(
        lambda: journal._writer_db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])) == 0
    for number in range(20):
        await journal.write(lambda tx, n=number: tx.append("product_delisted", {"id": f"p{n}"}))
    deadline = asyncio.get_running_loop().time() + 30
    while journal.checkpointer.checkpoints == 0:
        assert asyncio.get_running_loop().time() < deadline, "no checkpoint ran"
        await asyncio.sleep(0.05)
    # What it copied back is in the database file: read without the log, it is there.
    with sqlite3.connect(f"file:{journal.path}?mode=ro&immutable=1", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] >= 1


def wal_salts(path: Path) -> bytes:
    """The log's header salts: a writer that restarts the log (overwriting it from its
    first frame) changes them."""
    with open(f"{path}-wal", "rb") as wal:
        return wal.read(32)[16:24]


def sales_writer(path: Path) -> sqlite3.Connection:
    """A writer as the journal's: each commit synced, no checkpoint of its own."""
    writer = connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY)")
    return writer


async def test_the_log_is_not_overwritten_before_its_checkpoint_is_synced(
        tmp_path: Path) -> None:
    # The checkpoint copies the log into the file unsynced and syncs it afterwards, a
    # step at a time (edge/journal/checkpoints.py): until then the log is the only copy
    # a power cut would keep, so a commit meanwhile must not start it afresh.
    path = tmp_path / "journal.sqlite3"
    writer = sales_writer(path)
    checkpointer = Checkpointer(path)
    await checkpointer.open()
    writing_back, go_on = threading.Event(), threading.Event()
    write_back = checkpointer.write_back

    def held_write_back() -> None:
        writing_back.set()
        assert go_on.wait(10)
        write_back()

    checkpointer.write_back = held_write_back  # type: ignore[method-assign]
    try:
        writer.executemany("INSERT INTO sales VALUES (?)", [(n,) for n in range(5)])
        checkpoint = asyncio.create_task(checkpointer.checkpoint())
        assert await asyncio.get_running_loop().run_in_executor(None, writing_back.wait, 10)
        salts = wal_salts(path)
        # The log is wholly copied, and no reader is in it but the checkpoint's own.
        writer.executemany("INSERT INTO sales VALUES (?)", [(n,) for n in range(5, 10)])
        assert wal_salts(path) == salts
        go_on.set()
        await checkpoint
        checkpointer.write_back = write_back  # type: ignore[method-assign]
        await checkpointer.checkpoint()  # and the five committed meanwhile
        assert checkpointer.checkpoints == 2
        # All synced, and the log let go of: a commit starts it afresh, losing nothing.
        writer.execute("INSERT INTO sales VALUES (10)")
        assert wal_salts(path) != salts
        assert writer.execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 11
    finally:
        go_on.set()
        writer.close()
        await checkpointer.close()


async def test_a_failed_write_back_keeps_the_log_whole_until_the_node_restarts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A disk error in the sync: SQLite already counts the copied pages as in the file,
    # and Linux may have dropped them, so the log stays whole for the rest of the process
    # (never restarted, not deleted by the last connection's close), and the next open
    # reads it back whole (edge/journal/checkpoints.py).
    path = tmp_path / "journal.sqlite3"
    writer = sales_writer(path)
    checkpointer = Checkpointer(path)
    await checkpointer.open()

    def failing_write_back() -> None:
        raise OSError(5, "Input/output error")

    writer.executemany("INSERT INTO sales VALUES (?)", [(n,) for n in range(5)])
    write_back = checkpointer.write_back
    checkpointer.write_back = failing_write_back  # type: ignore[method-assign]
    await checkpointer.checkpoint()
    assert checkpointer.failed is not None and "restart the node" in checkpointer.failed
    assert "could not be written to disk" in caplog.text
    salts = wal_salts(path)
    checkpointer.write_back = write_back  # type: ignore[method-assign]
    for number in range(5, 8):  # a later write-back would "succeed": none is tried
        writer.execute("INSERT INTO sales VALUES (?)", (number,))
        await checkpointer.checkpoint()
    assert checkpointer.checkpoints == 0
    assert wal_salts(path) == salts
    await checkpointer.close()
    del checkpointer, write_back
    gc.collect()  # its connections gone too
    writer.close()  # the process's last connection: it would copy the log back and delete it
    assert wal_salts(path) == salts  # still there, whole
    # The restart: the log read back whole, copied again, all there.
    again = Checkpointer(path)
    await again.open()
    reader = connect(path)
    try:
        assert reader.execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 8
        await again.checkpoint()
        assert again.checkpoints == 1 and again.failed is None
    finally:
        reader.close()
        await again.close()


async def test_close_waits_for_a_job_on_its_own_connection(tmp_path: Path) -> None:
    # Closing the checkpointer's descriptor drops every POSIX lock this process holds on
    # the file: a job still reading on its own connection would lose its read lock.
    journal = Journal(tmp_path / "store.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    reading, finished = threading.Event(), threading.Event()

    def read_slowly() -> int:
        db = connect(journal.path)
        try:
            db.execute("BEGIN")
            count = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            reading.set()
            time.sleep(0.3)
            return count
        finally:
            db.close()
            finished.set()

    job = asyncio.ensure_future(journal.with_own_connection(read_slowly))
    await asyncio.to_thread(reading.wait, 5)
    await journal.close()
    assert finished.is_set()
    assert await job == 0
