"""A fleet of stores pushing a day each into head office on PostgreSQL, against raw COPY.

`./dev bench fleet [--stores 8] [--sales 2000]`

Each simulated store is a real node's journal (its own store id, CA and
signed events: a day of `--sales` sales, 6 events each, as bench/sync.py
writes them) pushed by the real sync client, all stores at once, into
head office (`edge headoffice serve`, PostgreSQL, TLS) run as 1 and then 2
processes on one database (stores split between them). Baseline: the same
events `COPY`ed into a plain table with the same primary key (store,
origin, seq) by one connection: what PostgreSQL itself takes. Printed as
events/s and ratios, with the night it makes for 1,000 stores x 20,000
sales (120 million events) at the measured rate.

Needs Debian's PostgreSQL server (a throwaway cluster is started, as the
tests do), or `--db postgresql://…/postgres` of one you run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.nodes import free_port
from bench.sync import edge_command, make_certificates, wait_for_port, write_day
from edge.config import load_config
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.store import Journal, folder_trust
from edge.sync.client import SyncClient

ROOT = Path(__file__).resolve().parent.parent
CHAIN_STORES, CHAIN_SALES, EVENTS_PER_SALE = 1_000, 20_000, 6


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """A maintenance URL: the one given, or a throwaway cluster's (removed after)."""
    if url:
        yield url
        return
    binary = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    root = os.geteuid() == 0
    user = "postgres" if root else getpass.getuser()
    run_as = ["runuser", "-u", user, "--"] if root else []
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if root:
        shutil.chown(folder, user, user)
    port = free_port()
    subprocess.run([*run_as, binary.replace("pg_ctl", "initdb"), "-D", str(folder / "data"),
                    "-U", user, "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    # Durable as a head office is (fsync on): the comparison is with COPY on the same cluster.
    subprocess.run([*run_as, binary, "-D", str(folder / "data"), "-w", "-l",
                    str(folder / "log"), "-o", f"-c listen_addresses=127.0.0.1 -p {port} "
                    f"-k {folder} -c max_connections=100", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, binary, "-D", str(folder / "data"), "-m", "fast", "-w",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


async def new_database(admin_url: str) -> str:
    import asyncpg

    name = f"fleet_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def store_config(folder: Path, store: str, url: str, token: str, ca: Path) -> Path:
    (folder / "headoffice.token").write_text(token + "\n")
    path = folder / "edge.toml"
    path.write_text(
        f'[store]\nid = "{store}"\ndemo = true\n'
        f'[server]\ndata = "data"\nadvertise = false\nport = {free_port()}\n'
        f'[headoffice]\nurl = "{url}"\ntoken_file = "headoffice.token"\nca_file = "{ca}"\n')
    return path


async def make_stores(folder: Path, count: int, sales: int, ca: Path) -> list[Path]:
    """Each store's data folder holding a day of sales (the template every run copies)."""
    stores = []
    for index in range(count):
        store = folder / f"store-{index:03d}"
        store.mkdir()
        await write_day(load_config(store_config(store, f"store-{index:03d}",
                                                 "https://127.0.0.1:1", "unused", ca)), sales)
        stores.append(store)
    return stores


async def push_day(store: Path, run: Path, url: str, token: str, ca: Path) -> int:
    """Copy a store's day and push it all with the sync client; the events pushed."""
    folder = run / store.name
    shutil.copytree(store, folder)
    config = load_config(store_config(folder, store.name, url, token, ca))
    journal = Journal(config.database, trust=folder_trust(config.data_dir))
    await journal.open()
    client = SyncClient(journal, config)
    await client.open()
    try:
        await client.sync_once()
        return client.counters.pushed
    finally:
        await client.close()
        await journal.close()


async def fleet_run(admin: str, stores: list[Path], processes: int, folder: Path,
                    certs: tuple[Path, Path, Path]) -> tuple[float, int]:
    ca, cert, key = certs
    db = await new_database(admin)
    storage = HeadOfficeStorage(db)
    await storage.open()
    tokens = {store.name: await storage.add_store(store.name) for store in stores}
    await storage.close()
    servers, urls = [], []
    for index in range(processes):
        port = free_port()
        log = (folder / f"headoffice-{processes}-{index}.log").open("wb")
        servers.append(subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait)
            edge_command("headoffice", "serve", "--db", db, "--port", str(port), "--tls-cert",
                         str(cert), "--tls-key", str(key), "--log-level", "WARNING"),
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        await asyncio.to_thread(wait_for_port, port)
        urls.append(f"https://127.0.0.1:{port}")
    run = folder / f"run-{processes}"
    run.mkdir()
    try:
        began = time.perf_counter()
        pushed = await asyncio.gather(*(
            push_day(store, run, urls[index % processes], tokens[store.name], ca)
            for index, store in enumerate(stores)))
        return time.perf_counter() - began, sum(pushed)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


async def raw_copy(admin: str, stores: list[Path]) -> tuple[float, int]:
    """The same events COPYed into a plain table keyed (store, origin, seq): seconds, rows."""
    import asyncpg

    rows = []
    for store in stores:
        config = load_config(store / "edge.toml")
        journal = Journal(config.database, trust=folder_trust(config.data_dir))
        await journal.open()
        try:
            async for event in journal.events(journal.origin):
                rows.append((store.name, event.origin, event.seq, event.id, event.time,
                             event.type, journal_body(event), event.prev_hash, event.hash,
                             event.sig))
        finally:
            await journal.close()
    connection = await asyncpg.connect(await new_database(admin))
    try:
        await connection.execute(
            "CREATE TABLE events (store TEXT, origin TEXT, seq BIGINT, id TEXT, time TEXT, "
            "type TEXT, body TEXT, prev_hash TEXT, hash TEXT, sig TEXT, "
            "PRIMARY KEY (store, origin, seq))")
        began = time.perf_counter()
        for start in range(0, len(rows), 5000):  # batches as the nodes send them
            await connection.copy_records_to_table("events", records=rows[start:start + 5000])
        return time.perf_counter() - began, len(rows)
    finally:
        await connection.close()


def journal_body(event: object) -> str:
    from edge.journal.chain import canonical_json

    return canonical_json(event.body).decode()  # type: ignore[attr-defined]


async def run(stores_count: int, sales: int, admin_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch, \
            postgres(admin_url) as admin:
        folder = Path(scratch)
        certs = make_certificates(folder)
        began = time.perf_counter()
        stores = await make_stores(folder, stores_count, sales, certs[0])
        print(f"{stores_count} stores x {sales:,} sales a day (written in "
              f"{time.perf_counter() - began:.0f} s); machine: {os.cpu_count()} cores, "
              "PostgreSQL with fsync on, everything on this machine")
        raw_seconds, raw_events = await raw_copy(admin, stores)
        raw_rate = raw_events / raw_seconds
        print(f"  raw COPY, one connection      {raw_seconds:6.1f} s  {raw_rate:8.0f} events/s")
        for processes in (1, 2):
            seconds, pushed = await fleet_run(admin, stores, processes, folder, certs)
            rate = pushed / seconds
            night = CHAIN_STORES * CHAIN_SALES * EVENTS_PER_SALE / rate / 3600
            print(f"  head office, {processes} process(es)     {seconds:6.1f} s  {rate:8.0f} "
                  f"events/s  {raw_rate / rate:4.1f}x slower than COPY   "
                  f"({pushed:,} events; 1,000 stores x 20,000 sales: {night:4.1f} h)")
        print(f"  raw COPY at the same scale: "
              f"{CHAIN_STORES * CHAIN_SALES * EVENTS_PER_SALE / raw_rate / 3600:.1f} h")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=8)
    parser.add_argument("--sales", type=int, default=2_000)
    parser.add_argument("--db", help="postgresql://…/postgres of a server you run "
                        "(default: a throwaway cluster)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.stores, args.sales, args.db))


if __name__ == "__main__":
    main(sys.argv[1:])
