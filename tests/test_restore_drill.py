"""The restore drill: a store restores, clones and loses data the ways stores really do.

Three nodes and head office sell and sync. Then, all on one day: node A is
restored from a backup taken several sales earlier; node C's data folder is
cloned onto a new box (both keep running); head office is restored from
yesterday's backup. Afterwards every sale a till heard "done" for is present
exactly once on every node and at head office, no receipt was printed as an
original twice and no drawer opened twice, every chain verifies, and
`edge status` tells store IT what happened.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

from conftest import EDGE, ROOT, EdgeProcess, free_port, start_all, store_node_config
from headoffice_support import CertificateAuthority, HeadOffice, wait_for
from test_peers import BARCODES, pair, wait_for_till

from edge.till_client import TillClient

STORE = "demo-boulangerie"


def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def rows(node: EdgeProcess, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def sale_ids(node: EdgeProcess) -> list[str]:
    return sorted(row[0] for row in rows(node, "SELECT id FROM sales"))


async def sell(node: EdgeProcess, token: str, cashier: str, pin: str, count: int) -> list[str]:
    async with TillClient([node.url], token, cashier, pin) as till:
        return [(await till.sell(BARCODES[:2], 1000))["id"] for _ in range(count)]


async def test_a_store_restores_clones_and_loses_head_office_and_nothing_is_lost_or_doubled(
    tmp_path: Path, ca: CertificateAuthority,
) -> None:
    headoffice_db = tmp_path / "headoffice" / "headoffice.sqlite3"
    headoffice_db.parent.mkdir()
    headoffice = HeadOffice(f"sqlite://{headoffice_db}", ca)
    server = await headoffice.start()
    token = await server.storage.add_store(STORE)
    ports = [free_port() for _ in range(4)]
    nodes: list[EdgeProcess] = []

    def made(name: str, port: int, data: Path | None = None) -> EdgeProcess:
        folder = tmp_path / name
        (folder / "headoffice.token").parent.mkdir(parents=True, exist_ok=True)
        (folder / "headoffice.token").write_text(token + "\n")
        peers = [f"http://127.0.0.1:{other}" for other in ports if other != port]
        config = store_node_config(folder, peers, more=(
            f'[headoffice]\nurl = "{headoffice.url}"\ntoken_file = "headoffice.token"\n'
            f'ca_file = "{ca.ca_file}"\npull_interval_seconds = 1\nretry_max_seconds = 2\n'))
        node = EdgeProcess(data or folder / "data", port, ["--config", str(config),
                                                           "--data", str(data or folder / "data")])
        nodes.append(node)
        return node

    def start(name: str, port: int, data: Path | None = None) -> EdgeProcess:
        node = made(name, port, data)
        node.start()
        return node

    sold: list[str] = []
    try:
        a, b, c = made("a", ports[0]), made("b", ports[1]), made("c", ports[2])
        start_all(a, b, c)
        on_a, on_b = await pair(a, "one"), await pair(b, "two")
        for node in (b, c):
            await wait_for_till(node, on_a)
        await wait_for_till(a, on_b)
        sold += await sell(a, on_a, "alice", "1234", 3)
        sold += await sell(b, on_b, "chloe", "2468", 3)

        async def at_headoffice(expected: list[str]) -> bool:
            return await server.storage.sale_ids(STORE) == sorted(expected)

        await wait_for(lambda: at_headoffice(sold), 60, "yesterday's sales at head office")
        await headoffice.stop()
        yesterday = tmp_path / "headoffice-backup"
        yesterday.mkdir()
        for file in headoffice_db.parent.glob(headoffice_db.name + "*"):
            shutil.copy2(file, yesterday / file.name)
        server = await headoffice.start()

        backup = tmp_path / "a-backup.sqlite3"
        assert edge("backup", "--data", str(a.data_dir), str(backup)).returncode == 0
        sold += await sell(a, on_a, "alice", "1234", 3)  # only after the backup
        sold += await sell(c, on_a, "alice", "1234", 2)
        await wait_for(lambda: at_headoffice(sold), 60, "today's sales at head office")

        # Node A dies and is restored from its backup.
        old_a = a.node_id
        a.kill()
        assert edge("restore", "--data", str(a.data_dir), str(backup)).returncode == 0
        a.start()
        # Node C's folder is cloned onto a new box; both run.
        c.stop()
        clone = tmp_path / "c-clone" / "data"
        shutil.copytree(c.data_dir, clone)
        c.start()
        c2 = start("c-clone", ports[3], clone)
        # Head office is restored from yesterday's backup.
        await headoffice.stop()
        for file in headoffice_db.parent.glob(headoffice_db.name + "*"):
            file.unlink()
        for file in yesterday.iterdir():
            shutil.copy2(file, headoffice_db.parent / file.name)
        server = await headoffice.start()

        # The store sells on, on every node, restored and cloned ones included.
        sold += await sell(a, on_a, "alice", "1234", 2)
        sold += await sell(c2, on_b, "chloe", "2468", 2)
        sold += await sell(c, on_b, "chloe", "2468", 1)

        live = [a, b, c, c2]
        assert len({node.node_id for node in live}) == 4 and old_a not in {n.node_id for n in live}

        async def everywhere() -> bool:
            return all(sale_ids(node) == sorted(sold) for node in live)

        await wait_for(everywhere, 90, "every sale on every node")
        await wait_for(lambda: at_headoffice(sold), 90, "every sale at head office again")
        assert len(sold) == len(set(sold))
        assert await server.storage.conflicts(STORE) == []

        def originals(node: EdgeProcess) -> Counter[str]:
            return Counter(row[0] for row in rows(node, """
                SELECT job.sale_id FROM events AS e JOIN print_jobs AS job
                  ON job.id = json_extract(e.body, '$.job_id')
                WHERE e.type = 'print_job_done' AND json_extract(e.body, '$.outcome') = 'done'
                  AND json_extract(e.body, '$.copy') = 'original'
                  AND json_extract(job.body, '$.kind') = 'receipt'"""))

        await wait_for(lambda: all(set(originals(node)) == set(sold) for node in live), 60,
                       "every sale's receipt printed, as every node records it")
        for node in live:
            # One original receipt and one drawer pulse per (cash) sale, store-wide.
            printed = originals(node)
            assert set(printed.values()) == {1}, f"a receipt printed twice: {printed}"
            drawers = Counter(row[0] for row in rows(node, """
                SELECT json_extract(body, '$.sale_id') FROM events
                WHERE type = 'drawer_opened' AND json_extract(body, '$.sale_id') IS NOT NULL"""))
            assert set(drawers.values()) == {1}, f"a drawer opened twice: {drawers}"
            verified = edge("verify", "--data", str(node.data_dir))
            assert verified.returncode == 0, verified.stdout
        assert edge("status", "--data", str(a.data_dir)).stdout.count(
            f"continues node {old_a}") == 1
        assert "copied to another folder" in edge("status", "--data", str(clone)).stdout
    finally:
        for node in nodes:
            node.stop()
        await headoffice.stop()
