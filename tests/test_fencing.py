"""One writer per origin, ever: a locked data folder, restored and copied folders, clashes.

A data folder belongs to one process. A journal restored from a backup, or a
folder copied to another place, continues under a new origin that names the
one it continues, so no sequence number is ever written twice; and a second
writer on the journal file is fatal, never acknowledged.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import EDGE, ROOT, EdgeProcess, NodeUnderTest, free_port, node_of
from signing_support import identity
from test_peers import BARCODES, converged, pair, sales_of, wait_for_till

from edge.config import Config
from edge.devices.device_admin import _test as devices_test
from edge.journal.chain import ChainHead, canonical_json
from edge.journal.signing import SignatureRefused, sign
from edge.journal.store import Journal, JournalStopped
from edge.journal.tx import OwnOriginSeen
from edge.till_client import TillClient

KEY = identity("fencing")  # what bare journals here sign with


def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def events_of(data_dir: Path, type_: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT origin, seq, body FROM events WHERE type = ? ORDER BY position",
                          (type_,)).fetchall()
    finally:
        db.close()


def test_a_second_node_on_the_same_data_folder_stops_and_names_the_holder(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    second = EdgeProcess(edge_process.data_dir, free_port(), ["--no-advertise"],
                         log=edge_process.data_dir.parent / "second.log")
    with pytest.raises(RuntimeError) as exited:
        second.start()
    assert second.proc is not None and second.proc.returncode == 1
    assert f"in use by another edge process (pid {edge_process.proc.pid}" in str(exited.value)
    assert edge("verify", "--data", str(edge_process.data_dir)).returncode == 0


async def test_a_second_writer_on_the_journal_is_fatal_and_never_acknowledged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "edge.sqlite3"
    journal = Journal(path, trust=KEY)
    await journal.open()
    origin = journal.origin
    try:
        first = await journal.write(lambda tx: tx.append("product_delisted", {"id": "n1"}))
        # Behind the journal's back, another process appends the next event of its origin.
        intruder = ChainHead(first.seq, first.hash).next(origin, "product_delisted", {"id": "x"})
        other = sqlite3.connect(path)
        with other:
            other.execute(
                "INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (origin, intruder.seq, intruder.id, intruder.time, intruder.type,
                 canonical_json(intruder.body).decode(), intruder.prev_hash, intruder.hash))
        other.close()
        with pytest.raises(JournalStopped):
            await journal.write(lambda tx: tx.append("product_delisted", {"id": "n2"}))
        assert journal.stopped
        with pytest.raises(JournalStopped):  # and nothing after it either
            await journal.write(lambda tx: tx.append("product_delisted", {"id": "n3"}))
    finally:
        await journal.close()
    reopened = Journal(path, trust=KEY)
    await reopened.open()
    try:
        assert reopened.origin != origin
        assert reopened.rotation is not None
        assert reopened.rotation["reason"] == "origin_clash"
        assert reopened.rotation["predecessor"] == origin
        assert reopened.rotation["cut"] == {"seq": 3, "hash": intruder.hash}
        await reopened.write(lambda tx: tx.append("product_delisted", {"id": "n4"}))
    finally:
        await reopened.close()


async def test_devices_test_asks_the_node_holding_the_folder_even_if_its_health_was_slow(
    node: NodeUnderTest,
) -> None:
    config = Config(data_dir=node.data_dir, advertise=False,
                    port=int(node.url.rsplit(":", 1)[1]))
    printer = config.all_printers()[0]
    # As if the health probe had timed out: the command must still not write beside the node.
    assert await asyncio.to_thread(devices_test, config, printer, None, None) == 0
    rows = await node_of(node).journal.read_all(
        "SELECT body FROM events WHERE type = 'print_requested'")
    assert any('"kind":"test"' in row["body"] for row in rows)
    assert edge("verify", "--data", str(node.data_dir)).returncode == 0


async def sell(node: EdgeProcess, token: str, count: int) -> list[dict]:
    async with TillClient([node.url], token, "alice", "1234") as till:
        return [await till.sell(BARCODES[:2], 1000) for _ in range(count)]


async def test_a_restored_node_and_a_copied_folder_each_continue_under_a_new_origin(
    store_nodes, tmp_path: Path,
) -> None:
    a, b = store_nodes(2)
    token = await pair(a, "one")
    await wait_for_till(b, token)
    sold = await sell(a, token, 3)
    backup = tmp_path / "backup.sqlite3"
    made = edge("backup", "--data", str(a.data_dir), str(backup))
    assert made.returncode == 0, made.stderr
    assert "every chain verified" in made.stdout
    sold += await sell(a, token, 3)  # sold after the backup: only A and B hold these
    await converged([a, b])
    before = a.node_id
    printed_before = (a.data_dir / "printer" / "receipts.txt").read_text().count("TOTAL")

    a.kill()
    refused = edge("restore", "--data", str(b.data_dir), str(backup))  # B still runs
    assert refused.returncode == 1 and "in use by another edge process" in refused.stderr
    restored = edge("restore", "--data", str(a.data_dir), str(backup))
    assert restored.returncode == 0, restored.stderr
    a.start()
    assert a.node_id != before
    [(origin, seq, body)] = events_of(a.data_dir, "origin_started")
    assert (origin, seq) == (a.node_id, 2)  # after its certificate
    assert f'"predecessor":"{before}"' in body and "restored_from_backup" in body
    sold += await sell(a, token, 2)  # A sells at once, under its new origin

    # A copy of B's folder started as a third node: a new origin too, B keeps its own.
    b.stop()
    clone_dir = tmp_path / "clone" / "data"
    shutil.copytree(b.data_dir, clone_dir)
    b.start()
    clone = EdgeProcess(clone_dir, free_port(), ["--config", str(b.data_dir.parent / "edge.toml"),
                                                 "--data", str(clone_dir)])
    clone.start()
    try:
        assert clone.node_id != b.node_id
        [started] = [body for origin, _, body in events_of(clone_dir, "origin_started")
                     if origin == clone.node_id]
        assert "copied_to_another_folder" in started and f'"predecessor":"{b.node_id}"' in started
        sold += await sell(b, token, 2)
        journal = await converged([a, b])
        assert len(journal) == len({(o, s) for o, s, _ in journal})
        for node in (a, b):
            assert set(sales_of(node)) == {sale["id"] for sale in sold}
            assert edge("verify", "--data", str(node.data_dir)).returncode == 0
        # Receipts printed before the restore are not printed again by the restored node.
        printed = (a.data_dir / "printer" / "receipts.txt").read_text()
        assert printed.count("TOTAL") == printed_before + 2
        status = edge("status", "--data", str(a.data_dir))
        assert f"node {a.node_id} continues node {before}" in status.stdout
        assert "restored from a backup" in status.stdout
    finally:
        clone.stop()


def printer_nodes(node: EdgeProcess) -> set[str]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT node FROM store_printers")}
    finally:
        db.close()


async def test_a_backup_restored_twice_retires_every_origin_the_folder_ran(
    store_nodes, tmp_path: Path,
) -> None:
    """Store IT puts the same backup back twice: the origin in between is retired too,
    so no node routes receipts to its printers, which nobody drives any more."""
    a, b = store_nodes(2)
    token = await pair(a, "one")
    await wait_for_till(b, token)
    await sell(a, token, 1)
    backup = tmp_path / "backup.sqlite3"
    assert edge("backup", "--data", str(a.data_dir), str(backup)).returncode == 0
    origins = [a.node_id]
    for _ in range(2):
        a.stop()
        restored = edge("restore", "--data", str(a.data_dir), str(backup))
        assert restored.returncode == 0, restored.stderr
        a.start()
        origins.append(a.node_id)
        await sell(a, token, 1)
        await converged([a, b])
    first, between, now = origins
    assert len(set(origins)) == 3
    for node in (a, b):
        assert printer_nodes(node) == {now, b.node_id}
    status = edge("status", "--data", str(a.data_dir)).stdout
    assert f"node {now} continues node {first}" in status
    assert f"also replaces node {between}" in status


async def sold_and_closed(path: Path, count: int) -> str:
    journal = Journal(path, trust=KEY)
    await journal.open()
    try:
        for n in range(count):
            await journal.write(lambda tx, n=n: tx.append("product_delisted", {"id": f"p{n}"}))
        return journal.origin
    finally:
        await journal.close()


async def test_a_journal_copied_back_over_the_file_in_place_is_seen_as_older(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "edge.sqlite3"
    origin = await sold_and_closed(path, 2)
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(path, copy)  # a raw copy, as a cron job would take
    assert await sold_and_closed(path, 2) == origin  # a restart: same origin, goes on
    shutil.copyfile(copy, path)  # put back over the file: same inode, path and machine
    journal = Journal(path, trust=KEY)
    await journal.open()
    try:
        assert journal.origin != origin
        assert journal.rotation is not None and journal.rotation["reason"] == "journal_replaced"
        assert journal.rotation["cut"]["seq"] == 3  # its certificate, then two events
    finally:
        await journal.close()


async def test_a_backup_made_before_the_upgrade_still_continues_under_a_new_origin(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    path = data / "edge.sqlite3"
    origin = await sold_and_closed(path, 2)
    db = sqlite3.connect(path)  # as an edge from before fencing left it: origin in node-id only
    with db:
        db.execute("DELETE FROM meta WHERE key IN ('origin', 'origin_home', 'incarnation')")
    db.close()
    (data / "node-id").write_text(origin + "\n")
    (data / "head-mark").unlink()
    backup = tmp_path / "backup.sqlite3"
    assert edge("backup", "--data", str(data), str(backup)).returncode == 0
    assert await sold_and_closed(path, 2) == origin  # the upgraded node adopts its old id
    assert edge("restore", "--data", str(data), str(backup)).returncode == 0
    journal = Journal(path, trust=KEY)
    await journal.open()
    try:
        assert journal.origin != origin
        assert journal.rotation is not None
        assert journal.rotation["predecessor"] == origin
        assert journal.rotation["reason"] == "restored_from_backup"
    finally:
        await journal.close()


async def test_an_event_of_our_own_origin_from_a_peer_stops_the_node_writing_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "edge.sqlite3"
    journal = Journal(path, trust=KEY)
    await journal.open()
    origin = journal.origin
    try:
        first = await journal.write(lambda tx: tx.append("product_delisted", {"id": "a"}))
        # What a copy of this folder running elsewhere wrote next, relayed by a peer.
        # Unsigned (or signed by any other key), it is a forgery: refused, nothing stops.
        forged = ChainHead(first.seq, first.hash).next(origin, "product_delisted", {"id": "b"})
        with pytest.raises(SignatureRefused, match="forged"):
            await journal.write(lambda tx: tx.apply(forged))
        assert not journal.stopped
        with pytest.raises(SignatureRefused, match="forged"):
            await journal.write(lambda tx: tx.apply(sign(forged, identity("other").signing_key)))
        assert not journal.stopped
        # Signed with this node's own key: a copy of its folder wrote it.
        theirs = sign(forged, KEY.signing_key)
        with pytest.raises(OwnOriginSeen):
            await journal.write(lambda tx: tx.apply(theirs))
        assert journal.stopped and "copy of this data folder" in journal.stopped
        with pytest.raises(JournalStopped):
            await journal.write(lambda tx: tx.append("product_delisted", {"id": "c"}))
    finally:
        await journal.close()
    reopened = Journal(path, trust=KEY)
    await reopened.open()
    try:
        assert reopened.rotation is not None and reopened.rotation["reason"] == "origin_clash"
        assert reopened.rotation["cut"]["seq"] == 2
    finally:
        await reopened.close()
