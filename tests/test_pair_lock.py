"""`edge pair` never writes beside the process that owns the data folder.

It decides as `edge devices test` and `edge sync` do, by the folder's lock:
free, it takes the lock and writes the code itself; held, it asks the
running node (`POST /api/admin/pair`), and if that process does not answer
(`edge restore` mid-way, a node still starting) it changes nothing.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import aiohttp
from conftest import EDGE, ROOT, EdgeProcess, free_port
from signing_support import identity

from edge.journal.datafolder import FolderLock
from edge.journal.store import Journal


def store_config(folder: Path, port: int) -> Path:
    """A one-node store whose config names its port, as `edge pair --config` reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "edge.toml"
    config.write_text(f'[store]\nid = "demo-boulangerie"\ndemo = true\n'
                      f'[server]\nport = {port}\nadvertise = false\ndata = "data"\n')
    return config


def edge_pair(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGE, "pair", "--config", str(config), "--minutes", "5"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def pairing_codes(data_dir: Path) -> int:
    db = sqlite3.connect(f"file:{data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM pairing_codes").fetchone()[0]
    finally:
        db.close()


def code_of(output: str) -> str:
    return output.split("Pairing code: ", 1)[1].split()[0]


async def made_journal(data_dir: Path) -> None:
    journal = Journal(data_dir / "edge.sqlite3", trust=identity("pair-lock"))
    await journal.open()
    await journal.close()


async def test_pair_writes_nothing_to_a_folder_another_process_holds(tmp_path: Path) -> None:
    config = store_config(tmp_path, free_port())  # nothing listens there
    data_dir = tmp_path / "data"
    await made_journal(data_dir)
    lock = FolderLock(data_dir)
    lock.acquire("edge restore")  # as a restore in progress holds it
    try:
        refused = edge_pair(config)
    finally:
        lock.release()
    assert refused.returncode == 1, refused.stdout
    assert "Pairing code" not in refused.stdout
    assert pairing_codes(data_dir) == 0


async def test_pair_with_no_node_running_holds_the_folder_while_it_writes(
    tmp_path: Path,
) -> None:
    config = store_config(tmp_path, free_port())
    data_dir = tmp_path / "data"
    await made_journal(data_dir)
    made = edge_pair(config)
    assert made.returncode == 0, made.stderr
    assert "made by the running node" not in made.stdout
    assert pairing_codes(data_dir) == 1
    with FolderLock(data_dir):  # and let go of it after
        pass


async def test_pair_asks_the_running_node_for_the_code(tmp_path: Path) -> None:
    port = free_port()
    config = store_config(tmp_path, port)
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config), "--no-advertise"])
    node.start()
    try:
        made = edge_pair(config)
        assert made.returncode == 0, made.stderr
        assert "made by the running node" in made.stdout
        async with aiohttp.ClientSession() as session, session.post(
            f"{node.url}/api/pair", json={"code": code_of(made.stdout), "name": "Caisse"},
        ) as response:
            assert response.status == 200, await response.text()
    finally:
        node.stop()
