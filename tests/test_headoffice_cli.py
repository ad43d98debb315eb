"""Head office and store IT at the command line: `edge headoffice …`, `edge sync`, `status`.

Real processes: head office served over TLS by `edge headoffice serve`, a
store's data folder synced by `edge sync`. Against SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path

from conftest import EDGE, ROOT, free_port
from headoffice_support import CertificateAuthority, write_store_config

from edge.config import load_config
from edge.node import Node

HEADER = "id,barcode,name,price,vat_rate,category\n"
GOOD = HEADER + ("p0001,2000001000014,Baguette tradition,125,550,Pain\n"
                 "ho-1,2100000000012,Tarte aux pommes,1850,550,Pâtisserie\n")
BAD = HEADER + ("p0001,2000001000014,Baguette tradition,125,550,Pain\n"
                "ho-1,2100000000015,Tarte aux pommes,1850,550,Pâtisserie\n"
                "ho-2,2100000000029,,290,550,Pâtisserie\n")


def edge(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"head office exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(log.read_text())


def make_store_data(config_path: Path) -> None:
    """Start and stop a node once, as `edge serve` would leave its data folder."""

    async def once() -> None:
        node = Node(load_config(config_path).with_overrides(headoffice_enabled=False))
        await node.start()
        await node.stop()

    asyncio.run(once())


def test_head_office_and_store_it_from_the_command_line(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    db = ["--db", headoffice_db]
    token_file = tmp_path / "store" / "headoffice.token"
    added = edge("headoffice", "add-store", *db, "--store", "demo-boulangerie",
                 "--name", "Boulangerie du Marché", "--token-file", str(token_file))
    assert "token written to" in added.stdout
    token = token_file.read_text().strip()
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600 and token not in added.stdout

    bad_csv, good_csv = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad_csv.write_text(BAD)
    good_csv.write_text(GOOD)
    refused = edge("headoffice", "import-catalogue", *db, "--csv", str(bad_csv), check=False)
    assert refused.returncode == 1
    assert "nothing imported" in refused.stderr
    assert "line 3: barcode '2100000000015' is not a valid EAN/GTIN" in refused.stderr
    assert "line 4: name is empty" in refused.stderr
    assert "2 new, 0 changed, 0 delisted" in edge(
        "headoffice", "import-catalogue", *db, "--csv", str(good_csv)).stdout

    port = free_port()
    cert, key = ca.issue("cli-headoffice")
    log = tmp_path / "headoffice.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*EDGE, "headoffice", "serve", *db, "--port", str(port), "--tls-cert", str(cert),
             "--tls-key", str(key)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for_port(port, server, log)
        config = write_store_config(tmp_path / "store", f"https://127.0.0.1:{port}", token, ca)
        make_store_data(config)
        checked = edge("check", "--config", str(config)).stdout
        assert f"head office https://127.0.0.1:{port}: syncs continuously" in checked
        before = edge("status", "--config", str(config))
        assert re.search(r"^  state +waiting$", before.stdout, re.MULTILINE)

        synced = edge("sync", "--config", str(config))
        assert "event(s) to send to https://127.0.0.1:" in synced.stdout
        assert "catalogue: 2 change(s) from head office applied" in synced.stdout
        assert "pushed events up to position" in synced.stdout
        assert synced.stdout.rstrip().endswith("Sync done: 0 event(s) left to send.")

        status = json.loads(edge("status", "--config", str(config), "--json").stdout)
        assert status["headoffice"]["state"] == "ok"
        assert status["headoffice"]["backlog_events"] == 0
        assert status["node"]["journal_events"] > 300

        stores = json.loads(edge("headoffice", "stores", *db, "--json").stdout)
        assert stores[0]["id"] == "demo-boulangerie" and stores[0]["events"] > 300

        token_file.write_text("wrong\n")
        failed = edge("sync", "--config", str(config), check=False)
        assert failed.returncode == 1
        assert "Sync failed: head office refused this store's token" in failed.stderr
    finally:
        server.terminate()
        server.wait(10)
    assert "wrong" not in log.read_text() and token not in log.read_text()


def test_check_names_bad_head_office_settings(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[store]\nid = "s1"\n[headoffice]\nurl = "http://ho.example.com"\n'
                      'nightly_window = "25:00-03:00"\nca_file = "missing.pem"\n')
    done = edge("check", "--config", str(config), check=False)
    assert done.returncode == 2
    for words in ("headoffice.url must be an https:// URL",
                  "headoffice.token_file is required",
                  "headoffice.nightly_window: '25:00-03:00' is not a window",
                  "headoffice.ca_file"):
        assert words in done.stderr


def test_sync_without_a_head_office_says_so(tmp_path: Path) -> None:
    done = edge("sync", "--data", str(tmp_path), check=False)
    assert done.returncode == 2 and "No head office is configured" in done.stderr
