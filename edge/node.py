"""A node: one `edge serve` process and everything it owns.

Its journal (the SQLite file in the data folder), its devices, and the
counters `/metrics` reports. Its id is made once per data folder and kept in
`node-id` there; the journal origin of everything it writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from edge import (
    commands,  # noqa: F401  (registers the till commands)
    print_jobs,
    printer_commands,  # noqa: F401  (registers the printer commands)
)
from edge.config import Config
from edge.demo import seed_demo_store
from edge.device_admin import write_admin_token
from edge.journal import Journal, Tx
from edge.peers import Peers
from edge.print_queue import PrintQueue
from edge.receipt import Store
from edge.staff import LoginThrottle
from edge.sync import SyncClient
from edge.tills import PairingThrottle

log = logging.getLogger(__name__)


@dataclass
class Metrics:
    commands: int = 0
    command_errors: int = 0
    sales: int = 0


class StoreMismatch(Exception):
    pass


def load_node_id(config: Config) -> str:
    path = config.data_dir / "node-id"
    if path.exists():
        return path.read_text().strip()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    node_id = secrets.token_hex(3)
    path.write_text(node_id + "\n")
    return node_id


class Node:
    def __init__(self, config: Config, usb_backend: Any = None) -> None:
        self.config = config
        self.node_id = load_node_id(config)
        self.journal = Journal(config.database, origin=self.node_id)
        self.metrics = Metrics()
        self.login_throttle = LoginThrottle()
        self.pairing_throttle = PairingThrottle()
        # usb_backend: pyusb's libusb by default; the tests pass a fake printer's.
        self.print_queue = PrintQueue(
            self.journal, config.all_printers(), config.data_dir,
            Store(config.store_name, config.store_address), usb_backend=usb_backend,
        )
        self.printers = self.print_queue.workers
        self.admin_token: str | None = None
        self.peers = Peers(self)
        self.till_sockets: set[web.WebSocketResponse] = set()
        self.sync: SyncClient | None = None
        if config.headoffice_url and config.headoffice_enabled:
            self.sync = SyncClient(self.journal, config, self.node_id)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.journal.open()
        try:
            await self._claim_store()
        except StoreMismatch:
            await self.journal.close()
            raise
        if self.config.demo:
            await seed_demo_store(self.journal)
        await print_jobs.announce_printers(self.journal, [
            {"name": p.name, "kind": p.kind, "tills": list(p.tills)}
            for p in self.config.all_printers()
        ])
        self.journal.add_listener(self.print_queue.on_events)
        self._tasks.append(asyncio.create_task(self.print_queue.run(), name="print-queue"))
        await self.print_queue.first_statuses(within=2.0)
        self.admin_token = write_admin_token(self.config.data_dir)  # for `edge devices test`
        if self.sync is not None:
            await self.sync.open()
            self._tasks.append(asyncio.create_task(self.sync.run(), name="headoffice-sync"))
        await self.peers.start()

    async def _claim_store(self) -> None:
        """A data folder belongs to one store: refuse to mix two."""
        store_id = await self.journal.meta("store_id")
        if store_id is None:
            def claim(tx: Tx) -> None:
                tx.db.execute(
                    "INSERT INTO meta (key, value) VALUES ('store_id', ?)", (self.config.store_id,)
                )

            await self.journal.write(claim)
        elif store_id != self.config.store_id:
            raise StoreMismatch(
                f"{self.config.data_dir} holds the data of store {store_id!r}, "
                f"not {self.config.store_id!r}: use another data folder"
            )

    async def stop(self) -> None:
        await self.peers.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.sync is not None:
            await self.sync.close()
        await self.journal.close()

    def store_nodes(self) -> list[dict[str, str]]:
        """Every node of the store a till can fail over to, this one first."""
        return self.peers.nodes()

    def reaches(self, node_id: str) -> bool:
        """Can work for that node be done now: is it this node or a connected peer?"""
        return node_id == self.node_id or self.peers.is_connected(node_id)
