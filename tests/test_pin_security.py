"""PINs: guessing is limited however it is tried, and the hashes give nothing away.

Issue 9 point 3: a cashier who knows her own PIN could reset the till's
count between guesses at the manager's; 200 parallel tries all passed one
window; PIN hashes (PBKDF2 alone) went to head office and cracked offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import EdgeProcess, NodeUnderTest, Till, node_of
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for

from edge.journal.chain import content_matches_hash, withheld
from edge.journal.store import Journal
from edge.messages import TOO_MANY_ATTEMPTS, EdgeError
from edge.selling.logins import LoginThrottle
from edge.selling.staff import hash_pin, keyed_pin_hash, pin_key
from edge.selling.tills import create_pairing_code

MANAGER_PIN = "567890"


async def _pair(session: aiohttp.ClientSession, url: str, data_dir: Path) -> str:
    code = create_pairing_code(data_dir / "edge.sqlite3")
    async with session.post(f"{url}/api/pair", json={"code": code, "name": "T"}) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["token"]


def _tries(codes: list[str]) -> int:
    """Attempts whose PIN was actually checked (right or wrong), not refused unchecked."""
    return sum(code in ("invalid_pin", "ok") for code in codes)


async def _login_code(till: Till, cashier: str, pin: str) -> str:
    reply = await till.reply("login", cashier_id=cashier, pin=pin)
    return "ok" if reply["success"] else reply["error"]["code"]


async def test_a_cashier_logging_in_between_guesses_does_not_reset_the_managers_count(
    node: NodeUnderTest,
) -> None:
    async with node.till(cashier=None) as till:
        guesses = []
        for guess in range(20):
            assert await _login_code(till, "alice", "1234") == "ok"  # she knows hers
            guesses.append(await _login_code(till, "bruno", f"{guess:06d}"))
        assert _tries(guesses) == 5
        assert guesses[5:] == ["too_many_attempts"] * 15
        # Locked means locked: the right PIN is not even checked in the window.
        assert await _login_code(till, "bruno", MANAGER_PIN) == "too_many_attempts"
        assert await _login_code(till, "alice", "1234") == "ok"  # her own count is hers
    [lock] = await node_of(node).journal.read_all(
        "SELECT body FROM events WHERE type = 'login_locked'")
    audit = json.loads(lock["body"])
    assert (audit["scope"], audit["subject"], audit["failures"], audit["seconds"]) == (
        "cashier", "bruno", 5, 30)


async def test_200_parallel_logins_get_at_most_5_tries(edge_process: EdgeProcess) -> None:
    edge_process.start()
    url = edge_process.url
    # From 8 loopback addresses, 25 each: a node takes only so many from one address.
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        local_addr=(f"127.0.0.{10 + n}", 0), limit=0)) for n in range(8)]
    async with contextlib.AsyncExitStack() as stack:
        for session in sessions:
            await stack.enter_async_context(session)
        tokens = [await _pair(sessions[0], url, edge_process.data_dir) for _ in range(4)]
        sockets = [await sessions[n % 8].ws_connect(f"{url}/api/ws") for n in range(200)]
        try:
            tills = [Till(ws) for ws in sockets]
            for number, till in enumerate(tills):
                await till.call("auth", token=tokens[number % len(tokens)])

            async def guess(till: Till, number: int) -> str:
                return await _login_code(till, "bruno", f"{number:06d}")

            codes = await asyncio.gather(*(guess(t, n) for n, t in enumerate(tills)))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    assert len(codes) == 200
    assert _tries(codes) <= 5, codes.count("invalid_pin")
    assert set(codes) == {"invalid_pin", "too_many_attempts"}


async def test_a_lock_holds_on_every_node_of_the_store(store_nodes: Any) -> None:
    """Another node is no way round it: the lock is journaled and replicates."""
    a, b = store_nodes(2)
    async with aiohttp.ClientSession() as session:
        token = await _pair(session, a.url, a.data_dir)
        async with session.ws_connect(f"{a.url}/api/ws") as ws_a, \
                session.ws_connect(f"{b.url}/api/ws") as ws_b:
            on_a, on_b = Till(ws_a), Till(ws_b)
            await on_a.call("auth", token=token)

            async def auth_b() -> bool:
                return (await on_b.reply("auth", token=token))["success"]

            await wait_for(auth_b, 20, "the till known on b")
            codes = [await _login_code(on_a, "bruno", f"{n:06d}") for n in range(6)]
            assert codes == ["invalid_pin"] * 5 + ["too_many_attempts"]

            async def locked_on_b() -> bool:
                code = await _login_code(on_b, "bruno", MANAGER_PIN)  # the right PIN
                assert code in ("ok", "too_many_attempts")
                if code == "ok":
                    await on_b.call("logout")
                return code == "too_many_attempts"

            await wait_for(locked_on_b, 20, "the lock to reach b")


def test_locks_double_and_a_till_count_only_leaks() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])

    def fail(cashier: str | None, till: str = "T01") -> list[Any]:
        return throttle.failed(throttle.reserve(till, cashier))

    for _ in range(4):
        assert fail("bruno") == []
    [lock] = fail("bruno")
    assert (lock.scope, lock.subject, lock.seconds) == ("cashier", "bruno", 30)
    with pytest.raises(EdgeError) as refused:
        throttle.reserve("T02", "bruno")  # on any till
    assert refused.value.code == TOO_MANY_ATTEMPTS
    now[0] += 31
    for _ in range(4):
        assert fail("bruno", "T02") == []
    [lock] = fail("bruno", "T02")
    assert lock.seconds == 60  # the next lock lasts twice as long
    # A till's count: five wrong PINs for unknown cashiers, five right ones: no reset.
    for _ in range(5):
        throttle.succeeded(throttle.reserve("T03", "alice"))
        assert fail(None, "T03") == []
    for _ in range(4):
        assert fail(None, "T03") == []
    [lock] = fail(None, "T03")
    assert (lock.scope, lock.subject) == ("till", "T03")
    # Nine wrong PINs, then ten quiet minutes: two of them leaked away, so the till
    # locks at the third wrong PIN, not the first.
    for _ in range(9):
        assert fail(None, "T04") == []
    now[0] += 600
    assert fail(None, "T04") == [] and fail(None, "T04") == []
    [lock] = fail(None, "T04")
    assert (lock.scope, lock.subject, lock.seconds) == ("till", "T04", 30)


async def test_a_pin_hash_needs_the_store_key_and_old_ones_still_log_in(
    node: NodeUnderTest,
) -> None:
    journal = node_of(node).journal
    row = await journal.read_one(
        "SELECT body FROM events WHERE type = 'cashier_added' AND body LIKE '%\"alice\"%'")
    secret = json.loads(row["body"])["secret"]
    salt = secret["pin_salt"]
    # What a journal alone gives: PBKDF2 over 10^4 PINs finds nothing.
    assert secret["pin_hash"] != hash_pin("1234", salt)
    assert secret["pin_hash"] == keyed_pin_hash(pin_key(node_of(node).config), "1234", salt)
    assert "pin_hash" not in withheld(json.loads(row["body"]))["secret"]

    # A cashier written before keyed PINs (PBKDF2 alone) still logs in.
    legacy = {"id": "dora", "name": "Dora", "role": "cashier",
              "pin_salt": "ab" * 16, "pin_hash": hash_pin("4321", "ab" * 16)}
    await journal.write(lambda tx: tx.append("cashier_added", legacy))
    async with node.till(cashier="dora", pin="4321") as till:
        assert (await till.call("basket/get")) is None
        assert await _login_code(till, "dora", "1111") == "invalid_pin"


async def test_head_office_gets_no_pin_hash_and_still_checks_every_chain(
    tmp_path: Path, ca: CertificateAuthority,
) -> None:
    database = tmp_path / "headoffice.sqlite3"
    headoffice = HeadOffice(f"sqlite://{database}", ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store("demo-boulangerie")
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as node:
            edge_node = node_of(node)
            journal: Journal = edge_node.journal
            rows = await journal.read_all(
                "SELECT body FROM events WHERE type = 'cashier_added'")
            hashes = [json.loads(row["body"])["secret"]["pin_hash"] for row in rows]
            assert len(hashes) == 3
            total = (await journal.read_one("SELECT COUNT(*) AS n FROM events"))["n"]

            async def all_there() -> bool:
                return len(await server.storage.events("demo-boulangerie")) >= total

            await wait_for(all_there, 30, "every event at head office")
            received = await server.storage.events("demo-boulangerie")
            assert await server.storage.conflicts("demo-boulangerie") == []
            assert all(content_matches_hash(event) for event in received)
            cashiers = [e for e in received if e.type == "cashier_added"]
            assert len(cashiers) == 3
            assert all(isinstance(e.body["secret"], str) and "pin_hash" not in e.body
                       for e in cashiers)
    finally:
        await headoffice.stop()
    # Nowhere in head office's database, whatever its table.
    stored = database.read_bytes()
    wal = database.with_name(database.name + "-wal")
    stored += wal.read_bytes() if wal.exists() else b""
    assert not any(pin_hash.encode() in stored for pin_hash in hashes)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE type = 'cashier_added'"
                          ).fetchone()[0] == 3

