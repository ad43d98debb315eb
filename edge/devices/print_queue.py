"""The print queue: each printer prints this node's jobs in order, and every step is an event.

A job is a `print_requested` event (edge/devices/print_jobs.py). Each printer has a
worker that takes the oldest unfinished job for it, waits until the printer
reports ready, and, each step committed before the next byte goes out:

1. claims the job: `print_job_started` (or, for a receipt whose sale holds
   its original through another job already, `print_job_done` with outcome
   `superseded`: never printed, never a pulse; for one whose sale has not
   reached this node yet, `print_job_waiting`);
2. sends the drawer pulse alone, then `drawer_opened` once the printer
   answered after it;
3. sends the text in chunks, asking the printer's status after each one:
   paper out or cover open mid-job pauses there, and sending resumes where
   it stopped once the printer is back (it kept what it had received);
4. `print_job_cutting`, then the cut, alone;
5. `print_job_done` once the printer has confirmed the cut.

So after a crash the journal tells what can have happened: started but no
`drawer_opened` → the pulse may or may not have gone (`drawer_unknown`, the
till offers to open the drawer), and no text was sent; no
`print_job_cutting` → no complete receipt can exist, the receipt prints
again as the original (after a short "IMPRESSION INTERROMPUE" mark that
closes whatever fragment may be on the paper); `print_job_cutting` but not
done → the copy is marked DUPLICATA. If the link is lost mid-job or the node
stops, `print_job_interrupted` says how far it got, and the job is sent
again whole when the printer is back: ESC/POS cannot tell what a printer
printed before it lost power, so resuming mid-receipt could lose lines.
Never lost, never two unmarked receipts for one sale, at most one pulse.

A node that was down may hold receipts that were printed elsewhere
meanwhile: it died after recording a sale, and the till sent the sale again
through another node, whose printer printed it. So after a start, the jobs
it held from before (and those its peers pass on) wait until its peers have
told it what the store did meanwhile (`hold_until_peers_heard`): then a job
whose sale printed elsewhere is `superseded`, never printed. What a till asks
of this node after its start prints at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from edge.config import PrinterConfig
from edge.devices.base import (
    STARTING,
    DeviceError,
    DeviceThread,
    Printer,
    PrinterStatus,
    escpos,
    make_printer,
    status_json,
)
from edge.devices.print_jobs import JOB_COLUMNS, UNFINISHED, Job, original_claimant
from edge.devices.receipt import Store, as_text, interrupted_mark, layout, printer_test_page
from edge.fiscal.z_report import z_lines
from edge.journal.chain import Event
from edge.journal.store import Journal, Tx
from edge.selling.sales import SALE_EVENT_TYPES, find_sale

log = logging.getLogger(__name__)
T = TypeVar("T")

StatusListener = Callable[[dict[str, Any]], None]


# A receipt asked for through another node can reach this one before its
# sale does: it waits this long for the sale (a store's day), then is
# recorded as lost (`no_such_sale`).
SALE_WAIT = timedelta(hours=24)


@dataclass(frozen=True)
class Plan:
    """What one attempt at a job does, decided in the transaction that claims it."""

    copy: str  # "original" or "duplicate"
    pulse: bool  # send the drawer pulse (alone, first)
    mark: bool  # close an earlier attempt's fragment with the IMPRESSION INTERROMPUE slip


@dataclass(frozen=True)
class Rendering:
    pulse: bytes | None  # the drawer pulse, sent alone, first
    chunks: list[bytes]  # then the text
    cut: bytes | None  # then the cut, alone, last: once confirmed, the receipt is whole
    text: str


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
                    await self._give_up_waiting_jobs()
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
                # Not wait_for: on 3.11 it swallows a stop that comes as the wake does.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.queue.poll_interval):
                        await self.wake.wait()
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
        # A receipt waiting for its sale stays out of the way until the sale is here.
        held = self.queue.held_back()
        row = await self.journal.read_one(
            f"""SELECT {JOB_COLUMNS} FROM print_jobs
            WHERE node = ? AND printer = ? AND status IN {UNFINISHED} AND body != '{{}}'
            AND (status != 'waiting' OR cancel_requested = 1
                 OR EXISTS (SELECT 1 FROM sales WHERE sales.id = print_jobs.sale_id))
            {"AND id IN (SELECT value FROM json_each(?))" if held is not None else ""}
            ORDER BY rowid LIMIT 1""",
            (self.journal.origin, self.name, *([held] if held is not None else [])),
        )
        return Job.of(row) if row is not None else None

    async def _give_up_waiting_jobs(self) -> None:
        """Receipts that waited a whole `sale_wait` for their sale: recorded as lost."""
        since = (datetime.now(UTC) - self.queue.sale_wait).isoformat(timespec="milliseconds")
        rows = await self.journal.read_all(
            """SELECT id, sale_id FROM print_jobs WHERE node = ? AND printer = ?
            AND status = 'waiting' AND created_at < ?
            AND NOT EXISTS (SELECT 1 FROM sales WHERE sales.id = print_jobs.sale_id)""",
            (self.journal.origin, self.name, since.replace("+00:00", "Z")),
        )
        if not rows:
            return
        for row in rows:
            log.warning("print job %s: sale %s never reached this node; given up",
                        row["id"], row["sale_id"])

        def record(tx: Tx) -> None:
            for row in rows:
                tx.append("print_job_done", {"job_id": row["id"], "printer": self.name,
                                             "outcome": "no_such_sale"})

        await self.journal.write(record)

    async def _sale_of(self, job: Job) -> dict[str, Any] | None:
        sale = await find_sale(self.journal, job.body["sale_id"])
        if sale is not None:
            cashier = await self.journal.read_one("SELECT name FROM cashiers WHERE id = ?",
                                                  (sale["cashier"],))
            sale["cashier_name"] = cashier["name"] if cashier else sale["cashier"]
        return sale

    def _claim(self, tx: Tx, seen: Job, have_sale: bool) -> Plan | None:
        """In the writer: decide this attempt and record it; None if there is nothing to print.

        One transaction: two jobs of one sale on this node can never both
        claim its original.
        """
        row = tx.fetchone(f"SELECT {JOB_COLUMNS} FROM print_jobs WHERE id = ?", (seen.id,))
        job = Job.of(row)
        if job.status not in ("pending", "waiting", "started", "interrupted"):
            return None
        fragment, pulse = job.left_fragment, job.pulse_pending
        if job.crashed and pulse:
            # The node stopped after claiming the job and before the printer
            # confirmed the pulse: it may have gone out, or not. Say so; never
            # pulse again on our own (the cashier is offered to, once).
            self._drawer_unknown(tx, job, "the node stopped before the printer confirmed it")
            pulse = False
        if job.cancel_requested:
            tx.append("print_job_done", {"job_id": job.id, "printer": self.name,
                                         "outcome": "cancelled"})
            return None
        copy = "duplicate" if job.duplicate else "original"
        if job.kind == "receipt":
            sale_id = job.body["sale_id"]
            if tx.fetchone("SELECT 1 FROM sales WHERE id = ?", (sale_id,)) is None:
                if job.status != "waiting":
                    tx.append("print_job_waiting", {"job_id": job.id, "printer": self.name,
                                                    "sale_id": sale_id})
                return None
            if not have_sale:
                raise SaleArrived
            if copy == "original" and not job.original_started:
                rival = original_claimant(tx, sale_id, but=job.id)
                if rival is not None and "replaces" in job.body:
                    copy = "duplicate"  # the cashier asked for this copy: it is one
                elif rival is not None:
                    # The same sale recorded through another node: its receipt
                    # printed there (or is printing). This one never prints.
                    tx.append("print_job_done", {"job_id": job.id, "printer": self.name,
                                                 "outcome": "superseded", "by": rival})
                    return None
        tx.append("print_job_started", {"job_id": job.id, "printer": self.name, "copy": copy})
        return Plan(copy, pulse, fragment)

    def _render(self, job: Job, plan: Plan, sale: dict[str, Any] | None) -> Rendering:
        config = self.config
        code_page, pin = config.code_page, config.drawer_pin
        qr_module = 6 if config.width > 32 else 5
        kind = job.kind
        if kind == "drawer":
            pulse = escpos.preamble(code_page, pin) if plan.pulse else None
            return Rendering(pulse, [], None, "")
        if kind == "test":
            lines = printer_test_page(self.queue.store, self.name, self.device.describe(),
                                      config.width, code_page, pin)
        elif kind == "z_report":  # a closure, carried by the job (edge/fiscal/z_report.py)
            lines = z_lines(job.body["closure"], self.queue.store, config.width)
        else:
            assert sale is not None
            lines = layout(sale, self.queue.store, config.width, plan.copy,  # type: ignore[arg-type]
                           job.body.get("copy_number"))
        text = as_text(lines, config.width) + "\n\n"
        mark: list[bytes] = []
        if plan.mark:
            mark_lines = interrupted_mark(config.width)
            mark = escpos.receipt_segments(mark_lines, code_page=code_page)
            text = as_text(mark_lines, config.width) + "\n\n" + text
        segments = escpos.receipt_segments(lines, code_page=code_page,
                                           open_drawer=plan.pulse and not mark,
                                           drawer_pin=pin, qr_module=qr_module)
        pulse = None
        if plan.pulse:
            # The pulse alone first; with no mark, it is the receipt's own preamble.
            pulse = escpos.preamble(code_page, pin) if mark else segments.pop(0)
        chunks = escpos.chunks(mark + segments[:-1], self.device.chunk_size)
        return Rendering(pulse, chunks, segments[-1], text)

    async def _print(self, job: Job) -> bool:
        """One attempt at a job; True if it was done and the printer is ready."""
        sale = await self._sale_of(job) if job.kind == "receipt" else None
        try:
            plan = await self._record(lambda tx: self._claim(tx, job, sale is not None))
        except SaleArrived:
            return False  # between our read and the claim: take it again, with the sale
        if plan is None:
            return False
        rendering = self._render(job, plan, sale)
        attempt = {"job_id": job.id, "printer": self.name, "copy": plan.copy}
        partial = cut_sent = False
        pulse = "none"  # "sending", then "sent" once the printer answered after it
        try:
            if rendering.pulse is not None:
                pulse = "sending"
                status = await self._send_chunk(rendering.pulse)
                pulse = "sent"
                await self._record(lambda tx: self._drawer_opened(tx, job))
                pulse = "recorded"
                await self._until_printable(status)
            for chunk in rendering.chunks:
                # Whatever we start to send may reach the paper: say so before sending.
                partial = True
                await self._until_printable(await self._send_chunk(chunk))
            if rendering.cut is not None:
                await self._record(lambda tx: tx.append("print_job_cutting", attempt))
                partial = cut_sent = True
                await self._until_printable(await self._send_chunk(rendering.cut))
            if rendering.text and self.device.kind == "file":
                await self.thread.call(self.device.keep_copy, rendering.text)
        except (DeviceError, asyncio.CancelledError) as error:
            if isinstance(error, DeviceError):
                await self.thread.call(self._close_device)
                self._set_status(error.as_status())
            reason = error.detail if isinstance(error, DeviceError) else "the node stopped"
            interrupted = {**attempt, "partial": partial, "cut_sent": cut_sent, "reason": reason}
            # The pulse: handed over but not confirmed, or still in the printer's
            # thread when the node stopped, is in doubt. A write the device
            # refused did not go out: the next attempt sends it.
            doubt = pulse == "sending" and (self._written
                                            or isinstance(error, asyncio.CancelledError))

            def record(tx: Tx) -> None:
                if doubt:
                    self._drawer_unknown(tx, job, f"the printer did not confirm it ({reason})")
                elif pulse == "sent" and not tx.fetchone(
                        "SELECT drawer_opened FROM print_jobs WHERE id = ?", (job.id,))[0]:
                    self._drawer_opened(tx, job)
                tx.append("print_job_interrupted", interrupted)

            await self._record(record)
            log.warning("printer %s: job %s interrupted (%s); it will be sent again",
                        self.name, job.id, reason)
            if isinstance(error, asyncio.CancelledError):
                raise
            return False

        await self._record(lambda tx: self._done(tx, job, "done", plan.copy))
        if job.kind == "receipt":
            self.printed += 1  # receipts only: /metrics counts receipts
        return True

    async def _record(self, work: Callable[[Tx], T]) -> T:
        """Write what the printer did; with the disk full, wait for room and write it then.

        The paper and the drawer do not wait for the disk: what happened must
        still be recorded as it happened, never guessed at a restart.
        """
        return await self.journal.write_when_there_is_room(
            work, f"printer {self.name}: the disk is full; what it printed is recorded once "
                  "there is room")

    async def _send_chunk(self, chunk: bytes) -> PrinterStatus:
        self._written = False
        return await self.thread.call(self._send, chunk)

    def _send(self, chunk: bytes) -> PrinterStatus:
        """In the owner thread: one chunk, then the printer's answer, which confirms it."""
        self.device.write(chunk)
        self._written = True
        return self.device.status(False)

    async def _until_printable(self, status: PrinterStatus) -> None:
        """Wait here, telling the tills, while the printer cannot print."""
        while not status.printable:
            self._set_status(status)
            await asyncio.sleep(self.queue.poll_interval)
            status = await self.thread.call(self.device.status, True)
        self._set_status(status)

    def _done(self, tx: Tx, job: Job, outcome: str, copy: str) -> None:
        tx.append("print_job_done", {"job_id": job.id, "printer": self.name,
                                     "outcome": outcome, "copy": copy})

    def _drawer_details(self, job: Job) -> dict[str, Any]:
        body = job.body
        if body["kind"] == "drawer" and body.get("sale_id"):
            return {"reason": "cash sale", "sale_id": body["sale_id"],
                    "asked_by": body.get("requested_by")}
        if body["kind"] == "drawer":
            return {"reason": "no sale", "note": body.get("reason", ""),
                    "cashier": body.get("requested_by")}
        if body["kind"] == "test":
            return {"reason": "test page", "by": body.get("requested_by")}
        return {"reason": "cash sale", "sale_id": body.get("sale_id")}

    def _drawer_opened(self, tx: Tx, job: Job) -> None:
        tx.append("drawer_opened", {"printer": self.name, "job_id": job.id,
                                    **self._drawer_details(job)})

    def _drawer_unknown(self, tx: Tx, job: Job, why: str) -> None:
        log.warning("printer %s: job %s: the drawer pulse may or may not have gone out (%s)",
                    self.name, job.id, why)
        tx.append("drawer_unknown", {"printer": self.name, "job_id": job.id,
                                     **self._drawer_details(job), "why": why})


class SaleArrived(Exception):
    """The job's sale came in between reading it and claiming the job: read it again."""


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
        self.sale_wait = SALE_WAIT
        self.workers = {
            config.name: PrinterWorker(config, make_printer(config, data_dir, usb_backend), self)
            for config in printers
        }
        self._listeners: list[StatusListener] = []
        # Until set, only the jobs asked of this node since it started print.
        self.peers_heard = asyncio.Event()
        self._asked_since_start: set[str] = set()

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

    def held_back(self) -> str | None:
        """While peers are not heard yet: the jobs that may print (a JSON list); else None."""
        if self.peers_heard.is_set():
            return None
        return orjson.dumps(sorted(self._asked_since_start)).decode()

    async def hold_until_peers_heard(self, heard: Callable[[], Awaitable[bool]],
                                     within: float) -> None:
        """Jobs from before this start wait for `heard()` (polled), at most `within` seconds.

        Past that (no peer answers), they print: a peer that cannot be
        reached cannot say it printed them either.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await heard():
            if loop.time() >= deadline:
                log.warning("no peer told this node what happened while it was down "
                            "within %.0f s: its earlier print jobs print now", within)
                break
            await asyncio.sleep(0.25)
        self.release_held_jobs()

    def release_held_jobs(self) -> None:
        self.peers_heard.set()
        self._asked_since_start.clear()
        for worker in self.workers.values():
            worker.wake.set()

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if (event.type == "print_requested" and event.origin == self.journal.origin
                    and not self.peers_heard.is_set()):
                self._asked_since_start.add(event.body["job_id"])
            if event.type == "print_requested" and event.body["node"] == self.journal.origin:
                worker = self.workers.get(event.body["printer"])
                if worker is not None:
                    worker.wake.set()
            elif event.type in SALE_EVENT_TYPES:
                # A receipt may be waiting for this sale (asked for through another node).
                for worker in self.workers.values():
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
            f"""SELECT id, printer FROM print_jobs WHERE node = ? AND status IN {UNFINISHED}
            AND body != '{{}}'""",
            (self.journal.origin,),
        )
        lost = [row for row in rows if row["printer"] not in self.workers]
        for row in lost:
            log.warning("print job %s names printer %r, not configured here",
                        row["id"], row["printer"])

        def record(tx: Tx) -> None:
            for row in lost:
                tx.append("print_job_done", {"job_id": row["id"], "printer": row["printer"],
                                             "outcome": "no_such_printer"})

        if lost:
            await self.journal.write(record)
