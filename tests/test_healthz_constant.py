"""/healthz, /metrics and `edge status` read a kept head-office backlog, never a scan.

The backlog (events head office has not acknowledged, and the oldest of
them) is counted in memory (edge/sync/backlog.py). These tests hold it to a
plain count of the journal: through commits heard late, cursor moves in any
order (head office restored, rounds overlapping), sales, peers' events, a
sync, a restart and a kill -9; and they check that what /healthz and
/metrics run costs as much on a journal ten times longer.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from conftest import EdgeProcess, NodeUnderTest, free_port, node_of, store_node_config
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for
from test_sync_outage import sell_in_bulk

from edge.journal.chain import Event
from edge.journal.migrations import migrate
from edge.sync.backlog import Backlog, unsent
from edge.till_client import TillClient

STORE = "demo-boulangerie"
BAGUETTE, CROISSANT = "2000001000014", "2000002000013"


def scanned(db: sqlite3.Connection) -> tuple[int, str | None]:
    """The backlog as it is by definition: every event past the cursor but head office's."""
    (cursor,) = db.execute("SELECT acknowledged_position FROM headoffice_sync").fetchone()
    times = [time for (time,) in db.execute(
        "SELECT time FROM events WHERE position > ? AND origin NOT GLOB 'headoffice-*'",
        (cursor,))]
    return len(times), min(times, key=datetime.fromisoformat) if times else None


# The count itself, against a journal file: every order of commits, listeners and moves

def test_the_kept_backlog_is_the_count_of_the_journal_whatever_the_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    migrate(writer)
    reader = sqlite3.connect(path, isolation_level=None)
    rng = random.Random(20261125)
    # Three nodes' clocks (one behind, one writing +01:00), and head office's catalogue.
    skews = {"n1": (0, "Z"), "n2": (-1800, "Z"), "n3": (600, "+01:00"),
             "headoffice-0a1b2c": (0, "Z")}
    seqs = dict.fromkeys(skews, 0)
    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    backlog = Backlog()
    backlog.follow(reader)
    unheard: list[Event] = []  # committed, the listener not called yet
    checked = 0
    for step in range(600):
        roll = rng.random()
        if roll < 0.45:  # a commit of a few events, of any origins
            batch = []
            for _ in range(rng.randint(1, 6)):
                origin = rng.choice(list(skews))
                seqs[origin] += 1
                skew, zone = skews[origin]
                moment = start + timedelta(seconds=step * 10 + skew)
                if zone != "Z":
                    moment = moment.astimezone(datetime.fromisoformat(f"2026-01-01T00:00{zone}")
                                               .tzinfo)
                time = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                batch.append(Event(origin, seqs[origin], f"{origin}-{seqs[origin]}", time,
                                   "sale_completed", {}, "", "", ""))
            writer.execute("BEGIN")
            writer.executemany(
                "INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, sig) "
                "VALUES (?, ?, ?, ?, ?, '{}', '', '', '')",
                [(e.origin, e.seq, e.id, e.time, e.type) for e in batch])
            writer.execute("COMMIT")
            unheard += batch
            if rng.random() < 0.6:
                backlog.committed(unheard)
                unheard = []
        elif roll < 0.55:
            backlog.committed(unheard)
            unheard = []
        else:  # head office acknowledged further, or lost events (restored): any order
            (last,) = writer.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
            (cursor,) = writer.execute(
                "SELECT acknowledged_position FROM headoffice_sync").fetchone()
            cursor = (rng.randint(cursor, last) if rng.random() < 0.7
                      else rng.randint(0, max(cursor, 0)))
            writer.execute("UPDATE headoffice_sync SET acknowledged_position = ?", (cursor,))
            backlog.follow(reader)
        if not unheard:
            assert backlog.count() == scanned(writer), f"step {step}"
            checked += 1
    backlog.committed(unheard)
    assert backlog.count() == scanned(writer)
    assert checked > 300 and backlog.count()[0] > 0
    # `edge status` reads the file the same way, with no node running.
    assert unsent(reader) == scanned(writer)
    writer.close()
    reader.close()


# A store node: sales, a peer's events, a sync, a restart, a kill -9

def headoffice_config(folder: Path, peers: list[str], headoffice_url: str, token: str,
                      ca: CertificateAuthority) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "headoffice.token").write_text(token + "\n")
    return store_node_config(folder, peers, more=(
        f'[headoffice]\nurl = "{headoffice_url}"\ntoken_file = "headoffice.token"\n'
        f'ca_file = "{ca.ca_file}"\nretry_max_seconds = 1\n'))


async def sell(node: EdgeProcess, session: aiohttp.ClientSession, sales: int,
               kill_after: bool = False) -> None:
    token = await NodeUnderTest(node.url, node.data_dir, session).pair()
    async with TillClient([node.url], token, "alice", "1234", timeout=10) as till:
        for _ in range(sales):
            await till.sell([BAGUETTE, CROISSANT], 1000)
        if kill_after:  # right after the last acknowledgement: whatever was in memory is gone
            node.kill()


async def as_shown(node: EdgeProcess, session: aiohttp.ClientSession) -> list[Any]:
    async with session.get(f"{node.url}/healthz") as response:
        office = (await response.json())["headoffice"]
    async with session.get(f"{node.url}/metrics") as response:
        gauge = next(line for line in (await response.text()).splitlines()
                     if line.startswith("edge_headoffice_backlog_events "))
    return [office["backlog_events"], office["oldest_unsent"], int(gauge.split()[1])]


async def shows_the_journal(node: EdgeProcess, session: aiohttp.ClientSession, what: str,
                            until: Any = lambda count: True) -> int:
    """Wait until /healthz, /metrics and `edge status` all give the journal's own count
    (and that count is `until` one)."""
    database = f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro"
    seen: list[Any] = []

    async def same() -> bool:
        shown = await as_shown(node, session)
        with sqlite3.connect(database, uri=True) as db:
            count, oldest = scanned(db)
            seen[:] = [shown, count, oldest]
            return (shown == [count, oldest, count] and unsent(db) == (count, oldest)
                    and until(count))

    try:
        await wait_for(same, 15, what)
    except AssertionError:
        raise AssertionError(f"{what}: shown {seen[0]}, journal {seen[1:]}") from None
    return seen[1]


def held(node: EdgeProcess, origin: str) -> int:
    with sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT last_seq FROM origins WHERE origin = ?", (origin,)).fetchone()
    return row[0] if row else 0


async def replicated(source: EdgeProcess, target: EdgeProcess) -> None:
    """Wait until `target` holds every event `source` wrote."""
    await wait_for(lambda: held(target, source.node_id) == held(source, source.node_id), 15,
                   "the peer's events to arrive")


async def test_healthz_counts_exactly_through_sales_peers_sync_restart_and_kill(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(f"sqlite://{tmp_path / 'headoffice.sqlite3'}", ca)
    storage = await headoffice.open_storage()
    token = await storage.add_store(STORE, "Boulangerie du Marché")
    await storage.close()  # down until the sync below
    port_a, port_b = free_port(), free_port()
    a = EdgeProcess(tmp_path / "a" / "data", port_a, ["--config", str(headoffice_config(
        tmp_path / "a", [f"http://127.0.0.1:{port_b}"], headoffice.url, token, ca))])
    b = EdgeProcess(tmp_path / "b" / "data", port_b, ["--config", str(store_node_config(
        tmp_path / "b", [f"http://127.0.0.1:{port_a}"]))])
    async with aiohttp.ClientSession() as session:
        try:
            a.start()
            b.start()
            await sell(a, session, 2)
            await sell(b, session, 2)  # reaches A from its peer: A pushes it too
            await replicated(b, a)
            first = await shows_the_journal(a, session, "sales and a peer's sales")
            assert first > 0

            await headoffice.start()
            try:
                await shows_the_journal(a, session, "after a sync", lambda count: count == 0)
            finally:
                await headoffice.stop()

            await sell(a, session, 1)
            await sell(b, session, 1)
            await replicated(b, a)
            waiting = await shows_the_journal(a, session, "sales after the sync")
            a.stop()
            await sell(b, session, 1)  # while A is away
            a.start()
            await replicated(b, a)
            waiting = await shows_the_journal(a, session, "after a restart (and B's sale)",
                                              lambda count: count > waiting)

            await sell(a, session, 1, kill_after=True)
            await sell(b, session, 1)
            a.start()
            await replicated(b, a)
            await shows_the_journal(a, session, "after a kill -9 (and B's sale)",
                                    lambda count: count > waiting + 3)
        finally:
            a.stop()
            b.stop()


# What /healthz and /metrics cost does not grow with the journal

async def vm_steps(node: NodeUnderTest, calls: int = 10) -> int:
    """SQLite VM steps (progress handler calls) on the node's read connections over
    `calls` /healthz and /metrics; the least of three tries (anything else running only
    adds)."""
    served = node_of(node)
    counted = [0]

    def step() -> int:
        counted[0] += 1
        return 0

    connections = [served.journal._reader_db, served.sync._reader]
    tries = []
    for _ in range(3):
        counted[0] = 0
        await connections[0].set_progress_handler(step, 1)
        connections[1].set_progress_handler(step, 1)
        try:
            for _ in range(calls):
                for path in ("/healthz", "/metrics"):
                    async with node.session.get(f"{node.url}{path}") as response:
                        assert response.status == 200
        finally:
            await connections[0].set_progress_handler(None, 1)
            connections[1].set_progress_handler(None, 1)
        tries.append(counted[0])
    return min(tries)


async def test_healthz_and_metrics_cost_the_same_on_a_journal_ten_times_longer(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    nobody = f"https://127.0.0.1:{free_port()}"  # head office unreachable: all of it waits
    noon = datetime(2026, 11, 25, 12, 0)  # outside the nightly window: sync stays quiet
    async with store_node(tmp_path / "n", nobody, "token", ca, clock=lambda: noon,
                          continuous=False) as node:
        journal = node_of(node).journal
        await sell_in_bulk(journal, ["T11"], 1_000)
        small_backlog = (await as_json(node))["backlog_events"]
        small = await vm_steps(node)
        await sell_in_bulk(journal, ["T12"], 9_000)
        large_backlog = (await as_json(node))["backlog_events"]
        large = await vm_steps(node)
        assert large_backlog == small_backlog + 9_000
        # A scan of the backlog would take ten times the steps; a few index reads, no more.
        assert large <= small * 1.1 + 50, (small, large)


async def as_json(node: NodeUnderTest) -> dict[str, Any]:
    async with node.session.get(f"{node.url}/healthz") as response:
        return (await response.json())["headoffice"]


def steps_of(db: sqlite3.Connection, read: Callable[[], Any]) -> tuple[Any, int]:
    """What `read` returns, and the SQLite VM steps it took on `db`."""
    counted = 0

    def step() -> int:
        nonlocal counted
        counted += 1
        return 0

    db.set_progress_handler(step, 1)
    try:
        return read(), counted
    finally:
        db.set_progress_handler(None, 1)


def test_edge_status_reads_the_backlog_from_the_file_in_steps_that_barely_grow(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    steps = []
    for total in (2_000, 20_000):
        (held,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, sig) "
            "VALUES (?, ?, ?, '2026-11-25T08:00:00.000Z', 'sale_completed', '{}', '', '', '')",
            [(origin, n // 2 + 1, f"{origin}-{n}") for n in range(held, total)
             for origin in ("n1", "n2") if n % 2 == (origin == "n2")])
        db.execute("UPDATE headoffice_sync SET acknowledged_position = ?", (total // 3,))
        db.execute("COMMIT")
        read, taken = steps_of(db, lambda: unsent(db))
        assert read == scanned(db)
        steps.append(taken)
    # A binary search per origin: log2(10) ≈ 3.3 more probes each, never 10x.
    assert steps[1] < steps[0] * 1.5, steps
    db.close()


def test_every_edge_status_section_reads_in_steps_that_barely_grow_and_counts_right(
    tmp_path: Path,
) -> None:
    """`edge status` as a whole: the node's event count and each peer's last event come
    from the kept heads (a COUNT(*) and a per-origin MAX read every event)."""
    from edge.config import Config
    from edge.status import SECTIONS

    config = Config(data_dir=tmp_path)
    db = sqlite3.connect(config.database, isolation_level=None)
    migrate(db)
    db.row_factory = sqlite3.Row
    steps = []
    for total in (2_000, 20_000):
        (held,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash, sig) "
            "VALUES (?, ?, ?, ?, 'sale_completed', '{}', '', '', '')",
            [(origin, n // 2 + 1, f"{origin}-{n}", f"2026-11-25T08:00:{n % 60:02d}.000Z")
             for n in range(held, total) for origin in ("n1", "n2") if n % 2 == (origin == "n2")])
        db.execute("COMMIT")
        status, taken = steps_of(
            db, lambda: {name: function(config, db) for name, function in SECTIONS.items()})
        steps.append(taken)
        assert status["node"]["journal_events"] == total
        assert status["node"]["origins"] == 2
        last = db.execute("SELECT seq, time FROM events WHERE origin = 'n2' "
                          "ORDER BY seq DESC LIMIT 1").fetchone()
        assert status["peers"]["n2"] == f"last event #{last['seq']} at {last['time']}"
    assert steps[1] < steps[0] * 1.5, steps
    db.close()
