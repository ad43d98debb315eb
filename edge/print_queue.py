"""The print queue: each printer prints this node's jobs in order, and every step is an event.

A job is a `print_requested` event (edge/print_jobs.py). Each printer has a
worker that takes the oldest unfinished job for it, waits until the printer
reports ready, and:

1. records `print_job_started` (durable) before the first byte goes out;
2. sends the job in chunks, asking the printer's status after each one:
   paper out or cover open mid-job pauses there, and sending resumes where
   it stopped once the printer is back (it kept what it had received);
3. records `print_job_done` once the printer has confirmed the last chunk,
   with `drawer_opened` in the same commit if the job pulsed the drawer
   (at once, if the job has to wait after the pulse).

If the link is lost mid-job (unplugged, network gone) or the node stops,
`print_job_interrupted` says how far it got, and the job is sent again whole
when the printer is back: ESC/POS cannot tell what a printer printed before
it lost power, so resuming mid-receipt could lose lines. The cut is sent
alone, last, so we know whether the receipt can have been completed:
- not sent: the new copy is the original, after a short "IMPRESSION
  INTERROMPUE" mark that closes the fragment left on the paper;
- sent but not confirmed, or unknown (the node died mid-job): the new copy is
  marked DUPLICATA. Never lost, never two unmarked receipts for one sale.
The drawer is pulsed at most once per job (see docs/devices.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from edge import escpos
from edge.chain import Event
from edge.config import PrinterConfig
from edge.devices import (
    STARTING,
    DeviceError,
    DeviceThread,
    Printer,
    PrinterStatus,
    make_printer,
    status_json,
)
from edge.journal import Journal, Tx
from edge.print_jobs import UNFINISHED, Job
from edge.receipt import Store, as_text, interrupted_mark, layout, printer_test_page
from edge.sales import find_sale

log = logging.getLogger(__name__)

StatusListener = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Rendering:
    chunks: list[bytes]
    text: str
    copy: str


class PrinterWorker:
    """One printer: its owner thread, its live status, and the loop printing its jobs."""

    def __init__(self, config: PrinterConfig, device: Printer, queue: PrintQueue) -> None:
        self.config = config
        self.name = config.name
        self.device = device
        self.queue = queue
        self.journal = queue.journal
        self.thread = DeviceThread(config.name)
        self.status = STARTING
        self.wake = asyncio.Event()
        self.probed = asyncio.Event()  # set once the first status is known
        self.printed = 0
        self._open = False  # touched only in the owner thread
        self._pulsed: Job | None = None  # the drawer pulse went out, not journaled yet
        self._written = False  # set by the owner thread once a chunk is handed over

    def status_json(self) -> dict[str, Any]:
        return status_json(self.config, self.device, self.status)

    @property
    def text_path(self) -> Path | None:
        return getattr(self.device, "text_path", None)

    async def run(self) -> None:
        try:
            fresh = False  # the printer said "ready" just now, at the end of a job
            while True:
                self.wake.clear()
                try:
                    if not fresh:
                        self._set_status(await self.thread.call(self._probe))
                        self.probed.set()
                    if self.status.printable:
                        job = await self._next_job()
                        if job is not None:
                            fresh = await self._print(job)
                            continue
                except Exception:
                    # A bug must not stop this printer (or the others) for good.
                    log.exception("printer %s: unexpected error; trying again", self.name)
                fresh = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.queue.poll_interval)
        finally:
            await self.thread.call(self._close_device)
            await self.thread.shutdown()

    # In the owner thread.
    def _probe(self) -> PrinterStatus:
        try:
            if not self._open:
                self.device.open()
                self._open = True
            return self.device.status(True)
        except DeviceError as error:
            self._close_device()
            return error.as_status()

    def _close_device(self) -> None:
        try:
            self.device.close()
        except Exception:
            log.exception("closing printer %s failed", self.name)
        self._open = False

    def _set_status(self, status: PrinterStatus) -> None:
        if status == self.status:
            return
        level = logging.INFO if status.printable or status.state == "starting" else logging.WARNING
        log.log(level, "printer %s: %s", self.name, status.detail)
        self.status = status
        self.queue.status_changed(self)

    async def _next_job(self) -> Job | None:
        row = await self.journal.read_one(
            f"""SELECT id, body, status, partial, cut_sent, drawer_opened FROM print_jobs
            WHERE node = ? AND printer = ? AND status IN {UNFINISHED} ORDER BY rowid LIMIT 1""",
            (self.journal.origin, self.name),
        )
        if row is None:
            return None
        return Job(row["id"], orjson.loads(row["body"]), row["status"], bool(row["partial"]),
                   bool(row["cut_sent"]), bool(row["drawer_opened"]))

    async def _render(self, job: Job) -> Rendering | None:
        config = self.config
        code_page, pin = config.code_page, config.drawer_pin
        qr_module = 6 if config.width > 32 else 5
        pulse = job.pulses_drawer
        kind = job.body["kind"]
        if kind == "drawer":
            segments = [escpos.preamble(code_page, pin if pulse else None)] if pulse else []
            return Rendering(segments, "", "original")
        copy = "duplicate" if job.duplicate else "original"
        if kind == "test":
            lines = printer_test_page(self.queue.store, self.name, self.device.describe(),
                                      config.width, code_page, pin)
        else:
            sale = await find_sale(self.journal, job.body["sale_id"])
            if sale is None:
                return None
            cashier = await self.journal.read_one("SELECT name FROM cashiers WHERE id = ?",
                                                  (sale["cashier"],))
            sale["cashier_name"] = cashier["name"] if cashier else sale["cashier"]
            lines = layout(sale, self.queue.store, config.width, copy)
        segments = escpos.receipt_segments(lines, code_page=code_page, open_drawer=pulse,
                                           drawer_pin=pin, qr_module=qr_module)
        text = as_text(lines, config.width) + "\n\n"
        # The cut goes alone, last: once it is confirmed, the receipt is whole.
        chunks = [*escpos.chunks(segments[:-1], self.device.chunk_size), segments[-1]]
        if job.left_fragment:
            mark = interrupted_mark(config.width)
            chunks = escpos.chunks(escpos.receipt_segments(mark, code_page=code_page),
                                   self.device.chunk_size) + chunks
            text = as_text(mark, config.width) + "\n\n" + text
        return Rendering(chunks, text, copy)

    async def _print(self, job: Job) -> bool:
        """One attempt at a job; True if it was done and the printer is ready."""
        rendering = await self._render(job)
        if rendering is None:
            log.warning("print job %s: no sale %s here", job.id, job.body.get("sale_id"))
            await self.journal.write(lambda tx: self._done(tx, job, "no_such_sale", "original"))
            return False
        attempt = {"job_id": job.id, "printer": self.name, "copy": rendering.copy}

        def start(tx: Tx) -> None:
            tx.append("print_job_started", attempt)
            if job.crashed and job.body.get("open_drawer") and not job.drawer_opened:
                self._drawer_opened(tx, job, recorded_after_restart=True)

        await self.journal.write(start)
        partial = cut_sent = False
        self._pulsed = None
        try:
            for number, chunk in enumerate(rendering.chunks):
                # Whatever we start to send may reach the paper: say so before sending.
                partial, cut_sent = True, number == len(rendering.chunks) - 1
                self._written = False
                try:
                    status = await self.thread.call(self._send, chunk)
                finally:
                    if number == 0 and job.pulses_drawer and self._written:
                        self._pulsed = job
                await self._until_printable(status)
            if rendering.text and self.device.kind == "file":
                await self.thread.call(self.device.keep_copy, rendering.text)
        except (DeviceError, asyncio.CancelledError) as error:
            if isinstance(error, DeviceError):
                await self.thread.call(self._close_device)
                self._set_status(error.as_status())
            reason = error.detail if isinstance(error, DeviceError) else "the node stopped"
            interrupted = {**attempt, "partial": partial, "cut_sent": cut_sent, "reason": reason}

            def record(tx: Tx) -> None:
                self._record_drawer(tx)
                tx.append("print_job_interrupted", interrupted)

            await self.journal.write(record)
            self._pulsed = None
            log.warning("printer %s: job %s interrupted (%s); it will be sent again",
                        self.name, job.id, reason)
            if isinstance(error, asyncio.CancelledError):
                raise
            return False

        def finish(tx: Tx) -> None:
            self._record_drawer(tx)
            self._done(tx, job, "done", rendering.copy)

        await self.journal.write(finish)
        self._pulsed = None
        if job.body["kind"] == "receipt":
            self.printed += 1  # receipts only: /metrics counts receipts
        return True

    def _record_drawer(self, tx: Tx) -> None:
        """The drawer opening, in the transaction that records how the job went (one commit)."""
        if self._pulsed is not None:
            self._drawer_opened(tx, self._pulsed)

    def _send(self, chunk: bytes) -> PrinterStatus:
        """In the owner thread: one chunk, then the printer's answer, which confirms it."""
        self.device.write(chunk)
        self._written = True
        return self.device.status(False)

    async def _until_printable(self, status: PrinterStatus) -> None:
        """Wait here, telling the tills, while the printer cannot print."""
        if not status.printable and self._pulsed is not None:
            # The drawer opened; the job may wait long: journal the opening now.
            await self.journal.write(self._record_drawer)
            self._pulsed = None
        while not status.printable:
            self._set_status(status)
            await asyncio.sleep(self.queue.poll_interval)
            status = await self.thread.call(self.device.status, True)
        self._set_status(status)

    def _done(self, tx: Tx, job: Job, outcome: str, copy: str) -> None:
        tx.append("print_job_done", {"job_id": job.id, "printer": self.name,
                                     "outcome": outcome, "copy": copy})

    def _drawer_opened(self, tx: Tx, job: Job, **more: Any) -> None:
        body = job.body
        if body["kind"] == "drawer":
            details = {"reason": "no sale", "note": body.get("reason", ""),
                       "cashier": body.get("requested_by")}
        elif body["kind"] == "test":
            details = {"reason": "test page", "by": body.get("requested_by")}
        else:
            details = {"reason": "cash sale", "sale_id": body.get("sale_id")}
        tx.append("drawer_opened", {"printer": self.name, "job_id": job.id, **details, **more})


class PrintQueue:
    """Every printer of this node, each with its worker; statuses pushed to listeners."""

    def __init__(
        self,
        journal: Journal,
        printers: tuple[PrinterConfig, ...],
        data_dir: Path,
        store: Store,
        usb_backend: Any = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.journal = journal
        self.store = store
        self.poll_interval = poll_interval
        self.workers = {
            config.name: PrinterWorker(config, make_printer(config, data_dir, usb_backend), self)
            for config in printers
        }
        self._listeners: list[StatusListener] = []

    @property
    def printed(self) -> int:
        return sum(worker.printed for worker in self.workers.values())

    def statuses(self) -> list[dict[str, Any]]:
        return [worker.status_json() for worker in self.workers.values()]

    def add_status_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Call `listener` with a printer's status each time it changes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def status_changed(self, worker: PrinterWorker) -> None:
        status = worker.status_json()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("printer status listener failed")

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if event.type == "print_requested" and event.body["node"] == self.journal.origin:
                worker = self.workers.get(event.body["printer"])
                if worker is not None:
                    worker.wake.set()

    async def first_statuses(self, within: float) -> None:
        """Wait (a little) for every printer's first status, so /healthz starts out right."""
        waits = [asyncio.create_task(w.probed.wait()) for w in self.workers.values()]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=within)
            for wait in pending:
                wait.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def run(self) -> None:
        await self._fail_unknown_printers()
        async with asyncio.TaskGroup() as group:
            for worker in self.workers.values():
                group.create_task(worker.run(), name=f"printer-{worker.name}")

    async def _fail_unknown_printers(self) -> None:
        """Jobs for a printer no longer configured here: recorded, not kept waiting forever."""
        rows = await self.journal.read_all(
            f"SELECT id, printer FROM print_jobs WHERE node = ? AND status IN {UNFINISHED}",
            (self.journal.origin,),
        )
        lost = [row for row in rows if row["printer"] not in self.workers]
        for row in lost:
            log.warning("print job %s names printer %r, not configured here",
                        row["id"], row["printer"])

        def record(tx: Tx) -> None:
            for row in lost:
                tx.append("print_job_done", {"job_id": row["id"], "printer": row["printer"],
                                             "outcome": "no_such_printer", "copy": "original"})

        if lost:
            await self.journal.write(record)
