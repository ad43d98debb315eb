"""Head-office sync: uploading a 20,000-sale day, against the raw throughput of the same link.

Run: ./dev bench sync   (or .venv/bin/python -m bench.sync [--sales N] [--seconds S])

1. Upload: a node's journal holds a day of 20,000 sales (each sale as the
   till makes it: two scans, the sale, its print job, the printed receipt and
   the drawer: 6 events). Head office (`edge headoffice serve`, SQLite, TLS,
   its own process) is empty; the node's sync client uploads everything.
   Baseline: the same gzip batches POSTed over the same kind of link (aiohttp,
   TLS, loopback) to a server that reads and inflates them and does nothing
   else: what the link itself carries.
2. Selling while syncing: a till's scan latency on `edge serve`, first with
   head-office sync off, then with sync uploading a day's backlog meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.nodes import BARCODES, BenchNode, free_port, percentile
from edge.config import Config, load_config
from edge.journal.store import Journal, Tx, folder_trust
from edge.node import Node
from edge.selling.sales import sale_id_for
from edge.sync.client import Batch, SyncClient

ROOT = Path(__file__).resolve().parent.parent
STORE = "demo-boulangerie"
# The node and its till share core 0, head office has core 1: a real head office
# is far away and does not take the store's CPU.
TILLS_CORE = ["taskset", "-c", "0"] if (os.cpu_count() or 1) >= 2 else []


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it (openssl): (ca, cert, key)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=bench CA")
    openssl("req", *curve, "-keyout", "ho.key", "-out", "ho.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "ho.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "ho.pem", "-days", "2", "-extfile", "san.ext")
    return folder / "ca.pem", folder / "ho.pem", folder / "ho.key"


def edge_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def start_headoffice(folder: Path, cert: Path, key: Path, cpu: int | None) -> tuple[
        subprocess.Popen[bytes], str, str]:
    """`edge headoffice serve` on a fresh SQLite database: (process, url, store token)."""
    db = f"sqlite://{folder / 'headoffice.sqlite3'}"
    token_file = folder / "headoffice.token"
    subprocess.run(edge_command("headoffice", "add-store", "--db", db, "--store", STORE,
                                "--token-file", str(token_file)),
                   check=True, capture_output=True, cwd=ROOT)
    port = free_port()
    log = (folder / "headoffice.log").open("wb")
    process = subprocess.Popen(
        edge_command("headoffice", "serve", "--db", db, "--port", str(port), "--tls-cert",
                     str(cert), "--tls-key", str(key), "--log-level", "WARNING"),
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=pinned(cpu))
    wait_for_port(port)
    return process, f"https://127.0.0.1:{port}", token_file.read_text().strip()


def pinned(cpu: int | None) -> Any:
    if cpu is None or not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def wait_for_port(port: int) -> None:
    import socket

    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def write_config(folder: Path, url: str, token: str, ca: Path, port: int,
                 enabled: bool) -> Path:
    (folder / "headoffice.token").write_text(token + "\n")
    path = folder / "edge.toml"
    path.write_text(
        f'[store]\nid = "{STORE}"\ndemo = true\n'
        f'[server]\ndata = "data"\nadvertise = false\nport = {port}\n'
        f'[headoffice]\nurl = "{url}"\ntoken_file = "headoffice.token"\nca_file = "{ca}"\n'
        f"enabled = {str(enabled).lower()}\n")
    return path


async def write_day(config: Config, sales: int) -> int:
    """A day of `sales` sales in the node's journal, as tills make them; returns events."""
    node = Node(config.with_overrides(headoffice_enabled=False))
    await node.start()  # the demo store: catalogue, cashiers
    await node.stop()
    journal = Journal(config.database, trust=folder_trust(config.data_dir))  # its own origin
    await journal.open()
    try:
        for start in range(0, sales, 500):
            await journal.write(lambda tx, start=start: [
                sell_one(tx, f"T{1 + n % 8:02d}", 1 + n // 8)
                for n in range(start, min(start + 500, sales))])
        return journal.head.seq
    finally:
        await journal.close()


def sell_one(tx: Tx, till: str, receipt_no: int) -> None:
    basket, lines = str(uuid.uuid4()), []
    for barcode, price in (("2000001000014", 120), ("2000002000013", 115)):
        line = {"id": str(uuid.uuid4()), "product_id": barcode, "barcode": barcode,
                "name": "Baguette tradition", "unit_price": price, "vat_rate": 550,
                "quantity": 1, "total": price}
        tx.append("basket_line_added", {"basket_id": basket, "till": till, "cashier": "alice",
                                        "line_id": line["id"], "product_id": barcode,
                                        "barcode": barcode, "name": line["name"],
                                        "unit_price": price, "vat_rate": 550, "quantity": 1})
        lines.append(line)
    totals = {"total": 235, "items": 2,
              "vat": [{"rate": 550, "base": 223, "vat": 12, "total": 235}]}
    sale_id = sale_id_for(till, basket)
    tx.append("sale_completed", {
        "id": sale_id, "basket_id": basket, "till": till, "receipt_no": receipt_no,
        "receipt_number": f"{till}-{receipt_no:06d}", "cashier": "alice", "lines": lines,
        "totals": totals, "tenders": [{"method": "cash", "amount": 500}], "change": 265})
    job = str(uuid.uuid4())
    tx.append("print_requested", {"job_id": job, "printer": "receipt", "node": "bench",
                                  "kind": "receipt", "sale_id": sale_id, "open_drawer": True})
    tx.append("print_job_done", {"job_id": job, "printer": "receipt", "outcome": "done"})
    tx.append("drawer_opened", {"printer": "receipt", "reason": "cash sale", "sale_id": sale_id})


class MeasuredSync(SyncClient):
    """The sync client, keeping each batch it sends (to replay them on the raw link)."""

    batches: list[Batch]

    def _encode(self, cursor: int, max_events: int, max_bytes: int) -> Batch | None:
        batch = super()._encode(cursor, max_events, max_bytes)
        if batch is not None:
            self.batches.append(batch)
        return batch


async def upload(config: Config) -> tuple[float, int, list[Batch]]:
    """Sync a whole day in this process: (seconds, events, batches sent)."""
    journal = Journal(config.database, trust=folder_trust(config.data_dir))  # the node's key
    await journal.open()
    client = MeasuredSync(journal, config)
    client.batches = []
    await client.open()
    try:
        started = time.perf_counter()
        await client.sync_once()
        elapsed = time.perf_counter() - started
        return elapsed, client.counters.pushed, client.batches
    finally:
        await client.close()
        await journal.close()


async def raw_link(batches: list[Batch], cert: Path, key: Path, ca: Path,
                   cpu: int | None) -> float:
    """Seconds to POST the same gzip batches to a server that only reads (and inflates) them."""
    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait for it)
        [sys.executable, "-m", "bench.sync", "--discard-server", str(port), str(cert), str(key)],
        cwd=ROOT, preexec_fn=pinned(cpu))
    try:
        await asyncio.to_thread(wait_for_port, port)
        context = ssl.create_default_context(cafile=str(ca))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            url = f"https://127.0.0.1:{port}/discard"
            headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
            started = time.perf_counter()
            for batch in batches:
                async with session.post(url, data=batch.body, headers=headers) as response:
                    await response.read()
            return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)


def discard_server(port: int, cert: str, key: str) -> None:
    async def discard(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"bytes": len(body)})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/discard", discard)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None,
                access_log=None)


async def watch_upload(node: BenchNode, done: asyncio.Event) -> None:
    """Set `done` once the node's sync has nothing left to send."""
    async with aiohttp.ClientSession() as session:
        while not done.is_set():
            async with session.get(f"{node.url}/healthz") as response:
                if (await response.json())["headoffice"].get("backlog_events", 0) == 0:
                    done.set()
            await asyncio.sleep(0.25)


async def scan_latencies(node: BenchNode, seconds: float, while_uploading: bool) -> list[float]:
    """One till scanning as fast as it can (a sale every 5 scans): each scan's latency.

    With `while_uploading`, only while sync still has a backlog to send.
    """
    token = await node.pair()
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{node.url}/api/ws") as ws:
        next_id = 0

        async def call(type_: str, **args: object) -> Any:
            nonlocal next_id
            next_id += 1
            await ws.send_json({"id": next_id, "type": type_, **args})
            reply = await ws.receive_json()
            if not reply["success"]:
                raise RuntimeError(reply["error"])
            return reply["result"]

        await call("auth", token=token)
        await call("login", cashier_id="alice", pin="1234")
        stop_at = time.perf_counter() + seconds
        uploaded = asyncio.Event()
        watcher = asyncio.create_task(watch_upload(node, uploaded)) if while_uploading else None
        while time.perf_counter() < stop_at and not uploaded.is_set():
            basket = str(uuid.uuid4())
            for scan in range(5):
                started = time.perf_counter()
                result = await call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                                    barcode=BARCODES[scan % len(BARCODES)])
                latencies.append(time.perf_counter() - started)
            await call("sale/complete", basket_id=basket, tenders=[
                {"method": "card", "amount": result["totals"]["total"], "reference": "B"}])
        if watcher is not None:
            uploaded.set()
            await watcher
    return latencies


async def selling_while_syncing(folder: Path, url: str, token: str, ca: Path, sales: int,
                                seconds: float) -> dict[str, list[float]]:
    results = {}
    port = free_port()
    node_folder = folder / "selling"
    node_folder.mkdir()
    for label, enabled in (("sync off", False), ("sync uploading", True)):
        config_path = write_config(node_folder, url, token, ca, port, enabled)
        if not enabled:
            await write_day(load_config(config_path), sales)
        node = BenchNode(node_folder, port)
        node.args = [*TILLS_CORE, *node.args[:4], "--config", str(config_path), "--log-level",
                     "WARNING"]
        await node.start()
        try:
            results[label] = await scan_latencies(node, seconds, enabled)
        finally:
            node.stop()
    return results


async def run(sales: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as tmp:
        folder = Path(tmp)
        ca, cert, key = make_certificates(folder)
        # Head office gets a core of its own, as a remote one would not share ours.
        headoffice, url, token = start_headoffice(folder, cert, key, cpu=1)
        try:
            store = folder / "upload"
            store.mkdir()
            config = load_config(write_config(store, url, token, ca, free_port(), True))
            events = await write_day(config, sales)
            elapsed, pushed, batches = await upload(config)
            raw = sum(batch.raw_bytes for batch in batches)
            sent = sum(len(batch.body) for batch in batches)
            link = await raw_link(batches, cert, key, ca, cpu=1)
            print(f"machine: {os.cpu_count()} cores; head office on core 1; for the scans, "
                  "the node and the till on core 0")
            print(f"day: {sales} sales = {events} events in the journal; {pushed} uploaded "
                  f"in {len(batches)} batches, {raw / 1e6:.1f} MB JSON -> {sent / 1e6:.1f} MB "
                  f"gzip ({raw / sent:.1f}x)")
            print(f"sync upload : {elapsed:6.2f} s = {pushed / elapsed:8.0f} events/s "
                  f"({sales / elapsed:6.0f} sales/s)")
            print(f"raw link    : {link:6.2f} s = {pushed / link:8.0f} events/s "
                  f"({sent / link / 1e6:.1f} MB/s gzip) -> sync reaches {link / elapsed:.2f} x "
                  "the link")
            if TILLS_CORE:
                os.sched_setaffinity(0, {0})
            latencies = await selling_while_syncing(folder, url, token, ca, sales, seconds)
            base = percentile(latencies["sync off"], 0.5)
            for label, values in latencies.items():
                p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
                print(f"scan latency, {label:14s}: p50 {p50 * 1000:5.2f} ms  p99 "
                      f"{p99 * 1000:5.2f} ms  ({len(values)} scans; p50 {p50 / base:.2f} x)")
        finally:
            headoffice.terminate()
            headoffice.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--discard-server", nargs=3, metavar=("PORT", "CERT", "KEY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.discard_server:
        port, cert, key = args.discard_server
        discard_server(int(port), cert, key)
        return
    asyncio.run(run(args.sales, args.seconds))


if __name__ == "__main__":
    main()
