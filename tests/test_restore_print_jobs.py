"""Print jobs a restored node's backup left unfinished: never printed twice, never dropped.

A node restored from a backup continues under a new origin, and the node it
was (its predecessor) prints nothing more. The backup's unfinished jobs may
or may not have printed after it was taken (that node kept selling and
printing until it was restored). What its peers hold of it after the backup
comes back: a job they saw print is settled. The others are in doubt: not
printed again by themselves, but listed on their till (`receipts_in_doubt`,
`drawers_in_doubt`) with a DUPLICATA and the drawer offered, and counted by
`edge status`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

from conftest import EDGE, ROOT, EdgeProcess, free_port, start_all, store_node_config
from fake_network_printer import FakeNetworkPrinter
from printing import eventually
from test_peers import BARCODES, converged, pair

from edge.till_client import TillClient


def network_printers(caisse: int, bar: int, node: str) -> str:
    """Node A's printers: `caisse` for every till, `bar` for till 2 (both network printers)."""
    return (f'[[printers]]\nname = "caisse"\nkind = "network"\nhost = "127.0.0.1"\n'
            f'port = {caisse}\n'
            f'[[printers]]\nname = "bar"\nkind = "network"\nhost = "127.0.0.1"\n'
            f'port = {bar}\ntills = ["T02-{node}"]\n')


def rows(node: EdgeProcess, sql: str, *params: object) -> list[tuple]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def job_status(node: EdgeProcess, sale_id: str) -> str | None:
    found = rows(node, "SELECT status FROM print_jobs WHERE sale_id = ? "
                       "AND json_extract(body, '$.kind') = 'receipt' ORDER BY rowid", sale_id)
    return found[0][0] if found else None


def copies_started(node: EdgeProcess, sale_id: str) -> list[str]:
    """Every attempt at printing the sale's receipt, store-wide: `original` or `duplicate`."""
    return [copy for (copy,) in rows(
        node, """SELECT json_extract(e.body, '$.copy') FROM events AS e
        JOIN print_jobs AS job ON job.id = json_extract(e.body, '$.job_id')
        WHERE e.type = 'print_job_started' AND job.sale_id = ?
        AND json_extract(job.body, '$.kind') = 'receipt' ORDER BY e.position""", sale_id)]


def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


async def test_a_restored_nodes_unfinished_jobs_are_listed_in_doubt_never_printed_twice(
    tmp_path: Path,
) -> None:
    caisse, bar = FakeNetworkPrinter(), FakeNetworkPrinter()
    caisse.port, bar.port = free_port(), free_port()  # neither answers yet
    port_a, port_b = free_port(), free_port()
    config_a = store_node_config(tmp_path / "a", [f"http://127.0.0.1:{port_b}"])
    config_b = store_node_config(tmp_path / "b", [f"http://127.0.0.1:{port_a}"])
    a = EdgeProcess(tmp_path / "a" / "data", port_a, ["--config", str(config_a)])
    b = EdgeProcess(tmp_path / "b" / "data", port_b, ["--config", str(config_b)])
    a.start()  # once, to learn its id: till 2 will be T02-<it>
    a.stop()
    store_node_config(tmp_path / "a", [f"http://127.0.0.1:{port_b}"],
                      more=network_printers(caisse.port, bar.port, a.node_id))
    start_all(a, b)
    try:
        token_1, token_2 = await pair(a, "one"), await pair(a, "two")
        async with TillClient([a.url], token_1, "alice", "1234") as till_1, \
                TillClient([a.url], token_2, "bruno", "567890") as till_2:
            printed_later = await till_1.sell(BARCODES[:2], 1000)  # on caisse
            never_printed = await till_2.sell(BARCODES[2:], 1000)  # on bar
        assert job_status(a, never_printed["id"]) == "pending"
        backup = tmp_path / "backup.sqlite3"
        made = await asyncio.to_thread(edge, "backup", "--data", str(a.data_dir), str(backup))
        assert made.returncode == 0, made.stderr

        # After the backup, A prints the first receipt (and its peer B hears of it); then it dies.
        await caisse.start()
        await eventually(lambda: job_status(b, printed_later["id"]) == "done", within=30,
                         what="the receipt printed after the backup reaching B")
        a.kill()
        restored = await asyncio.to_thread(edge, "restore", "--data", str(a.data_dir),
                                           str(backup))
        assert restored.returncode == 0, restored.stderr
        await bar.start()
        a.start()
        await converged([a, b], within=30)
        here = a.node_id

        async with TillClient([a.url], token_1, "alice", "1234") as till_1, \
                TillClient([a.url], token_2, "bruno", "567890") as till_2:
            # Printed after the backup: settled by what B held, so neither listed nor printed.
            status_1 = await till_1.call("printer/status")
            assert status_1["receipts_in_doubt"] == []
            assert status_1["drawers_in_doubt"] == []
            # Unfinished in the backup, never printed: listed, with its drawer, not printed.
            status_2 = await till_2.call("printer/status")
            assert status_2["printer"] == "bar" and status_2["printer_node"] == here
            [doubt] = status_2["receipts_in_doubt"]
            assert doubt["sale_id"] == never_printed["id"]
            assert doubt["receipt_number"] == never_printed["receipt_number"]
            [drawer] = status_2["drawers_in_doubt"]
            assert drawer["sale_id"] == never_printed["id"]
            told = await asyncio.to_thread(edge, "status", "--data", str(a.data_dir))
            assert "1 print job(s) were unfinished when their node was retired" in told.stdout
            assert "1 sale(s) may have no receipt" in told.stdout

            # The cashier asks for it: a DUPLICATA, even on another printer (the node that
            # was to print it may have), and the drawer question answered once.
            copy = await till_2.call("printer/reprint", sale_id=never_printed["id"],
                                     printer="caisse", node=here)
            assert copy["copy"] == "duplicate"
            opening = await till_2.call("drawer/open_for_sale", sale_id=never_printed["id"])
            assert (opening["printer"], opening["node"]) == ("bar", here)
            await eventually(lambda: rows(a, """SELECT 1 FROM events WHERE type = 'drawer_opened'
                AND json_extract(body, '$.sale_id') = ?""", never_printed["id"]), within=30,
                what="the drawer opening for the sale in doubt")
            await eventually(lambda: rows(a, """SELECT 1 FROM print_jobs WHERE id = ?
                AND status = 'done'""", copy["job_id"]), within=30, what="the DUPLICATA")
            status_2 = await till_2.call("printer/status")
            assert status_2["receipts_in_doubt"] == [] and status_2["drawers_in_doubt"] == []

        # Every receipt printed once as the original at most, store-wide.
        assert copies_started(a, printed_later["id"]) == ["original"]
        assert copies_started(a, never_printed["id"]) == ["duplicate"]
        assert b"DUPLICATA" in caisse.received
        assert bar.received.count(never_printed["receipt_number"].encode()) == 0
        assert edge("verify", "--data", str(a.data_dir)).returncode == 0
    finally:
        a.stop()
        b.stop()
        await caisse.stop()
        await bar.stop()
