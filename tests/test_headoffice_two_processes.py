"""Two `edge headoffice serve` processes on one PostgreSQL database: every event stored once.

Head office is meant to run as several stateless processes behind one
address (docs/headoffice.md). Here two real processes start at the same
moment on an empty database, and two stores push to both at once: each
store's node A goes through a tee that sends every push to both processes
at the same moment (a load balancer retrying a batch on the other process),
its node B pushes straight to one of them, and each node also holds and
forwards its sibling's events, so every origin of a store arrives through
both processes concurrently. Head office must end with each (store, origin,
seq) exactly once, none missing, no conflict, and never a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import headoffice_support
import pytest
from aiohttp import web
from conftest import EDGE, ROOT, NodeUnderTest, node_of
from headoffice_support import (
    CertificateAuthority,
    FaultProxy,
    free_port,
    store_node,
    wait_for,
    write_store_config,
)
from test_headoffice_cli import wait_for_port
from test_sync_outage import forward, own_events, sell_in_bulk, settled

from edge.headoffice.protocol import PUSH_PATH
from edge.headoffice.storage import HeadOfficeStorage

STORES = ("store-nord", "store-sud")
SALES_PER_NODE = 700  # with the demo seed, several 500-event batches per origin and node


class TeeProxy(FaultProxy):
    """Sends each push to its upstream and to `other` at the same moment; answers the first's."""

    def __init__(self, upstream: str, other: str, ca: CertificateAuthority) -> None:
        super().__init__(upstream, ca)
        self.other = FaultProxy(other, ca)
        self.statuses: list[int] = []

    async def start(self) -> None:
        await super().start()
        self.other._session = self._session  # one client session: the other never listens

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path != PUSH_PATH:
            status, payload = await self._forward(request, body)
        else:
            (status, payload), (second, _) = await asyncio.gather(
                self._forward(request, body), self.other._forward(request, body))
            self.statuses.append(second)
        self.statuses.append(status)
        return web.Response(status=status, body=payload, content_type="application/json")


def serve(db_url: str, ca: CertificateAuthority, port: int,
          log: Path) -> subprocess.Popen[bytes]:
    cert, key = ca.issue(f"headoffice-{port}")
    with log.open("wb") as out:
        return subprocess.Popen(
            [*EDGE, "headoffice", "serve", "--db", db_url, "--port", str(port),
             "--tls-cert", str(cert), "--tls-key", str(key)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


@contextlib.asynccontextmanager
async def serving(db_url: str, ca: CertificateAuthority, folder: Path,
                  count: int) -> AsyncIterator[list[str]]:
    """`count` head-office processes on one database, all started at the same moment."""
    processes, ports = [], []
    try:
        for index in range(count):
            port = free_port()
            log = folder / f"headoffice-{index}.log"
            processes.append((serve(db_url, ca, port, log), log))
            ports.append(port)
        for (process, log), port in zip(processes, ports, strict=True):
            await asyncio.to_thread(wait_for_port, port, process, log)
        yield [f"https://127.0.0.1:{port}" for port in ports]
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(10)


@contextlib.asynccontextmanager
async def node_of_store(store: str, folder: Path, url: str, token: str,
                        ca: CertificateAuthority) -> AsyncIterator[NodeUnderTest]:
    """headoffice_support.store_node, for a store other than the demo's."""

    def config_of(*args: object, **kwargs: object) -> Path:
        path = write_store_config(*args, **kwargs)  # type: ignore[arg-type]
        path.write_text(path.read_text().replace('id = "demo-boulangerie"', f'id = "{store}"'))
        return path

    patch = pytest.MonkeyPatch()
    patch.setattr(headoffice_support, "write_store_config", config_of)
    try:
        async with store_node(folder, url, token, ca) as node:
            yield node
    finally:
        patch.undo()


async def healthz(node: NodeUnderTest, url: str, ca: CertificateAuthority) -> dict[str, int]:
    async with node.session.get(f"{url}/healthz", ssl=ca.client_context()) as response:
        assert response.status == 200
        return (await response.json())["received"]


@pytest.mark.parametrize("headoffice_db", ["postgresql"], indirect=True)
async def test_processes_opening_an_empty_database_at_once_share_one_origin(
    headoffice_db: str,
) -> None:
    # Each storage has its own pool: to PostgreSQL, so many processes. Started by
    # hand two processes rarely meet in the schema's creation; these always do.
    storages = [HeadOfficeStorage(headoffice_db) for _ in range(4)]
    opened = await asyncio.gather(*(storage.open() for storage in storages),
                                  return_exceptions=True)
    try:
        assert [error for error in opened if error is not None] == []
        assert len({(storage.origin, storage.public_key) for storage in storages}) == 1
    finally:
        for storage, error in zip(storages, opened, strict=True):
            if error is None:
                await storage.close()


@pytest.mark.parametrize("headoffice_db", ["postgresql"], indirect=True)
async def test_two_processes_on_one_database_store_each_event_once(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    async with serving(headoffice_db, ca, tmp_path, 2) as (first, second):
        admin = HeadOfficeStorage(headoffice_db)
        await admin.open()
        try:
            tokens = {store: await admin.add_store(store) for store in STORES}
        finally:
            await admin.close()
        tees = [TeeProxy(first, second, ca), TeeProxy(second, first, ca)]
        async with contextlib.AsyncExitStack() as stack:
            nodes = []
            for index, (store, tee) in enumerate(zip(STORES, tees, strict=True)):
                await tee.start()
                stack.push_async_callback(tee.stop)
                direct = (second, first)[index]
                pair = [await stack.enter_async_context(node_of_store(
                    store, tmp_path / f"{store}-{name}", url, tokens[store], ca))
                    for name, url in (("a", tee.url), ("b", direct))]
                nodes.append(pair)
            for a, b in nodes:
                await sell_in_bulk(node_of(a).journal, ["T1", "T2"], SALES_PER_NODE)
                await sell_in_bulk(node_of(b).journal, ["T3"], SALES_PER_NODE)
                # Each node holds its sibling's events too and pushes them, to the other process.
                await forward(node_of(a).journal, node_of(b).journal)
                await forward(node_of(b).journal, node_of(a).journal)
            for node in [node for pair in nodes for node in pair]:
                await wait_for(lambda node=node: settled(node), 120, "every node to settle")
            expected = {(store, node_of(node).node_id): await own_events(node_of(node).journal)
                        for store, pair in zip(STORES, nodes, strict=True) for node in pair}
            received = [await healthz(nodes[0][0], url, ca) for url in (first, second)]

    assert all(status == 200 for tee in tees for status in tee.statuses)
    assert all(len(tee.statuses) > 4 for tee in tees)  # several pushes went to both at once
    total = sum(len(events) for events in expected.values())
    # Exactly once across both processes: what one stored, the other found a duplicate.
    assert sum(counters["stored"] for counters in received) == total
    assert all(counters["duplicates"] > 0 and counters["conflicts"] == 0
               for counters in received)

    db = await asyncpg.connect(headoffice_db)
    try:
        rows = await db.fetch("SELECT store, origin, seq, hash FROM events ORDER BY 1, 2, 3")
        repeated = await db.fetchval("SELECT COUNT(*) FROM (SELECT 1 FROM events GROUP BY "
                                     "store, origin, seq HAVING COUNT(*) > 1) AS twice")
        conflicts = await db.fetchval("SELECT COUNT(*) FROM conflicts")
        sales = await db.fetchval("SELECT COUNT(*) FROM sales")
    finally:
        await db.close()
    assert repeated == 0 and conflicts == 0
    held: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for row in rows:
        held.setdefault((row["store"], row["origin"]), []).append((row["seq"], row["hash"]))
    assert held == {key: [(event.seq, event.hash) for event in events]
                    for key, events in expected.items()}
    assert sales == 2 * 2 * SALES_PER_NODE
