"""A till's code never moves: unique by construction, the same on every node, upgrades included.

Issue 8, point 7. A node that pairs a till before it caught up used to hand
out `T01` again, and "the smaller hash keeps it" renamed the established
till; after an upgrade, rows left with `event_hash = ''` won every tie, so
nodes disagreed on which till was `T01`.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import EdgeProcess, free_port, start_all, store_node_config
from signing_support import identity

from edge.api import commands  # noqa: F401  (registers projections through the modules)
from edge.journal.chain import Event
from edge.journal.migrations import MIGRATIONS
from edge.journal.store import Journal, Tx
from edge.selling.tills import authenticate, create_pairing_code, digest, pair
from edge.till_client import TillClient

BARCODES = ["2000001000014", "2000002000013"]
Tills = list[tuple[str, str]]  # (code, token digest), by code


async def tills_of(journal: Journal) -> Tills:
    rows = await journal.read_all("SELECT code, token_sha256 FROM tills ORDER BY code")
    return [(row["code"], row["token_sha256"]) for row in rows]


async def own_events(journal: Journal) -> list[Event]:
    return [event async for event in journal.events(journal.origin)]


async def apply(journal: Journal, events: list[Event]) -> None:
    await journal.write(lambda tx: [tx.apply(event) for event in events])


async def old_pairing(journal: Journal, code: str, name: str = "Caisse") -> tuple[str, Event]:
    """A `till_paired` event as edge wrote it before codes carried their node: plain `T01`."""
    token = f"token-{journal.origin}-{code}-{random.random()}"

    def work(tx: Tx) -> Event:
        return tx.append("till_paired", {"code": code, "name": name,
                                         "token_sha256": digest(token)})

    return digest(token), await journal.write(work)


@pytest.fixture
async def journals(tmp_path: Path) -> AsyncIterator[Any]:
    """Call with origins: bare journals (no node around them), closed at the end."""
    opened: list[Journal] = []

    async def make(*origins: str) -> list[Journal]:
        made = []
        for origin in origins:
            journal = Journal(tmp_path / f"{origin}-{len(opened)}.sqlite3", origin=origin,
                              trust=identity(origin))
            await journal.open()
            opened.append(journal)
            made.append(journal)
        return made

    yield make
    for journal in opened:
        await journal.close()


def interleavings(rng: random.Random, chains: list[list[Event]]) -> list[Event]:
    """One random order of several chains, each kept in its own order, with repeats."""
    cursors = [0] * len(chains)
    order: list[Event] = []
    while any(cursor < len(chain) for cursor, chain in zip(cursors, chains, strict=True)):
        pick = rng.choice([n for n, chain in enumerate(chains) if cursors[n] < len(chain)])
        order.append(chains[pick][cursors[pick]])
        cursors[pick] += 1
        if order and rng.random() < 0.3:
            order.append(rng.choice(order))  # a peer sends something twice
    return order


async def test_a_node_behind_never_renames_an_established_till(journals) -> None:
    """Node A's till is established; node B, not caught up, pairs one: nobody moves."""
    for trial in range(20):
        a, b = await journals("node-a", "node-b")
        token_p, till_p = await pair(a, create_pairing_code(a.path), "Comptoir")
        token_q, till_q = await pair(b, create_pairing_code(b.path), "Terrasse")
        assert till_p["code"] != till_q["code"], "two nodes that never met gave one code"
        assert till_p["code"].endswith("-node-a") and till_q["code"].endswith("-node-b")
        from_a, from_b = await own_events(a), await own_events(b)
        if trial % 2:  # both orders of learning of each other
            await apply(a, from_b)
            await apply(b, from_a)
        else:
            await apply(b, from_a)
            await apply(a, from_b)
        for journal in (a, b):
            assert (await authenticate(journal, token_p))["code"] == till_p["code"]
            assert (await authenticate(journal, token_q))["code"] == till_q["code"]
        assert await tills_of(a) == await tills_of(b)
        await a.close()
        await b.close()


async def test_codes_agree_whatever_order_and_repeats(journals) -> None:
    """Three origins pairing while cut apart, plus two old nodes' plain `T01`s, in any order."""
    a, b, c, old1, old2 = await journals("node-a", "node-b", "node-c", "old-1", "old-2")
    for journal in (a, b, c):
        for _ in range(2):
            await pair(journal, create_pairing_code(journal.path), "Caisse")
    await old_pairing(old1, "T01")
    await old_pairing(old2, "T01")
    await old_pairing(old2, "T02")
    chains = [await own_events(journal) for journal in (a, b, c, old1, old2)]
    seen: list[Tills] = []
    for trial in range(12):
        (fresh,) = await journals(f"fresh-{trial}")
        for event in interleavings(random.Random(trial), chains):
            await apply(fresh, [event])
        seen.append(await tills_of(fresh))
        await fresh.close()
    assert all(tills == seen[0] for tills in seen), "nodes disagree on till codes"
    codes = [code for code, _ in seen[0]]
    assert len(codes) == 9 and len(set(codes)) == 9
    # New codes stay as given; of the two old T01s, one keeps it, the other is marked.
    for journal in (a, b, c):
        for event in await own_events(journal):
            if event.type == "till_paired":  # after its origin's certificate
                assert (event.body["code"], event.body["token_sha256"]) in seen[0]
    assert {"T01", "T02"} <= set(codes)
    assert {"T01-old-1", "T01-old-2"} & set(codes)


async def test_a_node_numbers_after_every_till_it_knows_and_marks_its_own(journals) -> None:
    (a,) = await journals("node-a")
    await old_pairing(a, "T01")
    await old_pairing(a, "T02")
    (b,) = await journals("node-b")
    await old_pairing(b, "T01")  # an old clash, settled by hash
    await apply(a, await own_events(b))
    _, till = await pair(a, create_pairing_code(a.path), "Caisse")
    assert till["code"] == "T03-node-a"
    _, till = await pair(a, create_pairing_code(a.path), "Caisse")
    assert till["code"] == "T04-node-a"


# -- upgrades -----------------------------------------------------------------

def database_at(path: Path, version: int) -> sqlite3.Connection:
    """A database as edge left it at schema `version` (migrations run as that edge ran them)."""
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return conn


def put_events(conn: sqlite3.Connection, events: list[Event]) -> None:
    rows = [(e.origin, e.seq, e.id, e.time, e.type, canonical(e.body), e.prev_hash, e.hash)
            for e in events]
    with conn:  # the columns of those schemas (events had no signature then)
        conn.executemany("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, "
                         "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def canonical(body: dict[str, Any]) -> str:
    from edge.journal.chain import canonical_json

    return canonical_json(body).decode()


async def test_after_an_upgrade_every_node_agrees_and_keeps_its_tills(
        journals, tmp_path: Path) -> None:
    # What old edge wrote: node A and node B, cut apart, each paired a till
    # "T01"; joined, A paired "T02". Their events, hashed as they were.
    old_a, old_b = await journals("node-a", "node-b")
    p, p_event = await old_pairing(old_a, "T01", "Comptoir")
    q, q_event = await old_pairing(old_b, "T01", "Terrasse")
    await apply(old_a, await own_events(old_b))  # its certificate, then Q
    r, r_event = await old_pairing(old_a, "T02", "Bar")
    events = [p_event, q_event, r_event]
    keeper, marked = sorted([(p_event, p), (q_event, q)], key=lambda pair: pair[0].hash)
    settled = sorted([("T01", keeper[1]), (f"T01-{marked[0].origin}", marked[1]), ("T02", r)])
    nodes: dict[str, Path] = {}

    # Schema 7 (before migration 8): the second till of one code was dropped,
    # so A knows P as T01 and B knows Q as T01.
    for origin, first in (("node-a", p), ("node-b", q)):
        conn = database_at(tmp_path / f"{origin}.sqlite3", 7)
        put_events(conn, events)
        with conn:
            conn.executemany("INSERT INTO tills (code, name, token_sha256, paired_at) "
                             "VALUES (?, 'Caisse', ?, '2025-01-01T00:00:00Z')",
                             [("T01", first), ("T02", r)])
        conn.close()
        nodes[origin] = tmp_path / f"{origin}.sqlite3"
    # Schema 8, upgraded with P's row already there: '' was its hash and won the tie.
    conn = database_at(tmp_path / "node-c.sqlite3", 8)
    put_events(conn, events)
    with conn:
        conn.execute("INSERT INTO tills VALUES ('T01', 'Caisse', ?, '', '', '')", (p,))
        conn.execute("INSERT INTO tills VALUES ('T01-node-b', 'Caisse', ?, ?, ?, 'node-b')",
                     (q, q_event.time, q_event.hash))
        conn.execute("INSERT INTO tills VALUES ('T02', 'Caisse', ?, ?, ?, 'node-a')",
                     (r, r_event.time, r_event.hash))
    conn.close()
    nodes["node-c"] = tmp_path / "node-c.sqlite3"
    # Schema 8 done right (real hashes all along): it already holds the settled codes.
    conn = database_at(tmp_path / "node-d.sqlite3", 8)
    put_events(conn, events)
    with conn:
        for code, token in settled:
            event = next(e for e in events if e.body["token_sha256"] == token)
            conn.execute("INSERT INTO tills VALUES (?, 'Caisse', ?, ?, ?, ?)",
                         (code, token, event.time, event.hash, event.origin))
    conn.close()
    nodes["node-d"] = tmp_path / "node-d.sqlite3"

    for origin, path in nodes.items():
        journal = Journal(path, origin=origin, trust=identity(origin))
        await journal.open()
        try:
            assert await tills_of(journal) == settled, f"{origin} disagrees after the upgrade"
            assert [row["event_hash"] for row in await journal.read_all(
                "SELECT event_hash FROM tills")].count("") == 0
            # A late copy of an old event changes nothing; a new till gets a new number.
            await apply(journal, [q_event])
            assert await tills_of(journal) == settled
            _, till = await pair(journal, create_pairing_code(path), "Caisse")
            assert till["code"] == f"T03-{origin}"
        finally:
            await journal.close()


# -- real nodes ---------------------------------------------------------------

async def pair_over_http(node: EdgeProcess, name: str) -> tuple[str, str]:
    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    async with aiohttp.ClientSession() as session, session.post(
        f"{node.url}/api/pair", json={"code": code, "name": name}
    ) as response:
        assert response.status == 200, await response.text()
        paired = await response.json()
    return paired["token"], paired["till"]["code"]


async def code_at_auth(node: EdgeProcess, token: str) -> str | None:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{node.url}/api/ws") as ws:
        await ws.send_json({"id": 1, "type": "auth", "token": token})
        reply = await ws.receive_json()
    return reply["result"]["till"]["code"] if reply["success"] else None


async def test_tills_paired_on_nodes_cut_apart_keep_their_codes_once_joined(
        tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    folders = [tmp_path / "a", tmp_path / "b"]
    nodes = [EdgeProcess(folder / "data", port, ["--config", str(
        store_node_config(folder, []))]) for folder, port in zip(folders, ports, strict=True)]
    try:
        # Each node alone, never having heard of the other: each pairs a till,
        # and A's till sells (it is established: receipts, printer routing).
        start_all(*nodes)
        token_a, code_a = await pair_over_http(nodes[0], "un")
        token_b, code_b = await pair_over_http(nodes[1], "deux")
        assert code_a != code_b
        async with TillClient([nodes[0].url], token_a, "alice", "1234") as till:
            before = await till.sell(BARCODES, 1000)
        assert before["receipt_number"] == f"{code_a}-000001"
        for node in nodes:
            node.stop()
        # Joined: each lists the other.
        for number, folder in enumerate(folders):
            store_node_config(folder, [f"http://127.0.0.1:{ports[1 - number]}"])
        start_all(*nodes)
        for _ in range(200):
            if all([await code_at_auth(node, token) for node in nodes
                    for token in (token_a, token_b)]):
                break
            await asyncio.sleep(0.1)
        for node in nodes:
            assert await code_at_auth(node, token_a) == code_a
            assert await code_at_auth(node, token_b) == code_b
        async with TillClient([nodes[0].url], token_a, "alice", "1234") as till:
            after = await till.sell(BARCODES, 1000)
        assert after["receipt_number"] == f"{code_a}-000002"
    finally:
        for node in nodes:
            node.stop()
