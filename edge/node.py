"""A node: one `edge serve` process and everything it owns.

Its data folder (locked while it runs), its journal (the SQLite file there),
its devices, its background tasks (supervised), and the counters `/metrics`
reports. Its id is the journal's own origin, claimed when the journal opens:
kept across restarts, new when the folder was restored or copied
(edge/datafolder.py); `node-id` in the data folder mirrors it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from edge.admin import write_admin_token
from edge.api import (
    basket_commands,  # noqa: F401  (registers the parked-basket commands)
    catalogue_commands,  # noqa: F401  (registers the product grid)
    closure_commands,  # noqa: F401  (registers the closure commands)
    commands,  # noqa: F401  (registers the till commands)
    discount_commands,  # noqa: F401  (registers the discount commands)
    payment_commands,  # noqa: F401  (registers the card payment commands)
    printer_commands,  # noqa: F401  (registers the printer commands)
    refund_commands,  # noqa: F401  (registers the refund commands)
    sale_commands,  # noqa: F401  (registers the sale commands)
    shift_commands,  # noqa: F401  (registers the shift and training commands)
)
from edge.api.websocket_api import UnsentBudget
from edge.config import Config
from edge.demo import seed_demo_store
from edge.devices import store_printers, store_terminals
from edge.devices.print_queue import PrintQueue
from edge.devices.receipt import receipt_store
from edge.devices.terminals import Terminals
from edge.fiscal import jet
from edge.fiscal.auto_archive import AutoArchive
from edge.fiscal.periods import calendar_of
from edge.journal.datafolder import REASONS, FolderLock, write_node_id
from edge.journal.lineage import last_own_time
from edge.journal.store import Journal, Tx
from edge.replication.peers import Peers
from edge.selling.logins import LoginThrottle
from edge.selling.staff import pin_key
from edge.selling.tills import PairingThrottle
from edge.supervisor import Supervisor
from edge.sync.client import SyncClient
from edge.trust.folder import NodeTrust, TrustFolder, TrustProblem

log = logging.getLogger(__name__)

# A clock stepped back by less than this (time-server corrections) still sells.
CLOCK_TOLERANCE = timedelta(minutes=2)


@dataclass
class Metrics:
    commands: int = 0
    command_errors: int = 0
    sales: int = 0


def demo_addresses(host: str) -> list[str]:
    """The addresses a demo node listening on `host` is reached at (for its certificate)."""
    if host in ("127.0.0.1", "::1", "localhost"):
        return []
    from edge.replication.discovery import addresses_for

    return addresses_for(host)


class StoreMismatch(Exception):
    pass


class DataFolderProblem(Exception):
    """The data folder cannot be used (not a folder, no permission, disk full, damaged)."""


# How long a restarted node's earlier print jobs wait for a peer to tell it
# what happened while it was down (edge/devices/print_queue.py).
PEERS_HEARD_WITHIN = 60.0  # seconds


class ClockBehind(Exception):
    """The clock is behind what this node already wrote: its sales would be misdated."""


class Node:
    def __init__(self, config: Config, usb_backend: Any = None) -> None:
        self.config = config
        self.trust: NodeTrust | None = None  # loaded by `start`, once the folder is ours
        self.lock = FolderLock(config.data_dir)
        self.journal = Journal(config.database)
        self.journal.on_stopped = self._journal_stopped
        self.metrics = Metrics()
        self.login_throttle = LoginThrottle()
        self.pairing_throttle = PairingThrottle()
        # usb_backend: pyusb's libusb by default; the tests pass a fake printer's.
        self.print_queue = PrintQueue(
            self.journal, config.all_printers(), config.data_dir,
            receipt_store(config), usb_backend=usb_backend,
        )
        self.printers = self.print_queue.workers
        self.terminals = Terminals(self.journal, config.terminals)
        # The technical event journal's watchers (edge/fiscal/jet.py).
        self.offline_periods = jet.OfflinePeriods(self.journal)
        self.clock_watch: jet.ClockWatch | None = None
        # Each month's and year's archive, once this node closes it (fiscal/auto_archive.py).
        self.auto_archive = AutoArchive(self.journal, config.data_dir, calendar_of(config))
        self.started = False  # recorded as started: its stop is recorded too
        self.admin_token: str | None = None
        self.peers = Peers(self)
        self.till_sockets: set[web.WebSocketResponse] = set()
        self.unsent = UnsentBudget()  # what all its tills together have not read yet
        self.sync: SyncClient | None = None
        if config.headoffice_url and config.headoffice_enabled:
            self.sync = SyncClient(self.journal, config)
        self.tasks = Supervisor()
        # Set when the node cannot go on (its origin clashed): `edge serve` exits.
        self.failed = asyncio.Event()
        self.failure: str | None = None

    @property
    def node_id(self) -> str:
        return self.journal.origin

    async def start(self) -> None:
        # Before anything in the folder is opened: one process per data folder.
        folder = self.config.data_dir
        try:
            self.lock.acquire(f"edge serve on port {self.config.port}")
        except OSError as error:
            raise DataFolderProblem(f"cannot use the data folder {folder}: {error}") from error
        try:
            try:
                self.trust = self._load_trust()
            except TrustProblem as problem:
                raise DataFolderProblem(str(problem)) from None
            self.journal.trust = self.trust  # it signs every event it writes, checks others'
            try:
                await self.journal.open()
            except (OSError, sqlite3.Error) as error:
                raise DataFolderProblem(
                    f"cannot open the journal in {folder}: {error}") from error
            try:
                await self._check_journal()
            except BaseException:
                await self.journal.close()
                raise
        except BaseException:
            self.lock.release()
            raise
        await jet.node_started(self.journal, self.config)
        self.started = True
        if self.config.demo:
            await seed_demo_store(self.journal, pin_key(self.config))
        await store_printers.announce_printers(self.journal, [
            {"name": p.name, "kind": p.kind, "tills": list(p.tills)}
            for p in self.config.all_printers()
        ])
        await store_terminals.announce_terminals(self.journal, [
            {"name": t.name, "tills": list(t.tills)} for t in self.config.terminals
        ])
        self.journal.add_listener(self.print_queue.on_events)
        self.journal.add_listener(self.terminals.on_events)
        self.journal.add_listener(self.offline_periods.on_events)
        self.journal.add_listener(self.auto_archive.on_events)
        self.clock_watch = jet.ClockWatch(self.journal)
        self.tasks.start("clock-watch", self.clock_watch.run)
        self.tasks.start("offline-periods", self.offline_periods.run)
        self.tasks.start("auto-archive", self.auto_archive.run)
        if await self._other_nodes_known():
            self.tasks.start("print-hold", lambda: self.print_queue.hold_until_peers_heard(
                self.peers.heard_everything, PEERS_HEARD_WITHIN))
        else:
            self.print_queue.release_held_jobs()
        self.tasks.start("print-queue", self.print_queue.run)
        self.tasks.start("terminals", self.terminals.run)
        await self.print_queue.first_statuses(within=2.0)
        self.admin_token = write_admin_token(self.config.data_dir)  # for local admin commands
        if self.sync is not None:
            await self.sync.open()
            self.tasks.start("headoffice-sync", self.sync.run)
        await self.peers.start()

    def _load_trust(self) -> NodeTrust:
        """This node's store certificates (edge/trust/); the demo store makes its own."""
        folder = TrustFolder(self.config.data_dir)
        if not folder.exists() and self.config.demo:
            key = self.config.store_key()
            name = f"demo-{secrets.token_hex(3)}"
            folder.init_store(self.config.store_id, name, ["localhost", f"edge-{name}.local"],
                              ["127.0.0.1", "::1", *demo_addresses(self.config.host)],
                              demo_seed=key)
            log.info("demo store: made its certificates in %s", folder.path)
        return folder.load(self.config.store_id)

    async def _check_journal(self) -> None:
        write_node_id(self.config.data_dir, self.node_id)
        rotation = self.journal.rotation
        if rotation is not None:
            log.warning("this node continues as %s: %s (node %s's journal cut at #%d)",
                        self.node_id, REASONS.get(rotation["reason"], rotation["reason"]),
                        rotation["predecessor"], rotation["cut"]["seq"])
        await self._claim_store()
        last = await last_own_time(self.journal)
        now = datetime.now(UTC)
        if last is None or datetime.fromisoformat(last) - now <= CLOCK_TOLERANCE:
            return
        if self.config.accept_clock:
            log.warning("the clock (%s) is behind this node's last event (%s): accepted "
                        "(--accept-clock)", now.isoformat(timespec="seconds"), last)
            await jet.clock_behind_accepted(self.journal, last, now)
        else:
            raise ClockBehind(
                f"this machine's clock says {now.isoformat(timespec='seconds')}, before this "
                f"node's last event ({last}): its sales would be dated in the past. Set the "
                "date and time (timedatectl set-time, or a time server), then start edge "
                "again; if the clock had run ahead and is right now, start it once with "
                "--accept-clock.")

    async def _other_nodes_known(self) -> bool:
        """Does the store have other nodes (configured, or ever heard of), which may have
        done this node's work while it was down?"""
        if self.config.peer_urls:
            return True
        row = await self.journal.read_one(
            """SELECT 1 FROM origins WHERE origin != ? AND origin NOT LIKE 'headoffice%'
            AND origin NOT IN (SELECT origin FROM retired_origins) LIMIT 1""",
            (self.node_id,))
        return row is not None

    def _journal_stopped(self, why: str) -> None:
        self.failure = why
        self.failed.set()

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
        await self.tasks.stop()
        self.auto_archive.close()  # an archive being written ends first (one at most)
        await self._record_stop()
        if self.sync is not None:
            await self.sync.close()
        await self.journal.close()
        self.lock.release()

    async def _record_stop(self) -> None:
        """The last offline periods and `node_stopped`, unless the journal cannot write."""
        if self.failure is not None or not self.started:
            return
        self.started = False
        try:
            await self.offline_periods.flush(everything=True)
            await jet.node_stopped(self.journal)
        except Exception:  # disk full, a journal stopped: stopping goes on
            log.warning("could not record that the node stopped", exc_info=True)

    def store_nodes(self) -> list[dict[str, str]]:
        """Every node of the store a till can fail over to, this one first."""
        return self.peers.nodes()

    def reaches(self, node_id: str) -> bool:
        """Can work for that node be done now: is it this node or a connected peer?"""
        return node_id == self.node_id or self.peers.is_connected(node_id)
