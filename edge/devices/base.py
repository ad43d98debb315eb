"""Devices this node owns: receipt printers and the cash drawers behind them.

A printer here is a blocking object (`Printer`) that only its own thread
ever calls (`DeviceThread`): the event loop never waits on a USB transfer, a
socket or a disk write. Three kinds:
- USB printers through pyusb (`edge/usb_printers.py`),
- network printers on raw TCP port 9100 (`edge/network_printers.py`),
- the file printer, which stands in for hardware in the demo and the tests:
  it keeps the raw ESC/POS bytes a printer would receive and a readable copy.

USB and network printers report their state with the ESC/POS real-time
status requests (DLE EOT); `StatusChannel` asks them over any byte channel.
The print queue (`edge/print_queue.py`) drives all of this.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from edge.config import PrinterConfig
from edge.devices import escpos

log = logging.getLogger(__name__)

T = TypeVar("T")

PERMISSION_HINT = "permission denied: install systemd/99-edge-escpos.rules"


@dataclass(frozen=True)
class PrinterStatus:
    """A printer's state as tills and store IT see it.

    `state` is one of: ready, paper_out, cover_open, error, offline (the
    printer says so); unplugged, unreachable, not_found, permission_denied,
    busy, no_backend (we cannot talk to it); starting. `detail` says it in
    plain words, with what to do.
    """

    state: str
    detail: str
    paper_near_end: bool = False
    drawer_open: bool | None = None

    @property
    def printable(self) -> bool:
        return self.state == "ready"


STARTING = PrinterStatus("starting", "starting")


class DeviceError(Exception):
    """The device cannot be used now; `state` and `detail` as in PrinterStatus."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail

    def as_status(self) -> PrinterStatus:
        return PrinterStatus(self.state, self.detail)


class Printer(Protocol):
    """A receipt printer. Blocking: only its DeviceThread calls it."""

    kind: str
    # Bytes handed to the device at once; the queue checks the status between
    # chunks, so a long receipt never overruns a small printer buffer.
    chunk_size: int

    def describe(self) -> str: ...

    def open(self) -> None:
        """Find and take the device; DeviceError says why not."""

    def write(self, data: bytes) -> None:
        """Hand one chunk to the device; DeviceError if the link is lost."""

    def status(self, full: bool = True) -> PrinterStatus:
        """Ask the device; `full=False` is the quick check between chunks."""

    def keep_copy(self, text: str) -> None:
        """Keep a readable copy of what was printed (file printers only)."""

    def close(self) -> None: ...


class StatusChannel:
    """DLE EOT status over a byte channel; USB and network printers provide the channel.

    A printer that never answers (some clones, or a USB printer without an IN
    endpoint) is taken as ready: we cannot know better, and say so.
    """

    STATUS_TIMEOUT = 1.0
    answers_status: bool | None = None  # None: not asked yet since opening
    _last_paper = 0x12

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def _receive(self, timeout: float) -> bytes:
        """Bytes the printer sent back (b"" if none within `timeout`); DeviceError if lost."""
        raise NotImplementedError

    def _ask(self, request: int) -> int | None:
        self._send(escpos.status_request(request))
        reply = self._receive(self.STATUS_TIMEOUT)
        answers = [byte for byte in reply if escpos.is_status_byte(byte)]
        return answers[-1] if answers else None

    def status(self, full: bool = True) -> PrinterStatus:
        if self.answers_status is False:
            return PrinterStatus("ready", "ready (this printer does not report its status)")
        printer = self._ask(escpos.PRINTER_STATUS)
        if printer is None:
            if self.answers_status:
                raise DeviceError("offline", "offline: the printer stopped answering")
            self.answers_status = False
            log.info("%s does not answer status requests: taken as ready", self.describe())
            return self.status()
        self.answers_status = True
        offline = bool(printer & 0x08)
        if full or offline:
            self._last_paper = self._ask(escpos.PAPER_SENSOR) or 0x12
        offline_cause = error_cause = None
        if offline:
            offline_cause = self._ask(escpos.OFFLINE_CAUSE)
            if offline_cause is not None and offline_cause & 0x40:
                error_cause = self._ask(escpos.ERROR_CAUSE)
        report = escpos.read_status(printer, self._last_paper, offline_cause, error_cause)
        return PrinterStatus(report.state, report.detail, report.paper_near_end,
                             report.drawer_open)

    def describe(self) -> str:
        raise NotImplementedError


class FilePrinter:
    """Appends each receipt's raw bytes to escpos.bin and a readable copy to receipts.txt."""

    kind = "file"
    chunk_size = 64 * 1024

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.raw_path = folder / "escpos.bin"
        self.text_path = folder / "receipts.txt"

    def describe(self) -> str:
        return f"file printer in {self.folder}"

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DeviceError("permission_denied", f"cannot make {self.folder}: "
                              f"{error.strerror}") from None
        if not os.access(self.folder, os.W_OK):
            raise DeviceError("permission_denied", f"cannot write to {self.folder}")

    def write(self, data: bytes) -> None:
        self._append(self.raw_path, data)

    def status(self, full: bool = True) -> PrinterStatus:
        return PrinterStatus("ready", f"ready: receipts in {self.text_path}")

    def keep_copy(self, text: str) -> None:
        self._append(self.text_path, text.encode())

    def close(self) -> None:
        pass

    def _append(self, path: Path, content: bytes) -> None:
        try:
            # No fsync: this stands in for paper, which no power cut brings
            # back either; the journal is what must be durable (and is).
            with path.open("ab") as out:
                out.write(content)
        except OSError as error:
            raise DeviceError("error", f"cannot write {path}: {error.strerror}") from None


class DeviceThread:
    """The one thread that calls a device: every call is awaited from the event loop."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"printer-{name}")

    async def call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def shutdown(self) -> None:
        # Waits for the call in progress (bounded by the device timeouts).
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)


def make_printer(config: PrinterConfig, data_dir: Path, usb_backend: Any = None) -> Printer:
    """The device object for a configured printer (nothing is opened yet)."""
    if config.kind == "usb":
        from edge.devices.usb_printers import UsbPrinter

        return UsbPrinter(config.usb_vendor, config.usb_product, config.serial,
                          backend=usb_backend)
    if config.kind == "network":
        from edge.devices.network_printers import NetworkPrinter

        assert config.host is not None
        return NetworkPrinter(config.host, config.port)
    return FilePrinter(config.path or data_dir / f"printer-{config.name}")


def status_json(config: PrinterConfig, device: Printer, status: PrinterStatus) -> dict[str, Any]:
    return {
        "name": config.name,
        "kind": config.kind,
        "device": device.describe(),
        **asdict(status),
        "tills": list(config.tills),
    }
