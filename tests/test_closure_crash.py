"""`edge close` for real: killed (kill -9) at any moment of a closure, it leaves no
closure or one, never half (issue 11, acceptance 4); through a running node, and
`closure/close` from a manager's till.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import EDGE, ROOT, CommandFailed, EdgeProcess, NodeUnderTest, free_port
from test_fiscal_totals import sale_body

from edge.journal.datafolder import LOCK_FILE
from edge.journal.store import local_journal
from edge.journal.verify import verify_journal
from edge.trust.certificates import load_cert
from edge.trust.folder import CA_CERT, TrustFolder

STORE = "demo-boulangerie"
SALES = 3000


def closures(database: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT kind, period FROM closures ORDER BY period").fetchall()
    finally:
        db.close()


def _store_folder(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data folder with SALES sales recorded on 2024-12-30 by its own node."""
    TrustFolder(data).init_store(STORE, "demo-crash", ["localhost"], ["127.0.0.1"])
    clock = iter(f"2024-12-30T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z" for n in range(10**6))
    monkeypatch.setattr("edge.journal.chain.utc_now", lambda: next(clock))

    async def record() -> None:
        async with local_journal(data, data / "edge.sqlite3", "test") as journal:
            for start in range(0, SALES, 500):
                await journal.write(lambda tx, start=start: [
                    tx.append("sale_completed", sale_body(f"s{n}@T01", [(150, 2, 550)], "card",
                                                          n + 1))
                    for n in range(start, start + 500)])

    asyncio.run(record())
    monkeypatch.undo()


def edge_close(data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*EDGE, "close", "--data", str(data), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_the_lock(data: Path, closing: subprocess.Popen[str]) -> float:
    """The moment `edge close` took the data folder (it closes from then on)."""
    lock = data / LOCK_FILE
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and closing.poll() is None:
        if lock.read_text(errors="replace").startswith(f"pid {closing.pid},"):
            return time.monotonic()
        time.sleep(0.001)
    return time.monotonic()


def test_kill_9_during_a_closure_leaves_none_or_one_never_half(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    _store_folder(data, monkeypatch)
    database = data / "edge.sqlite3"
    whole = edge_close(data, "--day", "2024-12-29")  # the store's first: empty, timed
    locked = wait_for_the_lock(data, whole)
    out, err = whole.communicate(timeout=60)
    window = time.monotonic() - locked  # from the lock to the end: the closure's moments
    assert whole.returncode == 0, err
    assert "Day 2024-12-29 closed: Z n°1, 0 sale(s)" in out
    chance = random.Random(11)
    kills = 0
    while not closures(database)[1:] and kills < 8:
        closing = edge_close(data, "--day")
        wait_for_the_lock(data, closing)
        time.sleep(chance.uniform(0, 1.2 * window))
        if closing.poll() is None:
            os.kill(closing.pid, signal.SIGKILL)
            kills += 1
        closing.communicate(timeout=30)
        assert closures(database).count(("day", "2024-12-30")) <= 1
    assert kills >= 1  # a closure was killed while it ran, at least once
    if not closures(database)[1:]:
        done = edge_close(data, "--day")
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
    assert closures(database) == [("day", "2024-12-29"), ("day", "2024-12-30")]
    db = sqlite3.connect(database)
    try:
        (body,) = db.execute("SELECT body FROM closures WHERE period = '2024-12-30'").fetchone()
        ca = load_cert((data / "tls" / CA_CERT).read_bytes())
        checked = verify_journal(db, ca, STORE)
    finally:
        db.close()
    assert checked.problems == []
    assert orjson.loads(body)["totals"]["net"]["count"] == SALES
    again = edge_close(data, "--day", "2024-12-30")
    _, err = again.communicate(timeout=60)
    assert again.returncode == 1 and "the day 2024-12-30 is already closed (Z n°2)" in err


def test_a_manager_closes_the_day_from_the_till_and_store_it_through_the_node(
        tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(f'[store]\nid = "{STORE}"\ndemo = true\n'
                      f'[server]\nport = {port}\nadvertise = false\ndata = "data"\n')
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config)])
    node.start()
    try:
        closure = asyncio.run(_at_the_till(node))
        done = subprocess.run([*EDGE, "close", "--config", str(config), "--day"],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 1  # the node answers: today is not over
        assert "Not closed: The node refused: nothing to close: the day " in done.stderr
        deadline = time.monotonic() + 15
        printed = ""
        while "Z journalier" not in printed and time.monotonic() < deadline:
            time.sleep(0.1)
            printed = "".join(path.read_text(errors="replace") for path in
                              (tmp_path / "data" / "printer").glob("*.txt"))
        assert "Z n°" in printed and "Grand total absolu" in printed
        assert closure["period"] in printed and closure["hash"][:16] in printed
    finally:
        node.stop()


async def _at_the_till(node: EdgeProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        store = NodeUnderTest(node.url, node.data_dir, session)
        token = await store.pair()
        async with store.till(token) as cashier:
            with pytest.raises(CommandFailed) as refused:
                await cashier.call("closure/close", kind="day")
            assert refused.value.code == "manager_required"
        async with store.till(token, cashier="bruno", pin="567890") as manager:
            closure: dict[str, Any] = await manager.call("closure/close", kind="day")
            assert (closure["number"], closure["made_by"], closure["superseded"]) == \
                (1, "bruno", False)
            assert closure["print"]["printer"] == "receipt"
            with pytest.raises(CommandFailed) as refused:
                await manager.call("closure/close", kind="day")  # today is not over
            assert refused.value.code == "nothing_to_close"
            listed: dict[str, Any] = await manager.call("closure/list", kind="day")
            assert [shown["hash"] for shown in listed["closures"]] == [closure["hash"]]
            return closure
