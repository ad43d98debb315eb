"""Devices this node owns: receipt printers (and the drawers behind them).

A print job is an event (`print_requested`), written in the same transaction
as the sale that asks for it; this node's print queue prints its own jobs in
order, in a thread (device I/O never runs on the event loop), and records
each outcome as an event (`print_job_done`, `drawer_opened`).

The file printer stands in for hardware in the demo and the tests: it keeps
the raw ESC/POS bytes a printer would receive and a readable text copy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from edge.chain import Event
from edge.config import PrinterConfig
from edge.escpos import encode_receipt
from edge.journal import Journal, Tx, projection
from edge.receipt import Store, as_text, layout
from edge.sales import find_sale

log = logging.getLogger(__name__)


class FilePrinter:
    def __init__(self, config: PrinterConfig, data_dir: Path) -> None:
        self.name = config.name
        self.width = config.width
        self.folder = config.path or data_dir / f"printer-{config.name}"
        self.raw_path = self.folder / "escpos.bin"
        self.text_path = self.folder / "receipts.txt"

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "file", "state": "ready", "path": str(self.folder)}

    def write(self, data: bytes, text: str) -> None:
        """Blocking: call from a thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path, content in ((self.raw_path, data), (self.text_path, text.encode())):
            with path.open("ab") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())


@projection("print_requested")
def _print_requested(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    db.execute(
        """INSERT OR IGNORE INTO print_jobs (id, printer, node, body, created_at)
        VALUES (?, ?, ?, ?, ?)""",
        (body["job_id"], body["printer"], body["node"], orjson.dumps(body).decode(), event.time),
    )


@projection("print_job_done")
def _print_job_done(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "UPDATE print_jobs SET status = ? WHERE id = ?",
        (event.body["outcome"], event.body["job_id"]),
    )


class PrintQueue:
    """Prints this node's pending jobs in order, woken by new print events."""

    def __init__(
        self, journal: Journal, printers: dict[str, FilePrinter], store: Store
    ) -> None:
        self.journal = journal
        self.printers = printers
        self.store = store
        self._wake = asyncio.Event()
        self.printed = 0

    def on_events(self, events: list[Event]) -> None:
        if any(event.type == "print_requested" for event in events):
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            await self.print_pending()
            await self._wake.wait()

    async def print_pending(self) -> None:
        rows = await self.journal.read_all(
            "SELECT body FROM print_jobs WHERE status = 'pending' AND node = ? ORDER BY rowid",
            (self.journal.origin,),
        )
        for row in rows:
            job = orjson.loads(row["body"])
            try:
                await self._print(job)
            except Exception:
                log.exception("print job %s failed", job["job_id"])

    async def _print(self, job: dict[str, Any]) -> None:
        printer = self.printers.get(job["printer"])
        outcome = "done"
        if printer is None:
            log.warning("print job %s names unknown printer %s", job["job_id"], job["printer"])
            outcome = "no_such_printer"
        else:
            sale = await find_sale(self.journal, job["sale_id"])
            if sale is None:
                outcome = "no_such_sale"
            else:
                lines = layout(sale, self.store, printer.width)
                data = encode_receipt(lines, open_drawer=job["open_drawer"])
                text = as_text(lines, printer.width) + "\n\n"
                await asyncio.to_thread(printer.write, data, text)
                self.printed += 1

        def record(tx: Tx) -> None:
            tx.append(
                "print_job_done",
                {"job_id": job["job_id"], "printer": job["printer"], "outcome": outcome},
            )
            if outcome == "done" and job["open_drawer"]:
                tx.append(
                    "drawer_opened",
                    {"printer": job["printer"], "reason": "cash sale", "sale_id": job["sale_id"]},
                )

        await self.journal.write(record)

